"""``HessianArray`` (dualad/_hyper.pyx): one-evaluation forward-mode Hessians.

``dualad.hessian(f, mode="forward")`` evaluates ``f`` once on HessianArray values for up
to ``second.HYPER_MAX_N`` inputs, and falls back to the nested forward sweeps when ``f``
uses something the type lacks.  Checked here:

* every rule of the table, unary and binary (both operands traced, or one a float, an
  ndarray or a NumPy scalar; the power with a constant exponent): value, gradient and
  Hessian against central differences of the exact reverse-mode gradient (an oracle
  that uses no second partial), and against the nested forward sweeps (the same rules
  combined by another engine, to rounding);
* Rosenbrock against SciPy's ``rosen_der``/``rosen_hess`` for several ``n``;
* each structural operation, broadcasting, products with constant matrices;
* scalar outputs, the error for vector outputs, the errors of ``float()``/``int()``;
* the fallback (functions the type does not support give the nested sweeps' Hessian)
  and its per-function memory; non-finite values as in the nested sweeps.
"""

import math

import numpy as np
import pytest
import scipy.optimize as so
from conftest import ATOL_FD, BINARY_RULES, RTOL_FD, UNARY_RULES, fd_jacobian
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import dualad
from dualad import _hyper, second
from dualad._errors import float_conversion
from dualad.rules._elementwise import ufunc_of

#: HessianArray against the nested sweeps: the same partials, combined differently
RTOL_PATHS = 1e-12
ATOL_PATHS = 1e-12
#: against SciPy's hand-written Rosenbrock derivatives
RTOL_ROSEN = 1e-13
SETTINGS = settings(max_examples=15, deadline=None, derandomize=True, database=None)

N = 3
PERM = (2, 0, 1)
PERM2 = (1, 2, 0)


def _hyper_vgh(f, x, *args):
    """(value, gradient, Hessian) from the HessianArray path; fails if it fell back."""
    out = _hyper.hessian_of(f, np.asarray(x, dtype=float), args)
    return tuple(np.asarray(o) for o in out)


def _nested_vgh(f, x, *args, monkeypatch=None):
    """The nested forward sweeps (the path HessianArray falls back to)."""
    saved = second.HYPER_MAX_N
    second.HYPER_MAX_N = -1
    try:
        return tuple(np.asarray(o) for o in
                     second.value_grad_hessian(f, np.asarray(x, dtype=float), args,
                                               "forward"))
    finally:
        second.HYPER_MAX_N = saved


def _fd_hessian(f, x, *args):
    """Central differences of the exact (reverse-mode) gradient."""
    grad = dualad.grad(f, mode="reverse")
    return fd_jacobian(lambda y: grad(y, *args), x)


def _same(a, b, what, rtol=RTOL_PATHS, atol=ATOL_PATHS):
    a = np.asarray(a)
    b = np.asarray(b)
    assert a.shape == b.shape, what
    assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{what}: nans")
    assert_array_equal(np.where(np.isinf(a), a, 0.0), np.where(np.isinf(b), b, 0.0),
                       err_msg=f"{what}: infinities")
    fin = np.isfinite(a) & np.isfinite(b)
    assert_allclose(a[fin], b[fin], rtol=rtol, atol=atol, err_msg=what)


def _check(f, x, what, *args, fd=True):
    value, g, h = _hyper_vgh(f, x, *args)
    assert value.dtype == np.float64 and value.shape == ()
    assert g.shape == np.shape(x) and h.shape == np.shape(x) * 2
    assert_array_equal(h, np.swapaxes(h.reshape(g.size, g.size), 0, 1).reshape(h.shape),
                       err_msg=f"{what}: symmetric")
    # (C's libm and NumPy's SIMD functions may differ in the last bit)
    assert_allclose(value, f(np.asarray(x, dtype=float), *args), rtol=1e-13, atol=1e-15,
                    err_msg=f"{what}: value")
    nv, ng, nh = _nested_vgh(f, x, *args)
    _same(value, nv, f"{what}: value")
    _same(g, ng, f"{what}: gradient")
    _same(h, nh, f"{what}: Hessian")
    if fd:
        ref = _fd_hessian(f, np.asarray(x, dtype=float), *args)
        scale = max(1.0, float(np.max(np.abs(ref))))
        assert_allclose(h, ref, rtol=RTOL_FD, atol=ATOL_FD * scale,
                        err_msg=f"{what}: Hessian against differences")


def _inner(rule, i, perm):
    """A map R^3 -> the interior of the rule's domain for argument i, with a Hessian."""
    lo, hi = rule.domain[i]
    mid, rad = 0.5 * (lo + hi), 0.45 * (hi - lo)
    p = list(perm)
    return lambda x: mid + rad * (0.5 * x + 0.2 * x * x[p])


def _points(rng, count=3):
    return [rng.uniform(-0.8, 0.8, N) for _ in range(count)]


# ---------------------------------------------------------------------------------------
# the rule table

@pytest.mark.parametrize("rule", UNARY_RULES, ids=[r.name for r in UNARY_RULES])
def test_unary_rule(rule, rng):
    uf = ufunc_of(rule.name)
    u = _inner(rule, 0, PERM)
    c = np.array([1.0, -0.7, 0.4])

    def f(x):
        return np.sum(c * uf(u(x)))

    for x in _points(rng):
        _check(f, x, rule.name)


@pytest.mark.parametrize("rule", BINARY_RULES, ids=[r.name for r in BINARY_RULES])
def test_binary_rule(rule, rng):
    uf = ufunc_of(rule.name)
    u = _inner(rule, 0, PERM)
    w = _inner(rule, 1, PERM2)
    c = np.array([0.9, -0.6, 0.3])
    lo0, hi0 = rule.domain[0]
    lo1, hi1 = rule.domain[1]
    k0 = float(lo0 + 0.37 * (hi0 - lo0))
    k1 = float(lo1 + 0.61 * (hi1 - lo1))
    cases = {
        "both traced": lambda x: np.sum(c * uf(u(x), w(x))),
        "float second": lambda x: np.sum(c * uf(u(x), k1)),
        "float first": lambda x: np.sum(c * uf(k0, w(x))),
        "ndarray second": lambda x: np.sum(uf(u(x), k1 + 0.1 * c)),
        "ndarray first": lambda x: np.sum(uf(k0 + 0.1 * c, w(x))),
        "numpy scalar": lambda x: np.sum(c * uf(np.float64(k0), w(x))),
        "0-d traced with a vector": lambda x: np.sum(c * uf(u(x)[1], w(x))),
    }
    for x in _points(rng, 2):
        for name, f in cases.items():
            _check(f, x, f"{rule.name}, {name}")


@pytest.mark.parametrize("exponent", [2, 3, 0.5, -1.5, 1, 0, 2.0])
def test_power_constant_exponent(exponent, rng):
    """``x ** c`` uses only the base's partials (as HyperDual and DualArray do)."""
    def f(x):
        return np.sum((1.5 + 0.5 * x * x[::-1]) ** exponent)

    for x in _points(rng):
        _check(f, x, f"** {exponent}")


def test_operators_both_sides(rng):
    def f(x):
        y = 2.0 + x
        y = 3 - y * x
        y = y / 1.5 + 2.0 / (3.0 + x ** 2)
        y = -y + abs(x) + (+x)
        y = y * np.arange(1.0, 4.0) + np.arange(3) * y
        return np.sum(y ** 2) + 2 ** x[0] + np.float64(2.0) * x[1]

    for x in _points(rng):
        _check(f, x, "operators")


# ---------------------------------------------------------------------------------------
# Rosenbrock

def _rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


@pytest.mark.parametrize("n", [2, 3, 10, 30, 64])
def test_rosen_against_scipy(n, rng):
    x = rng.uniform(-1.5, 1.5, n)
    value, g, h = _hyper_vgh(_rosen, x)
    assert value == _rosen(x)  # np.sum's pairwise summation, to the bit
    assert_allclose(g, so.rosen_der(x), rtol=RTOL_ROSEN, atol=1e-12)
    assert_allclose(h, so.rosen_hess(x), rtol=RTOL_ROSEN, atol=1e-12)


@SETTINGS
@given(st.lists(st.floats(-2.0, 2.0), min_size=2, max_size=12))
def test_rosen_property(xs):
    x = np.array(xs)
    value, g, h = second.value_grad_hessian(_rosen, x, (), "forward")
    assert_allclose(value, _rosen(x), rtol=1e-15)
    assert_allclose(h, so.rosen_hess(x), rtol=RTOL_ROSEN, atol=1e-11)
    assert_allclose(g, so.rosen_der(x), rtol=RTOL_ROSEN, atol=1e-11)


@pytest.mark.parametrize("m", [0, 1, 7, 8, 9, 127, 128, 129, 300])
def test_sum_value_is_numpys(m, rng):
    x = rng.standard_normal(m) * 10.0 ** rng.integers(-6, 6, m)
    if m <= second.HYPER_MAX_N:
        value = _hyper_vgh(lambda y: np.sum(y * 1.0), x)[0]
    else:  # more inputs than one evaluation takes: the sum of a constant-gradient array
        value = _hyper_vgh(lambda y: np.sum(y[0] * 0.0 + x), x[:1])[0]
    assert value == np.sum(x)


# ---------------------------------------------------------------------------------------
# structure

A = np.array([[1.0, -2.0, 0.5], [0.3, 0.7, -1.1]])
B = np.array([[0.2, 1.0], [-0.4, 0.6], [1.3, -0.8]])

STRUCTURAL = {
    "int index": lambda x: x[0] * x[-1] ** 2,
    "negative step": lambda x: np.sum(x[::-1] * x ** 2) + np.sum(x[-1:0:-2] ** 3),
    "ellipsis and None": lambda x: np.sum(x[..., None] * x[None, ...] ** 2),
    "2-d index": lambda x: np.sum(x.reshape(2, 3)[1, ::-1]
                                  * x.reshape(2, 3)[:, 0:2][0, 1]),
    "fancy index": lambda x: np.sum(x[[0, 2, 2, 5]] ** 3),
    "boolean mask": lambda x: np.sum(x[np.array([1, 0, 1, 1, 0, 1], bool)] ** 3),
    "sum axis": lambda x: np.sum(np.sum(x.reshape(2, 3) ** 2, axis=0) ** 2),
    "sum axis keepdims": lambda x: np.sum(
        x.reshape(2, 3) * np.sum(x.reshape(2, 3) ** 2, axis=-1, keepdims=True)),
    "sum axis to a scalar": lambda x: np.sum(x ** 3, axis=0) * np.mean(x, axis=-1) ** 2,
    "sum keepdims": lambda x: np.sum(np.sum(x.reshape(2, 3) ** 2, keepdims=True) * x),
    "mean": lambda x: np.mean(np.mean(x.reshape(3, 2), axis=1) ** 3) + np.mean(x ** 2),
    "methods": lambda x: (x.reshape(3, 2).T.ravel() ** 3).sum() + x.reshape((2, 3)).mean()
    * x.transpose()[0] + x.reshape(2, 3).transpose(1, 0).flatten()[1] ** 2,
    "transpose": lambda x: np.sum(np.transpose(x.reshape(2, 3)) * x.reshape(3, 2) ** 2),
    "matmul const @ x": lambda x: np.sum((A @ x[:3]) ** 2 * (A @ x[3:])),
    "matmul x @ const": lambda x: np.sum((x[:3] @ B) ** 3),
    "matmul 2-d": lambda x: np.sum((A @ x.reshape(3, 2)) ** 2)
    + np.sum((x.reshape(2, 3) @ B) ** 3),
    "dot": lambda x: np.dot(x[:3], x[3:]) + np.dot(A, x[:3] ** 2).sum() + x[:3].dot(B[:, 0])
    ** 2 + np.dot(x[0], x[1:]).sum() ** 2,
    "broadcasting": lambda x: np.sum((x[:3][:, None] * x[3:][None, :]) ** 2)
    + np.sum(x.reshape(2, 3) * np.array([1.0, 2.0, 3.0]) * x[:2, None] ** 2)
    + np.sum(np.array([[1.0], [2.0]]) / (2.0 + x[:3])),
    "where": lambda x: np.sum(np.where(x > 0.0, x ** 3, np.sin(x)))
    + np.sum(np.where([True, False] * 3, x ** 2, 1.5)),
    "concatenate and stack": lambda x: np.sum(
        np.concatenate([x[:2] ** 2, np.ones(2), x[3:]]) ** 2)
    + np.sum(np.stack([x, x ** 2]) ** 2),
    "iteration": lambda x: sum(xi ** 3 for xi in x) * len(x),
    # elements depend on ranges of inputs ("windows"): banded, with gaps, widened by a
    # sum, with constant elements (empty windows) among them
    "windows: banded chain": lambda x: np.sum(x[:-2] * x[1:-1] ** 2 * np.exp(x[2:])),
    "windows: gaps": lambda x: np.sum(np.sin(x[:-3] * x[3:]) ** 2 + x[:-3] / (2.0 + x[3:])),
    "windows: widened": lambda x: np.sum(x) * x[0] + np.sum(np.exp(np.sum(x[:3]) * x[3:])),
    "windows: empty": lambda x: np.sum((np.concatenate([np.ones(3), x[:3]]) * x) ** 2
                                       + np.where([1, 0, 1, 0, 1, 0], 0.5, x) ** 3),
    "branch on a value": lambda x: np.sum(x ** 2) if x[0] > 0.0 else np.sum(x ** 3),
}


@pytest.mark.parametrize("name", STRUCTURAL)
def test_structural(name, rng):
    f = STRUCTURAL[name]
    for x in _points_6(rng):
        _check(f, x, name)


def _points_6(rng):
    return [rng.uniform(-1.0, 1.0, 6) for _ in range(2)]


@pytest.mark.parametrize("n", [20, 40])
def test_dense_coupling(n, rng):
    """Every element depends on every input (full windows), against reverse mode."""
    a = rng.standard_normal((n, n)) / n
    x = rng.uniform(-1.0, 1.0, n)

    def f(x):
        return np.sum(np.tanh(a @ x) * x) + np.sum(x) ** 3 + np.sum(np.sin(x) * x[::-1])

    value, g, h = _hyper_vgh(f, x)
    ref = second.value_grad_hessian(f, x, (), "reverse")
    assert_allclose(value, ref[0], rtol=1e-14)
    assert_allclose(g, ref[1], rtol=1e-12, atol=1e-12)
    assert_allclose(h, ref[2], rtol=1e-12, atol=1e-12)


def test_matrix_input(rng):
    x = rng.uniform(-1.0, 1.0, (2, 3))
    _check(lambda x: np.sum((x @ B) ** 2) + np.sum(np.cos(x) * x[::-1]), x, "matrix x")


def test_scalar_input():
    value, g, h = second.value_grad_hessian(lambda x: x ** 3 * np.sin(x), np.array(0.7), (),
                                            "forward")
    assert value.shape == g.shape == h.shape == ()
    assert_allclose(h, 6 * 0.7 * np.sin(0.7) + 6 * 0.7 ** 2 * np.cos(0.7)
                    - 0.7 ** 3 * np.sin(0.7), rtol=1e-14)
    _check(lambda x: x ** 3 * np.sin(x), np.array(0.7), "0-d input")


def test_extra_args(rng):
    x = rng.uniform(-1.0, 1.0, 4)
    _check(lambda x, a, b: np.sum(a * x ** 3) + b * x[0] * x[1], x, "args",
           np.arange(4.0), 2.5)


def test_constant_output():
    x = np.array([1.0, 2.0])
    value, g, h = second.value_grad_hessian(lambda x: 3.0, x, (), "forward")
    assert value == 3.0 and value.dtype == np.float64
    assert_array_equal(g, np.zeros(2))
    assert_array_equal(h, np.zeros((2, 2)))


@pytest.mark.parametrize("out", [lambda x: x ** 2, lambda x: np.sum(x) * np.ones(1),
                                 lambda x: np.ones(2)])
def test_vector_output_error(out):
    x = np.array([1.0, 2.0])
    with pytest.raises(ValueError) as fast:
        second.value_grad_hessian(out, x, (), "forward")
    with pytest.raises(ValueError) as ref:
        second.value_grad_hessian(out, x, (), "reverse")
    assert str(fast.value) == str(ref.value)
    assert "scalar output" in str(fast.value)


def test_conversion_errors():
    x = np.array([0.5, 2.0])
    for convert, what in ((float, "float() or a math-module function"),
                          (math.sin, "float() or a math-module function"), (int, "int()")):
        with pytest.raises(TypeError) as err:
            _hyper.hessian_of(lambda x, convert=convert: convert(x[0]), x, ())
        assert str(err.value) == float_conversion("HessianArray", what)
    with pytest.raises(TypeError, match="cannot be used as an index"):
        _hyper.hessian_of(lambda x: np.sum(x[x[0]]), x, ())
    with pytest.raises(TypeError, match="complex"):
        _hyper.hessian_of(lambda x: np.sum(x * 1j), x, ())
    with pytest.raises(TypeError, match="float64"):
        _hyper.hessian_of(lambda x: np.sum(x.astype(np.float32)), x, ())
    # the transform reports the same errors
    with pytest.raises(TypeError, match="math-module"):
        dualad.hessian(lambda x: math.exp(x[0]), mode="forward")(x)


# ---------------------------------------------------------------------------------------
# the fallback

class _Counted:
    def __init__(self, f):
        self.f = f
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return self.f(x)


FALLBACK = {
    "np.linalg.norm": lambda x: np.linalg.norm(x) ** 3,
    "np.sort": lambda x: np.sum(np.sort(x) * np.arange(1.0, 5.0) ** 2),
    "np.prod": lambda x: np.prod(x ** 2 + 1.0),
    "item assignment": lambda x: _assign(x),
    "in-place operator": lambda x: _inplace(x),
    "np.asarray": lambda x: np.sum(np.asarray(x) ** 2),
    "nested derivative": lambda x: np.sum(dualad.grad(lambda y: np.sum(y ** 3))(x) * x),
    "reduce method": lambda x: np.add.reduce(x ** 3),
}


def test_errors_of_the_general_path():
    """What the general forward mode refuses, it refuses here too (in its words)."""
    out = np.zeros(8)
    with pytest.raises(TypeError, match="out= is not supported"):
        second.value_grad_hessian(lambda x: np.sum(np.concatenate([x, x ** 2], out=out)),
                                  np.ones(4), (), "forward")
    assert_array_equal(out, np.zeros(8))  # the caller's array is untouched


def _assign(x):
    y = x * 1.0
    y[0] = x[1] ** 2
    return np.sum(y ** 3)


def _inplace(x):
    y = x ** 2
    y += x[0]
    return np.sum(y * x)


@pytest.mark.parametrize("name", FALLBACK)
def test_fallback(name, rng):
    f = _Counted(FALLBACK[name])
    x = rng.uniform(0.2, 1.0, 4)
    with pytest.raises(_hyper.Unsupported):
        _hyper.hessian_of(f, x, ())
    f.calls = 0
    value, g, h = second.value_grad_hessian(f, x, (), "forward")
    assert f.calls == 2  # HessianArray, then the nested sweeps (n <= 12: one sweep)
    assert second._hyper_failed(f)
    ref = _fd_hessian(f.f, x)
    assert_allclose(h, ref, rtol=RTOL_FD, atol=ATOL_FD * max(1.0, np.max(np.abs(ref))))
    assert_allclose(value, f.f(x), rtol=1e-14)
    f.calls = 0
    value2, g2, h2 = second.value_grad_hessian(f, x, (), "forward")
    assert f.calls == 1  # remembered: straight to the nested sweeps
    assert value2 == value
    assert_array_equal(h2, h)
    assert_array_equal(g2, g)


def test_failure_memory_of_methods(rng):
    class Model:
        def loss(self, x):
            return np.linalg.norm(x) ** 3

    m = Model()
    x = rng.uniform(0.2, 1.0, 3)
    second.value_grad_hessian(m.loss, x, (), "forward")
    # a new bound method at each access: remembered by the function behind it
    assert second._hyper_failed(m.loss)


def test_failure_memory_without_weak_references(rng):
    class Loss:
        __slots__ = ()  # no weak reference to an instance

        def __call__(self, x):
            return np.linalg.norm(x) ** 3

    f = Loss()
    x = rng.uniform(0.2, 1.0, 3)
    h = second.value_grad_hessian(f, x, (), "forward")[2]
    assert second._hyper_failed(f)
    assert_allclose(h, _fd_hessian(f, x), rtol=RTOL_FD, atol=ATOL_FD * 10)


def test_supported_functions_are_not_remembered(rng):
    f = _Counted(_rosen)
    x = rng.uniform(-1.0, 1.0, 5)
    second.value_grad_hessian(f, x, (), "forward")
    assert f.calls == 1 and not second._hyper_failed(f)


def test_public_transform_uses_it(rng):
    x = rng.uniform(-1.0, 1.0, 10)
    f = _Counted(_rosen)
    h = dualad.hessian(f, mode="forward")
    assert_allclose(h(x), so.rosen_hess(x), rtol=RTOL_ROSEN, atol=1e-12)
    assert f.calls == 1
    assert_allclose(dualad.hessian(f)(x), so.rosen_hess(x), rtol=RTOL_ROSEN, atol=1e-12)


def test_chunk_below_n_keeps_the_sweeps(rng):
    f = _Counted(_rosen)
    x = rng.uniform(-1.0, 1.0, 6)
    h = second.value_grad_hessian(f, x, (), "forward", chunk=2)[2]
    assert f.calls == 3  # 3 outer sweeps (each with one inner sweep of 6 lanes)
    assert_allclose(h, so.rosen_hess(x), rtol=RTOL_ROSEN, atol=1e-12)


def test_traced_argument_keeps_the_sweeps():
    """Inside another differentiation (a traced extra argument) the nested sweeps run."""
    def outer(a):
        return dualad.hessian(lambda x, a: np.sum(a * x ** 3), mode="forward")(
            np.array([1.0, 2.0]), a)[1, 1]
    # d/da of 6 a x_1 at x_1 = 2
    assert_allclose(dualad.derivative(outer)(0.5), 12.0, rtol=1e-14)


def test_large_intermediates_fall_back():
    """An intermediate of more than MAX_DOUBLES numbers: the nested sweeps."""
    n = 64
    x = np.linspace(0.1, 1.0, n)

    def f(x):
        return np.sum((x[:, None] * x[None, :]) ** 2)  # n * n elements

    assert n * n * (1 + n + n * (n + 1) // 2) > _hyper.MAX_DOUBLES
    with pytest.raises(_hyper.Unsupported, match="too large"):
        _hyper.hessian_of(f, x, ())
    h = second.value_grad_hessian(f, x, (), "forward")[2]
    s2 = np.sum(x ** 2)
    assert_allclose(h, 4.0 * s2 * np.eye(n) + 8.0 * np.outer(x, x), rtol=1e-13)


# ---------------------------------------------------------------------------------------
# non-finite values: as the nested sweeps

NONFINITE = {
    "sqrt at 0": (lambda x: np.sum(np.sqrt(x)), [0.0, 1.0, 4.0]),
    "log at 0": (lambda x: np.sum(np.log(x) * x[::-1]), [0.0, 1.0, 2.0]),
    "masked sqrt": (lambda x: np.sum(np.where(x > 0.0, np.sqrt(np.abs(x)), 0.0)),
                    [0.0, 1.0, -1.0]),
    "zero base": (lambda x: np.sum(x ** x[::-1]), [0.0, 1.5, 2.0]),
    "sqrt of a square": (lambda x: np.sum(np.sqrt(x ** 2)) + x[0] * x[1], [0.0, 1.0, 2.0]),
    "inf input": (lambda x: np.sum(np.exp(-x) * x[::-1]), [np.inf, 1.0, 0.5]),
    "nan input": (lambda x: np.sum(x ** 2), [np.nan, 1.0, 0.5]),
}


@pytest.mark.parametrize("name", NONFINITE)
def test_nonfinite_as_nested(name):
    f, x = NONFINITE[name]
    x = np.array(x)
    with np.errstate(all="ignore"):
        value, g, h = _hyper_vgh(f, x)
        nv, ng, nh = _nested_vgh(f, x)
    _same(value, nv, f"{name}: value")
    _same(g, ng, f"{name}: gradient")
    _same(h, nh, f"{name}: Hessian")


def test_division_by_zero_as_reverse():
    """(The nested sweeps give nan for the whole gradient here; reverse mode and
    HessianArray the exact -inf, inf, 1.)"""
    f = lambda x: x[1] / x[0] + np.sum(x)
    x = np.array([0.0, 1.0, 2.0])
    with np.errstate(all="ignore"):
        fast = _hyper_vgh(f, x)
        ref = second.value_grad_hessian(f, x, (), "reverse")
    for a, b, part in zip(fast, ref, ("value", "gradient", "Hessian")):
        _same(a, b, f"division by 0: {part}")


def test_no_spurious_warnings():
    # x ** 3.0 at a negative base: the exponent's partial (log of a negative number)
    # is never asked for, so no floating-point flag may reach NumPy
    x = np.array([-1.0, 2.0, -3.0])
    with np.errstate(all="raise"):
        value, g, h = _hyper_vgh(lambda x: np.sum(x ** 2 + x ** 3.0), x)
    assert_allclose(value, np.sum(x ** 2 + x ** 3), rtol=1e-15)
    assert_allclose(g, 2.0 * x + 3.0 * x ** 2, rtol=1e-15)
    assert_allclose(h, np.diag(2.0 + 6.0 * x), rtol=1e-15)


def test_array_attributes():
    x = np.arange(6.0).reshape(2, 3)

    def f(h):
        assert h.shape == (2, 3) and h.ndim == 2 and h.size == 6
        assert h.dtype == np.float64 and len(h) == 2
        assert np.shape(h) == (2, 3) and np.ndim(h) == 2 and np.size(h) == 6
        assert_array_equal(h.value, x)
        assert_array_equal(h.gradient.reshape(6, 6), np.eye(6))
        assert_array_equal(h.hessian, np.zeros((2, 3, 6, 6)))
        assert_array_equal(h > 2.0, x > 2.0)
        assert_array_equal(np.isfinite(h), np.ones((2, 3), bool))
        assert "HessianArray" in repr(h)
        return np.sum(h ** 2)

    assert_allclose(_hyper_vgh(f, x)[2], 2.0 * np.eye(6).reshape(2, 3, 2, 3))
