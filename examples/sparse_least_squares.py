"""Sparse Jacobians for a large boundary-value problem: the Bratu problem, n = 10 000.

The Bratu (solid-fuel ignition) problem is -Δu = λ exp(u) on the unit square with
u = 0 on the boundary.  The five-point Laplacian on an N x N grid of interior points
gives n = N² equations in n unknowns whose Jacobian has at most five nonzeros per row.

dualad finds that pattern by tracing ``residual`` once, colours the columns so that
columns sharing no row share a colour, and computes each Jacobian with one directional
derivative per colour: a handful of lanes in a single forward sweep, instead of n.
``scipy.optimize.least_squares`` gets it as ``jac=`` (with ``jac_sparsity=``) and solves
its trust-region subproblems with LSMR.

The script

1. at n = 256 (N = 16), solves with the dense Jacobian (``dualad.jacobian``), the
   sparse one (``dualad.sparse.sparse_jacobian``) and the matrix-free one
   (``dualad.sparse.linear_operator``), and checks that they agree;
2. at n = 10 000 (N = 100), solves with the sparse Jacobian only.  The dense Jacobian
   would be a 10 000 x 10 000 float64 matrix (800 MB), take ceil(n / 12) = 834 forward
   sweeps per evaluation, and each dense trust-region step an O(n³) factorisation;
3. checks every Jacobian against the closed-form one, and every solution's residual.

(Why two dimensions: the one-dimensional Bratu problem at n = 10 000 has a Jacobian
with condition number about 4e7, on which least_squares' LSMR subproblem solver stalls;
its sparse Jacobian is computed just as well, see benchmarks/bench_sparse.py.)

Run: python examples/sparse_least_squares.py
"""

import time

import numpy as np
import scipy.sparse as sp
from scipy.optimize import least_squares

import dualad
from dualad.sparse import linear_operator, sparse_jacobian

LAMBDA = 5.0  # below the critical value 6.81, where the two solution branches meet
# LSMR's tolerances for the trust-region subproblems (SciPy's default 1e-6 makes the
# steps too inexact for this conditioning, and the outer iteration crawls)
LSMR = {"atol": 1e-10, "btol": 1e-10}


def residual(x, N, lam):
    """F(u) = Δ_h u + λ exp(u) on the N x N interior grid (zero boundary), flattened."""
    h = 1.0 / (N + 1)
    u = x.reshape(N, N)
    zero_row, zero_col = np.zeros((1, N)), np.zeros((N + 2, 1))
    padded = np.concatenate([zero_col, np.concatenate([zero_row, u, zero_row]), zero_col],
                            axis=1)
    laplacian = (padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2]
                 + padded[1:-1, 2:] - 4.0 * u) / h ** 2
    return (laplacian + lam * np.exp(u)).ravel()


def residual_jacobian(x, N, lam):
    """The closed-form Jacobian: Kronecker-sum Laplacian plus diag(λ exp(u))."""
    h = 1.0 / (N + 1)
    T = sp.diags_array([np.ones(N - 1), -2.0 * np.ones(N), np.ones(N - 1)],
                       offsets=[-1, 0, 1])
    eye = sp.eye_array(N)
    laplacian = (sp.kron(eye, T) + sp.kron(T, eye)) / h ** 2
    return (laplacian + sp.diags_array(lam * np.exp(x))).tocsr()


def solve(jac, N, **options):
    start = time.perf_counter()
    res = least_squares(residual, np.zeros(N * N), jac=jac, args=(N, LAMBDA), **options)
    res.wall = time.perf_counter() - start
    assert res.success, f"least_squares failed: {res.message}"
    assert np.abs(res.fun).max() < 1e-8, f"residual {np.abs(res.fun).max():.1e}"
    return res


def check_jacobian(J, N, seed):
    """The sparse Jacobian at a random point equals the closed-form one."""
    x = np.random.default_rng(seed).uniform(0.0, 1.0, N * N)
    exact = residual_jacobian(x, N, LAMBDA)
    got = J(x, N, LAMBDA)
    assert isinstance(got, sp.csr_array) and got.shape == exact.shape
    assert got.nnz == exact.nnz, "the pattern is not the five-point stencil"
    error = abs(got - exact).max() / abs(exact).max()
    assert error < 1e-14, f"the sparse Jacobian is off by {error:.1e} (relative)"


def row(label, n, res, extra=""):
    print(f"  {label:<28s} {n:>6d} {res.nfev:>5d} {res.njev:>5d} {res.wall:>8.3f} s "
          f"{np.abs(res.fun).max():>9.1e}  {extra}")


def main():
    print(f"Bratu problem -Δu = {LAMBDA} exp(u) on the unit square, five-point stencil")
    print("(time: the whole least_squares run, SciPy's linear algebra included)")
    print(f"  {'Jacobian':<28s} {'n':>6s} {'nfev':>5s} {'njev':>5s} {'time':>10s} "
          f"{'max|F|':>9s}")

    # 1. small grid: dense, sparse and matrix-free agree
    N = 16
    x0 = np.zeros(N * N)
    dense_jac = dualad.jacobian(residual, mode="forward")
    J = sparse_jacobian(residual, x0, (N, LAMBDA))
    check_jacobian(J, N, seed=1)
    x = np.random.default_rng(2).uniform(0.0, 1.0, N * N)
    np.testing.assert_allclose(J(x, N, LAMBDA).toarray(), dense_jac(x, N, LAMBDA),
                               rtol=1e-13, atol=0)
    dense = solve(dense_jac, N)
    sparse_res = solve(J, N, jac_sparsity=J.sparsity, tr_options=LSMR)
    free = solve(lambda x, N, lam: linear_operator(residual, x, N, lam), N,
                 tr_solver="lsmr", tr_options=LSMR)
    row("dense (dualad.jacobian)", N * N, dense, "exact trust-region solves")
    row("sparse (sparse_jacobian)", N * N, sparse_res,
        f"{J.ncolors} colours, {J.sparsity.nnz} nonzeros")
    row("matrix-free (linear_operator)", N * N, free, "LSMR on jvp/vjp")
    for other in (sparse_res, free):
        np.testing.assert_allclose(other.x, dense.x, rtol=1e-8, atol=1e-10)

    # 2. n = 10 000: sparse only
    N = 100
    start = time.perf_counter()
    J = sparse_jacobian(residual, np.zeros(N * N), (N, LAMBDA))
    build = time.perf_counter() - start
    check_jacobian(J, N, seed=3)
    big = solve(J, N, jac_sparsity=J.sparsity, tr_options=LSMR)
    row("sparse (sparse_jacobian)", N * N, big,
        f"{J.ncolors} colours, {J.passes} sweep(s) per Jacobian")
    print(f"  dense at n = {N * N}: not run (an {N ** 4 * 8 / 1e6:.0f} MB matrix and "
          f"{-(-N * N // 12)} forward sweeps per Jacobian)")
    print(f"  pattern detection + colouring at n = {N * N}: {build * 1e3:.1f} ms, "
          f"{J.sparsity.nnz} nonzeros in {J.ncolors} colours (instead of {N * N} columns)")

    u = big.x.reshape(N, N)
    np.testing.assert_allclose(u, u.T, atol=1e-8)  # the problem is symmetric
    assert 0.0 < u.max() < 1.0 and np.argmax(u) in (N // 2 * N + N // 2 - 1,
                                                     (N // 2 - 1) * N + N // 2,
                                                     (N // 2 - 1) * N + N // 2 - 1,
                                                     N // 2 * N + N // 2)
    print(f"  max u = {u.max():.6f} at the centre; all checks passed")


if __name__ == "__main__":
    main()
