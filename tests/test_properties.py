"""Properties of the elementwise rules, on hypothesis-drawn points inside their domains.

* the pushforward (jvp) is linear in the tangent, for Dual, DualArray (fused loop and
  NumPy fallback) and ``dualad.jvp``;
* ``HyperDual`` ``eps12`` equals the mixed partial (central differences of the exact first
  partials);
* second derivatives are symmetric: ``u^T H v == v^T H u`` for HyperDual seeds, and the
  forward-over-forward Hessian of ``f(x0, x1)`` is symmetric and equals the HyperDual one.

Points closer than ``MARGIN`` to a kink are rejected (``assume``).  Examples are
derandomized, so a run is reproducible; there is no deadline (no timing dependence).
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import dualad
from dualad.rules._elementwise import ufunc_of
from conftest import ATOL_FD, BINARY_RULES, RTOL_FD, UNARY_RULES
from dualad import Dual, DualArray, HyperDual
from dualad._scalar import _kernel
from dualad.rules._elementwise import RULES

H_FD = 1e-3
MARGIN = 10 * H_FD
EPS = np.finfo(float).eps

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.filter_too_much,
                                           HealthCheck.too_slow])

KINK_DISTANCE = {
    "absolute": lambda x: abs(x), "fabs": lambda x: abs(x), "sign": lambda x: abs(x),
    "floor": lambda x: abs(x - round(x)), "ceil": lambda x: abs(x - round(x)),
    "trunc": lambda x: abs(x - round(x)),
    "rint": lambda x: abs(x - math.floor(x) - 0.5),
    "maximum": lambda x, y: abs(x - y), "minimum": lambda x, y: abs(x - y),
    "fmax": lambda x, y: abs(x - y), "fmin": lambda x, y: abs(x - y),
    "hypot": lambda x, y: math.hypot(x, y),
}

# (no subnormal tangents: scaling them is not exact, and exactness is what is checked)
TANGENT = st.floats(-4.0, 4.0, allow_nan=False).filter(lambda t: t == 0 or abs(t) > 1e-100)
COEFF = st.floats(-3.0, 3.0, allow_nan=False)


def _point(rule):
    """A strategy for a point (tuple) inside the rule's domain."""
    return st.tuples(*[st.floats(lo, hi, allow_nan=False, allow_infinity=False)
                       for lo, hi in rule.domain])


def _smooth(rule, p):
    if rule.name in KINK_DISTANCE:
        assume(KINK_DISTANCE[rule.name](*p) > MARGIN)


def _central(f, x, h=H_FD):
    return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)


def _ufunc(rule):
    return ufunc_of(rule.name)


def _first(rule, *p):
    return _kernel(rule.name, *p)[1]


def _scale(rule, p, a, u, b, v):
    """Size of the terms of a * (d . u) + b * (d . v), for the rounding bound."""
    d = np.abs(np.array(_first(rule, *p)))
    return sum(d[i] * (abs(a) * np.abs(u[i]) + abs(b) * np.abs(v[i]))
               for i in range(rule.arity))


def _check_linear(got, a, pu, b, pv, scale, label):
    """got == a pu + b pv up to the rounding of terms of size ``scale``."""
    expected = a * np.asarray(pu) + b * np.asarray(pv)
    bound = 16 * EPS * (scale + np.abs(expected)) + 1e-300
    assert np.all(np.abs(np.asarray(got) - expected) <= bound), (
        f"{label}: {got!r} != {a!r} * {pu!r} + {b!r} * {pv!r}")


# ---------------------------------------------------------------------------------------
# jvp is linear in the tangent

def _all_rules_given(extra):
    """Decorate a test of (rule, point, ...) for every rule with its domain strategy."""
    def deco(test):
        @pytest.mark.parametrize("rule", list(RULES), ids=[r.name for r in RULES])
        @SETTINGS
        @given(data=st.data())
        def wrapper(rule, data):
            p = data.draw(_point(rule), label="point")
            _smooth(rule, p)
            test(rule, p, *[data.draw(s, label=n) for n, s in extra])
        wrapper.__name__ = test.__name__
        wrapper.__doc__ = test.__doc__
        return wrapper
    return deco


@_all_rules_given([("u", st.tuples(TANGENT, TANGENT)), ("v", st.tuples(TANGENT, TANGENT)),
                   ("a", COEFF), ("b", COEFF)])
def test_dual_pushforward_is_linear(rule, p, u, v, a, b):
    """Lanes u, v and a u + b v in one Dual: the third output lane is a*first + b*second."""
    args = [Dual(p[i], [u[i], v[i], a * u[i] + b * v[i]]) for i in range(rule.arity)]
    r = _ufunc(rule)(*args)
    label = f"rule {rule.name} at {p}"
    _check_linear(r.partials[2], a, r.partials[0], b, r.partials[1],
                  _scale(rule, p, a, u, b, v), label)
    # homogeneous of degree one, exactly for powers of two -- unless a product underflows
    # to a subnormal, which drops bits (d * u and d * 4u then round differently)
    s = [Dual(p[i], [4.0 * u[i]]) for i in range(rule.arity)]
    scaled = _ufunc(rule)(*s).partials[0]
    if abs(r.partials[0]) >= np.finfo(float).tiny or r.partials[0] == 0.0:
        assert scaled == 4.0 * r.partials[0], label


@_all_rules_given([("n", st.integers(1, 6)), ("seed", st.integers(0, 2 ** 32 - 1)),
                   ("a", COEFF), ("b", COEFF)])
def test_dual_array_pushforward_is_linear(rule, p, n, seed, a, b):
    """On arrays, in the fused loop and in the NumPy fallback (strided operands)."""
    rng = np.random.default_rng(seed)
    vals = [np.full(n, p[i]) for i in range(rule.arity)]
    u = [rng.standard_normal(n) for _ in range(rule.arity)]
    v = [rng.standard_normal(n) for _ in range(rule.arity)]
    lanes = [np.stack([u[i], v[i], a * u[i] + b * v[i]]) for i in range(rule.arity)]
    fused = _ufunc(rule)(*[DualArray(vals[i], lanes[i]) for i in range(rule.arity)])
    big = [DualArray(np.repeat(vals[i], 2), np.repeat(lanes[i], 2, axis=1))[::2]
           for i in range(rule.arity)]
    fallback = _ufunc(rule)(*big)
    for label, r in (("fused", fused), ("fallback", fallback)):
        t = r.tangent
        _check_linear(t[2], a, t[0], b, t[1], _scale(rule, p, a, u, b, v),
                      f"rule {rule.name} ({label}) at {p}")
    assert_allclose(fallback.tangent, fused.tangent, rtol=1e-13,
                    atol=1e-13 * np.max(np.abs(fused.tangent)),
                    err_msg=f"rule {rule.name}: fused vs fallback at {p}")


@_all_rules_given([("u", st.tuples(TANGENT, TANGENT)), ("v", st.tuples(TANGENT, TANGENT)),
                   ("a", COEFF), ("b", COEFF)])
def test_jvp_is_linear(rule, p, u, v, a, b):
    """dualad.jvp of f(x) = rule(x[0], x[1]) at x = p."""
    f = (lambda x: _ufunc(rule)(x[0])) if rule.arity == 1 else \
        (lambda x: _ufunc(rule)(x[0], x[1]))
    x = np.array(p)
    u, v = np.array(u[:rule.arity]), np.array(v[:rule.arity])
    value, ju = dualad.jvp(f, x, u)
    _, jv = dualad.jvp(f, x, v)
    _, juv = dualad.jvp(f, x, a * u + b * v)
    label = f"rule {rule.name} at {p}"
    assert_allclose(value, _ufunc(rule)(*p), rtol=1e-15, atol=0, err_msg=label)
    # the jvp is the first partials against the tangent
    d = np.array(_first(rule, *p))
    assert_allclose(ju, d @ u, rtol=1e-13, atol=1e-13 * (np.abs(d) @ np.abs(u)),
                    err_msg=label)
    _check_linear(juv, a, ju, b, jv, _scale(rule, p, a, u, b, v), label)


# ---------------------------------------------------------------------------------------
# HyperDual eps12 equals the mixed partial; second derivatives are symmetric

@pytest.mark.parametrize("rule", BINARY_RULES, ids=[r.name for r in BINARY_RULES])
@SETTINGS
@given(data=st.data())
def test_hyperdual_eps12_is_the_mixed_partial(rule, data):
    x, y = data.draw(_point(rule), label="point")
    _smooth(rule, (x, y))
    f = _ufunc(rule)
    label = f"rule {rule.name} at ({x!r}, {y!r})"
    h = f(HyperDual(x, 1.0, 0.0), HyperDual(y, 0.0, 1.0))
    mixed = _central(lambda t: _first(rule, x, t)[0], y)
    assert_allclose(h.eps12, mixed, rtol=RTOL_FD, atol=ATOL_FD, err_msg=label)
    # symmetric: x on eps2 and y on eps1 gives the same cross term
    g = f(HyperDual(x, 0.0, 1.0), HyperDual(y, 1.0, 0.0))
    assert_allclose(g.eps12, h.eps12, rtol=1e-14, atol=1e-300, err_msg=label)


@pytest.mark.parametrize("rule", UNARY_RULES, ids=[r.name for r in UNARY_RULES])
@SETTINGS
@given(data=st.data(), u=TANGENT, v=TANGENT)
def test_hyperdual_eps12_of_unary_rules(rule, data, u, v):
    (x,) = data.draw(_point(rule), label="point")
    _smooth(rule, (x,))
    h = _ufunc(rule)(HyperDual(x, u, v))
    second = _central(lambda t: _first(rule, t)[0], x)
    label = f"rule {rule.name} at {x!r}, u={u!r}, v={v!r}"
    assert_allclose(h.eps12, u * v * second, rtol=RTOL_FD, atol=ATOL_FD * (1 + abs(u * v)),
                    err_msg=label)
    g = _ufunc(rule)(HyperDual(x, v, u))
    assert_allclose(g.eps12, h.eps12, rtol=1e-15, atol=1e-300, err_msg=label)


@pytest.mark.parametrize("rule", BINARY_RULES, ids=[r.name for r in BINARY_RULES])
@SETTINGS
@given(data=st.data(), u=st.tuples(TANGENT, TANGENT), v=st.tuples(TANGENT, TANGENT))
def test_second_derivatives_are_symmetric(rule, data, u, v):
    """u^T H v == v^T H u, and the nested forward Hessian is symmetric and equal to it."""
    x, y = data.draw(_point(rule), label="point")
    _smooth(rule, (x, y))
    f = _ufunc(rule)
    label = f"rule {rule.name} at ({x!r}, {y!r}), u={u}, v={v}"
    uv = f(HyperDual(x, u[0], v[0]), HyperDual(y, u[1], v[1])).eps12
    vu = f(HyperDual(x, v[0], u[0]), HyperDual(y, v[1], u[1])).eps12
    hxx = f(HyperDual(x, 1.0, 1.0), y).eps12
    hxy = f(HyperDual(x, 1.0, 0.0), HyperDual(y, 0.0, 1.0)).eps12
    hyy = f(x, HyperDual(y, 1.0, 1.0)).eps12
    hess = np.array([[hxx, hxy], [hxy, hyy]])
    scale = np.abs(u) @ np.abs(hess) @ np.abs(v) + 1e-300
    assert abs(uv - vu) <= 16 * EPS * scale, label
    assert abs(uv - np.array(u) @ hess @ np.array(v)) <= 16 * EPS * scale, label
    # forward over forward: Jacobian of the gradient, through DualArrays of two tags
    nested = dualad.jacobian(dualad.grad(lambda z: f(z[0], z[1])))(np.array([x, y]))
    assert_allclose(nested, nested.T, rtol=1e-13, atol=1e-13 * np.max(np.abs(hess)),
                    err_msg="nested Hessian symmetric: " + label)
    assert_allclose(nested, hess, rtol=1e-13, atol=1e-13 * np.max(np.abs(hess)),
                    err_msg="nested Hessian vs HyperDual: " + label)
