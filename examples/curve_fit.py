"""A two-exponential decay fitted with dualad.optimize.curve_fit.

Many measurements relax on two time scales at once: fluorescence of two species, a
drug in two compartments, a capacitor discharging through two paths.  The model

    y(t) = a1 exp(-k1 t) + a2 exp(-k2 t) + c

is fitted to simulated noisy data (true rates 2.0 and 0.25 per unit time) three ways:
with the Jacobian from dualad (``dualad.optimize.curve_fit``, nothing to write but the
model), with a hand-written Jacobian (the oracle), and with SciPy's default finite
differences.  The script prints the cost of each fit and the parameters with their
standard errors, and checks that dualad's fit equals the hand-written one and that the
true parameters lie within the error bars.

With matplotlib installed it also draws data, fit and residuals to a PNG: in the
system's temporary directory by default (so running the examples never writes into the
source tree), or where ``--plot PATH`` says when you run the script yourself.

Run: python examples/curve_fit.py [--plot fit.png]
"""

import argparse
import os
import tempfile
import time

import numpy as np
import scipy.optimize as so

import dualad.optimize as dopt

TRUE = np.array([3.0, 2.0, 1.0, 0.25, 0.2])  # a1, k1, a2, k2, c
NAMES = ("a1", "k1", "a2", "k2", "c")
P0 = np.array([1.0, 1.0, 1.0, 0.1, 0.0])
NOISE = 0.02


def model(t, a1, k1, a2, k2, c):
    """Two exponential decays on a constant background."""
    return a1 * np.exp(-k1 * t) + a2 * np.exp(-k2 * t) + c


def model_jac(t, a1, k1, a2, k2, c):
    """The hand-written Jacobian with respect to (a1, k1, a2, k2, c)."""
    e1, e2 = np.exp(-k1 * t), np.exp(-k2 * t)
    return np.column_stack([e1, -a1 * t * e1, e2, -a2 * t * e2, np.ones_like(t)])


def make_data(seed=1):
    t = np.linspace(0.0, 15.0, 150)
    rng = np.random.default_rng(seed)
    return t, model(t, *TRUE) + NOISE * rng.standard_normal(t.size)


def fit(tool, t, y):
    """One fit; returns (popt, pcov, info, milliseconds)."""
    sigma = np.full(t.size, NOISE)
    start = time.perf_counter()
    if tool == "dualad":
        popt, pcov, info, _, _ = dopt.curve_fit(model, t, y, p0=P0, sigma=sigma,
                                                absolute_sigma=True, full_output=True)
    else:
        jac = model_jac if tool == "hand-written" else None
        popt, pcov, info, _, _ = so.curve_fit(model, t, y, p0=P0, sigma=sigma,
                                              absolute_sigma=True, jac=jac,
                                              full_output=True)
    return popt, pcov, info, 1e3 * (time.perf_counter() - start)


def plot(t, y, popt, path):
    """Data, fit and residuals to a PNG (matplotlib's object API: no display needed)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print("(matplotlib is not installed: no plot)")
        return
    fig = Figure(figsize=(7, 5), constrained_layout=True)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    top.plot(t, y, ".", ms=3, color="0.4", label="data")
    tt = np.linspace(t[0], t[-1], 600)
    top.plot(tt, model(tt, *popt), color="C3", label="fit (dualad Jacobian)")
    top.plot(tt, popt[0] * np.exp(-popt[1] * tt) + popt[4], "--", color="C0", lw=1,
             label="fast component + c")
    top.plot(tt, popt[2] * np.exp(-popt[3] * tt) + popt[4], "--", color="C2", lw=1,
             label="slow component + c")
    top.set_ylabel("signal")
    top.legend()
    bottom.plot(t, y - model(t, *popt), ".", ms=3, color="0.4")
    bottom.axhline(0.0, color="C3", lw=1)
    bottom.set_xlabel("time")
    bottom.set_ylabel("residual")
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


def main(plot_path=None):
    t, y = make_data()
    results = {tool: fit(tool, t, y)
               for tool in ("dualad", "hand-written", "finite differences")}
    ref = results["hand-written"][0]

    print(f"Two-exponential decay, {t.size} points, noise sd {NOISE}")
    print(f"{'Jacobian':19s} {'f evals':>8s} {'J evals':>8s} {'time (ms)':>10s} "
          f"{'max rel. gap to hand-written':>30s}")
    for tool, (popt, _, info, ms) in results.items():
        njev = info.get("njev", 0)
        gap = np.max(np.abs(popt - ref) / np.abs(ref))
        print(f"{tool:19s} {info['nfev']:8d} {njev:8d} {ms:10.1f} {gap:30.1e}")

    popt, pcov = results["dualad"][:2]
    err = np.sqrt(np.diag(pcov))
    print()
    print(f"{'parameter':10s} {'true':>8s} {'fitted':>10s} {'std. error':>11s}")
    for name, true, value, e in zip(NAMES, TRUE, popt, err, strict=True):
        print(f"{name:10s} {true:8.3f} {value:10.5f} {e:11.5f}")

    # dualad's Jacobian is exact: the same fit as the hand-written one
    np.testing.assert_allclose(popt, ref, rtol=1e-9)
    np.testing.assert_allclose(pcov, results["hand-written"][1], rtol=1e-6)
    assert np.all(np.abs(popt - TRUE) < 4.0 * err), "true parameters outside 4 sigma"

    plot(t, y, popt, plot_path or os.path.join(tempfile.gettempdir(),
                                               "dualad-curve_fit.png"))


if __name__ == "__main__":
    # parse_known_args: the test suite runs this file under pytest's command line
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     allow_abbrev=False)
    parser.add_argument("--plot", metavar="PATH", help="where to write the PNG")
    main(parser.parse_known_args()[0].plot)
