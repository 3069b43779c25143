"""A linear model 784 -> 10 trained by mini-batch SGD with dualad.optim.fit.

The data are generated: inputs x of 784 features (the size of an MNIST image) and
targets y = x W* + b* + noise for a known W*, b*.  The loss is plain NumPy least
squares over a dict of parameters; dualad gives its gradient in one reverse sweep per
batch, and SGD with Nesterov momentum and a decaying learning rate follows it.  The
script prints the loss falling epoch by epoch and checks the recovered weights against
W* and against the exact least-squares solution (from the normal equations), which is
what SGD converges to.

Run: python examples/linear_regression.py
"""

import numpy as np

from dualad.optim import SGD, fit

N_FEATURES, N_OUTPUTS, N_SAMPLES = 784, 10, 4000
NOISE = 0.05
BATCH = 100
STEPS_PER_EPOCH = N_SAMPLES // BATCH


def make_data(seed=0):
    """Inputs, targets and the true parameters of the linear model."""
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=(N_FEATURES, N_OUTPUTS)) / np.sqrt(N_FEATURES)
    b_true = rng.normal(size=N_OUTPUTS)
    x = rng.normal(size=(N_SAMPLES, N_FEATURES))
    y = x @ w_true + b_true + NOISE * rng.normal(size=(N_SAMPLES, N_OUTPUTS))
    return x, y, w_true, b_true


def loss(params, x, y):
    """Half the squared error per sample, summed over the 10 outputs."""
    residual = x @ params["W"] + params["b"] - y
    return 0.5 * np.mean(np.sum(residual ** 2, axis=1))


def learning_rate(t):
    """Step decay: 0.02, multiplied by 0.6 after each epoch (t is the 1-based step).

    With a constant rate SGD stalls at a noise floor set by the mini-batch gradients'
    variance; decaying the rate lets it settle on the least-squares solution."""
    return 0.02 * 0.6 ** ((t - 1) // STEPS_PER_EPOCH)


def main():
    x, y, w_true, b_true = make_data()
    params = {"W": np.zeros((N_FEATURES, N_OUTPUTS)), "b": np.zeros(N_OUTPUTS)}
    initial = loss(params, x, y)

    def report(epoch, p, history):
        print(f"epoch {epoch + 1:2d}: training loss {history.loss[-1]:.6f}")

    optimizer = SGD(lr=learning_rate, momentum=0.9, nesterov=True)
    params, history = fit(loss, params, (x, y), optimizer, epochs=10, batch_size=BATCH,
                          seed=0, callback=report, progress=False)

    final = loss(params, x, y)
    # the least-squares optimum: what any convergent method approaches on these data
    design = np.hstack([x, np.ones((N_SAMPLES, 1))])
    coef = np.linalg.solve(design.T @ design, design.T @ y)  # normal equations
    w_ls, b_ls = coef[:-1], coef[-1]
    err_true = np.max(np.abs(params["W"] - w_true))
    err_ls = np.max(np.abs(params["W"] - w_ls))
    print(f"loss: {initial:.4f} at the start, {final:.6f} at the end "
          f"(the least-squares minimum: {loss({'W': w_ls, 'b': b_ls}, x, y):.6f})")
    print(f"max |W - W*| = {err_true:.4f}, max |b - b*| = "
          f"{np.max(np.abs(params['b'] - b_true)):.4f}; "
          f"max |W - W_lstsq| = {err_ls:.2e}")

    # the loss fell epoch after epoch, to the least-squares minimum
    assert all(b < a for a, b in zip(history.loss, history.loss[1:])), history.loss
    assert final < 1.05 * loss({"W": w_ls, "b": b_ls}, x, y), final
    # the weights are those of the least-squares fit, and near the true ones
    assert err_ls < 5e-3, err_ls
    assert err_true < 0.1 * NOISE, err_true
    np.testing.assert_allclose(params["b"], b_true, atol=0.1 * NOISE)


if __name__ == "__main__":
    main()
