"""The elementwise rule table, checked against independent oracles and via consumers.

What is checked, for every rule of ``dualad.rules._elementwise.RULES`` (test ids are the
rule names):

* the compiled kernel's primal equals the rule's ufunc (NumPy's, or SciPy's for the
  ``scipy.special`` entries, found by ``ufunc_of``), at random points of the rule's
  domain and at special values (0, +-inf, nan, poles, ...);
* first partials against the complex step (rtol ``RTOL_CS``) wherever the ufunc takes
  complex input and is analytic, and against 4th-order central differences of the ufunc
  (rtol ``RTOL_FD``) for every rule;
* second partials against central differences of the (exact) first partials;
* table = kernels = registry: the compiled first- and second-order kernels agree with the
  partials compiled over NumPy (``registry.ELEMENTWISE``), and the code generator's C
  translation of every expression means what the Python text means;
* the expression functions dualad implements itself (``trigamma``/``tetragamma``, in C
  and in NumPy) against ``scipy.special.polygamma``;
* through the public types: ``np.<ufunc>`` on ``Dual`` and ``DualArray`` operands (with
  floats, ints, NumPy scalars, ndarrays and Duals on either side, 0-d to 3-d shapes,
  broadcasting, 1/3/13 lanes) gives the reference value and tangent, and the fused C loop
  (contiguous operands) gives the same numbers as the NumPy fallback (non-contiguous
  operands);
* the documented conventions at kinks and special points (DESIGN.md, "Errors");
* no spurious floating-point warnings: where the ufunc itself is silent, differentiating
  it is silent too.

Oracles are the ufunc itself (``np.<name>`` or ``scipy.special.<name>``); dualad's
kernels are only ever the thing under test.  Random points come from a seeded generator,
so the tests are reproducible and independent of their order.
"""

import ast
import math
import warnings

import numpy as np
import pytest
import scipy.special as sp
from numpy.testing import assert_allclose, assert_array_equal

import dualad
from dualad.rules._elementwise import ufunc_of
from dualad._array import make
from conftest import ATOL_FD, BINARY_RULES, RTOL_CS, RTOL_FD, UNARY_RULES
from dualad import Dual, DualArray, HyperDual
from dualad._scalar import _kernel
from dualad.rules import _codegen, special
from dualad.rules._elementwise import FUNCTIONS, RULES
from dualad.rules.registry import ELEMENTWISE

ALL_RULES = list(RULES)
RULE_IDS = [r.name for r in ALL_RULES]
UNARY_IDS = [r.name for r in UNARY_RULES]
BINARY_IDS = [r.name for r in BINARY_RULES]

#: Step of the central differences (4th order: truncation error ~ h**4).
H_FD = 1e-3
#: Points closer than this to a kink are not used for finite differences.
KINK_MARGIN = 10 * H_FD
#: Relative agreement of two evaluations of one formula (kernel vs NumPy-compiled
#: registry): a few ulps (libm and NumPy's own functions may differ by one).
RTOL_SAME = 1e-15
#: For the C text evaluated in Python (math module): covers cancellation in 1 + y log x.
ATOL_SAME = 1e-14
#: Fused C loop vs NumPy fallback: libm and NumPy's SIMD functions may differ by an ulp,
#: and partials such as 1 - tanh(x)**2 amplify that; anything larger is a bug.
RTOL_PATHS = 1e-13

#: For every rule with a kink or a piecewise-constant primal: the distance of a point to
#: the nearest non-differentiable point (finite differences must not straddle it).
KINK_DISTANCE = {
    "absolute": lambda x: np.abs(x),
    "fabs": lambda x: np.abs(x),
    "sign": lambda x: np.abs(x),
    "floor": lambda x: np.abs(x - np.round(x)),
    "ceil": lambda x: np.abs(x - np.round(x)),
    "trunc": lambda x: np.abs(x - np.round(x)),
    "rint": lambda x: np.abs(x - np.floor(x) - 0.5),
    "maximum": lambda x, y: np.abs(x - y),
    "minimum": lambda x, y: np.abs(x - y),
    "fmax": lambda x, y: np.abs(x - y),
    "fmin": lambda x, y: np.abs(x - y),
    "hypot": lambda x, y: np.hypot(x, y),
}


def _ufunc(rule):
    return ufunc_of(rule.name)


def _qualname(rule):
    """``np.<name>`` or ``scipy.special.<name>``, for messages."""
    return f"{'np' if rule.module == 'numpy' else rule.module}.{rule.name}"


def _supports_complex(rule):
    """Whether the ufunc has a complex loop (so the complex step can be used).

    NumPy's analytic functions do, and so do SciPy's erf, erfc, gamma, digamma, xlogy and
    xlog1py; SciPy's expit, logit and gammaln are real-only (they are checked by central
    differences alone).
    """
    args = (1.0 + 0.5j,) * rule.arity
    try:
        with np.errstate(all="ignore"):
            out = _ufunc(rule)(*args)
    except TypeError:
        return False
    return np.iscomplexobj(out)


#: Rules whose first partials are checked by the complex step: their ufunc evaluates them
#: on complex input and they are analytic (no kink, not piecewise constant).
CS_RULES = [r for r in ALL_RULES
            if not ({"kink", "zero"} & r.flags) and _supports_complex(r)]
CS_IDS = [r.name for r in CS_RULES]


def _points(rule, n=48, seed=0, margin=KINK_MARGIN):
    """Random points inside the rule's domain (plus its corners), away from kinks.

    Returns a list with one float64 array per argument.
    """
    rng = np.random.default_rng([seed, sum(map(ord, rule.name))])
    cols = [rng.uniform(lo, hi, n) for lo, hi in rule.domain]
    corners = np.array(np.meshgrid(*[list(d) for d in rule.domain])).reshape(rule.arity, -1)
    cols = [np.concatenate([c, corner]).astype(float) for c, corner in zip(cols, corners)]
    if rule.name in KINK_DISTANCE:
        keep = KINK_DISTANCE[rule.name](*cols) > margin
        cols = [c[keep] for c in cols]
    assert cols[0].size >= n // 2, f"rule {rule.name}: too few smooth points sampled"
    return cols


def _kernel_at(rule, cols):
    """The compiled kernels at every point: ans (n,), first (n, arity), second (n, m)."""
    outs = [_kernel(rule.name, *[float(c[i]) for c in cols]) for i in range(cols[0].size)]
    ans = np.array([o[0] for o in outs])
    first = np.array([o[1] for o in outs])
    second = np.array([o[2] for o in outs])
    return ans, first, second


def _registry_at(rule, cols, ans):
    """First and second partials compiled over NumPy, evaluated on arrays."""
    entry = ELEMENTWISE[_ufunc(rule)]
    x = cols[0]
    y = cols[1] if rule.arity == 2 else None
    n = x.size
    with np.errstate(all="ignore"):
        first = np.stack([np.broadcast_to(f(x, y, ans), (n,)) for f in entry.first], 1)
        second = np.stack([np.broadcast_to(f(x, y, ans), (n,)) for f in entry.second], 1)
    return first, second


def _central(f, x, h=H_FD):
    """4th-order central difference of the elementwise function f at the points x."""
    return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)


def _with(cols, i, value):
    out = list(cols)
    out[i] = value
    return out


def _where(rule, cols, i):
    return f"rule {rule.name}, argument {i}, at points {np.stack(cols, 1).tolist()}"


# ---------------------------------------------------------------------------------------
# the table itself

def test_table_is_well_formed():
    names = [r.name for r in RULES]
    assert len(names) == len(set(names)), "duplicate rule names"
    for rule in RULES:
        assert isinstance(_ufunc(rule), np.ufunc), rule.name
        assert _ufunc(rule).nin == rule.arity, rule.name
        for lo, hi in rule.domain:
            assert lo < hi, rule.name
        assert rule.flags <= {"linear", "kink", "zero", "special"}, rule.name
        if {"kink", "zero"} & rule.flags:
            assert rule.name in KINK_DISTANCE, (
                f"rule {rule.name} has a kink: add its kink distance to KINK_DISTANCE")


def test_complex_step_covers_the_analytic_functions():
    # Guard against the complex-step set silently shrinking (e.g. a NumPy or SciPy change).
    expected = {"add", "subtract", "multiply", "true_divide", "power", "float_power",
                "sqrt", "square", "reciprocal", "exp", "exp2", "expm1", "log", "log2",
                "log10", "log1p", "sin", "cos", "tan", "arcsin", "arccos", "arctan",
                "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "negative",
                "positive",
                # scipy.special
                "erf", "erfc", "gamma", "digamma", "xlogy", "xlog1py"}
    assert expected <= set(CS_IDS), sorted(expected - set(CS_IDS))
    # the smooth rules left out are exactly those whose ufunc has no complex loop
    for rule in ALL_RULES:
        if not ({"kink", "zero"} & rule.flags) and rule.name not in CS_IDS:
            assert not any("D" in t for t in _ufunc(rule).types), rule.name


def test_generated_header_matches_the_table():
    # dualad/_kernels.pxd is rendered from the table at build time; a stale header
    # means the compiled kernels are not the table's.
    import pathlib
    header = pathlib.Path(dualad.__file__).with_name("_kernels.pxd")
    assert header.read_text() == _codegen.render_kernels(), (
        "dualad/_kernels.pxd is out of date: rebuild with "
        "`python setup.py build_ext --inplace`")


@pytest.mark.parametrize("rule", ALL_RULES, ids=RULE_IDS)
def test_linear_and_zero_flags_are_true(rule):
    """A rule flagged ``linear`` has vanishing second partials; ``zero`` has zero first."""
    cols = _points(rule, n=16)
    ans, first, second = _kernel_at(rule, cols)
    if "linear" in rule.flags:
        assert_array_equal(second[:, rule.arity:], 0.0, err_msg=rule.name)
    if "zero" in rule.flags:
        assert_array_equal(first, 0.0, err_msg=rule.name)


# ---------------------------------------------------------------------------------------
# primal

@pytest.mark.parametrize("rule", ALL_RULES, ids=RULE_IDS)
def test_kernel_primal_equals_the_ufunc(rule):
    cols = _points(rule, n=64, margin=0.0)
    ans, _, _ = _kernel_at(rule, cols)
    expected = _ufunc(rule)(*cols)
    assert_allclose(ans, expected, rtol=RTOL_SAME, atol=1e-300,
                    err_msg=f"primal of {_where(rule, cols, 0)}")


#: Signed zeros, +-1, halves, tiny, denormal and huge values, infinities, nan; and the
#: poles and overflow edges of scipy.special's gamma family (-3, 171.7, -171.5).
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 2.5, -2.5, -3.0, 1e-300, 5e-324, 1e300, 171.7,
           -171.5, np.inf, -np.inf, np.nan]


@pytest.mark.parametrize("rule", ALL_RULES, ids=RULE_IDS)
def test_kernel_primal_equals_the_ufunc_at_special_values(rule):
    """Same value as the ufunc, and the same nan, infinities and signs (zeros included)."""
    grid = np.array(np.meshgrid(*[SPECIAL] * rule.arity)).reshape(rule.arity, -1)
    cols = [g.astype(float) for g in grid]
    ans, _, _ = _kernel_at(rule, cols)
    with np.errstate(all="ignore"):
        expected = _ufunc(rule)(*cols)
    where = f"primal of rule {rule.name} at {np.stack(cols, 1).tolist()}"
    assert_allclose(ans, expected, rtol=RTOL_SAME, atol=0, equal_nan=True, err_msg=where)
    signed = ~np.isnan(expected)
    assert_array_equal(np.signbit(ans[signed]), np.signbit(expected[signed]),
                       err_msg=f"sign of the {where}")


# ---------------------------------------------------------------------------------------
# first partials

@pytest.mark.parametrize("rule", CS_RULES, ids=CS_IDS)
def test_first_partials_complex_step(rule):
    cols = _points(rule)
    _, first, _ = _kernel_at(rule, cols)
    h = 1e-20
    for i in range(rule.arity):
        stepped = _with(cols, i, cols[i] + 1j * h)
        expected = _ufunc(rule)(*stepped).imag / h
        assert_allclose(first[:, i], expected, rtol=RTOL_CS, atol=0,
                        err_msg=f"complex step, {_where(rule, cols, i)}")


@pytest.mark.parametrize("rule", ALL_RULES, ids=RULE_IDS)
def test_first_partials_central_differences(rule):
    cols = _points(rule)
    _, first, _ = _kernel_at(rule, cols)
    for i in range(rule.arity):
        expected = _central(lambda t: _ufunc(rule)(*_with(cols, i, t)), cols[i])
        assert_allclose(first[:, i], expected, rtol=RTOL_FD, atol=ATOL_FD,
                        err_msg=f"central differences, {_where(rule, cols, i)}")


# ---------------------------------------------------------------------------------------
# second partials

def _second_pairs(rule):
    """(index into the second partials, first-partial index, argument differentiated)."""
    if rule.arity == 1:
        return [(0, 0, 0)]
    # dxx = d/dx dx; dxy = d/dy dx = d/dx dy; dyy = d/dy dy
    return [(0, 0, 0), (1, 0, 1), (1, 1, 0), (2, 1, 1)]


@pytest.mark.parametrize("rule", ALL_RULES, ids=RULE_IDS)
def test_second_partials_central_differences_of_first(rule):
    cols = _points(rule)
    _, _, second = _kernel_at(rule, cols)
    dd = second[:, rule.arity:]

    def first(i, j, t):
        return _kernel_at(rule, _with(cols, j, t))[1][:, i]

    for s, i, j in _second_pairs(rule):
        expected = _central(lambda t: first(i, j, t), cols[j])
        assert_allclose(dd[:, s], expected, rtol=RTOL_FD, atol=ATOL_FD,
                        err_msg=f"second partial {s} = d/d(arg {j}) of d{i}, "
                                f"{_where(rule, cols, j)}")


@pytest.mark.parametrize("rule", BINARY_RULES, ids=BINARY_IDS)
def test_mixed_partials_are_symmetric_in_the_first_partials(rule):
    """d/dy (df/dx) == d/dx (df/dy): the first partials are consistent (Schwarz)."""
    cols = _points(rule)

    def first(i, j, t):
        return _kernel_at(rule, _with(cols, j, t))[1][:, i]

    dydx = _central(lambda t: first(0, 1, t), cols[1])
    dxdy = _central(lambda t: first(1, 0, t), cols[0])
    assert_allclose(dydx, dxdy, rtol=RTOL_FD, atol=ATOL_FD, err_msg=rule.name)


# ---------------------------------------------------------------------------------------
# table = kernels = registry

@pytest.mark.parametrize("rule", ALL_RULES, ids=RULE_IDS)
def test_kernels_equal_registry(rule):
    cols = _points(rule, n=64, margin=0.0)
    ans, first, second = _kernel_at(rule, cols)
    reg_first, reg_second = _registry_at(rule, cols, ans)
    # the second-order kernel's first partials are the first-order kernel's
    assert_allclose(second[:, :rule.arity], first, rtol=RTOL_SAME, atol=0,
                    err_msg=f"first- vs second-order kernel, rule {rule.name}")
    for i in range(rule.arity):
        assert_allclose(first[:, i], reg_first[:, i], rtol=RTOL_SAME, atol=0,
                        err_msg=f"kernel vs registry, first partial {i}, "
                                f"{_where(rule, cols, i)}")
    for s in range(second.shape[1] - rule.arity):
        assert_allclose(second[:, rule.arity + s], reg_second[:, s], rtol=RTOL_SAME,
                        atol=0,
                        err_msg=f"kernel vs registry, second partial {s}, "
                                f"{_where(rule, cols, 0)}")


def _integer_points(rule):
    """Points of the domain with integer coordinates (x ** 0, x ** 1, ties, ...)."""
    axes = [np.arange(math.ceil(lo), math.floor(hi) + 1, dtype=float)
            for lo, hi in rule.domain]
    grid = np.array(np.meshgrid(*axes)).reshape(rule.arity, -1)
    return [g.copy() for g in grid]


@pytest.mark.parametrize("rule", ALL_RULES, ids=RULE_IDS)
def test_first_partials_differentiate_to_the_second_partials(rule):
    """The registry's first partials, run on tracers, have the table's second partials.

    Nesting (forward over forward, and later forward over reverse) differentiates the
    first-partial expressions themselves, so they must be differentiable with the right
    derivative everywhere in the domain, including where a guard (``where``) picks a
    branch: integer exponents of ``power``, ties of ``maximum``...
    """
    rand = _points(rule, n=24, margin=0.0)
    ints = _integer_points(rule)
    cols = [np.concatenate([r, i]) for r, i in zip(rand, ints)]
    n = cols[0].size
    entry = ELEMENTWISE[_ufunc(rule)]
    _, _, second = _kernel_at(rule, cols)
    dd = second[:, rule.arity:]
    # one lane per argument: lane j is d/d(argument j)
    lanes = [np.zeros((rule.arity, n)) for _ in range(rule.arity)]
    for j in range(rule.arity):
        lanes[j][j] = 1.0
    tracers = [DualArray(c, t) for c, t in zip(cols, lanes)]
    ans = _ufunc(rule)(*tracers)
    y = tracers[1] if rule.arity == 2 else None
    for s, i, j in _second_pairs(rule):
        with np.errstate(all="ignore"):
            d = entry.first[i](tracers[0], y, ans)
        got = d.tangent[j] if isinstance(d, DualArray) else np.zeros(n)  # constant
        assert_allclose(got, dd[:, s], rtol=1e-13, atol=1e-13,
                        err_msg=f"rule {rule.name}: d/d(arg {j}) of first partial {i} "
                                f"vs second partial {s}, at points "
                                f"{np.stack(cols, 1).tolist()}")


# C meaning of the generated names, as Python functions (for reading the generated C).
_C_NAMESPACE = {
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin,
    "acos": math.acos, "atan": math.atan, "atan2": math.atan2, "sinh": math.sinh,
    "cosh": math.cosh, "tanh": math.tanh, "asinh": math.asinh, "acosh": math.acosh,
    "atanh": math.atanh, "exp": math.exp, "exp2": lambda v: 2.0 ** v,
    "expm1": math.expm1, "log": math.log, "log2": math.log2, "log10": math.log10,
    "log1p": math.log1p, "sqrt": math.sqrt, "cbrt": lambda v: float(np.cbrt(v)),
    "hypot": math.hypot, "pow": math.pow, "fabs": math.fabs, "floor": math.floor,
    "ceil": math.ceil, "rint": lambda v: float(np.rint(v)), "trunc": math.trunc,
    "fmax": lambda a, b: float(np.fmax(a, b)), "fmin": lambda a, b: float(np.fmin(a, b)),
    "isnan": math.isnan, "_dd_sign": lambda v: float(np.sign(v)),
    "_dd_square": lambda v: v * v,
    "_dd_logaddexp": lambda a, b: float(np.logaddexp(a, b)),
    "_dd_logaddexp2": lambda a, b: float(np.logaddexp2(a, b)),
    "_dd_power": lambda a, b: float(np.power(a, b)),
    # scipy.special: the helpers call SciPy's scalar code, whose Python face is the
    # ufunc; trigamma/tetragamma are dualad's own, and mean SciPy's polygamma
    "_dd_erf": lambda v: float(sp.erf(v)), "_dd_erfc": lambda v: float(sp.erfc(v)),
    "_dd_gamma": lambda v: float(sp.gamma(v)),
    "_dd_gammaln": lambda v: float(sp.gammaln(v)),
    "_dd_digamma": lambda v: float(sp.psi(v)), "_dd_expit": lambda v: float(sp.expit(v)),
    "_dd_logit": lambda v: float(sp.logit(v)),
    "_dd_trigamma": lambda v: float(sp.polygamma(1, v)),
    "_dd_tetragamma": lambda v: float(sp.polygamma(2, v)),
}


def test_c_namespace_covers_the_expression_language():
    assert set(FUNCTIONS.values()) <= set(_C_NAMESPACE)


@pytest.mark.parametrize("rule", ALL_RULES, ids=RULE_IDS)
def test_codegen_translation_means_the_table_expression(rule):
    """``to_cython`` (the C text) computes what ``compile_expression`` (NumPy) computes.

    The generated C expressions are also valid Python (ternaries, calls, arithmetic), so
    they can be evaluated with C-named Python functions and compared with the registry.
    """
    cols = _points(rule, n=16, margin=0.0)
    entry = ELEMENTWISE[_ufunc(rule)]
    exprs = [("primal", rule.primal, None)]
    exprs += [(f"d{i}", e, entry.first[i]) for i, e in enumerate(rule.d)]
    exprs += [(f"dd{i}", e, entry.second[i]) for i, e in enumerate(rule.dd)]
    for label, text, compiled in exprs:
        c_text = _codegen.to_cython(text, rule.name)
        ast.parse(c_text, mode="eval")  # well-formed
        for p in range(cols[0].size):
            x = float(cols[0][p])
            y = float(cols[1][p]) if rule.arity == 2 else None
            ans = float(_ufunc(rule)(*[c[p] for c in cols]))
            env = dict(_C_NAMESPACE, x=x, y=y, ans=ans)
            got = eval(c_text, env)  # noqa: S307 - generated from the table
            if compiled is None:
                want = ans
            else:
                with np.errstate(all="ignore"):
                    want = float(compiled(np.float64(x), None if y is None
                                          else np.float64(y), np.float64(ans)))
            assert_allclose(got, want, rtol=RTOL_SAME, atol=ATOL_SAME,
                            err_msg=f"rule {rule.name} {label}: C text {c_text!r} at "
                                    f"x={x!r}, y={y!r}")


def test_codegen_language():
    assert _codegen.to_cython("x ** 2") == "(x * x)"
    assert _codegen.to_cython("x ** 3.0") == "pow(x, 3.0)"
    assert _codegen.to_cython("where(x > y, 1, 0)") == "(1.0 if (x > y) else 0.0)"
    assert _codegen.to_cython("-x / 2") == "((-x) / 2.0)"  # no C integer division
    assert _codegen.to_cython("arcsin(x)") == "asin(x)"
    with pytest.raises(ValueError, match="unknown name 'z'"):
        _codegen.to_cython("z + 1.0")
    # the language spells functions as NumPy/SciPy do; C's names are not part of it
    with pytest.raises(ValueError, match="unknown name 'lgamma'"):
        _codegen.to_cython("lgamma(x)")
    with pytest.raises(ValueError, match="unknown name 'asin'"):
        _codegen.to_cython("asin(x)")
    # scipy.special names go to the header's helpers
    assert _codegen.to_cython("gammaln(x)") == "_dd_gammaln(x)"
    assert _codegen.to_cython("ans * digamma(x)") == "(ans * _dd_digamma(x))"
    assert _codegen.to_cython("trigamma(x) + tetragamma(x)") == \
        "(_dd_trigamma(x) + _dd_tetragamma(x))"
    with pytest.raises(ValueError, match="three arguments"):
        _codegen.to_cython("where(x > 0.0, 1.0)")
    with pytest.raises(ValueError):
        _codegen.to_cython("x % 2.0")
    with pytest.raises(ValueError):
        _codegen.to_cython("np.sin(x)")
    f = _codegen.compile_expression("where(x > y, x, y) * 2", {"where": np.where})
    assert_array_equal(f(np.array([1.0, 3.0]), np.array([2.0, 2.0]), None), [4.0, 6.0])


# ---------------------------------------------------------------------------------------
# the expression functions dualad implements itself: trigamma and tetragamma
#
# SciPy has no scalar C polygamma, so the C helpers _dd_trigamma/_dd_tetragamma and their
# NumPy twins in dualad/rules/special.py are dualad's.  Checked: C = NumPy; both against
# scipy.special.polygamma for x > 0 and at special values; the recurrence on the negative
# axis (reflection branch) down from the checked positive values; and that the NumPy
# versions differentiate to the next polygamma function (nesting relies on it).

#: (order n, the NumPy twin, index of psi_n among the digamma kernel's outputs)
POLYGAMMA = [(1, special.trigamma, ("first", 0)), (2, special.tetragamma, ("second", 1))]
POLYGAMMA_IDS = ["trigamma", "tetragamma"]
#: dualad's helpers and SciPy's polygamma are independent implementations; measured once
#: against 50-digit mpmath values on these points, dualad's are within 3 ulps and SciPy's
#: within 4.1 ulps for x > 0, so they differ by at most ~7 ulps (1.6e-15).
RTOL_POLYGAMMA = 2e-15


def _polygamma_points(negative):
    rng = np.random.default_rng([6, int(negative)])
    pts = np.concatenate([rng.uniform(0.3, 8.0, 200), rng.uniform(8.0, 40.0, 50),
                          rng.uniform(40.0, 1e4, 50), 10.0 ** rng.uniform(-8, -1, 20),
                          np.arange(1.0, 21.0), np.arange(0.5, 20.0),
                          [15.999, 16.0, 16.001]])
    if negative:  # non-integers, including half-integers and points near the poles
        pts = -pts[pts != np.round(pts)]
        poles = -np.arange(1.0, 30.0)
        pts = np.concatenate([pts, poles + 1e-3, poles - 1e-3])
    return pts


def _c_polygamma(n, index, xs):
    """psi_n by the C helper, read off the digamma kernels (psi_1 first, psi_2 second)."""
    which, i = index
    return np.array([_kernel("digamma", float(x))[1 if which == "first" else 2][i]
                     for x in xs])


@pytest.mark.parametrize("negative", [False, True], ids=["x>0", "x<0"])
@pytest.mark.parametrize("n, twin, index", POLYGAMMA, ids=POLYGAMMA_IDS)
def test_polygamma_helpers_c_equals_numpy(n, twin, index, negative):
    """The C helper and its NumPy twin: same arithmetic, so the same numbers.

    (libm's and NumPy's sine may differ by an ulp; for x < 0 the reflection formula adds
    two terms of opposite signs, so there the bound is relative to the terms' size.)
    """
    xs = _polygamma_points(negative)
    got, want = _c_polygamma(n, index, xs), twin(xs)
    scale = np.abs(want)
    if negative:
        rest = twin(1.0 - xs)
        scale = np.abs(rest) + np.abs(want - rest)
    assert np.all(np.abs(got - want) <= RTOL_SAME * scale), (
        f"psi_{n}: C vs NumPy at {xs[np.abs(got - want) > RTOL_SAME * scale].tolist()}")
    assert_array_equal(np.signbit(got), np.signbit(want), err_msg=f"psi_{n} signs")


@pytest.mark.parametrize("n, twin, index", POLYGAMMA, ids=POLYGAMMA_IDS)
def test_polygamma_helpers_match_scipy(n, twin, index):
    xs = _polygamma_points(False)
    want = sp.polygamma(n, xs)
    assert_allclose(twin(xs), want, rtol=RTOL_POLYGAMMA, atol=0,
                    err_msg=f"psi_{n} vs scipy.special.polygamma({n}, x)")
    assert_allclose(_c_polygamma(n, index, xs), want, rtol=RTOL_POLYGAMMA, atol=0,
                    err_msg=f"C psi_{n} vs scipy.special.polygamma({n}, x)")


@pytest.mark.parametrize("n, twin, index", POLYGAMMA, ids=POLYGAMMA_IDS)
def test_polygamma_helpers_special_values_are_scipys(n, twin, index):
    """Poles (0, -0, negative integers, -inf), +inf, nan, tiny and huge x: as SciPy.

    Same nan, infinities and signs (zeros included), and finite values for x > 0 as in
    the accuracy test.  (For x < 0 SciPy's direct summation is the less accurate one, up
    to ~600 ulps of the terms near half-integers against mpmath, where dualad's are
    within 3: the recurrence test checks that side.)
    """
    xs = np.array(SPECIAL + [-1.0, -2.0, -1e300, -1e-300, 1e-8, 40.5, -7.5])
    with np.errstate(all="ignore"):
        want = sp.polygamma(n, xs)
    for label, got in (("NumPy", twin(xs)), ("C", _c_polygamma(n, index, xs))):
        where = f"{label} psi_{n} at {xs.tolist()}: {got.tolist()} vs {want.tolist()}"
        assert_array_equal(np.isnan(got), np.isnan(want), err_msg=where)
        assert_array_equal(np.isinf(got), np.isinf(want), err_msg=where)
        signed = ~np.isnan(want)
        assert_array_equal(np.signbit(got[signed]), np.signbit(want[signed]), err_msg=where)
        finite = np.isfinite(want) & (xs > 0)
        assert_allclose(got[finite], want[finite], rtol=RTOL_POLYGAMMA, atol=0,
                        err_msg=where)


@pytest.mark.parametrize("n, twin, index", POLYGAMMA, ids=POLYGAMMA_IDS)
def test_polygamma_recurrence_on_the_negative_axis(n, twin, index):
    """psi_n(x) = psi_n(x + 1) - (-1)^n n! / x^(n+1) from x in (-1, 0) down to -30.

    The reflection branch (x < 0) is thus tied to the positive branch, which is checked
    against SciPy; the bound is a few ulps of the terms (x + 1 is exact for x < 0).
    """
    xs = _polygamma_points(True)
    term = (-1.0) ** (n + 1) * math.factorial(n) / xs ** (n + 1)
    for label, f in (("NumPy", twin), ("C", lambda t: _c_polygamma(n, index, t))):
        lhs, shifted = f(xs), f(xs + 1.0)
        scale = np.abs(shifted) + np.abs(term)
        bad = np.abs(lhs - (shifted + term)) > 4 * RTOL_SAME * scale
        assert not np.any(bad), f"{label} psi_{n}: recurrence fails at {xs[bad].tolist()}"


@pytest.mark.parametrize("negative", [False, True], ids=["x>0", "x<0"])
def test_polygamma_helpers_differentiate_to_the_next(negative):
    """d/dx trigamma = tetragamma and d/dx tetragamma = psi_3, in both modes.

    The helpers' series are termwise derivatives of each other, so the tracer derivative
    of trigamma is tetragamma to rounding; psi_3 is checked against SciPy for x > 0.
    """
    xs = _polygamma_points(negative)[::7]
    scale = np.abs(special.tetragamma(xs))
    if negative:
        rest = special.tetragamma(1.0 - xs)
        scale = np.abs(rest) + np.abs(special.tetragamma(xs) - rest)
    for mode in ("forward", "reverse"):
        d1 = dualad.grad(lambda t: np.sum(special.trigamma(t)), mode=mode)(xs)
        bad = np.abs(d1 - special.tetragamma(xs)) > 1e-13 * scale
        assert not np.any(bad), f"d trigamma ({mode}) at {xs[bad].tolist()}"
        if not negative:
            d2 = dualad.grad(lambda t: np.sum(special.tetragamma(t)), mode=mode)(xs)
            assert_allclose(d2, sp.polygamma(3, xs), rtol=1e-13, atol=0,
                            err_msg=f"d tetragamma ({mode}) vs polygamma(3, x)")


# ---------------------------------------------------------------------------------------
# through the public types
#
# Reference: value = NumPy's ufunc on the values; tangent = sum_i d_i * tangent_i with the
# partials d_i compiled over NumPy (checked against the oracles above).

def _reference(rule, operands):
    """Value and tangent of ``rule`` applied to ``[(value, tangent or None), ...]``."""
    vals = [np.asarray(v, dtype=float) for v, _ in operands]
    with np.errstate(all="ignore"):
        ans = _ufunc(rule)(*vals)
        entry = ELEMENTWISE[_ufunc(rule)]
        y = vals[1] if rule.arity == 2 else None
        tangent = None
        for i, (_, t) in enumerate(operands):
            if t is None:
                continue
            d = np.asarray(entry.first[i](vals[0], y, ans))
            term = d * t
            tangent = term if tangent is None else tangent + term
    return np.asarray(ans), tangent


def _parts(r):
    """(value, tangent) of a Dual (tangent shape (k,)) or DualArray."""
    if isinstance(r, Dual):
        return np.asarray(r.value), r.partials
    assert isinstance(r, DualArray), type(r)
    return np.asarray(r.value), np.asarray(r.tangent)


def _values(rule, i, shape, rng):
    lo, hi = rule.domain[i]
    v = rng.uniform(lo, hi, shape)
    return v


def _noncontiguous(value, tangent):
    """A DualArray equal to DualArray(value, tangent) whose arrays are strided views.

    For ndim >= 1 it is a slice of a bigger DualArray (the way user code gets one); a 0-d
    value is always contiguous, so there only the tangent lanes are strided.
    """
    value = np.asarray(value, dtype=float)
    k = tangent.shape[0]
    if value.ndim >= 1:
        big_v = np.zeros(value.shape[:-1] + (2 * value.shape[-1],))
        big_t = np.zeros((k,) + big_v.shape)
        big_v[..., ::2] = value
        big_t[..., ::2] = tangent
        out = DualArray(big_v, big_t)[..., ::2]
    else:
        strided = np.zeros(2 * k)
        strided[::2] = tangent
        out = make(np.asarray(value, dtype=float), strided[::2], 0)
    assert not out.tangent.flags.c_contiguous
    return out


#: (shape, lanes) combinations for the DualArray tests: 0-d to 3-d, 1, 3 and 13 lanes.
#: (A 0-d array with one lane is contiguous whatever its strides, so it cannot be sent
#: down the fallback by its layout: 0-d cases use several lanes.)
CASES = [((), 3), ((), 13), ((7,), 1), ((7,), 3), ((3, 4), 13), ((2, 3, 4), 1),
         ((2, 3, 4), 3), ((150,), 3)]
CASE_IDS = [f"shape{'x'.join(map(str, s)) or '0d'}-k{k}" for s, k in CASES]


def _check_result(r, value, tangent, label, rtol=RTOL_PATHS):
    got_v, got_t = _parts(r)
    assert got_v.shape == value.shape, f"{label}: value shape {got_v.shape}"
    assert got_t.shape == tangent.shape, f"{label}: tangent shape {got_t.shape}"
    assert_allclose(got_v, value, rtol=rtol, atol=1e-300, err_msg=f"{label}: value")
    scale = np.max(np.abs(tangent), initial=0.0)
    assert_allclose(got_t, tangent, rtol=rtol, atol=rtol * scale,
                    err_msg=f"{label}: tangent")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("rule", UNARY_RULES, ids=UNARY_IDS)
def test_unary_ufunc_on_dual_array_both_paths(rule, case):
    shape, k = case
    rng = np.random.default_rng([1, k, len(shape), sum(map(ord, rule.name))])
    v = _values(rule, 0, shape, rng)
    t = rng.standard_normal((k,) + shape)
    value, tangent = _reference(rule, [(v, t)])
    label = f"{_qualname(rule)} on DualArray shape {shape}, k={k}, at {v.tolist()}"
    fused = _ufunc(rule)(DualArray(v, t))
    fallback = _ufunc(rule)(_noncontiguous(v, t))
    assert type(fused) is type(fallback) is (Dual if shape == () else DualArray), label
    _check_result(fused, value, tangent, label + " (fused)")
    _check_result(fallback, value, tangent, label + " (fallback)")
    fv, ft = _parts(fused)
    bv, bt = _parts(fallback)
    assert_allclose(ft, bt, rtol=RTOL_PATHS, atol=RTOL_PATHS * np.max(np.abs(bt)),
                    err_msg=label + ": fused vs fallback")


@pytest.mark.parametrize("rule", UNARY_RULES, ids=UNARY_IDS)
@pytest.mark.parametrize("k", [1, 3, 13])
def test_unary_ufunc_on_dual(rule, k):
    rng = np.random.default_rng([2, k, sum(map(ord, rule.name))])
    for v in _values(rule, 0, (5,), rng):
        t = rng.standard_normal(k)
        value, tangent = _reference(rule, [(v, t)])
        r = _ufunc(rule)(Dual(v, t))
        assert type(r) is Dual
        _check_result(r, value, tangent, f"{_qualname(rule)}(Dual({v!r}), k={k})")
        # the Dual and the 0-d DualArray (C loop) agree
        _check_result(_ufunc(rule)(DualArray(v, t)), np.asarray(r.value), r.partials,
                      f"{_qualname(rule)}: 0-d DualArray vs Dual at {v!r}")


#: Operand kinds for binary rules: how each side is given.
KINDS = ["array-array", "array-float", "float-array", "array-int", "int-array",
         "array-ndarray", "ndarray-array", "array-dual", "dual-array", "array-f32",
         "f32-array", "array-npint", "npint-array"]


def _operand(kind, v, t, rng):
    """Build one operand of the given kind; returns (operand, value, tangent or None)."""
    if kind == "array":
        return DualArray(v, t), v, t
    if kind == "float":
        c = float(np.ravel(v)[0])
        return c, np.float64(c), None
    if kind == "int":
        return 2, np.float64(2.0), None
    if kind == "npint":
        return np.int64(2), np.float64(2.0), None
    if kind == "f32":
        c = np.float32(np.ravel(v)[0])
        return c, np.float64(c), None
    if kind == "ndarray":
        return v.copy(), v, None
    if kind == "dual":
        c = float(np.ravel(v)[0])
        tc = t.reshape(t.shape[0], -1)[:, 0].copy()
        return Dual(c, tc), np.float64(c), tc.reshape((-1,) + (1,) * (t.ndim - 1))
    raise AssertionError(kind)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("kinds", KINDS)
@pytest.mark.parametrize("rule", BINARY_RULES, ids=BINARY_IDS)
def test_binary_ufunc_on_dual_array_both_paths(rule, kinds, case):
    shape, k = case
    rng = np.random.default_rng([3, k, len(shape), KINDS.index(kinds),
                                 sum(map(ord, rule.name))])
    ops, refs, ncs = [], [], []
    for i, kind in enumerate(kinds.split("-")):
        v = _values(rule, i, shape, rng)
        t = rng.standard_normal((k,) + shape)
        op, rv, rt = _operand(kind, v, t, rng)
        ops.append(op)
        refs.append((rv, rt))
        ncs.append(_noncontiguous(v, t) if kind == "array" else op)
    value, tangent = _reference(rule, refs)
    tangent = np.broadcast_to(tangent, (k,) + value.shape)
    label = (f"{_qualname(rule)}({kinds}), shape {shape}, k={k}, at "
             f"{[np.asarray(rv).tolist() for rv, _ in refs]}")
    fused = _ufunc(rule)(*ops)
    fallback = _ufunc(rule)(*ncs)
    expected_type = Dual if value.shape == () else DualArray
    assert type(fused) is expected_type, f"{label}: got {type(fused).__name__}"
    assert type(fallback) is expected_type, f"{label}: got {type(fallback).__name__}"
    _check_result(fused, value, tangent, label + " (contiguous operands)")
    _check_result(fallback, value, tangent, label + " (non-contiguous operands)")
    fv, ft = _parts(fused)
    bv, bt = _parts(fallback)
    assert_allclose(fv, bv, rtol=RTOL_PATHS, atol=1e-300, err_msg=label + ": paths")
    assert_allclose(ft, bt, rtol=RTOL_PATHS, atol=RTOL_PATHS * np.max(np.abs(bt)),
                    err_msg=label + ": fused vs fallback tangent")


BROADCASTS = [((3, 1), (4,)), ((4,), (3, 1)), ((2, 1, 4), (3, 1)), ((), (3, 4)),
              ((3, 4), ())]


@pytest.mark.parametrize("shapes", BROADCASTS, ids=[f"{a}-{b}" for a, b in BROADCASTS])
@pytest.mark.parametrize("k", [1, 3, 13])
@pytest.mark.parametrize("rule", BINARY_RULES, ids=BINARY_IDS)
def test_binary_ufunc_broadcasting(rule, k, shapes):
    """Broadcast operands (fallback) give what pre-broadcast contiguous copies give."""
    rng = np.random.default_rng([4, k, sum(map(ord, rule.name))])
    sx, sy = shapes
    out_shape = np.broadcast_shapes(sx, sy)
    vx, vy = _values(rule, 0, sx, rng), _values(rule, 1, sy, rng)
    tx, ty = rng.standard_normal((k,) + sx), rng.standard_normal((k,) + sy)
    label = f"{_qualname(rule)} broadcasting {sx} with {sy}, k={k}"

    def full(v, t):
        # lanes stay in front: pad the value axes on the left, after the lane axis
        t = t.reshape((k,) + (1,) * (len(out_shape) - v.ndim) + v.shape)
        return (np.ascontiguousarray(np.broadcast_to(v, out_shape)),
                np.ascontiguousarray(np.broadcast_to(t, (k,) + out_shape)))

    fx, fy = full(vx, tx), full(vy, ty)
    value, tangent = _reference(rule, [fx, fy])
    fused = _ufunc(rule)(DualArray(*fx), DualArray(*fy))
    _check_result(fused, value, tangent, label + " (pre-broadcast, contiguous)")
    # traced with traced, traced with a constant array, on either side
    _check_result(_ufunc(rule)(DualArray(vx, tx), DualArray(vy, ty)), value, tangent,
                  label)
    v1, t1 = _reference(rule, [(fx[0], fx[1]), (fy[0], None)])
    _check_result(_ufunc(rule)(DualArray(vx, tx), vy), v1,
                  np.broadcast_to(t1, (k,) + out_shape), label + " (y constant)")
    v2, t2 = _reference(rule, [(fx[0], None), (fy[0], fy[1])])
    _check_result(_ufunc(rule)(vx, DualArray(vy, ty)), v2,
                  np.broadcast_to(t2, (k,) + out_shape), label + " (x constant)")


SCALAR_KINDS = ["dual-dual", "dual-float", "float-dual", "dual-int", "int-dual",
                "dual-npfloat", "npfloat-dual", "dual-npint", "npint-dual", "dual-f32",
                "f32-dual", "same-dual"]


@pytest.mark.parametrize("k", [1, 3, 13])
@pytest.mark.parametrize("kinds", SCALAR_KINDS)
@pytest.mark.parametrize("rule", BINARY_RULES, ids=BINARY_IDS)
def test_binary_ufunc_on_dual(rule, kinds, k):
    rng = np.random.default_rng([5, k, SCALAR_KINDS.index(kinds), sum(map(ord, rule.name))])
    for _ in range(4):
        x, y = (float(_values(rule, i, (), rng)) for i in range(2))
        tx, ty = rng.standard_normal(k), rng.standard_normal(k)
        if kinds == "same-dual":
            # f(d, d): one Dual on both sides, at a point inside both domains
            lo = max(rule.domain[0][0], rule.domain[1][0])
            hi = min(rule.domain[0][1], rule.domain[1][1])
            x = float(rng.uniform(lo, hi))
            d = Dual(x, tx)
            ops = [d, d]
            refs = [(x, tx), (x, tx)]
        else:
            ops, refs = [], []
            for kind, v, t in zip(kinds.split("-"), (x, y), (tx, ty)):
                if kind == "dual":
                    ops.append(Dual(v, t))
                    refs.append((v, t))
                    continue
                c = {"float": v, "int": 2, "npfloat": np.float64(v), "npint": np.int64(2),
                     "f32": np.float32(v)}[kind]
                ops.append(c)
                refs.append((float(c), None))
        value, tangent = _reference(rule, refs)
        label = f"{_qualname(rule)}({kinds}) at {[r[0] for r in refs]}, k={k}"
        r = _ufunc(rule)(*ops)
        assert type(r) is Dual, f"{label}: got {type(r).__name__}"
        _check_result(r, value, tangent, label)


# ---------------------------------------------------------------------------------------
# conventions at kinks and special points (DESIGN.md "Errors", the table's comments)
#
# Each case is run through four consumers: the Dual C arithmetic, the fused DualArray
# loop, the NumPy fallback (non-contiguous operands) and the object-array loop.

PATHS = ["dual", "fused", "fallback", "object"]

def _has_object_loop(ufunc):
    return any(t.startswith("O" * ufunc.nin) for t in ufunc.types)


#: No object loop (NumPy's float_power, logaddexp, logaddexp2, all of scipy.special's:
#: object arrays raise TypeError there, with or without dualad), or an object loop that
#: calls math.floor/math.trunc.
OBJECT_UNSUPPORTED = ({r.name for r in RULES if not _has_object_loop(ufunc_of(r.name))}
                      | {"floor", "ceil", "trunc"})
#: NumPy's object loop for these compares the elements and returns one of them (or an
#: int for sign): the rule is not applied, so the conventions at ties do not hold there.
OBJECT_BY_COMPARISON = {"maximum", "minimum", "fmax", "fmin", "sign"}


def _run(path, ufunc, operands):
    """Apply ufunc to ``[(value, tangent or None)]`` (one lane); return (value, derivative).

    A traced operand with tangent ``t`` becomes a Dual/DualArray with one lane ``t``; a
    constant stays a Python float.  Array paths use 3 copies of the point.
    """
    n = 3
    args = []
    for v, t in operands:
        if t is None:
            args.append(v)
        elif path == "dual":
            args.append(Dual(v, [t]))
        elif path == "fused":
            args.append(DualArray(np.full(n, v), np.full((1, n), t)))
        elif path == "fallback":
            args.append(_noncontiguous(np.full(n, v), np.full((1, n), t)))
        elif path == "object":
            arr = np.empty(n, dtype=object)
            for j in range(n):
                arr[j] = Dual(v, [t])
            args.append(arr)
    if path == "object":
        # NumPy's object loops call the method of the *first* operand (float.hypot does
        # not exist), so a constant is a Dual with a zero partial there
        args = [a if isinstance(a, np.ndarray)
                else np.array([Dual(a, [0.0])] * n, dtype=object) for a in args]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = ufunc(*args)
    if path == "dual":
        assert type(r) is Dual
        return r.value, r.partials[0]
    if path == "object":
        assert r.dtype == object and all(type(e) is Dual for e in r), r
        vals = {e.value if e.value == e.value else "nan" for e in r}
        ders = {e.partials[0] if e.partials[0] == e.partials[0] else "nan" for e in r}
        assert len(vals) == 1 and len(ders) == 1, r
        return r[0].value, r[0].partials[0]
    assert type(r) is DualArray
    assert np.all(r.value == r.value[0]) or np.all(np.isnan(r.value))
    assert np.all(r.tangent == r.tangent[0, 0]) or np.all(np.isnan(r.tangent))
    return r.value[0], r.tangent[0, 0]


# (label, ufunc, [(value, tangent or None), ...], expected value, expected derivative)
KINK_CASES = [
    ("abs'(0)=0", np.absolute, [(0.0, 1.0)], 0.0, 0.0),
    ("abs'(-0)=0", np.absolute, [(-0.0, 1.0)], 0.0, 0.0),
    ("fabs'(0)=0", np.fabs, [(0.0, 1.0)], 0.0, 0.0),
    ("abs'(-2)=-1", np.absolute, [(-2.0, 1.0)], 2.0, -1.0),
    ("maximum tie dx", np.maximum, [(1.0, 1.0), (1.0, 0.0)], 1.0, 0.5),
    ("maximum tie dy", np.maximum, [(1.0, 0.0), (1.0, 1.0)], 1.0, 0.5),
    ("maximum tie both", np.maximum, [(1.0, 1.0), (1.0, 1.0)], 1.0, 1.0),
    ("maximum tie const", np.maximum, [(1.0, 1.0), (1.0, None)], 1.0, 0.5),
    ("maximum const tie", np.maximum, [(1.0, None), (1.0, 1.0)], 1.0, 0.5),
    ("minimum tie dx", np.minimum, [(1.0, 1.0), (1.0, 0.0)], 1.0, 0.5),
    ("minimum tie dy", np.minimum, [(-2.0, 0.0), (-2.0, 1.0)], -2.0, 0.5),
    ("minimum tie const", np.minimum, [(0.0, 1.0), (0.0, None)], 0.0, 0.5),
    ("fmax tie", np.fmax, [(1.0, 1.0), (1.0, 0.0)], 1.0, 0.5),
    ("fmin tie", np.fmin, [(1.0, 0.0), (1.0, 1.0)], 1.0, 0.5),
    ("maximum x>y", np.maximum, [(2.0, 1.0), (1.0, 3.0)], 2.0, 1.0),
    ("minimum x>y", np.minimum, [(2.0, 1.0), (1.0, 3.0)], 1.0, 3.0),
    ("fmax(nan, y) follows y", np.fmax, [(np.nan, 5.0), (1.0, 1.0)], 1.0, 1.0),
    ("fmax(x, nan) follows x", np.fmax, [(1.0, 1.0), (np.nan, 5.0)], 1.0, 1.0),
    ("fmin(nan, y) follows y", np.fmin, [(np.nan, 5.0), (1.0, 1.0)], 1.0, 1.0),
    ("fmin(x, nan) follows x", np.fmin, [(1.0, 1.0), (np.nan, 5.0)], 1.0, 1.0),
    ("fmax(x, nan const)", np.fmax, [(1.0, 1.0), (np.nan, None)], 1.0, 1.0),
    ("fmax(nan const, y)", np.fmax, [(np.nan, None), (1.0, 1.0)], 1.0, 1.0),
    ("fmin(x, nan const)", np.fmin, [(-1.0, 1.0), (np.nan, None)], -1.0, 1.0),
    ("fmin(nan const, y)", np.fmin, [(np.nan, None), (-1.0, 1.0)], -1.0, 1.0),
    ("hypot'(0,0)=0 dx", np.hypot, [(0.0, 1.0), (0.0, 0.0)], 0.0, 0.0),
    ("hypot'(0,0)=0 dy", np.hypot, [(0.0, 0.0), (0.0, 1.0)], 0.0, 0.0),
    ("hypot'(0,0)=0 both", np.hypot, [(0.0, 1.0), (0.0, 1.0)], 0.0, 0.0),
    ("hypot(x, 0 const) at 0", np.hypot, [(0.0, 1.0), (0.0, None)], 0.0, 0.0),
    ("hypot(0 const, y) at 0", np.hypot, [(0.0, None), (0.0, 1.0)], 0.0, 0.0),
    ("x**2 at 0", np.power, [(0.0, 1.0), (2, None)], 0.0, 0.0),
    ("x**2.0 at 0", np.power, [(0.0, 1.0), (2.0, None)], 0.0, 0.0),
    ("x**3.0 at 0", np.power, [(0.0, 1.0), (3.0, None)], 0.0, 0.0),
    ("x**1 at 0", np.power, [(0.0, 1.0), (1.0, None)], 0.0, 1.0),
    ("x**0 at 0", np.power, [(0.0, 1.0), (0, None)], 1.0, 0.0),
    ("x**0.0 at 0", np.power, [(0.0, 1.0), (0.0, None)], 1.0, 0.0),
    ("x**0.0 at -2", np.power, [(-2.0, 1.0), (0.0, None)], 1.0, 0.0),
    ("x**2.0 at -3", np.power, [(-3.0, 1.0), (2.0, None)], 9.0, -6.0),
    ("x**3 at -2", np.power, [(-2.0, 1.0), (3.0, None)], -8.0, 12.0),
    ("0**y const base", np.power, [(0.0, None), (2.0, 1.0)], 0.0, 0.0),
    ("0**y traced, dy", np.power, [(0.0, 0.0), (2.0, 1.0)], 0.0, 0.0),
    ("0**y traced, dx", np.power, [(0.0, 1.0), (2.0, 0.0)], 0.0, 0.0),
    ("0**y traced, both", np.power, [(0.0, 1.0), (2.0, 1.0)], 0.0, 0.0),
    ("0**1 traced, dx", np.power, [(0.0, 1.0), (1.0, 0.0)], 0.0, 1.0),
    ("x**y at 0, y=0.0 traced", np.power, [(0.0, 1.0), (0.0, 0.0)], 1.0, 0.0),
    ("float_power x**2 at 0", np.float_power, [(0.0, 1.0), (2.0, None)], 0.0, 0.0),
    ("float_power x**0 at 0", np.float_power, [(0.0, 1.0), (0.0, None)], 1.0, 0.0),
    ("float_power 0**y", np.float_power, [(0.0, None), (2.5, 1.0)], 0.0, 0.0),
    ("float_power 0**y traced", np.float_power, [(0.0, 1.0), (2.5, 1.0)], 0.0, 0.0),
    ("sqrt, zero tangent at 0", np.sqrt, [(0.0, 0.0)], 0.0, 0.0),
    ("log, zero tangent at 0", np.log, [(1.0, 0.0)], 0.0, 0.0),
    ("arcsin, zero tangent at 1", np.arcsin, [(1.0, 0.0)], np.pi / 2, 0.0),
    ("cbrt, zero tangent at 0", np.cbrt, [(0.0, 0.0)], 0.0, 0.0),
    ("floor at 2.0", np.floor, [(2.0, 1.0)], 2.0, 0.0),
    ("floor at -1.5", np.floor, [(-1.5, 1.0)], -2.0, 0.0),
    ("ceil at 2.0", np.ceil, [(2.0, 1.0)], 2.0, 0.0),
    ("ceil at 0.3", np.ceil, [(0.3, 1.0)], 1.0, 0.0),
    ("rint at 2.5", np.rint, [(2.5, 1.0)], 2.0, 0.0),
    ("rint at 0.7", np.rint, [(0.7, 1.0)], 1.0, 0.0),
    ("trunc at -1.7", np.trunc, [(-1.7, 1.0)], -1.0, 0.0),
    ("trunc at 3.0", np.trunc, [(3.0, 1.0)], 3.0, 0.0),
    ("sign at 0", np.sign, [(0.0, 1.0)], 0.0, 0.0),
    ("sign at -2", np.sign, [(-2.0, 1.0)], -1.0, 0.0),
    ("sign at 3", np.sign, [(3.0, 1.0)], 1.0, 0.0),
    # scipy.special: xlogy(0, y) = 0 with the partials of x log y; closed forms at the
    # zeros and centres; a zero tangent annihilates the infinite partial at a pole
    ("xlogy(0, y) dx", sp.xlogy, [(0.0, 1.0), (2.0, None)], 0.0, math.log(2.0)),
    ("xlogy(0, y) dy", sp.xlogy, [(0.0, None), (2.0, 1.0)], 0.0, 0.0),
    ("xlogy(0, y) both", sp.xlogy, [(0.0, 1.0), (0.5, 1.0)], 0.0, math.log(0.5)),
    ("xlog1py(0, y) dx", sp.xlog1py, [(0.0, 1.0), (1.0, None)], 0.0, math.log(2.0)),
    ("xlog1py(0, y) dy", sp.xlog1py, [(0.0, None), (-0.5, 1.0)], 0.0, 0.0),
    ("erf at 0", sp.erf, [(0.0, 1.0)], 0.0, 2.0 / math.sqrt(math.pi)),
    ("erfc at 0", sp.erfc, [(0.0, 1.0)], 1.0, -2.0 / math.sqrt(math.pi)),
    ("gamma at 1", sp.gamma, [(1.0, 1.0)], 1.0, -np.euler_gamma),
    ("gammaln at 1", sp.gammaln, [(1.0, 1.0)], 0.0, -np.euler_gamma),
    ("gammaln at 2", sp.gammaln, [(2.0, 1.0)], 0.0, 1.0 - np.euler_gamma),
    ("digamma at 1", sp.digamma, [(1.0, 1.0)], -np.euler_gamma, math.pi ** 2 / 6),
    ("expit at 0", sp.expit, [(0.0, 1.0)], 0.5, 0.25),
    ("logit at 1/2", sp.logit, [(0.5, 1.0)], 0.0, 4.0),
    ("gammaln, zero tangent at 0", sp.gammaln, [(0.0, 0.0)], np.inf, 0.0),
    ("gamma, zero tangent at -1", sp.gamma, [(-1.0, 0.0)], np.nan, 0.0),
    ("digamma, zero tangent at 0", sp.digamma, [(0.0, 0.0)], -np.inf, 0.0),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", KINK_CASES, ids=[c[0] for c in KINK_CASES])
def test_conventions_at_kinks_and_special_points(case, path):
    label, ufunc, operands, value, derivative = case
    # (by the ufunc, not its name: scipy.special.digamma is the ufunc named "psi")
    if path == "object" and (not _has_object_loop(ufunc) or ufunc.__name__
                             in OBJECT_UNSUPPORTED | OBJECT_BY_COMPARISON):
        pytest.skip(f"{ufunc.__name__}: no object loop, or NumPy's object loop does not "
                    "apply the rule")
    got_v, got_d = _run(path, ufunc, operands)
    msg = f"{label} via {path}: got value {got_v!r}, derivative {got_d!r}"
    assert_allclose(got_v, value, rtol=1e-15, atol=0, err_msg=msg)
    assert_allclose(got_d, derivative, rtol=1e-15, atol=0, err_msg=msg)


def test_abs_operator_at_zero():
    assert abs(Dual(0.0, [1.0])).partials[0] == 0.0
    r = abs(DualArray([0.0, -1.0, 2.0], [[1.0, 1.0, 1.0]]))
    assert_array_equal(r.tangent, [[0.0, -1.0, 1.0]])


def test_max_of_x_with_itself_has_derivative_one():
    # ties split 0.5/0.5, so max(x, x) = x has derivative 1 (and min too)
    for f in (np.maximum, np.minimum, np.fmax, np.fmin):
        assert dualad.derivative(lambda x, f=f: f(x, x))(1.5) == 1.0, f.__name__
        assert_array_equal(
            dualad.jacobian(lambda x, f=f: f(x, x))(np.array([1.0, -2.0])), np.eye(2),
            err_msg=f.__name__)


SQRT_SQUARE_POINTS = [0.0, -0.0, 2.0, -2.0]


@pytest.mark.parametrize("x", SQRT_SQUARE_POINTS)
def test_sqrt_of_square_has_finite_derivative(x):
    """sqrt(x**2) at 0: the zero tangent of x**2 annihilates sqrt's infinite partial."""
    expected = float(np.sign(x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dualad.derivative(lambda t: np.sqrt(t ** 2))(x) == expected
        assert dualad.derivative(lambda t: np.sqrt(t * t))(x) == expected
        assert dualad.derivative(lambda t: np.sqrt(np.square(t)))(x) == expected
        assert dualad.derivative(lambda t: (t ** 2) ** 0.5)(x) == expected
        jac = dualad.jacobian(lambda t: np.sqrt(t ** 2))(np.array([x, x, 1.0]))
        assert_array_equal(jac, np.diag([expected, expected, 1.0]), err_msg=f"x={x}")
        # non-contiguous input reaches the NumPy fallback
        jac = dualad.jacobian(lambda t: np.sqrt(t[::2] ** 2))(np.array([x, 9.0, 1.0]))
        assert_array_equal(jac, [[expected, 0, 0], [0, 0, 1.0]], err_msg=f"x={x}")


@pytest.mark.parametrize("x", [-1.0, -1e-300, 0.0])
def test_masked_branch_has_finite_derivative(x):
    """np.where(x > 0, sqrt(x), 0): the untaken branch's nan/inf does not leak."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = lambda t: np.where(t > 0, np.sqrt(t), 0.0)  # noqa: E731
        assert dualad.derivative(f)(x) == 0.0
        jac = dualad.jacobian(f)(np.array([x, 4.0, x]))
        assert_array_equal(jac, np.diag([0.0, 0.25, 0.0]), err_msg=f"x={x}")
        g = lambda t: np.where(t > 0, np.log(t), 0.0)  # noqa: E731
        assert_array_equal(dualad.jacobian(g)(np.array([x, 2.0])), np.diag([0.0, 0.5]))


# ---------------------------------------------------------------------------------------
# floating-point warnings
#
# Where NumPy's own ufunc is silent at a point (no RuntimeWarning), differentiating it
# there must be silent too, on every path, even where the partials are inf or nan
# (sqrt at 0, arcsin at 1, x**2.0 at x < 0, hypot at (0, 0), ...).

EDGE = [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, 1e-300, -1e-300, 1e300, -1e300, np.inf,
        -np.inf, np.nan]
EDGE_BINARY = [0.0, 1.0, -1.0, 2.0, -2.0, 0.5, 1e-300, 1e300, np.inf, -np.inf, np.nan]


def _numpy_silent(ufunc, args):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            ufunc(*args)
        except RuntimeWarning:
            return False
    return True


def _silent_points(rule):
    grid = EDGE if rule.arity == 1 else EDGE_BINARY
    pts = np.array(np.meshgrid(*[grid] * rule.arity)).reshape(rule.arity, -1).T
    keep = [p for p in pts if _numpy_silent(_ufunc(rule), [float(v) for v in p])]
    return np.array(keep).T


@pytest.mark.parametrize("rule", ALL_RULES, ids=RULE_IDS)
def test_no_spurious_warnings(rule):
    cols = _silent_points(rule)
    assert cols.size, rule.name
    uf = _ufunc(rule)
    n = cols.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Dual C arithmetic: traced/traced, traced/constant, constant/traced
        for p in cols.T:
            p = [float(v) for v in p]
            if rule.arity == 1:
                uf(Dual(p[0], [1.0, 0.0]))
                uf(HyperDual(p[0]))
            else:
                uf(Dual(p[0], [1.0, 0.0]), Dual(p[1], [0.0, 1.0]))
                uf(Dual(p[0], [1.0, 0.0]), p[1])
                uf(p[0], Dual(p[1], [0.0, 1.0]))
                uf(HyperDual(p[0], 1.0, 0.0), HyperDual(p[1], 0.0, 1.0))
                uf(HyperDual(p[0]), p[1])
                uf(p[0], HyperDual(p[1]))
        # fused loop, NumPy fallback
        t = np.ones((2, n))
        tracers = [DualArray(c, t) for c in cols]
        strided = [_noncontiguous(c, t) for c in cols]
        uf(*tracers)
        uf(*strided)
        if rule.arity == 2:
            uf(tracers[0], cols[1].copy())
            uf(cols[0].copy(), tracers[1])
            uf(strided[0], cols[1].copy())
            uf(cols[0].copy(), strided[1])
        # object arrays: the kernels run inside NumPy's object loop, which reports any
        # floating-point flag left behind by a partial
        if rule.name not in OBJECT_UNSUPPORTED | OBJECT_BY_COMPARISON:
            objs = [np.array([Dual(float(v), [1.0]) for v in c], dtype=object)
                    for c in cols]
            uf(*objs)
            hobjs = [np.array([HyperDual(float(v)) for v in c], dtype=object)
                     for c in cols]
            uf(*hobjs)


@pytest.mark.parametrize("f, x", [
    (lambda t: t ** 2.0, -2.0),
    (lambda t: t ** 2, -3.0),
    (lambda t: t ** 3.0, -0.5),
    (lambda t: np.power(t, 2.0), -1.0),
    (lambda t: np.sqrt(t), 0.0),
    (lambda t: np.sqrt(t), 1e-300),
    (lambda t: np.sqrt(t), 5e-324),
    (lambda t: np.sqrt(t * t), 0.0),
    (lambda t: np.cbrt(t), 0.0),
    (lambda t: np.arcsin(t), 1.0),
    (lambda t: np.arccosh(t), 1.0),
    (lambda t: np.hypot(t, t), 0.0),
    (lambda t: np.arctan2(t, t), 0.0),
    (lambda t: t ** 0.5, 0.0),
    (lambda t: 0.0 ** t, 2.0),
    (lambda t: np.abs(t), 0.0),
    (lambda t: np.where(t > 0, np.sqrt(t), 0.0), -1.0),
    (lambda t: np.where(t > 0, np.log(t), 0.0), 0.0),
], ids=["x**2.0 at -2", "x**2 at -3", "x**3.0 at -0.5", "power at -1", "sqrt at 0",
        "sqrt at 1e-300", "sqrt at denormal", "sqrt(x*x) at 0", "cbrt at 0",
        "arcsin at 1", "arccosh at 1", "hypot at 0", "arctan2 at 0", "x**0.5 at 0",
        "0**y", "abs at 0", "where sqrt", "where log"])
def test_derivatives_leave_no_warnings(f, x):
    """The transforms (order 1 and 2, scalar and array, both paths) stay silent."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dualad.derivative(f)(x)
        dualad.derivative(f, order=2)(x)
        dualad.jacobian(f)(np.array([x, x]))
        dualad.jacobian(lambda t: f(t[::2]))(np.array([x, 7.0, x]))
        # a later NumPy operation does not report a flag left behind
        np.sum(np.sqrt(np.array([1.0, 4.0])))
        np.float64(1.0) / np.float64(3.0)
        np.sin(np.array([Dual(1.0, [1.0])], dtype=object))
    assert not caught, [str(w.message) for w in caught]


@pytest.mark.parametrize("y", [2.0, 1.0, 0.0, -1.0])
def test_power_shortcut_exponents_equal_pow_bit_for_bit(y):
    """The kernel's x*x, x, 1, 1/x shortcuts give pow's (and NumPy's) result exactly."""
    xs = np.array([0.0, -0.0, 1.0, -1.0, 0.3, -2.5, 1e-300, 1e300, np.inf, -np.inf,
                   np.nan, 7.123456789])
    for x in xs:
        ans, _, _ = _kernel("power", float(x), y)
        with np.errstate(all="ignore"):  # 1e300**2 and 1/0 are part of the check
            expect = np.power(x, y)
        np.testing.assert_array_equal(ans, expect, err_msg=f"power({x}, {y})")
        if ans == 0.0:
            assert np.signbit(ans) == np.signbit(expect), f"sign of power({x}, {y})"
