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
from ._support import checked_call, dualad_attr

PLAIN = "plain f"
HAND = "hand-written"
FD = "finite differences"
DUALAD = "dualad reverse"
DUALAD_TREE = "dualad reverse, dict params"

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
