"""Rules of ``numpy.linalg``: solve, inv, det, slogdet, cholesky, eigh, in both modes.

Oracles:

* ``fd_jacobian`` (4th-order central differences of NumPy's own function, rtol
  ``RTOL_FD``) at random well-conditioned matrices (singular values in [1, 3]; SPD with
  eigenvalues spread over [1, 4] for cholesky/eigh), plain and stacked;
* forward mode against reverse mode (two independent rules, rtol ``RTOL_MODES``), whole
  Jacobians and the adjoint identity ``<u, J v> == <J^T u, v>`` with ``dualad.jvp`` and
  ``dualad.vjp``;
* second order: ``jacobian(grad(g, inner), outer)`` for every pair of modes against
  forward-over-forward, which itself is checked against differences of the gradient;
* closed forms: Leibniz's formula for det at singular matrices (first and second order),
  ``||S||_F^2`` for the eigenvalues at a repeated eigenvalue, the zero derivative with
  respect to the triangle cholesky/eigh do not read.

Eigenvectors are compared under a sign convention fixed inside the differentiated function
(each column times the sign of its largest-magnitude entry: piecewise constant, so it
commutes with differentiation away from ties).
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import dualad
import dualad.rules.linalg  # noqa: F401  (registers the rules)
from conftest import ATOL_FD, RTOL_FD, fd_jacobian

MODES = ["forward", "reverse"]
RTOL_MODES = 1e-10   # two rules in exact arithmetic agree; rounding only
ATOL_MODES = 1e-12
PAIRS = [("forward", "reverse"), ("reverse", "reverse"), ("reverse", "forward")]


# -- points --------------------------------------------------------------------------------

def _orthogonal(rng, shape):
    q, r = np.linalg.qr(rng.standard_normal(shape))
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


def well(rng, shape):
    """A general matrix (stack) with singular values in [1, 3] and a random det sign."""
    s = rng.uniform(1.0, 3.0, shape[:-1])
    return (_orthogonal(rng, shape) * s[..., None, :]) @ np.swapaxes(
        _orthogonal(rng, shape), -1, -2)


def spd(rng, shape):
    """An SPD matrix (stack), eigenvalues spread over [1, 4] (gaps >= 0.5 for n <= 5)."""
    n = shape[-1]
    lam = np.linspace(1.0, 4.0, n) + rng.uniform(-0.1, 0.1, shape[:-1])
    q = _orthogonal(rng, shape)
    return (q * lam[..., None, :]) @ np.swapaxes(q, -1, -2)


def fix_signs(v):
    """Each eigenvector times the sign of its largest-magnitude component."""
    big = np.abs(v) == np.max(np.abs(v), axis=-2, keepdims=True)
    return v * np.sign(np.sum(v * big, axis=-2, keepdims=True))


SINGULAR = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])  # det == 0.0
RANK_ONE = np.outer([1.0, 2.0, -1.0], [0.5, -1.0, 2.0])


# -- cases: (f, x) built from the seeded rng -----------------------------------------------

def _solve_both(rng):
    b = rng.standard_normal((3, 2))
    x = np.concatenate([well(rng, (3, 3)), b], axis=1)
    return lambda x: np.linalg.solve(x[:, :3], x[:, 3:]), x


CASES = {
    "solve-a": lambda rng: (
        (lambda a, b=rng.standard_normal((3, 2)): np.linalg.solve(a, b)),
        well(rng, (3, 3))),
    "solve-b": lambda rng: ((lambda b, a=well(rng, (3, 3)): np.linalg.solve(a, b)),
                            rng.standard_normal((3, 2))),
    "solve-b-vector": lambda rng: ((lambda b, a=well(rng, (3, 3)): np.linalg.solve(a, b)),
                                   rng.standard_normal(3)),
    "solve-a-and-b": _solve_both,
    "solve-a-stacked-b-vector": lambda rng: (
        (lambda a, b=rng.standard_normal(3): np.linalg.solve(a, b)), well(rng, (2, 3, 3))),
    "solve-a-broadcast": lambda rng: (
        (lambda a, b=rng.standard_normal((3, 3, 2)): np.linalg.solve(a, b)),
        well(rng, (2, 1, 3, 3))),
    "solve-b-broadcast": lambda rng: (
        (lambda b, a=well(rng, (2, 1, 3, 3)): np.linalg.solve(a, b)),
        rng.standard_normal((3, 3, 2))),
    "inv": lambda rng: (np.linalg.inv, well(rng, (4, 4))),
    "inv-stacked": lambda rng: (np.linalg.inv, well(rng, (2, 3, 3))),
    "det": lambda rng: (np.linalg.det, well(rng, (4, 4))),
    "det-stacked": lambda rng: (np.linalg.det, well(rng, (3, 3, 3))),
    "det-singular": lambda rng: (np.linalg.det, SINGULAR.copy()),
    "det-singular-in-stack": lambda rng: (np.linalg.det,
                                          np.stack([SINGULAR, well(rng, (3, 3))])),
    "det-rank-one": lambda rng: (np.linalg.det, RANK_ONE.copy()),
    "slogdet": lambda rng: ((lambda a: np.linalg.slogdet(a).logabsdet),
                            well(rng, (4, 4)) * np.array([-1.0, 1, 1, 1])),
    "slogdet-stacked": lambda rng: ((lambda a: np.linalg.slogdet(a)[1]),
                                    well(rng, (3, 3, 3))),
    "cholesky": lambda rng: (np.linalg.cholesky, spd(rng, (4, 4))),
    "cholesky-upper": lambda rng: ((lambda a: np.linalg.cholesky(a, upper=True)),
                                   spd(rng, (4, 4))),
    "cholesky-stacked": lambda rng: (np.linalg.cholesky, spd(rng, (2, 3, 3))),
    "eigh-values": lambda rng: ((lambda a: np.linalg.eigh(a).eigenvalues),
                                spd(rng, (4, 4))),
    "eigh-values-upper": lambda rng: ((lambda a: np.linalg.eigh(a, UPLO="U")[0]),
                                      spd(rng, (4, 4))),
    "eigh-vectors": lambda rng: ((lambda a: fix_signs(np.linalg.eigh(a)[1])),
                                 spd(rng, (4, 4))),
    "eigh-vectors-upper": lambda rng: ((lambda a: fix_signs(np.linalg.eigh(a, "U")[1])),
                                       spd(rng, (4, 4))),
    "eigh-stacked": lambda rng: (
        (lambda a: np.concatenate([np.linalg.eigh(a)[0][..., None, :],
                                   fix_signs(np.linalg.eigh(a)[1])], axis=-2)),
        spd(rng, (2, 3, 3))),
}


def _case(name, rng):
    f, x = CASES[name](rng)
    return f, np.asarray(x, dtype=float)


# -- first order ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(CASES))
def test_jacobian_matches_finite_differences(name, mode, rng):
    f, x = _case(name, rng)
    jac = dualad.jacobian(f, mode=mode)(x)
    fd = fd_jacobian(f, x)
    assert jac.shape == fd.shape, f"{name} ({mode}): shape {jac.shape} != {fd.shape}"
    assert_allclose(jac, fd, rtol=RTOL_FD, atol=ATOL_FD, err_msg=f"{name} ({mode}) vs FD")


@pytest.mark.parametrize("chunk", [1, None])
@pytest.mark.parametrize("name", list(CASES))
def test_forward_equals_reverse(name, chunk, rng):
    f, x = _case(name, rng)
    fwd = dualad.jacobian(f, mode="forward", chunk=chunk)(x)
    rev = dualad.jacobian(f, mode="reverse")(x)
    assert_allclose(fwd, rev, rtol=RTOL_MODES, atol=ATOL_MODES,
                    err_msg=f"{name}: forward (chunk={chunk}) vs reverse")


@pytest.mark.parametrize("name", list(CASES))
def test_adjoint_identity(name, rng):
    """<u, J v> (forward rule, one lane) == <J^T u, v> (reverse rule)."""
    f, x = _case(name, rng)
    v = rng.standard_normal(x.shape)
    value, jv = dualad.jvp(f, x, v)
    value_r, pullback = dualad.vjp(f, x)
    expected = np.asarray(f(x))
    assert_array_equal(value, expected, err_msg=f"{name}: forward value vs NumPy")
    assert_array_equal(value_r, expected, err_msg=f"{name}: reverse value vs NumPy")
    u = rng.standard_normal(np.shape(expected))
    lhs = np.sum(u * jv)
    rhs = np.sum(pullback(u) * v)
    assert_allclose(lhs, rhs, rtol=RTOL_MODES, err_msg=f"{name}: <u, Jv> vs <J^T u, v>")


# -- second order --------------------------------------------------------------------------

def _weights(shape):
    return np.cos(np.arange(1, 1 + int(np.prod(shape))) * 0.7).reshape(shape)


SECOND_ORDER = {
    # scalar objectives g(x); each nonlinear in the linalg output so the second derivative
    # goes through the rule's own NumPy calls
    "solve": (lambda x: np.sum(_weights((3, 2)) * np.linalg.solve(x[:, :3], x[:, 3:]) ** 2),
              lambda rng: np.concatenate([well(rng, (3, 3)), rng.standard_normal((3, 2))],
                                         axis=1)),
    "inv": (lambda x: np.sum(_weights((2, 3, 3)) * np.linalg.inv(x)),
            lambda rng: well(rng, (2, 3, 3))),
    "det": (lambda x: np.sum(np.linalg.det(x) ** 2), lambda rng: well(rng, (2, 3, 3))),
    "slogdet": (lambda x: np.sum(_weights(2) * np.linalg.slogdet(x)[1]),
                lambda rng: well(rng, (2, 3, 3))),
    "cholesky": (lambda x: np.sum(_weights((3, 3)) * np.linalg.cholesky(x)),
                 lambda rng: spd(rng, (3, 3))),
    "cholesky-upper": (
        lambda x: np.sum(_weights((3, 3)) * np.linalg.cholesky(x, upper=True)),
        lambda rng: spd(rng, (3, 3))),
    "eigh-values": (lambda x: np.sum(_weights(3) * np.linalg.eigh(x)[0] ** 2),
                    lambda rng: spd(rng, (3, 3))),
    "eigh-vectors": (lambda x: np.sum(_weights((3, 3)) * fix_signs(np.linalg.eigh(x)[1])),
                     lambda rng: spd(rng, (3, 3))),
}


@pytest.fixture(scope="module")
def hessians():
    """Forward-over-forward Hessians, checked once against differences of the gradient."""
    rng = np.random.default_rng(20261127)
    out = {}
    for name, (g, point) in SECOND_ORDER.items():
        x = point(rng)
        h = dualad.jacobian(dualad.grad(g, mode="forward"), mode="forward")(x)
        out[name] = (x, h)
    return out


@pytest.mark.parametrize("name", list(SECOND_ORDER))
def test_hessian_forward_over_forward_matches_fd(name, hessians):
    g = SECOND_ORDER[name][0]
    x, h = hessians[name]
    fd = fd_jacobian(dualad.grad(g, mode="reverse"), x)
    assert_allclose(h, fd, rtol=RTOL_FD, atol=ATOL_FD, err_msg=f"{name}: Hessian vs FD")


@pytest.mark.parametrize("outer,inner", PAIRS, ids=[f"{o}-over-{i}" for o, i in PAIRS])
@pytest.mark.parametrize("name", list(SECOND_ORDER))
def test_hessian_nested_modes_agree(name, outer, inner, hessians):
    g = SECOND_ORDER[name][0]
    x, h = hessians[name]
    got = dualad.jacobian(dualad.grad(g, mode=inner), mode=outer)(x)
    assert_allclose(got, h, rtol=1e-9, atol=1e-11,
                    err_msg=f"{name}: {outer}-over-{inner} vs forward-over-forward")


# -- det at singular matrices: Leibniz's formula as the oracle -----------------------------

def _leibniz_det3(a):
    """det of a 3x3 matrix with products and sums only (no linalg rule involved)."""
    return (a[0, 0] * (a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1])
            - a[0, 1] * (a[1, 0] * a[2, 2] - a[1, 2] * a[2, 0])
            + a[0, 2] * (a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0]))


@pytest.mark.parametrize("point", [SINGULAR, RANK_ONE, np.zeros((3, 3))],
                         ids=["rank-2", "rank-1", "zero"])
@pytest.mark.parametrize("mode", MODES)
def test_det_at_singular_matrix_is_the_cofactor(point, mode):
    assert np.linalg.det(point) == 0.0  # the cofactor branch is the one under test
    grad = dualad.grad(np.linalg.det, mode=mode)(point)
    assert_allclose(grad, dualad.grad(_leibniz_det3, mode=mode)(point), rtol=1e-13,
                    atol=1e-14, err_msg=f"det gradient at a singular matrix ({mode})")
    hess = dualad.jacobian(dualad.grad(np.linalg.det, mode="reverse"), mode=mode)(point)
    expected = dualad.jacobian(dualad.grad(_leibniz_det3, mode="forward"))(point)
    assert_allclose(hess, expected, rtol=1e-12, atol=1e-13,
                    err_msg=f"det Hessian at a singular matrix ({mode}-over-reverse)")


# -- slogdet: the sign and singular matrices -----------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_slogdet_sign_is_a_plain_constant(mode, rng):
    x = well(rng, (2, 3, 3))
    seen = []

    def f(a):
        res = np.linalg.slogdet(a)
        seen.append(res)
        return res.sign * np.exp(res.logabsdet)   # = det(a)

    assert_allclose(dualad.jacobian(f, mode=mode)(x), fd_jacobian(np.linalg.det, x),
                    rtol=RTOL_FD, atol=ATOL_FD, err_msg=f"sign * exp(logabsdet) ({mode})")
    sign = seen[-1].sign
    assert isinstance(sign, np.ndarray) and sign.dtype == np.float64, type(sign)
    assert_array_equal(sign, np.linalg.slogdet(x).sign)
    assert type(seen[-1]).__name__ == "SlogdetResult"


@pytest.mark.parametrize("mode", MODES)
def test_slogdet_at_singular_matrix_is_nan_only_where_it_moves(mode, rng):
    x = np.stack([SINGULAR, well(rng, (3, 3))])
    jac = dualad.jacobian(lambda a: np.linalg.slogdet(a)[1], mode=mode)(x)
    assert np.all(np.isnan(jac[0, 0])), f"d logabsdet at a singular matrix ({mode})"
    assert_array_equal(jac[0, 1], 0.0)   # the other matrix does not move it
    assert_array_equal(jac[1, 0], 0.0)   # and it does not move the other's
    assert_allclose(jac[1, 1], np.linalg.inv(x[1]).T, rtol=1e-12,
                    err_msg=f"d logabsdet of the regular matrix ({mode})")


# -- the triangle convention of cholesky and eigh ------------------------------------------

TRIANGLE_READERS = {
    "cholesky-L": (lambda a: np.sum(np.linalg.cholesky(a) ** 2 * _weights((3, 3))), False),
    "cholesky-U": (lambda a: np.sum(np.linalg.cholesky(a, upper=True) ** 2
                                    * _weights((3, 3))), True),
    "eigh-L": (lambda a: np.sum(_weights(3) * np.linalg.eigh(a)[0] ** 3), False),
    "eigh-U": (lambda a: np.sum(_weights(3) * np.linalg.eigh(a, UPLO="U")[0] ** 3), True),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(TRIANGLE_READERS))
def test_unread_triangle_has_zero_derivative(name, mode, rng):
    f, upper = TRIANGLE_READERS[name]
    unread = np.tril(np.ones((3, 3)), -1) if upper else np.triu(np.ones((3, 3)), 1)
    # garbage in the unread triangle: NumPy ignores it, and so must the derivative
    x = spd(rng, (3, 3)) + unread * rng.standard_normal((3, 3))
    g = dualad.grad(f, mode=mode)(x)
    assert np.all(np.abs(g[unread == 0]) > 0), f"{name}: degenerate test point"
    assert_array_equal(g[unread == 1], 0.0, err_msg=f"{name} ({mode}): unread triangle")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("upper", [False, True], ids=["L", "U"])
def test_eigh_read_triangle_counts_both_symmetric_entries(upper, mode, rng):
    """With G = V diag(dphi/dw) V^T (the symmetric-input gradient of JAX or PyTorch), the
    read triangle's off-diagonal entries get 2 G_ij (as S_ij and S_ji), the diagonal
    G_ii."""
    c = _weights(3)
    x = spd(rng, (3, 3))
    # garbage in the unread triangle: NumPy ignores it, and so must the derivative
    x = x + (np.tril(rng.standard_normal((3, 3)), -1) if upper
             else np.triu(rng.standard_normal((3, 3)), 1))
    uplo = "U" if upper else "L"
    g = dualad.grad(lambda a: np.sum(c * np.linalg.eigh(a, UPLO=uplo)[0] ** 3),
                    mode=mode)(x)
    w, v = np.linalg.eigh(x, UPLO=uplo)
    sym = (v * (3 * c * w ** 2)) @ v.T
    tri = np.triu if upper else np.tril
    assert_allclose(g, tri(2 * sym) - np.diag(np.diag(sym)), rtol=1e-12, atol=1e-14,
                    err_msg=f"eigh UPLO={uplo} ({mode})")


# -- eigh at a repeated eigenvalue ---------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_eigenvalues_at_repeated_eigenvalue(mode):
    """sum(w^2) = ||S||_F^2 is smooth: its gradient stays finite at a repeated eigenvalue
    (2 S read through the lower triangle: 2 on the diagonal, 4 below, 0 above)."""
    x = np.array([[2.0, 9.0, 9.0], [0.0, 2.0, 9.0], [0.0, 0.0, 3.0]])  # S = diag(2, 2, 3)
    g = dualad.grad(lambda a: np.sum(np.linalg.eigh(a)[0] ** 2), mode=mode)(x)
    s = np.tril(x) + np.tril(x, -1).T
    assert_allclose(g, 2 * np.tril(s) + 2 * np.tril(s, -1), rtol=1e-14, atol=1e-14)


def test_eigenvectors_at_repeated_eigenvalue_are_nan_where_coupled():
    x = np.diag([2.0, 2.0, 3.0])
    jac = dualad.jacobian(lambda a: np.linalg.eigh(a)[1], mode="forward")(x)
    # moving S_10 (= S_01) rotates the degenerate pair: no derivative exists
    assert np.all(np.isnan(jac[:, :2, 1, 0]))
    # moving S_22 does not touch the pair, and eigenvectors stay put
    assert_array_equal(jac[..., 2, 2], 0.0)
    # the third eigenvector is not degenerate: finite everywhere
    assert np.all(np.isfinite(jac[:, 2]))


def _projector_objective(a):
    """A function of the eigenspace of the two smallest eigenvalues only (smooth while
    that pair stays apart from the third eigenvalue, even when the pair is degenerate)."""
    v = np.linalg.eigh(a)[1][..., :2]
    return np.sum(_weights((3, 3)) * (v @ np.swapaxes(v, -1, -2)))


@pytest.mark.parametrize("rotated", [False, True], ids=["diagonal", "rotated"])
def test_reverse_eigenvectors_invariant_use_of_degenerate_pair(rotated, rng):
    """Reverse mode keeps only the part of Vᵀ gV that F can act on (its antisymmetric
    part); a cotangent that does not rotate the degenerate pair then gives the exact
    gradient instead of 0 * inf."""
    x = np.diag([2.0, 2.0, 3.0])
    if rotated:   # the pair is then equal only up to rounding: F ~ 1e15
        q = _orthogonal(rng, (3, 3))
        x = q @ x @ q.T
    g = dualad.grad(_projector_objective, mode="reverse")(x)
    assert_allclose(g, fd_jacobian(_projector_objective, x), rtol=RTOL_FD, atol=ATOL_FD,
                    err_msg=f"projector gradient at a repeated eigenvalue ({rotated=})")


# -- errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("call", [
    lambda a, c: np.linalg.solve(c, a[:, 0]),
    lambda a, c: np.linalg.solve(a, c),
], ids=["solve-a", "solve-b"])
def test_complex_constant_names_function_and_mode(call, mode):
    c = np.eye(2) * (1 + 1j)
    with pytest.raises(TypeError, match=rf"numpy\.linalg\.solve.*complex.*{mode} mode"):
        dualad.jacobian(lambda a: call(a, c), mode=mode)(np.eye(2) * 2)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("func", [np.linalg.eig, np.linalg.svd, np.linalg.qr,
                                  np.linalg.pinv, np.linalg.eigvals])
def test_functions_without_rule_raise(func, mode):
    with pytest.raises(TypeError, match=rf"{mode}.*numpy\.linalg\.{func.__name__}"):
        dualad.jacobian(lambda a: np.sum(func(a)[0]), mode=mode)(np.eye(2) * 2)


@pytest.mark.parametrize("mode", MODES)
def test_numpy_errors_propagate(mode):
    with pytest.raises(np.linalg.LinAlgError):
        dualad.jacobian(np.linalg.inv, mode=mode)(np.ones((2, 2)))
    with pytest.raises(np.linalg.LinAlgError):
        dualad.jacobian(np.linalg.cholesky, mode=mode)(-np.eye(2))
    with pytest.raises(np.linalg.LinAlgError):
        dualad.jacobian(np.linalg.det, mode=mode)(np.ones((2, 3)))
    with pytest.raises(ValueError, match="UPLO"):
        dualad.jacobian(lambda a: np.linalg.eigh(a, UPLO="X")[0], mode=mode)(np.eye(2))
