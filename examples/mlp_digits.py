"""A 64-32-10 ReLU network classifying 8x8 handwritten digits, trained with Adam.

The data are scikit-learn's bundled digits (1797 images, shipped with scikit-learn, no
download) when scikit-learn is installed; otherwise generated 8x8 images of ten noisy
prototypes, so the script runs anywhere.  The model is plain NumPy over a dict of
parameters, the loss is softmax cross-entropy, and ``dualad.optim.fit`` trains it on
shuffled mini-batches with early stopping on a validation split.  The script prints
the loss per epoch and the test accuracy, checks them, and saves a PNG of the loss
curves to the temporary directory when matplotlib is installed.

Run: python examples/mlp_digits.py
"""

import os
import tempfile

import numpy as np

from dualad.optim import Adam, fit
from dualad.special import log_softmax

SIZES = (64, 32, 10)


def load_data(seed=0):
    """Images as rows of 64 values in [0, 1], integer labels, and the data's name."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return generated_digits(seed) + ("generated 8x8 digits (scikit-learn absent)",)
    digits = load_digits()
    return digits.data / 16.0, digits.target, "scikit-learn's digits"


def generated_digits(seed=0, n=1800):
    """Ten random smooth 8x8 prototypes; each sample one of them, shifted in intensity
    and drowned in pixel noise (a stand-in for the real digits)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0.0, 1.0, size=(10, 4, 4))
    prototypes = np.kron(coarse, np.ones((2, 2))).reshape(10, 64)  # 8x8, blocky
    labels = rng.integers(0, 10, size=n)
    scale = rng.uniform(0.7, 1.3, size=(n, 1))
    images = scale * prototypes[labels] + 0.5 * rng.normal(size=(n, 64))
    return np.clip(images, 0.0, 1.0), labels


def init_params(rng):
    """He-initialised weights, zero biases."""
    d_in, d_hidden, d_out = SIZES
    return {"W1": rng.normal(size=(d_in, d_hidden)) * np.sqrt(2.0 / d_in),
            "b1": np.zeros(d_hidden),
            "W2": rng.normal(size=(d_hidden, d_out)) * np.sqrt(2.0 / d_hidden),
            "b2": np.zeros(d_out)}


def logits(params, x):
    hidden = np.maximum(x @ params["W1"] + params["b1"], 0.0)
    return hidden @ params["W2"] + params["b2"]


def loss(params, x, onehot):
    """Mean softmax cross-entropy."""
    return -np.mean(np.sum(onehot * log_softmax(logits(params, x), axis=1), axis=1))


def accuracy(params, x, labels):
    return float(np.mean(np.argmax(logits(params, x), axis=1) == labels))


def save_loss_curve(history, path):
    """Training and validation loss per epoch, as a PNG (matplotlib's Agg canvas, so
    no display and no global pyplot state are needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    epochs = np.arange(1, history.epochs + 1)
    ax.plot(epochs, history.loss, label="training")
    ax.plot(epochs, history.val_loss, label="validation")
    ax.axvline(history.best_epoch + 1, color="gray", linestyle=":", label="best epoch")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    x, labels, source = load_data()
    rng = np.random.default_rng(1)
    order = rng.permutation(len(x))
    n_train, n_val = int(0.6 * len(x)), int(0.2 * len(x))
    train, val, test = np.split(order, [n_train, n_train + n_val])
    onehot = np.eye(10)[labels]
    print(f"data: {source}; {len(train)} training, {len(val)} validation, "
          f"{len(test)} test images")

    params = init_params(rng)
    chance_loss = loss(params, x[train], onehot[train])

    def report(epoch, p, history):
        print(f"epoch {epoch + 1:2d}: loss {history.loss[-1]:.4f}, "
              f"validation loss {history.val_loss[-1]:.4f}")

    params, history = fit(loss, params, (x[train], onehot[train]), Adam(lr=1e-2),
                          epochs=40, batch_size=32, seed=0,
                          validation_data=(x[val], onehot[val]), patience=5,
                          callback=report, progress=False)
    test_acc = accuracy(params, x[test], labels[test])
    print(f"stopped after {history.epochs} epochs ({history.stop_reason or 'all run'}); "
          f"best validation loss {history.best_loss:.4f} at epoch "
          f"{history.best_epoch + 1}")
    print(f"test accuracy: {test_acc:.3f}")

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is not installed: no loss-curve PNG")
    else:
        path = os.path.join(tempfile.gettempdir(), "dualad_mlp_digits_loss.png")
        save_loss_curve(history, path)
        print(f"loss curve saved to {path}")

    assert history.loss[-1] < 0.2 * history.loss[0] < chance_loss, history.loss
    assert history.best_loss == min(history.val_loss)
    # early stopping restored the best epoch's parameters
    np.testing.assert_allclose(loss(params, x[val], onehot[val]), history.best_loss,
                               rtol=1e-12)
    assert test_acc > 0.9, test_acc


if __name__ == "__main__":
    main()
