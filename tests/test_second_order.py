"""Second order: ``hessian`` and ``hvp`` in both strategies, every rule of the table.

Oracles, independent of the second-order code:

- per rule: central differences of the exact *first* partials of the compiled kernels
  (which ``test_rules_elementwise`` checks against the complex step), so
  ``d/dx f'(x)`` is a difference quotient of an exact quantity;
- for whole functions: central differences of the exact gradient (``fd_jacobian`` of
  ``dualad.grad``), and SciPy's hand-written ``rosen_hess`` / ``rosen_hess_prod``.

Both strategies ("forward": forward-over-forward, "reverse": forward-over-reverse) run
every check; "auto" must agree with them.
"""

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.optimize import rosen_hess, rosen_hess_prod

import dualad
from conftest import BINARY_RULES, UNARY_RULES, fd_jacobian
from dualad._scalar import _kernel
from dualad.rules._elementwise import ufunc_of

STRATEGIES = ["forward", "reverse"]
H_FD = 1e-3

#: Distance to the nearest kink of the rules that have one (no differences across it).
KINK = {
    "absolute": lambda x: abs(x), "fabs": lambda x: abs(x), "sign": lambda x: abs(x),
    "floor": lambda x: abs(x - round(x)), "ceil": lambda x: abs(x - round(x)),
    "trunc": lambda x: abs(x - round(x)), "rint": lambda x: abs(x - np.floor(x) - 0.5),
    "maximum": lambda x, y: abs(x - y), "minimum": lambda x, y: abs(x - y),
    "fmax": lambda x, y: abs(x - y), "fmin": lambda x, y: abs(x - y),
    "hypot": lambda x, y: np.hypot(x, y),
}


def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def _points(rule, n, seed):
    rng = np.random.default_rng([seed, sum(map(ord, rule.name))])
    out = []
    while len(out) < n:
        p = tuple(float(rng.uniform(lo, hi)) for lo, hi in rule.domain)
        if rule.name in KINK and KINK[rule.name](*p) <= 10 * H_FD:
            continue
        out.append(p)
    return np.array(out)


def _central(f, x, h=H_FD):
    return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)


def _first(name, *p):
    """The exact first partials of a rule at a point (compiled kernel)."""
    return np.asarray(_kernel(name, *p)[1], dtype=float)


def _assert_close(actual, expected, label):
    scale = max(1.0, float(np.max(np.abs(expected))) if np.size(expected) else 1.0)
    assert_allclose(actual, expected, rtol=1e-6, atol=1e-7 * scale, err_msg=label)


# ---------------------------------------------------------------------------------------
# every rule, both strategies, Hessian and HVP

@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("rule", UNARY_RULES, ids=[r.name for r in UNARY_RULES])
def test_unary_rule_hessian(rule, strategy):
    pts = _points(rule, 6, 0)[:, 0]
    w = np.linspace(0.5, 1.5, pts.size)
    f = ufunc_of(rule.name)

    def fun(x):
        return np.sum(w * f(x))
    expected = np.diag(w * np.array(
        [_central(lambda t: _first(rule.name, t)[0], x) for x in pts]))
    H = dualad.hessian(fun, mode=strategy)(pts)
    _assert_close(H, expected, f"{rule.name} hessian ({strategy}) at {pts}")
    v = np.cos(np.arange(pts.size))
    hv = dualad.hvp(fun, mode=strategy)(pts, v)
    _assert_close(hv, expected @ v, f"{rule.name} hvp ({strategy}) at {pts}")


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("rule", BINARY_RULES, ids=[r.name for r in BINARY_RULES])
def test_binary_rule_hessian(rule, strategy):
    pts = _points(rule, 4, 1)
    k = len(pts)
    w = np.linspace(0.5, 1.5, k)
    f = ufunc_of(rule.name)

    def fun(z):
        return np.sum(w * f(z[:k], z[k:]))
    z = np.concatenate([pts[:, 0], pts[:, 1]])
    expected = np.zeros((2 * k, 2 * k))
    for i, (x, y) in enumerate(pts):
        # d/dx and d/dy of the exact partials (f_x, f_y): the 2x2 block of point i
        dx = _central(lambda t: _first(rule.name, t, y), x)
        dy = _central(lambda t: _first(rule.name, x, t), y)
        idx = [i, k + i]
        expected[np.ix_(idx, idx)] = w[i] * np.array([[dx[0], dy[0]], [dx[1], dy[1]]])
    expected = 0.5 * (expected + expected.T)  # the differences' rounding, symmetrised
    H = dualad.hessian(fun, mode=strategy)(z)
    _assert_close(H, expected, f"{rule.name} hessian ({strategy}) at {pts.tolist()}")
    v = np.sin(np.arange(2 * k) + 1.0)
    _assert_close(dualad.hvp(fun, mode=strategy)(z, v), expected @ v,
                  f"{rule.name} hvp ({strategy})")


# ---------------------------------------------------------------------------------------
# whole functions against SciPy's hand-written derivatives and differences of the gradient

@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 30), seed=st.integers(0, 2 ** 31))
def test_rosen_hess_and_hess_prod_to_rounding(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, n)
    v = rng.standard_normal(n)
    H_ref = rosen_hess(x)
    hv_ref = rosen_hess_prod(x, v)
    for strategy in STRATEGIES + ["auto"]:
        H = dualad.hessian(rosen, mode=strategy)(x)
        assert H.dtype == np.float64 and H.shape == (n, n)
        assert_allclose(H, H_ref, rtol=1e-13, atol=1e-13 * np.abs(H_ref).max())
        assert np.array_equal(H, H.T)
        hv = dualad.hvp(rosen, mode=strategy)(x, v)
        assert hv.dtype == np.float64 and hv.shape == (n,)
        assert_allclose(hv, hv_ref, rtol=1e-12, atol=1e-12 * np.abs(hv_ref).max())


def _mixed(x, a, b):
    return np.sum(np.sin(x) * np.exp(a * x[::-1])) + b * np.prod(x[:3]) ** 2 / (1 + x @ x)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_hessian_matches_differences_of_the_exact_gradient(strategy, rng):
    x = rng.uniform(-1, 1, 7)
    args = (0.3, 1.7)
    grad = dualad.grad(_mixed, mode="reverse")
    expected = fd_jacobian(lambda t: grad(t, *args), x)
    H = dualad.hessian(_mixed, mode=strategy)(x, *args)
    assert_allclose(H, expected, rtol=1e-7, atol=1e-8)
    v = rng.standard_normal(7)
    assert_allclose(dualad.hvp(_mixed, mode=strategy)(x, v, *args), expected @ v,
                    rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_value_and_gradient_come_with_the_second_order(strategy, rng):
    x = rng.uniform(-1, 1, 5)
    v = rng.standard_normal(5)
    value, g, H = dualad.hessian(_mixed, mode=strategy).value_grad_hessian(x, 0.5, 2.0)
    value2, g2, hv = dualad.hvp(_mixed, mode=strategy).value_grad_hvp(x, v, 0.5, 2.0)
    assert value == value2 == _mixed(x, 0.5, 2.0)
    assert type(value) is np.float64
    g_ref = dualad.grad(_mixed, mode="reverse")(x, 0.5, 2.0)
    assert_allclose(g, g_ref, rtol=1e-14)
    assert_allclose(g2, g_ref, rtol=1e-14)
    assert_allclose(hv, H @ v, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_hessian_shapes(strategy):
    # x of shape s gives s + s; a 0-d x gives a 0-d Hessian
    A = np.arange(6.0).reshape(2, 3)
    H = dualad.hessian(lambda X: np.sum(A * X ** 3), mode=strategy)(np.ones((2, 3)))
    assert H.shape == (2, 3, 2, 3)
    assert_allclose(H.reshape(6, 6), np.diag(6.0 * A.ravel()))
    h0 = dualad.hessian(lambda t: t ** 4, mode=strategy)(np.float64(2.0))
    assert np.shape(h0) == () and h0 == 48.0
    assert dualad.hessian(lambda t: t ** 4, mode=strategy)(2) == 48.0  # int promoted
    chunked = dualad.hessian(rosen, mode=strategy, chunk=3)(np.linspace(-1, 1, 10))
    assert_allclose(chunked, rosen_hess(np.linspace(-1, 1, 10)), rtol=1e-13)


def test_derivative_order_two_stays_exact():
    d2 = dualad.derivative(lambda t: np.sin(t) * t ** 3, order=2)
    for t in np.linspace(-2, 2, 9):
        exact = -np.sin(t) * t ** 3 + 6 * np.cos(t) * t ** 2 + 6 * t * np.sin(t)
        assert_allclose(d2(t), exact, rtol=1e-14, atol=1e-14)


def test_nested_inside_an_outer_derivative():
    # d/da of the Hessian of a * sum(x**3): exact, levels kept apart
    x = np.array([1.0, 2.0])

    def h00(a):
        return dualad.hessian(lambda z: a * np.sum(z ** 3), mode="reverse")(x)[1, 1]
    assert dualad.derivative(h00)(3.0) == 12.0
    # perturbation confusion: d/dx [x * d/dy (x + y)] = 1, with an hvp inside
    f = dualad.derivative(lambda t: t * dualad.hvp(lambda y: np.sum(t * y ** 2))(
        np.array([1.0]), np.array([1.0]))[0])
    assert f(2.0) == 4.0 * 2.0  # d/dt [t * 2t] = 4t


# ---------------------------------------------------------------------------------------
# errors

def test_errors_are_clear():
    H = dualad.hessian(lambda x: x ** 2)
    with pytest.raises(ValueError, match="scalar output"):
        H(np.ones(3))
    hp = dualad.hvp(rosen)
    with pytest.raises(ValueError, match="shape of x"):
        hp(np.ones(3), np.ones(2))
    with pytest.raises(TypeError, match="complex"):
        hp(np.ones(3), np.ones(3) * 1j)
    with pytest.raises(TypeError, match="complex"):
        dualad.hessian(rosen)(np.ones(3) + 0j)
    with pytest.raises(TypeError, match="pytree"):
        dualad.hessian(lambda p: p["a"] ** 2)({"a": np.ones(2)})
    with pytest.raises(ValueError, match="mode"):
        dualad.hvp(rosen, mode="sideways")
    with pytest.raises(ValueError, match="chunk"):
        dualad.hessian(rosen, chunk=0)
    with pytest.raises(TypeError, match="callable"):
        dualad.hessian(3.0)


# ---------------------------------------------------------------------------------------
# the mode selector

def test_auto_is_the_default_and_says_what_it_used():
    for make in (dualad.grad, dualad.value_and_grad, dualad.jacobian, dualad.hessian,
                 dualad.hvp):
        t = make(rosen)
        assert t.mode == "auto"
        assert "not called yet" in t.explain()


def test_forced_modes_are_respected_and_explained():
    for mode in STRATEGIES:
        g = dualad.grad(rosen, mode=mode)
        g(np.ones(500))
        assert g.last_mode == mode
        assert g.explain() == f"grad(rosen): {mode} mode, forced by mode={mode!r}"


def test_clear_cut_choices_are_made_without_trying_the_dear_mode():
    g = dualad.grad(rosen)
    g(np.ones(5000))
    assert g.last_mode == "reverse"
    choice = g._selector.last
    assert choice.mode == "reverse" and set(choice.times) == {"reverse"}
    assert "not tried" in g.explain() and "n = 5000" in g.explain()

    # a tall Jacobian: the first call (forward) learns m, and forward stays
    J = dualad.jacobian(lambda x: np.outer(np.arange(100.0), x).ravel())
    J(np.ones(2))
    assert J.last_mode == "forward" and J._selector.last.mode == "forward"
    assert "m = 200" in J.explain()

    # a wide one: after the first (forward) call m = 1 is known and reverse takes over
    J = dualad.jacobian(lambda x: np.atleast_1d(np.sum(x ** 2)))
    out = [J(np.ones(600)) for _ in range(3)]
    assert J.last_mode == "reverse"
    assert_allclose(out[-1], 2 * np.ones((1, 600)))


def test_close_calls_are_measured_then_fixed(monkeypatch):
    hp = dualad.hvp(rosen)
    x, v = np.linspace(-1, 1, 40), np.ones(40)
    results = [hp(x, v) for _ in range(6)]
    for r in results:
        assert_allclose(r, rosen_hess_prod(x, v), rtol=1e-12)
    choice = hp._selector.last
    assert choice.mode in STRATEGIES
    assert set(choice.times) == set(STRATEGIES)  # both measured, twice each
    assert all(len(t) == 2 for t in choice.times.values())
    assert "measured" in hp.explain()
    # once decided, no clock is read: a call costs the chosen mode and one lookup
    import dualad._selector as sel

    def no_clock():
        raise AssertionError("the decided path must not time calls")
    monkeypatch.setattr(sel.time, "perf_counter", no_clock)
    assert_allclose(hp(x, v), rosen_hess_prod(x, v), rtol=1e-12)
    assert hp.last_mode == choice.mode


def test_cost_model_knows_the_one_evaluation_forward_hessian():
    import dualad._selector as sel
    from dualad import second

    assert sel._HYPER_MAX_N == second.HYPER_MAX_N
    # up to that size forward is plausible (so it is measured), beyond it nested sweeps
    for n in (2, 30, 100, second.HYPER_MAX_N):
        best = min(sel.predicted_cost("hessian", m, n, 1) for m in STRATEGIES)
        assert sel.predicted_cost("hessian", "forward", n, 1) <= sel.PLAUSIBLE * best
    assert (sel.predicted_cost("hessian", "forward", 1000, 1)
            > sel.PLAUSIBLE * sel.predicted_cost("hessian", "reverse", 1000, 1))


def test_choices_are_per_call_signature():
    g = dualad.grad(lambda x, a: np.sum(a * x ** 2))
    g(np.ones(3), np.ones(3))
    g(np.ones(3000), np.ones(3000))
    keys = set(g._selector.choices)
    assert len(keys) == 2
    assert g._selector.choices[((3000,), ((3000,),))].mode == "reverse"


def test_auto_falls_back_when_a_mode_has_no_rule():
    def sinc_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        safe = np.where(x == 0, 1.0, x)
        d = np.where(x == 0, 0.0,
                     (np.cos(np.pi * x) * np.pi * x - np.sin(np.pi * x)) / (np.pi * safe ** 2))
        return np.sinc(x), d * t
    dualad.defrule(np.sinc, sinc_jvp)  # a forward-only rule

    def f(x):
        return np.sum(np.sinc(x))
    x = np.linspace(0.1, 0.9, 2000)
    with pytest.raises(TypeError, match="reverse-mode derivative rule"):
        dualad.grad(f, mode="reverse")(x)
    g = dualad.grad(f)
    expected = dualad.grad(f, mode="forward")(x)
    assert_allclose(g(x), expected)
    assert g.last_mode == "forward"
    assert "reverse unavailable" in g.explain()
    assert_allclose(g(x), expected)


def test_transforms_pickle_with_their_mode():
    for make in (dualad.grad, dualad.hessian, dualad.hvp, dualad.jacobian):
        t = make(rosen)
        x = np.linspace(0, 1, 4)
        args = (x, np.ones(4)) if make is dualad.hvp else (x,)
        first = t(*args)
        t2 = pickle.loads(pickle.dumps(t))
        assert t2.mode == "auto"
        assert_allclose(t2(*args), first)


def test_zero_cotangent_annihilates_in_nested_sweeps():
    # d/dx sum(sqrt(x) x) = 1.5 sqrt(x): 0 at x = 0 although sqrt'(0) = inf, in the
    # plain sweep and in the gradient carried by a forward-over-reverse sweep
    f = lambda x: np.sum(np.sqrt(x) * x)  # noqa: E731
    x = np.array([0.0, 4.0])
    g_plain = dualad.grad(f, mode="reverse")(x)
    g_nested, hv = dualad.jvp(dualad.grad(f, mode="reverse"), x, np.array([1.0, 0.0]))
    assert_allclose(g_plain, [0.0, 3.0])
    assert_allclose(g_nested, g_plain)
    assert np.isposinf(hv[0]) and hv[1] == 0.0   # 0.75 / sqrt(x) at 0
    value, g, H = dualad.hessian(f, mode="reverse").value_grad_hessian(x)
    assert_allclose(g, [0.0, 3.0])
    assert np.isposinf(H[0, 0]) and H[1, 1] == 0.375 and H[0, 1] == 0.0
