"""Forward-over-reverse's nested fast path: the same numbers as the generic path.

Inside :func:`dualad.hvp` and :func:`dualad.hessian` (``mode="reverse"``) the tape records
values that are DualArrays of the outer level.  ``dualad/_tape.pyx`` records rule-table
ufuncs and the arithmetic operators on such values in one C pass over the rule's
second-order kernel (value, lanes and the partials with their lanes), applies the
partials in the backward sweep by the product rule in C, and handles ``x[a:b]`` and
``np.sum(x)`` without the registry.  None of it may change a number.  Oracles:

* the generic path of the same function: ufuncs called with ``dtype=np.float64`` and
  ``np.sum(..., dtype=np.float64)`` bypass every fast path, and integer-array indices
  bypass the slice shortcut; they evaluate the rule table's partial expressions on
  DualArrays (values, gradients and products to ``RTOL_PATHS``; NaNs and infinities at
  the same places, with the same signs);
* SciPy's ``rosen_hess_prod`` and ``rosen_hess`` (to rounding), and 4th-order central
  differences of the exact gradient for a function mixing every kind of node.
"""

import numpy as np
import pytest
import scipy.optimize as so
from conftest import ATOL_FD, RTOL_FD, fd_jacobian
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import dualad
from dualad import _array, reverse, second
from dualad.rules._elementwise import RULES, ufunc_of

#: fast path against generic path: the same partials, from the kernels' closed forms or
#: from the table's expressions differentiated by forward mode
RTOL_PATHS = 1e-12
ATOL_PATHS = 1e-13
#: against SciPy's hand-written Rosenbrock derivatives
RTOL_ROSEN = 1e-13

GENERIC = {"dtype": np.float64}  # ufunc keywords that force the generic path
SETTINGS = settings(max_examples=20, deadline=None, derandomize=True, database=None)

UNARY = [r for r in RULES if r.arity == 1]
BINARY = [r for r in RULES if r.arity == 2]
# one element, below and above the C loops' thresholds (4096 lane elements: without the
# GIL; 8192 elements: big arrays), a matrix
SIZES = [(1,), (7,), (3, 4), (300,), (9000,)]


def _uf(rule):
    return ufunc_of(rule.name)


def _point(rule, i, shape, rng):
    lo, hi = rule.domain[i]
    return rng.uniform(lo, hi, shape)


def _vgh(f, x, v):
    """(value, gradient, Hessian-vector product) by forward-over-reverse."""
    value, g, hv = second.value_grad_hvp(f, x, v, (), "reverse")
    return np.asarray(value), np.asarray(g), np.asarray(hv)


def _hess(f, x, chunk=None):
    value, g, h = second.value_grad_hessian(f, x, (), "reverse", chunk)
    return np.asarray(value), np.asarray(g), np.asarray(h)


def _same(fast, generic, what):
    for a, b, part in zip(fast, generic, ("value", "gradient", "second order")):
        a = np.asarray(a)
        b = np.asarray(b)
        # non-finite numbers at the same places with the same signs, the rest close
        assert_allclose(np.isnan(a), np.isnan(b), err_msg=f"{what}: {part} nans")
        assert_allclose(np.where(np.isinf(a), a, 0.0), np.where(np.isinf(b), b, 0.0),
                        err_msg=f"{what}: {part} infinities")
        fin = np.isfinite(a) & np.isfinite(b)
        assert_allclose(a[fin], b[fin], rtol=RTOL_PATHS, atol=ATOL_PATHS,
                        err_msg=f"{what}: {part}")


def _unary_pair(uf, w):
    def fast(t):
        return np.sum(w * uf(t))

    def generic(t):
        return np.sum(np.multiply(w, uf(t, **GENERIC), **GENERIC), **GENERIC)
    return fast, generic


# -- one rule: nested fast path against generic path ------------------------------------

@pytest.mark.parametrize("shape", SIZES, ids=str)
@pytest.mark.parametrize("rule", UNARY, ids=lambda r: r.name)
def test_unary_hvp_fast_equals_generic(rule, shape, rng):
    x = _point(rule, 0, shape, rng)
    v = rng.standard_normal(shape)
    fast, generic = _unary_pair(_uf(rule), rng.standard_normal(shape))
    with np.errstate(all="ignore"):
        _same(_vgh(fast, x, v), _vgh(generic, x, v), f"{rule.name} at {shape}")


@pytest.mark.parametrize("rule", UNARY, ids=lambda r: r.name)
def test_unary_hessian_several_lanes_fast_equals_generic(rule, rng):
    # 12 lanes in one sweep, and 80 inputs in two sweeps of 64 and 16 lanes
    for shape, chunk in (((3, 4), None), ((80,), 64)):
        x = _point(rule, 0, shape, rng)
        fast, generic = _unary_pair(_uf(rule), rng.standard_normal(shape))
        with np.errstate(all="ignore"):
            _same(_hess(fast, x, chunk), _hess(generic, x, chunk),
                  f"{rule.name} Hessian at {shape}")


def _binary_cases(rule, shape, rng):
    """(label, fast, generic) for both operands traced and each one a constant (a number
    or a plain array)."""
    uf = _uf(rule)
    m = int(np.prod(shape))
    w = rng.standard_normal(shape)
    cx = _point(rule, 0, shape, rng)
    cy = _point(rule, 1, shape, rng)
    sx = float(_point(rule, 0, (), rng))
    sy = float(_point(rule, 1, (), rng))

    def both(g):
        def f(t):
            a = np.reshape(t[:m], shape)
            b = np.reshape(t[m:], shape)
            return np.sum(w * uf(a, b)) if not g else np.sum(
                np.multiply(w, uf(a, b, **GENERIC), **GENERIC), **GENERIC)
        return f

    def left(c, g):  # the traced operand on the left, a constant on the right
        def f(t):
            a = np.reshape(t[:m], shape)
            return np.sum(w * uf(a, c)) if not g else np.sum(
                np.multiply(w, uf(a, c, **GENERIC), **GENERIC), **GENERIC)
        return f

    def right(c, g):
        def f(t):
            b = np.reshape(t[m:], shape)
            return np.sum(w * uf(c, b)) if not g else np.sum(
                np.multiply(w, uf(c, b, **GENERIC), **GENERIC), **GENERIC)
        return f
    yield "both traced", both(False), both(True)
    yield "constant y (number)", left(sy, False), left(sy, True)
    yield "constant y (array)", left(cy, False), left(cy, True)
    yield "constant x (number)", right(sx, False), right(sx, True)
    yield "constant x (array)", right(cx, False), right(cx, True)


@pytest.mark.parametrize("shape", SIZES, ids=str)
@pytest.mark.parametrize("rule", BINARY, ids=lambda r: r.name)
def test_binary_hvp_fast_equals_generic(rule, shape, rng):
    x = np.concatenate([_point(rule, 0, shape, rng).ravel(),
                        _point(rule, 1, shape, rng).ravel()])
    v = rng.standard_normal(x.shape)
    for label, fast, generic in _binary_cases(rule, shape, rng):
        with np.errstate(all="ignore"):
            _same(_vgh(fast, x, v), _vgh(generic, x, v), f"{rule.name}, {label}, {shape}")


@pytest.mark.parametrize("rule", BINARY, ids=lambda r: r.name)
def test_binary_hessian_several_lanes_fast_equals_generic(rule, rng):
    shape = (5,)
    x = np.concatenate([_point(rule, 0, shape, rng), _point(rule, 1, shape, rng)])
    for label, fast, generic in _binary_cases(rule, shape, rng):
        with np.errstate(all="ignore"):
            _same(_hess(fast, x), _hess(generic, x), f"{rule.name} Hessian, {label}")


@pytest.mark.parametrize("c", [0.0, 1.0, 2.0, 3.0, 0.5, -1.0, -2.5])
@pytest.mark.parametrize("name", ["power", "float_power"])
def test_constant_exponents_fast_equal_generic(name, c, rng):
    # x ** c is recorded with the generic path's own partial c * x ** (c - 1); zero,
    # negative and infinite bases included
    uf = ufunc_of(name)
    x = np.array([0.0, -0.0, 1.5, -2.0, 3.0, np.inf, 0.7, 1e-200, np.nan, -np.inf, 0.0])
    v = np.array([1.0, -1.0, 0.5, 2.0, 0.0, 1.0, -3.0, 1.0, 1.0, 1.0, 0.0])
    w = np.array([1.0, 2.0, -1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0])
    fast, generic = _unary_pair(lambda t, **kw: uf(t, c, **kw), w)
    with np.errstate(all="ignore"):
        _same(_vgh(fast, x, v), _vgh(generic, x, v), f"{name} ** {c}")
    ops = {"power": lambda t: w * t ** c}
    if name == "power":
        # the operator reaches the same path as the ufunc
        with np.errstate(all="ignore"):
            _same(_vgh(lambda t: np.sum(ops[name](t)), x, v), _vgh(fast, x, v),
                  f"operator ** {c}")


# -- zeros, infinities and nans: the annihilation rule ----------------------------------

SPECIAL = [0.0, 1.0, -1.0, 0.5, 2.5, -3.0, 1e-300, 1e300, np.inf, -np.inf, np.nan]
_special = st.sampled_from(SPECIAL)


@SETTINGS
@given(xs=st.lists(_special, min_size=4, max_size=4),
       vs=st.lists(st.sampled_from([0.0, 1.0, -2.0]), min_size=4, max_size=4),
       ws=st.lists(st.sampled_from([0.0, 1.0, -0.5]), min_size=4, max_size=4))
@pytest.mark.parametrize("rule", UNARY, ids=lambda r: r.name)
def test_unary_special_values_fast_equal_generic(rule, xs, vs, ws):
    # a zero direction or a zero weight (cotangent) meets infinite partials
    x, v, w = np.array(xs), np.array(vs), np.array(ws)
    fast, generic = _unary_pair(_uf(rule), w)
    with np.errstate(all="ignore"):
        _same(_vgh(fast, x, v), _vgh(generic, x, v), f"{rule.name} at {x}, {v}, {w}")


@SETTINGS
@given(xs=st.lists(_special, min_size=6, max_size=6),
       vs=st.lists(st.sampled_from([0.0, 1.0, -2.0]), min_size=6, max_size=6),
       ws=st.lists(st.sampled_from([0.0, 1.0, -0.5]), min_size=3, max_size=3))
@pytest.mark.parametrize("rule", BINARY, ids=lambda r: r.name)
def test_binary_special_values_fast_equal_generic(rule, xs, vs, ws):
    uf = _uf(rule)
    x, v, w = np.array(xs), np.array(vs), np.array(ws)

    def fast(t):
        return np.sum(w * uf(t[:3], t[3:]))

    def generic(t):
        return np.sum(np.multiply(w, uf(t[:3], t[3:], **GENERIC), **GENERIC), **GENERIC)
    with np.errstate(all="ignore"):
        _same(_vgh(fast, x, v), _vgh(generic, x, v), f"{rule.name} at {x}, {v}, {w}")


def test_masked_branch_stays_finite_in_the_nested_sweep():
    # sqrt at 0 has an infinite partial; a zero weight (cotangent) and a zero direction
    # annihilate it, in the value's lanes and in the partial's lanes alike
    def f(t):
        return np.sum(np.array([0.0, 1.0, 1.0]) * np.sqrt(t))
    x = np.array([0.0, 4.0, 0.25])
    _, g, hv = _vgh(f, x, np.array([1.0, 0.0, 1.0]))
    assert_allclose(g, [0.0, 0.25, 1.0])
    assert_allclose(hv, [0.0, 0.0, -2.0])


def test_infinite_cotangent_meets_zero_partial_in_the_nested_sweep():
    # sqrt(x**2) at 0: the infinite partial of sqrt (on the generic path: its partial is
    # not finite) sends an infinite cotangent into x**2, whose partial 2x is 0 there
    x = np.array([0.0, -1.5, 0.0, 2.0])
    v = np.array([1.0, 1.0, 0.0, -1.0])
    w = np.array([1.0, 2.0, 1.0, 0.0])

    def fast(t):
        return np.sum(w * np.sqrt(t ** 2)) + np.sum(t * (t * 0.0))

    def generic(t):
        sq = np.sqrt(np.power(t, 2, **GENERIC), **GENERIC)
        zero = np.multiply(t, np.multiply(t, 0.0, **GENERIC), **GENERIC)
        return np.add(np.sum(np.multiply(w, sq, **GENERIC), **GENERIC),
                      np.sum(zero, **GENERIC), **GENERIC)
    with np.errstate(all="ignore"):
        got = _vgh(fast, x, v)
        _same(got, _vgh(generic, x, v), "sqrt(x ** 2)")
    assert np.isfinite(got[1]).all()  # (the gradient; |x|'' at 0 along v != 0 is not)
    assert np.isfinite(got[2][[1, 2, 3]]).all()


# -- whole functions -----------------------------------------------------------------

def _rosen_generic(x):
    # the same arithmetic as benchmarks' rosen, every node on the generic path
    n = x.shape[0]
    hi = x[np.arange(1, n)]
    lo = x[np.arange(n - 1)]
    a = np.subtract(hi, np.power(lo, 2, **GENERIC), **GENERIC)
    b = np.subtract(1.0, lo, **GENERIC)
    s = np.add(np.multiply(100.0, np.power(a, 2, **GENERIC), **GENERIC),
               np.power(b, 2, **GENERIC), **GENERIC)
    return np.sum(s, **GENERIC)


def _rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


@pytest.mark.parametrize("n", [2, 3, 10, 100, 1000, 10_000])
def test_rosen_hess_prod_to_rounding(n):
    rng = np.random.default_rng(n)
    x = rng.uniform(-2.0, 2.0, n)
    v = rng.standard_normal(n)
    hv = dualad.hvp(_rosen, mode="reverse")(x, v)
    ref = so.rosen_hess_prod(x, v)
    assert hv.dtype == np.float64 and hv.shape == (n,)
    assert_allclose(hv, ref, rtol=RTOL_ROSEN, atol=RTOL_ROSEN * np.abs(ref).max())
    if n <= 1000:
        _same(_vgh(_rosen, x, v), _vgh(_rosen_generic, x, v), f"rosen n = {n}")


@pytest.mark.parametrize("n", [2, 10, 100, 130, 300])
def test_rosen_hess_to_rounding(n):
    # one sweep of n lanes up to REVERSE_HESSIAN_ONE_SWEEP inputs, then sweeps of 64
    rng = np.random.default_rng(n + 1)
    x = rng.uniform(-2.0, 2.0, n)
    h = dualad.hessian(_rosen, mode="reverse")(x)
    ref = so.rosen_hess(x)
    assert h.dtype == np.float64 and h.shape == (n, n)
    assert_allclose(h, ref, rtol=RTOL_ROSEN, atol=RTOL_ROSEN * np.abs(ref).max())
    assert_allclose(h, h.T, rtol=0, atol=0)
    if n <= 130:
        _same(_hess(_rosen, x), _hess(_rosen_generic, x), f"rosen Hessian n = {n}")


@pytest.mark.parametrize("n", [5, 9000])
def test_shared_operands_fast_equal_generic(n, rng):
    # one value read by several nodes: its adjoint is summed in the sweep's own buffers
    x = rng.uniform(0.2, 2.0, n)
    v = rng.standard_normal(n)

    def fast(t):
        u = np.sin(t) + np.cos(t) * t
        return np.sum(u * np.exp(t) * t - t / (1.0 + u * u)) + np.sum(t)

    def generic(t):
        g = GENERIC
        u = np.add(np.sin(t, **g), np.multiply(np.cos(t, **g), t, **g), **g)
        a = np.multiply(np.multiply(u, np.exp(t, **g), **g), t, **g)
        b = np.divide(t, np.add(1.0, np.multiply(u, u, **g), **g), **g)
        return np.add(np.sum(np.subtract(a, b, **g), **g), np.sum(t, **g), **g)
    _same(_vgh(fast, x, v), _vgh(generic, x, v), f"shared operands, n = {n}")
    if n == 5:
        _same(_hess(fast, x), _hess(generic, x), "shared operands, Hessian")


SLICES = [slice(1, None), slice(None, -1), slice(None, None, 2), slice(None, None, -1),
          slice(1, -1, 3), slice(-2, 0, -2), slice(3, 3)]


@pytest.mark.parametrize("n", [7, 9000])
def test_slices_of_vectors_fast_equal_generic(n, rng):
    # the sweep scatters a DualArray cotangent into the parent's adjoint in C (a new
    # adjoint, then in place); the generic path indexes with integer arrays
    x = rng.uniform(-1.0, 1.0, n)
    v = rng.standard_normal(n)

    def build(take):
        def f(t):
            total = np.sum(t * t)
            for i, key in enumerate(SLICES):
                part = take(t, key)
                total = total + np.sum(np.sin(part) * (1.0 + i * part))
            return total
        return f
    fast = build(lambda t, key: t[key])
    generic = build(lambda t, key: t[np.arange(n)[key]])
    _same(_vgh(fast, x, v), _vgh(generic, x, v), f"slices, n = {n}")
    if n == 7:
        _same(_hess(fast, x), _hess(generic, x), "slices, Hessian (7 lanes)")


def _mixed(t):
    # slices of a matrix, sums, operands shared by several nodes, numbers, plain arrays
    # and every kind of partial (numbers, operands, the result, kernels)
    a = t[:, 1:] * t[:, :-1]
    b = np.exp(0.3 * t[1:, :]) / (1.0 + t[:-1, :] ** 2)
    c = np.sin(a) - np.arctan2(t[0, 1:], 2.0 + t[1, 1:] ** 2) ** 3  # (broadcasts)
    return np.sum(c) + np.sum(np.sqrt(1.0 + b)) * np.sum(-t) + np.sum(t * t * t)


def test_mixed_function_against_differences_of_the_gradient(rng):
    x = rng.uniform(-1.0, 1.0, (4, 5))
    v = rng.standard_normal(x.shape)
    grad = dualad.grad(_mixed, mode="reverse")
    h = dualad.hessian(_mixed, mode="reverse")(x)
    fd = fd_jacobian(grad, x)
    assert_allclose(h, fd, rtol=RTOL_FD, atol=ATOL_FD)
    hv = dualad.hvp(_mixed, mode="reverse")(x, v)
    assert_allclose(hv, np.tensordot(fd, v, axes=2), rtol=RTOL_FD, atol=ATOL_FD)


def test_results_held_by_the_caller_stay_unchanged():
    # big arrays of one call are freed and allocated again by the next: a result the
    # caller holds must never be written by a later call
    n = 20_000
    x = np.linspace(-1.0, 1.0, n)
    v = np.cos(np.arange(n))
    first = dualad.hvp(_rosen, mode="reverse")(x, v)
    kept = first.copy()
    later = dualad.hvp(_rosen, mode="reverse")(x + 0.5, v)
    assert_allclose(first, kept, rtol=0, atol=0)
    assert_allclose(later, so.rosen_hess_prod(x + 0.5, v), rtol=RTOL_ROSEN, atol=1e-9)


def test_diagnostics_use_the_generic_path_and_see_every_node():
    # with an observer (dualad.trace) the nested path is off: every op is named
    seen = []

    def f(t):
        tape = t.tape
        tape.observer = lambda node, op, value: seen.append(op)
        try:
            return np.sum(np.sin(t[1:]) * t[:-1])
        finally:
            tape.observer = None

    value, g, hv = _vgh(lambda t: f(t), np.array([0.3, 1.0, 2.0]),
                        np.array([1.0, 0.0, 0.5]))
    assert {"sin", "multiply", "sum"} <= set(seen)
    ref = _vgh(lambda t: np.sum(np.sin(t[1:]) * t[:-1]), np.array([0.3, 1.0, 2.0]),
               np.array([1.0, 0.0, 0.5]))
    _same((value, g, hv), ref, "observed against unobserved")


def test_the_nested_path_is_the_one_compared():
    # the comparisons above compare two different paths: plain calls record nested fast
    # nodes, calls with dtype= record the generic path's nodes
    kinds = {}

    def f(t):
        tape = t.tape
        fast = np.sin(t) * t
        generic = np.sin(t, **GENERIC)
        for name, r in (("fast", fast), ("generic", generic)):
            _, _, payload = tape.node_info(r.node)
            kinds[name] = type(payload[0]).__name__
        return np.sum(fast) + np.sum(generic)

    _vgh(f, np.array([0.5, 1.0]), np.array([1.0, 2.0]))
    assert kinds["fast"] == "_NestedVJP"
    assert kinds["generic"] != "_NestedVJP"


def test_inner_gradient_leaves_the_outer_seed_alone():
    # value_and_grad records a DualArray input without copying it: the input must come
    # out unchanged and the gradient must not share its storage
    x = np.array([0.5, -1.0, 2.0])
    lanes = np.eye(3)
    d = _array.make(x.copy(), lanes.copy(), 10**6, True)
    for f in (lambda t: np.sum(t * t), lambda t: np.sum(t), lambda t: np.sum(+t),
              lambda t: np.sum(np.exp(t[1:]) * t[:-1])):
        _, g = reverse.value_and_grad(f, d)
        assert_allclose(d.value, x, rtol=0, atol=0)
        assert_allclose(d.tangent, lanes, rtol=0, atol=0)
        if isinstance(g, _array.DualArray):
            assert not np.may_share_memory(g.value, d.value)
            assert not np.may_share_memory(g.tangent, d.tangent)
