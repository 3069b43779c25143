"""Diagnostics benchmarks: what ``check_finite`` costs, and the price of the tools.

``CheckFinite`` times one reverse-mode gradient per problem four ways: plain
``dualad.grad(f, mode="reverse")``; the same with ``check_finite=False`` (the
default), which must cost nothing -- its ratio to plain ``grad`` is the number
to watch, 1.0 within noise; with ``check_finite=True``, which first records one
evaluation with the tape's observer and sweeps it (`find_nonfinite`) and is
timed for information; and `dualad.diagnostics.find_nonfinite` alone.

The problems are a vectorized function (`problems.rosen`, n = 100 and 10 000),
scalar code whose every operation is one tape node (a Python loop over
``x[i]``, n = 1000: the worst case for per-node observer costs) and the
784-500-10 perceptron of ``bench_reverse.MLPGradient`` (397 510 parameters, a
few large array nodes).

``CheckGrad`` and ``Trace`` time the other two tools for information:
`dualad.check_grad` (4 n evaluations of ``f`` for the central differences plus
one gradient) beside SciPy's ``check_grad`` (2-point differences), and
`dualad.trace` (one observed recording, one sweep over every node) beside the
plain gradient.

Every dualad gradient is compared with the hand-written one in ``setup``; a
missing option (``check_finite`` before the transforms take it) skips only the
combinations that need it.
"""

import numpy as np
from scipy.optimize import check_grad as scipy_check_grad
from scipy.optimize import rosen_der

from . import problems as P
from ._support import checked_call, dualad_attr

GRAD = "grad"
OFF = "grad, check_finite=False"
ON = "grad, check_finite=True"
FIND = "find_nonfinite"

ROSEN_100 = "rosen n=100"
ROSEN_10K = "rosen n=10000"
LOOP = "scalar loop n=1000"
MLP = "MLP 784-500-10"


def chain_loop(x):
    """``sum_i x_i x_{i+1}`` as a Python loop over elements (one node per operation)."""
    s = 0.0
    for i in range(len(x) - 1):
        s = s + x[i] * x[i + 1]
    return s


def chain_loop_grad(x):
    """Hand-written gradient of `chain_loop`."""
    g = np.zeros_like(x)
    g[:-1] += x[1:]
    g[1:] += x[:-1]
    return g


def _problem(name):
    """``(f, args, hand-written gradient)`` of a named problem."""
    if name == ROSEN_100:
        x = P.rosen_point(100)
        return P.rosen, (x,), rosen_der(x)
    if name == ROSEN_10K:
        x = P.rosen_point(10_000)
        return P.rosen, (x,), rosen_der(x)
    if name == LOOP:
        x = np.cos(np.arange(1000.0))
        return chain_loop, (x,), chain_loop_grad(x)
    theta, x, y = P.mlp_data()
    return P.mlp_loss, (theta, x, y), P.mlp_grad(theta, x, y)


def _grad_with_check_finite(f, flag):
    grad = dualad_attr("grad")
    try:
        return grad(f, mode="reverse", check_finite=flag)
    except TypeError as exc:
        if "check_finite" not in str(exc):
            raise
        raise NotImplementedError("dualad.grad has no check_finite option yet") from exc


class CheckFinite:
    """``grad`` without, with ``check_finite=False`` and with ``check_finite=True``.

    ``time_gradient`` of ``"grad, check_finite=False"`` divided by that of
    ``"grad"`` is the cost of the option when it is off: 1.0 within noise.
    """

    params = ((ROSEN_100, ROSEN_10K, LOOP, MLP), (GRAD, OFF, ON, FIND))
    param_names = ("problem", "tool")

    def setup(self, problem, tool):
        f, self.args, expected = _problem(problem)
        if tool == GRAD:
            self.fun = dualad_attr("grad")(f, mode="reverse")
        elif tool == OFF:
            self.fun = _grad_with_check_finite(f, False)
        elif tool == ON:
            self.fun = _grad_with_check_finite(f, True)
        else:
            find = dualad_attr("diagnostics.find_nonfinite")
            x, rest = self.args[0], self.args[1:]
            find(f, x, rest)  # finite: returns normally

            def run(*args):
                return find(f, args[0], args[1:])
            self.fun = run
            return
        checked_call(self.fun, self.args, expected, f"{tool} of {problem}")

    def time_gradient(self, problem, tool):
        self.fun(*self.args)


class CheckGrad:
    """``dualad.check_grad`` (4th-order differences + one gradient) beside SciPy's
    ``check_grad`` (2-point differences), on `problems.rosen` at n = 10 and 100."""

    params = ((10, 100), ("scipy check_grad", "dualad check_grad"))
    param_names = ("n", "tool")

    def setup(self, n, tool):
        self.x = P.rosen_point(n)
        if tool == "scipy check_grad":
            self.fun = lambda x: scipy_check_grad(P.rosen, rosen_der, x)
        else:
            check = dualad_attr("diagnostics.check_grad")
            if not check(P.rosen, self.x).passed:
                raise AssertionError("dualad.check_grad fails on rosen")
            self.fun = lambda x: check(P.rosen, x)

    def time_check(self, n, tool):
        self.fun(self.x)


class Trace:
    """``dualad.trace`` (observed recording, adjoints of every node) beside the plain
    reverse-mode gradient of the same function."""

    params = ((ROSEN_10K, LOOP), (GRAD, "trace"))
    param_names = ("problem", "tool")

    def setup(self, problem, tool):
        f, self.args, expected = _problem(problem)
        if tool == GRAD:
            self.fun = dualad_attr("grad")(f, mode="reverse")
            checked_call(self.fun, self.args, expected, f"grad of {problem}")
        else:
            trace = dualad_attr("diagnostics.trace")
            checked_call(lambda *a: trace(f, *a).grad, self.args, expected,
                         f"trace of {problem}")
            self.fun = lambda *a: trace(f, *a)

    def time_run(self, problem, tool):
        self.fun(*self.args)
