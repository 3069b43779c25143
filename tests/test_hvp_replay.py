"""Hessian-vector products by replaying a recording (``hvp_replay`` in dualad/_tape.pyx).

A reverse-mode recording made with ``Tape.replay`` set keeps, per fast elementwise node,
its rule and operands; ``H v`` at that point is then a forward sweep of tangents and a
backward sweep of adjoints and their tangents over the recording, with the rules' second
partials from the U2/B2 kernels (:func:`dualad.reverse.record`,
:meth:`dualad.reverse.Recording.grad_hvp`).  ``dualad.hvp`` in reverse mode and
``dualad.optimize.Objective.hessp`` (n > 100) use it.  Oracles, independent of the replay:

* SciPy's hand-written ``rosen_der`` and ``rosen_hess_prod``;
* 4th-order central differences of the exact gradient (the first-order reverse sweep):
  ``H v = d/dh grad f(x + h v)`` at ``h = 0``;
* for the cases the replay declines (non-finite numbers, nodes it cannot replay), the
  nested forward-over-reverse sweep, which then decides.
"""

import pickle

import numpy as np
import pytest
import scipy.optimize as so
import scipy.special  # noqa: F401  (the special rules below are scipy.special ufuncs)
from conftest import ATOL_FD, RTOL_FD
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import dualad
from dualad import forward, reverse, second
from dualad import optimize as dopt
from dualad.rules._elementwise import RULES, ufunc_of

#: against SciPy's hand-written Rosenbrock derivatives (rounding only)
RTOL_ROSEN = 1e-13
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None)


def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def _replay(f, x, v):
    """(value, gradient, H v) by one recording and its replay; None if it declines."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    value, rec = reverse.record(f, x)
    if rec is None:
        return None
    r = rec.grad_hvp(v)
    return None if r is None else (value, r[0], r[1])


def _fd_hvp(f, x, v, h=1e-4):
    """H v by 4th-order central differences of the exact (first-order) gradient."""
    g = dualad.grad(f, mode="reverse")
    return (-g(x + 2 * h * v) + 8 * g(x + h * v) - 8 * g(x - h * v)
            + g(x - 2 * h * v)) / (12 * h)


def _nested(f, x, v):
    """(value, gradient, H v) by the nested forward-over-reverse sweep alone."""
    inner = second._InnerGrad(f, "reverse", "hvp")
    g, hv = forward.push(inner, x, np.reshape(v, (1,) + x.shape).copy(), ())
    return second._primal(inner.value), g, hv[0]


# -- Rosenbrock: SciPy's hand-written derivatives --------------------------------------

@pytest.mark.parametrize("n", [2, 3, 50, 1000])
def test_rosenbrock_replay_matches_scipy(n, rng):
    x = rng.uniform(-1.5, 1.5, n)
    v = rng.standard_normal(n)
    value, g, hv = _replay(rosen, x, v)
    assert_allclose(value, so.rosen(x), rtol=RTOL_ROSEN, err_msg=f"value, n={n}")
    assert_allclose(g, so.rosen_der(x), rtol=RTOL_ROSEN, atol=1e-12,
                    err_msg=f"gradient, n={n}")
    assert_allclose(hv, so.rosen_hess_prod(x, v), rtol=RTOL_ROSEN, atol=1e-11,
                    err_msg=f"H v, n={n}")
    # the public transform (reverse mode replays) gives the same numbers
    assert_allclose(dualad.hvp(rosen, mode="reverse")(x, v), so.rosen_hess_prod(x, v),
                    rtol=RTOL_ROSEN, atol=1e-11, err_msg=f"dualad.hvp, n={n}")


def test_recording_replays_many_directions_at_one_point(rng):
    n = 40
    x = rng.uniform(-1.5, 1.5, n)
    _, rec = reverse.record(rosen, x)
    for v in rng.standard_normal((5, n)):
        assert_allclose(rec.hvp(v), so.rosen_hess_prod(x, v), rtol=RTOL_ROSEN,
                        atol=1e-11)
    with pytest.raises(ValueError, match="shape of x"):
        rec.hvp(np.ones(n + 1))


@pytest.mark.parametrize("n", [1, 5, 300])
def test_mean_replays_with_its_count(n, rng):
    # np.mean records the whole-array sum node with a count: the replay divides by it
    x = rng.uniform(-1.5, 1.5, n)
    v = rng.standard_normal(n)
    for f, hess_diag in ((lambda x: np.mean(x ** 3), 6.0 * x / n),
                         (lambda x: x.mean() * 0.0 + np.mean(np.sin(x)), -np.sin(x) / n)):
        _, rec = reverse.record(f, x)
        hv = rec.hvp(v)
        assert hv is not None, "a whole-array mean must replay"
        assert_allclose(hv, hess_diag * v, rtol=1e-13, atol=1e-15)
    # a product of two means: H = (3 x^2 / n) (1 / n) (outer both ways)
    f = lambda x: np.mean(x ** 3) * np.mean(x)  # noqa: E731
    _, rec = reverse.record(f, x)
    b = np.mean(x)
    H = (np.diag(6.0 * x / n) * b + np.outer(3.0 * x ** 2 / n, np.ones(n) / n)
         + np.outer(np.ones(n) / n, 3.0 * x ** 2 / n))
    assert_allclose(rec.hvp(v), H @ v, rtol=1e-12, atol=1e-14)


# -- every rule of the table: central differences of the gradient ---------------------

def _rule_function(rule):
    """A scalar function of x (size 2 m) using the rule with traced operands, numbers and
    constant arrays, whose recording is replayable (but power of two traced operands)."""
    uf = ufunc_of(rule.name)
    m = 7
    if rule.arity == 1:
        w = np.linspace(0.5, 1.5, 2 * m)

        def f(x):
            u = uf(x)
            return np.sum(w * u + u * x - 0.5 * u ** 2)
        return f, [rule.domain[0]] * (2 * m)
    (lo0, hi0), (lo1, hi1) = rule.domain
    c0 = np.linspace(lo0, hi0, m + 2)[1:-1]  # constants inside the domain
    c1 = np.linspace(lo1, hi1, m + 2)[1:-1]

    def f(x):
        a, b = x[:m], x[m:]
        return np.sum(uf(a, b) * a + uf(a, c1) + uf(c0, b) ** 2
                      + uf(a, float(c1[2])) * b + uf(float(c0[3]), b))
    return f, [rule.domain[0]] * m + [rule.domain[1]] * m


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_every_rule_replays_to_central_differences(rule, rng):
    f, bounds = _rule_function(rule)
    x = np.array([rng.uniform(lo, hi) for lo, hi in bounds])
    v = rng.standard_normal(x.size)
    r = _replay(f, x, v)
    if rule.name in ("power", "float_power"):
        # a power of two traced operands is left to the nested sweep
        assert r is None
        r = dualad.hvp(f, mode="reverse").value_grad_hvp(x, v)
    else:
        assert r is not None, f"{rule.name}: the recording should replay"
    value, g, hv = r
    assert_allclose(value, f(x), rtol=1e-14, err_msg=f"{rule.name}: value")
    assert_allclose(hv, _fd_hvp(f, x, v), rtol=RTOL_FD, atol=ATOL_FD,
                    err_msg=f"{rule.name}: H v against central differences at x={x}")
    # the same numbers as the nested sweep, up to rounding
    _, g2, hv2 = _nested(f, x, v)
    assert_allclose(g, g2, rtol=1e-12, atol=1e-13, err_msg=f"{rule.name}: gradient")
    assert_allclose(hv, hv2, rtol=1e-11, atol=1e-12, err_msg=f"{rule.name}: H v")


# -- property: a function with every kind of replayed node ------------------------------

def _mixed(x):
    a, b = x[:-1], x[1:]
    s = np.sum(np.exp(0.3 * a) * np.sin(b) + np.log1p(a * a) / (2.0 + np.cos(b)))
    return s * s / 10.0 + np.sum(np.tanh(x) ** 3) - np.sum(x[2:] ** 2) * 0.5 \
        + np.sum(np.sqrt(1.0 + x[:-1] ** 2) * x[1:])


@SETTINGS
@given(st.lists(st.floats(-2.0, 2.0), min_size=3, max_size=12),
       st.integers(0, 2 ** 31 - 1))
def test_mixed_function_replay_property(xs, seed):
    x = np.array(xs)
    v = np.random.default_rng(seed).standard_normal(x.size)
    r = _replay(_mixed, x, v)
    assert r is not None
    _, g, hv = r
    assert_allclose(hv, _fd_hvp(_mixed, x, v), rtol=RTOL_FD, atol=1e-7)
    _, g2, hv2 = _nested(_mixed, x, v)
    assert_allclose(g, g2, rtol=1e-12, atol=1e-12)
    assert_allclose(hv, hv2, rtol=1e-11, atol=1e-11)
    # linear in v
    r2 = _replay(_mixed, x, 2.0 * v)
    assert_allclose(r2[2], 2.0 * hv, rtol=1e-13, atol=1e-13)


# -- what the replay declines: the nested sweep decides ---------------------------------

def _scalar_loop(x):
    return sum(x[i] * x[i + 1] for i in range(len(x) - 1))


def _broadcast(x):
    return np.sum(x[:, None] * x[None, :] * np.exp(0.1 * x))


def _matmul(x):
    # two traced operands: bilinear (a constant matrix @ x replays:
    # tests/test_hvp_replay_linear.py)
    return np.sum((x.reshape(3, 1) @ x.reshape(1, 3)) ** 2)


@pytest.mark.parametrize("f", [_scalar_loop, _broadcast, _matmul],
                         ids=["scalar loop", "broadcast", "matmul"])
def test_unreplayable_recordings_take_the_nested_sweep(f, rng):
    x = rng.uniform(-1, 1, 3)
    v = rng.standard_normal(3)
    _, rec = reverse.record(f, x)
    assert rec is None
    hv = dualad.hvp(f, mode="reverse")(x, v)
    assert_allclose(hv, _fd_hvp(f, x, v), rtol=RTOL_FD, atol=ATOL_FD)
    assert second._no_replay(f)  # the next call goes to the nested sweep at once
    assert_allclose(dualad.hvp(f, mode="reverse")(x, v), hv, rtol=0, atol=0)


class _Model:
    def loss(self, x):
        return sum(x[i] * x[i + 1] ** 2 for i in range(len(x) - 1))


def test_unreplayable_bound_method_is_remembered(rng):
    # a bound method is a new object at every attribute access: remembered by its
    # function, so the nested sweep is taken at once from the second call on
    model = _Model()
    x = rng.uniform(-1, 1, 4)
    v = rng.standard_normal(4)
    hv = dualad.hvp(model.loss, mode="reverse")(x, v)
    assert_allclose(hv, _fd_hvp(model.loss, x, v), rtol=RTOL_FD, atol=ATOL_FD)
    assert second._no_replay(model.loss) and second._no_replay(_Model().loss)


def test_non_finite_numbers_are_left_to_the_nested_sweep():
    # sqrt at 0: infinite second partial; 0 * inf must follow the nested sweep's rules
    def f(x):
        return np.sum(np.sqrt(x[:-1]) * x[1:]) + np.sum(x ** 2)

    x = np.array([0.0, 1.0, 4.0])
    for v in (np.array([1.0, 0.0, 1.0]), np.array([0.0, 1.0, 2.0])):
        _, rec = reverse.record(f, x)
        assert rec is not None
        with np.errstate(all="ignore"):
            assert rec.grad_hvp(v) is None
            got = dualad.hvp(f, mode="reverse").value_grad_hvp(x, v)
            want = _nested(f, x, v)
        for a, b in zip(got, want):
            assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-13, atol=0)


# -- Objective: one recording kept, for the newest point --------------------------------

class Counted:
    """fun, counting its calls (module level: picklable)."""

    def __init__(self, fun):
        self.fun = fun
        self.calls = 0

    def __call__(self, x, *args):
        self.calls += 1
        return self.fun(x, *args)


def test_objective_replays_the_gradient_recording(rng):
    n = 150
    f = Counted(rosen)
    obj = dopt.Objective(f)
    x1 = rng.uniform(0.5, 1.5, n)
    x2 = rng.uniform(0.5, 1.5, n)
    p = rng.standard_normal(n)
    x = x1.copy()
    obj.fun(x)
    assert_allclose(obj.hessp(x, p), so.rosen_hess_prod(x1, p), rtol=RTOL_ROSEN,
                    atol=1e-11)
    x[:] = 7.0  # the caller's array changes; the recording keeps its own copy
    calls = f.calls
    for q in (p, 2.0 * p, np.ones(n)):
        assert_allclose(obj.hessp(x1, q), so.rosen_hess_prod(x1, q), rtol=RTOL_ROSEN,
                        atol=1e-11)
    assert f.calls == calls and obj.nreplay == 4  # replays: fun not evaluated
    # a new point: its gradient pass records, and only the newest recording is kept
    assert_allclose(obj.jac(x2), so.rosen_der(x2), rtol=RTOL_ROSEN, atol=1e-12)
    assert_allclose(obj.hessp(x2, p), so.rosen_hess_prod(x2, p), rtol=RTOL_ROSEN,
                    atol=1e-11)
    kept = [entry for _, entry in obj._cache if entry.rec is not None]
    assert len(kept) == 1 and kept[0] is obj._cached(x2)
    # back at x1 (still cached: value and gradient) the product needs a new recording
    ngev = obj.ngev
    assert_allclose(obj.hessp(x1, p), so.rosen_hess_prod(x1, p), rtol=RTOL_ROSEN,
                    atol=1e-11)
    assert obj.ngev == ngev + 1
    assert f.calls == obj.ngev + obj.nhvp - obj.nreplay + obj.nhev
    # a pickled Objective drops its recording (a tape does not pickle) and records again
    copy = pickle.loads(pickle.dumps(obj))
    assert all(entry.rec is None for _, entry in copy._cache)
    assert_allclose(copy.hessp(x1, p), so.rosen_hess_prod(x1, p), rtol=RTOL_ROSEN,
                    atol=1e-11)


def test_newton_cg_replays_and_counts_passes():
    n = 300
    f = Counted(rosen)
    x0 = 1.0 + 0.3 * np.sin(np.arange(n))
    res = dopt.minimize(f, x0, method="Newton-CG")
    ref = so.minimize(rosen, x0, method="Newton-CG", jac=so.rosen_der,
                      hessp=so.rosen_hess_prod)
    obj = res.objective
    assert obj.nreplay > 0 and obj.nreplay == obj.nhvp
    # one recording per point SciPy evaluated (x0's included): every product replayed
    assert obj.ngev == res.nfev and obj.nfev == obj.nhev == 0
    assert f.calls == obj.ngev + obj.nhvp - obj.nreplay + obj.nhev
    assert_allclose(res.x, ref.x, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("fun", [_scalar_loop, rosen], ids=["scalar loop", "rosen"])
def test_objective_without_replay(fun, rng):
    # a function whose recording does not replay, and forward mode: one pass per product
    n = 120
    x = rng.uniform(0.5, 1.5, n)
    p = rng.standard_normal(n)
    f = Counted(fun)
    obj = dopt.Objective(f, mode="forward" if fun is rosen else "auto")
    obj.jac(x)
    hv = obj.hessp(x, p)
    assert_allclose(hv, _fd_hvp(fun, x, p), rtol=RTOL_FD, atol=1e-6)
    assert obj.nreplay == 0 and obj.nhvp == 1
    if fun is _scalar_loop:
        # the recording for replays did not replay: the product took one nested pass
        # (no second recording first), and the next gradient passes do not record
        assert obj.ngev == 2 and f.calls == 3 and obj._replay is False


def test_matrix_input_replays(rng):
    # a 2-d x: slices along the first axis (contiguous rows) and whole-array rules
    def f(x):
        return np.sum(x[1:] * np.sin(x[:-1])) + np.sum(np.cosh(x) * x ** 3)

    x = rng.uniform(-1, 1, (4, 3))
    v = rng.standard_normal((4, 3))
    r = _replay(f, x, v)
    assert r is not None
    _, g, hv = r
    assert g.shape == hv.shape == (4, 3)
    assert_allclose(hv, _fd_hvp(f, x, v), rtol=RTOL_FD, atol=ATOL_FD)
    assert_allclose(g, dualad.grad(f, mode="reverse")(x), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("outer", ["forward", "reverse"])
def test_hvp_nested_in_a_derivative_of_an_argument(outer):
    # args carrying an enclosing level's tracers: the nested sweep (no replay, and the
    # function is not marked as unreplayable for plain calls)
    def f(x, a):
        return np.sum(a * x ** 3 + np.sin(x) * a[0])

    x = np.array([1.0, 2.0, 0.5])
    v = np.array([1.0, -1.0, 2.0])
    jac = dualad.jacobian(lambda a: dualad.hvp(f, mode="reverse")(x, v, a), mode=outer)
    want = np.diag(6.0 * x * v)  # d/da of H v = 6 a x v - a0 sin(x) v
    want[:, 0] -= np.sin(x) * v
    assert_allclose(jac(np.array([1.0, 2.0, 3.0])), want, rtol=1e-13, atol=1e-14)
    assert not second._no_replay(f)
