"""The Python side of the polygamma functions the rule table's expressions use.

Design note
-----------
``gamma``, ``gammaln`` and ``digamma`` (``scipy.special``) have partials in terms of the
polygamma functions psi_1 (trigamma) and psi_2 (tetragamma).  The rule table names them
``trigamma``/``tetragamma``.  SciPy has them only as ``polygamma``, a Python function
that calls the Hurwitz zeta ufunc and therefore cannot run on dualad's tracers, and has
no scalar C version for the kernels.  So dualad implements them once, as an algorithm,
twice spelled:

* in C, the helpers ``_dd_trigamma``/``_dd_tetragamma`` of the generated kernel header
  (:mod:`dualad.rules._codegen`);
* here, in NumPy operations doing the same arithmetic in the same order, element by
  element, so that the registry's partials equal the kernels' to the last bit or two,
  and so that they run on tracers: the rules differentiate again (third derivatives of
  ``gammaln``, forward over reverse).  The derivative of the trigamma approximant is
  exactly the tetragamma approximant (the series below are termwise derivatives of each
  other), so nesting reproduces the next partial.

The algorithm: for x > 0 the recurrence psi_n(x) = psi_n(x + 1) - (-1)^n n! / x^(n+1)
shifts x up to at least 16, where the asymptotic series (DLMF 5.15.8) is summed; its
first omitted term is below 1e-17 relative there.  For x < 0 the reflection formula
(DLMF 5.15.6, differentiated) uses sin(pi t) and cos(pi t), t = x - rint(x) (an exact
argument reduction), evaluated for |t| > 1/4 from the exact argument pi (1/2 - |t|):
accurate near |t| = 1/2, and so are their derivatives (nesting).  Branches are chosen on
the primal values (the function is the same smooth function on either side), so
tangents flow through the selected branch only.  Special values are SciPy's
(``scipy.special.polygamma(n, x)``): at the poles x = 0, -1, -2, ... and -inf,
psi_1 = inf and psi_2 = -inf; at +inf both are 0; nan propagates.  Like the C helpers,
these never warn: overflow to inf near the poles is the defined result.
"""

import numpy as np

__all__ = ["trigamma", "tetragamma"]

_PI = 3.141592653589793
_PI2 = 9.869604401089358        # pi ** 2
_TWO_PI3 = 62.01255336059963    # 2 pi ** 3
#: Recurrence target: x is shifted up until x >= _SHIFT (as in the C helpers).
_SHIFT = 16.0


def _primal(x):
    """Plain float64 values of x (of its innermost primal when x is a tracer)."""
    from .._tape import primal  # late: _tape imports the registry, which imports us
    return np.asarray(primal(x), dtype=np.float64)


def _shifted(x, v, term, acc):
    """(acc plus the recurrence terms, shifted argument): the loop of the C helper.

    ``term(z)`` is the signed recurrence term at z; each lane adds terms and steps z by
    one while its primal (``v``, stepped alongside) is below _SHIFT, as the C loop does.
    Lanes already done compute their term at 1.0 and discard it.
    """
    z, zv = x, v
    while True:
        more = zv < _SHIFT
        if not np.any(more):
            return acc, z
        acc = np.where(more, acc + term(np.where(more, z, 1.0)), acc)
        z = np.where(more, z + 1.0, z)
        zv = np.where(more, zv + 1.0, zv)


def _sinpi(t, tv):
    """sin(pi t) for |t| <= 1/2 (``tv``: primal of t), as the C helper ``_dd_sinpi``."""
    near = np.abs(tv) <= 0.25
    far = np.cos(_PI * (0.5 - np.abs(np.where(near, 0.5, t))))
    return np.where(near, np.sin(_PI * np.where(near, t, 0.0)),
                    np.where(tv < 0.0, -far, far))


def _cospi(t, tv):
    """cos(pi t) for |t| <= 1/2, as the C helper ``_dd_cospi``."""
    near = np.abs(tv) <= 0.25
    return np.where(near, np.cos(_PI * np.where(near, t, 0.0)),
                    np.sin(_PI * (0.5 - np.abs(np.where(near, 0.5, t)))))


def _positive_trigamma(x, v):
    acc, z = _shifted(x, v, lambda t: 1.0 / (t * t), 0.0)
    r = 1.0 / z
    r2 = r * r
    return acc + r + 0.5 * r2 + r * r2 * (
        0.16666666666666666 - r2 * (0.03333333333333333 - r2 * (
            0.023809523809523808 - r2 * (0.03333333333333333 - r2 * (
                0.07575757575757576 - r2 * (0.2531135531135531
                                            - r2 * 1.1666666666666667))))))


def _positive_tetragamma(x, v):
    acc, z = _shifted(x, v, lambda t: -2.0 / (t * t * t), -0.0)
    r = 1.0 / z
    r2 = r * r
    return acc - r2 - r * r2 - r2 * r2 * (0.5 - r2 * (
        0.16666666666666666 - r2 * (0.16666666666666666 - r2 * (
            0.3 - r2 * (0.8333333333333334 - r2 * (3.2904761904761903
                                                   - r2 * 17.5))))))


def _reflected_trigamma(rest, t, tv):
    s = _sinpi(t, tv)
    return _PI2 / (s * s) - rest


def _reflected_tetragamma(rest, t, tv):
    s = _sinpi(t, tv)
    return rest - _TWO_PI3 * _cospi(t, tv) / (s * s * s)


def _polygamma(x, positive, reflected, at_pole):
    if isinstance(x, (list, tuple)):
        x = np.asarray(x, dtype=np.float64)
    v = _primal(x)
    nan = np.isnan(v)
    pole = (v <= 0.0) & (v == np.floor(v))
    neg = (v < 0.0) & ~pole
    bad = nan | pole
    with np.errstate(all="ignore"):
        # the positive branch, at x itself or at 1 - x for the negative points; poles
        # and nan are computed at the stand-in 1.0 (no 1/0 in any lane, no inf or nan
        # in a tangent that ``where`` would have to discard) and replaced at the end
        zv = np.where(bad, 1.0, np.where(neg, 1.0 - v, v))
        z = np.where(bad, 1.0, np.where(neg, 1.0 - x, x))
        out = positive(z, zv)
        if np.any(neg):
            tv = np.where(neg, v - np.rint(v), 0.5)
            t = np.where(neg, x, 0.5) - np.where(neg, np.rint(v), 0.0)
            out = np.where(neg, reflected(out, t, tv), out)
        out = np.where(pole, at_pole, out)
        out = np.where(nan, np.nan, out)
    return out[()] if isinstance(out, np.ndarray) else out


def trigamma(x):
    """psi_1(x), the derivative of the digamma function.

    The same values as ``scipy.special.polygamma(1, x)`` (to a few ulps), and
    differentiable by dualad in every mode.

    Parameters
    ----------
    x : array_like
        Real points (plain or traced).

    Returns
    -------
    ndarray, float or tracer
        psi_1 at ``x``: inf at the poles (0, -1, -2, ... and -inf), 0 at +inf.

    See Also
    --------
    tetragamma, scipy.special.polygamma

    Notes
    -----
    psi_1(x) = sum_k 1 / (x + k)^2; for x < 0, psi_1(x) = pi^2 / sin^2(pi x) -
    psi_1(1 - x).  The algorithm is that of the C helper ``_dd_trigamma`` (see the module
    notes).

    Examples
    --------
    >>> from dualad.rules.special import trigamma
    >>> round(float(trigamma(1.0)), 12)   # pi**2 / 6
    1.644934066848
    """
    return _polygamma(x, _positive_trigamma, _reflected_trigamma, np.inf)


def tetragamma(x):
    """psi_2(x), the second derivative of the digamma function.

    The same values as ``scipy.special.polygamma(2, x)`` (to a few ulps), and
    differentiable by dualad in every mode.

    Parameters
    ----------
    x : array_like
        Real points (plain or traced).

    Returns
    -------
    ndarray, float or tracer
        psi_2 at ``x``: -inf at the poles (0, -1, -2, ... and -inf), -0 at +inf.

    See Also
    --------
    trigamma, scipy.special.polygamma

    Notes
    -----
    psi_2(x) = -2 sum_k 1 / (x + k)^3; for x < 0, psi_2(x) = psi_2(1 - x) -
    2 pi^3 cos(pi x) / sin^3(pi x).  The algorithm is that of the C helper
    ``_dd_tetragamma`` (see the module notes).

    Examples
    --------
    >>> from dualad.rules.special import tetragamma
    >>> round(float(tetragamma(1.0)), 12)   # -2 zeta(3)
    -2.404113806319
    """
    return _polygamma(x, _positive_tetragamma, _reflected_tetragamma, -np.inf)
