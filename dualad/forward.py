"""Forward-mode engine: seed tracers, call the user's function, read the tangents back.

Design note
-----------
This module owns the forward sweep: turning an input ``x`` into a ``Dual``/``DualArray``
whose tangent lanes are chosen directions, calling ``fun`` once, and extracting the value
and the pushed-forward tangents from whatever ``fun`` returned (a Dual, a DualArray, an
object array of Duals, a list, or a constant).  The public transforms in
:mod:`dualad.api` are a few lines over :func:`push`, :func:`jvp` and :func:`jacobian`.

Chunking (ForwardDiff.jl's idea): an ``n``-input Jacobian takes ``ceil(n / k)`` sweeps of
``k`` lanes.  Up to ``CHUNK_THRESHOLD`` inputs go in one sweep; above that the chunk size
is the smallest that keeps the fewest sweeps (:func:`chunk_size`).
"""

import math

import numpy as np

from ._array import DualArray, from_dual, is_tracer, make, normalize, tag_of
from ._errors import complex_input, object_input
from ._scalar import Dual
from ._tags import new_tag

__all__ = ["CHUNK_THRESHOLD", "chunk_size", "as_input", "push", "jvp", "jacobian"]

#: Inputs up to this size are differentiated in a single sweep.
CHUNK_THRESHOLD = 12


def chunk_size(n, chunk=None):
    """The number of lanes per sweep for ``n`` inputs.

    Parameters
    ----------
    n : int
        Number of inputs.
    chunk : int, optional
        A requested chunk size, at least 1 (values above ``n`` are reduced to ``n``).

    Returns
    -------
    int
        ``n`` if ``n <= CHUNK_THRESHOLD``; otherwise ``ceil(n / c)`` with
        ``c = ceil(n / CHUNK_THRESHOLD)``: the smallest chunk that needs no more than
        the fewest possible sweeps (the last sweep takes what is left).

    Raises
    ------
    ValueError
        If ``chunk`` is less than 1.

    Examples
    --------
    >>> from dualad.forward import chunk_size
    >>> chunk_size(12), chunk_size(13), chunk_size(100), chunk_size(100, chunk=5)
    (12, 7, 12, 5)
    """
    if n <= 0:
        return 1
    if chunk is not None:
        chunk = int(chunk)
        if chunk < 1:
            raise ValueError(f"chunk must be a positive integer, got {chunk}")
        return min(chunk, n)
    if n <= CHUNK_THRESHOLD:
        return n
    sweeps = math.ceil(n / CHUNK_THRESHOLD)
    return math.ceil(n / sweeps)


def as_input(x, mode="forward"):
    """Validate and copy a differentiation input.

    Returns a float64 ndarray (integers and booleans promoted; each sweep copies it, so
    the caller's array is never modified), or the tracer itself when ``x`` belongs to an
    enclosing differentiation.

    Raises
    ------
    TypeError
        For complex input, or object arrays that do not hold dualad values.
    """
    if type(x) is np.ndarray and x.dtype == np.float64:
        return x  # the common case, checked first (a transform's call pays for this)
    if is_tracer(x):
        return x
    if isinstance(x, (list, tuple)) or (isinstance(x, np.ndarray) and x.dtype == object):
        x = normalize(x, mode)
        if is_tracer(x):
            return x
    if isinstance(x, complex) or np.iscomplexobj(x):
        raise TypeError(complex_input(mode))
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(object_input(mode) + f" Got {type(x).__name__}.") from None
    return arr


def _seed(x, tangent, tag):
    """The traced input: value ``x`` (array or older tracer) with the given lanes."""
    if type(x) is Dual:
        x = from_dual(x)
    elif not hasattr(x, "copy"):
        from ._tape import _as_rarray  # a reverse-mode scalar of an enclosing level
        x = _as_rarray(x)
    # Each sweep gets its own copy of x: item assignment inside fun then writes in place
    # (views see it, as in NumPy) without touching the caller's x or the next sweep's.
    return make(x.copy(), tangent, tag, True)


def extract(out, tag, k):
    """``(value, tangent)`` of a function's output at level ``tag``.

    ``tangent`` has shape ``(k,) + value.shape``; a constant output has a zero tangent.
    Values and tangents are float64 ndarrays, or tracers of an enclosing level.
    """
    if out is None:
        raise TypeError("the differentiated function returned None; it must return a "
                        "number or an array (is a `return` missing?)")
    if type(out) is not Dual and type(out) is not DualArray:
        out = normalize(out)
    if type(out) is Dual and out.tag == tag:
        return np.float64(out.value), out.partials
    if type(out) is DualArray and out.tag == tag:
        value, tangent = out.value, out.tangent
        if type(value) is np.ndarray:
            value = np.asarray(value, dtype=np.float64)
        if type(tangent) is np.ndarray:
            tangent = np.ascontiguousarray(tangent, dtype=np.float64)
        return value, tangent
    if type(out) is Dual or type(out) is DualArray:  # a value of an enclosing level
        return out, np.zeros((k,) + tuple(out.shape))
    if isinstance(out, complex) or np.iscomplexobj(out):
        raise TypeError(complex_input("forward"))
    try:
        value = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError("the differentiated function must return a number or an array "
                        f"of numbers, not {type(out).__name__}") from None
    return value, np.zeros((k,) + value.shape)


def push(fun, x, tangent, args=(), tag=None):
    """One forward sweep: ``fun(x + tangent * eps, *args)``.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args)``.
    x : ndarray or tracer
        The input (already validated by :func:`as_input`).
    tangent : ndarray, shape (k,) + x.shape
        The directions.
    args : tuple
        Extra arguments, passed unchanged.
    tag : int, optional
        The level; a fresh one by default.

    Returns
    -------
    value, tangent_out
        ``fun(x)`` and the ``k`` directional derivatives, shape ``(k,) + value.shape``.
    """
    tag = new_tag() if tag is None else tag
    out = fun(_seed(x, tangent, tag), *args)
    return extract(out, tag, tangent.shape[0])


def _shape_of(x):
    return tuple(x.shape)


def jvp(fun, x, v, args=()):
    """``(fun(x), J v)`` in one sweep; see :func:`dualad.jvp`."""
    x = as_input(x)
    v = as_input(v)
    if type(v) is not np.ndarray and tag_of((v,)) >= 0:
        vt = v
    else:
        vt = np.asarray(v, dtype=np.float64)
    if _shape_of(vt) != _shape_of(x):
        raise ValueError(f"the tangent v must have the shape of x, {_shape_of(x)}, got "
                         f"{_shape_of(vt)}")
    # a copy: the sweep owns its tangent storage and may write into it
    value, tangent = push(fun, x, np.reshape(vt, (1,) + _shape_of(x)).copy(), args)
    return value, tangent[0]


def _identity_lanes(shape, start, k):
    """Tangent lanes e_start, ..., e_{start+k-1} for an input of the given shape."""
    n = math.prod(shape)
    lanes = np.zeros((k, n))
    # lane i is e_(start + i): flat index i * n + start + i
    lanes.reshape(-1)[start::n + 1] = 1.0
    return lanes.reshape((k,) + tuple(shape))


def jacobian(fun, x, args=(), chunk=None):
    """The Jacobian of ``fun`` at ``x`` in ``ceil(n / k)`` forward sweeps.

    Returns ``(value, J)`` with ``J.shape == value.shape + x.shape``.
    """
    x = as_input(x)
    shape = _shape_of(x)
    n = math.prod(shape)
    k = chunk_size(n, chunk)
    value = None
    blocks = []
    for start in range(0, n, k):
        lanes = min(k, n - start)
        value, tangent = push(fun, x, _identity_lanes(shape, start, lanes), args)
        blocks.append(tangent)
    if n == 0:
        value, tangent = push(fun, x, np.zeros((0,) + shape), args)
        blocks.append(tangent)
    tangent = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=0)
    out_shape = _shape_of(value)
    if type(tangent) is np.ndarray:
        # lanes lead: (n,) + out_shape -> out_shape + x.shape.  For a vector function
        # of a vector that is the transpose: returned as a Fortran-ordered view of the
        # sweep's own tangent storage (no copy; LAPACK, which SciPy's least-squares
        # solvers call, wants that order anyway)
        m = math.prod(out_shape)
        jac = tangent.reshape(n, m).T
        return value, jac if len(out_shape) == 1 and len(shape) == 1 else \
            np.ascontiguousarray(jac).reshape(out_shape + shape)
    jac = np.moveaxis(tangent, 0, -1) if len(out_shape) else tangent
    return value, np.reshape(jac, out_shape + shape)
