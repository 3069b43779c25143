"""In-place operators and writes through views follow NumPy, in both modes.

``v = y[1:]; v += w`` writes into ``y`` in NumPy; a traced array must do the same (the
oracle is NumPy itself on the values, and central differences of the plain function for
the derivatives).  Where reverse mode cannot follow a view (reshape, transpose), it
raises a clear error instead of returning a wrong number.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import dualad
from conftest import fd_jacobian


def write_through_slice_iadd(x):
    y = x * 1.0
    v = y[1:]
    v += x[:-1] ** 2
    return y


def write_through_slice_setitem(x):
    y = x * 2.0
    v = y[1:]
    v[0] = np.sin(x[0])
    return y


def augmented_slice_assignment(x):
    y = x * 1.0
    y += x ** 2
    y[1:] *= x[:-1]
    y[:2] -= x[2:]
    y /= 1.0 + x ** 2
    return y


def base_write_seen_by_view(x):
    y = x * 1.0
    v = y[1:]
    w = v[1:]
    y[2] = 5.0 * x[0]
    return np.concatenate([v * 1.0, w * 1.0])


def nested_views(x):
    y = x * 1.0
    v = y[1:]
    w = v[1:]
    w += x[:2] * 3.0
    return y


FUNCS = [write_through_slice_iadd, write_through_slice_setitem, augmented_slice_assignment,
         base_write_seen_by_view, nested_views]


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("fun", FUNCS, ids=[f.__name__ for f in FUNCS])
def test_numpy_view_semantics(fun, mode, rng):
    x = rng.uniform(0.5, 1.5, 4)
    J = dualad.jacobian(fun, mode=mode)(x)
    assert_allclose(J, fd_jacobian(fun, x), rtol=1e-8, atol=1e-9)
    value, _ = dualad.vjp(fun, x) if mode == "reverse" else dualad.jvp(fun, x, x)
    assert_allclose(value, fun(x.copy()), rtol=1e-15)


def test_the_callers_array_is_untouched():
    x = np.array([1.0, 2.0, 3.0])
    keep = x.copy()

    def f(z):
        z += 1.0
        z[1:] *= 2.0
        return np.sum(z)
    for mode in ("forward", "reverse"):
        assert_allclose(dualad.grad(f, mode=mode)(x), [1.0, 2.0, 2.0])
        assert np.array_equal(x, keep)


def test_untracked_views_are_refused_in_reverse_mode():
    def f(x):
        y = x * 1.0
        z = y.reshape(2, 2)
        z[0, 0] = 3.0 * x[3]
        return y
    with pytest.raises(TypeError, match="view of a traced array"):
        dualad.jacobian(f, mode="reverse")(np.ones(4))


def write_through_reshape(x):
    y = x * 1.0
    z = y.reshape(2, 2)
    z[0, 0] = 3.0 * x[3] ** 2
    return y


def write_through_transpose(x):
    y = (x * 2.0).reshape(2, 2)
    z = y.T
    z[0, 1] += np.exp(x[0])
    return y.ravel()


@pytest.mark.parametrize("fun", [write_through_reshape, write_through_transpose])
def test_forward_mode_writes_through_reshape_and_transpose_views(fun, rng):
    x = rng.uniform(0.5, 1.5, 4)
    assert_allclose(dualad.jacobian(fun, mode="forward")(x), fd_jacobian(fun, x),
                    rtol=1e-8, atol=1e-9)
    _, tangent = dualad.jvp(fun, x, np.ones(4))
    assert_allclose(dualad.jvp(fun, x, np.ones(4))[0], fun(x.copy()), rtol=1e-15)
    with pytest.raises(TypeError, match="view of a traced array"):
        dualad.jacobian(fun, mode="reverse")(x)
