"""Training benchmarks: one epoch of mini-batch Adam on the perceptron.

``dualad.optim.fit`` runs one epoch (shuffle, per batch one reverse-mode
``value_and_grad`` and one ``Adam.step`` on the flattened parameters) beside
the same epoch written by hand in NumPy: the same permutation, forward pass and
backpropagation (`problems.mlp_loss` and the gradient of `problems.mlp_grad`,
both from one forward pass), and the Adam update on the flat vector. The ratio
*dualad / hand-written* is the overhead a user pays for not writing the
backward pass; the target is 1.5 or less.

Two sizes: the ``examples/mlp_digits.py`` network (64-32-10, batch 32, 1792
samples: 56 small steps, where dualad's per-step cost of recording and sweeping
the tape shows) and the 784-500-10 perceptron of ``bench_reverse.MLPGradient``
(batch 64, 1024 samples: 16 steps dominated by matrix products).

Before timing, ``setup`` runs one epoch of each tool from the same start and
checks that they end at the same parameters; a difference fails the benchmark.
"""

import functools

import numpy as np

from . import problems as P
from ._support import dualad_attr

HAND = "hand-written backprop"
DUALAD = "dualad fit"

DIGITS = "64-32-10, batch 32"
MNIST = "784-500-10, batch 64"
#: (layer widths, samples, batch size) of each problem.
PROBLEMS = {DIGITS: ((64, 32, 10), 1792, 32), MNIST: (P.MLP_SIZES, 1024, P.MLP_BATCH)}

LR = 1e-3
BETAS = (0.9, 0.999)
EPS = 1e-8
SEED = 0


def mlp_value_and_grad(theta, x, y, sizes):
    """Loss of `problems.mlp_loss` and its hand-written gradient, one forward pass."""
    d_in, d_hid, d_out = sizes
    cuts = np.cumsum([d_in * d_hid, d_hid, d_hid * d_out])
    w1, b1, w2, b2 = np.split(theta, cuts)
    w1, w2 = w1.reshape(d_in, d_hid), w2.reshape(d_hid, d_out)
    pre = x @ w1 + b1
    hidden = np.maximum(pre, 0.0)
    diff = hidden @ w2 + b2 - y
    value = np.mean(diff ** 2)
    d_out = 2.0 * diff / diff.size
    d_hidden = (d_out @ w2.T) * (pre > 0.0)
    grad = np.concatenate([(x.T @ d_hidden).ravel(), d_hidden.sum(axis=0),
                           (hidden.T @ d_out).ravel(), d_out.sum(axis=0)])
    return value, grad


def hand_epoch(theta, x, y, sizes, batch):
    """One epoch of mini-batch Adam (fresh moments) written out in NumPy."""
    theta = theta.copy()
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    b1, b2 = BETAS
    n = len(x)
    order = np.random.default_rng(SEED).permutation(n)
    for t, start in enumerate(range(0, n, batch), start=1):
        idx = order[start:start + batch]
        _value, g = mlp_value_and_grad(theta, x[idx], y[idx], sizes)  # as fit gets it
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        theta -= LR / (1 - b1 ** t) * m / (np.sqrt(v / (1 - b2 ** t)) + EPS)
    return theta


class MLPEpoch:
    """One training epoch (mini-batch Adam) of a ReLU perceptron's MSE loss.

    ``"dualad fit"``: ``dualad.optim.fit(mlp_loss, theta, (x, y), Adam(1e-3),
    epochs=1, batch_size=batch, seed=0)``. ``"hand-written backprop"``: the same
    epoch with the gradient and the Adam update written by hand (see the module
    docstring). Compare the two times of one problem: their ratio is the cost of
    automatic differentiation and of the generic optimizer in a training loop.
    """

    params = ((DIGITS, MNIST), (HAND, DUALAD))
    param_names = ("problem", "tool")

    def setup(self, problem, tool):
        sizes, n, self.batch = PROBLEMS[problem]
        self.sizes = sizes
        self.theta, self.x, self.y = P.mlp_data(sizes=sizes, batch=n)
        if tool == HAND:
            self.run = self._hand
        else:
            self.fit = dualad_attr("optim.fit")
            self.adam = dualad_attr("optim.Adam")
            self.loss = functools.partial(P.mlp_loss, sizes=sizes)
            self.run = self._dualad
            got = self.run()
            want = self._hand()
            np.testing.assert_allclose(
                got, want, rtol=1e-9, atol=1e-12,
                err_msg="dualad.optim.fit's epoch disagrees with the hand-written one")

    def _hand(self):
        return hand_epoch(self.theta, self.x, self.y, self.sizes, self.batch)

    def _dualad(self):
        return self.fit(self.loss, self.theta, (self.x, self.y),
                        self.adam(lr=LR, betas=BETAS, eps=EPS), epochs=1,
                        batch_size=self.batch, seed=SEED, progress=False)[0]

    def time_epoch(self, problem, tool):
        self.run()
