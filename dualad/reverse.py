"""Reverse-mode engine: record one evaluation on a tape, then sweep it backwards.

Design note
-----------
This module owns the reverse sweep's entry points: it turns an input into a traced
value (:class:`dualad._tape.RArray`) on a fresh :class:`dualad._tape.Tape`, calls
``fun`` once, reads the output's value and node, and returns a pullback that sweeps the
tape for any cotangent (several times on one recording if asked).  The public transforms
in :mod:`dualad.api` are a few lines over :func:`vjp` and :func:`value_and_grad` (the
gradient of a scalar function: the same recording and sweep seeded with 1.0, without
the pullback's checks of a general cotangent).

Cost: one evaluation of ``fun`` that records, plus one sweep per cotangent, each a small
constant times the evaluation, whatever the number of inputs.

A recording can also be kept for Hessian-vector products at its point (issue 6):
:func:`record` and :func:`value_grad_recording` record with ``Tape.replay`` set, and
:meth:`Recording.grad_hvp` replays the tape (``hvp_replay`` in ``dualad/_tape.pyx``),
about the cost of one more gradient sweep per product and no new evaluation of ``fun``.
"""

import numpy as np

from . import _memory, _tape
from ._array import DualArray, from_dual
from ._errors import complex_input
from ._scalar import Dual
from ._tags import new_tag
from .forward import as_input
from .rules import vjps as _vjps  # noqa: F401  (registers the reverse rules)

__all__ = ["Recording", "jacobian", "record", "value_and_grad", "value_grad_recording",
           "vjp"]

_MODE = "reverse"
_ONE = np.float64(1.0)  # the seed of a scalar output (what pullback(1.0) sweeps)


def _seed(x, tape):
    """The traced input: a copy of x (or an enclosing level's tracer) as a leaf."""
    if type(x) is Dual:
        x = from_dual(x)
    elif type(x) is _tape.RScalar:
        x = _tape._as_rarray(x)
    value = x.copy()
    node = tape.leaf(tuple(value.shape))
    return _tape.wrap(tape, value, node), node


def _output(out, tape):
    """``(value, node)`` of fun's output on ``tape``: node -1 for a constant output."""
    if type(out) is _tape.RArray and out.tape is tape and type(out.value) is np.ndarray:
        return out.value.astype(np.float64, copy=False), out.node  # (the common case)
    if out is None:
        raise TypeError("the differentiated function returned None; it must return a "
                        "number or an array (is a `return` missing?)")
    if isinstance(out, (list, tuple)) or (isinstance(out, np.ndarray) and out.dtype == object):
        out = _tape.stack_objects(out)
    if isinstance(out, _tape.RScalar) and out.tape is tape:
        return np.float64(out.value), out.node
    if isinstance(out, _tape.RArray) and out.tape is tape:
        value = out.value
        if type(value) is np.ndarray:
            value = value.astype(np.float64, copy=False)
        return value, out.node
    if isinstance(out, (_tape.RArray, _tape.RScalar, Dual, DualArray)):
        return out, -1  # a value of an enclosing level: constant here
    if isinstance(out, complex) or np.iscomplexobj(out):
        raise TypeError(complex_input(_MODE))
    try:
        return np.asarray(out, dtype=np.float64), -1
    except (TypeError, ValueError):
        raise TypeError("the differentiated function must return a number or an array "
                        f"of numbers, not {type(out).__name__}") from None


def _plain_out(g):
    if type(g) is np.ndarray:
        # (ascontiguousarray would make a 0-d gradient 1-d)
        return np.array(g, dtype=np.float64, order="C", copy=None)
    return g


def vjp(fun, x, args=()):
    """Record ``fun(x, *args)``; return ``(value, pullback)``; see :func:`dualad.vjp`."""
    x = as_input(x, _MODE)
    tape = _tape.Tape(new_tag())
    rx, xnode = _seed(x, tape)
    out = fun(rx, *args)
    value, onode = _output(out, tape)
    shape = tuple(x.shape)
    out_shape = tuple(np.shape(value)) if not hasattr(value, "tangent") else value.shape

    def pullback(cotangent):
        if isinstance(cotangent, complex) or np.iscomplexobj(cotangent):
            raise TypeError(complex_input(_MODE))
        if not hasattr(cotangent, "tangent") and not isinstance(
                cotangent, (_tape.RArray, _tape.RScalar, Dual)):
            cotangent = np.asarray(cotangent, dtype=np.float64)
        if tuple(np.shape(_tape.primal(cotangent))) != out_shape:
            raise ValueError(f"the cotangent must have the output's shape {out_shape}, got "
                             f"{np.shape(_tape.primal(cotangent))}")
        if onode < 0:
            return np.zeros(shape)
        (g,) = tape.backward(onode, cotangent if out_shape else
                             (cotangent[()] if type(cotangent) is np.ndarray else cotangent),
                             [xnode])
        if g is None:
            return np.zeros(shape)
        if np.isscalar(g):
            g = np.full(shape, g)
        return _plain_out(g)
    return value, pullback


def value_and_grad(fun, x, args=()):
    """``(fun(x, *args), gradient)`` of a scalar function: one recording, one sweep.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args)`` written with NumPy.
    x : array_like
        The point (or a tracer of an enclosing differentiation).
    args : tuple, optional
        Extra arguments passed to ``fun`` unchanged.

    Returns
    -------
    value : numpy.float64, ndarray or tracer
        ``fun(x, *args)``: a NumPy float (a tracer when nested in another
        differentiation; an array when it is not a scalar).
    gradient : ndarray, tracer or None
        The gradient, float64 of ``x``'s shape (a tracer when nested in another
        differentiation); None when ``value`` is not a scalar, which the caller reports.

    Notes
    -----
    The same numbers as ``value, pullback = vjp(fun, x, args); pullback(1.0)``, without
    the pullback closure and its checks of a general cotangent.

    Examples
    --------
    >>> from dualad import reverse
    >>> value, g = reverse.value_and_grad(lambda x: np.sum(x ** 2), np.array([1.0, 2.0]))
    >>> float(value), g
    (5.0, array([2., 4.]))
    """
    x = as_input(x, _MODE)
    tape = _tape.Tape(new_tag())
    if type(x) is np.ndarray:
        # x itself, not a copy (vjp copies: its pullback outlives the call): reverse mode
        # never writes into a traced value (item assignment records a new one), and the
        # tape is gone when this returns
        if not x.flags.c_contiguous:
            x = x.copy()  # (a strided view: the fast paths want contiguous values)
        xnode = tape.leaf(tuple(x.shape))
        rx = _tape.wrap(tape, x, xnode)
    elif type(x) is DualArray:
        # forward-over-reverse (hvp, Hessians): x carries the outer sweep's lanes; for
        # the same reason not copied (for k Hessian columns the lanes are k times x)
        xnode = tape.leaf(tuple(x.shape))
        rx = _tape.wrap(tape, x, xnode)
    else:
        rx, xnode = _seed(x, tape)
    value, onode = _output(fun(rx, *args), tape)
    shape = getattr(value, "shape", None)
    if (np.shape(value) if shape is None else tuple(shape)) != ():
        return value, None
    if type(value) is np.ndarray:
        value = value[()]  # a NumPy float (never a view of x: fun may return x itself)
    if onode < 0:
        return value, np.zeros(tuple(x.shape))
    (g,) = tape.backward(onode, _ONE, [xnode])
    if type(g) is np.ndarray and g.base is None and g is not x and \
            g.dtype == np.float64 and g.flags.c_contiguous:
        return value, g  # (the common case: an adjoint buffer of the sweep's own)
    if g is None:
        return value, np.zeros(tuple(x.shape))
    if np.isscalar(g):
        g = np.full(tuple(x.shape), g)
    g = _plain_out(g)
    if type(g) is np.ndarray and (g is x or g.base is not None
                                  and np.may_share_memory(g, x)):
        g = g.copy()  # (no rule returns its input as a cotangent; make sure of it)
    elif type(g) is DualArray and type(x) is DualArray and (
            g is x or _shares(g.value, x.value) or _shares(g.tangent, x.tangent)):
        g = g.copy()  # (x was not copied either: as above)
    return value, g


def _shares(a, b):
    return type(a) is np.ndarray and type(b) is np.ndarray and np.may_share_memory(a, b)


def jacobian(fun, x, args=()):
    """``(value, J)`` from one recording and one sweep per output element."""
    value, pullback = vjp(fun, x, args)
    x_shape = tuple(np.shape(_tape.primal(x))) if not hasattr(x, "shape") else tuple(
        x.shape)
    out_shape = tuple(np.shape(_tape.primal(value)))
    m = int(np.prod(out_shape)) if out_shape else 1
    rows = []
    for i in range(m):
        e = np.zeros(m)
        e[i] = 1.0
        rows.append(pullback(e.reshape(out_shape)))
    if not rows:
        return value, np.zeros(out_shape + x_shape)
    jac = np.stack(rows)
    return value, np.reshape(jac, out_shape + x_shape)


class Recording:
    """The tape of one gradient evaluation, kept for Hessian-vector products at that
    point (see :func:`value_grad_recording`).

    Parameters
    ----------
    tape : dualad._tape.Tape
        The recording (made with ``tape.replay`` set).
    out, xnode : int
        The output node and the input leaf.
    shape : tuple
        The input's shape.

    Examples
    --------
    >>> from dualad import reverse
    >>> _, _, rec = reverse.value_grad_recording(lambda x: np.sum(x ** 3),
    ...                                          np.array([1.0, 2.0]))
    >>> rec.hvp(np.array([1.0, 0.0]))
    array([6., 0.])
    """

    __slots__ = ("out", "shape", "tape", "xnode")

    def __init__(self, tape, out, xnode, shape):
        self.tape = tape
        self.out = out
        self.xnode = xnode
        self.shape = shape

    def hvp(self, v):
        """``H v`` at the recorded point by replaying the tape (no evaluation of the
        function), or None where the replay cannot give it (the caller then computes
        the product another way, e.g. :func:`dualad.second.value_grad_hvp`).

        Parameters
        ----------
        v : array_like
            The direction, of the input's shape.

        Returns
        -------
        ndarray or None
            The product, float64 of the input's shape.

        Raises
        ------
        ValueError
            If ``v`` does not have the input's shape.
        """
        r = self.grad_hvp(v)
        return None if r is None else r[1]

    def grad_hvp(self, v):
        """``(gradient, H v)`` at the recorded point from one replay (see :meth:`hvp`);
        the gradient equals :func:`value_and_grad`'s to rounding.

        Parameters
        ----------
        v : array_like
            The direction, of the input's shape.

        Returns
        -------
        tuple or None
            Gradient and product, float64 arrays of the input's shape; None where the
            replay cannot give them.

        Raises
        ------
        ValueError
            If ``v`` does not have the input's shape.
        """
        # (not ascontiguousarray: it makes a 0-d direction 1-d)
        v = np.asarray(v, dtype=np.float64, order="C")
        if tuple(v.shape) != self.shape:
            raise ValueError(f"v must have the shape of x, {self.shape}, got "
                             f"{tuple(v.shape)}")
        # the sweeps' big buffers from the caching allocator (without it, fresh pages
        # for each: several times the replay's cost at n = 10^4)
        previous = _memory.cache_on()
        try:
            return _tape.hvp_replay(self.tape, self.out, self.xnode, v)
        finally:
            _memory.cache_off(previous)


def _recorded(fun, x, args):
    """``(value, tape, out, xnode)``: one replayable recording of ``fun`` at the plain
    float64 array ``x`` (C-contiguous; not copied)."""
    tape = _tape.Tape(new_tag())
    tape.replay = True
    xnode = tape.leaf(tuple(x.shape))
    value, onode = _output(fun(_tape.wrap(tape, x, xnode), *args), tape)
    return value, tape, onode, xnode


def _recording(tape, onode, xnode, shape):
    if onode < 0 or not _tape.replayable(tape, onode, xnode):
        return None
    return Recording(tape, onode, xnode, shape)


def record(fun, x, args=()):
    """``(value, recording)``: one evaluation of ``fun`` at the plain array ``x``,
    recorded for replays (:meth:`Recording.grad_hvp`), without a backward sweep.

    Parameters
    ----------
    fun : callable
        Scalar function ``fun(x, *args)``.
    x : ndarray
        The point: float64 and C-contiguous (not copied: do not write into it while
        the recording is used).
    args : tuple, optional
        Extra arguments.

    Returns
    -------
    tuple
        The value (a NumPy float; an array when it is not a scalar) and the
        :class:`Recording`, or None when the tape cannot be replayed (see
        :func:`value_grad_recording`) or the value is not a scalar.

    Examples
    --------
    >>> from dualad import reverse
    >>> value, rec = reverse.record(lambda x: np.sum(np.exp(x)), np.zeros(2))
    >>> float(value), rec.grad_hvp(np.array([1.0, 2.0]))
    (2.0, (array([1., 1.]), array([1., 2.])))
    """
    value, tape, onode, xnode = _recorded(fun, x, args)
    if tuple(np.shape(value)) != ():
        return value, None
    if type(value) is np.ndarray:
        value = value[()]
    return value, _recording(tape, onode, xnode, tuple(x.shape))


def value_grad_recording(fun, x, args=()):
    """``(value, gradient, recording)``: :func:`value_and_grad` on a plain array ``x``
    that keeps the tape for Hessian-vector products at ``x`` (:meth:`Recording.hvp`).

    The same numbers as :func:`value_and_grad`.  ``recording`` is None when the tape
    cannot be replayed (scalar loops, array operations other than elementwise rules,
    basic slices, whole-array sums and means, C-order reshapes, broadcasting ``+``/``-``
    and matrix products with one traced operand): products then need their own pass.  ``x`` is
    copied (the tape keeps it).

    Parameters
    ----------
    fun : callable
        Scalar function ``fun(x, *args)``.
    x : ndarray
        The point (float64; not a tracer).
    args : tuple, optional
        Extra arguments.

    Returns
    -------
    tuple
        Value (numpy.float64), gradient (float64 of x's shape; None when the value is
        not a scalar) and the :class:`Recording` or None.

    Examples
    --------
    >>> from dualad import reverse
    >>> value, g, rec = reverse.value_grad_recording(lambda x: np.sum(x ** 3),
    ...                                              np.array([1.0, 2.0]))
    >>> g, rec.hvp(np.array([1.0, 1.0]))
    (array([ 3., 12.]), array([ 6., 12.]))
    """
    x = np.array(as_input(x, _MODE), dtype=np.float64, order="C")  # (a copy)
    value, tape, onode, xnode = _recorded(fun, x, args)
    if tuple(np.shape(value)) != ():
        return value, None, None
    if type(value) is np.ndarray:
        value = value[()]
    if onode < 0:
        return value, np.zeros(tuple(x.shape)), None
    (g,) = tape.backward(onode, _ONE, [xnode])
    if g is None:
        g = np.zeros(tuple(x.shape))
    elif np.isscalar(g):
        g = np.full(tuple(x.shape), g)
    g = _plain_out(g)
    if type(g) is not np.ndarray:
        return value, g, None
    if g is x or g.base is not None and np.may_share_memory(g, x):
        g = g.copy()
    return value, g, _recording(tape, onode, xnode, tuple(x.shape))
