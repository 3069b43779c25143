"""``python -m dualad``: build information, then SciPy fits with dualad's derivatives.

The main job fits a built-in model with ``scipy.optimize`` twice, once with dualad's
derivatives (through :mod:`dualad.optimize`) and once with SciPy's finite differences,
and prints the evaluations, the time and the error of each:

1. a curve fit: ``r(p) = p0 exp(-p1 t) + p2 sin(p3 t) - y`` on 1000 noisy points,
   ``least_squares``; the error is the distance to the exact least-squares solution
   (computed with the hand-written Jacobian), and dualad's Jacobian is first checked
   against the hand-written one;
2. Rosenbrock's function in 100 variables with L-BFGS-B; the error is the distance to
   the minimum ``x = 1``.

Times are medians of repeated runs (``--quick``: fewer repeats).  SciPy's L-BFGS-B calls
BLAS on tiny vectors, where a multi-threaded BLAS on a busy machine measures thread
contention rather than work: when threadpoolctl is installed the runs use one BLAS thread
(otherwise set ``OPENBLAS_NUM_THREADS=1``).  The exit status is 0 when dualad's Jacobian
matches the hand-written one and both dualad runs reach their solutions.
"""

import argparse
import contextlib
import platform
import sys
import time

import numpy as np


def build_info():
    """Return a dict describing this installation of dualad."""
    import scipy

    import dualad
    from dualad import _array, _scalar, _tape
    from dualad.rules._elementwise import RULES
    return {
        "dualad": dualad.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "platform": platform.platform(),
        "compiled core": ", ".join(m.__file__ for m in (_scalar, _array, _tape)),
        "elementwise rules": str(len(RULES)),
        "chunk threshold": str(dualad.CHUNK_THRESHOLD),
    }


# ---------------------------------------------------------------------------------------
# The built-in model
# ---------------------------------------------------------------------------------------

P_TRUE = np.array([2.0, 0.35, 0.8, 1.7])
P0 = np.array([1.5, 0.3, 1.0, 1.6])


def fit_data():
    """1000 noisy samples of the model at ``P_TRUE`` (a fixed seed)."""
    t = np.linspace(0.0, 10.0, 1000)
    rng = np.random.default_rng(0)
    y = P_TRUE[0] * np.exp(-P_TRUE[1] * t) + P_TRUE[2] * np.sin(P_TRUE[3] * t)
    return t, y + 0.05 * rng.standard_normal(t.size)


def residual(p, t, y):
    """The curve-fit residual, plain NumPy: what dualad differentiates."""
    return p[0] * np.exp(-p[1] * t) + p[2] * np.sin(p[3] * t) - y


def residual_jacobian(p, t, y):
    """The hand-written Jacobian of :func:`residual` (the reference)."""
    decay = np.exp(-p[1] * t)
    return np.column_stack([decay, -p[0] * t * decay, np.sin(p[3] * t),
                            p[2] * t * np.cos(p[3] * t)])


def rosen(x):
    """Rosenbrock's function, plain NumPy."""
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


class _Counted:
    """A function with a count of its evaluations (plain, traced or inside differences)."""

    def __init__(self, fun):
        self.fun = fun
        self.calls = 0

    def __call__(self, *args):
        self.calls += 1
        return self.fun(*args)


def _one_blas_thread():
    """Limit BLAS to one thread for the timed runs, when threadpoolctl is available."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _timed(run, repeat):
    """``(result of the last run, median seconds, evaluations of one run)``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result, calls = run()
        times.append(time.perf_counter() - start)
    return result, float(np.median(times)), calls


def _table(say, title, rows):
    say(title)
    say(f"   {'derivatives':20s} {'evaluations':>12s} {'time (ms)':>10s} "
        f"{'error':>10s}  note")
    for name, evals, seconds, error, note in rows:
        say(f"   {name:20s} {evals:12d} {1e3 * seconds:10.2f} {error:10.1e}  {note}")


def demo(quick=False, out=sys.stdout):
    """Run the main job; return True if every dualad check passed.

    Parameters
    ----------
    quick : bool, optional
        Fewer timing repeats.
    out : file, optional
        Where to print.

    Returns
    -------
    bool
        Whether dualad's Jacobian matched the hand-written one and both dualad runs
        reached their solutions.
    """
    def say(text=""):
        print(text, file=out)

    repeat = 3 if quick else 7
    with _one_blas_thread():
        return _demo(say, repeat, quick)


def _demo(say, repeat, quick):
    import scipy.optimize as so

    import dualad
    import dualad.optimize as dopt

    ok = True

    # 1. the curve fit -------------------------------------------------------------------
    t, y = fit_data()
    tight = {"xtol": 1e-12, "ftol": 1e-12, "gtol": 1e-12}
    exact = so.least_squares(residual, P0, jac=residual_jacobian, args=(t, y),
                             xtol=1e-15, ftol=1e-15, gtol=1e-15).x
    J = dualad.jacobian(residual)(P0, t, y)
    gap = float(np.max(np.abs(J - residual_jacobian(P0, t, y))))
    ok &= gap < 1e-12

    def dualad_fit():
        r = _Counted(residual)
        return dopt.least_squares(r, P0, args=(t, y), **tight), r.calls

    def fd_fit():
        r = _Counted(residual)
        return so.least_squares(r, P0, args=(t, y), **tight), r.calls

    rows = []
    for name, run in (("dualad", dualad_fit), ("finite differences", fd_fit)):
        res, seconds, calls = _timed(run, repeat)
        error = float(np.max(np.abs(res.x - exact) / np.abs(exact)))
        note = f"{res.nfev} residuals, {res.njev} Jacobians"
        rows.append((name, calls, seconds, error, note))
        if name == "dualad":
            ok &= error < 1e-10
    say("1. Curve fit: r(p) = p0 exp(-p1 t) + p2 sin(p3 t) - y, 1000 points, 4 parameters,")
    say("   scipy.optimize.least_squares (trf, tolerances 1e-12)")
    say(f"   dualad's 1000 x 4 Jacobian at p0 vs the hand-written one: max gap {gap:.1e} "
        f"({'ok' if gap < 1e-12 else 'MISMATCH'})")
    _table(say, "   error: max relative distance to the exact least-squares solution", rows)
    say(f"   fitted p = {np.array2string(exact, precision=5)} "
        f"(true {np.array2string(P_TRUE, precision=5)})")

    # 2. Rosenbrock, n = 100 -------------------------------------------------------------
    n = 100
    x0 = 0.25 + 0.25 * np.sin(np.arange(float(n)))

    def dualad_min():
        f = _Counted(rosen)
        return dopt.minimize(f, x0, method="L-BFGS-B"), f.calls

    def fd_min():
        f = _Counted(rosen)
        return so.minimize(f, x0, method="L-BFGS-B"), f.calls

    rows = []
    for name, run in (("dualad", dualad_min), ("finite differences", fd_min)):
        res, seconds, calls = _timed(run, 1 if quick and name != "dualad" else repeat)
        error = float(np.max(np.abs(res.x - 1.0)))
        note = f"{res.nit} iterations" + ("" if res.success else ", did not converge")
        rows.append((name, calls, seconds, error, note))
        if name == "dualad":
            ok &= bool(res.success) and error < 1e-4
    say()
    _table(say, "2. Rosenbrock's function, n = 100, scipy.optimize.minimize (L-BFGS-B)\n"
           "   error: max |x - 1|", rows)
    say()
    say("dualad's derivatives: all checks passed" if ok else "SOME CHECKS FAILED")
    return ok


def main(argv=None):
    """Entry point of ``python -m dualad``.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 if every check passed.
    """
    parser = argparse.ArgumentParser(prog="python -m dualad", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer timing repeats")
    parser.add_argument("--info", action="store_true", help="print build info only")
    args = parser.parse_args(argv)
    print("dualad build information")
    for key, value in build_info().items():
        print(f"  {key:18s} {value}")
    if args.info:
        return 0
    print()
    return 0 if demo(quick=args.quick) else 1


if __name__ == "__main__":
    sys.exit(main())
