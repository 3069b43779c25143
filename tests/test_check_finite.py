"""``check_finite=True`` on every transform: the origin of a NaN/inf, named by line.

``dualad.diagnostics.find_nonfinite`` is tested in ``test_diagnostics``; here the
transforms' keyword is checked: on, it raises ``FloatingPointError`` naming the operation
and the line of the user's code (found with ``inspect``, not hard-coded); off (the
default), the transforms return the non-finite numbers as they are.
"""

import inspect

import numpy as np
import pytest

import dualad


def sqrt_at_one(x):
    shifted = x - 1.0
    return np.sum(np.sqrt(shifted) * 2.0)


def log_of_zero(x):
    zero = 0.0 * x
    return np.sum(np.log(zero))


def _line(func, text):
    lines, start = inspect.getsourcelines(func)
    return start + next(i for i, line in enumerate(lines) if text in line)


@pytest.mark.parametrize("make", [dualad.grad, dualad.value_and_grad, dualad.jacobian,
                                  dualad.hessian])
def test_every_transform_names_the_origin(make):
    x = np.array([1.0, 2.0])
    for fun, op, text in [(sqrt_at_one, "sqrt", "np.sqrt(shifted)"),
                          (log_of_zero, "log", "np.log(zero)")]:
        line = _line(fun, text)
        with pytest.raises(FloatingPointError, match=rf"{op}.*test_check_finite.py:{line}"):
            make(fun, check_finite=True)(x)


def test_hvp_checks_too():
    line = _line(sqrt_at_one, "np.sqrt(shifted)")
    with pytest.raises(FloatingPointError, match=rf"sqrt.*:{line}"):
        dualad.hvp(sqrt_at_one, check_finite=True)(np.array([1.0, 2.0]), np.ones(2))


def test_off_by_default_returns_the_numbers():
    g = dualad.grad(sqrt_at_one)(np.array([1.0, 2.0]))
    assert np.isinf(g[0]) and g[1] == 1.0
    assert dualad.grad(sqrt_at_one).check_finite is False


def test_finite_functions_pass_unchanged():
    f = lambda x: np.sum(np.sin(x) * x ** 2)  # noqa: E731
    x = np.linspace(-1, 1, 5)
    for mode in ("forward", "reverse", "auto"):
        np.testing.assert_allclose(dualad.grad(f, mode=mode, check_finite=True)(x),
                                   dualad.grad(f, mode=mode)(x), rtol=0, atol=0)
    tree = {"a": np.ones(2), "b": 3.0}
    g = dualad.grad(lambda p: np.sum(p["a"] ** 2) * p["b"], check_finite=True)(tree)
    np.testing.assert_allclose(g["a"], [6.0, 6.0])
