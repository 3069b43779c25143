"""Forward-mode benchmarks: scalar derivatives, Jacobians, gradients.

Each class times one derivative with dualad beside its baselines: the plain
function (what one evaluation costs), the hand-written derivative (the floor a
tool can hope for) and 2-point finite differences (what a SciPy user gets for
free). The tool is an asv parameter, so ``asv run`` shows them side by side
and ``asv continuous`` compares each one across commits.

dualad is checked against the hand-written derivative in ``setup`` before it
is timed: a wrong answer fails the benchmark rather than producing a timing.
A missing dualad (not importable, no such function, or a mode that raises
``NotImplementedError``) skips only the dualad parameter combinations.
"""

import numpy as np
from scipy.optimize import approx_fprime, rosen, rosen_der

from . import problems as P
from ._support import check_close, checked_call, dualad_attr

PLAIN = "plain f"
HAND = "hand-written"
FD = "finite differences"
DUALAD = "dualad"
DUALAD_NUMPY_ROSEN = "dualad, numpy rosen"

# Step of SciPy's default 2-point scheme (approx_fprime's default epsilon).
_FD_STEP = np.sqrt(np.finfo(float).eps)


def _fd_scalar(fun, x):
    # 2-point forward difference for a scalar argument, with a relative step.
    h = _FD_STEP * max(1.0, abs(x))
    return (fun(x + h) - fun(x)) / h


def _fd_scalar2(fun, x):
    # 3-point central second difference; step ~ eps**(1/4) balances
    # truncation against cancellation.
    h = np.finfo(float).eps ** 0.25 * max(1.0, abs(x))
    return (fun(x + h) - 2.0 * fun(x) + fun(x - h)) / (h * h)


class ScalarDerivative:
    """First derivative of ``g(x) = sin(x) exp(x)/(1 + x^2) + x^3`` at a float.

    ``dualad.derivative(g)`` against ``g`` itself, the hand-written ``g'`` and
    a forward difference.
    """

    params = ((PLAIN, HAND, FD, DUALAD),)
    param_names = ("tool",)

    def setup(self, tool):
        self.x = P.G_X
        if tool == PLAIN:
            self.fun = P.g
        elif tool == HAND:
            self.fun = P.g_prime
        elif tool == FD:
            self.fun = lambda x: _fd_scalar(P.g, x)
        else:
            self.fun = dualad_attr("derivative")(P.g)
            checked_call(self.fun, (self.x,), P.g_prime(self.x), "dualad.derivative(g)")

    def time_derivative(self, tool):
        self.fun(self.x)


class ScalarSecondDerivative:
    """Second derivative of ``g`` at a float: ``dualad.derivative(g, order=2)``.

    Baselines are the hand-written ``g''`` and a central second difference;
    the plain ``g`` is timed in `ScalarDerivative`.
    """

    params = ((HAND, FD, DUALAD),)
    param_names = ("tool",)

    def setup(self, tool):
        self.x = P.G_X
        if tool == HAND:
            self.fun = P.g_second
        elif tool == FD:
            self.fun = lambda x: _fd_scalar2(P.g, x)
        else:
            self.fun = dualad_attr("derivative")(P.g, order=2)
            checked_call(self.fun, (self.x,), P.g_second(self.x),
                         "dualad.derivative(g, order=2)")

    def time_second_derivative(self, tool):
        self.fun(self.x)


class CurveFitJacobian:
    """Jacobian, shape (1000, 4), of the curve-fit residual at the start point.

    ``r(p) = p0 exp(-p1 t) + p2 sin(p3 t) - y`` with ``t = linspace(0, 10,
    1000)``: ``dualad.jacobian(r, mode="forward")`` needs one sweep with four
    tangents. Baselines: ``r`` itself, the hand-written Jacobian, and
    ``scipy.optimize.approx_fprime`` (five evaluations of ``r``).
    """

    params = ((PLAIN, HAND, FD, DUALAD),)
    param_names = ("tool",)

    def setup(self, tool):
        self.t, self.y = P.curve_fit_data()
        self.p = P.P0.copy()
        if tool == PLAIN:
            self.fun = P.residual
        elif tool == HAND:
            self.fun = P.residual_jacobian
        elif tool == FD:
            self.fun = lambda p, t, y: approx_fprime(p, P.residual, _FD_STEP, t, y)
        else:
            self.fun = dualad_attr("jacobian")(P.residual, mode="forward")
            checked_call(self.fun, (self.p, self.t, self.y),
                         P.residual_jacobian(self.p, self.t, self.y),
                         "dualad.jacobian(residual)")

    def time_jacobian(self, tool):
        self.fun(self.p, self.t, self.y)


class RosenbrockGradient:
    """Forward-mode gradient of ``scipy.optimize.rosen`` at n = 2 and 100.

    ``dualad.grad(rosen, mode="forward")`` differentiates SciPy's own
    ``rosen`` unchanged (``"dualad"``) and the same expression in plain NumPy,
    without SciPy's ``np.asanyarray`` input coercion (``"dualad, numpy
    rosen"``). Baselines: ``rosen``, ``rosen_der`` and ``approx_fprime``
    (n + 1 evaluations of ``rosen``).
    """

    params = ((2, 100), (PLAIN, HAND, FD, DUALAD, DUALAD_NUMPY_ROSEN))
    param_names = ("n", "tool")

    def setup(self, n, tool):
        self.x = P.rosen_point(n)
        if tool == PLAIN:
            self.fun = rosen
        elif tool == HAND:
            self.fun = rosen_der
        elif tool == FD:
            self.fun = lambda x: approx_fprime(x, rosen, _FD_STEP)
        else:
            target = rosen if tool == DUALAD else P.rosen
            self.fun = dualad_attr("grad")(target, mode="forward")
            checked_call(self.fun, (self.x,), rosen_der(self.x),
                         f'dualad.grad({tool}, mode="forward")')

    def time_gradient(self, n, tool):
        self.fun(self.x)


class JacobianSize:
    """Dense Jacobian of ``f(x) = sin(x) |x|^2 + exp(x[::-1])``, R^n -> R^n.

    The sizes straddle the chunk threshold: n = 12 fits in one forward sweep,
    n = 13 needs two, n = 100 several. Baselines: ``f``, the hand-written
    Jacobian and ``approx_fprime`` (n + 1 evaluations of ``f``).
    """

    params = ((1, 12, 13, 100), (PLAIN, HAND, FD, DUALAD))
    param_names = ("n", "tool")

    def setup(self, n, tool):
        self.x = P.vecfun_point(n)
        if tool == PLAIN:
            self.fun = P.vecfun
        elif tool == HAND:
            self.fun = P.vecfun_jacobian
        elif tool == FD:
            self.fun = lambda x: approx_fprime(x, P.vecfun, _FD_STEP)
        else:
            self.fun = dualad_attr("jacobian")(P.vecfun, mode="forward")
            checked_call(self.fun, (self.x,), P.vecfun_jacobian(self.x),
                         "dualad.jacobian(vecfun)")

    def time_jacobian(self, n, tool):
        self.fun(self.x)


class JacobianChunk:
    """Chunk-size sweep for ``dualad.jacobian(f, chunk=k)`` at n = 100.

    ``None`` is dualad's own choice; the other values force k tangents per
    forward sweep (``ceil(100 / k)`` sweeps). Compare with the
    ``JacobianSize`` baselines at n = 100.
    """

    params = ((None, 1, 4, 8, 12, 13, 16, 25, 50, 100),)
    param_names = ("chunk",)

    def setup(self, chunk):
        self.x = P.vecfun_point(100)
        self.fun = dualad_attr("jacobian")(P.vecfun, mode="forward", chunk=chunk)
        checked_call(self.fun, (self.x,), P.vecfun_jacobian(self.x),
                     f"dualad.jacobian(vecfun, chunk={chunk})")

    def time_jacobian(self, chunk):
        self.fun(self.x)


#: The problems of `Jvp` (and of ``bench_reverse.Vjp``).
PRODUCT_PROBLEMS = ("vecfun n=100", "vecfun n=10000", "residual 1000x4")


def product_problem(name):
    """One of `PRODUCT_PROBLEMS` as a dict: the function ``f(x, *args)``, the point
    ``x``, the extra ``args``, a direction ``v`` (shape of ``x``), a cotangent ``u``
    (shape of ``f(x)``), and the hand-written products ``jv(x, v, *args) = J(x) @ v``
    and ``vj(x, u, *args) = u @ J(x)``."""
    if name.startswith("vecfun"):
        n = int(name.split("=")[1])
        x = P.vecfun_point(n)
        return {"f": P.vecfun, "x": x, "args": (), "v": P.rosen_direction(n),
                "u": np.sin(np.arange(1.0, n + 1.0)),
                "jv": P.vecfun_jvp, "vj": P.vecfun_vjp}
    t, y = P.curve_fit_data()
    return {"f": P.residual, "x": P.P0.copy(), "args": (t, y),
            "v": np.array([1.0, -0.5, 0.25, 2.0]), "u": np.sin(np.arange(1.0, t.size + 1.0)),
            "jv": lambda p, v, t, y: P.residual_jacobian(p, t, y) @ v,
            "vj": lambda p, u, t, y: u @ P.residual_jacobian(p, t, y)}


class Jvp:
    """Jacobian-vector product ``dualad.jvp(f, x, v)``: ``(f(x), J(x) v)`` in one sweep.

    Two shapes: the dense ``vecfun`` (R^n -> R^n) at n = 100 and 10 000, where one
    forward sweep with one lane should cost a small multiple of ``f`` whatever n is,
    and the 1000 x 4 curve-fit residual.  Baselines: ``f``; the hand-written value
    and product (`problems.vecfun_jvp`, the residual's closed-form Jacobian times
    ``v``); and a forward difference along ``v`` (two evaluations of ``f``).
    """

    params = (PRODUCT_PROBLEMS, (PLAIN, HAND, FD, DUALAD))
    param_names = ("problem", "tool")

    def setup(self, problem, tool):
        pr = product_problem(problem)
        f, x, v, args, jv = pr["f"], pr["x"], pr["v"], pr["args"], pr["jv"]
        if tool == PLAIN:
            self.call = lambda: f(x, *args)
        elif tool == HAND:
            self.call = lambda: (f(x, *args), jv(x, v, *args))
        elif tool == FD:
            h = _FD_STEP * max(1.0, float(np.max(np.abs(x))))

            def forward_difference():
                fx = f(x, *args)
                return fx, (f(x + h * v, *args) - fx) / h
            self.call = forward_difference
        else:
            jvp = dualad_attr("jvp")
            self.call = lambda: jvp(f, x, v, *args)
            value, tangent = self.call()
            check_close(value, f(x, *args), f"dualad.jvp value of {problem}")
            check_close(tangent, jv(x, v, *args), f"dualad.jvp tangent of {problem}")

    def time_jvp(self, problem, tool):
        self.call()
