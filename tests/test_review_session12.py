"""Regression tests from the session-12 review of the speed changes (the forward
Hessian on HessianArray values, the reverse tape's MLP nodes and the replayed
Hessian-vector product).  Each compares with an independent reference: the other
mode, central differences or a closed form."""

import dataclasses

import numpy as np
import pytest
from numpy.testing import assert_allclose

import dualad
from dualad import reverse, second


def test_replayed_hvp_of_a_0d_input_keeps_its_shape():
    # np.ascontiguousarray made the 0-d point 1-d, and with it the gradient and H v
    f = lambda x: np.sum(x ** 3)  # noqa: E731
    x = np.array(2.0)
    hv = dualad.hvp(f, mode="reverse")(x, np.array(1.0))
    assert np.shape(hv) == ()
    assert_allclose(hv, 6.0 * 2.0)  # f'' = 6 x
    value, g, hv = second.value_grad_hvp(f, x, np.array(0.5), (), "reverse")
    assert np.shape(g) == () and np.shape(hv) == ()
    assert_allclose(value, 8.0)
    assert_allclose(g, 3.0 * 4.0)
    assert_allclose(hv, 6.0)
    _, rec = reverse.record(f, x)
    assert rec is not None
    assert_allclose(rec.hvp(np.array(2.0)), 24.0)
    assert np.shape(rec.hvp(np.array(2.0))) == ()


@dataclasses.dataclass
class _Loss:
    """A callable dataclass: eq=True leaves it without a hash."""

    c: float
    calls: int = 0

    def __call__(self, x):
        self.calls += 1
        # np.linalg.norm: a recording the replay does not take (the nested sweep)
        return self.c * np.linalg.norm(x) * np.sum(x ** 2)


def test_unhashable_callable_is_remembered_as_not_replayable():
    # the memory was a WeakKeyDictionary: an unhashable callable was recorded for the
    # replay again at every product, then evaluated by the nested sweep (fun twice)
    loss = _Loss(2.0)
    x = np.array([0.5, 1.0, 1.5])
    v = np.array([1.0, -2.0, 0.5])
    hvp = dualad.hvp(loss, mode="reverse")
    r = np.linalg.norm(x)
    # H of c r |x|^2: c (2 r I + 2 (x x^T + x x^T) / r + |x|^2 (I / r - x x^T / r^3))
    s = x @ x
    H = loss.c * (2.0 * r * np.eye(3) + 4.0 * np.outer(x, x) / r
                  + s * (np.eye(3) / r - np.outer(x, x) / r ** 3))
    assert_allclose(hvp(x, v), H @ v, rtol=1e-13)
    loss.calls = 0
    assert_allclose(hvp(x, v), H @ v, rtol=1e-13)
    assert loss.calls == 1
    assert second._no_replay(loss)
