"""``HyperDual``: exact second derivatives of every rule, mixed partials, the scalar type.

For ``h = f(HyperDual(x, 1, 1, 0))``: ``h.eps1 == h.eps2 == f'(x)`` and
``h.eps12 == f''(x)``.  With ``eps1 = u`` and ``eps2 = v`` on two arguments, ``eps12`` is
the mixed second directional derivative ``u^T H v``.

Oracles: first derivatives by 4th-order central differences of the rule's ufunc (NumPy's,
or SciPy's for the ``scipy.special`` entries); second
derivatives by central differences of the exact first partials (the compiled kernels'
first partials, which ``test_rules_elementwise`` checks against the complex step and
finite differences).  ``derivative(order=2)`` is checked against the same references.
"""

import copy
import math
import operator
import pickle

import numpy as np
import pytest
import scipy.special as sp
from numpy.testing import assert_allclose

import dualad
from dualad.rules._elementwise import ufunc_of
from conftest import ATOL_FD, BINARY_RULES, RTOL_FD, UNARY_RULES
from dualad import Dual, DualArray, HyperDual
from dualad._scalar import _kernel

RTOL = 1e-14
H_FD = 1e-3
UNARY_IDS = [r.name for r in UNARY_RULES]
BINARY_IDS = [r.name for r in BINARY_RULES]

#: Distance of a point to the nearest kink (no finite differences across it).
KINK_DISTANCE = {
    "absolute": lambda x: abs(x), "fabs": lambda x: abs(x), "sign": lambda x: abs(x),
    "floor": lambda x: abs(x - round(x)), "ceil": lambda x: abs(x - round(x)),
    "trunc": lambda x: abs(x - round(x)),
    "rint": lambda x: abs(x - math.floor(x) - 0.5),
    "maximum": lambda x, y: abs(x - y), "minimum": lambda x, y: abs(x - y),
    "fmax": lambda x, y: abs(x - y), "fmin": lambda x, y: abs(x - y),
    "hypot": lambda x, y: math.hypot(x, y),
}


def _central(f, x, h=H_FD):
    return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)


def _smooth_points(rule, n, seed, lo_hi=None):
    """n points (tuples) inside the rule's domain, at least 10 h away from a kink."""
    rng = np.random.default_rng([seed, sum(map(ord, rule.name))])
    domain = lo_hi or rule.domain
    out = []
    while len(out) < n:
        p = tuple(float(rng.uniform(lo, hi)) for lo, hi in domain)
        if rule.name in KINK_DISTANCE and KINK_DISTANCE[rule.name](*p) <= 10 * H_FD:
            continue
        out.append(p)
    return out


def _first(rule, *p):
    return _kernel(rule.name, *p)[1]


def _ufunc(rule):
    return ufunc_of(rule.name)


# ---------------------------------------------------------------------------------------
# every rule: value, first and second derivative

@pytest.mark.parametrize("rule", UNARY_RULES, ids=UNARY_IDS)
def test_unary_rule_second_derivative(rule):
    f = _ufunc(rule)
    d2 = dualad.derivative(f, order=2)
    for (x,) in _smooth_points(rule, 12, 0):
        label = f"rule {rule.name} at x={x!r}"
        h = f(HyperDual(x))
        assert type(h) is HyperDual, label
        fprime = _central(f, x)
        fsecond = _central(lambda t: _first(rule, t)[0], x)
        assert_allclose(h.value, f(x), rtol=1e-15, atol=0, err_msg=label)
        assert_allclose(h.eps1, fprime, rtol=RTOL_FD, atol=ATOL_FD, err_msg=label)
        assert h.eps2 == h.eps1, label
        assert_allclose(h.eps12, fsecond, rtol=RTOL_FD, atol=ATOL_FD, err_msg=label)
        assert_allclose(d2(x), fsecond, rtol=RTOL_FD, atol=ATOL_FD,
                        err_msg="derivative(order=2): " + label)
        # directions scale: eps1 = u f', eps2 = v f', eps12 = u v f'' + w f'
        u, v, w = 0.5, -3.0, 2.0
        g = f(HyperDual(x, u, v, w))
        assert_allclose([g.eps1, g.eps2], [u * h.eps1, v * h.eps1], rtol=RTOL,
                        atol=1e-300, err_msg=label)
        assert_allclose(g.eps12, u * v * h.eps12 + w * h.eps1, rtol=1e-13,
                        atol=1e-13 * (abs(u * v * h.eps12) + abs(w * h.eps1)),
                        err_msg=label)


#: Ways of making a scalar function of t out of a binary rule.
BINARY_FORMS = ["f(t, c)", "f(c, t)", "f(a+u t, b+v t)", "f(t, t)"]


def _binary_form(rule, form, p):
    """(function of a scalar, its exact first derivative as a function of t, point t0)."""
    f = _ufunc(rule)
    x, y = p
    if form == "f(t, c)":
        return (lambda t: f(t, y)), (lambda t: _first(rule, t, y)[0]), x
    if form == "f(c, t)":
        return (lambda t: f(x, t)), (lambda t: _first(rule, x, t)[1]), y
    if form == "f(t, t)":
        return (lambda t: f(t, t)), (lambda t: sum(_first(rule, t, t))), None
    u, v = 0.75, -0.5  # x = x0 + u t, y = y0 + v t at t = 0

    def g(t):
        return f(x + u * t, y + v * t)

    def gprime(t):
        dx, dy = _first(rule, x + u * t, y + v * t)
        return dx * u + dy * v

    return g, gprime, 0.0


@pytest.mark.parametrize("form", BINARY_FORMS)
@pytest.mark.parametrize("rule", BINARY_RULES, ids=BINARY_IDS)
def test_binary_rule_second_derivative(rule, form):
    if form == "f(t, t)":
        lo = max(rule.domain[0][0], rule.domain[1][0])
        hi = min(rule.domain[0][1], rule.domain[1][1])
        if rule.name in ("maximum", "minimum", "fmax", "fmin"):
            pytest.skip("f(t, t) sits on the kink of " + rule.name)  # see the tie tests
        points = [(t, t) for t, _ in _smooth_points(rule, 8, 1, ((lo, hi), (lo, hi)))]
    else:
        points = _smooth_points(rule, 8, 1)
    for p in points:
        g, gprime, t0 = _binary_form(rule, form, p)
        d1, d2 = dualad.derivative(g), dualad.derivative(g, order=2)
        t0 = p[0] if t0 is None else t0
        label = f"rule {rule.name}, {form} at (x, y)={p!r}"
        h = g(HyperDual(t0))
        assert type(h) is HyperDual, label
        assert_allclose(h.value, g(t0), rtol=1e-15, atol=0, err_msg=label)
        assert_allclose(h.eps1, _central(g, t0), rtol=RTOL_FD, atol=ATOL_FD, err_msg=label)
        assert h.eps2 == h.eps1, label
        second = _central(gprime, t0)
        assert_allclose(h.eps12, second, rtol=RTOL_FD, atol=ATOL_FD, err_msg=label)
        assert_allclose(d2(t0), second, rtol=RTOL_FD, atol=ATOL_FD,
                        err_msg="derivative(order=2): " + label)
        assert_allclose(d1(t0), h.eps1, rtol=1e-13, atol=1e-300,
                        err_msg="derivative(order=1) vs HyperDual eps1: " + label)


@pytest.mark.parametrize("rule", BINARY_RULES, ids=BINARY_IDS)
def test_binary_rule_mixed_partials(rule):
    """eps1 on x and eps2 on y: eps12 is d2f/dxdy; general directions give u^T H v."""
    f = _ufunc(rule)
    for x, y in _smooth_points(rule, 8, 2):
        label = f"rule {rule.name} at (x, y)=({x!r}, {y!r})"
        dx, dy = _first(rule, x, y)
        hxx = _central(lambda t: _first(rule, t, y)[0], x)
        hxy = _central(lambda t: _first(rule, x, t)[0], y)
        hyx = _central(lambda t: _first(rule, t, y)[1], x)
        hyy = _central(lambda t: _first(rule, x, t)[1], y)
        h = f(HyperDual(x, 1.0, 0.0), HyperDual(y, 0.0, 1.0))
        assert_allclose([h.eps1, h.eps2], [dx, dy], rtol=RTOL_FD, atol=ATOL_FD,
                        err_msg=label)
        assert_allclose(h.eps12, hxy, rtol=RTOL_FD, atol=ATOL_FD, err_msg=label)
        assert_allclose(h.eps12, hyx, rtol=RTOL_FD, atol=ATOL_FD, err_msg=label)
        # the other way round: the mixed partial is symmetric
        g = f(HyperDual(x, 0.0, 1.0), HyperDual(y, 1.0, 0.0))
        assert_allclose(g.eps12, h.eps12, rtol=RTOL, atol=1e-300, err_msg=label)
        # general directions u (eps1), v (eps2) and cross seeds w
        u, v, w = (0.5, -1.5), (2.0, 0.25), (0.3, -0.7)
        g = f(HyperDual(x, u[0], v[0], w[0]), HyperDual(y, u[1], v[1], w[1]))
        hess = np.array([[hxx, hxy], [hyx, hyy]])
        expected = np.array(u) @ hess @ np.array(v) + dx * w[0] + dy * w[1]
        scale = np.abs(np.array(u)) @ np.abs(hess) @ np.abs(np.array(v)) + abs(dx * w[0]) \
            + abs(dy * w[1])
        assert_allclose(g.eps12, expected, rtol=0, atol=RTOL_FD * scale + ATOL_FD,
                        err_msg=label)
        assert_allclose([g.eps1, g.eps2], [dx * u[0] + dy * u[1], dx * v[0] + dy * v[1]],
                        rtol=RTOL_FD, atol=ATOL_FD, err_msg=label)


# ---------------------------------------------------------------------------------------
# conventions at kinks and special points

SPECIAL_CASES = [
    # label, function of a HyperDual, point, value, first, second
    ("abs at 0", abs, 0.0, 0.0, 0.0, 0.0),
    ("np.abs at 0", np.abs, 0.0, 0.0, 0.0, 0.0),
    ("abs at -2", abs, -2.0, 2.0, -1.0, 0.0),
    ("x**2 at 0", lambda h: h ** 2, 0.0, 0.0, 0.0, 2.0),
    ("x**2.0 at 0", lambda h: h ** 2.0, 0.0, 0.0, 0.0, 2.0),
    ("x**2.0 at -3", lambda h: h ** 2.0, -3.0, 9.0, -6.0, 2.0),
    ("x**3 at -2", lambda h: h ** 3, -2.0, -8.0, 12.0, -12.0),
    ("x**3 at 0", lambda h: h ** 3, 0.0, 0.0, 0.0, 0.0),
    ("x**1 at 0", lambda h: h ** 1, 0.0, 0.0, 1.0, 0.0),
    ("x**0 at 0", lambda h: h ** 0, 0.0, 1.0, 0.0, 0.0),
    ("x**0.0 at -1", lambda h: h ** 0.0, -1.0, 1.0, 0.0, 0.0),
    ("0**t at 2", lambda h: 0.0 ** h, 2.0, 0.0, 0.0, 0.0),
    ("0**t at 2.5", lambda h: np.power(0.0, h), 2.5, 0.0, 0.0, 0.0),
    ("2**t at 1", lambda h: 2.0 ** h, 1.0, 2.0, 2.0 * math.log(2.0),
     2.0 * math.log(2.0) ** 2),
    ("maximum tie", lambda h: np.maximum(h, 1.0), 1.0, 1.0, 0.5, 0.0),
    ("minimum tie", lambda h: np.minimum(1.0, h), 1.0, 1.0, 0.5, 0.0),
    ("maximum(t, t)", lambda h: np.maximum(h, h), 1.0, 1.0, 1.0, 0.0),
    ("hypot at (0, 0)", lambda h: np.hypot(h, 0.0), 0.0, 0.0, 0.0, 0.0),
    ("floor", np.floor, 2.0, 2.0, 0.0, 0.0),
    ("sign at 0", np.sign, 0.0, 0.0, 0.0, 0.0),
    ("fmax(t, nan)", lambda h: np.fmax(h, np.nan), 1.5, 1.5, 1.0, 0.0),
    ("fmin(nan, t)", lambda h: np.fmin(np.nan, h), 1.5, 1.5, 1.0, 0.0),
    # scipy.special: closed forms (euler_gamma, pi^2/6 = psi_1(1), -2 zeta(3) = psi_2(1))
    ("erf at 0", sp.erf, 0.0, 0.0, 2.0 / math.sqrt(math.pi), 0.0),
    ("gamma at 1", sp.gamma, 1.0, 1.0, -np.euler_gamma,
     np.euler_gamma ** 2 + math.pi ** 2 / 6),
    ("gammaln at 1", sp.gammaln, 1.0, 0.0, -np.euler_gamma, math.pi ** 2 / 6),
    ("digamma at 1", sp.digamma, 1.0, -np.euler_gamma, math.pi ** 2 / 6,
     -2.0 * 1.2020569031595942),
    ("expit at 0", sp.expit, 0.0, 0.5, 0.25, 0.0),
    ("logit at 1/2", sp.logit, 0.5, 0.0, 4.0, 0.0),
    ("xlogy(t, 2) at 0", lambda h: sp.xlogy(h, 2.0), 0.0, 0.0, math.log(2.0), 0.0),
    ("xlog1py(2, t) at 0", lambda h: sp.xlog1py(2.0, h), 0.0, 0.0, 2.0, -2.0),
]


@pytest.mark.parametrize("case", SPECIAL_CASES, ids=[c[0] for c in SPECIAL_CASES])
def test_conventions_at_special_points(case):
    label, f, x, value, first, second = case
    h = f(HyperDual(x))
    assert type(h) is HyperDual, label
    assert_allclose([h.value, h.eps1, h.eps2, h.eps12], [value, first, first, second],
                    rtol=1e-15, atol=0, err_msg=label)
    assert_allclose(dualad.derivative(f, order=2)(x), second, rtol=1e-15, atol=0,
                    err_msg="derivative(order=2): " + label)


def test_zero_directions_annihilate():
    """A zero eps part kills an infinite partial: sqrt at 0 with no perturbation."""
    h = np.sqrt(HyperDual(0.0, 0.0, 0.0, 0.0))
    assert (h.value, h.eps1, h.eps2, h.eps12) == (0.0, 0.0, 0.0, 0.0)
    h = np.sqrt(HyperDual(0.0, 1.0, 0.0, 0.0))  # eps2 = 0: no second-order term
    assert h.eps2 == 0.0 and h.eps12 == 0.0
    h = np.log(HyperDual(1.0, 0.0, 0.0, 1.0))
    assert (h.eps1, h.eps2, h.eps12) == (0.0, 0.0, 1.0)


# ---------------------------------------------------------------------------------------
# operators and the scalar type

REFERENCE = {  # value, (dx, dy), (dxx, dxy, dyy)
    "+": lambda x, y: (x + y, (1.0, 1.0), (0.0, 0.0, 0.0)),
    "-": lambda x, y: (x - y, (1.0, -1.0), (0.0, 0.0, 0.0)),
    "*": lambda x, y: (x * y, (y, x), (0.0, 1.0, 0.0)),
    "/": lambda x, y: (x / y, (1 / y, -x / y ** 2), (0.0, -1 / y ** 2, 2 * x / y ** 3)),
    "**": lambda x, y: (x ** y, (y * x ** (y - 1), x ** y * math.log(x)),
                        (y * (y - 1) * x ** (y - 2),
                         x ** (y - 1) * (1 + y * math.log(x)),
                         x ** y * math.log(x) ** 2)),
}
OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul,
             "/": operator.truediv, "**": operator.pow}
CONSTANTS = [("float", 1.75, 1.75), ("int", 3, 3.0), ("np.float64", np.float64(1.75), 1.75),
             ("np.int64", np.int64(3), 3.0), ("np.float32", np.float32(1.75), 1.75),
             ("bool", True, 1.0)]


def _hd_expected(op, x, ex, y, ey):
    """Hyper-dual result of x op y; ex/ey = (eps1, eps2, eps12), None for a constant."""
    value, (dx, dy), (dxx, dxy, dyy) = REFERENCE[op](x, y)
    a = ex or (0.0, 0.0, 0.0)
    b = ey or (0.0, 0.0, 0.0)
    eps1 = dx * a[0] + dy * b[0]
    eps2 = dx * a[1] + dy * b[1]
    eps12 = (dx * a[2] + dy * b[2] + dxx * a[0] * a[1] + dxy * (a[0] * b[1] + b[0] * a[1])
             + dyy * b[0] * b[1])
    return value, eps1, eps2, eps12


def _check_hd(h, expected, label):
    assert type(h) is HyperDual, f"{label}: got {type(h).__name__}"
    got = [h.value, h.eps1, h.eps2, h.eps12]
    assert_allclose(got, expected, rtol=1e-13, atol=1e-13 * max(map(abs, expected)),
                    err_msg=label)


@pytest.mark.parametrize("const", CONSTANTS, ids=[c[0] for c in CONSTANTS])
@pytest.mark.parametrize("op", list(OPERATORS))
def test_operators_with_constants(op, const):
    label, c, cv = const
    x, ex = 1.3, (1.0, -0.5, 0.25)
    _check_hd(OPERATORS[op](HyperDual(x, *ex), c), _hd_expected(op, x, ex, cv, None),
              f"HyperDual {op} {label}")
    _check_hd(OPERATORS[op](c, HyperDual(x, *ex)), _hd_expected(op, cv, None, x, ex),
              f"{label} {op} HyperDual")


@pytest.mark.parametrize("op", list(OPERATORS))
def test_operators_between_hyperduals(op):
    x, ex = 1.3, (1.0, 0.0, 0.5)
    y, ey = 0.7, (0.0, 1.0, -1.0)
    _check_hd(OPERATORS[op](HyperDual(x, *ex), HyperDual(y, *ey)),
              _hd_expected(op, x, ex, y, ey), f"HyperDual {op} HyperDual")
    h = HyperDual(x, 1.0, 1.0)
    _check_hd(OPERATORS[op](h, h), _hd_expected(op, x, (1.0, 1.0, 0.0), x, (1.0, 1.0, 0.0)),
              f"h {op} h")


def test_unary_operators():
    h = HyperDual(-1.5, 1.0, 2.0, 3.0)
    _check_hd(-h, [1.5, -1.0, -2.0, -3.0], "-h")
    _check_hd(+h, [-1.5, 1.0, 2.0, 3.0], "+h")
    _check_hd(abs(h), [1.5, -1.0, -2.0, -3.0], "abs(h)")


def test_hyperduals_of_different_tags_or_with_duals_are_rejected():
    with pytest.raises(TypeError):
        HyperDual(1.0, tag=1) + HyperDual(2.0, tag=2)
    with pytest.raises(TypeError):
        HyperDual(1.0) * Dual(2.0, [1.0])
    with pytest.raises(TypeError):
        Dual(2.0, [1.0]) * HyperDual(1.0)
    with pytest.raises(TypeError):
        HyperDual(1.0) + 1j


def test_comparisons_and_bool():
    h = HyperDual(2.0, 1.0, -1.0, 5.0)
    for o in (3.0, 3, np.float64(3.0), np.int64(3), HyperDual(3.0, 0.0, 9.0)):
        assert h < o and h <= o and not h > o and not h >= o
        assert o > h and o >= h and not o < h and not o <= h
    assert h == HyperDual(2.0, 1.0, -1.0, 5.0)
    assert h != HyperDual(2.0, 1.0, -1.0, 4.0)
    assert h != HyperDual(2.0, 1.0, 0.0, 5.0)
    assert h != HyperDual(2.0, 1.0, -1.0, 5.0, tag=3)
    assert h != 2.0 and HyperDual(2.0, 0.0, 0.0, 0.0) == 2.0
    assert hash(HyperDual(2.0, 0.0, 0.0, 0.0)) == hash(2.0)
    assert hash(h) == hash(HyperDual(2.0, 1.0, -1.0, 5.0))
    assert bool(h) and not bool(HyperDual(0.0)) and bool(HyperDual(float("nan")))


def test_constructor_attributes_and_immutability():
    h = HyperDual(1, 2, 3, 4, tag=5)
    assert (h.value, h.eps1, h.eps2, h.eps12, h.tag) == (1.0, 2.0, 3.0, 4.0, 5)
    assert (HyperDual(1.5).eps1, HyperDual(1.5).eps2, HyperDual(1.5).eps12) == (1, 1, 0)
    assert (h.shape, h.ndim) == ((), 0)
    for name in ("value", "eps1", "eps2", "eps12", "tag", "other"):
        with pytest.raises(AttributeError):
            setattr(h, name, 0.0)
    assert h == HyperDual(1, 2, 3, 4, tag=5)
    for bad in (1j, "1", None, Dual(1.0)):
        with pytest.raises(TypeError):
            HyperDual(bad)
    for conv in (float, int, math.sin):
        with pytest.raises(TypeError):
            conv(h)


def test_init_cannot_mutate():
    """Calling __init__ again must not change a HyperDual (it is hashable and shared)."""
    h = HyperDual(1.0, 2.0, 3.0, 4.0, tag=5)
    with pytest.raises(TypeError):
        h.__init__(9.0, 9.0, 9.0, 9.0, tag=9)
    assert (h.value, h.eps1, h.eps2, h.eps12, h.tag) == (1.0, 2.0, 3.0, 4.0, 5)


def test_equality_with_numbers_of_every_type():
    for two in (2, 2.0, np.float64(2.0), np.int64(2), np.float32(2.0)):
        assert HyperDual(2.0, 0.0, 0.0, 0.0) == two, type(two)
        assert not (HyperDual(2.0) == two) and HyperDual(2.0) != two, type(two)
        assert not (two == HyperDual(2.0)), type(two)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_and_repr(protocol):
    h = HyperDual(1.25, -0.5, 2.0, 0.125, tag=4)
    assert pickle.loads(pickle.dumps(h, protocol=protocol)) == h
    assert copy.deepcopy(h) == h
    assert repr(h) == "HyperDual(1.25, eps1=-0.5, eps2=2.0, eps12=0.125, tag=4)"
    assert eval(repr(h), {"HyperDual": HyperDual}) == h  # noqa: S307


def test_object_array_of_hyperduals():
    arr = np.array([HyperDual(0.5), HyperDual(-2.0)])
    assert arr.dtype == object
    s = np.sin(arr)
    _check_hd(s[1], [math.sin(-2.0), math.cos(-2.0), math.cos(-2.0), -math.sin(-2.0)],
              "np.sin(arr)[1]")
    total = np.sum(np.exp(arr) * arr)
    # d/dx x e^x = (1 + x) e^x, d2 = (2 + x) e^x, summed over both points
    xs = [0.5, -2.0]
    _check_hd(total, [sum(x * math.exp(x) for x in xs),
                      sum((1 + x) * math.exp(x) for x in xs),
                      sum((1 + x) * math.exp(x) for x in xs),
                      sum((2 + x) * math.exp(x) for x in xs)], "sum(exp(arr) * arr)")


def test_second_derivative_of_array_valued_function():
    f = lambda t: np.array([t ** 3, np.sin(t), 2.0])  # noqa: E731
    assert_allclose(dualad.derivative(f, order=2)(0.7), [6 * 0.7, -math.sin(0.7), 0.0],
                    rtol=RTOL)


def test_hyperdual_and_dual_array_do_not_mix():
    with pytest.raises(TypeError):
        HyperDual(1.0) * DualArray([1.0, 2.0], [[1.0, 0.0]])
