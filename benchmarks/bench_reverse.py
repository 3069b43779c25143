"""Reverse-mode benchmarks: gradients of scalar functions with many inputs.

Each class times one reverse-mode gradient beside its baselines, as in
``bench_forward``: the plain function (what one evaluation costs), the
hand-written gradient (the floor a tool can hope for) and, where it finishes in
reasonable time, 2-point finite differences. The ratio *dualad / plain f* is
the number reverse mode promises to keep small and independent of n.

dualad is checked against the hand-written gradient in ``setup`` before it is
timed; a wrong answer fails the benchmark. A missing dualad, function or mode
skips only the dualad combinations (see ``_support``).
"""

import numpy as np
from scipy.optimize import approx_fprime, rosen, rosen_der

from . import problems as P
from ._support import check_close, checked_call, dualad_attr
from .bench_forward import PRODUCT_PROBLEMS, product_problem

PLAIN = "plain f"
HAND = "hand-written"
FD = "finite differences"
DUALAD = "dualad reverse"
DUALAD_TREE = "dualad reverse, dict params"
DUALAD_AUTO = "dualad auto"
DUALAD_FWD = "dualad forward"
DUALAD_PULLBACK = "dualad pullback only"

# Step of SciPy's default 2-point scheme (approx_fprime's default epsilon).
_FD_STEP = np.sqrt(np.finfo(float).eps)
# Finite differences cost n + 1 evaluations: beyond this n they only measure patience.
_FD_MAX_N = 1000


def _skip_fd(n):
    if n > _FD_MAX_N:
        raise NotImplementedError(
            f"finite differences at n = {n} take n + 1 evaluations; skipped")


class RosenbrockGradientReverse:
    """Reverse-mode gradient of the plain-NumPy Rosenbrock function.

    ``dualad.grad(problems.rosen, mode="reverse")`` (the same expression as
    ``scipy.optimize.rosen``, without SciPy's input coercion) at n = 2, 100,
    10 000 and 100 000: one recorded evaluation and one backward sweep,
    whatever n. Baselines: SciPy's ``rosen`` and ``rosen_der``, and
    ``approx_fprime`` up to n = 1000.
    """

    params = ((2, 100, 10_000, 100_000), (PLAIN, HAND, FD, DUALAD))
    param_names = ("n", "tool")

    def setup(self, n, tool):
        self.x = P.rosen_point(n)
        if tool == PLAIN:
            self.fun = rosen
        elif tool == HAND:
            self.fun = rosen_der
        elif tool == FD:
            _skip_fd(n)
            self.fun = lambda x: approx_fprime(x, rosen, _FD_STEP)
        else:
            self.fun = dualad_attr("grad")(P.rosen, mode="reverse")
            checked_call(self.fun, (self.x,), rosen_der(self.x),
                         'dualad.grad(rosen, mode="reverse")')

    def time_gradient(self, n, tool):
        self.fun(self.x)

    def peakmem_gradient(self, n, tool):
        self.fun(self.x)


def _mlp_params(theta, sizes=P.MLP_SIZES):
    """The flat parameter vector as a dict ``{"W1", "b1", "W2", "b2"}`` (copies),
    laid out so that ``dualad.ravel(params)[0]`` equals ``theta``."""
    d_in, d_hid, d_out = sizes
    cuts = np.cumsum([d_in * d_hid, d_hid, d_hid * d_out])
    w1, b1, w2, b2 = (a.copy() for a in np.split(theta, cuts))
    return {"W1": w1.reshape(d_in, d_hid), "b1": b1,
            "W2": w2.reshape(d_hid, d_out), "b2": b2}


def mlp_loss_tree(params, x, y):
    """`problems.mlp_loss` with the parameters in a dict (a pytree)."""
    hidden = np.maximum(x @ params["W1"] + params["b1"], 0.0)
    out = hidden @ params["W2"] + params["b2"]
    return np.mean((out - y) ** 2)


class MLPGradient:
    """Gradient of a 784-500-10 ReLU perceptron's MSE loss, batch 64.

    397 510 parameters: reverse mode's home ground. ``"dualad reverse"``
    differentiates `problems.mlp_loss` with respect to the flat parameter
    vector; ``"dualad reverse, dict params"`` the same loss written over a dict
    of arrays (the pytree path: flatten, slice, unflatten). Baselines: the loss
    itself and hand-written backpropagation (`problems.mlp_grad`). Finite
    differences would need 397 511 evaluations and are left out.
    """

    params = ((PLAIN, HAND, DUALAD, DUALAD_TREE),)
    param_names = ("tool",)

    def setup(self, tool):
        theta, self.x, self.y = P.mlp_data()
        self.arg = theta
        if tool == PLAIN:
            self.fun = P.mlp_loss
        elif tool == HAND:
            self.fun = P.mlp_grad
        elif tool == DUALAD:
            self.fun = dualad_attr("grad")(P.mlp_loss, mode="reverse")
            checked_call(self.fun, (theta, self.x, self.y),
                         P.mlp_grad(theta, self.x, self.y),
                         'dualad.grad(mlp_loss, mode="reverse")')
        else:
            ravel = dualad_attr("ravel")
            self.arg = _mlp_params(theta)
            self.fun = dualad_attr("grad")(mlp_loss_tree, mode="reverse")

            def flat_grad(p, x, y):
                return ravel(self.fun(p, x, y))[0]

            checked_call(flat_grad, (self.arg, self.x, self.y),
                         P.mlp_grad(theta, self.x, self.y),
                         'dualad.grad(mlp_loss_tree, mode="reverse") over a dict')

    def time_gradient(self, tool):
        self.fun(self.arg, self.x, self.y)


def chain_loop(x):
    """``sum_i x_i x_{i+1}`` as a Python loop over elements (scalar-heavy code)."""
    s = 0.0
    for i in range(len(x) - 1):
        s = s + x[i] * x[i + 1]
    return s


def chain_loop_grad(x):
    """Hand-written gradient of `chain_loop`: ``x_{i-1} + x_{i+1}``."""
    g = np.zeros_like(x)
    g[:-1] += x[1:]
    g[1:] += x[:-1]
    return g


class ScalarLoopGradient:
    """Gradient of a Python loop over array elements, n = 1000.

    ``for i in range(n - 1): s = s + x[i] * x[i + 1]``: every operation is on
    one element, so reverse mode records scalar nodes and sweeps them in a C
    loop. Baselines: the same loop on a plain ndarray, the closed form and
    ``approx_fprime`` (n + 1 = 1001 runs of the loop).
    """

    params = ((1000,), (PLAIN, HAND, FD, DUALAD))
    param_names = ("n", "tool")

    def setup(self, n, tool):
        self.x = np.cos(np.arange(float(n)))
        if tool == PLAIN:
            self.fun = chain_loop
        elif tool == HAND:
            self.fun = chain_loop_grad
        elif tool == FD:
            self.fun = lambda x: approx_fprime(x, chain_loop, _FD_STEP)
        else:
            self.fun = dualad_attr("grad")(chain_loop, mode="reverse")
            checked_call(self.fun, (self.x,), chain_loop_grad(self.x),
                         'dualad.grad(chain_loop, mode="reverse")')

    def time_gradient(self, n, tool):
        self.fun(self.x)


class ValueAndGrad:
    """``dualad.value_and_grad(f)``: value and gradient from one evaluation (SciPy's
    ``jac=True``), on `problems.rosen` at n = 100 and 10 000.

    ``"dualad reverse"`` forces reverse mode; ``"dualad auto"`` is the default
    ``mode="auto"`` after its first, exploring calls.  Baselines: ``f``, the
    hand-written pair ``(rosen(x), rosen_der(x))`` and ``f`` plus ``approx_fprime``
    (n = 100 only).
    """

    params = ((100, 10_000), (PLAIN, HAND, FD, DUALAD, DUALAD_AUTO))
    param_names = ("n", "tool")

    def setup(self, n, tool):
        x = P.rosen_point(n)
        if tool == PLAIN:
            self.call = lambda: P.rosen(x)
        elif tool == HAND:
            self.call = lambda: (P.rosen(x), rosen_der(x))
        elif tool == FD:
            _skip_fd(n)
            self.call = lambda: (P.rosen(x), approx_fprime(x, P.rosen, _FD_STEP))
        else:
            mode = "reverse" if tool == DUALAD else "auto"
            vg = dualad_attr("value_and_grad")(P.rosen, mode=mode)
            for _ in range(6 if mode == "auto" else 1):  # auto: past its exploring calls
                value, g = vg(x)
                check_close(value, P.rosen(x), f'dualad.value_and_grad(mode="{mode}") value')
                check_close(g, rosen_der(x), f'dualad.value_and_grad(mode="{mode}") gradient')
            self.call = lambda: vg(x)

    def time_value_and_grad(self, n, tool):
        self.call()


class Vjp:
    """Vector-Jacobian product ``dualad.vjp(f, x)``: record ``f`` once, pull back ``u``.

    The problems of ``bench_forward.Jvp``: the dense ``vecfun`` (R^n -> R^n) at n = 100
    and 10 000 and the 1000 x 4 curve-fit residual.  ``"dualad reverse"`` is one call of
    ``vjp`` and one of the pullback (record, sweep); ``"dualad pullback only"`` one more
    sweep over a recording kept from ``setup``.  Baselines: ``f``; the hand-written
    value and product (`problems.vecfun_vjp`, ``u`` times the residual's closed-form
    Jacobian); and ``u`` times the ``approx_fprime`` Jacobian (n + 1 evaluations, n <=
    1000).
    """

    params = (PRODUCT_PROBLEMS, (PLAIN, HAND, FD, DUALAD, DUALAD_PULLBACK))
    param_names = ("problem", "tool")

    def setup(self, problem, tool):
        pr = product_problem(problem)
        f, x, u, args, vj = pr["f"], pr["x"], pr["u"], pr["args"], pr["vj"]
        if tool == PLAIN:
            self.call = lambda: f(x, *args)
        elif tool == HAND:
            self.call = lambda: (f(x, *args), vj(x, u, *args))
        elif tool == FD:
            _skip_fd(x.size)
            self.call = lambda: (f(x, *args), u @ approx_fprime(x, f, _FD_STEP, *args))
        else:
            vjp = dualad_attr("vjp")
            value, pullback = vjp(f, x, *args)
            check_close(value, f(x, *args), f"dualad.vjp value of {problem}")
            check_close(pullback(u), vj(x, u, *args), f"dualad.vjp pullback of {problem}")
            if tool == DUALAD:
                def call():
                    _value, pb = vjp(f, x, *args)
                    return pb(u)
                self.call = call
            else:
                self.call = lambda: pullback(u)

    def time_vjp(self, problem, tool):
        self.call()


def _wide_problem(n, m=10):
    rng = np.random.default_rng(n)
    a = rng.standard_normal((m, n)) / np.sqrt(n)

    def f(x):
        return np.tanh(a @ x)

    def jac(x):
        return (1.0 - np.tanh(a @ x) ** 2)[:, None] * a
    return f, jac, np.cos(np.arange(float(n)))


class WideJacobian:
    """Jacobian of a wide map R^n -> R^10, ``tanh(A x)``, at n = 100 and 1000.

    Few outputs, many inputs: ``jacobian(f, mode="reverse")`` takes one sweep per
    output (10), forward mode ``ceil(n / chunk)`` sweeps; ``"dualad auto"`` is the
    default ``mode="auto"`` after its exploring calls.  Baselines: ``f``, the
    closed-form Jacobian ``(1 - tanh(A x)^2) A`` and ``approx_fprime`` (n + 1
    evaluations).
    """

    params = ((100, 1000), (PLAIN, HAND, FD, DUALAD, DUALAD_FWD, DUALAD_AUTO))
    param_names = ("n", "tool")

    def setup(self, n, tool):
        f, jac, x = _wide_problem(n)
        if tool == PLAIN:
            self.call = lambda: f(x)
        elif tool == HAND:
            self.call = lambda: jac(x)
        elif tool == FD:
            self.call = lambda: approx_fprime(x, f, _FD_STEP)
        else:
            mode = {DUALAD: "reverse", DUALAD_FWD: "forward", DUALAD_AUTO: "auto"}[tool]
            J = dualad_attr("jacobian")(f, mode=mode)
            for _ in range(6 if mode == "auto" else 1):
                checked_call(J, (x,), jac(x), f'dualad.jacobian(tanh(A x), mode="{mode}")')
            self.call = lambda: J(x)

    def time_jacobian(self, n, tool):
        self.call()
