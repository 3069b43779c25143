"""Reverse-mode rules for NumPy's structural, linear and reduction functions.

Design note
-----------
For a linear op the reverse rule is its transpose, and it also undoes broadcasting; for a
bilinear op (dot, matmul, einsum...) one transpose per traced operand; nonlinear
reductions (max, prod) use the partials the forward pass can compute.  Every VJP here is
written with NumPy calls, so when the values are forward-mode tracers (forward-over-
reverse Hessian-vector products) the cotangents are tracers too and the rule nests.

Functions that are compositions of other rules (``var``, ``std``, ``clip``, ``norm``,
``polyval``, ``hstack``, ``sort``, ``diff``...) are written once in
:mod:`dualad.rules.linear` in a mode-neutral way and registered for both modes there;
this module holds the rules that need a transpose.  Every rule is tested for adjointness
against its forward rule: ``<u, J v> == <J^T u, v>``.

Selections (``take``, ``diagonal``, ``repeat``, ``tile``, fancy indexing...) share one
transpose: the op applied to ``arange(size)`` gives, for every output element, the flat
input index it copies (:func:`_gather`), and the VJP adds the cotangent back there
(:func:`_scatter_add`).  With a plain cotangent that is one ``bincount``; with a traced
cotangent (nested derivatives) it is a gather from a padded table, so the transpose is
itself made of differentiable NumPy calls.
"""

import math

import numpy as np

from .. import _tape
from .._array import DualArray, as_value, make as _make, normalize as _normalize, \
    scale as _scale
from .._errors import tracer_index
from .linear import _resolve_order
from .registry import register

__all__ = []

_MODE = "reverse"


def _tape_of(objs):
    """The tape of the newest reverse tracer among ``objs`` (lists searched), or None."""
    best, tag = None, -1
    for o in objs:
        if isinstance(o, (_tape.RArray, _tape.RScalar)):
            if o.tag > tag:
                best, tag = o.tape, o.tag
        elif isinstance(o, (list, tuple)):
            t = _tape_of(o)
            if t is not None and t.tag > tag:
                best, tag = t, t.tag
    return best


def _parts(x, tape):
    """``(value, node)`` of x on tape: value an array (or forward tracer); node -1 if
    constant."""
    kind = type(x)
    if kind is _tape.RArray and x.tape is tape and type(x.value) is np.ndarray:
        return x.value, x.node  # the common cases first: no normalization to do
    if kind is np.ndarray and x.dtype == np.float64:
        return x, -1
    if isinstance(x, _tape.RScalar) and x.tape is tape:
        return np.array(x.value), x.node
    if isinstance(x, (list, tuple)) or (isinstance(x, np.ndarray) and x.dtype == object):
        x = _tape.stack_objects(x)
    value, node = _tape.split(x, tape)
    if isinstance(value, _tape.RScalar):
        value = _tape._as_rarray(value)
    return as_value(_normalize(value, _MODE)), node


def _norm_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < max(ndim, 1):
            raise np.exceptions.AxisError(a, ndim)
        out.append(a % ndim if ndim else 0)
    return tuple(out)


def _unary(a, forward, backward):
    """A linear op of one operand: ``forward`` on the value, ``backward`` on cotangents."""
    tape = _tape_of((a,))
    value, node = _parts(a, tape)
    out = forward(value)
    if node < 0:
        return out
    shape = tuple(value.shape)
    return _tape.record(tape, out, [node], lambda cot: [backward(cot, shape)])


def _reject(name, out=None, **extra):
    if out is not None:
        raise TypeError(f"numpy.{name}: out= is not supported for dualad values")
    bad = [k for k, v in extra.items() if v is not None and v is not np._NoValue]
    if bad:
        raise TypeError(f"numpy.{name}: the argument(s) {bad} are not supported in "
                        "reverse mode")


def _check_dtype(name, dtype):
    if dtype is not None and np.dtype(dtype) != np.float64:
        raise TypeError(f"numpy.{name}: dualad computes in float64; dtype={dtype!r} is "
                        "not supported")


def _is_plain(x):
    """Whether a cotangent is a plain number/array (not a tracer of an enclosing level)."""
    return type(x) is np.ndarray or isinstance(x, (float, int, np.generic))


def _scatter_add(cot, idx, size):
    """The transpose of a gather: ``out[j] = sum(cot[k] for k with idx[k] == j)``.

    ``cot`` and ``idx`` are flat, of one length; ``idx`` holds plain flat indices into an
    array of ``size`` elements (negative entries: output elements that copy nothing,
    skipped).  Returns a flat array of ``size`` elements.
    """
    idx = np.asarray(idx, dtype=np.intp).reshape(-1)
    keep = idx >= 0
    if _is_plain(cot):
        cot = np.reshape(np.asarray(cot, dtype=np.float64), (-1,))
        if not keep.all():
            idx, cot = idx[keep], cot[keep]
        return np.bincount(idx, weights=cot, minlength=size).astype(np.float64)
    # a traced cotangent: gather every element's contributions into a padded table
    # (the pad points at an appended zero) and sum its rows; only gathers and a sum,
    # so the level that traces the cotangent differentiates it.
    m = idx.size
    src = np.nonzero(keep)[0]
    tgt = idx[keep]
    counts = np.bincount(tgt, minlength=size)
    width = int(counts.max()) if counts.size else 0
    if width == 0:
        return np.zeros(size)
    order = np.argsort(tgt, kind="stable")
    starts = np.cumsum(counts) - counts
    rank = np.arange(tgt.size) - np.repeat(starts, counts)
    table = np.full((size, width), m, dtype=np.intp)
    table[tgt[order], rank] = src[order]
    padded = np.concatenate([np.reshape(cot, (-1,)), np.zeros(1)])
    if width == 1:
        return padded[table[:, 0]]
    return np.sum(padded[table], axis=1)


def _gather(a, fn, zeros=False):
    """A selection ``fn`` (each output element copies one input element, or is 0 when
    ``zeros``): ``fn`` on the value; the transpose scatters the cotangent back."""
    tape = _tape_of((a,))
    value, node = _parts(a, tape)
    out = fn(value)
    if node < 0:
        return out
    shape = tuple(value.shape)
    size = math.prod(shape)
    off = 1 if zeros else 0  # with zeros, 0 in the probe's image means "copies nothing"
    idx = np.asarray(fn(np.arange(off, size + off).reshape(shape))) - off

    def vjp(cot):
        return [np.reshape(_scatter_add(cot, idx, size), shape)]
    return _tape.record(tape, out, [node], vjp)


# -- indexing ---------------------------------------------------------------------------------

def _check_key(key):
    keys = key if isinstance(key, tuple) else (key,)
    for k in keys:
        if _tape.tag_of((k,)) >= 0:
            raise TypeError(tracer_index(type(k).__name__))


def _scalar_index(key, shape):
    """The flat index if ``key`` picks one element with plain integers, else None."""
    keys = key if isinstance(key, tuple) else (key,)
    if len(keys) != len(shape):
        return None
    flat = 0
    for k, n in zip(keys, shape):
        if not isinstance(k, (int, np.integer)) or isinstance(k, (bool, np.bool_)):
            return None
        k = int(k)
        if not -n <= k < n:
            raise IndexError(f"index {k} is out of bounds for axis with size {n}")
        flat = flat * n + (k % n)
    return flat


def _has_fancy(key):
    keys = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, (list, np.ndarray)) and np.asarray(k).dtype != bool
               for k in keys)


def _place(cot, key, shape):
    """Zeros of ``shape`` with the DualArray ``cot`` written at a basic ``key``: the
    transpose of a basic selection, for a forward tracer cotangent (no repeats)."""
    tangent = cot.tangent
    value = np.zeros(shape)
    value[key] = cot.value
    lanes = np.zeros((tangent.shape[0],) + shape)
    lanes[(slice(None),) + (key if isinstance(key, tuple) else (key,))] = tangent
    return _make(value, lanes, cot.tag, True)


@register(_tape._getitem, mode=_MODE)
def _getitem(a, key):
    _check_key(key)
    if isinstance(key, list):
        key = np.asarray(key)
    tape = a.tape
    value, node = a.value, a.node
    if type(value) is np.ndarray:
        flat = _scalar_index(key, value.shape)
        if flat is not None:
            # one element of a plain array: a scalar node the C sweep handles
            return _tape.element(tape, value, node, flat)
    out = value[key]
    shape = tuple(value.shape)
    fancy = _has_fancy(key)

    def vjp(cot):
        if _is_plain(cot):
            if not fancy:
                # no repeated positions: the sweep adds cot into the parent's adjoint
                # in place (no mostly-zero array of the full shape per slice)
                return [_tape.Scatter(key, cot)]
            z = np.zeros(shape)
            np.add.at(z, key, cot)  # repeated indices add up
            return [z]
        if not fancy and type(cot) is DualArray and type(cot.value) is np.ndarray:
            # forward-over-reverse (hvp, Hessians): place value and lanes directly
            return [_place(cot, key, shape)]
        # a traced cotangent (nested derivatives): scatter through the index map
        size = math.prod(shape)
        idx = np.arange(size).reshape(shape)[key]
        return [np.reshape(_scatter_add(cot, idx, size), shape)]
    return _tape.record(tape, out, [node], vjp)


def _lifted(base, item):
    """``base`` as a value that can hold ``item``: a plain array receiving a tracer of an
    enclosing level is lifted to that level first (a constant there)."""
    if type(base) is np.ndarray and not (type(item) is np.ndarray or np.isscalar(item)):
        return np.zeros_like(item, shape=base.shape) + base
    return base.copy()


@register(_tape._setitem, mode=_MODE)
def _setitem(a, key, item):
    _check_key(key)
    if isinstance(key, list):
        key = np.asarray(key)
    tape = _tape_of((a, item))
    av, anode = _parts(a, tape)
    if anode >= 0 and type(av) is np.ndarray and av.base is not None and \
            getattr(a, "view", None) is None:
        raise TypeError(
            "item assignment into a view of a traced array made by reshape, transpose "
            "or indexing with None/arrays is not supported in reverse mode: NumPy writes "
            "through to the array it views, which the tape follows only for views made "
            "by slicing (v = y[1:]). Assign through the original array, copy the view "
            "first (v = y.T.copy()), or use mode='forward'.")
    iv, inode = _parts(item, tape)
    new = _lifted(av, iv)
    new[key] = iv
    shape = tuple(av.shape)
    shape_i = tuple(np.shape(_tape.primal(new)[key]))
    item_shape = tuple(iv.shape)
    winners = None
    if _has_fancy(key):
        # repeated indices: the last write wins (as in NumPy), so only the item elements
        # that survive receive the cotangent
        probe = np.full(shape, -1, dtype=np.intp)
        probe[key] = np.arange(math.prod(shape_i)).reshape(shape_i)
        hit = np.zeros(math.prod(shape_i), dtype=bool)
        hit[probe[probe >= 0]] = True
        if not hit.all():
            winners = hit.reshape(shape_i)

    def vjp(cot):
        if _is_plain(cot):
            cot = np.asarray(cot, dtype=np.float64)
        ca = None
        if anode >= 0:
            ca = np.copy(cot)
            ca[key] = 0.0
        ci = None
        if inode >= 0:
            ci = np.reshape(cot[key], shape_i)
            if winners is not None:
                ci = np.where(winners, ci, 0.0)
            ci = _tape.unbroadcast(ci, item_shape)
        return [ca, ci]
    return _tape.record(tape, new, [anode, inode], vjp)


# -- shape manipulation -----------------------------------------------------------------------

@register(np.reshape, mode=_MODE)
def _reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    shape = newshape if shape is None else shape
    if order == "A":  # layout-dependent: follows the layout of the values, as in NumPy
        order = _resolve_order(a, order)
    if order not in ("C", "F"):
        raise ValueError(f"order must be one of 'C', 'F', 'A', got {order!r}")
    return _unary(a, lambda v: np.reshape(v, shape, order=order),
                  lambda c, s: np.reshape(c, s, order=order))


@register(np.ravel, mode=_MODE)
def _ravel(a, order="C"):
    if order not in ("C", "F", "A", "K"):
        raise ValueError(f"order must be one of 'C', 'F', 'A', 'K', got {order!r}")
    order = _resolve_order(a, order)
    if isinstance(order, np.ndarray):  # "K" on a strided array: a fixed permutation
        return _gather(a, lambda v: np.reshape(v, -1)[order])
    return _unary(a, lambda v: np.reshape(v, -1, order=order),
                  lambda c, s: np.reshape(c, s, order=order))


@register(np.transpose, mode=_MODE)
def _transpose(a, axes=None):
    tape = _tape_of((a,))
    nd = len(_parts(a, tape)[0].shape)
    perm = tuple(range(nd))[::-1] if axes is None else _norm_axes(axes, nd)
    inv = tuple(np.argsort(perm))
    return _unary(a, lambda v: np.transpose(v, perm), lambda c, s: np.transpose(c, inv))


@register(np.swapaxes, mode=_MODE)
def _swapaxes(a, axis1, axis2):
    return _unary(a, lambda v: np.swapaxes(v, axis1, axis2),
                  lambda c, s: np.swapaxes(c, axis1, axis2))


@register(np.moveaxis, mode=_MODE)
def _moveaxis(a, source, destination):
    return _unary(a, lambda v: np.moveaxis(v, source, destination),
                  lambda c, s: np.moveaxis(c, destination, source))


@register(np.expand_dims, mode=_MODE)
def _expand_dims(a, axis):
    return _unary(a, lambda v: np.expand_dims(v, axis), lambda c, s: np.reshape(c, s))


@register(np.squeeze, mode=_MODE)
def _squeeze(a, axis=None):
    return _unary(a, lambda v: np.squeeze(v, axis), lambda c, s: np.reshape(c, s))


@register(np.broadcast_to, mode=_MODE)
def _broadcast_to(array, shape, subok=False):
    return _unary(array, lambda v: np.broadcast_to(v, shape),
                  lambda c, s: _tape.unbroadcast(c, s))


@register(np.copy, mode=_MODE)
def _copy(a, order="K", subok=False):
    return _unary(a, lambda v: v.copy(), lambda c, s: c)


@register(np.flip, mode=_MODE)
def _flip(m, axis=None):
    return _unary(m, lambda v: np.flip(v, axis), lambda c, s: np.flip(c, axis))


@register(np.roll, mode=_MODE)
def _roll(a, shift, axis=None):
    neg = np.negative(shift) if not np.isscalar(shift) else -shift
    return _unary(a, lambda v: np.roll(v, shift, axis),
                  lambda c, s: np.roll(c, neg, axis))


# -- joining ---------------------------------------------------------------------------------

def _joined(arrays, join, split):
    tape = _tape_of(arrays)
    parts = [_parts(x, tape) for x in arrays]
    values = [p[0] for p in parts]
    nodes = [p[1] for p in parts]
    out = join(values)
    shapes = [tuple(v.shape) for v in values]
    return _tape.record(tape, out, nodes, lambda cot: split(cot, shapes))


@register(np.concatenate, mode=_MODE)
def _concatenate(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    _reject("concatenate", out)
    _check_dtype("concatenate", dtype)

    def split(cot, shapes):
        # slices, not np.split: a traced cotangent (nested derivatives) slices too
        if axis is None:
            flat = np.reshape(cot, (-1,))
            out, start = [], 0
            for s in shapes:
                n = math.prod(s)
                out.append(np.reshape(flat[start:start + n], s))
                start += n
            return out
        ax = axis % len(shapes[0])
        out, start = [], 0
        for s in shapes:
            out.append(cot[(slice(None),) * ax + (slice(start, start + s[ax]),)])
            start += s[ax]
        return out
    return _joined(list(arrays), lambda vs: np.concatenate(vs, axis=axis), split)


@register(np.stack, mode=_MODE)
def _stack(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    _reject("stack", out)
    _check_dtype("stack", dtype)
    arrays = list(arrays)

    def split(cot, shapes):
        ax = axis % (len(shapes[0]) + 1)
        return [np.take(cot, i, axis=ax) for i in range(len(shapes))]
    return _joined(arrays, lambda vs: np.stack(vs, axis=axis), split)


# -- selection -------------------------------------------------------------------------------

@register(np.where, mode=_MODE)
def _where(condition, x=None, y=None):
    cond = _tape.primal(condition)
    if x is None and y is None:
        return np.where(cond)
    if x is None or y is None:
        raise ValueError("either both or neither of x and y should be given")
    tape = _tape_of((x, y))
    xv, xn = _parts(x, tape)
    yv, yn = _parts(y, tape)
    out = np.where(cond, xv, yv)
    sx, sy = tuple(xv.shape), tuple(yv.shape)

    def vjp(cot):
        # the dead branch gets an exact zero (cot * 0 would be nan for an infinite cot)
        return [_tape.unbroadcast(np.where(cond, cot, 0.0), sx) if xn >= 0 else None,
                _tape.unbroadcast(np.where(cond, 0.0, cot), sy) if yn >= 0 else None]
    return _tape.record(tape, out, [xn, yn], vjp)


def _plain_indices(name, indices):
    if _tape.tag_of((indices,)) >= 0:
        raise TypeError(f"numpy.{name}: indices must be plain integers, not dualad values")
    return indices


@register(np.take, mode=_MODE)
def _take(a, indices, axis=None, out=None, mode="raise"):
    _reject("take", out)
    _plain_indices("take", indices)
    return _gather(a, lambda v: np.take(v, indices, axis=axis, mode=mode))


@register(np.take_along_axis, mode=_MODE)
def _take_along_axis(arr, indices, axis=-1):
    _plain_indices("take_along_axis", indices)
    return _gather(arr, lambda v: np.take_along_axis(v, indices, axis))


@register(np.diagonal, mode=_MODE)
def _diagonal(a, offset=0, axis1=0, axis2=1):
    return _gather(a, lambda v: np.diagonal(v, offset, axis1, axis2))


@register(np.trace, mode=_MODE)
def _trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    _reject("trace", out)
    _check_dtype("trace", dtype)
    return np.sum(_diagonal(a, offset, axis1, axis2), axis=-1)


@register(np.diag, mode=_MODE)
def _diag(v, k=0):
    # 1-d: builds a matrix with zeros off the diagonal; 2-d: extracts a diagonal
    return _gather(v, lambda u: np.diag(u, k), zeros=True)


def _triangle(m, k, fn):
    tape = _tape_of((m,))
    if len(_parts(m, tape)[0].shape) < 2:
        # a 1-d input is broadcast to a square matrix first: a selection with zeros
        return _gather(m, lambda u: fn(u, k), zeros=True)
    # a masked copy is its own transpose
    return _unary(m, lambda u: fn(u, k), lambda c, s: fn(c, k))


@register(np.triu, mode=_MODE)
def _triu(m, k=0):
    return _triangle(m, k, np.triu)


@register(np.tril, mode=_MODE)
def _tril(m, k=0):
    return _triangle(m, k, np.tril)


@register(np.repeat, mode=_MODE)
def _repeat(a, repeats, axis=None):
    _plain_indices("repeat", repeats)
    return _gather(a, lambda v: np.repeat(v, repeats, axis=axis))


@register(np.tile, mode=_MODE)
def _tile(A, reps):
    _plain_indices("tile", reps)
    return _gather(A, lambda v: np.tile(v, reps))


# -- reductions -------------------------------------------------------------------------------

def _expand(cot, axes, shape, keepdims):
    """Broadcast a reduction's cotangent back over the reduced axes."""
    if not keepdims and axes:
        # one reshape puts back every reduced axis (as length 1)
        cot = np.reshape(cot, tuple(1 if i in axes else n for i, n in enumerate(shape)))
    return np.broadcast_to(cot, shape)


@register(np.sum, mode=_MODE)
def _sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=np._NoValue,
         where=np._NoValue):
    _reject("sum", out, initial=initial, where=where)
    _check_dtype("sum", dtype)
    tape = _tape_of((a,))
    value, node = _parts(a, tape)
    axes = _norm_axes(axis, value.ndim)
    return _tape.record(tape, np.sum(value, axis=axes, keepdims=keepdims), [node],
                        lambda cot: [_expand(cot, axes, value.shape, keepdims)])


@register(np.mean, mode=_MODE)
def _mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=np._NoValue):
    _reject("mean", out, where=where)
    _check_dtype("mean", dtype)
    tape = _tape_of((a,))
    value, node = _parts(a, tape)
    axes = _norm_axes(axis, value.ndim)
    count = math.prod(value.shape[i] for i in axes)
    return _tape.record(tape, np.mean(value, axis=axes, keepdims=keepdims), [node],
                        lambda cot: [_expand(cot / count, axes, value.shape, keepdims)])


def _extreme(a, axis, keepdims, pick):
    tape = _tape_of((a,))
    value, node = _parts(a, tape)
    axes = _norm_axes(axis, value.ndim)
    out = pick(value, axis=axes, keepdims=keepdims)
    plain = _tape.primal(value)
    best = pick(plain, axis=axes, keepdims=True)
    mask = plain == best
    weight = mask / np.sum(mask, axis=axes, keepdims=True)  # ties share evenly
    return _tape.record(tape, out, [node],
                        lambda cot: [_expand(cot, axes, value.shape, keepdims) * weight])


@register(np.max, mode=_MODE)
def _max(a, axis=None, out=None, keepdims=False, initial=np._NoValue, where=np._NoValue):
    _reject("max", out, initial=initial, where=where)
    return _extreme(a, axis, keepdims, np.max)


@register(np.min, mode=_MODE)
def _min(a, axis=None, out=None, keepdims=False, initial=np._NoValue, where=np._NoValue):
    _reject("min", out, initial=initial, where=where)
    return _extreme(a, axis, keepdims, np.min)


if np.amax is not np.max:  # aliases in NumPy 2, separate functions in some versions
    register(np.amax, mode=_MODE)(_max)
    register(np.amin, mode=_MODE)(_min)


@register(np.prod, mode=_MODE)
def _prod(a, axis=None, dtype=None, out=None, keepdims=False, initial=np._NoValue,
          where=np._NoValue):
    _reject("prod", out, initial=initial, where=where)
    _check_dtype("prod", dtype)
    tape = _tape_of((a,))
    value, node = _parts(a, tape)
    axes = _norm_axes(axis, value.ndim)
    out_value = np.prod(value, axis=axes, keepdims=keepdims)
    # d prod / d a_j = prod_{i != j} a_i, without division (zeros are fine): move the
    # reduced axes last, flatten them, and take exclusive cumulative products both ways.
    moved = np.moveaxis(value, axes, tuple(range(-len(axes), 0)))
    lead = moved.shape[:moved.ndim - len(axes)]
    flat = np.reshape(moved, lead + (-1,))
    ones = np.ones_like(flat[..., :1])
    left = np.concatenate([ones, np.cumprod(flat[..., :-1], axis=-1)], axis=-1)
    right = np.flip(np.concatenate([ones, np.cumprod(np.flip(flat, -1)[..., :-1], axis=-1)],
                                   axis=-1), -1)
    others = np.moveaxis(np.reshape(left * right, moved.shape),
                         tuple(range(-len(axes), 0)), axes)
    return _tape.record(tape, out_value, [node],
                        lambda cot: [_expand(cot, axes, value.shape, keepdims) * others])


@register(np.cumsum, mode=_MODE)
def _cumsum(a, axis=None, dtype=None, out=None):
    _reject("cumsum", out)
    _check_dtype("cumsum", dtype)
    if axis is None:
        return _unary(a, lambda v: np.cumsum(np.reshape(v, -1)),
                      lambda c, s: np.reshape(np.flip(np.cumsum(np.flip(c))), s))
    return _unary(a, lambda v: np.cumsum(v, axis=axis),
                  lambda c, s: np.flip(np.cumsum(np.flip(c, axis), axis=axis), axis))


@register(np.cumprod, mode=_MODE)
def _cumprod(a, axis=None, dtype=None, out=None):
    _reject("cumprod", out)
    _check_dtype("cumprod", dtype)
    if axis is None:
        a = np.ravel(a)
        axis = 0
    tape = _tape_of((a,))
    value, node = _parts(a, tape)
    ax = _norm_axes(axis, value.ndim)[0]
    y = np.cumprod(value, axis=ax)
    if node < 0:
        return y
    plain = _tape.primal(value)
    zero = plain == 0

    def rcumsum(u):
        return np.flip(np.cumsum(np.flip(u, ax), axis=ax), ax)

    if not zero.any():
        # y_j = prod_{i<=j} a_i, so  g_i = sum_{j>=i} c_j y_j / a_i
        def vjp(cot):
            return [rcumsum(cot * y) / value]
        return _tape.record(tape, y, [node], vjp)
    # With zeros, no division by them.  Let z be a lane's first zero.  For i < z the
    # formula above holds (y_j = 0 for j >= z drops those terms, and a_i != 0); for
    # i = z, d y_j / d a_z = prod_{k<=j, k!=z} a_k, the cumulative product with a_z
    # replaced by 1; for i > z every term holds the factor a_z = 0.
    before = np.cumsum(zero, axis=ax) == 0
    first = zero & (np.cumsum(zero, axis=ax) == 1)
    safe = np.where(before, value, 1.0)
    y_skip = np.cumprod(np.where(first, 1.0, value), axis=ax)

    def vjp(cot):
        g_before = np.where(before, rcumsum(cot * y) / safe, 0.0)
        g_first = np.where(first, rcumsum(cot * y_skip), 0.0)
        return [g_before + g_first]
    return _tape.record(tape, y, [node], vjp)


@register(np.round, mode=_MODE)
def _round(a, decimals=0, out=None):
    _reject("round", out)
    tape = _tape_of((a,))
    value, node = _parts(a, tape)
    if node < 0:
        return np.round(value, decimals)
    # piecewise constant: derivative 0; a traced constant, so item assignment into the
    # result still records
    return _tape.constant(tape, np.round(value, decimals))


# -- products --------------------------------------------------------------------------------

def _bilinear(a, b, op, grad_a, grad_b):
    tape = _tape_of((a, b))
    av, an = _parts(a, tape)
    bv, bn = _parts(b, tape)
    out = op(av, bv)
    sa, sb = tuple(av.shape), tuple(bv.shape)

    def vjp(cot):
        return [_tape.unbroadcast(grad_a(cot, av, bv), sa) if an >= 0 else None,
                _tape.unbroadcast(grad_b(cot, av, bv), sb) if bn >= 0 else None]
    return _tape.record(tape, out, [an, bn], vjp)


def _mT(x):
    return x.T if type(x) is np.ndarray and x.ndim == 2 else np.swapaxes(x, -1, -2)


def _times(value, cot):
    """value * cot (broadcasting) where a zero on either side annihilates the other.

    Outer-product-like cotangents (no summation) can keep 0 * inf = 0, as elementwise
    rules do: sqrt(v @ v) at v = 0 then has gradient 0.  Inside a matrix product the
    sum mixes terms, and BLAS's 0 * inf = nan stands.
    """
    return _scale(value, cot)


def _matmul_ga(cot, a, b):
    if a.ndim == 1 and b.ndim == 1:
        return _times(b, cot)
    if b.ndim == 1:
        return _times(b, np.expand_dims(cot, -1))
    if a.ndim == 1:
        return np.matmul(b, np.expand_dims(cot, -1))[..., 0]
    return np.matmul(cot, _mT(b))


def _matmul_gb(cot, a, b):
    if a.ndim == 1 and b.ndim == 1:
        return _times(a, cot)
    if a.ndim == 1:
        return _times(np.expand_dims(a, -1), np.expand_dims(cot, -2))
    if b.ndim == 1:
        return np.matmul(_mT(a), np.expand_dims(cot, -1))[..., 0]
    return np.matmul(_mT(a), cot)


@register(np.matmul, mode=_MODE)
def _matmul(a, b, out=None, **kwargs):
    _reject("matmul", out)
    return _bilinear(a, b, np.matmul, _matmul_ga, _matmul_gb)


def _tensordot_axes(axes, na, nb):
    if isinstance(axes, (int, np.integer)):
        return list(range(na - axes, na)), list(range(axes))
    xa, xb = axes
    xa = [xa] if isinstance(xa, (int, np.integer)) else list(xa)
    xb = [xb] if isinstance(xb, (int, np.integer)) else list(xb)
    return [x % na for x in xa], [x % nb for x in xb]


def _tensordot_vjp(cot, a, b, xa, xb):
    """Cotangents of tensordot(a, b, (xa, xb)) from the output's cotangent."""
    fa = [i for i in range(a.ndim) if i not in xa]
    fb = [i for i in range(b.ndim) if i not in xb]
    nfa = len(fa)
    # cot axes: fa (as a's free axes) then fb
    ga = np.tensordot(cot, b, axes=(list(range(nfa, nfa + len(fb))), fb))
    # ga axes: fa, then b's contracted axes in increasing order; map to a's axes
    order_b = sorted(xb)
    a_axes = fa + [xa[xb.index(j)] for j in order_b]
    ga = np.transpose(ga, np.argsort(a_axes))
    gb = np.tensordot(a, cot, axes=(fa, list(range(nfa))))
    # gb axes: a's contracted axes in increasing order, then fb; map to b's axes
    order_a = sorted(xa)
    b_axes = [xb[xa.index(j)] for j in order_a] + fb
    gb = np.transpose(gb, np.argsort(b_axes))
    return ga, gb


@register(np.tensordot, mode=_MODE)
def _tensordot(a, b, axes=2):
    def op(u, w):
        return np.tensordot(u, w, axes)

    def ga(cot, u, w):
        xa, xb = _tensordot_axes(axes, u.ndim, w.ndim)
        return _tensordot_vjp(cot, u, w, xa, xb)[0]

    def gb(cot, u, w):
        xa, xb = _tensordot_axes(axes, u.ndim, w.ndim)
        return _tensordot_vjp(cot, u, w, xa, xb)[1]
    return _bilinear(a, b, op, ga, gb)


@register(np.dot, mode=_MODE)
def _dot(a, b, out=None):
    _reject("dot", out)

    def axes_of(u, w):
        return [u.ndim - 1], [max(w.ndim - 2, 0)]

    def op(u, w):
        if u.ndim == 0 or w.ndim == 0:
            return u * w
        return np.tensordot(u, w, axes=axes_of(u, w))

    def ga(cot, u, w):
        if u.ndim == 0 or w.ndim == 0:
            return cot * w
        return _tensordot_vjp(cot, u, w, *axes_of(u, w))[0]

    def gb(cot, u, w):
        if u.ndim == 0 or w.ndim == 0:
            return cot * u
        return _tensordot_vjp(cot, u, w, *axes_of(u, w))[1]
    return _bilinear(a, b, op, ga, gb)


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _einsum_explicit(spec, ndims):
    """Subscripts without ``...`` and with an explicit output, for operands of ``ndims``.

    The ellipsis stands for the broadcast axes, aligned on the right across operands;
    it becomes fresh letters.  An implicit output is NumPy's: the ellipsis axes, then
    the letters that occur once, in alphabetical (ASCII) order.
    """
    if "->" in spec:
        ins, out = spec.split("->")
    else:
        ins, out = spec, None
    in_specs = ins.split(",")
    if len(in_specs) != len(ndims):
        raise ValueError("numpy.einsum: the subscripts do not match the operands")
    used = set(spec)
    free = [c for c in _LETTERS if c not in used]
    nell = max([nd - (len(s) - 3) for s, nd in zip(in_specs, ndims) if "..." in s],
               default=0)
    if nell > len(free):
        raise ValueError("numpy.einsum: too many axes for the subscript letters")
    ell = "".join(free[:nell])
    specs = []
    for s, nd in zip(in_specs, ndims):
        if "..." in s:
            k = nd - (len(s) - 3)
            s = s.replace("...", ell[nell - k:] if k > 0 else "")
        specs.append(s)
    if out is None:
        letters = ins.replace(",", "").replace(".", "")
        out = ell + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    else:
        out = out.replace("...", ell)
    return specs, out


@register(np.einsum, mode=_MODE)
def _einsum(*operands, out=None, optimize=False, **kwargs):
    _reject("einsum", out, **{k: v for k, v in kwargs.items()
                             if k not in ("dtype", "order", "casting")})
    _check_dtype("einsum", kwargs.get("dtype"))
    if not operands or not isinstance(operands[0], str):
        raise TypeError("numpy.einsum: dualad supports the subscripts-string form only")
    spec = operands[0].replace(" ", "")
    args = operands[1:]
    tape = _tape_of(args)
    parts = [_parts(x, tape) for x in args]
    values = [p[0] for p in parts]
    nodes = [p[1] for p in parts]
    in_specs, out_spec = _einsum_explicit(spec, [v.ndim for v in values])
    out_value = np.einsum(f"{','.join(in_specs)}->{out_spec}", *values, optimize=optimize)
    sizes = {}
    for s, v in zip(in_specs, values):
        for c, n in zip(s, v.shape):
            sizes[c] = max(sizes.get(c, 1), n)  # size-1 axes broadcast
    spare = [c for c in _LETTERS if c not in "".join(in_specs) + out_spec]

    def grad(i, cot):
        # d out / d operand_i: the einsum of the cotangent with the other operands.
        # A letter repeated within operand i (a diagonal, "ii") gets a fresh letter per
        # extra occurrence, tied to the first by an identity matrix; a letter only
        # operand i has (summed over) is broadcast with ones.
        s = in_specs[i]
        target, eyes, fresh = [], [], iter(spare)
        for c in s:
            if c in target:
                f = next(fresh)
                eyes.append((c + f, np.eye(sizes[c])))
                target.append(f)
            else:
                target.append(c)
        target = "".join(target)
        others = [in_specs[j] for j in range(len(in_specs)) if j != i]
        ops = [values[j] for j in range(len(values)) if j != i]
        present = set(out_spec) | set("".join(others)) | set("".join(e for e, _ in eyes))
        missing = [c for c in dict.fromkeys(s) if c not in present]
        subs = [out_spec] + others + [e for e, _ in eyes] + missing
        res = np.einsum(",".join(subs) + "->" + target, cot, *ops,
                        *[m for _, m in eyes], *[np.ones(sizes[c]) for c in missing],
                        optimize=optimize)
        return _tape.unbroadcast(res, tuple(values[i].shape))

    def vjp(cot):
        return [grad(i, cot) if nodes[i] >= 0 else None for i in range(len(in_specs))]
    return _tape.record(tape, out_value, nodes, vjp)


# -- creation ---------------------------------------------------------------------------------

def _like(name):
    fn = getattr(np, name)

    def impl(a, *args, dtype=None, **kwargs):
        # A constant of the traced value's shape; traced (a leaf without derivative) so
        # that "allocate, then fill" records the item assignments.
        if dtype is not None and np.dtype(dtype) != np.float64:
            return fn(_tape.primal(a), *args, dtype=dtype, **kwargs)
        tape = _tape_of((a,))
        value, _ = _parts(a, tape)
        if name == "empty_like":
            fn2 = np.zeros_like  # an uninitialised value would be a silent wrong number
        else:
            fn2 = fn
        return _tape.constant(tape, fn2(_tape.primal(value), *args, **kwargs))
    register(fn, mode=_MODE)(impl)


for _name in ("zeros_like", "ones_like", "empty_like", "full_like"):
    _like(_name)
del _name


def _plain(func):
    def impl(*args, **kwargs):
        return func(*[_tape.primal(a) for a in args], **kwargs)
    register(func, mode=_MODE)(impl)


for _f in (np.argmax, np.argmin, np.argsort, np.nonzero, np.count_nonzero, np.isclose,
           np.allclose, np.array_equal, np.shape, np.ndim, np.size, np.iscomplexobj,
           np.isrealobj, np.any, np.all, np.searchsorted, np.argwhere, np.flatnonzero):
    _plain(_f)
del _f
