"""Sparse and matrix-free Jacobians (dualad.sparse).

* Sparsity detection: on random programs (hypothesis) built from sparse and banded linear
  maps, elementwise nonlinearities, slicing, fancy indexing, concatenation, sums,
  cumulative sums, item assignment and ``np.where``, the detected pattern equals an
  independent oracle (dense boolean dependency matrices propagated step by step beside
  the program), and every nonzero of the dense Jacobian lies inside it.
* The sparse Jacobian equals the dense one (``dualad.jacobian``), and on the Bratu
  problem the closed-form tridiagonal Jacobian; the number of evaluations of ``fun`` is
  counted and equals the number of colours with ``chunk=1`` (one evaluation for all
  colours by default, up to 12).
* The colouring is valid (no two columns of one colour share a row) on random patterns,
  and optimal on banded ones.
* ``linear_operator``: ``matvec``/``rmatvec``/``matmat``/``rmatmat`` equal ``J @ v`` and
  ``J.T @ u``; one recording serves every ``rmatvec``; it drives ``lsmr`` and
  ``least_squares(tr_solver="lsmr")``.
* Every error of the detector and of the constructors has a clear message.
"""

import doctest
import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import least_squares
from scipy.sparse.linalg import LinearOperator, lsmr

import dualad
from dualad import sparse
from dualad.forward import chunk_size
from dualad.sparse import (SparseJacobian, SparseJacobianTransform, color_columns,
                           detect_sparsity, linear_operator, sparse_jacobian)
from conftest import fd_jacobian

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


def dense_jacobian(fun, x, *args):
    """dualad's dense forward Jacobian as an (m, n) matrix."""
    jac = dualad.jacobian(fun, mode="forward")(x, *args)
    return np.asarray(jac).reshape(-1, np.size(x))


def assert_valid_coloring(S, colors):
    """No two columns of one colour share a row (checked row by row)."""
    S = sp.csr_array(S)
    for i in range(S.shape[0]):
        cols = S.indices[S.indptr[i]:S.indptr[i + 1]]
        assert len(set(colors[cols].tolist())) == len(cols), \
            f"row {i}: columns {cols.tolist()} share a colour ({colors[cols].tolist()})"


class Counted:
    """fun with a call counter (how many evaluations a Jacobian took)."""

    def __init__(self, fun):
        self.fun = fun
        self.calls = 0
        self.__name__ = getattr(fun, "__name__", "fun")

    def __call__(self, x, *args):
        self.calls += 1
        return self.fun(x, *args)


# ---------------------------------------------------------------------------------------
# random programs with an independent pattern oracle

def _nonzero_values(draw, shape):
    mags = draw(st.lists(st.floats(0.5, 2.0), min_size=math.prod(shape),
                         max_size=math.prod(shape)))
    signs = draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=math.prod(shape),
                          max_size=math.prod(shape)))
    return (np.array(mags) * np.array(signs)).reshape(shape)


def _mask(draw, shape):
    bits = draw(st.lists(st.booleans(), min_size=math.prod(shape),
                         max_size=math.prod(shape)))
    return np.array(bits, dtype=bool).reshape(shape)


def _reach(mask, D):
    """Boolean product: row i of the result is the union of D's rows where mask[i]."""
    return (mask.astype(np.int64) @ D.astype(np.int64)) > 0


STEP_KINDS = ("sparse_linear", "banded", "elementwise", "product", "slice", "fancy",
              "concat", "sum", "cumsum", "setitem", "where", "transpose", "diff")
ELEMENTWISE = (np.sin, np.tanh, np.cos, np.square, np.arctan)


@st.composite
def programs(draw):
    """``(n, steps)``: each step maps (value, pattern) to (value, pattern); the value
    side is plain NumPy run on whatever ``fun`` receives, the pattern side is the oracle
    on dense boolean arrays."""
    n = draw(st.integers(1, 10))
    steps = []
    length = n
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(STEP_KINDS))
        L = length
        if kind == "sparse_linear":
            m = draw(st.integers(1, 8))
            mask = _mask(draw, (m, L))
            A = np.where(mask, _nonzero_values(draw, (m, L)), 0.0)
            steps.append((kind, lambda v, h, A=A: A @ v,
                          lambda D, h, mask=mask: _reach(mask, D)))
            length = m
        elif kind == "banded":
            b = draw(st.integers(0, 2))
            i, j = np.indices((L, L))
            mask = np.abs(i - j) <= b
            A = np.where(mask, _nonzero_values(draw, (L, L)), 0.0)
            steps.append((kind, lambda v, h, A=A: np.dot(A, v),
                          lambda D, h, mask=mask: _reach(mask, D)))
        elif kind == "elementwise":
            f = draw(st.sampled_from(ELEMENTWISE))
            steps.append((kind, lambda v, h, f=f: f(v), lambda D, h: D))
        elif kind == "product":  # v * reversed(v): each element meets its mirror
            steps.append((kind, lambda v, h: v * v[::-1], lambda D, h: D | D[::-1]))
        elif kind == "slice":
            start = draw(st.integers(0, L - 1))
            step = draw(st.sampled_from([1, 2, -1]))
            if step > 0:
                key = slice(start, None, step)
            else:
                key = slice(start, None, -1)
            steps.append((kind, lambda v, h, key=key: v[key], lambda D, h, key=key: D[key]))
            length = len(range(L)[key])
        elif kind == "fancy":
            idx = np.array(draw(st.lists(st.integers(0, L - 1), min_size=1, max_size=8)))
            steps.append((kind, lambda v, h, idx=idx: v[idx], lambda D, h, idx=idx: D[idx]))
            length = len(idx)
        elif kind == "concat":  # with the input x itself and a constant
            steps.append((kind, lambda v, h: np.concatenate([v, [2.0], h[0] ** 3]),
                          lambda D, h: np.concatenate([D, np.zeros((1, n), bool), h[0]])))
            length = L + 1 + n
        elif kind == "sum":
            a = draw(st.integers(0, L - 1))
            b = draw(st.integers(a + 1, L))
            steps.append((kind,
                          lambda v, h, a=a, b=b: np.concatenate([v, [np.sum(v[a:b])]]),
                          lambda D, h, a=a, b=b: np.concatenate(
                              [D, D[a:b].any(axis=0, keepdims=True)])))
            length = L + 1
        elif kind == "cumsum":
            steps.append((kind, lambda v, h: np.cumsum(v),
                          lambda D, h: np.logical_or.accumulate(D, axis=0)))
        elif kind == "setitem":
            idx = np.array(draw(st.lists(st.integers(0, L - 1), min_size=1, max_size=4,
                                         unique=True)))
            src = np.array(draw(st.lists(st.integers(0, L - 1), min_size=len(idx),
                                         max_size=len(idx))))

            def assign(v, h, idx=idx, src=src):
                w = np.zeros_like(v)
                w[...] = v
                w[idx] = np.exp(v[src])
                return w

            def assign_pattern(D, h, idx=idx, src=src):
                E = D.copy()
                E[idx] = D[src]
                return E
            steps.append((kind, assign, assign_pattern))
        elif kind == "where":
            steps.append((kind, lambda v, h: np.where(v > 0, v ** 2, np.flip(v)),
                          lambda D, h: D | D[::-1]))
        elif kind == "transpose":
            rows = next((r for r in (2, 3) if L % r == 0), 1)
            steps.append((kind,
                          lambda v, h, r=rows: v.reshape(r, -1).T.ravel(),
                          lambda D, h, r=rows: D.reshape(r, -1, n).transpose(1, 0, 2)
                          .reshape(-1, n)))
        elif kind == "diff":
            if L < 2:
                continue
            steps.append((kind, lambda v, h: np.diff(v),
                          lambda D, h: D[1:] | D[:-1]))
            length = L - 1
    return n, steps


def _run(steps, x):
    history = [x]
    v = x
    for _, f, _ in steps:
        v = f(v, history)
    return v


def _oracle(steps, n):
    D = np.eye(n, dtype=bool)
    history = [D]
    for _, _, g in steps:
        D = g(D, history)
    return D


@SETTINGS
@given(programs(), st.integers(0, 2**32 - 1))
def test_detected_pattern_and_values_on_random_programs(program, seed):
    n, steps = program
    x = np.random.default_rng(seed).uniform(-1.0, 1.0, n)
    fun = lambda v: _run(steps, v)  # noqa: E731
    kinds = [s[0] for s in steps]
    S = detect_sparsity(fun, x)
    oracle = _oracle(steps, n)
    assert S.dtype == bool and S.shape == oracle.shape, kinds
    assert_array_equal(S.toarray(), oracle, err_msg=f"pattern of {kinds}")
    dense = dense_jacobian(fun, x)
    assert not np.any((dense != 0) & ~oracle), f"nonzero outside the pattern: {kinds}"
    counted = Counted(fun)
    J = sparse_jacobian(counted, x, chunk=1)
    counted.calls = 0
    jac = J(x)
    assert isinstance(jac, sp.csr_array) and jac.dtype == np.float64
    assert jac.shape == dense.shape
    assert_allclose(jac.toarray(), dense, rtol=1e-13, atol=1e-13, err_msg=str(kinds))
    # one evaluation per colour with chunk=1; the colouring is valid
    assert counted.calls == J.passes == J.ncolors, kinds
    assert_valid_coloring(S, J.colors)
    assert J.ncolors <= max(n, 1)
    # the matrix-free operator: J @ v by a forward sweep, J.T @ u by a reverse sweep
    op = linear_operator(fun, x)
    rng = np.random.default_rng(seed + 1)
    v, u = rng.standard_normal(n), rng.standard_normal(dense.shape[0])
    assert_allclose(op.matvec(v), dense @ v, rtol=1e-12, atol=1e-12, err_msg=str(kinds))
    assert_allclose(op.rmatvec(u), dense.T @ u, rtol=1e-12, atol=1e-12, err_msg=str(kinds))


# ---------------------------------------------------------------------------------------
# colouring

@SETTINGS
@given(st.integers(1, 25), st.integers(1, 25), st.floats(0.0, 0.6),
       st.integers(0, 2**32 - 1))
def test_coloring_is_valid_on_random_patterns(m, n, density, seed):
    pattern = np.random.default_rng(seed).random((m, n)) < density
    colors = color_columns(pattern)
    assert colors.shape == (n,) and colors.dtype == np.int64
    assert_valid_coloring(pattern, colors)
    ncolors = colors.max() + 1
    # every colour is used, and no colouring can do with fewer than the longest row
    assert set(colors.tolist()) == set(range(ncolors))
    assert ncolors >= max(pattern.sum(axis=1).max(), 1)


@pytest.mark.parametrize("bandwidth", [0, 1, 2, 5])
def test_banded_patterns_need_2b_plus_1_colours(bandwidth):
    n = 200
    i, j = np.indices((n, n))
    pattern = sp.csr_array(np.abs(i - j) <= bandwidth)
    colors = color_columns(pattern)
    assert colors.max() + 1 == 2 * bandwidth + 1
    assert_valid_coloring(pattern, colors)


def test_dense_row_needs_one_colour_per_column():
    pattern = np.eye(30, dtype=bool)
    pattern[7] = True
    colors = color_columns(pattern)
    assert colors.max() + 1 == 30
    assert_valid_coloring(pattern, colors)


def test_coloring_keeps_largest_first_when_it_is_better():
    # an arrow pattern: the natural order is fine here, but a row-permuted "crown" is
    # where largest-first matters; whatever the order chosen, the result is valid and
    # not worse than the natural greedy colouring
    rng = np.random.default_rng(3)
    pattern = rng.random((40, 40)) < 0.08
    pattern[:, 0] = True
    colors = color_columns(pattern)
    assert_valid_coloring(pattern, colors)
    natural = sparse._greedy(*[a.tolist() for a in (sp.csc_array(pattern).indptr,
                                                    sp.csc_array(pattern).indices)],
                             range(40), 40)
    assert colors.max() <= natural.max()


# ---------------------------------------------------------------------------------------
# the Bratu problem: closed-form Jacobian, passes, scipy

def bratu(u, lam):
    h = 1.0 / (u.size + 1)
    U = np.concatenate([[0.0], u, [0.0]])
    return (U[:-2] - 2.0 * U[1:-1] + U[2:]) / h ** 2 + lam * np.exp(U[1:-1])


def bratu_jacobian(u, lam):
    h = 1.0 / (u.size + 1)
    off = np.full(u.size - 1, 1.0 / h ** 2)
    return sp.diags_array([off, -2.0 / h ** 2 + lam * np.exp(u), off], offsets=[-1, 0, 1])


def test_bratu_jacobian_equals_closed_form_in_three_colours():
    u = np.random.default_rng(1).uniform(0.0, 0.5, 500)
    counted = Counted(bratu)
    J = sparse_jacobian(counted, u, (2.0,))
    assert counted.calls == 1  # detection: one traced call
    assert J.ncolors == 3 and J.sparsity.nnz == 3 * 500 - 2
    counted.calls = 0
    jac = J(u, 2.0)
    assert counted.calls == 1 == J.passes  # three colours in one evaluation
    expected = bratu_jacobian(u, 2.0).toarray()
    assert_allclose(jac.toarray(), expected, rtol=1e-14, atol=0)
    # and at another point and parameter: the pattern is reused
    u2 = -u[::-1]
    assert_allclose(J(u2, 0.5).toarray(), bratu_jacobian(u2, 0.5).toarray(), rtol=1e-14)


@pytest.mark.parametrize("chunk", [1, 2, 3, None])
def test_passes_are_counted_evaluations(chunk):
    n = 60
    i, j = np.indices((n, n))
    A = np.where(np.abs(i - j) <= 3, 1.0 + i + j, 0.0)  # 7 colours
    counted = Counted(lambda x: np.sin(A @ x))
    J = sparse_jacobian(counted, np.zeros(n), chunk=chunk)
    assert J.ncolors == 7
    counted.calls = 0
    x = np.linspace(-1, 1, n)
    jac = J(x)
    assert J.chunk == chunk_size(7, chunk)
    assert counted.calls == J.passes == math.ceil(7 / J.chunk)
    assert_allclose(jac.toarray(), np.cos(A @ x)[:, None] * A, rtol=1e-13)


def test_many_colours_use_chunks_of_at_most_12():
    n = 30
    A = np.triu(np.ones((n, n)))  # upper triangular: the first row is dense
    counted = Counted(lambda x: A @ x ** 2)
    J = sparse_jacobian(counted, np.ones(n))
    counted.calls = 0
    x = np.arange(1.0, n + 1)
    assert_allclose(J(x).toarray(), A * 2 * x, rtol=1e-14)
    assert J.ncolors == n and J.chunk <= 12 and counted.calls == J.passes == 3


def test_sparse_jacobian_matches_central_differences():
    x = np.random.default_rng(4).uniform(0.1, 0.9, 40)
    jac = sparse_jacobian(bratu, x, (1.0,))(x, 1.0).toarray()
    assert_allclose(jac, fd_jacobian(lambda v: bratu(v, 1.0), x), rtol=1e-6, atol=1e-3)


def test_least_squares_with_sparse_jacobian_matches_analytic():
    # Broyden's tridiagonal function: a standard large sparse least-squares test
    def broyden(x):
        f = (3.0 - 2.0 * x) * x + 1.0
        f[1:] -= x[:-1]
        f[:-1] -= 2.0 * x[1:]
        return f

    def broyden_jac(x):
        n = x.size
        return sp.diags_array([-np.ones(n - 1), 3.0 - 4.0 * x, -2.0 * np.ones(n - 1)],
                              offsets=[-1, 0, 1], format="csr")
    x0 = -np.ones(2000)
    jac = SparseJacobianTransform(broyden)
    ours = least_squares(broyden, x0, jac=jac, jac_sparsity=None)
    assert jac.ncolors == 3
    ref = least_squares(broyden, x0, jac=broyden_jac)
    assert ours.success and ref.success
    assert ours.nfev == ref.nfev and ours.njev == ref.njev
    assert_allclose(ours.x, ref.x, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------
# detector coverage: NumPy functions and idioms (pattern contains the dense nonzeros,
# values equal the dense Jacobian; the expected sizes of the patterns are counted by hand
# from the functions, with x of 8 elements)

_RNG = np.random.default_rng(0)
_A = np.where(_RNG.random((6, 8)) < 0.3, _RNG.standard_normal((6, 8)), 0.0)
_B = np.where(_RNG.random((8, 3)) < 0.5, _RNG.standard_normal((8, 3)), 0.0)
_W = _RNG.standard_normal((3, 4))


def _setitem(x):
    y = np.zeros_like(x)
    y[1:] = x[:-1] * x[1:]
    y[0] = x[-1]
    y[2:4] = 7.0
    return y


def _write_through_view(x):
    y = np.zeros_like(x)
    v = y[2:]
    v[0] = x[0]  # a view: y sees it
    w = y[[1, 2]]
    w[0] = x[1]  # a copy: y does not
    return y


def _scalar_loop(x):
    r = np.zeros_like(x)
    for i in range(1, len(x) - 1):
        r[i] = x[i - 1] - 2.0 * x[i] + x[i + 1] ** 2
    return r


COVERAGE = {
    "matvec": (lambda x: _A @ x, int((_A != 0).sum())),
    "dot": (lambda x: np.dot(_A, np.sin(x)), int((_A != 0).sum())),
    "vecmat": (lambda x: x @ _B, int((_B != 0).sum())),
    "matmat": (lambda x: (x.reshape(2, 4) @ _B[:4]).ravel(), None),
    "tensordot": (lambda x: np.tensordot(x.reshape(2, 4), _W.T, axes=1).ravel(), None),
    "einsum": (lambda x: np.einsum("ij,jk->ik", x.reshape(2, 4), _W.T).ravel(), None),
    "einsum trace": (lambda x: np.einsum("ii", x[:4].reshape(2, 2)) * x[5], None),
    "outer": (lambda x: np.outer(x[:3], x[5:]).ravel(), None),
    "inner": (lambda x: np.inner(x[:4], x[4:]), None),
    "matmul traced": (lambda x: (x[:4].reshape(2, 2) @ x[4:].reshape(2, 2)).ravel(), None),
    "cumsum": (lambda x: np.cumsum(x ** 2), 36),
    "cumprod 2-d": (lambda x: np.cumprod(x.reshape(2, 4), axis=1).ravel(), 20),
    "diff 2": (lambda x: np.diff(np.exp(x), 2), 18),
    "diff prepend": (lambda x: np.diff(x, prepend=0.0, append=x[0]), 17),
    "where": (lambda x: np.where(x > 0, x ** 2, np.roll(x, 1)), 16),
    "setitem": (_setitem, None),
    "view write": (_write_through_view, 1),
    "stack": (lambda x: np.stack([x[:4], x[4:] * 2]).T.ravel(), 8),
    "hstack": (lambda x: np.hstack([x[::2], 1.0, x[1::2]]), 8),
    "vstack": (lambda x: np.vstack([x[:4], x[4:]]).sum(axis=0), 8),
    "max/prod": (lambda x: np.array([x.reshape(2, 4).max(axis=1).sum(), np.prod(x[:2])]),
                 10),
    "norm": (lambda x: np.linalg.norm(x.reshape(2, 4), axis=1), 8),
    "list of scalars": (lambda x: np.array([x[0] * x[1], np.sin(x[2]), 3.0]), 3),
    "fancy": (lambda x: x[[3, 1, 1, 7]] * x[np.array([0, 2, 4, 6])], 8),
    "constant mask": (lambda x: x[np.arange(8) % 2 == 0] ** 3, 4),
    "triu": (lambda x: np.triu(x.reshape(2, 4)).ravel() + 1, 7),
    "flip": (lambda x: np.flip(x) * x, 16),
    "tile": (lambda x: np.tile(x[:2], 3), 6),
    "repeat": (lambda x: np.repeat(x[:3], 2) * x[2:], 12),
    "clip": (lambda x: np.clip(x, -0.5, 0.5), 8),
    "floor": (lambda x: np.floor(x) + x[0], 8),
    "solve": (lambda x: np.linalg.solve(3 * np.eye(2) + 0.1 * x[:4].reshape(2, 2), x[4:6]),
              12),
    "inv": (lambda x: np.linalg.inv(3 * np.eye(2) + 0.1 * x[:4].reshape(2, 2)).ravel(), 16),
    "det": (lambda x: np.linalg.det(3 * np.eye(2) + 0.1 * x[:4].reshape(2, 2)), 4),
    "eigh": (lambda x: np.linalg.eigh(np.diag(x[:3]) + 1.0).eigenvalues, 9),
    "sort": (lambda x: np.sort(x.reshape(2, 4), axis=1).ravel(), 32),
    "mean": (lambda x: x - np.mean(x[:3]), 29),
    "ufunc.outer": (lambda x: np.multiply.outer(x[:2], x[6:]).ravel(), 8),
    "add.reduce": (lambda x: np.add.reduce(x.reshape(4, 2), axis=1), 8),
    "np.asarray": (lambda x: np.exp(np.asarray(x))[1:] - 1, 7),
    "ones_like": (lambda x: np.where(np.arange(8) % 2 == 0, x, np.ones_like(x)), 4),
    "constant where": (lambda x: np.where(np.arange(8) < 3, x, x[::-1] ** 2), 8),
    "transpose": (lambda x: x.reshape(2, 4).T.ravel() * np.arange(1.0, 9.0), 8),
    "scalar loop": (_scalar_loop, 18),
    "squeeze": (lambda x: np.squeeze(x.reshape(1, 8)[:, 2:]), 6),
    "take": (lambda x: np.take(x, [1, 5]) ** 2, 2),
    "trace": (lambda x: np.trace(x.reshape(2, 4)[:, :2]) * x, 22),
    "polyval": (lambda x: np.polyval([1.0, 2.0, 0.5], x), 8),
    "logsumexp": (lambda x: np.concatenate([[dualad.special.logsumexp(x[:3])], x[3:]]), 8),
    "atleast_2d": (lambda x: np.atleast_2d(x).T.ravel(), 8),
    "column_stack": (lambda x: np.column_stack([x[:4], x[4:]]).ravel(), 8),
    "scalar times array": (lambda x: x * np.sum(x[:2]) + x[0], 22),
    "abs/pow operators": (lambda x: abs(x[::-1]) ** 1.5 - 2 / (1 + x * x), 16),
    "comparison mask product": (lambda x: (x > 0) * x, 8),
}


@pytest.mark.parametrize("name", list(COVERAGE))
def test_detector_coverage(name):
    fun, nnz = COVERAGE[name]
    x = np.random.default_rng(2).uniform(-1.0, 1.0, 8)
    S = detect_sparsity(fun, x).toarray()
    dense = dense_jacobian(fun, x)
    assert S.shape == dense.shape
    assert not np.any((dense != 0) & ~S), f"{name}: a nonzero outside the pattern"
    if nnz is not None:
        assert S.sum() == nnz, f"{name}: pattern has {S.sum()} entries, expected {nnz}"
    jac = sparse_jacobian(fun, x)(x).toarray()
    assert_allclose(jac, dense, rtol=1e-13, atol=1e-14, err_msg=name)


def test_pattern_is_exact_through_constant_matrices():
    # the constant's zeros are used: a banded A gives a banded pattern
    S = detect_sparsity(lambda x: _A @ np.tanh(x), np.zeros(8)).toarray()
    assert_array_equal(S, _A != 0)
    S = detect_sparsity(lambda x: x @ _B, np.zeros(8)).toarray()
    assert_array_equal(S, (_B != 0).T)


def test_detection_never_evaluates_and_holds_everywhere():
    # np.where: both branches count, so the pattern does not depend on the point
    fun = lambda x: np.where(x[:3] > 0, x[3:], 0.0)  # noqa: E731
    for x in (np.ones(6), -np.ones(6)):
        assert_array_equal(detect_sparsity(fun, x).toarray(), np.eye(3, 6, k=3, dtype=bool))


def test_multidimensional_input_and_output_flatten_in_c_order():
    def fun(X):
        return X[:, 1:] * X[:, :-1]
    X = np.arange(1.0, 7.0).reshape(2, 3)
    J = sparse_jacobian(fun, X)
    jac = J(X)
    assert jac.shape == (4, 6)
    assert_allclose(jac.toarray(), dualad.jacobian(fun, mode="forward")(X).reshape(4, 6))


def test_scalar_input_and_output():
    J = sparse_jacobian(lambda x: np.array([np.sin(x), x ** 2]), 0.5)
    assert_allclose(J(0.5).toarray(), [[np.cos(0.5)], [1.0]], rtol=1e-15)
    J = sparse_jacobian(lambda x: np.sum(x ** 2), np.ones(3))
    assert_allclose(J(np.arange(3.0)).toarray(), [[0.0, 2.0, 4.0]])


def test_value_and_jac_share_the_sweep():
    counted = Counted(bratu)
    J = sparse_jacobian(counted, np.zeros(20), (1.0,))
    counted.calls = 0
    u = np.linspace(0, 0.3, 20)
    value, jac = J.value_and_jac(u, 1.0)
    assert counted.calls == 1
    assert_allclose(value, bratu(u, 1.0), rtol=1e-15)
    assert_allclose(jac.toarray(), bratu_jacobian(u, 1.0).toarray(), rtol=1e-14)


def test_returned_matrix_does_not_alias_the_pattern():
    J = sparse_jacobian(bratu, np.zeros(10), (1.0,))
    jac = J(np.zeros(10), 0.0)
    jac.data[:] = 0.0
    jac.eliminate_zeros()  # works in place on the index arrays
    assert J.sparsity.nnz == 28
    assert J(np.zeros(10), 0.0).nnz == 28


def test_user_pattern_dense_or_sparse():
    u = np.linspace(0.0, 0.2, 12)
    expected = bratu_jacobian(u, 1.0).toarray()
    band = np.abs(np.subtract.outer(np.arange(12), np.arange(12))) <= 1
    for pattern in (band, band.astype(float), sp.csr_array(band), sp.coo_matrix(band)):
        counted = Counted(bratu)
        J = sparse_jacobian(counted, u, (1.0,), sparsity=pattern)
        assert counted.calls == 0  # no detection
        assert J.ncolors == 3
        assert_allclose(J(u, 1.0).toarray(), expected, rtol=1e-14)
    # a wider pattern than needed still gives the right numbers
    wide = np.abs(np.subtract.outer(np.arange(12), np.arange(12))) <= 2
    assert_allclose(sparse_jacobian(bratu, u, (1.0,), sparsity=wide)(u, 1.0).toarray(),
                    expected, rtol=1e-14)


def test_transform_detects_once_per_shape():
    counted = Counted(lambda x, c: c * np.diff(x ** 2))
    jac = SparseJacobianTransform(counted)
    assert jac.passes == 0 and jac.sparsity is None
    for n in (5, 5, 8, 5):
        x = np.arange(1.0, n + 1)
        counted.calls = 0
        out = jac(x, 2.0)
        assert_allclose(out.toarray(), 2.0 * np.diff(np.diag(x ** 2), axis=0) * 2 / x,
                        rtol=1e-14)
        assert out.shape == (n - 1, n)
    assert len(jac._cache) == 2
    assert jac.ncolors == 2 and jac.colors.shape == (5,) and jac.sparsity.shape == (4, 5)
    value, jac_value = jac.value_and_jac(np.ones(5), 1.0)
    assert_allclose(value, np.zeros(4))
    assert jac_value.shape == (4, 5)
    assert "sparse" in repr(jac)


def test_transform_with_given_pattern():
    band = sp.eye_array(6, format="csr") + sp.eye_array(6, k=1)
    jac = SparseJacobianTransform(lambda x: x + np.concatenate([x[1:], [0.0]]),
                                  sparsity=band)
    assert_allclose(jac(np.ones(6)).toarray(), band.toarray())


# ---------------------------------------------------------------------------------------
# linear_operator

def _ratfun(x, c):
    return np.concatenate([np.sin(x[:-1] * x[1:]) * c, [np.sum(x ** 2)],
                           np.exp(x[::2])])


@pytest.mark.parametrize("n", [1, 2, 7])
def test_linear_operator_products_equal_the_dense_jacobian(n):
    rng = np.random.default_rng(n)
    x = rng.uniform(-1, 1, n)
    J = dense_jacobian(_ratfun, x, 1.5)
    op = linear_operator(_ratfun, x, 1.5)
    assert isinstance(op, LinearOperator)
    assert op.shape == J.shape and op.dtype == np.float64
    assert_allclose(op.value, _ratfun(x, 1.5))
    v, u = rng.standard_normal(n), rng.standard_normal(J.shape[0])
    assert_allclose(op.matvec(v), J @ v, rtol=1e-13, atol=1e-14)
    assert_allclose(op @ v, J @ v, rtol=1e-13, atol=1e-14)
    assert op.matvec(v.reshape(n, 1)).shape == (J.shape[0], 1)
    assert_allclose(op.rmatvec(u), J.T @ u, rtol=1e-13, atol=1e-14)
    assert_allclose(op.T @ u, J.T @ u, rtol=1e-13, atol=1e-14)
    V, U = rng.standard_normal((n, 3)), rng.standard_normal((J.shape[0], 4))
    assert_allclose(op.matmat(V), J @ V, rtol=1e-13, atol=1e-14)
    assert_allclose(op.rmatmat(U), J.T @ U, rtol=1e-13, atol=1e-14)
    assert_allclose(op.H @ U, J.T @ U, rtol=1e-13, atol=1e-14)
    # and against central differences (independent of dualad)
    assert_allclose(op.matmat(np.eye(n)), fd_jacobian(lambda y: _ratfun(y, 1.5), x),
                    rtol=1e-6, atol=1e-8)


def test_linear_operator_complex_vectors():
    x = np.array([0.3, -0.4, 1.1])
    J = dense_jacobian(_ratfun, x, 1.0)
    op = linear_operator(_ratfun, x, 1.0)
    v = np.array([1 + 2j, -1j, 0.5])
    u = np.arange(J.shape[0]) * (1 - 1j)
    assert_allclose(op.matvec(v), J @ v, rtol=1e-13)
    assert_allclose(op.rmatvec(u), J.T @ u, rtol=1e-13)


def test_linear_operator_records_once():
    counted = Counted(_ratfun)
    x = np.linspace(-1, 1, 6)
    op = linear_operator(counted, x, 2.0)
    assert counted.calls == 1  # the recording
    for _ in range(5):
        op.rmatvec(np.ones(op.shape[0]))
    assert counted.calls == 1 and op.nrmatvec == 5  # sweeps of the one recording
    op.matvec(np.ones(6))
    assert counted.calls == 2 and op.nmatvec == 1  # one forward sweep
    op.matmat(np.ones((6, 3)))
    assert counted.calls == 3 and op.nmatvec == 4  # three lanes, one sweep


def test_linear_operator_in_lsmr_and_least_squares():
    x = np.linspace(-0.9, 0.8, 7)
    op = linear_operator(_ratfun, x, 1.0)
    b = np.random.default_rng(5).standard_normal(op.shape[0])
    ref = np.linalg.lstsq(dense_jacobian(_ratfun, x, 1.0), b, rcond=None)[0]
    assert_allclose(lsmr(op, b, atol=1e-14, btol=1e-14)[0], ref, rtol=1e-8)

    def rosen_residual(x):
        return np.concatenate([10.0 * (x[1:] - x[:-1] ** 2), 1.0 - x[:-1]])
    x0 = np.full(6, -0.5)
    res = least_squares(rosen_residual, x0,
                        jac=lambda x: linear_operator(rosen_residual, x), tr_solver="lsmr")
    assert res.success
    assert_allclose(res.x, np.ones(6), atol=1e-6)


def test_linear_operator_scalar_output():
    op = linear_operator(lambda x: np.sum(x ** 3), np.array([1.0, 2.0]))
    assert op.shape == (1, 2)
    assert_allclose(op.rmatvec(np.array([1.0])), [3.0, 12.0])
    assert_allclose(op.matvec(np.array([1.0, 1.0])), [15.0])


# ---------------------------------------------------------------------------------------
# errors

def _store_in_plain_array(x):
    y = np.zeros(3)
    y[0] = x[0]
    return y


DETECTION_ERRORS = {
    "if on a value": (lambda x: x if x[0] > 0 else -x, "a branch on a traced value"),
    "float()": (lambda x: x * float(x[0]), "float()"),
    "math module": (lambda x: x * math.sin(x[1]), "math-module"),
    "plain array store": (_store_in_plain_array, "np.zeros_like"),
    "traced index": (lambda x: x[np.argmax(x)] * x, "indexing with a traced value"),
    "traced mask": (lambda x: x[x > 0], "indexing with a traced value"),
    "nonzero": (lambda x: x[np.nonzero(x)], "numpy.nonzero"),
    "one-argument where": (lambda x: np.where(x > 0)[0] * 1.0, "numpy.where"),
    "unsupported function": (lambda x: np.convolve(x, [1.0, 2.0]), "numpy.convolve"),
    "out=": (lambda x: np.exp(x, out=np.empty(3)), "out="),
    "asarray float": (lambda x: np.asarray(x, dtype=float) * 2, "float64 ndarray"),
    "bool of any": (lambda x: x * bool(np.any(x > 0)), "a branch on a traced value"),
}


@pytest.mark.parametrize("name", list(DETECTION_ERRORS))
def test_detection_errors_name_cause_and_remedy(name):
    fun, needle = DETECTION_ERRORS[name]
    with pytest.raises(TypeError) as info:
        detect_sparsity(fun, np.ones(3))
    message = str(info.value)
    assert "sparsity detection cannot follow" in message
    assert needle in message, message
    assert "sparsity=" in message, message


def test_function_without_any_rule_says_so():
    with pytest.raises(TypeError, match="cannot differentiate it in forward mode either"):
        sparse_jacobian(lambda x: np.median(x) * x, np.ones(3))


def test_custom_rule_function_needs_a_pattern():
    def jvp(primals, tangents):  # the exact derivative (the registry is global)
        (x,), (t,) = primals, tangents
        d = np.where(x == 0, 0.0, (np.cos(np.pi * x) * np.pi * x - np.sin(np.pi * x))
                     / (np.pi * np.where(x == 0, 1.0, x) ** 2))
        return np.sinc(x), d * t
    dualad.defrule(np.sinc, jvp)
    with pytest.raises(TypeError, match="custom rule"):
        detect_sparsity(lambda x: np.sinc(x), np.ones(3))
    J = sparse_jacobian(lambda x: np.sinc(x), np.ones(3), sparsity=np.eye(3))
    assert J(np.ones(3)).shape == (3, 3)


def test_constructor_errors():
    with pytest.raises(TypeError, match="expects a callable"):
        sparse_jacobian(3.0, np.ones(2))
    with pytest.raises(TypeError, match="expects a callable"):
        linear_operator("f", np.ones(2))
    with pytest.raises(ValueError, match="'auto' or a pattern"):
        sparse_jacobian(np.sin, np.ones(2), sparsity="dense")
    with pytest.raises(ValueError, match="'auto' or a pattern"):
        SparseJacobianTransform(np.sin, sparsity="yes")
    with pytest.raises(ValueError, match="2-D"):
        sparse_jacobian(np.sin, np.ones(2), sparsity=np.ones(2, dtype=bool))
    with pytest.raises(TypeError, match="sparsity must be"):
        sparse_jacobian(np.sin, np.ones(2), sparsity=[["a", "b"]])
    with pytest.raises(ValueError, match="has 3 columns but x has 2"):
        sparse_jacobian(np.sin, np.ones(2), sparsity=np.ones((2, 3)))
    with pytest.raises(ValueError, match="chunk"):
        sparse_jacobian(np.sin, np.ones(2), chunk=0)
    with pytest.raises(TypeError, match="returned None"):
        sparse_jacobian(lambda x: None, np.ones(2))
    with pytest.raises(TypeError, match="complex"):
        sparse_jacobian(np.sin, np.ones(2) * 1j)


def test_call_errors():
    J = sparse_jacobian(np.sin, np.ones(4))
    with pytest.raises(ValueError, match=r"x has shape \(5,\) but the sparsity pattern"):
        J(np.ones(5))
    J = sparse_jacobian(lambda x: x[:2] * 1.0, np.ones(4), sparsity=np.ones((3, 4)))
    with pytest.raises(ValueError, match="returned 2 values but the sparsity pattern has"):
        J(np.ones(4))


def test_nesting_is_refused_with_a_clear_error():
    def outer(y):
        return np.sum(sparse_jacobian(np.sin, y)(y).toarray())
    with pytest.raises(TypeError, match="do not nest"):
        dualad.grad(outer, mode="forward")(np.ones(2))


# ---------------------------------------------------------------------------------------
# docstrings of the public names run

@pytest.mark.parametrize("obj", [detect_sparsity, color_columns, sparse_jacobian,
                                 SparseJacobian, SparseJacobian.value_and_jac,
                                 SparseJacobianTransform,
                                 SparseJacobianTransform.value_and_jac, linear_operator],
                         ids=lambda o: o.__qualname__)
def test_docstring_examples_run(obj):
    doc = obj.__doc__
    sections = ("Parameters", "Examples") if isinstance(obj, type) else (
        "Parameters", "Returns", "Examples")
    for section in sections:
        assert section in doc, f"{obj.__qualname__}: no {section} section"
    test = doctest.DocTestParser().get_doctest(doc, {"np": np, "dualad": dualad},
                                               obj.__qualname__, None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS
                                   | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_public_names():
    assert set(sparse.__all__) == {"detect_sparsity", "color_columns", "sparse_jacobian",
                                   "SparseJacobian", "SparseJacobianTransform",
                                   "linear_operator"}
