"""Differentiable ``logsumexp``, ``softmax`` and ``log_softmax``.

Design note
-----------
``scipy.special.logsumexp`` and ``log_softmax`` are Python functions that convert their
input with ``np.asarray`` and branch on its dtype, so they cannot run on traced values
(``scipy.special.softmax`` happens to, element by element).  These versions are written
with NumPy operations that every dualad mode differentiates, and agree with SciPy's to
rounding.  The maximum used for stability is taken from the primal values: a constant
shift, which cancels exactly, so it needs no derivative.

The ``scipy.special`` ufuncs (``erf``, ``gamma``, ``gammaln``, ``digamma``, ``expit``,
``logit``, ``xlogy``...) need nothing from here: they are in dualad's rule table.
"""

import numpy as np

from ._tape import primal

__all__ = ["logsumexp", "softmax", "log_softmax"]


def _shift(a, axis):
    m = np.max(primal(a), axis=axis, keepdims=True)
    return np.where(np.isfinite(m), m, 0.0)


def logsumexp(a, axis=None, b=None, keepdims=False):
    """``log(sum(b * exp(a)))`` computed stably, differentiable in every mode.

    Parameters
    ----------
    a : array_like
        Input values (may be traced).
    axis : int or tuple of int, optional
        Axes to sum over; all by default.
    b : array_like, optional
        Non-negative weights, broadcast against ``a``.
    keepdims : bool, optional
        Keep the reduced axes with length one.

    Returns
    -------
    ndarray or float
        The log-sum-exp; its gradient with respect to ``a`` is the softmax.

    See Also
    --------
    softmax, log_softmax, scipy.special.logsumexp

    Examples
    --------
    >>> import numpy as np
    >>> import dualad
    >>> from dualad.special import logsumexp
    >>> x = np.array([1.0, 2.0, 3.0])
    >>> bool(np.isclose(logsumexp(x), np.log(np.sum(np.exp(x)))))
    True
    >>> dualad.grad(logsumexp, mode="reverse")(x).round(6)
    array([0.090031, 0.244728, 0.665241])
    """
    shift = _shift(a, axis)
    terms = np.exp(a - shift)
    if b is not None:
        terms = b * terms
    total = np.sum(terms, axis=axis, keepdims=True)
    out = np.log(total) + shift
    if not keepdims:
        out = np.squeeze(out, axis=axis) if axis is not None else np.reshape(out, ())
    return out


def softmax(x, axis=None):
    """``exp(x) / sum(exp(x))`` along ``axis``, stable and differentiable.

    Parameters
    ----------
    x : array_like
        Input values (may be traced).
    axis : int or tuple of int, optional
        Axes to normalise over; all by default.

    Returns
    -------
    ndarray
        The softmax, same shape as ``x``.

    See Also
    --------
    logsumexp, log_softmax

    Examples
    --------
    >>> import numpy as np
    >>> from dualad.special import softmax
    >>> softmax(np.array([1.0, 2.0, 3.0])).round(6)
    array([0.090031, 0.244728, 0.665241])
    """
    return np.exp(x - logsumexp(x, axis=axis, keepdims=True))


def log_softmax(x, axis=None):
    """``x - logsumexp(x)`` along ``axis``, stable and differentiable.

    Parameters
    ----------
    x : array_like
        Input values (may be traced).
    axis : int or tuple of int, optional
        Axes to normalise over; all by default.

    Returns
    -------
    ndarray
        The log-softmax, same shape as ``x``.

    See Also
    --------
    logsumexp, softmax

    Examples
    --------
    >>> import numpy as np
    >>> from dualad.special import log_softmax
    >>> log_softmax(np.array([1.0, 2.0, 3.0])).round(6)
    array([-2.407606, -1.407606, -0.407606])
    """
    return x - logsumexp(x, axis=axis, keepdims=True)
