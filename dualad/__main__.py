"""``python -m dualad``: version and build information, then a short demonstration.

The demonstration differentiates two functions on built-in data, checks every number
against central finite differences, and prints the cost of each derivative as a ratio
to the plain function (medians of repeated timings).
"""

import argparse
import platform
import sys
import timeit

import numpy as np


def _median_time(fn, repeat=7, min_time=0.05):
    """Median seconds per call of ``fn`` over ``repeat`` batches."""
    number = 1
    while True:
        t = timeit.timeit(fn, number=number)
        if t >= min_time / repeat or number >= 1 << 20:
            break
        number *= 2
    times = timeit.repeat(fn, number=number, repeat=repeat)
    return float(np.median(times)) / number


def build_info():
    """Return a dict describing this installation of dualad."""
    import dualad
    from dualad import _array, _scalar, _tape
    from dualad.rules._elementwise import RULES
    return {
        "dualad": dualad.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "compiled core": ", ".join(m.__file__ for m in (_scalar, _array, _tape)),
        "elementwise rules": str(len(RULES)),
        "chunk threshold": str(dualad.CHUNK_THRESHOLD),
    }


def _curve_fit_data():
    t = np.linspace(0.0, 10.0, 1000)
    rng = np.random.default_rng(0)
    p_true = np.array([2.0, 0.35, 0.8, 1.7])
    y = p_true[0] * np.exp(-p_true[1] * t) + p_true[2] * np.sin(p_true[3] * t)
    return t, y + 0.05 * rng.standard_normal(t.size)


def _residual(p, t, y):
    return p[0] * np.exp(-p[1] * t) + p[2] * np.sin(p[3] * t) - y


def _scalar_f(x):
    return np.sin(x) * np.exp(x) / (1 + x ** 2) + x ** 3


def demo(quick=False, out=sys.stdout):
    """Run the demonstration; return True if every derivative matched the reference."""
    import dualad

    ok = True
    repeat = 3 if quick else 7

    def say(text=""):
        print(text, file=out)

    say("1. Scalar derivative of f(x) = sin(x) exp(x) / (1 + x^2) + x^3")
    df = dualad.derivative(_scalar_f)
    h = 1e-5
    worst = 0.0
    for x in np.linspace(-2.0, 2.0, 9):
        fd = (_scalar_f(x + h) - _scalar_f(x - h)) / (2 * h)
        err = abs(df(x) - fd) / max(1.0, abs(fd))
        worst = max(worst, err)
    ok &= worst < 1e-7
    t_f = _median_time(lambda: _scalar_f(0.7), repeat)
    t_df = _median_time(lambda: df(0.7), repeat)
    say(f"   f'(0.7) = {df(0.7):.12f}; max relative gap to central differences over 9 "
        f"points: {worst:.1e} ({'ok' if worst < 1e-7 else 'MISMATCH'})")
    say(f"   time: f {t_f * 1e6:.2f} us, f' {t_df * 1e6:.2f} us, ratio {t_df / t_f:.1f}x")

    say()
    say("2. Jacobian of the 1000 x 4 curve-fit residual "
        "r(p) = p0 exp(-p1 t) + p2 sin(p3 t) - y")
    t, y = _curve_fit_data()
    p = np.array([1.5, 0.3, 1.0, 1.6])
    jac = dualad.jacobian(_residual)
    J = jac(p, t, y)
    fd = np.empty_like(J)
    for j in range(p.size):
        e = np.zeros_like(p)
        e[j] = 1e-6
        fd[:, j] = (_residual(p + e, t, y) - _residual(p - e, t, y)) / 2e-6
    gap = float(np.max(np.abs(J - fd)) / np.max(np.abs(fd)))
    ok &= gap < 1e-7
    t_r = _median_time(lambda: _residual(p, t, y), repeat)
    t_j = _median_time(lambda: jac(p, t, y), repeat)
    say(f"   J.shape = {J.shape}, dtype {J.dtype}; max gap to central differences "
        f"{gap:.1e} ({'ok' if gap < 1e-7 else 'MISMATCH'})")
    say(f"   time: r {t_r * 1e6:.1f} us, J {t_j * 1e6:.1f} us, ratio {t_j / t_r:.1f}x "
        f"(2-point differences need {p.size + 1} evaluations of r, and are inexact)")
    say()
    say("all derivatives match the references" if ok else "SOME DERIVATIVES MISMATCH")
    return ok


def main(argv=None):
    """Entry point of ``python -m dualad``."""
    parser = argparse.ArgumentParser(prog="python -m dualad", description=__doc__)
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
