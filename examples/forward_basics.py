"""Forward-mode basics on plain NumPy code: a derivative, a gradient, a Jacobian.

Every number is checked against an independent reference (closed forms and
scipy.optimize.rosen_der); the script exits with an error if one disagrees.

Run: python examples/forward_basics.py
"""

import numpy as np
from scipy.optimize import rosen, rosen_der

import dualad


def main():
    # 1. derivative of a scalar function, and its second derivative (HyperDual, exact)
    f = lambda x: x * np.sin(x)  # noqa: E731
    x = 1.3
    d1 = dualad.derivative(f)(x)
    d2 = dualad.derivative(f, order=2)(x)
    np.testing.assert_allclose(d1, np.sin(x) + x * np.cos(x), rtol=1e-14)
    np.testing.assert_allclose(d2, 2 * np.cos(x) - x * np.sin(x), rtol=1e-14)
    print(f"f(x) = x sin x at x = {x}: f' = {d1:.12f}, f'' = {d2:.12f}")

    # 2. the gradient of the Rosenbrock function, as scipy.optimize wants it
    x0 = np.linspace(-1.0, 1.5, 20)
    g = dualad.grad(rosen)(x0)
    np.testing.assert_allclose(g, rosen_der(x0), rtol=1e-13, atol=1e-11)
    print(f"grad(rosen) at n = {x0.size} matches rosen_der: max |diff| = "
          f"{np.max(np.abs(g - rosen_der(x0))):.1e}")

    # 3. the Jacobian of a vector function with slicing and item assignment
    def F(v):
        out = np.zeros_like(v)
        out[0] = v[0] ** 2 - v[1]
        out[1:] = np.exp(v[1:]) * v[:-1]
        return out

    v = np.array([0.5, -0.2, 0.3])
    J = dualad.jacobian(F)(v)
    expect = np.array([[2 * v[0], -1.0, 0.0],
                       [np.exp(v[1]), v[0] * np.exp(v[1]), 0.0],
                       [0.0, np.exp(v[2]), v[1] * np.exp(v[2])]])
    np.testing.assert_allclose(J, expect, rtol=1e-14)
    print("Jacobian of F:\n", J)


if __name__ == "__main__":
    main()
