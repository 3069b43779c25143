"""Hessian-vector products by replaying recordings with linear array nodes.

``hvp_replay`` (dualad/_tape.pyx) replays, besides elementwise rules, slices and sums of
all elements, the linear nodes whose partials do not depend on a traced value: a 2-D
matmul with one traced operand, a C-order reshape and a broadcasting add/subtract.
Oracles, independent of the replay:

* closed forms (least squares: ``A.T A v``; logistic loss: ``X.T diag(s (1 - s)) X v``);
* the nested forward-over-reverse sweep alone (``second._InnerGrad`` + ``forward.push``);
* 4th-order central differences of the exact (first-order reverse) gradient.

Variants the replay does not handle (a product of two traced operands, the generic
rules' nodes) must still be declined by :func:`dualad.reverse.record` and get their
products from the nested path.
"""

import numpy as np
import pytest
from conftest import ATOL_FD, RTOL_FD
from numpy.testing import assert_allclose

import dualad
from dualad import forward, reverse, second

#: replay against the nested sweep or a closed form: rounding only
RTOL = 1e-12
ATOL = 1e-12


def _replay(f, x, v):
    """(gradient, H v) by one recording and its replay; asserts it is replayable."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    value, rec = reverse.record(f, x)
    assert rec is not None, "the recording should be replayable"
    r = rec.grad_hvp(np.ascontiguousarray(v, dtype=np.float64))
    assert r is not None, "the replay should not decline (finite numbers)"
    return r


def _nested(f, x, v):
    """(gradient, H v) by the nested forward-over-reverse sweep alone."""
    inner = second._InnerGrad(f, "reverse", "hvp")
    g, hv = forward.push(inner, x, np.reshape(v, (1,) + x.shape).copy(), ())
    return g, hv[0]


def _fd_hvp(f, x, v, h=1e-4):
    """H v by 4th-order central differences of the exact (first-order) gradient."""
    g = dualad.grad(f, mode="reverse")
    return (-g(x + 2 * h * v) + 8 * g(x + h * v) - 8 * g(x - h * v)
            + g(x - 2 * h * v)) / (12 * h)


def _check(f, x, v, closed=None, grad=None):
    """The replay against the nested sweep, central differences and a closed form."""
    g, hv = _replay(f, x, v)
    assert g.shape == x.shape and hv.shape == x.shape
    assert g.dtype == np.float64 and hv.dtype == np.float64
    gn, hvn = _nested(f, x, v)
    assert_allclose(g, gn, rtol=RTOL, atol=ATOL, err_msg="gradient vs nested")
    assert_allclose(hv, hvn, rtol=RTOL, atol=ATOL, err_msg="H v vs nested")
    assert_allclose(hv, _fd_hvp(f, x, v), rtol=RTOL_FD, atol=ATOL_FD * 100,
                    err_msg="H v vs central differences")
    if closed is not None:
        assert_allclose(hv, closed, rtol=1e-11, atol=ATOL, err_msg="H v vs closed form")
    if grad is not None:
        assert_allclose(g, grad, rtol=1e-11, atol=ATOL, err_msg="gradient vs closed form")
    # the public transform gives the same numbers
    assert_allclose(dualad.hvp(f, mode="reverse")(x, v), hv, rtol=RTOL, atol=ATOL,
                    err_msg="dualad.hvp")


# -- matmul with one traced operand ----------------------------------------------------

@pytest.mark.parametrize("n", [1, 3, 40])
def test_least_squares_matmul_column(n, rng):
    m = 2 * n
    A = rng.standard_normal((m, n))
    b = rng.standard_normal((m, 1))
    x = rng.standard_normal(n)
    v = rng.standard_normal(n)

    def f(x):
        return 0.5 * np.sum((A @ x.reshape(n, 1) - b) ** 2)

    _check(f, x, v, closed=A.T @ (A @ v), grad=A.T @ (A @ x - b[:, 0]))


@pytest.mark.parametrize("n", [2, 30])
def test_least_squares_traced_left_operand(n, rng):
    # x (1, n) @ A.T: the traced operand on the left
    m = 2 * n
    A = rng.standard_normal((m, n))
    b = rng.standard_normal((1, m))
    x = rng.standard_normal(n)
    v = rng.standard_normal(n)

    def f(x):
        return 0.5 * np.sum((x.reshape(1, n) @ A.T - b) ** 2)

    _check(f, x, v, closed=A.T @ (A @ v))


def test_matrix_input_matmul(rng):
    # a 2-D input: W (3, 4) @ C (4, 5), squared
    W = rng.standard_normal((3, 4))
    C = rng.standard_normal((4, 5))
    V = rng.standard_normal((3, 4))

    def f(W):
        return np.sum((W @ C) ** 2)

    # H V = 2 V C C^T
    _check(f, W, V, closed=2.0 * V @ C @ C.T)


@pytest.mark.parametrize("n", [2, 25])
def test_logistic_loss(n, rng):
    m = 2 * n
    X = rng.standard_normal((m, n))
    y = rng.integers(0, 2, (m, 1)).astype(np.float64)
    w = 0.5 * rng.standard_normal(n)
    v = rng.standard_normal(n)

    def f(w):
        z = X @ w.reshape(n, 1)
        return np.sum(np.log1p(np.exp(z)) - y * z)

    s = 1.0 / (1.0 + np.exp(-(X @ w)))
    _check(f, w, v, closed=X.T @ (s * (1.0 - s) * (X @ v)), grad=X.T @ (s - y[:, 0]))


def test_tanh_layer_with_bias(rng):
    # W.reshape(3, 4) @ c + bias: reshape, matmul, broadcasting add, one input
    c = rng.standard_normal((4, 2))
    x = rng.standard_normal(14)
    v = rng.standard_normal(14)

    def f(x):
        W = x[:12].reshape(3, 4)
        bias = x[12:]
        return np.sum(np.tanh(W @ c + bias) ** 2)

    _check(f, x, v)


def test_mean_of_matmul_and_reshape_chain(rng):
    A = rng.standard_normal((6, 4))
    x = rng.standard_normal(8)
    v = rng.standard_normal(8)

    def f(x):
        Z = A @ x.reshape(4, 2)           # (6, 2)
        return np.mean(np.sin(Z.reshape(3, 4) - x[:4]) ** 2)

    _check(f, x, v)


# -- broadcasting add / subtract -------------------------------------------------------

SHAPES = [((3, 4), (4,)), ((3, 1), (1, 4)), ((3, 4), (3, 1)), ((1,), (3, 4)),
          ((2, 3, 4), (3, 4)), ((4,), (2, 1, 4)), ((), (3,))]


@pytest.mark.parametrize("s0, s1", SHAPES)
@pytest.mark.parametrize("sub", [False, True])
@pytest.mark.parametrize("traced", ["both", "first", "second"])
def test_broadcast_add_sub(s0, s1, sub, traced, rng):
    n0, n1 = int(np.prod(s0)), int(np.prod(s1))
    c0 = rng.standard_normal(s0)
    c1 = rng.standard_normal(s1)
    x = rng.standard_normal(n0 + n1)
    v = rng.standard_normal(n0 + n1)

    def f(x):
        a = x[:n0].reshape(s0) if traced != "second" else c0
        b = x[n0:].reshape(s1) if traced != "first" else c1
        r = a - b if sub else a + b
        return np.sum(np.cos(r) * r)

    _check(f, x, v)


# -- declined: the nested path decides ------------------------------------------------

def _declined(f, x, v, closed=None):
    """The recording is not replayable, and dualad.hvp still gives the product."""
    assert reverse.record(f, x)[1] is None
    hv = dualad.hvp(f, mode="reverse")(x, v)
    assert_allclose(hv, _fd_hvp(f, x, v), rtol=RTOL_FD, atol=ATOL_FD * 100)
    if closed is not None:
        assert_allclose(hv, closed, rtol=1e-11, atol=ATOL)


def test_two_traced_matmul_operands_declined(rng):
    n = 5
    x = rng.standard_normal(n)
    v = rng.standard_normal(n)

    def outer(x):
        return np.sum((x.reshape(n, 1) @ x.reshape(1, n)) ** 2)

    # sum (x_i x_j)^2 = (x.x)^2: H = 4 (x.x) I + 8 x x^T
    _declined(outer, x, v, closed=4 * (x @ x) * v + 8 * x * (x @ v))

    def square(x):
        W = x[:4].reshape(2, 2)
        return np.sum(np.sin(W @ W))

    _declined(square, x, v)


def test_generic_array_nodes_declined(rng):
    # a sum over an axis records the generic rule's node: not replayable (yet)
    A = rng.standard_normal((6, 4))
    x = rng.standard_normal(4)
    v = rng.standard_normal(4)

    def f(x):
        return np.sum(np.sum(np.exp(A * x), axis=0) ** 2)

    _declined(f, x, v)


@pytest.mark.parametrize("n", [1, 4, 60])
def test_least_squares_matrix_vector(n, rng):
    # A @ x with a 1-d x: the matmul node with a traced vector operand
    m = 2 * n
    A = rng.standard_normal((m, n))
    b = rng.standard_normal(m)
    x = rng.standard_normal(n)
    v = rng.standard_normal(n)

    def f(x):
        return 0.5 * np.sum((A @ x - b) ** 2)

    _check(f, x, v, closed=A.T @ (A @ v), grad=A.T @ (A @ x - b))

    def g(x):  # np.matmul spelled out: the same node
        return 0.5 * np.sum((np.matmul(A, x) - b) ** 2)

    _check(g, x, v, closed=A.T @ (A @ v))


@pytest.mark.parametrize("n", [2, 30])
def test_logistic_loss_vector_on_the_left(n, rng):
    # x @ X.T: the traced vector on the left of a constant matrix
    m = 2 * n
    X = rng.standard_normal((m, n))
    y = rng.integers(0, 2, m).astype(np.float64)
    w = 0.5 * rng.standard_normal(n)
    v = rng.standard_normal(n)

    def f(w):
        z = w @ X.T
        return np.sum(np.log1p(np.exp(z)) - y * z)

    s = 1.0 / (1.0 + np.exp(-(X @ w)))
    _check(f, w, v, closed=X.T @ (s * (1.0 - s) * (X @ v)), grad=X.T @ (s - y))


def test_matrix_vector_variants_declined(rng):
    # a traced matrix times a constant vector, a traced matrix times a traced vector,
    # np.dot (the generic rules' nodes): declined, the nested path gives the product
    c = rng.standard_normal(3)
    A = rng.standard_normal((4, 3))
    x = rng.standard_normal(15)
    v = rng.standard_normal(15)

    def traced_matrix(x):
        return np.sum(np.sin(x[:12].reshape(4, 3) @ c))

    def both(x):
        return np.sum(np.sin(x[:12].reshape(4, 3) @ x[12:]))

    def dot(x):
        return np.sum(np.sin(np.dot(A, x[12:])))

    for f in (traced_matrix, both, dot):
        _declined(f, x, v)


def test_nonfinite_constant_operand_declines_replay(rng):
    # an infinite entry in the constant matrix: the replay declines (non-finite
    # gradient), the nested path decides
    n = 3
    A = rng.standard_normal((4, n))
    A[1, 2] = np.inf
    x = rng.standard_normal(n)
    v = rng.standard_normal(n)

    def f(x):
        return np.sum(np.tanh(A @ x.reshape(n, 1)))

    with np.errstate(all="ignore"):
        value, rec = reverse.record(f, x)
        assert rec is not None  # (the structure is replayable)
        assert rec.grad_hvp(v) is None
        gn, hvn = _nested(f, x, v)
        hv = dualad.hvp(f, mode="reverse")(x, v)
    assert_allclose(hv, hvn, rtol=RTOL, atol=ATOL, equal_nan=True)


def test_matrix_vector_gradient_matches_generic_rule(rng):
    # the matrix @ traced-vector node's first-order sweep against the generic
    # np.dot rule (rounding only), both sides of the product
    A = rng.standard_normal((9, 5))
    B = rng.standard_normal((5, 7))
    x = rng.standard_normal(5)

    def fast(x):
        return np.sum(np.sin(A @ x)) + np.sum(np.cos(x @ B))

    def generic(x):
        return np.sum(np.sin(np.dot(A, x))) + np.sum(np.cos(np.dot(x, B)))

    v1, g1 = dualad.value_and_grad(fast, mode="reverse")(x)
    v2, g2 = dualad.value_and_grad(generic, mode="reverse")(x)
    assert_allclose(v1, v2, rtol=1e-14, atol=0)
    assert_allclose(g1, g2, rtol=1e-13, atol=1e-14)
    closed = A.T @ np.cos(A @ x) - B @ np.sin(x @ B)
    assert_allclose(g1, closed, rtol=1e-12, atol=1e-14)
