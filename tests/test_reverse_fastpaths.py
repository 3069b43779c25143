"""Reverse mode's fast paths: C elementwise nodes, the in-place sweep, value_and_grad.

``dualad/_tape.pyx`` records elementwise ufuncs and the arithmetic operators on plain
float64 arrays without NumPy's dispatch, applies their partials in C in the backward
sweep (writing into adjoint buffers the sweep owns, handing a cotangent's buffer to a
parent, keeping ``a - b`` as a negated alias and ``np.sum``'s cotangent as one broadcast
number), and :func:`dualad.reverse.value_and_grad` skips the pullback's checks.  None of
it may change a number.  Oracles:

* the general path of the same operation: a ufunc called with ``dtype=np.float64``
  bypasses the fast path and records the rule table's NumPy expressions, whose products
  go through the generic VJP code (values and derivatives to ``RTOL_PATHS``; NaNs must
  sit at the same places);
* forward mode and 4th-order central differences (``fd_jacobian``) for whole gradients;
* closed forms for the masking rule (a zero cotangent or partial annihilates an infinite
  or NaN factor) and for slices.
"""

import math
import warnings

import numpy as np
import pytest
from conftest import ATOL_FD, RTOL_FD, fd_jacobian
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import dualad
from dualad import reverse
from dualad.rules._elementwise import RULES, ufunc_of

#: fast path against general path: the same formulas, libm or NumPy's SIMD loops
RTOL_PATHS = 1e-13
ATOL_PATHS = 1e-15
#: reverse against forward mode: the same partials, summed in another order
RTOL_MODES = 1e-12
ATOL_MODES = 1e-14

GENERIC = {"dtype": np.float64}  # ufunc keywords that force the general path
SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, database=None)

# below VECTOR_MIN (one C pass over the kernel), above it (NumPy's loops), and above
# LAZY_MIN (np.sum's cotangent stays one broadcast number)
SIZES = [(), (1,), (7,), (3, 4), (200,)]
BIG = 5000


def _ufunc(rule):
    return ufunc_of(rule.name)


def _point(rule, i, shape, rng):
    lo, hi = rule.domain[i]
    return rng.uniform(lo, hi, shape)


def _pull(f, x, u):
    """value and u^T J of f at x, in reverse mode."""
    value, pullback = dualad.vjp(f, x)
    return np.asarray(value), np.asarray(pullback(u))


def _same(fast, general, what):
    assert_allclose(fast, general, rtol=RTOL_PATHS, atol=ATOL_PATHS, err_msg=what)


# -- one operation: fast path against general path -----------------------------------------

@pytest.mark.parametrize("shape", SIZES, ids=str)
@pytest.mark.parametrize("rule", [r for r in RULES if r.arity == 1], ids=lambda r: r.name)
def test_unary_fast_equals_general(rule, shape, rng):
    uf = _ufunc(rule)
    x = _point(rule, 0, shape, rng)
    u = rng.standard_normal(shape)
    with np.errstate(all="ignore"):
        fast = _pull(lambda t: uf(t), x, u)
        general = _pull(lambda t: uf(t, **GENERIC), x, u)
    _same(fast[0], general[0], f"{rule.name} value at {x}")
    _same(fast[1], general[1], f"{rule.name} vjp at {x}")


BINARY_OPERANDS = {
    "traced, traced": lambda t, c: (t[0], t[1]),
    "traced, number": lambda t, c: (t[0], float(c.flat[0])),
    "number, traced": lambda t, c: (float(c.flat[0]), t[1]),
    "traced, array": lambda t, c: (t[0], c),
    "array, traced": lambda t, c: (c, t[1]),
    "traced, same": lambda t, c: (t[0], t[0]),
}


@pytest.mark.parametrize("shape", SIZES, ids=str)
@pytest.mark.parametrize("operands", list(BINARY_OPERANDS))
@pytest.mark.parametrize("rule", [r for r in RULES if r.arity == 2], ids=lambda r: r.name)
def test_binary_fast_equals_general(rule, operands, shape, rng):
    uf = _ufunc(rule)
    pick = BINARY_OPERANDS[operands]
    x = np.stack([_point(rule, 0, shape, rng), _point(rule, 1, shape, rng)])
    # a constant operand from the domain of the argument it replaces
    c = _point(rule, 1 if operands.startswith("traced") else 0, shape, rng)
    c = np.asarray(c, dtype=np.float64)
    u = rng.standard_normal(shape)
    with np.errstate(all="ignore"):
        fast = _pull(lambda t: uf(*pick(t, c)), x, u)
        general = _pull(lambda t: uf(*pick(t, c), **GENERIC), x, u)
    _same(fast[0], general[0], f"{rule.name}({operands}) value")
    _same(fast[1], general[1], f"{rule.name}({operands}) vjp")


def _ramp(shape):
    return np.linspace(-1.0, 1.0, math.prod(shape)).reshape(shape)


# the operators: RArray calls the fast path directly (no NumPy dispatch)
OPERATORS = {
    "a + b": (lambda a, b: a + b, lambda a, b: np.add(a, b, **GENERIC)),
    "a - b": (lambda a, b: a - b, lambda a, b: np.subtract(a, b, **GENERIC)),
    "a * b": (lambda a, b: a * b, lambda a, b: np.multiply(a, b, **GENERIC)),
    "a / b": (lambda a, b: a / b, lambda a, b: np.true_divide(a, b, **GENERIC)),
    "a ** b": (lambda a, b: a ** b, lambda a, b: np.power(a, b, **GENERIC)),
    "a ** 2": (lambda a, b: a ** 2, lambda a, b: np.power(a, 2, **GENERIC)),
    "a ** 2.0": (lambda a, b: a ** 2.0, lambda a, b: np.power(a, 2.0, **GENERIC)),
    "a ** np.float64(2)": (lambda a, b: a ** np.float64(2),
                           lambda a, b: np.power(a, 2.0, **GENERIC)),
    "a ** 3.0": (lambda a, b: a ** 3.0, lambda a, b: np.power(a, 3.0, **GENERIC)),
    "a ** 1.0": (lambda a, b: a ** 1.0, lambda a, b: np.power(a, 1.0, **GENERIC)),
    "a ** 0.0": (lambda a, b: a ** 0.0, lambda a, b: np.power(a, 0.0, **GENERIC)),
    "2.0 ** a": (lambda a, b: 2.0 ** a, lambda a, b: np.power(2.0, a, **GENERIC)),
    "-a": (lambda a, b: -a, lambda a, b: np.negative(a, **GENERIC)),
    "1 - a": (lambda a, b: 1 - a, lambda a, b: np.subtract(1.0, a, **GENERIC)),
    "3 * b": (lambda a, b: 3 * b, lambda a, b: np.multiply(3.0, b, **GENERIC)),
    "a / 4": (lambda a, b: a / 4, lambda a, b: np.true_divide(a, 4.0, **GENERIC)),
    "np.float64(2.5) * a": (lambda a, b: np.float64(2.5) * a,
                            lambda a, b: np.multiply(2.5, a, **GENERIC)),
    "a * array": (lambda a, b: a * _ramp(a.shape),
                  lambda a, b: np.multiply(a, _ramp(a.shape), **GENERIC)),
    "np.square(a)": (lambda a, b: np.square(a), lambda a, b: np.square(a, **GENERIC)),
    "a * a": (lambda a, b: a * a, lambda a, b: np.multiply(a, a, **GENERIC)),
    "a - a": (lambda a, b: a - a, lambda a, b: np.subtract(a, a, **GENERIC)),
}


@pytest.mark.parametrize("shape", [(), (6,), (2, 3), (300,)], ids=str)
@pytest.mark.parametrize("op", list(OPERATORS))
def test_operators_fast_equal_general(op, shape, rng):
    fast_op, general_op = OPERATORS[op]
    x = np.stack([rng.uniform(0.5, 2.0, shape), rng.uniform(0.5, 2.0, shape)])
    u = rng.standard_normal(shape)
    fast = _pull(lambda t: fast_op(t[0], t[1]), x, u)
    general = _pull(lambda t: general_op(t[0], t[1]), x, u)
    _same(fast[0], general[0], f"{op} value")
    _same(fast[1], general[1], f"{op} vjp")


@pytest.mark.parametrize("op", ["a + b", "a - b", "a * b", "a / b", "a ** b"])
def test_operators_on_broadcast_and_strided_operands(op):
    """Operands the fast path does not take (broadcasting, strided views, lists) go the
    general way: the results match forward mode."""
    fast_op = OPERATORS[op][0]
    cases = [
        lambda t: fast_op(t[:3, None], t[3:]),          # broadcasting
        lambda t: fast_op(t[::2], t[1::2]),             # strided views
        lambda t: fast_op(t[:2], [1.5, 2.5]),           # a list
        lambda t: fast_op(t[:2], np.array([1, 2])),     # an integer array
    ]
    x = np.linspace(0.5, 2.0, 6)
    for f in cases:
        rev = dualad.jacobian(f, mode="reverse")(x)
        fwd = dualad.jacobian(f, mode="forward")(x)
        assert_allclose(rev, fwd, rtol=RTOL_MODES, atol=ATOL_MODES, err_msg=op)


# -- whole gradients: the sweep's shortcuts ------------------------------------------------

def _rosen(x, kw):
    a = np.subtract(x[1:], np.power(x[:-1], 2.0, **kw), **kw)
    b = np.subtract(1.0, x[:-1], **kw)
    return np.sum(np.add(np.multiply(100.0, np.power(a, 2.0, **kw), **kw),
                         np.power(b, 2.0, **kw), **kw))


def _negations(x, kw):
    # negated adjoints (subtract, negative) passed on, negated again, and added into
    y = np.subtract(1.0, x, **kw)                       # x's adjoint: -cot (alias)
    z = np.multiply(y, y, **kw)                         # y: 2 y cot, into a negated one
    w = np.negative(np.subtract(z, y, **kw), **kw)
    return np.sum(np.subtract(w, np.multiply(x, 3.0, **kw), **kw))


def _same_parent(x, kw):
    # one node as both operands: alias, then accumulate into the alias
    s = np.add(x, x, **kw)
    d = np.subtract(x, x, **kw)
    p = np.multiply(x, x, **kw)
    return np.sum(np.add(np.add(s, d, **kw), p, **kw))


def _slices(x, kw):
    n = x.shape[0]
    even, odd = x[: n - n % 2: 2], x[1::2]
    rev = x[::-1][: even.shape[0]]
    t = np.subtract(np.multiply(even, odd[: even.shape[0]], **kw), rev, **kw)
    return np.sum(np.add(t, np.sin(x[1:n - 1], **kw)[: t.shape[0]] if n > 2 else t, **kw))


def _chain(x, kw):
    # numbers, operands and results as partials; a long chain reuses one buffer
    y = np.exp(np.multiply(x, 0.1, **kw), **kw)
    y = np.multiply(np.sqrt(np.add(np.power(y, 2.0, **kw), 1.0, **kw), **kw), 3.0, **kw)
    y = np.true_divide(np.subtract(y, np.sin(x, **kw), **kw), 2.0, **kw)
    return np.sum(np.negative(np.tanh(y, **kw), **kw))


def _mixed(x, kw):
    # fast nodes feeding general ones (outer product, broadcasting, reductions)
    y = np.subtract(np.multiply(x, x, **kw), 0.5, **kw)
    outer = y[:, None] * x[None, :]
    return np.sum(np.multiply(np.sum(outer, axis=0), y, **kw)) + np.mean(np.cos(y, **kw))


def _matrix(x, kw):
    m = x.reshape(2, -1)
    a = np.subtract(m[:, 1:], np.square(m[:, :-1], **kw), **kw)
    return np.sum(np.add(np.power(a, 2.0, **kw), np.negative(m[0], **kw)[0], **kw))


FUNCTIONS = {"rosen": _rosen, "negations": _negations, "same parent": _same_parent,
             "slices": _slices, "chain": _chain, "mixed": _mixed}


def _grad(fun, x, kw, mode="reverse"):
    return dualad.grad(lambda t: fun(t, kw), mode=mode)(x)


@SETTINGS
@given(name=st.sampled_from(sorted(FUNCTIONS)), n=st.sampled_from([2, 3, 8, 150]),
       seed=st.integers(0, 2 ** 16))
def test_gradients_against_general_path_forward_mode_and_differences(name, n, seed):
    fun = FUNCTIONS[name]
    x = np.random.default_rng(seed).uniform(0.3, 1.5, n)
    g = _grad(fun, x, {})
    assert_allclose(g, _grad(fun, x, GENERIC), rtol=RTOL_PATHS * 10, atol=1e-13,
                    err_msg=f"{name}: fast vs general path")
    assert_allclose(g, _grad(fun, x, {}, mode="forward"), rtol=RTOL_MODES, atol=1e-12,
                    err_msg=f"{name}: reverse vs forward")
    if n <= 8:
        fd = fd_jacobian(lambda t: fun(t, {}), x)
        assert_allclose(g, fd, rtol=RTOL_FD, atol=ATOL_FD * 100, err_msg=f"{name}: vs fd")


@pytest.mark.parametrize("name", sorted(FUNCTIONS) + ["matrix"])
def test_gradients_of_big_arrays_against_general_path(name):
    """Above LAZY_MIN the sum's cotangent is a broadcast number and big adjoints are
    written in place: the same numbers as the general path."""
    fun = FUNCTIONS.get(name, _matrix)
    x = 1.0 + 0.5 * np.sin(np.arange(1.0, BIG + 1.0))
    assert_allclose(_grad(fun, x, {}), _grad(fun, x, GENERIC), rtol=1e-12, atol=1e-12,
                    err_msg=name)


def test_rosenbrock_matches_scipy_at_every_size():
    from scipy.optimize import rosen_der
    for n in (2, 3, 127, 128, 129, 4095, 4096, 10_000):
        x = 1.0 + 0.5 * np.sin(np.arange(1.0, n + 1.0))
        g = _grad(_rosen, x, {})
        assert_allclose(g, rosen_der(x), rtol=1e-13, atol=1e-10, err_msg=f"n = {n}")


@pytest.mark.parametrize("n", [5, BIG])
@pytest.mark.parametrize("case", [
    ("sum(1 - x)", lambda x: np.sum(1.0 - x), lambda x: -np.ones_like(x)),
    ("sum(3 x)", lambda x: np.sum(3.0 * x), lambda x: np.full_like(x, 3.0)),
    ("sum(-(-x))", lambda x: np.sum(np.negative(-x)), lambda x: np.ones_like(x)),
    ("sum(x - 2 x)", lambda x: np.sum(x - 2.0 * x), lambda x: -np.ones_like(x)),
    ("sum(x[::3])", lambda x: np.sum(x[::3]),
     lambda x: (np.arange(x.size) % 3 == 0).astype(float)),
    ("sum(x[::-2]) - sum(x[1:])", lambda x: np.sum(x[::-2]) - np.sum(x[1:]),
     lambda x: (np.arange(x.size) % 2 == (x.size - 1) % 2) - (np.arange(x.size) > 0.5)
     * 1.0),
    ("sum(x[1:] - x[:-1])", lambda x: np.sum(x[1:] - x[:-1]),
     lambda x: np.r_[-1.0, np.zeros(x.size - 2), 1.0]),
    ("sum(x * x)", lambda x: np.sum(x * x), lambda x: 2.0 * x),
    ("sum(x) ** 2", lambda x: np.sum(x) ** 2, lambda x: np.full_like(x, 2.0 * np.sum(x))),
], ids=lambda c: c[0])
def test_closed_forms(case, n):
    name, f, expected = case
    x = np.linspace(-1.0, 2.0, n)
    g = dualad.grad(f, mode="reverse")(x)
    assert_allclose(g, expected(x), rtol=1e-13, atol=1e-12, err_msg=name)
    # a plain, writeable float64 array of its own (never a view of the sweep's numbers)
    assert type(g) is np.ndarray and g.dtype == np.float64 and g.flags.writeable, name
    assert g.flags.c_contiguous, name


def test_zero_d_input():
    def f(x):
        return (x * x - 3.0 * x) ** 2.0

    x = np.array(1.5)
    value, g = dualad.value_and_grad(f, mode="reverse")(x)
    assert_allclose(value, (1.5 ** 2 - 4.5) ** 2, rtol=1e-14)
    assert_allclose(g, 2.0 * (1.5 ** 2 - 4.5) * (2.0 * 1.5 - 3.0), rtol=1e-14)
    assert np.shape(g) == ()


# -- the masking rule: 0 * inf = 0 in the C products ---------------------------------------

SPECIAL = [0.0, -0.0, 1.0, -2.0, 0.5, np.inf, -np.inf, np.nan]


@SETTINGS
@given(values=st.lists(st.sampled_from(SPECIAL), min_size=1, max_size=8),
       mask=st.lists(st.booleans(), min_size=8, max_size=8),
       big=st.booleans())
def test_annihilation_matches_general_path(values, mask, big):
    """Cotangents and partials with zeros, infinities and NaNs: the fast path's products
    (an array partial annihilates, a number partial multiplies) equal the general
    path's, NaN for NaN."""
    n = len(values)
    reps = 40 if big else 1  # 40 * 8 > VECTOR_MIN: NumPy's loops for values and partials
    x = np.tile(np.asarray(values), reps)
    m = np.tile(np.asarray(mask[:n], dtype=float), reps)

    def f(t, kw):
        r = np.sqrt(np.absolute(t, **kw), **kw)            # inf partial at 0
        e = np.multiply(m, r, **kw)                          # zero cotangent where m == 0
        q = np.multiply(np.subtract(t, 1.0, **kw), e, **kw)  # array partials both sides
        return np.sum(np.add(np.multiply(0.0, r, **kw), q, **kw))

    with np.errstate(all="ignore"):
        g_fast = dualad.grad(lambda t: f(t, {}), mode="reverse")(x)
        g_general = dualad.grad(lambda t: f(t, GENERIC), mode="reverse")(x)
    assert_allclose(g_fast, g_general, rtol=1e-14, atol=0, equal_nan=True,
                    err_msg=f"x = {values}, mask = {mask[:n]}")


@pytest.mark.parametrize("n", [3, 300, BIG])
def test_masked_sqrt_is_finite_at_zero(n):
    x = np.linspace(0.0, 2.0, n)
    m = (x > 0.5).astype(float)
    g = dualad.grad(lambda t: np.sum(m * np.sqrt(t)), mode="reverse")(x)
    expected = np.zeros(n)
    expected[m > 0] = 0.5 / np.sqrt(x[m > 0])
    assert np.all(np.isfinite(g))
    assert_allclose(g, expected, rtol=1e-14, atol=0)


def test_sqrt_of_square_at_zero_and_zero_factor():
    x = np.array([0.0, -0.0, 3.0])
    g = dualad.grad(lambda t: np.sum(np.sqrt(t * t)) + np.sum(0.0 * np.sqrt(t)),
                    mode="reverse")(x)
    assert_array_equal(g, [0.0, 0.0, 1.0])


# -- floating-point warnings ---------------------------------------------------------------

@pytest.mark.parametrize("op", [lambda a: a * 1e308, lambda a: a * 1e307 + 1.7e308,
                                lambda a: a * 1e307 - (-1.7e308),
                                lambda a: (a * np.inf) - np.inf],
                         ids=["overflow *", "overflow +", "overflow -", "inf - inf"])
@pytest.mark.parametrize("n", [3, 300])
def test_arithmetic_warns_as_numpy_does(op, n):
    """The C loops of add, subtract and multiply leave NumPy's own warning where NumPy
    would give one (overflow, inf - inf) -- and none elsewhere."""
    x = np.full(n, 10.0)

    def warnings_of(f):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            f()
        return sorted({str(w.message) for w in caught})

    plain = warnings_of(lambda: op(x))
    traced = warnings_of(lambda: dualad.grad(lambda t: np.sum(op(t)), mode="reverse")(x))
    assert plain, "the case must make NumPy warn"
    assert traced == plain
    assert warnings_of(lambda: dualad.grad(lambda t: np.sum(t * 2.0 - 1.0),
                                           mode="reverse")(x)) == []


# -- value_and_grad ------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_value_and_grad_equals_vjp_pullback(name):
    fun = FUNCTIONS[name]
    x = np.linspace(0.4, 1.3, 9)
    value, g = reverse.value_and_grad(fun, x, ({},))
    v2, pullback = reverse.vjp(fun, x, ({},))
    assert_array_equal(value, v2)
    assert_array_equal(g, pullback(1.0))
    assert type(g) is np.ndarray and g.dtype == np.float64 and g.shape == x.shape


def test_value_and_grad_args_lists_and_integers():
    value, g = reverse.value_and_grad(lambda x, a: np.sum(a * x ** 2), [1, 2, 3], (2.0,))
    assert value == 28.0
    assert_array_equal(g, [4.0, 8.0, 12.0])
    assert g.dtype == np.float64


def test_value_and_grad_non_scalar_output_gives_no_gradient():
    value, g = reverse.value_and_grad(lambda x: x * 2.0, np.ones(3))
    assert g is None
    assert_array_equal(value, [2.0, 2.0, 2.0])


@pytest.mark.parametrize("f", [lambda x: 3.0, lambda x: np.float64(2.0) + 0.0 * 1.0,
                               lambda x: np.sum(np.ones(2))])
def test_value_and_grad_of_a_constant(f):
    value, g = reverse.value_and_grad(f, np.array([1.0, 2.0]))
    assert_array_equal(g, [0.0, 0.0])
    assert float(value) == float(f(None))


def test_value_and_grad_nested_in_forward_mode():
    """Forward over reverse: d/dt grad f(x + t v) = H v, with H of sum(x**3) diagonal."""
    x = np.array([0.5, -1.0, 2.0])
    v = np.array([1.0, 2.0, -1.0])

    def gradient(t):
        return reverse.value_and_grad(lambda z: np.sum(z ** 3.0 - 2.0 * z), t)[1]

    _, hv = dualad.jvp(gradient, x, v)
    assert_allclose(hv, 6.0 * x * v, rtol=1e-14)


def test_value_and_grad_nested_in_reverse_mode():
    """Reverse over reverse: the gradient of sum(grad f) for f = sum(sin(x)) * ... ."""
    x = np.array([0.3, 1.1])

    def total(t):
        return np.sum(reverse.value_and_grad(lambda z: np.sum(np.sin(z) * z), t)[1])

    g = dualad.grad(total, mode="reverse")(x)
    # d/dx (cos x * x + sin x) = 2 cos x - x sin x
    assert_allclose(g, 2.0 * np.cos(x) - x * np.sin(x), rtol=1e-14)


# -- the sweep never writes what it does not own -------------------------------------------

def test_pullback_reuse_and_caller_cotangent_untouched():
    x = np.linspace(0.5, 1.5, 6)

    def f(t):
        y = 1.0 - t ** 2
        return (y - t) * 3.0

    _, pullback = dualad.vjp(f, x)
    u = np.linspace(-1.0, 1.0, 6)
    keep = u.copy()
    first = pullback(u)
    assert_array_equal(u, keep)
    pullback(np.ones(6))
    assert_array_equal(pullback(u), first)
    assert_allclose(first, u * (-6.0 * x - 3.0), rtol=1e-14)


def test_diagnostics_see_operator_names_and_every_adjoint():
    """With an observer (dualad.trace) the operators take NumPy's dispatch, which names
    them; every node's adjoint is reported, none of them reused by the sweep."""
    x = np.array([0.5, 2.0, -1.0])

    def f(t):
        return np.sum(-(1.0 - t) * t ** 2)

    graph = dualad.trace(f, x)
    ops = [node.op for node in graph]
    for name in ("subtract", "negative", "power", "multiply", "sum"):
        assert name in ops, ops
    assert_allclose(graph.grad, dualad.grad(f, mode="forward")(x), rtol=1e-14)
    adj = {node.op: node.grad for node in graph}
    assert_allclose(adj["subtract"], -(x ** 2), rtol=1e-14)  # d f / d(1 - t)
    assert_allclose(adj["power"], -(1.0 - x), rtol=1e-14)    # d f / d(t ** 2)


def test_threads_get_their_own_sweeps():
    from concurrent.futures import ThreadPoolExecutor

    def work(k):
        x = np.linspace(0.1, 1.0, BIG) * (k + 1)
        return dualad.grad(lambda t: np.sum((1.0 - t) ** 2.0 - t), mode="reverse")(x), x

    with ThreadPoolExecutor(4) as pool:
        for g, x in pool.map(work, range(8)):
            assert_allclose(g, -2.0 * (1.0 - x) - 1.0, rtol=1e-14)


def test_sizes_straddle_thresholds_exactly():
    """127/128 (VECTOR_MIN) and 4095/4096 (LAZY_MIN): both sides give the general
    path's numbers."""
    for n in (127, 128, 4095, 4096):
        x = np.linspace(0.2, 1.7, n)
        for name, fun in FUNCTIONS.items():
            assert_allclose(_grad(fun, x, {}), _grad(fun, x, GENERIC), rtol=1e-12,
                            atol=1e-12, err_msg=f"{name}, n = {n}")
    assert math.isfinite(n)


@pytest.mark.parametrize("f", [
    lambda z: np.sum(z), lambda z: z[0] * 1.0, lambda z: np.sum(z[1:] - z[:-1]),
    lambda z: np.sum(z * 2.0), lambda z: np.sum(-z), lambda z: np.dot(z, z),
    lambda z: np.sum(z.reshape(2, 2).T), lambda z: np.max(z)],
    ids=["sum", "element", "slices", "scaled", "negated", "dot", "transpose", "max"])
def test_value_and_grad_leaves_x_alone(f):
    """x is traced without a copy: the caller's array is neither written nor shared by
    the results."""
    x = np.array([1.0, -2.0, 3.0, 0.5])
    keep = x.copy()
    value, g = reverse.value_and_grad(f, x)
    assert_array_equal(x, keep)
    assert not np.shares_memory(g, x)
    assert np.ndim(value) == 0 and not isinstance(value, np.ndarray)
    assert_allclose(g, dualad.grad(f, mode="forward")(x), rtol=1e-14)
    value2, g2 = reverse.value_and_grad(f, x[::-1][::-1])  # a view: same numbers
    assert_array_equal(g2, g)
    assert value2 == value


def test_value_and_grad_of_the_input_itself():
    x = np.array(2.0)
    value, g = reverse.value_and_grad(lambda z: z, x)
    assert value == 2.0 and not isinstance(value, np.ndarray)
    assert_array_equal(g, 1.0)
    assert not np.shares_memory(g, x)
