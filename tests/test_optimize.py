"""dualad.optimize: SciPy's solvers with dualad's derivatives filled in.

Oracles: the same SciPy run with hand-written derivatives (scipy.optimize's rosen_der,
rosen_hess, rosen_hess_prod; closed-form Jacobians written here), the published
solution of Hock-Schittkowski problem 71, and SciPy's own run for the derivative-free
methods (nothing may change there).  Evaluation counts are checked by counting the calls
of the user's function.
"""

import sys
import types

import numpy as np
import pytest
import scipy.optimize as so
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.optimize import rosen_der, rosen_hess, rosen_hess_prod

import dualad
import dualad.optimize as dopt


def rosen(x):
    """Rosenbrock in plain NumPy (scipy's rosen converts its input with np.asarray)."""
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def near_one(n, amp):
    return 1.0 + amp * np.sin(np.arange(1.0, n + 1.0))


# ---------------------------------------------------------------------------------------
# Every method on Rosenbrock, n = 2 and 100, against the hand-written derivatives
# ---------------------------------------------------------------------------------------

# method -> (start amplitude, options, how closely the run must follow the reference).
# "same": the same iterations and evaluations, the same x to rounding.  TNC forms its
# Hessian-vector products by differencing gradients, which amplifies last-bit
# differences between two exact gradients, so its path may differ: "close" asks for both
# runs to converge to the same point.  dogleg needs a positive definite Hessian from the
# start, hence its smaller amplitude.
GRADIENT_METHODS = {
    "CG": (0.1, None, "same"),
    "BFGS": (0.1, {"gtol": 1e-8}, "same"),
    "L-BFGS-B": (0.1, {"gtol": 1e-10, "ftol": 1e-14}, "same"),
    "TNC": (0.1, {"maxfun": 5000, "gtol": 1e-10, "xtol": 1e-12, "ftol": 1e-14}, "close"),
    "SLSQP": (0.1, {"maxiter": 1000, "ftol": 1e-14}, "same"),
    "Newton-CG": (0.1, {"xtol": 1e-10}, "same"),
    "trust-ncg": (0.1, {"gtol": 1e-10}, "same"),
    "trust-krylov": (0.1, None, "same"),
    "dogleg": (0.001, {"gtol": 1e-10}, "same"),
    "trust-exact": (0.1, {"gtol": 1e-10}, "same"),
    "trust-constr": (0.1, {"gtol": 1e-10, "xtol": 1e-12}, "same"),
}
ANALYTIC = {"jac": rosen_der, "hess": rosen_hess, "hessp": rosen_hess_prod}


@pytest.mark.parametrize("n", [2, 100])
@pytest.mark.parametrize("method", list(GRADIENT_METHODS))
def test_rosenbrock_matches_analytic_run(method, n):
    amp, options, match = GRADIENT_METHODS[method]
    x0 = near_one(n, amp)
    res = dopt.minimize(rosen, x0, method=method, options=options)
    uses = dopt._MINIMIZE_USES[method.lower()]
    ref = so.minimize(rosen, x0, method=method, options=options,
                      **{k: v for k, v in ANALYTIC.items() if k in uses})
    assert ref.success, f"reference {method} run failed: {ref.message}"
    assert res.success, f"{method}, n={n}: {res.message}"
    assert_allclose(res.x, 1.0, atol=1e-4, err_msg=f"{method}, n={n}: not at the minimum")
    if match == "same":
        assert (res.nit, res.nfev) == (ref.nit, ref.nfev), f"{method}, n={n}"
        assert_allclose(res.x, ref.x, rtol=0, atol=1e-7, err_msg=f"{method}, n={n}")
        assert_allclose(res.fun, ref.fun, rtol=1e-6, atol=1e-10)
    else:
        assert_allclose(res.x, ref.x, rtol=0, atol=1e-6, err_msg=f"{method}, n={n}")
    assert res.x.dtype == np.float64 and res.x.shape == (n,)


# Derivative-free methods get nothing from dualad: the run must be SciPy's own, bit for
# bit.  n = 2 runs to convergence; n = 100 runs a short budget (COBYLA and COBYQA are
# left out at n = 100: each evaluation costs them milliseconds of their own work).
FREE_METHODS = {
    "Nelder-Mead": (np.zeros(2), {"xatol": 1e-10, "fatol": 1e-12}, 1e-8),
    "Powell": (np.zeros(2), {"xtol": 1e-10, "ftol": 1e-12}, 1e-8),
    "COBYQA": (np.array([1.1, 0.9]), None, 1e-5),
    # COBYLA creeps along Rosenbrock's valley: a short run, checked against SciPy's.
    "COBYLA": (np.array([1.1, 0.9]), {"maxiter": 200}, None),
}


@pytest.mark.parametrize("method", list(FREE_METHODS))
def test_derivative_free_methods_are_scipy_runs(method):
    x0, options, tol = FREE_METHODS[method]
    res = dopt.minimize(rosen, x0, method=method, options=options)
    ref = so.minimize(rosen, x0, method=method, options=options)
    assert res.nfev == ref.nfev and np.array_equal(res.x, ref.x), method
    assert res.objective.ngev == res.objective.nhev == 0
    if tol is not None:
        assert res.success and np.max(np.abs(res.x - 1.0)) < tol, method
    else:
        assert res.fun < rosen(x0)


@pytest.mark.parametrize("method", ["Nelder-Mead", "Powell"])
def test_derivative_free_methods_at_n100(method):
    x0 = near_one(100, 0.1)
    options = {"maxfev": 300}
    res = dopt.minimize(rosen, x0, method=method, options=options)
    ref = so.minimize(rosen, x0, method=method, options=options)
    assert res.nfev == ref.nfev and np.array_equal(res.x, ref.x)


def test_default_methods_follow_scipy():
    x0 = near_one(3, 0.1)
    bounded = dopt.minimize(rosen, x0, bounds=[(0, 2)] * 3)
    assert isinstance(bounded.hess_inv, so.LbfgsInvHessProduct)  # L-BFGS-B's
    plain = dopt.minimize(rosen, x0)
    assert plain.hess_inv.shape == (3, 3)  # BFGS keeps a dense inverse Hessian
    cons = dopt.minimize(rosen, x0, constraints={"type": "ineq", "fun": lambda x: x[0]})
    assert cons.message.startswith("Optimization terminated successfully")  # SLSQP's


def test_method_names_are_case_insensitive():
    x0 = near_one(2, 0.1)
    a = dopt.minimize(rosen, x0, method="bfgs")
    b = dopt.minimize(rosen, x0, method="BFGS")
    assert np.array_equal(a.x, b.x)


def test_user_derivatives_are_kept():
    calls = {"jac": 0, "hess": 0}

    def jac(x, scale):
        calls["jac"] += 1
        return scale * rosen_der(x)

    def hess(x, scale):
        calls["hess"] += 1
        return scale * rosen_hess(x)

    def f(x, scale):
        return scale * rosen(x)

    x0 = near_one(4, 0.1)
    res = dopt.minimize(f, x0, args=(2.0,), method="trust-exact", jac=jac, hess=hess)
    ref = so.minimize(f, x0, args=(2.0,), method="trust-exact", jac=jac, hess=hess)
    assert calls["jac"] > 0 and calls["hess"] > 0
    assert res.nit == ref.nit and np.array_equal(res.x, ref.x)
    assert res.objective.ngev == res.objective.nhev == 0  # fun only, value-only passes


def test_jac_true_is_kept_and_hessian_filled():
    vg = dualad.value_and_grad(rosen)
    x0 = near_one(5, 0.1)
    res = dopt.minimize(vg, x0, jac=True, method="trust-exact")
    ref = so.minimize(rosen, x0, method="trust-exact", jac=rosen_der, hess=rosen_hess)
    assert res.nit == ref.nit
    assert_allclose(res.x, ref.x, atol=1e-12)


def test_finite_difference_jac_is_respected():
    x0 = near_one(3, 0.1)
    res = dopt.minimize(rosen, x0, method="BFGS", jac="3-point")
    ref = so.minimize(rosen, x0, method="BFGS", jac="3-point")
    assert res.nfev == ref.nfev and np.array_equal(res.x, ref.x)


def test_custom_method_gets_the_derivatives():
    seen = {}

    def method(fun, x0, args, jac, hess, hessp, **kwargs):
        seen["g"] = jac(x0)
        seen["H"] = hess(x0)
        seen["Hp"] = hessp(x0, np.ones_like(x0))
        return so.OptimizeResult(x=x0, fun=fun(x0), success=True)

    x0 = near_one(3, 0.2)
    dopt.minimize(rosen, x0, method=method)
    assert_allclose(seen["g"], rosen_der(x0), rtol=1e-13)
    assert_allclose(seen["H"], rosen_hess(x0), rtol=1e-13)
    assert_allclose(seen["Hp"], rosen_hess_prod(x0, np.ones(3)), rtol=1e-13)


# ---------------------------------------------------------------------------------------
# One pass per point
# ---------------------------------------------------------------------------------------

class Counted:
    """A function that counts its calls (reverse mode calls it once per pass)."""

    def __init__(self, fun):
        self.fun = fun
        self.calls = 0

    def __call__(self, x, *args, **kwargs):
        self.calls += 1
        return self.fun(x, *args, **kwargs)


@pytest.mark.parametrize("method", ["BFGS", "L-BFGS-B", "CG", "SLSQP"])
def test_gradient_methods_make_one_pass_per_point(method):
    f = Counted(rosen)
    res = dopt.minimize(f, near_one(30, 0.1), method=method, mode="reverse")
    obj = res.objective
    assert obj.nfev == 0 and obj.nhev == 0 and obj.nhvp == 0
    # every evaluation SciPy asked for is one pass; the user's f ran once per pass
    assert f.calls == obj.ngev == res.nfev
    assert res.njev <= obj.nhit


@pytest.mark.parametrize("method, n", [("trust-exact", 6), ("dogleg", 6),
                                       ("trust-exact", 30), ("trust-constr", 6),
                                       ("trust-ncg", 6)])
def test_second_order_methods_get_the_gradient_with_the_hessian(method, n):
    f = Counted(rosen)
    res = dopt.minimize(f, near_one(n, 0.001), method=method, mode="reverse")
    obj = res.objective
    # one Hessian pass (which gives the gradient and the value) wherever SciPy wanted
    # the gradient; a plain evaluation where it wanted the value first; nothing else
    assert obj.ngev == obj.nhvp == 0
    assert obj.nhev == res.njev
    assert obj.nfev <= res.nfev
    if n <= 12:  # then a Hessian pass records fun once
        assert f.calls == obj.nfev + obj.nhev


def test_hessp_methods_share_value_and_gradient():
    f = Counted(rosen)
    res = dopt.minimize(f, near_one(30, 0.1), method="Newton-CG", mode="reverse")
    obj = res.objective
    assert obj.nhvp > 0 and obj.nfev == 0
    assert obj.ngev == res.nfev  # fun and jac: one pass per point
    # one recording per product, or per Hessian (n = 30: one sweep) from the second
    # product at a point on
    assert f.calls == obj.ngev + obj.nhvp + obj.nhev
    assert obj.nhev <= obj.nhvp


def test_objective_cache_orders():
    n = 20
    x = near_one(n, 0.3)
    p = np.cos(np.arange(n))
    f = Counted(rosen)
    obj = dopt.Objective(f, mode="reverse")
    assert obj.fun(x) == pytest.approx(rosen(x), rel=1e-15)
    assert_allclose(obj.jac(x), rosen_der(x), rtol=1e-13)
    assert (obj.ngev, obj.nhit, f.calls) == (1, 1, 1)
    assert_allclose(obj.hessp(x, p), rosen_hess_prod(x, p), rtol=1e-12)
    assert obj.nhvp == 1
    H = obj.hess(x)
    assert_allclose(H, rosen_hess(x), rtol=1e-12, atol=1e-12)
    hits = obj.nhit
    assert_allclose(obj.hessp(x, p), rosen_hess(x) @ p, rtol=1e-12)  # from H, no pass
    assert obj.nhit == hits + 1 and obj.nhvp == 1

    # the Hessian pass gives value and gradient: nothing more to compute at y
    y = near_one(n, 0.2)
    obj.hess(y)
    before = (obj.ngev, obj.nhev, obj.nhvp)
    obj.fun(y), obj.jac(y), obj.value_and_grad(y)
    assert (obj.ngev, obj.nhev, obj.nhvp) == before


def test_objective_returns_copies_and_keeps_no_reference_to_x():
    obj = dopt.Objective(rosen)
    x = near_one(4, 0.3)
    g = obj.jac(x)
    g[:] = 0.0
    x_before = x.copy()
    x[0] = 5.0  # the cache is keyed on a copy of the bytes
    assert_allclose(obj.jac(x_before), rosen_der(x_before), rtol=1e-13)
    assert obj.ngev == 1


def test_objective_cache_compares_points_bit_for_bit():
    # -0.0 and 0.0 are different points (f may tell them apart); a nan is itself
    f = Counted(lambda z: np.sum(1.0 / z))
    obj = dopt.Objective(f)
    with np.errstate(divide="ignore"):
        assert obj.fun(np.array([0.0, 1.0])) == np.inf
        assert obj.fun(np.array([-0.0, 1.0])) == -np.inf
    assert obj.ngev == 2
    g = Counted(lambda z: np.sum(z ** 2))
    obj = dopt.Objective(g)
    x = np.array([np.nan, 1.0])
    obj.fun(x)
    obj.jac(x.copy())
    assert (obj.ngev, obj.nhit) == (1, 1)


def test_objective_cache_size():
    obj = dopt.Objective(rosen, cache_size=2)
    pts = [near_one(3, a) for a in (0.1, 0.2, 0.3)]
    for p in pts:
        obj.fun(p)
    obj.fun(pts[2])
    assert obj.ngev == 3 and obj.nhit == 1
    obj.fun(pts[0])  # dropped: computed again
    assert obj.ngev == 4


@pytest.mark.parametrize("n, dense", [(20, True), (150, False)])
def test_objective_hessp_forms_the_hessian_from_the_second_product(n, dense):
    obj = dopt.Objective(rosen)
    x = near_one(n, 0.3)
    for v in np.eye(n)[:4]:
        assert_allclose(obj.hessp(x, v), rosen_hess_prod(x, v), rtol=1e-12, atol=1e-12)
    if dense:  # one product, then the Hessian, then products from it
        assert (obj.nhvp, obj.nhev, obj.nhit) == (1, 1, 2)
    else:
        assert (obj.nhvp, obj.nhev) == (4, 0)


def test_objective_small_n_hessp_forms_the_hessian():
    obj = dopt.Objective(rosen)
    x = near_one(3, 0.3)
    for v in np.eye(3):
        assert_allclose(obj.hessp(x, v), rosen_hess_prod(x, v), rtol=1e-13)
    assert obj.nhev == 1 and obj.nhvp == 0


def test_objective_with_args_and_without_grad():
    def f(x, a, b):
        return a * np.sum(x ** 2) + b

    obj = dopt.Objective(f, args=(3.0, 1.0), with_grad=False)
    x = np.array([1.0, 2.0])
    assert obj.fun(x) == 16.0 and obj.nfev == 1 and obj.ngev == 0
    assert_allclose(obj.jac(x), [6.0, 12.0])
    assert obj.ngev == 1
    assert "nfev=1" in repr(obj)
    with pytest.raises(TypeError, match="give args to Objective"):
        obj.fun(x, 3.0, 1.0)


def test_objective_used_directly_by_scipy():
    obj = dopt.Objective(rosen)
    res = so.minimize(obj.value_and_grad, near_one(5, 0.1), jac=True, method="BFGS")
    assert res.success and obj.ngev == res.nfev


OPS = st.lists(st.tuples(st.sampled_from(["fun", "jac", "value_and_grad", "hess",
                                            "hessp"]),
                          st.integers(0, 4), st.integers(0, 2)), min_size=1, max_size=25)


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(ops=OPS, n=st.sampled_from([3, 20]), with_grad=st.booleans(),
       with_hess=st.booleans())
def test_objective_answers_do_not_depend_on_the_call_order(ops, n, with_grad, with_hess):
    """Whatever the order of calls, at whatever points, every answer is the closed form
    (rosen_der, rosen_hess, rosen_hess_prod) and no pass is repeated at a point."""
    points = [near_one(n, 0.05 * (i + 1)) for i in range(5)]
    dirs = [np.cos(np.arange(n) * (j + 1)) for j in range(3)]
    obj = dopt.Objective(rosen, with_grad=with_grad, with_hess=with_hess, cache_size=8)
    for op, i, j in ops:
        x, p = points[i], dirs[j]
        if op == "fun":
            assert obj.fun(x) == pytest.approx(rosen(x), rel=1e-14)
        elif op == "jac":
            assert_allclose(obj.jac(x), rosen_der(x), rtol=1e-12, atol=1e-12)
        elif op == "value_and_grad":
            f, g = obj.value_and_grad(x)
            assert f == pytest.approx(rosen(x), rel=1e-14)
            assert_allclose(g, rosen_der(x), rtol=1e-12, atol=1e-12)
        elif op == "hess":
            assert_allclose(obj.hess(x), rosen_hess(x), rtol=1e-12, atol=1e-9)
        else:
            assert_allclose(obj.hessp(x, p), rosen_hess_prod(x, p), rtol=1e-11, atol=1e-9)
    # at most one value-only, one gradient and one Hessian pass per point (products aside)
    used = {i for _, i, _ in ops}
    assert obj.nfev <= len(used) and obj.ngev <= len(used) and obj.nhev <= len(used)


def test_objective_bad_arguments():
    with pytest.raises(TypeError, match="callable"):
        dopt.Objective(3.0)
    with pytest.raises(ValueError, match="mode must be"):
        dopt.Objective(rosen, mode="sideways")
    with pytest.raises(ValueError, match="cache_size"):
        dopt.Objective(rosen, cache_size=0)
    with pytest.raises(TypeError, match="complex"):
        dopt.Objective(rosen).fun(np.array([1.0 + 1j, 2.0]))
    with pytest.raises(ValueError, match="scalar"):
        dopt.Objective(lambda x: x).jac(np.ones(2))


# ---------------------------------------------------------------------------------------
# Pytrees and shaped x0
# ---------------------------------------------------------------------------------------

def test_pytree_x0():
    t = np.linspace(0.0, 2.0, 15)
    y = 1.5 * np.exp(-0.7 * t) + 0.25 * t

    def loss(p, t, y):
        return np.sum((p["a"] * np.exp(-p["k"] * t) + p["lin"][0] * t - y) ** 2)

    seen = []
    x0 = {"a": 1.0, "k": np.array(0.3), "lin": np.array([0.0])}
    res = dopt.minimize(loss, x0, args=(t, y), method="BFGS", options={"gtol": 1e-10},
                        callback=lambda xk: seen.append(xk))
    assert set(res.x) == {"a", "k", "lin"} and list(res.x) == ["a", "k", "lin"]
    assert np.shape(res.x["k"]) == () and res.x["lin"].shape == (1,)
    assert_allclose([res.x["a"], res.x["k"], res.x["lin"][0]], [1.5, 0.7, 0.25], atol=1e-7)
    assert isinstance(res.jac, dict) and res.jac["lin"].shape == (1,)
    assert seen and all(isinstance(s, dict) for s in seen)
    # the same problem on a flat vector gives the same run
    flat = dopt.minimize(lambda v, t, y: loss({"a": v[0], "k": v[1], "lin": v[2:]}, t, y),
                         np.array([1.0, 0.3, 0.0]), args=(t, y), method="BFGS",
                         options={"gtol": 1e-10})
    assert flat.nit == res.nit


def test_pytree_x0_with_constraint_and_new_style_callback():
    seen = []

    def cb(intermediate_result):
        seen.append(intermediate_result.x)

    def f(p):
        return (p[0] - 2.0) ** 2 + np.sum((p[1] - 1.0) ** 2)

    con = {"type": "eq", "fun": lambda p: p[0] + np.sum(p[1]) - 2.0}
    res = dopt.minimize(f, [0.5, np.zeros(2)], method="SLSQP", constraints=con, callback=cb)
    assert isinstance(res.x, list) and res.x[1].shape == (2,)
    # minimise distance to (2, 1, 1) on the plane a + b + c = 2: shift by -2/3 each
    assert_allclose(res.x[0], 2.0 - 2.0 / 3.0, atol=1e-7)
    assert_allclose(res.x[1], [1.0 / 3.0, 1.0 / 3.0], atol=1e-7)
    assert seen and all(isinstance(s, list) for s in seen)


def test_two_dimensional_x0_keeps_its_shape():
    def f(W):
        assert W.shape == (2, 3)
        return np.sum((W - np.arange(6.0).reshape(2, 3)) ** 2)

    res = dopt.minimize(f, np.zeros((2, 3)), method="L-BFGS-B")
    assert res.x.shape == (2, 3) and res.jac.shape == (2, 3)
    assert_allclose(res.x, np.arange(6.0).reshape(2, 3), atol=1e-6)


def test_integer_and_scalar_x0():
    res = dopt.minimize(lambda x: np.sum((x - 0.5) ** 2), 3, method="BFGS")
    assert res.x.shape == (1,) and res.x.dtype == np.float64
    assert_allclose(res.x, [0.5], atol=1e-8)


def test_shaped_x0_with_old_style_callback():
    seen = []
    res = dopt.minimize(lambda W: np.sum((W - 1.0) ** 2), np.zeros((2, 2)), method="CG",
                        callback=lambda xk: seen.append(xk.shape))
    assert seen and set(seen) == {(2, 2)}
    assert_allclose(res.x, np.ones((2, 2)), atol=1e-6)


def test_list_of_numbers_is_an_array_not_a_tree():
    res = dopt.minimize(rosen, [1.1, 0.9])
    assert isinstance(res.x, np.ndarray) and res.x.shape == (2,)


def test_x0_outside_bounds_is_clipped_before_the_check():
    # log is undefined at x0 = -1; L-BFGS-B starts at the clipped point, and so does
    # the check (no false "not finite" error)
    res = dopt.minimize(lambda x: np.sum(x - np.log(x)), np.array([-1.0, 3.0]),
                        method="L-BFGS-B", bounds=[(0.1, 10.0)] * 2)
    assert res.success and np.allclose(res.x, 1.0, atol=1e-5)


def test_quasi_newton_hessian_strategy_is_kept():
    res = dopt.minimize(rosen, near_one(4, 0.1), method="trust-constr", hess=so.BFGS())
    assert res.success and res.objective.nhev == 0


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_mode_is_used(mode):
    res = dopt.minimize(rosen, near_one(5, 0.1), method="BFGS", mode=mode)
    assert res.objective._vg.last_mode == mode


# ---------------------------------------------------------------------------------------
# Constraints: Hock-Schittkowski 71
# ---------------------------------------------------------------------------------------

# min x1 x4 (x1 + x2 + x3) + x3  s.t.  x1 x2 x3 x4 >= 25,  sum x^2 = 40,  1 <= x <= 5.
# The published solution (Hock & Schittkowski 1981, problem 71):
HS71_X = np.array([1.0, 4.74299963, 3.82114998, 1.37940829])
HS71_F = 17.0140173
HS71_X0 = np.array([1.0, 5.0, 5.0, 1.0])
HS71_BOUNDS = [(1.0, 5.0)] * 4


def hs71(x):
    return x[0] * x[3] * (x[0] + x[1] + x[2]) + x[2]


def hs71_grad(x):
    return np.array([x[3] * (2 * x[0] + x[1] + x[2]), x[0] * x[3], x[0] * x[3] + 1.0,
                     x[0] * (x[0] + x[1] + x[2])])


def hs71_hess(x):
    return np.array([[2 * x[3], x[3], x[3], 2 * x[0] + x[1] + x[2]],
                     [x[3], 0.0, 0.0, x[0]],
                     [x[3], 0.0, 0.0, x[0]],
                     [2 * x[0] + x[1] + x[2], x[0], x[0], 0.0]])


def product(x):
    return x[0] * x[1] * x[2] * x[3]


def product_jac(x):
    return np.array([[x[1] * x[2] * x[3], x[0] * x[2] * x[3], x[0] * x[1] * x[3],
                      x[0] * x[1] * x[2]]])


def product_hess(x, v):
    H = np.zeros((4, 4))
    for i in range(4):
        for j in range(4):
            if i != j:
                H[i, j] = np.prod([x[k] for k in range(4) if k not in (i, j)])
    return v[0] * H


def sumsq(x):
    return np.sum(x ** 2)


def test_hs71_slsqp_dict_constraints():
    cons = [{"type": "ineq", "fun": lambda x: product(x) - 25.0},
            {"type": "eq", "fun": lambda x: sumsq(x) - 40.0}]
    res = dopt.minimize(hs71, HS71_X0, method="SLSQP", bounds=HS71_BOUNDS, constraints=cons,
                        options={"ftol": 1e-10})
    ref_cons = [dict(cons[0], jac=lambda x: product_jac(x)[0]),
                dict(cons[1], jac=lambda x: 2.0 * x)]
    ref = so.minimize(hs71, HS71_X0, method="SLSQP", jac=hs71_grad, bounds=HS71_BOUNDS,
                      constraints=ref_cons, options={"ftol": 1e-10})
    assert res.success, res.message
    assert_allclose(res.x, HS71_X, atol=1e-7)
    assert_allclose(res.fun, HS71_F, rtol=1e-8)
    assert res.nit == ref.nit
    assert_allclose(res.x, ref.x, atol=1e-12)


def test_hs71_trust_constr_nonlinear_constraints():
    cons = [so.NonlinearConstraint(product, 25.0, np.inf),
            so.NonlinearConstraint(sumsq, 40.0, 40.0)]
    opts = {"gtol": 1e-10, "xtol": 1e-12}
    res = dopt.minimize(hs71, HS71_X0, method="trust-constr", bounds=HS71_BOUNDS,
                        constraints=cons, options=opts)
    ref_cons = [so.NonlinearConstraint(product, 25.0, np.inf, jac=product_jac,
                                       hess=product_hess),
                so.NonlinearConstraint(sumsq, 40.0, 40.0, jac=lambda x: 2.0 * x[None, :],
                                       hess=lambda x, v: 2.0 * v[0] * np.eye(4))]
    ref = so.minimize(hs71, HS71_X0, method="trust-constr", jac=hs71_grad, hess=hs71_hess,
                      bounds=HS71_BOUNDS, constraints=ref_cons, options=opts)
    assert res.success, res.message
    # the interior-point method stops within its barrier tolerance of the active bound
    assert_allclose(res.x, HS71_X, atol=2e-5)
    assert_allclose(res.fun, HS71_F, rtol=1e-6)
    assert res.nit == ref.nit
    assert_allclose(res.x, ref.x, atol=1e-10)


def test_hs71_trust_constr_dict_constraints():
    cons = [{"type": "ineq", "fun": lambda x, c: product(x) - c, "args": (25.0,)},
            {"type": "eq", "fun": lambda x: sumsq(x) - 40.0}]
    res = dopt.minimize(hs71, HS71_X0, method="trust-constr", bounds=HS71_BOUNDS,
                        constraints=cons, options={"gtol": 1e-10, "xtol": 1e-12})
    assert res.success, res.message
    assert_allclose(res.x, HS71_X, atol=2e-5)


def test_constraint_derivatives_match_closed_forms():
    x = np.array([1.3, 4.1, 3.7, 1.6])
    v = np.array([0.7])
    space = dopt._Space(x, "minimize")
    cons = dopt._constraints([so.NonlinearConstraint(product, 25.0, np.inf)],
                             "trust-constr", space, "auto")
    assert_allclose(cons[0].jac(x), product_jac(x), rtol=1e-14)
    assert_allclose(cons[0].hess(x, v), product_hess(x, v), rtol=1e-14)
    assert cons[0].jac(x).shape == (1, 4)
    # a user's callable is kept
    mine = so.NonlinearConstraint(product, 25.0, np.inf, jac=product_jac, hess=product_hess)
    kept = dopt._constraints(mine, "trust-constr", space, "auto")[0]
    assert kept.jac is product_jac and kept.hess is product_hess


# ---------------------------------------------------------------------------------------
# least_squares, curve_fit, root
# ---------------------------------------------------------------------------------------

T = np.linspace(0.0, 10.0, 200)
P_TRUE = np.array([2.0, 0.3, 0.5, 2.0])
Y = (P_TRUE[0] * np.exp(-P_TRUE[1] * T) + P_TRUE[2] * np.sin(P_TRUE[3] * T)
     + 0.05 * np.random.default_rng(3).standard_normal(T.size))
P0 = np.array([1.5, 0.5, 0.8, 1.9])


def residual(p, t, y):
    return p[0] * np.exp(-p[1] * t) + p[2] * np.sin(p[3] * t) - y


def residual_jac(p, t, y):
    e = np.exp(-p[1] * t)
    return np.column_stack([e, -p[0] * t * e, np.sin(p[3] * t),
                            p[2] * t * np.cos(p[3] * t)])


def model(t, a, k, b, w):
    return a * np.exp(-k * t) + b * np.sin(w * t)


def model_jac(t, a, k, b, w):
    return residual_jac(np.array([a, k, b, w]), t, None)


@pytest.mark.parametrize("method", ["trf", "dogbox", "lm"])
def test_least_squares_matches_analytic_jacobian(method):
    res = dopt.least_squares(residual, P0, args=(T, Y), method=method)
    ref = so.least_squares(residual, P0, jac=residual_jac, args=(T, Y), method=method)
    assert res.success
    assert (res.nfev, res.njev) == (ref.nfev, ref.njev)
    assert_allclose(res.x, ref.x, rtol=1e-12)
    assert_allclose(res.jac, ref.jac, rtol=1e-12, atol=1e-14)


def test_least_squares_reuses_the_x0_evaluation_and_kwargs():
    f = Counted(lambda p, t, *, y: residual(p, t, y))
    res = dopt.least_squares(f, P0, args=(T,), kwargs={"y": Y}, mode="forward")
    # forward-mode Jacobian of 4 parameters: one sweep each; the residual at x0 once
    assert f.calls == (res.nfev - 1) + 1 + res.njev
    assert_allclose(res.x, so.least_squares(residual, P0, args=(T, Y)).x, rtol=1e-6)


def test_least_squares_pytree_bounds_and_kwargs():
    def r(p, t, *, y):
        return residual(np.concatenate([p["amp"], p["rate"]]), t, y)

    x0 = {"amp": np.array([1.5]), "rate": np.array([0.5, 0.8, 1.9])}
    res = dopt.least_squares(r, x0, args=(T,), kwargs={"y": Y}, bounds=(0.0, 5.0))
    ref = so.least_squares(residual, P0, jac=residual_jac, args=(T, Y), bounds=(0.0, 5.0))
    assert isinstance(res.x, dict) and isinstance(res.grad, dict)
    assert_allclose(np.concatenate([res.x["amp"], res.x["rate"]]), ref.x, rtol=1e-10)


def test_least_squares_user_jac_with_kwargs():
    def r(p, t, *, y):
        return residual(p, t, y)

    def rj(p, t, *, y):
        return residual_jac(p, t, y)

    res = dopt.least_squares(r, P0, jac=rj, args=(T,), kwargs={"y": Y})
    ref = so.least_squares(r, P0, jac=rj, args=(T,), kwargs={"y": Y})
    assert res.njev == ref.njev and np.array_equal(res.x, ref.x)


def test_root_with_jac_true_is_kept():
    def F(v):
        return np.array([v[0] ** 2 + v[1] ** 2 - 4.0, np.exp(v[0]) + v[1] - 1.0])

    def FJ(v):
        return F(v), np.array([[2 * v[0], 2 * v[1]], [np.exp(v[0]), 1.0]])

    sol = dopt.root(FJ, np.array([1.0, -1.0]), jac=True)
    ref = so.root(FJ, np.array([1.0, -1.0]), jac=True)
    assert sol.success and np.array_equal(sol.x, ref.x)


def test_least_squares_user_jac_and_fd_are_kept():
    res = dopt.least_squares(residual, P0, jac="3-point", args=(T, Y))
    ref = so.least_squares(residual, P0, jac="3-point", args=(T, Y))
    assert res.nfev == ref.nfev and np.array_equal(res.x, ref.x)


def test_least_squares_uses_dualad_sparse(monkeypatch):
    """The agreed interface: dualad.sparse.sparse_jacobian(fun, x, args=()) returns
    J(x, *args) -> csr_array with a .sparsity pattern (a stand-in module here)."""
    import scipy.sparse as sp

    calls = {"make": 0, "J": 0}

    def sparse_jacobian(fun, x, args=()):
        calls["make"] += 1
        dense = dualad.jacobian(fun)

        def J(x, *a):
            calls["J"] += 1
            return sp.csr_array(dense(x, *a))
        n = x.size
        J.sparsity = sp.csr_array(sp.diags_array([np.ones(n - 1), np.ones(n)],
                                                 offsets=[-1, 0]))
        return J

    fake = types.ModuleType("dualad.sparse")
    fake.sparse_jacobian = sparse_jacobian
    monkeypatch.setitem(sys.modules, "dualad.sparse", fake)

    n = 150

    def r(x):  # a bidiagonal Jacobian; the solution is x = 1
        return x ** 3 + x - 2.0 + 0.1 * np.concatenate([[0.0], x[1:] - x[:-1]])

    res = dopt.least_squares(r, np.full(n, 0.5))
    assert calls["make"] == 1 and calls["J"] == res.njev
    assert res.success and np.max(np.abs(res.x - 1.0)) < 1e-8
    dense = dopt.least_squares(r, np.full(n, 0.5), sparse=False)
    assert calls["make"] == 1
    assert_allclose(dense.x, res.x, rtol=1e-8)


def test_least_squares_without_dualad_sparse_falls_back(monkeypatch):
    monkeypatch.setitem(sys.modules, "dualad.sparse", None)  # import fails
    res = dopt.least_squares(lambda x: x ** 2 - 2.0, np.ones(120))
    assert_allclose(res.x, np.sqrt(2.0), rtol=1e-8)
    with pytest.raises(ValueError, match="dualad.sparse"):
        dopt.least_squares(lambda x: x ** 2 - 2.0, np.ones(120), sparse=True)


def test_least_squares_shaped_residual_keeps_its_shape():
    target = np.outer([1.0, 2.0], [3.0, 4.0, 5.0])  # rank one: an exact fit exists
    res = dopt.least_squares(lambda x: np.outer(x[:2], x[2:]) - target, np.ones(5))
    assert res.fun.shape == (2, 3) and res.jac.shape == (6, 5)
    assert np.max(np.abs(res.fun)) < 1e-6  # the fit is exact up to the tolerance


@pytest.mark.parametrize("method", [None, "trf", "dogbox"])
def test_curve_fit_matches_analytic_jacobian(method):
    popt, pcov = dopt.curve_fit(model, T, Y, p0=P0, method=method)
    ref, ref_cov = so.curve_fit(model, T, Y, p0=P0, method=method, jac=model_jac)
    assert_allclose(popt, ref, rtol=1e-10)
    assert_allclose(pcov, ref_cov, rtol=1e-7)
    assert np.all(np.abs(popt - P_TRUE) < 4 * np.sqrt(np.diag(pcov)))


def test_curve_fit_sigma_bounds_and_full_output():
    sigma = np.full(T.size, 0.05)
    kw = dict(p0=P0, sigma=sigma, absolute_sigma=True, bounds=([0, 0, 0, 0], [5, 2, 2, 3]))
    popt, pcov, info, _, ier = dopt.curve_fit(model, T, Y, full_output=True, **kw)
    ref, ref_cov = so.curve_fit(model, T, Y, jac=model_jac, **kw)
    assert_allclose(popt, ref, rtol=1e-9)
    assert_allclose(pcov, ref_cov, rtol=1e-6)
    assert ier in (1, 2, 3, 4) and "nfev" in info


def test_curve_fit_p0_from_signature_and_reused_first_value():
    points = []

    def f(t, a, k):
        if isinstance(a, float):  # a plain evaluation (a traced scalar is no float)
            points.append((float(a), float(k)))
        return a * np.exp(-k * t)

    t = np.linspace(0.0, 3.0, 30)
    y = 1.7 * np.exp(-0.8 * t)
    popt, _ = dopt.curve_fit(f, t, y)  # p0 = ones, from the two parameters
    assert_allclose(popt, [1.7, 0.8], rtol=1e-8)
    assert points.count((1.0, 1.0)) == 1  # the check's value is reused by SciPy
    popt2, _ = dopt.curve_fit(f, t, y, p0=[1.0, 1.0])
    assert np.array_equal(popt, popt2)


def test_curve_fit_first_value_is_reused_only_at_the_same_bits():
    calls = []

    def f(t, a, k, *rest):
        calls.append((a, k))
        return a * t + k + sum(rest)

    t = np.linspace(0.0, 1.0, 5)
    p0 = np.array([-0.0, 1.0])
    first = dopt._FirstModel(f, t, p0, f(t, *p0))
    calls.clear()
    assert np.array_equal(first(t, np.float64(-0.0), np.float64(1.0)), np.ones(5))
    assert first.hits == 1 and calls == []
    first(t, 0.0, 1.0)  # equal numbers, other bits: a real evaluation
    first(t.copy(), -0.0, 1.0)  # other xdata object: a real evaluation
    first(t, -0.0, 1.0, 2.0)  # other parameter count
    assert first.hits == 1 and len(calls) == 3


def test_clear_cut_jacobian_mode_is_settled_up_front():
    import dualad._selector as sel

    for n, m in ((4, 1000), (100, 100), (1000, 1), (1000, 100), (30, 30)):
        mode = dopt._jacobian_mode("auto", n, m)
        cands = sel.Choice("jacobian", n, m).candidates()
        # the selector's own first decision when only one mode is plausible, else measure
        assert mode == (cands[0] if len(cands) == 1 else "auto"), (n, m)
        assert dopt._jacobian_mode("reverse", n, m) == "reverse"
    assert dopt._jacobian_mode("auto", 4, 1000) == "forward"
    assert dopt._jacobian_mode("auto", 1000, 1) == "reverse"
    # the fit's Jacobian is the same numbers either way
    t = np.linspace(0.0, 3.0, 200)
    y = 2.0 * np.exp(-1.3 * t) + 0.5

    def model(t, a, k, c):
        return a * np.exp(-k * t) + c
    p_auto = dopt.curve_fit(model, t, y, p0=[1.0, 1.0, 0.0])[0]
    p_rev = dopt.curve_fit(model, t, y, p0=[1.0, 1.0, 0.0], mode="reverse")[0]
    assert_allclose(p_auto, p_rev, rtol=1e-10)
    assert_allclose(p_auto, [2.0, 1.3, 0.5], rtol=1e-8)


def test_root_small_system():
    def F(v, a):
        return np.array([v[0] ** 2 + v[1] ** 2 - a, np.exp(v[0]) + v[1] - 1.0])

    def J(v, a):
        return np.array([[2 * v[0], 2 * v[1]], [np.exp(v[0]), 1.0]])

    for method in ("hybr", "lm"):
        sol = dopt.root(F, np.array([1.0, -1.0]), args=(4.0,), method=method)
        ref = so.root(F, np.array([1.0, -1.0]), args=(4.0,), method=method, jac=J)
        assert sol.success, method
        assert_allclose(F(sol.x, 4.0), 0.0, atol=1e-10)
        assert_allclose(sol.x, ref.x, rtol=1e-12)
        assert sol.nfev == ref.nfev


def test_root_quasi_newton_method_is_scipys():
    def F(v):
        return v + 0.1 * np.sin(v) - np.array([1.0, 2.0])

    sol = dopt.root(F, np.zeros(2), method="broyden1")
    ref = so.root(F, np.zeros(2), method="broyden1")
    assert np.array_equal(sol.x, ref.x)


def test_root_pytree():
    def F(p):
        return np.concatenate([p["a"] ** 3 - 8.0, [p["b"] - p["a"][0]]])

    sol = dopt.root(F, {"a": np.array([1.0]), "b": 0.0})
    assert_allclose(sol.x["a"], [2.0], rtol=1e-10)
    assert_allclose(sol.x["b"], 2.0, rtol=1e-10)


# ---------------------------------------------------------------------------------------
# The drop-in callables (issue 6): dualad's transforms passed to SciPy directly, with args
# ---------------------------------------------------------------------------------------

def test_drop_in_callables_with_args():
    def f(x, s):
        return s * rosen(x)

    x0 = near_one(6, 0.1)
    for method, kw in [("BFGS", {"jac": dualad.grad(f)}),
                       ("trust-exact", {"jac": dualad.grad(f), "hess": dualad.hessian(f)}),
                       ("trust-krylov", {"jac": dualad.grad(f), "hessp": dualad.hvp(f)})]:
        res = so.minimize(f, x0, args=(2.0,), method=method, **kw)
        assert res.success and np.allclose(res.x, 1.0, atol=1e-5), method
    fit = so.least_squares(residual, P0, args=(T, Y), jac=dualad.jacobian(residual))
    assert_allclose(fit.x, so.least_squares(residual, P0, jac=residual_jac, args=(T, Y)).x,
                    rtol=1e-12)


# ---------------------------------------------------------------------------------------
# Bad input: a clear error before any work
# ---------------------------------------------------------------------------------------

def never(*args, **kwargs):
    raise AssertionError("fun must not be called for this input")


@pytest.mark.parametrize("call, err, match", [
    (lambda: dopt.minimize(never, np.ones(2), method="newton"), ValueError,
     "unknown method 'newton'.*Newton-CG"),
    (lambda: dopt.minimize(never, np.ones(2), method=3), TypeError, "string or a callable"),
    (lambda: dopt.minimize(never, np.ones(2), mode="backward"), ValueError, "mode must be"),
    (lambda: dopt.minimize(never, np.array([1.0, np.nan])), ValueError,
     "x0 is not finite.*indices 1"),
    (lambda: dopt.minimize(never, np.array([1.0, np.inf]), method="Nelder-Mead"),
     ValueError, "x0 is not finite"),
    (lambda: dopt.minimize(never, np.array([1.0 + 1j, 2.0])), TypeError, "x0 is complex"),
    (lambda: dopt.minimize(never, 1j), TypeError, "x0 is complex"),
    (lambda: dopt.minimize(never, np.array([1.0, None])), TypeError, "object array"),
    (lambda: dopt.minimize(never, np.array(["a", "b"])), TypeError, "dtype <U1"),
    (lambda: dopt.minimize(never, np.zeros(0)), ValueError, "x0 is empty"),
    (lambda: dopt.minimize(never, {"a": np.array([1.0, np.nan])}), ValueError,
     "x0 is not finite"),
    (lambda: dopt.minimize(never, {"a": np.array([1j])}), TypeError, "complex"),
    (lambda: dopt.minimize(3.0, np.ones(2)), TypeError, "fun must be callable"),
    (lambda: dopt.least_squares(never, np.ones(2), method="cg"), ValueError,
     "unknown method 'cg'.*trf"),
    (lambda: dopt.least_squares(never, np.ones(2), bounds=(2.0, 3.0)), ValueError,
     "outside the bounds"),
    (lambda: dopt.least_squares(never, np.array([np.nan])), ValueError, "not finite"),
    (lambda: dopt.root(never, np.ones(2), method="newton"), ValueError,
     "unknown method 'newton'.*hybr"),
    (lambda: dopt.root(never, np.array([1j])), TypeError, "complex"),
    (lambda: dopt.curve_fit(never, T, Y, p0=P0, method="bfgs"), ValueError,
     "unknown method 'bfgs'"),
    (lambda: dopt.curve_fit(never, T, Y, p0=[1.0, np.inf]), ValueError, "not finite"),
    (lambda: dopt.curve_fit(never, T, Y, p0=np.ones((2, 2))), ValueError, "1-d sequence"),
    (lambda: dopt.curve_fit(never, T, Y, p0=[3.0], bounds=(0.0, 1.0)), ValueError,
     "p0 lies outside the bounds"),
    (lambda: dopt.curve_fit(lambda *a: never(), T, Y), ValueError, "pass p0"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_input_is_caught_before_any_work(call, err, match):
    with pytest.raises(err, match=match):
        call()


@pytest.mark.parametrize("method", ["BFGS", "trust-exact", "Newton-CG", "Nelder-Mead"])
def test_fun_returning_a_vector(method):
    with pytest.raises(ValueError, match=r"scalar.*shape \(3,\).*least_squares"):
        dopt.minimize(lambda x: x ** 2, np.ones(3), method=method)


def test_fun_returning_a_pair_without_jac_true():
    with pytest.raises(ValueError, match="pass jac=True"):
        dopt.minimize(lambda x: (np.sum(x ** 2), 2 * x), np.ones(2))


def test_fun_returning_none():
    with pytest.raises(TypeError, match="returned None"):
        dopt.minimize(lambda x: None, np.ones(2), method="Powell")


def test_size_one_output_is_a_scalar_as_in_scipy():
    res = dopt.minimize(lambda x: np.sum(x ** 2, keepdims=True), np.ones(2))
    assert res.success and np.allclose(res.x, 0.0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # log/1/x at x0, on purpose
@pytest.mark.parametrize("method", ["BFGS", "trust-exact", "Powell"])
def test_non_finite_value_at_x0(method):
    with pytest.raises(ValueError, match=r"fun is not finite at x0.*domain"):
        dopt.minimize(lambda x: np.sum(np.log(x)), np.array([1.0, -1.0]), method=method)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # log/1/x at x0, on purpose
def test_non_finite_gradient_at_x0():
    with pytest.raises(ValueError, match="gradient of fun is not finite at x0"):
        dopt.minimize(lambda x: np.sum(np.sqrt(x)), np.array([1.0, 0.0]))


def test_jac_true_with_a_bad_pair():
    with pytest.raises(ValueError, match="gradient has 3 values"):
        dopt.minimize(lambda x: (np.sum(x ** 2), np.ones(3)), np.ones(2), jac=True)


def test_error_inside_fun_at_x0_names_the_check():
    def f(x):
        return x[0] * x[5]  # expects six entries

    with pytest.raises(IndexError) as info:
        dopt.minimize(f, np.ones(2))
    if sys.version_info >= (3, 11):
        assert "evaluated fun at x0 (shape (2,))" in "".join(info.value.__notes__)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # log/1/x at x0, on purpose
def test_vector_function_errors():
    with pytest.raises(ValueError, match="square system"):
        dopt.root(lambda x: np.array([x[0], x[1], x[0] * x[1]]), np.ones(2))
    with pytest.raises(ValueError, match="not finite"):
        dopt.root(lambda x: np.log(x), np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="empty"):
        dopt.least_squares(lambda x: x[:0], np.ones(2))
    with pytest.raises(ValueError, match="not finite"):
        dopt.least_squares(lambda x: 1.0 / (x - 1.0), np.ones(2))
    with pytest.raises(ValueError, match="3 values for 200 data points"):
        dopt.curve_fit(lambda t, a: a * np.ones(3), T, Y, p0=[1.0])
    with pytest.raises(ValueError, match=r"f\(xdata, \*params\) is not finite at p0"):
        dopt.curve_fit(lambda t, a: np.log(a) * t, T, Y, p0=[-1.0])


# ---------------------------------------------------------------------------------------
# Docstrings: numpydoc sections, and the Examples run
# ---------------------------------------------------------------------------------------

PUBLIC = [getattr(dopt, name) for name in dopt.__all__]


@pytest.mark.parametrize("obj", PUBLIC, ids=lambda o: o.__name__)
def test_docstrings(obj):
    import doctest
    import inspect

    doc = inspect.getdoc(obj)
    for section in ("Parameters", "Returns" if inspect.isfunction(obj) else "Attributes",
                    "Raises", "See Also", "Examples"):
        assert section in doc, f"{obj.__name__}: no {section} section"
    test = doctest.DocTestParser().get_doctest(doc, {"np": np, "dualad": dualad},
                                               obj.__name__, None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS
                                   | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0, obj.__name__


def test_module_all():
    assert sorted(dopt.__all__) == sorted(["minimize", "least_squares", "curve_fit", "root",
                                           "Objective"])
