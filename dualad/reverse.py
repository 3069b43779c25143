"""Reverse-mode engine: record one evaluation on a tape, then sweep it backwards.

Design note
-----------
This module owns the reverse sweep's entry points: it turns an input into a traced
value (:class:`dualad._tape.RArray`) on a fresh :class:`dualad._tape.Tape`, calls
``fun`` once, reads the output's value and node, and returns a pullback that sweeps the
tape for any cotangent (several times on one recording if asked).  The public transforms
in :mod:`dualad.api` are a few lines over :func:`vjp`.

Cost: one evaluation of ``fun`` that records, plus one sweep per cotangent, each a small
constant times the evaluation, whatever the number of inputs.
"""

import numpy as np

from . import _tape
from ._array import DualArray, from_dual
from ._errors import complex_input
from ._scalar import Dual
from ._tags import new_tag
from .forward import as_input
from .rules import vjps as _vjps  # noqa: F401  (registers the reverse rules)

__all__ = ["vjp", "jacobian"]

_MODE = "reverse"


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
    jac = np.stack(rows) if type(rows[0]) is np.ndarray else np.stack(rows)
    return value, np.reshape(jac, out_shape + x_shape)
