"""Sparse Jacobians: the Bratu problem at n = 10 000.

The residual of the Bratu boundary-value problem ``-u'' = λ exp(u)`` (1-D, tridiagonal
Jacobian, three colours) and ``-Δu = λ exp(u)`` on the unit square (2-D, five-point
stencil, seven colours), both with n = 10 000 unknowns, in plain NumPy.

- ``SparseJacobian``: one Jacobian, as a ``scipy.sparse.csr_array``, four ways: the
  residual itself (what one evaluation costs: the baseline of the ratio issue 6 bounds
  by 20), ``dualad.sparse.sparse_jacobian`` (pattern detected and coloured once, in
  ``setup``; each call is one forward sweep with one lane per colour), the closed-form
  sparse Jacobian, and SciPy's 2-point finite differences with the same column groups
  (what ``least_squares(jac="2-point", jac_sparsity=S)`` does: ncolors + 1
  evaluations).
- ``SparsityDetection``: the one-time cost: tracing the residual
  (``detect_sparsity``), colouring its pattern (``color_columns``), and the whole
  construction of a ``SparseJacobian``.
- ``SparseLeastSquares``: ``scipy.optimize.least_squares`` on the 2-D problem, end to
  end (trust-region reflective with LSMR subproblems), with the dualad Jacobian, the
  closed-form one, and 2-point finite differences with ``jac_sparsity``.  (The 1-D
  problem is left out: its Jacobian's condition number, about 4e7 at n = 10 000, stalls
  least_squares' LSMR subproblem solver whatever supplies the Jacobian.)

dualad's Jacobian is checked against the closed form in ``setup`` before it is timed.
Large dual arrays are allocated and freed on every sweep; with glibc's default
thresholds that memory is returned to the system and faulted in again each time, which
shows in the sparse Jacobian's ratio (see the notes in docs/user/sparse.rst).
"""

import numpy as np
import scipy.sparse as sp
from scipy.optimize import least_squares

from ._support import dualad_attr, recorded

PLAIN = "residual"
DUALAD = "dualad sparse"
HAND = "hand-written"
FD = "finite differences"

N = 10_000
BRATU_1D_LAMBDA = 1.0
BRATU_2D_LAMBDA = 5.0
GRID = 100  # the 2-D problem's grid: GRID x GRID = N unknowns
# LSMR's tolerances for least_squares' subproblems (the default 1e-6 makes the steps
# too inexact for this conditioning)
LSMR = {"atol": 1e-10, "btol": 1e-10}


def bratu_1d(u, lam):
    """Residual of -u'' = λ exp(u), u(0) = u(1) = 0, central differences."""
    h = 1.0 / (u.size + 1)
    U = np.concatenate([[0.0], u, [0.0]])
    return (U[:-2] - 2.0 * U[1:-1] + U[2:]) / h ** 2 + lam * np.exp(U[1:-1])


def bratu_1d_jacobian(u, lam):
    h = 1.0 / (u.size + 1)
    off = np.full(u.size - 1, 1.0 / h ** 2)
    return sp.diags_array([off, -2.0 / h ** 2 + lam * np.exp(u), off], offsets=[-1, 0, 1],
                          format="csr")


def bratu_2d(x, n_grid, lam):
    """Residual of -Δu = λ exp(u) on the unit square, five-point stencil, flattened."""
    h = 1.0 / (n_grid + 1)
    u = x.reshape(n_grid, n_grid)
    zero_row, zero_col = np.zeros((1, n_grid)), np.zeros((n_grid + 2, 1))
    padded = np.concatenate([zero_col, np.concatenate([zero_row, u, zero_row]), zero_col],
                            axis=1)
    laplacian = (padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2]
                 + padded[1:-1, 2:] - 4.0 * u) / h ** 2
    return (laplacian + lam * np.exp(u)).ravel()


def bratu_2d_jacobian(x, n_grid, lam):
    h = 1.0 / (n_grid + 1)
    T = sp.diags_array([np.ones(n_grid - 1), -2.0 * np.ones(n_grid), np.ones(n_grid - 1)],
                       offsets=[-1, 0, 1])
    eye = sp.eye_array(n_grid)
    return ((sp.kron(eye, T) + sp.kron(T, eye)) / h ** 2
            + sp.diags_array(lam * np.exp(x))).tocsr()


PROBLEMS = {
    "1-D": (bratu_1d, bratu_1d_jacobian, (BRATU_1D_LAMBDA,)),
    "2-D": (bratu_2d, bratu_2d_jacobian, (GRID, BRATU_2D_LAMBDA)),
}


def _point():
    # a smooth interior point, away from the solution (the Jacobian does not care)
    t = np.linspace(0.0, 1.0, N)
    return 0.3 * np.sin(np.pi * t) + 0.05 * np.cos(7.0 * t)


def _fd_jacobian(fun, args, pattern):
    """SciPy's grouped 2-point differences (the code path of least_squares with
    jac="2-point" and jac_sparsity): one evaluation per group, plus f(x)."""
    from scipy.optimize._numdiff import approx_derivative, group_columns
    groups = group_columns(pattern)

    def jac(x):
        return approx_derivative(fun, x, method="2-point", sparsity=(pattern, groups),
                                 args=args)
    return jac


class SparseJacobian:
    """One n = 10 000 Jacobian of the Bratu residual, 1-D (3 colours) and 2-D (7).

    ``dualad sparse / residual`` is the ratio issue 6 bounds by 20.
    """

    params = (tuple(PROBLEMS), (PLAIN, DUALAD, HAND, FD))
    param_names = ("problem", "tool")

    def setup(self, problem, tool):
        fun, exact, args = PROBLEMS[problem]
        x = _point()
        if tool == PLAIN:
            self.call = lambda: fun(x, *args)
        elif tool == HAND:
            self.call = lambda: exact(x, *args)
        elif tool == FD:
            jac = _fd_jacobian(fun, args, exact(x, *args) != 0)
            self.call = lambda: jac(x)
        else:
            J = dualad_attr("sparse.sparse_jacobian")(fun, x, args)
            got, ref = J(x, *args), exact(x, *args)
            if got.nnz != ref.nnz or not np.allclose(got.toarray()[ref.nonzero()],
                                                     ref.data, rtol=1e-12, atol=0):
                raise AssertionError("dualad's sparse Jacobian disagrees with the "
                                     "closed form")
            self.call = lambda: J(x, *args)

    def time_jacobian(self, problem, tool):
        self.call()


class SparsityDetection:
    """The one-time cost of the pattern: tracing, colouring, and both together with
    the seeds (``sparse_jacobian``), for the two n = 10 000 residuals."""

    params = (tuple(PROBLEMS),)
    param_names = ("problem",)

    def setup(self, problem):
        self.fun, _, self.args = PROBLEMS[problem]
        self.x = _point()
        self.detect = dualad_attr("sparse.detect_sparsity")
        self.color = dualad_attr("sparse.color_columns")
        self.build = dualad_attr("sparse.sparse_jacobian")
        self.pattern = self.detect(self.fun, self.x, self.args)

    def time_detect(self, problem):
        self.detect(self.fun, self.x, self.args)

    def time_color(self, problem):
        self.color(self.pattern)

    def time_sparse_jacobian(self, problem):
        self.build(self.fun, self.x, self.args)

    def track_colors(self, problem):
        return int(self.color(self.pattern).max()) + 1

    track_colors.unit = "colours"


class SparseLeastSquares:
    """``least_squares`` on the 2-D Bratu problem, n = 10 000, from u = 0.

    dualad: ``jac=sparse_jacobian(...)`` and ``jac_sparsity`` (the pattern detection is
    part of the run); hand-written: the closed-form sparse Jacobian; finite
    differences: ``jac="2-point"`` with ``jac_sparsity``.  All with the same LSMR
    tolerances.  About nine iterations each; most of the time is LSMR.  ``"residual"``
    (the plain f) times the residual alone at every point where the hand-written run
    evaluated it (recorded in ``setup``); its ``track_residual`` is that run's.
    """

    params = ((PLAIN, DUALAD, HAND, FD),)
    param_names = ("tool",)
    timeout = 600
    number = 1
    repeat = (1, 5, 60.0)

    def setup(self, tool):
        x0 = np.zeros(N)
        args = (GRID, BRATU_2D_LAMBDA)
        pattern = bratu_2d_jacobian(x0, *args) != 0
        if tool == DUALAD:
            sparse_jacobian = dualad_attr("sparse.sparse_jacobian")

            def run():
                J = sparse_jacobian(bratu_2d, x0, args)
                return least_squares(bratu_2d, x0, jac=J, jac_sparsity=J.sparsity,
                                     args=args, tr_options=LSMR)
        elif tool in (HAND, PLAIN):
            points = []
            fun = recorded(bratu_2d, points) if tool == PLAIN else bratu_2d

            def run():
                return least_squares(fun, x0, jac=bratu_2d_jacobian, args=args,
                                     tr_options=LSMR)
        else:
            def run():
                return least_squares(bratu_2d, x0, jac="2-point", jac_sparsity=pattern,
                                     args=args, tr_options=LSMR)
        self.run = run
        res = run()
        if not res.success or np.abs(res.fun).max() > 1e-6:
            raise AssertionError(f"{tool}: least_squares did not solve the problem "
                                 f"({res.message}, max |F| = {np.abs(res.fun).max():.1e})")
        self.residual = float(np.abs(res.fun).max())
        if tool == PLAIN:
            def replay():
                for point in points:
                    bratu_2d(*point)
            self.run = replay

    def time_solve(self, tool):
        self.run()

    def track_residual(self, tool):
        return self.residual

    track_residual.unit = "max |F|"
