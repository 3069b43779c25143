"""A 784-500-10 ReLU perceptron with a mean-squared-error loss, batch 64.

The parameters are a dict of arrays ``{"W1", "b1", "W2", "b2"}`` (a pytree); reverse
mode's gradient must equal hand-written NumPy backpropagation.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import dualad

SIZES = (784, 500, 10)
BATCH = 64
RTOL = 1e-10


def loss(params, X, Y):
    """Plain NumPy: what a user writes."""
    hidden = np.maximum(X @ params["W1"] + params["b1"], 0.0)
    out = hidden @ params["W2"] + params["b2"]
    return np.mean((out - Y) ** 2)


def backprop(params, X, Y):
    """The gradient of `loss`, by hand."""
    pre = X @ params["W1"] + params["b1"]
    hidden = np.maximum(pre, 0.0)
    out = hidden @ params["W2"] + params["b2"]
    d_out = 2.0 * (out - Y) / out.size
    d_hidden = (d_out @ params["W2"].T) * (pre > 0.0)
    return {"W1": X.T @ d_hidden, "b1": d_hidden.sum(axis=0),
            "W2": hidden.T @ d_out, "b2": d_out.sum(axis=0)}


@pytest.fixture(scope="module")
def problem():
    d_in, d_hid, d_out = SIZES
    rng = np.random.default_rng(20261126)
    params = {
        "W1": rng.standard_normal((d_in, d_hid)) * np.sqrt(2.0 / d_in),
        "b1": 0.01 * rng.standard_normal(d_hid),
        "W2": rng.standard_normal((d_hid, d_out)) * np.sqrt(2.0 / d_hid),
        "b2": 0.01 * rng.standard_normal(d_out),
    }
    X = rng.standard_normal((BATCH, d_in))
    Y = rng.standard_normal((BATCH, d_out))
    # no pre-activation exactly at the ReLU kink (where conventions could differ)
    assert np.all(X @ params["W1"] + params["b1"] != 0.0)
    return params, X, Y


def _check(g, expected):
    assert list(g) == ["W1", "b1", "W2", "b2"]
    for name in expected:
        assert g[name].shape == expected[name].shape and g[name].dtype == np.float64
        assert_allclose(g[name], expected[name], rtol=RTOL, atol=1e-14,
                        err_msg=f"d loss / d {name}")


def test_mlp_grad_reverse_equals_backprop(problem):
    params, X, Y = problem
    g = dualad.grad(loss, mode="reverse")(params, X, Y)
    _check(g, backprop(params, X, Y))


def test_mlp_value_and_grad(problem):
    params, X, Y = problem
    vg = dualad.value_and_grad(loss, mode="auto")
    value, g = vg(params, X, Y)
    assert vg.last_mode == "reverse"
    assert_allclose(value, loss(params, X, Y), rtol=1e-15)
    _check(g, backprop(params, X, Y))


def test_mlp_params_untouched(problem):
    params, X, Y = problem
    copies = {k: v.copy() for k, v in params.items()}
    dualad.grad(loss, mode="reverse")(params, X, Y)
    for k in params:
        assert np.array_equal(params[k], copies[k]), k


def test_mlp_sgd_step_decreases_loss(problem):
    """The gradient is a descent direction: one small SGD step lowers the loss."""
    params, X, Y = problem
    g = dualad.grad(loss, mode="reverse")(params, X, Y)
    stepped = {k: params[k] - 1e-2 * g[k] for k in params}
    assert loss(stepped, X, Y) < loss(params, X, Y)
