"""Rules for ``numpy.linalg``: solve, inv, det, slogdet, cholesky, eigh, in both modes.

Design note
-----------
Each function has a forward rule (a tangent rule applied to the whole lane stack: the
tangent has the lane axis first, ``(k,) + value.shape``, and ``np.matmul``/``np.linalg``
broadcasting carries it along as one more batch axis) and a reverse rule (a VJP recorded
with :func:`dualad._tape.record`).  Both are written with NumPy calls only (``matmul``,
``solve``, ``swapaxes``, ``sum``, ``where``, products with constant masks), so when the
values are tracers of an older level (forward-over-reverse Hessians, forward-over-forward)
the rule dispatches back into dualad and differentiates again.  Triangles and diagonals
are taken with constant 0/1 masks rather than ``np.tril``/``np.diagonal`` so that the
rules need nothing beyond what every mode supports.

Stacked matrices ``(..., n, n)`` are supported wherever NumPy supports them, with NumPy's
broadcasting of the batch axes in ``solve``; reverse rules undo that broadcasting.

Formulas (``S`` is the symmetric matrix LAPACK actually reads, see below):

* ``X = solve(A, B)``:   ``dX = solve(A, dB - dA X)``;  ``gB = solve(Aᵀ, gX)``,
  ``gA = -gB Xᵀ``.
* ``Y = inv(A)``:        ``dY = -Y dA Y``;              ``gA = -Yᵀ gY Yᵀ``.
* ``d = det(A)``:        ``dd = d tr(solve(A, dA))``;   ``gA = solve(Aᵀ, g d I)``.  At an
  exactly singular matrix (``d == 0``, where ``A⁻¹`` does not exist but the derivative
  does) both use the cofactor matrix instead: ``dd = <C, dA>``, ``gA = g C`` (from the
  SVD for a plain matrix; from the minors, which differentiate again, for a tracer).
* ``(s, l) = slogdet(A)``: ``dl = tr(solve(A, dA))``;  ``gA = solve(Aᵀ, g I)``.  The sign
  is returned as a plain constant (its derivative is zero wherever it is defined).  At a
  singular matrix (``s == 0``, ``l = -inf``) ``l`` has no derivative: the tangent or
  gradient is NaN there (a zero tangent or cotangent still annihilates to 0).
* ``L = cholesky(A)``:   ``dL = L Φ(L⁻¹ dS L⁻ᵀ)`` with ``Φ`` = lower triangle, diagonal
  halved (Murray 2016, arXiv:1602.07527); ``gS = L⁻ᵀ Φ(Lᵀ gL) L⁻¹``.  All products with
  ``L⁻¹`` are solves.  ``upper=True`` returns ``U = Lᵀ`` of the upper-triangle matrix.
* ``(w, V) = eigh(A)``:  ``dw = diag(Vᵀ dS V)``, ``dV = V (F ∘ Vᵀ dS V)`` with
  ``F_ij = 1 / (w_j - w_i)`` (``F_ii = 0``); ``gS = V (diag(gw) + F ∘ Q) Vᵀ`` with
  ``Q = (Vᵀ gV - gVᵀ V) / 2``: F is antisymmetric, so only Q's antisymmetric part reaches
  ``A``; dropping the rest before multiplying by F keeps ``0 · 1/gap`` out of the result
  when the eigenvalues nearly coincide and the cotangent does not rotate them.

Conventions:

* **Triangle read.**  ``cholesky`` and ``eigh`` (like LAPACK) read one triangle only
  (``UPLO='L'``/``upper=False``: the lower one) and treat the matrix as the symmetric
  ``S = tril(A) + tril(A, -1)ᵀ``.  dualad differentiates exactly that function of ``A``,
  so the derivative with respect to an entry of the triangle that is not read is **zero**,
  and an off-diagonal entry of the read triangle gets the contribution of both ``S_ij``
  and ``S_ji``.  Finite differences of NumPy's own function agree entry by entry.  When
  ``A`` is built symmetric (``B @ B.T``, ``X + X.T``), which is the usual case, this
  equals the symmetric-input convention of JAX or PyTorch; to get that convention for an
  unsymmetric parametrisation, symmetrise explicitly: ``eigh((A + A.T) / 2)``.
* **eigh assumes distinct eigenvalues.**  Eigenvectors are not differentiable (not even
  unique) at a repeated eigenvalue: entries of ``F`` for exactly equal eigenvalues give
  NaN in the eigenvector tangent/gradient wherever the tangent or cotangent couples the
  two eigenvectors (forward: ``Vᵀ dS V``; reverse: the antisymmetric ``Q`` above, so a
  function of the eigenspace of a repeated eigenvalue, such as its projector, keeps an
  exact gradient in reverse mode), and 0 where it does not.  Eigenvalue derivatives stay
  finite (``diag(Vᵀ dS V)``, exact for symmetric functions of the eigenvalues such as
  their sum); in reverse mode an unused eigenvector output costs and contributes
  nothing.  The eigenvector derivative keeps NumPy's normalisation (unit columns,
  ``Vᵀ dV`` antisymmetric): a caller who fixes signs should do it with a
  piecewise-constant rule.
"""

import functools

import numpy as np

from .. import _tape
from .._array import as_value, normalize, split, tag_of, wrap
from .._errors import complex_input
from .registry import register
from .vjps import _parts as _rparts, _tape_of

__all__ = []

_SlogdetResult = type(np.linalg.slogdet(np.eye(1)))
_EighResult = type(np.linalg.eigh(np.eye(1)))


# -- shared helpers (NumPy ops only: they run on tracers of any level) ---------------------

class _Masks:
    """Constant 0/1 (float) masks of an n x n matrix; read-only arrays."""

    __slots__ = ("eye", "low", "slow", "up", "sup", "phi", "eye_bool")

    def __init__(self, n):
        self.eye = np.eye(n)
        self.low = np.tril(np.ones((n, n)))
        self.slow = self.low - self.eye
        self.up = self.low.T.copy()
        self.sup = self.slow.T.copy()
        self.phi = self.slow + 0.5 * self.eye   # Φ: lower triangle, diagonal halved
        self.eye_bool = np.eye(n, dtype=bool)
        for name in self.__slots__:
            getattr(self, name).flags.writeable = False


@functools.lru_cache(maxsize=64)
def _masks(n):
    return _Masks(n)


def _shape(x):
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def _arr(x):
    """An operand as an array-like: ndarray or a tracer array (never a scalar tracer)."""
    if isinstance(x, _tape.RScalar):
        return _tape._as_rarray(x)
    return as_value(x)


def _mT(x):
    return np.swapaxes(x, -1, -2)


def _pad(t, ndim):
    """Insert length-one axes after the lane axis of ``t`` until it has ``ndim`` value dims
    (the lane axis must not meet a batch axis of the other operand)."""
    have = len(_shape(t)) - 1
    if have >= ndim:
        return t
    s = _shape(t)
    return np.reshape(t, (s[0],) + (1,) * (ndim - have) + s[1:])


def _trace(x):
    """Trace over the last two axes."""
    return np.sum(x * _masks(_shape(x)[-1]).eye, axis=(-2, -1))


def _solve_lanes(a, t):
    """``solve(a, t[l])`` for every lane ``l`` of the stack ``t`` (``(k, ..., n, m)``).

    The lanes become extra right-hand-side columns, so each matrix of ``a`` is factorized
    once for all lanes rather than once per lane.
    """
    k = _shape(t)[0]
    r = np.moveaxis(t, 0, -1)                       # (..., n, m, k)
    s = _shape(r)
    x = np.linalg.solve(a, np.reshape(r, s[:-2] + (s[-2] * k,)))
    xs = _shape(x)
    return np.moveaxis(np.reshape(x, xs[:-1] + (s[-2], k)), -1, 0)


def _sym_read(t, upper):
    """The symmetric matrix LAPACK reads from ``t``: one triangle mirrored (linear)."""
    m = _masks(_shape(t)[-1])
    if upper:
        return t * m.up + _mT(t * m.sup)
    return t * m.low + _mT(t * m.slow)


def _sym_read_T(g, upper):
    """The transpose of :func:`_sym_read`: a cotangent of ``S`` to one of ``A``."""
    m = _masks(_shape(g)[-1])
    if upper:
        return g * m.up + _mT(g) * m.sup
    return g * m.low + _mT(g) * m.slow


def _identity_rhs(scale, n):
    """``scale[..., None, None] * I``: right-hand sides for ``A⁻ᵀ`` scaled per matrix."""
    return np.expand_dims(scale, (-2, -1)) * _masks(n).eye


def _cofactor(a):
    """The cofactor matrix ``C_ij = (-1)^(i+j) det(minor_ij)`` (``adj(A) = Cᵀ``).

    Used by ``det`` at exactly singular matrices, where ``det(A) A⁻ᵀ`` cannot be formed.
    A plain matrix takes the SVD ``A = U S Vᵀ``: ``C = det(U) det(V) U adj(S) Vᵀ`` with
    ``adj(S)_ii = prod_{j != i} s_j`` (O(n³), any rank).  A tracer (a derivative of the
    derivative at a singular matrix) takes the minors, a polynomial written with indexing
    and ``det`` that differentiates again; it holds n⁴ numbers per matrix.
    """
    n = _shape(a)[-1]
    if n == 1:
        return np.ones(_shape(a))
    if type(a) is np.ndarray:
        u, s, vt = np.linalg.svd(a)
        ones = np.ones(s.shape[:-1] + (1,))
        left = np.cumprod(np.concatenate([ones, s[..., :-1]], axis=-1), axis=-1)
        right = np.cumprod(np.concatenate([ones, s[..., :0:-1]], axis=-1), axis=-1)
        right = right[..., ::-1]                      # prod_{j > i} s_j
        orient = np.linalg.det(u) * np.linalg.det(vt)
        return (u * (left * right * orient[..., None])[..., None, :]) @ vt
    keep = np.array([[j for j in range(n) if j != i] for i in range(n)], dtype=np.intp)
    rows = keep[:, None, :, None]                   # (n, 1, n-1, 1)
    cols = keep[None, :, None, :]                   # (1, n, 1, n-1)
    minors = a[..., rows, cols]                     # (..., n, n, n-1, n-1)
    signs = 1.0 - 2.0 * (np.add.outer(np.arange(n), np.arange(n)) % 2)
    return signs * np.linalg.det(minors)


def _gap_product(w, p):
    """``F ∘ p`` with ``F_ij = 1 / (w_j - w_i)``, ``F_ii = 0``, for the eigh rules.

    Exactly equal eigenvalues (``w_i == w_j``, i != j): 0 where ``p_ij == 0`` and NaN
    otherwise (the eigenvector derivative does not exist there).  The division is guarded
    so that no infinity reaches nested derivatives and no warning is raised.
    """
    diff = np.expand_dims(w, -2) - np.expand_dims(w, -1)     # [i, j] = w_j - w_i
    tie = _tape.primal(diff) == 0                            # includes the diagonal
    fp = np.where(tie, 0.0, p / np.where(tie, 1.0, diff))
    coupled = tie & ~_masks(_shape(w)[-1]).eye_bool
    if np.any(coupled):
        coupled = coupled & (_tape.primal(p) != 0)
        if np.any(coupled):
            fp = np.where(coupled, np.nan, fp)
    return fp


def _check_real(name, mode, objs):
    """Complex constants: ``TypeError`` naming the function and the mode."""
    for o in objs:
        if isinstance(o, (np.ndarray, np.generic, complex)) and np.iscomplexobj(o):
            raise TypeError(f"numpy.linalg.{name}: {complex_input(mode)}")


def _upper_flag(name, uplo):
    """``UPLO`` as a flag, validated like NumPy (which the value computation also does)."""
    if not isinstance(uplo, str) or uplo.upper() not in ("L", "U"):
        raise ValueError(f"numpy.linalg.{name}: UPLO argument must be 'L' or 'U'")
    return uplo.upper() == "U"


# -- forward mode --------------------------------------------------------------------------

def _fsplit(name, *objs):
    """``(tag, [(value, tangent), ...])`` of the operands at the newest level among them."""
    _check_real(name, "forward", objs)
    objs = [normalize(o) for o in objs]
    tag = tag_of(objs)
    out = []
    for o in objs:
        v, t = split(o, tag)
        out.append((as_value(v), t))
    return tag, out


@register(np.linalg.solve)
def _solve(a, b):
    tag, ((av, ta), (bv, tb)) = _fsplit("solve", a, b)
    x = np.linalg.solve(av, bv)
    if ta is None and tb is None:
        return x
    vec = len(_shape(bv)) == 1          # NumPy: b is a vector only when exactly 1-D
    xm = np.expand_dims(x, -1) if vec else x
    nd = len(_shape(xm))
    rhs = None
    if tb is not None:
        rhs = _pad(np.expand_dims(tb, -1) if vec else tb, nd)
    if ta is not None:
        term = np.matmul(_pad(ta, nd), xm)
        rhs = -term if rhs is None else rhs - term
    tx = _solve_lanes(av, rhs)
    return wrap(x, tx[..., 0] if vec else tx, tag)


@register(np.linalg.inv)
def _inv(a):
    tag, ((av, t),) = _fsplit("inv", a)
    y = np.linalg.inv(av)
    if t is None:
        return y
    return wrap(y, -np.matmul(y, np.matmul(t, y)), tag)


@register(np.linalg.det)
def _det(a):
    tag, ((av, t),) = _fsplit("det", a)
    y = np.linalg.det(av)
    if t is None:
        return y
    y = _arr(y)
    if np.any(_tape.primal(y) == 0):
        ty = np.sum(_cofactor(av) * t, axis=(-2, -1))
    else:
        ty = y * _trace(_solve_lanes(av, t))
    return wrap(y, ty, tag)


def _singular_safe(av, sign):
    """``(a, singular)``: ``a`` with its exactly singular matrices replaced by ``I``."""
    singular = _tape.primal(sign) == 0
    if not np.any(singular):
        return av, None
    eye = _masks(_shape(av)[-1]).eye
    return np.where(np.expand_dims(singular, (-2, -1)), eye, av), singular


@register(np.linalg.slogdet)
def _slogdet(a):
    tag, ((av, t),) = _fsplit("slogdet", a)
    sign, logdet = np.linalg.slogdet(av)   # an older level's rule returns a plain sign
    if t is None:
        return _SlogdetResult(sign, logdet)
    safe, singular = _singular_safe(av, sign)
    tl = _trace(_solve_lanes(safe, t))
    if singular is not None:
        moved = np.any(_tape.primal(t) != 0, axis=(-2, -1))  # (k, ...): lanes that move
        tl = np.where(singular & moved, np.nan, tl)
    return _SlogdetResult(sign, wrap(logdet, tl, tag))


@register(np.linalg.cholesky)
def _cholesky(a, *, upper=False):
    tag, ((av, t),) = _fsplit("cholesky", a)
    c = np.linalg.cholesky(av, upper=upper)
    if t is None:
        return c
    low = _mT(c) if upper else c
    z = _solve_lanes(low, _sym_read(t, upper))            # L⁻¹ dS
    x = _mT(_solve_lanes(low, _mT(z)))                    # L⁻¹ dS L⁻ᵀ
    dl = np.matmul(low, x * _masks(_shape(c)[-1]).phi)    # L Φ(X)
    return wrap(c, _mT(dl) if upper else dl, tag)


@register(np.linalg.eigh)
def _eigh(a, UPLO="L"):
    upper = _upper_flag("eigh", UPLO)
    tag, ((av, t),) = _fsplit("eigh", a)
    w, v = np.linalg.eigh(av, UPLO)
    if t is None:
        return _EighResult(w, v)
    p = np.matmul(_mT(v), np.matmul(_sym_read(t, upper), v))    # Vᵀ dS V, per lane
    tw = np.sum(p * _masks(_shape(w)[-1]).eye, axis=-1)
    tv = np.matmul(v, _gap_product(w, p))
    return _EighResult(wrap(w, tw, tag), wrap(v, tv, tag))


# -- reverse mode --------------------------------------------------------------------------

_REV = "reverse"


def _rsplit(name, *objs):
    """``(tape, [(value, node), ...])`` of the operands on the newest tape among them."""
    _check_real(name, _REV, objs)
    tape = _tape_of(objs)
    return tape, [_rparts(o, tape) for o in objs]


@register(np.linalg.solve, mode=_REV)
def _solve_rev(a, b):
    tape, ((av, an), (bv, bn)) = _rsplit("solve", a, b)
    x = np.linalg.solve(av, bv)
    vec = len(_shape(bv)) == 1
    sa, sb = _shape(av), _shape(bv)

    def vjp(cot):
        cot = _arr(cot)
        cm = np.expand_dims(cot, -1) if vec else cot
        gb = np.linalg.solve(_mT(av), cm)                   # A⁻ᵀ gX
        ga = None
        if an >= 0:
            xm = np.expand_dims(x, -1) if vec else x
            ga = _tape.unbroadcast(-np.matmul(gb, _mT(xm)), sa)
        if bn >= 0:
            gb = _tape.unbroadcast(gb[..., 0] if vec else gb, sb)
        else:
            gb = None
        return [ga, gb]
    return _tape.record(tape, x, [an, bn], vjp)


@register(np.linalg.inv, mode=_REV)
def _inv_rev(a):
    tape, ((av, an),) = _rsplit("inv", a)
    y = np.linalg.inv(av)

    def vjp(cot):
        yt = _mT(y)
        return [-np.matmul(yt, np.matmul(_arr(cot), yt))]
    return _tape.record(tape, y, [an], vjp)


@register(np.linalg.det, mode=_REV)
def _det_rev(a):
    tape, ((av, an),) = _rsplit("det", a)
    y = _arr(np.linalg.det(av))
    n = _shape(av)[-1]

    def vjp(cot):
        cot = _arr(cot)
        if np.any(_tape.primal(y) == 0):
            return [np.expand_dims(cot, (-2, -1)) * _cofactor(av)]
        return [np.linalg.solve(_mT(av), _identity_rhs(cot * y, n))]   # g d A⁻ᵀ
    return _tape.record(tape, y, [an], vjp)


@register(np.linalg.slogdet, mode=_REV)
def _slogdet_rev(a):
    tape, ((av, an),) = _rsplit("slogdet", a)
    sign, logdet = np.linalg.slogdet(av)
    n = _shape(av)[-1]

    def vjp(cot):
        cot = _arr(cot)
        safe, singular = _singular_safe(av, sign)
        g = np.linalg.solve(_mT(safe), _identity_rhs(cot, n))          # g A⁻ᵀ
        if singular is not None:
            moved = np.expand_dims(singular & (_tape.primal(cot) != 0), (-2, -1))
            g = np.where(moved, np.nan, g)
        return [g]
    return _SlogdetResult(sign, _tape.record(tape, logdet, [an], vjp))


@register(np.linalg.cholesky, mode=_REV)
def _cholesky_rev(a, *, upper=False):
    tape, ((av, an),) = _rsplit("cholesky", a)
    c = np.linalg.cholesky(av, upper=upper)

    def vjp(cot):
        cot = _arr(cot)
        low, g = (_mT(c), _mT(cot)) if upper else (c, cot)
        lt = _mT(low)
        p = np.matmul(lt, g) * _masks(_shape(c)[-1]).phi      # Φ(Lᵀ gL)
        y = np.linalg.solve(lt, p)                             # L⁻ᵀ P
        gs = _mT(np.linalg.solve(lt, _mT(y)))                  # L⁻ᵀ P L⁻¹
        return [_sym_read_T(gs, upper)]
    return _tape.record(tape, c, [an], vjp)


@register(np.linalg.eigh, mode=_REV)
def _eigh_rev(a, UPLO="L"):
    upper = _upper_flag("eigh", UPLO)
    tape, ((av, an),) = _rsplit("eigh", a)
    w, v = np.linalg.eigh(av, UPLO)
    if an < 0:
        return _EighResult(w, v)

    # Two nodes on the same parent: their contributions add up in A's adjoint, and an
    # output that is not used is never swept (no F, no 1/0 for eigenvalues only).
    def vjp_w(cot):
        gs = np.matmul(v * np.expand_dims(_arr(cot), -2), _mT(v))        # V diag(gw) Vᵀ
        return [_sym_read_T(gs, upper)]

    def vjp_v(cot):
        q = np.matmul(_mT(v), _arr(cot))
        # Only the symmetric part of F ∘ Q reaches A (F is antisymmetric), and it equals
        # F ∘ (Q - Qᵀ)/2: a cotangent that does not rotate a degenerate pair stays finite.
        gs = np.matmul(v, np.matmul(_gap_product(w, 0.5 * (q - _mT(q))), _mT(v)))
        return [_sym_read_T(gs, upper)]
    return _EighResult(_tape.record(tape, w, [an], vjp_w),
                       _tape.record(tape, v, [an], vjp_v))
