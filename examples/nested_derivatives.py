"""Nested derivatives without perturbation confusion, and a custom rule.

Each transform call gets its own tag, so an inner derivative that closes over an outer
variable is a constant for the inner call and still differentiable for the outer one.

Run: python examples/nested_derivatives.py
"""

import numpy as np

import dualad


def main():
    D = dualad.derivative
    # d/dx [x * d/dy (x + y)] = d/dx [x * 1] = 1  (a confused implementation gives 2)
    value = D(lambda x: x * D(lambda y: x + y)(1.0))(2.0)
    assert value == 1.0, value
    print("d/dx [x * d/dy (x + y)] at x = 2:", value)

    # mixed partial of g(x, y) = x^2 y^3 by nesting: d/dx d/dy g = 6 x y^2
    g = lambda x, y: x ** 2 * y ** 3  # noqa: E731
    mixed = D(lambda x: D(lambda y: g(x, y))(0.7))(1.5)
    np.testing.assert_allclose(mixed, 6 * 1.5 * 0.7 ** 2, rtol=1e-14)
    print("d/dx d/dy x^2 y^3 at (1.5, 0.7):", mixed)

    # third derivative by nesting forward sweeps
    third = D(np.sin, order=3)(0.4)
    np.testing.assert_allclose(third, -np.cos(0.4), rtol=1e-14)
    print("sin''' at 0.4:", third)


if __name__ == "__main__":
    main()
