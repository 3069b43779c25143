"""Rosenbrock, n = 100: L-BFGS-B, Newton-CG and trust-exact with exact derivatives.

Each method runs three times from the same start:

- "dualad": ``dualad.optimize.minimize(rosen, x0, method=...)``, which fills in the
  gradient (L-BFGS-B), the gradient and Hessian-vector products (Newton-CG), or the
  gradient and the Hessian (trust-exact) from the plain-NumPy ``rosen`` below;
- "hand-written": SciPy with ``rosen_der``, ``rosen_hess_prod``, ``rosen_hess``, the
  derivatives worked out on paper (the best one can do, when one can);
- "finite differences": what one can do without derivatives: SciPy's 2-point
  gradient for L-BFGS-B; for the second-order methods, which need callables, a 2-point
  gradient, and Hessians (or, in Newton-CG, SciPy's Hessian-vector products) by
  differencing that gradient once more.

The table shows iterations, evaluations of ``rosen`` (including those spent inside
finite differences and derivative sweeps), wall time and the final error
``max |x - 1|``.  Every run gets the same budget of evaluations; finite differences
exhaust it (it matches L-BFGS-B's own limit of 15 000 evaluations).  The
script checks that every dualad run reaches the minimum and follows the hand-written
run.  Times are single runs on whatever machine this is: indicative only (the asv
benchmark ``benchmarks/bench_scipy.py`` measures them properly).

Run: python examples/rosenbrock.py
"""

import time

import numpy as np
from scipy.optimize import approx_fprime, minimize, rosen_der, rosen_hess, rosen_hess_prod

import dualad.optimize as dopt

N = 100
FD_STEP = np.sqrt(np.finfo(float).eps)  # the step of SciPy's 2-point scheme
BUDGET = 15_000  # evaluations of rosen per run (SciPy's own limit for L-BFGS-B)


def rosen(x):
    """Rosenbrock in plain NumPy (no np.asarray: dualad traces the array ops)."""
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


class OutOfBudget(Exception):
    """Raised by `Counted` when a run has used up its evaluations."""


class Counted:
    """``rosen`` with a count of its evaluations (plain or traced), an evaluation
    budget, and the best plain point seen so far."""

    def __init__(self, budget=BUDGET):
        self.calls = 0
        self.budget = budget
        self.best = (np.inf, None)

    def __call__(self, x):
        if self.calls >= self.budget:
            raise OutOfBudget
        self.calls += 1
        value = rosen(x)
        if isinstance(x, np.ndarray) and value < self.best[0]:
            self.best = (float(value), x.copy())
        return value


def run(method, tool, x0):
    """One run; returns the row of the table."""
    f = Counted()
    kwargs = {}
    if tool == "hand-written":
        kwargs = {"L-BFGS-B": {"jac": rosen_der},
                  "Newton-CG": {"jac": rosen_der, "hessp": rosen_hess_prod},
                  "trust-exact": {"jac": rosen_der, "hess": rosen_hess}}[method]
    elif tool == "finite differences" and method != "L-BFGS-B":
        # the second-order methods insist on a gradient callable (and trust-exact on a
        # Hessian callable): 2-point differences of f, and of that gradient for the
        # Hessian; Newton-CG differences the gradient for its products itself
        def fd_grad(x):
            return approx_fprime(x, f, FD_STEP)
        kwargs = {"jac": fd_grad}
        if method == "trust-exact":
            kwargs["hess"] = lambda x: approx_fprime(x, fd_grad, FD_STEP)
    options = {"xtol": 1e-8} if method == "Newton-CG" else {}
    start = time.perf_counter()
    try:
        if tool == "dualad":
            res = dopt.minimize(f, x0, method=method, options=options)
        else:
            res = minimize(f, x0, method=method, options=options, **kwargs)
        nit, x, success = res.nit, res.x, bool(res.success)
    except OutOfBudget:
        nit, x, success = None, f.best[1], False
    elapsed = time.perf_counter() - start
    return {"method": method, "tool": tool, "nit": nit, "evals": f.calls,
            "ms": 1e3 * elapsed, "error": float(np.max(np.abs(x - 1.0))),
            "success": success}


def main():
    x0 = 0.25 + 0.25 * np.sin(np.arange(float(N)))  # a deterministic start in [0, 0.5]
    rows = [run(method, tool, x0)
            for method in ("L-BFGS-B", "Newton-CG", "trust-exact")
            for tool in ("dualad", "hand-written", "finite differences")]

    print(f"Rosenbrock, n = {N}, from x0 = 0.25 + 0.25 sin(k)")
    print(f"{'method':12s} {'derivatives':19s} {'iterations':>10s} {'evaluations':>12s} "
          f"{'time (ms)':>10s} {'max |x - 1|':>12s}")
    for r in rows:
        nit = "budget" if r["nit"] is None else str(r["nit"])
        print(f"{r['method']:12s} {r['tool']:19s} {nit:>10s} {r['evals']:12d} "
              f"{r['ms']:10.1f} {r['error']:12.1e}"
              + ("" if r["success"] else "  (failed)"))

    by = {(r["method"], r["tool"]): r for r in rows}
    for method in ("L-BFGS-B", "Newton-CG", "trust-exact"):
        ours, hand = by[method, "dualad"], by[method, "hand-written"]
        fd = by[method, "finite differences"]
        assert ours["success"] and ours["error"] < 1e-4, (method, ours)
        # exact derivatives: the hand-written run's path (to rounding, which a long run
        # on Rosenbrock's curved valley may amplify into a few iterations)
        assert abs(ours["nit"] - hand["nit"]) <= 0.05 * hand["nit"] + 2, \
            (method, ours, hand)
        # one dualad evaluation gives a whole gradient; finite differences pay n + 1
        assert ours["evals"] < fd["evals"] and ours["error"] < fd["error"], \
            (method, ours, fd)


if __name__ == "__main__":
    main()
