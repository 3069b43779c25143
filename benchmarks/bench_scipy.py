"""End-to-end SciPy benchmarks: whole optimizer runs with dualad's derivatives.

Each class times one complete ``scipy.optimize`` run three ways, from the same start
with the same options:

- ``"dualad"``: ``dualad.optimize.minimize`` / ``curve_fit`` on the plain-NumPy
  function, which fills in every derivative the method uses (``mode="auto"``; the
  selector's first, exploring calls are part of the run, as they are for a user);
- ``"hand-written"``: SciPy with the derivatives worked out on paper (``rosen_der``,
  ``rosen_hess_prod``, ``rosen_hess``, `problems.residual_jacobian`): the floor;
- ``"plain f"``: the objective (or model) alone, called at every point where the
  hand-written run evaluated it, recorded in ``setup``: the evaluations no tool can
  avoid, so *dualad / plain f* is what derivatives and solver add on top of them
  (``track_error`` of this row is that of the recorded hand-written run);
- ``"finite differences"``: what SciPy does without them.  For L-BFGS-B and the curve
  fit that is SciPy's own 2-point gradient/Jacobian of ``f``.  Newton-CG and
  trust-exact cannot run on ``f`` alone in reasonable time (a 2-point gradient costs
  ``n + 1`` evaluations, and they difference it again for second derivatives), so
  there the *second* derivatives are differenced from the hand-written gradient:
  SciPy's own Hessian-vector products for Newton-CG, ``approx_fprime`` of
  ``rosen_der`` for trust-exact's Hessian.

The ratio *dualad / hand-written* is the end-to-end price of not deriving anything by
hand (issue 6 targets 1.5); *dualad / finite differences* shows what exact derivatives
buy.  ``track_error`` records how close each run gets to the solution, so a fast run
that stops early (finite differences in L-BFGS-B give up at SciPy's limit of 15 000
evaluations, short of the minimum) is not mistaken for a good one.

Before timing, ``setup`` checks dualad's run: it must reach the minimum (L-BFGS-B,
trust-exact), follow the hand-written run (Newton-CG, trust-exact: same iterations and
iterates) or give the same fit (curve fit).  Rosenbrock is `problems.rosen`, plain
NumPy (SciPy >= 1.15's ``rosen`` converts its input with ``np.asarray``, which tracers
only survive as slow object arrays).  SciPy's L-BFGS-B calls BLAS on tiny vectors: run
with ``OPENBLAS_NUM_THREADS=1`` (the asv environments do) or the timings measure thread
contention.
"""

import numpy as np
import scipy.optimize as so
from scipy.optimize import approx_fprime, rosen_der, rosen_hess, rosen_hess_prod

from . import problems as P
from ._support import dualad_attr, recorded

PLAIN = "plain f"
DUALAD = "dualad"
HAND = "hand-written"
FD = "finite differences"
TOOLS = (PLAIN, DUALAD, HAND, FD)

_FD_STEP = np.sqrt(np.finfo(float).eps)


def _check(condition, message):
    if not condition:
        raise AssertionError(message)


class _Run:
    """Base: ``self.run()`` does the whole solve; the timing and tracking methods call
    it.  For ``"plain f"``, `replay` sets ``self.run`` to the replay and ``self.result``
    to the recorded run's result."""

    result = None

    def time_solve(self, *params):
        self.run()

    def track_error(self, *params):
        return self.error(self.run() if self.result is None else self.result)

    track_error.unit = "max |x - x*|"

    def replay(self, solve, fun):
        """Run ``solve(recorded_fun)`` once, then replay ``fun`` at its points."""
        points = []
        self.result = solve(recorded(fun, points))

        def run():
            for args in points:
                fun(*args)
        self.run = run


class LBFGSBRosenbrock(_Run):
    """L-BFGS-B on Rosenbrock, n = 100 and 1000, from `problems.rosen_start`.

    dualad fills in the gradient; value and gradient come from one reverse sweep per
    point.  About 500 (n = 100) and 5000 (n = 1000) iterations.
    """

    params = ((100, 1000), TOOLS)
    param_names = ("n", "tool")
    timeout = 600

    def setup(self, n, tool):
        self.result = None
        x0 = P.rosen_start(n)
        if tool == PLAIN:
            self.replay(lambda f: so.minimize(f, x0, method="L-BFGS-B", jac=rosen_der), P.rosen)
        elif tool == DUALAD:
            minimize = dualad_attr("optimize.minimize")
            self.run = lambda: minimize(P.rosen, x0, method="L-BFGS-B")
            res = self.run()
            _check(res.success and self.error(res) < 1e-4,
                   f"dualad's L-BFGS-B run did not reach the minimum: {res.message}")
        elif tool == HAND:
            self.run = lambda: so.minimize(P.rosen, x0, method="L-BFGS-B", jac=rosen_der)
        else:
            self.run = lambda: so.minimize(P.rosen, x0, method="L-BFGS-B")

    @staticmethod
    def error(res):
        return float(np.max(np.abs(res.x - 1.0)))


class NewtonCGRosenbrock(_Run):
    """Newton-CG with Hessian-vector products on Rosenbrock, n = 10 000.

    dualad fills in the gradient and ``hessp`` (each product replays the gradient
    pass's recording at that point).  SciPy's default tolerances stop the run after 12 iterations and 25
    products, still far from ``x = 1`` (the valley of a 10 000-variable Rosenbrock is
    long): the benchmark is the cost of that path, which every tool follows.
    """

    params = ((10_000,), TOOLS)
    param_names = ("n", "tool")

    def setup(self, n, tool):
        self.result = None
        x0 = P.rosen_start(n)
        def hand(f=P.rosen):
            return so.minimize(f, x0, method="Newton-CG", jac=rosen_der,
                               hessp=rosen_hess_prod)
        if tool == PLAIN:
            self.replay(hand, P.rosen)
        elif tool == DUALAD:
            minimize = dualad_attr("optimize.minimize")
            self.run = lambda: minimize(P.rosen, x0, method="Newton-CG")
            res, ref = self.run(), hand()
            _check(res.nit == ref.nit and np.allclose(res.x, ref.x, rtol=0, atol=1e-8),
                   "dualad's Newton-CG run left the hand-written run's path")
        elif tool == HAND:
            self.run = hand
        else:
            self.run = lambda: so.minimize(P.rosen, x0, method="Newton-CG", jac=rosen_der)
        self.x_ref = hand().x

    def error(self, res):
        return float(np.max(np.abs(res.x - self.x_ref)))


class TrustExactRosenbrock(_Run):
    """trust-exact on Rosenbrock, n = 100: dualad fills in gradient and Hessian.

    About 200 iterations, each with a dense Hessian (forward-over-reverse in chunks of
    12 columns) and its Cholesky factorisations.  Finite differences: the Hessian by
    ``approx_fprime`` of the hand-written gradient, ``n + 1`` gradients per Hessian.
    """

    params = ((100,), TOOLS)
    param_names = ("n", "tool")

    def setup(self, n, tool):
        self.result = None
        x0 = P.rosen_start(n)
        def hand(f=P.rosen):
            return so.minimize(f, x0, method="trust-exact", jac=rosen_der,
                               hess=rosen_hess)
        if tool == PLAIN:
            self.replay(hand, P.rosen)
        elif tool == DUALAD:
            minimize = dualad_attr("optimize.minimize")
            self.run = lambda: minimize(P.rosen, x0, method="trust-exact")
            res, ref = self.run(), hand()
            _check(res.success and res.nit == ref.nit and self.error(res) < 1e-8,
                   "dualad's trust-exact run left the hand-written run's path")
        elif tool == HAND:
            self.run = hand
        else:
            self.run = lambda: so.minimize(
                P.rosen, x0, method="trust-exact", jac=rosen_der,
                hess=lambda x: approx_fprime(x, rosen_der, _FD_STEP))

    @staticmethod
    def error(res):
        return float(np.max(np.abs(res.x - 1.0)))


def _model(t, a, k, b, w):
    """`problems.residual` as a curve_fit model ``f(t, *params)``."""
    return a * np.exp(-k * t) + b * np.sin(w * t)


def _model_jac(t, a, k, b, w):
    return P.residual_jacobian(np.array([a, k, b, w]), t, t)


class CurveFit(_Run):
    """curve_fit of the 1000-point, 4-parameter damped model of `problems.residual`.

    SciPy's default method for an unbounded fit (Levenberg-Marquardt, MINPACK).
    dualad fills in the 1000 x 4 Jacobian with respect to the parameters: one forward
    sweep with 4 lanes.
    """

    params = (TOOLS,)
    param_names = ("tool",)

    def setup(self, tool):
        self.result = None
        t, y = P.curve_fit_data()
        def hand(model=_model):
            return so.curve_fit(model, t, y, p0=P.P0, jac=_model_jac)
        if tool == PLAIN:
            self.replay(hand, _model)
        elif tool == DUALAD:
            curve_fit = dualad_attr("optimize.curve_fit")
            self.run = lambda: curve_fit(_model, t, y, p0=P.P0)
            popt, ref = self.run()[0], hand()[0]
            _check(np.allclose(popt, ref, rtol=1e-10, atol=0),
                   "dualad's curve_fit differs from the hand-written Jacobian's")
        elif tool == HAND:
            self.run = hand
        else:
            self.run = lambda: so.curve_fit(_model, t, y, p0=P.P0)
        self.p_ref = so.least_squares(P.residual, P.P0, jac=P.residual_jacobian,
                                      args=(t, y), xtol=1e-15, ftol=1e-15, gtol=1e-15).x

    def error(self, result):
        return float(np.max(np.abs(result[0] - self.p_ref) / np.abs(self.p_ref)))
