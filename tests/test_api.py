"""Public transforms: ``derivative``, ``jvp``, ``jacobian``, ``grad``.

Oracles: closed forms, SciPy's ``rosen_der``/``rosen_hess``, ``fd_jacobian``, and J @ v
for ``jvp``.  Every result is float64 with the shape SciPy expects.
"""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import minimize, rosen, rosen_der, rosen_hess

import dualad
from dualad.forward import CHUNK_THRESHOLD, chunk_size
from conftest import ATOL_FD, RTOL_FD, central_diff, fd_jacobian


def _is_float64(r):
    return isinstance(r, (np.ndarray, np.float64)) and np.asarray(r).dtype == np.float64


# -- derivative ----------------------------------------------------------------------------

# f, [f', f'', f''']
SCALAR = {
    "sin": (np.sin, [np.cos, lambda x: -np.sin(x), lambda x: -np.cos(x)]),
    "exp": (np.exp, [np.exp, np.exp, np.exp]),
    "cube": (lambda x: x ** 3, [lambda x: 3 * x ** 2, lambda x: 6 * x, lambda x: 6.0]),
    "log": (np.log, [lambda x: 1 / x, lambda x: -1 / x ** 2, lambda x: 2 / x ** 3]),
    "recip": (lambda x: 1.0 / x, [lambda x: -1 / x ** 2, lambda x: 2 / x ** 3,
                                  lambda x: -6 / x ** 4]),
    "x-sin-x": (lambda x: x * np.sin(x),
                [lambda x: np.sin(x) + x * np.cos(x),
                 lambda x: 2 * np.cos(x) - x * np.sin(x),
                 lambda x: -3 * np.sin(x) - x * np.cos(x)]),
    "sqrt": (np.sqrt, [lambda x: 0.5 / np.sqrt(x), lambda x: -0.25 * x ** -1.5,
                       lambda x: 0.375 * x ** -2.5]),
    "tanh": (np.tanh, [lambda x: 1 - np.tanh(x) ** 2,
                       lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2),
                       lambda x: (1 - np.tanh(x) ** 2) * (6 * np.tanh(x) ** 2 - 2)]),
    "pow-x-x": (lambda x: x ** x,
                [lambda x: x ** x * (np.log(x) + 1),
                 lambda x: x ** x * ((np.log(x) + 1) ** 2 + 1 / x),
                 lambda x: x ** x * ((np.log(x) + 1) ** 3 + 3 * (np.log(x) + 1) / x
                                     - 1 / x ** 2)]),
    "constant": (lambda x: 4.0, [lambda x: 0.0] * 3),
}


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("name", list(SCALAR))
@pytest.mark.parametrize("x", [0.7, 1.9])
def test_derivative_scalar_closed_form(name, order, x):
    f, ds = SCALAR[name]
    d = dualad.derivative(f, order)(x)
    assert _is_float64(d) and np.ndim(d) == 0, f"{name}: {type(d)}"
    assert_allclose(d, ds[order - 1](x), rtol=1e-13, atol=1e-14,
                    err_msg=f"d^{order}/dx^{order} {name} at {x}")


@pytest.mark.parametrize("order", [1, 2, 3])
def test_derivative_array_output_closed_form(order):
    f = lambda t: np.array([t ** 2, np.sin(t), 3.0, np.exp(2 * t)])  # noqa: E731
    t = 0.8
    expected = {1: [2 * t, np.cos(t), 0.0, 2 * np.exp(2 * t)],
                2: [2.0, -np.sin(t), 0.0, 4 * np.exp(2 * t)],
                3: [0.0, -np.cos(t), 0.0, 8 * np.exp(2 * t)]}[order]
    d = dualad.derivative(f, order)(t)
    assert isinstance(d, np.ndarray) and d.dtype == np.float64 and d.shape == (4,)
    assert_allclose(d, expected, rtol=1e-13, atol=1e-14,
                    err_msg=f"order {order} of an array output")


@pytest.mark.parametrize("order", [1, 2, 3])
def test_derivative_2d_array_output(order):
    f = lambda t: np.outer(np.array([1.0, t]), np.array([t ** 3, 2.0, t]))  # noqa: E731
    t = 1.3
    d = dualad.derivative(f, order)(t)
    assert d.shape == (2, 3) and d.dtype == np.float64
    h = lambda s: f(s)  # noqa: E731
    if order == 1:
        expected = np.array([[3 * t ** 2, 0, 1], [4 * t ** 3, 2, 2 * t]])
    elif order == 2:
        expected = np.array([[6 * t, 0, 0], [12 * t ** 2, 0, 2]])
    else:
        expected = np.array([[6, 0, 0], [24 * t, 0, 0]])
    assert_allclose(d, expected, rtol=1e-13, atol=1e-13, err_msg=f"outer, order {order}")
    if order == 1:
        assert_allclose(d, central_diff(h, t), rtol=RTOL_FD, atol=ATOL_FD, err_msg="FD")


@pytest.mark.parametrize("order", [1, 2, 3])
def test_derivative_list_output(order):
    d = dualad.derivative(lambda t: [t ** 2, t ** 3], order)(2.0)
    expected = {1: [4.0, 12.0], 2: [2.0, 12.0], 3: [0.0, 6.0]}[order]
    assert isinstance(d, np.ndarray) and d.dtype == np.float64
    assert_allclose(d, expected, rtol=1e-14, atol=0, err_msg=f"list output, order {order}")


@pytest.mark.parametrize("x", [2, 2.0, np.float64(2.0), np.array(2.0), np.int64(2),
                               np.float32(2.0), True],
                         ids=["int", "float", "np.float64", "0d", "np.int64", "np.float32",
                              "bool"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_derivative_input_types(x, order):
    d = dualad.derivative(lambda t: t ** 4, order)(x)
    xv = float(x)
    expected = [4 * xv ** 3, 12 * xv ** 2, 24 * xv][order - 1]
    assert _is_float64(d), f"{type(x).__name__}: {type(d)}"
    assert_allclose(d, expected, rtol=1e-14, atol=0, err_msg=f"x={x!r}, order {order}")


@pytest.mark.parametrize("order", [1, 2, 3])
def test_derivative_args_passed_through(order):
    f = lambda t, a, b: a * t ** 3 + b  # noqa: E731
    d = dualad.derivative(f, order)(2.0, 5.0, np.array([1.0, 2.0]))
    expected = [60.0, 60.0, 30.0][order - 1]
    assert_allclose(d, [expected, expected], rtol=1e-14, atol=0, err_msg="args")


def test_derivative_matches_central_diff():
    f = lambda t: np.sum(np.sin(t * np.arange(1.0, 4.0)) ** 2) / (1 + t ** 2)  # noqa: E731
    for t in (0.3, -1.1):
        assert_allclose(dualad.derivative(f)(t), central_diff(f, t), rtol=RTOL_FD,
                        atol=ATOL_FD, err_msg=f"at {t}")


def test_derivative_repr_and_name():
    df = dualad.derivative(np.sin)
    assert "derivative" in repr(df) and "sin" in repr(df)


# -- jvp -----------------------------------------------------------------------------------

JVP_FUNCS = {
    "elementwise": (lambda x: np.sin(x) * x ** 2, (4,)),
    "reduce": (lambda x: np.sum(np.exp(x)), (4,)),
    "matrix": (lambda x: x @ x.T, (2, 3)),
    "mixed": (lambda x: np.concatenate([np.cumsum(x), [np.prod(x)]]), (3,)),
    "0d-in": (lambda x: np.array([x, x ** 2]), ()),
    "0d-out": (lambda x: np.linalg.norm(x), (3,)),
}


@pytest.mark.parametrize("name", list(JVP_FUNCS))
def test_jvp_equals_jacobian_times_v(name, rng):
    f, shape = JVP_FUNCS[name]
    x = rng.standard_normal(shape)
    v = rng.standard_normal(shape)
    value, tangent = dualad.jvp(f, x, v)
    jac = fd_jacobian(f, x)
    nx = len(shape)
    expected = np.tensordot(jac, v, axes=nx) if nx else jac * v
    assert _is_float64(value) and _is_float64(tangent), name
    assert np.shape(value) == np.shape(f(x)) and np.shape(tangent) == np.shape(f(x)), name
    assert_allclose(value, f(x), rtol=1e-14, atol=0, err_msg=f"jvp value {name}")
    assert_allclose(tangent, expected, rtol=RTOL_FD, atol=ATOL_FD, err_msg=f"jvp {name}")
    # exact against dualad's own Jacobian
    jd = dualad.jacobian(f)(x)
    expected = np.tensordot(jd, v, axes=nx) if nx else jd * v
    assert_allclose(tangent, expected, rtol=1e-13, atol=1e-14, err_msg=f"jvp vs J {name}")


def test_jvp_is_linear_in_v(rng):
    f = lambda x: np.tanh(x) * np.sum(x ** 2)  # noqa: E731
    x, v, w = rng.standard_normal((3, 5))
    _, a = dualad.jvp(f, x, v)
    _, b = dualad.jvp(f, x, w)
    _, c = dualad.jvp(f, x, 2.0 * v - 3.0 * w)
    assert_allclose(c, 2.0 * a - 3.0 * b, rtol=1e-12, atol=1e-13, err_msg="linearity")


def test_jvp_args_passed_through(rng):
    f = lambda x, a, b: a * x ** 2 + b  # noqa: E731
    x, v = rng.standard_normal((2, 3))
    value, tangent = dualad.jvp(f, x, v, 3.0, np.ones(3))
    assert_allclose(value, 3.0 * x ** 2 + 1.0, rtol=1e-15, atol=0, err_msg="value")
    assert_allclose(tangent, 6.0 * x * v, rtol=1e-15, atol=0, err_msg="tangent")


def test_jvp_does_not_modify_inputs(rng):
    x, v = rng.standard_normal((2, 4))
    xb, vb = x.copy(), v.copy()
    dualad.jvp(lambda z: z * 2.0, x, v)
    assert_array_equal(x, xb)
    assert_array_equal(v, vb)


# -- jacobian ------------------------------------------------------------------------------

SHAPES = [((), ()), ((), (3,)), ((3,), ()), ((3,), (2,)), ((2, 3), ()), ((2, 3), (4,)),
          ((3,), (2, 2)), ((2, 2), (3, 2)), ((1,), (1,)), ((2, 1, 2), (1, 3))]


def _shaped_function(out_shape):
    def f(x):
        s = np.sum(np.sin(x) * np.arange(1.0, np.size(x) + 1).reshape(np.shape(x)))
        base = np.arange(1.0, int(np.prod(out_shape)) + 1).reshape(out_shape)
        return base * s + base ** 2 * np.sum(x ** 2)
    return f


@pytest.mark.parametrize("chunk", [1, 3, None], ids=lambda c: f"chunk{c}")
@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: f"{s[0]}->{s[1]}")
def test_jacobian_shape_is_out_shape_plus_x_shape(shapes, chunk, rng):
    x_shape, out_shape = shapes
    f = _shaped_function(out_shape)
    x = rng.standard_normal(x_shape)
    jac = dualad.jacobian(f, chunk=chunk)(x)
    assert np.shape(jac) == out_shape + x_shape, \
        f"{x_shape}->{out_shape}: got {np.shape(jac)}"
    assert _is_float64(jac), type(jac)
    assert_allclose(jac, fd_jacobian(f, x), rtol=RTOL_FD, atol=ATOL_FD,
                    err_msg=f"{x_shape}->{out_shape}")


@pytest.mark.parametrize("x", [1.5, 2, np.float64(1.5), np.array(1.5)],
                         ids=["float", "int", "np.float64", "0d"])
def test_jacobian_scalar_to_scalar_shape(x):
    """A scalar x and a 0-d output: the Jacobian is 0-d (out_shape + x_shape == ())."""
    jac = dualad.jacobian(lambda t: np.sin(t) * t)(x)
    xv = float(x)
    assert np.shape(jac) == (), f"got shape {np.shape(jac)}"
    assert_allclose(jac, np.cos(xv) * xv + np.sin(xv), rtol=1e-14, atol=0, err_msg="value")


@pytest.mark.parametrize("x", [1.5, np.array(1.5)], ids=["float", "0d"])
def test_jacobian_scalar_x_array_output(x):
    jac = dualad.jacobian(lambda t: np.array([t, t ** 2, 1.0]))(x)
    assert np.shape(jac) == (3,)
    assert_allclose(jac, [1.0, 3.0, 0.0], rtol=1e-15, atol=0, err_msg="scalar x")


def test_jacobian_args_passed_through(rng):
    f = lambda x, a, b=None: a @ x + (0.0 if b is None else b)  # noqa: E731
    a = rng.standard_normal((2, 3))
    x = rng.standard_normal(3)
    assert_array_equal(dualad.jacobian(f)(x, a), a, err_msg="args")
    assert_array_equal(dualad.jacobian(f)(x, a, np.ones(2)), a, err_msg="two args")


def test_jacobian_is_plain_contiguous_ndarray(rng):
    jac = dualad.jacobian(lambda z: z.T @ z)(rng.standard_normal((3, 2)))
    assert type(jac) is np.ndarray and jac.flags.c_contiguous and jac.dtype == np.float64


def test_jacobian_constant_function():
    jac = dualad.jacobian(lambda z: np.ones((2, 2)))(np.arange(3.0))
    assert_array_equal(jac, np.zeros((2, 2, 3)))
    assert jac.dtype == np.float64


def test_jacobian_empty_input():
    jac = dualad.jacobian(lambda z: np.concatenate([z, [1.0]]))(np.zeros(0))
    assert jac.shape == (1, 0) and jac.dtype == np.float64


@pytest.mark.parametrize("mode", ["forward", "auto"])
def test_jacobian_modes(mode, rng):
    x = rng.standard_normal(3)
    assert_allclose(dualad.jacobian(np.sin, mode=mode)(x), np.diag(np.cos(x)), rtol=1e-15,
                    atol=0, err_msg=mode)


# -- grad ----------------------------------------------------------------------------------

@pytest.mark.parametrize("chunk", [None, 1, 5])
@pytest.mark.parametrize("n", [2, 10, 100])
def test_grad_rosen_matches_scipy(n, chunk, rng):
    x = rng.uniform(-2.0, 2.0, n)
    g = dualad.grad(rosen, chunk=chunk)(x)
    assert type(g) is np.ndarray and g.dtype == np.float64 and g.shape == (n,)
    assert_allclose(g, rosen_der(x), rtol=1e-13, atol=0, err_msg=f"rosen_der, n={n}")


@pytest.mark.parametrize("n", [2, 10])
def test_hessian_of_rosen_via_jacobian_of_grad(n, rng):
    x = rng.uniform(-2.0, 2.0, n)
    hess = dualad.jacobian(dualad.grad(rosen))(x)
    assert_allclose(hess, rosen_hess(x), rtol=1e-13, atol=1e-12, err_msg=f"rosen_hess {n}")


def test_grad_has_shape_of_2d_x(rng):
    x = rng.standard_normal((3, 4))
    f = lambda z: np.sum(z ** 3) + np.sum(z[0] * z[1])  # noqa: E731
    g = dualad.grad(f)(x)
    assert g.shape == (3, 4) and g.dtype == np.float64
    expected = 3 * x ** 2
    expected[0] += x[1]
    expected[1] += x[0]
    assert_allclose(g, expected, rtol=1e-14, atol=1e-15, err_msg="2-d x")


def test_grad_scalar_x():
    g = dualad.grad(lambda t: t ** 3)(2.0)
    assert np.shape(g) == () and _is_float64(g)
    assert_allclose(g, 12.0, rtol=1e-15, atol=0, err_msg="scalar x")


def test_grad_args_and_integer_input():
    g = dualad.grad(lambda z, a: a * np.sum(z ** 2))(np.array([1, 2, 3]), 0.5)
    assert g.dtype == np.float64
    assert_array_equal(g, [1.0, 2.0, 3.0])


def test_grad_of_python_float_output_and_dual_output():
    assert_array_equal(dualad.grad(lambda z: 1.0)(np.ones(2)), [0.0, 0.0])
    assert_array_equal(dualad.grad(lambda z: z[0] * z[1])(np.array([2.0, 3.0])), [3.0, 2.0])


def test_grad_plugs_into_scipy_minimize():
    x0 = np.array([1.3, 0.7, 0.8, 1.9, 1.2])
    res = minimize(rosen, x0, jac=dualad.grad(rosen), method="BFGS")
    ref = minimize(rosen, x0, jac=rosen_der, method="BFGS")
    assert res.success, res.message
    assert res.nit == ref.nit and res.njev == ref.njev
    assert_allclose(res.x, ref.x, rtol=1e-10, atol=1e-12, err_msg="same path as rosen_der")
    assert_allclose(res.x, np.ones(5), rtol=0, atol=1e-4, err_msg="BFGS on rosen")


def test_grad_plugs_into_scipy_newton_cg_with_hess():
    x0 = np.array([-1.2, 1.0, 0.8])
    hess = dualad.jacobian(dualad.grad(rosen))
    res = minimize(rosen, x0, jac=dualad.grad(rosen), hess=hess, method="trust-exact")
    assert res.success, res.message
    assert_allclose(res.x, np.ones(3), rtol=0, atol=1e-6, err_msg="trust-exact on rosen")


# -- chunking ------------------------------------------------------------------------------

@pytest.mark.parametrize("n,expected", [(1, 1), (2, 2), (12, 12), (13, 7), (24, 12),
                                        (25, 9), (100, 12), (0, 1)])
def test_chunk_size(n, expected):
    assert CHUNK_THRESHOLD == 12
    assert chunk_size(n) == expected


@pytest.mark.parametrize("n,chunk,expected", [(100, 5, 5), (3, 10, 3), (13, 13, 13),
                                              (13, 1, 1)])
def test_chunk_size_override(n, chunk, expected):
    assert chunk_size(n, chunk) == expected


@pytest.mark.parametrize("chunk", [None, 1, 5])
@pytest.mark.parametrize("n", [1, 12, 13, 100])
def test_jacobian_sweeps_and_values_across_chunk_sizes(n, chunk, rng):
    calls = []

    def f(x):
        calls.append(x.lanes if isinstance(x, dualad.DualArray) else None)
        return np.cumsum(np.sin(x)) * x[0]

    x = rng.standard_normal(n)
    jac = dualad.jacobian(f, chunk=chunk)(x)
    k = chunk_size(n, chunk)
    assert len(calls) == math.ceil(n / k), f"n={n}, chunk={chunk}: {len(calls)} sweeps"
    assert max(calls) == k and sum(calls) == n, calls
    expected = np.tril(np.ones((n, n))) * np.cos(x) * x[0]
    expected[:, 0] += np.cumsum(np.sin(x))
    assert_allclose(jac, expected, rtol=1e-13, atol=1e-14, err_msg=f"n={n}, chunk={chunk}")


# -- float64 everywhere --------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda: dualad.derivative(lambda t: t * 2)(3),
    lambda: dualad.derivative(lambda t: 2)(3),
    lambda: dualad.derivative(lambda t: np.array([1, 2]))(3.0),
    lambda: dualad.derivative(lambda t: t * 2, 2)(3),
    lambda: dualad.jacobian(lambda z: z * 2)(np.arange(3)),
    lambda: dualad.jacobian(lambda z: 7)(np.arange(3)),
    lambda: dualad.grad(lambda z: np.sum(z))(np.arange(3, dtype=np.int32)),
    lambda: dualad.jvp(lambda z: z, np.arange(3), np.arange(3))[0],
    lambda: dualad.jvp(lambda z: z, np.arange(3), np.arange(3))[1],
    lambda: dualad.jvp(lambda z: 5, np.arange(3), np.arange(3))[1],
], ids=["derivative", "derivative-const", "derivative-int-array", "derivative2",
        "jacobian", "jacobian-const", "grad-int32", "jvp-value", "jvp-tangent",
        "jvp-const"])
def test_results_are_float64(call):
    r = call()
    assert _is_float64(r), f"{type(r)} {getattr(r, 'dtype', None)}"


def test_nested_second_derivative_with_custom_rule_sinc():
    def sinc_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        px = np.pi * x
        d = (np.cos(px) * px - np.sin(px)) / (np.pi * x ** 2)
        return np.sin(px) / px, d * t

    dualad.defrule(np.sinc, sinc_jvp)
    try:
        x = 0.5
        f = lambda z: np.sin(np.pi * z) / (np.pi * z)  # noqa: E731
        exact2 = dualad.derivative(f, order=2)(x)   # plain NumPy code, HyperDual
        np.testing.assert_allclose(dualad.derivative(dualad.derivative(np.sinc))(x), exact2,
                                   rtol=1e-12)
        np.testing.assert_allclose(dualad.derivative(np.sinc, order=2)(x), exact2,
                                   rtol=1e-12)
    finally:
        from dualad.rules import registry
        registry._FUNCTIONS["forward"].pop(np.sinc, None)
        registry._CUSTOM.discard(np.sinc)
