"""Rules for NumPy's structural, linear and reduction functions (forward mode).

Design note
-----------
For a linear or structural op ``L`` (reshape, transpose, indexing, sum, concatenate...)
the tangent rule is ``L`` itself, applied to the tangent stack: the lane axis leads, so
an op on value axis ``a`` acts on tangent axis ``a + 1``.  Bilinear ops (dot, matmul,
einsum, tensordot...) apply the product rule, one term per traced operand.  Nonlinear
reductions (max, prod, var, norm, sort...) are written with their selection masks or as
compositions of rules that already exist, so they nest for higher order.

Every function here receives NumPy's arguments with tracers among them (``Dual``,
``DualArray``, or arrays/lists of them) and returns the traced result.  Plain arguments
are constants.  Arguments this module does not support (``out=``, ``where=``...) raise
``TypeError`` rather than being ignored.

Compositions (``var``, ``std``, ``clip``, ``sort``, ``norm``, ``polyval``, ``hstack``,
``diff``, ``inner``, ``outer``...) are written once, mode-neutrally: NumPy calls on the
operands plus :func:`_operand`/``primal``/``is_tracer``, which accept the tracers of
every mode.  They are registered for both modes (:func:`_both`), so the reverse mode
differentiates exactly the code forward mode does.  The transposes of the genuinely
linear ops live in :mod:`dualad.rules.vjps`.
"""

import numpy as np

from .. import _tape
from .._array import (DualArray, as_value, as_view_of, foreign_tag, is_tracer, lift, make, normalize,
                      primal, split, tag_of, wrap)
from .._errors import NoRuleError, unsupported_function
from .registry import register

__all__ = []

_MODE = "forward"


def _both(func):
    """Decorator: register a mode-neutral composition for forward and reverse mode."""
    def deco(impl):
        register(func)(impl)
        register(func, mode="reverse")(impl)
        return impl
    return deco


def _mode_of(*objs):
    """The mode of the newest tracer among ``objs`` (for error messages)."""
    return "reverse" if foreign_tag(objs) > tag_of(objs) else "forward"


def _operand(x):
    """An operand of a composition, in any mode.

    Lists and object arrays holding reverse-mode values become one traced array (forward
    tracers: :func:`normalize` does the same); everything else is ``normalize(x)``.
    """
    if isinstance(x, (list, tuple)) or (isinstance(x, np.ndarray) and x.dtype == object):
        flat = list(x.ravel()) if isinstance(x, np.ndarray) else x
        if _tape.tag_of((flat,)) > tag_of((flat,)):
            return _tape.stack_objects(x)
    return normalize(x)


# -- helpers -------------------------------------------------------------------------------

def _parts(x):
    """``(value, tangent, tag)`` of one operand; tangent None if it is a constant."""
    x = normalize(x)
    tag = tag_of((x,))
    if tag < 0:
        return x, None, -1
    v, t = split(x, tag)
    return as_value(v), t, tag


def _lanes(t):
    return t.shape[0]


def _norm_axis(axis, ndim):
    """Normalize an axis or tuple of axes for an array of ``ndim`` dims (tuple or None)."""
    if axis is None:
        return None
    axes = (axis,) if np.isscalar(axis) or isinstance(axis, (int, np.integer)) else axis
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < max(ndim, 1):
            raise np.exceptions.AxisError(a, ndim)
        out.append(a % ndim if ndim else 0)
    return tuple(out)


def _shift(axes):
    return tuple(a + 1 for a in axes)


def _reject(name, out=None, mode=_MODE, **extra):
    if out is not None:
        raise TypeError(f"numpy.{name}: out= is not supported for dualad values; "
                        "assign the result instead")
    bad = [k for k, v in extra.items() if v is not None and v is not np._NoValue]
    if bad:
        raise TypeError(f"numpy.{name}: the argument(s) {bad} are not supported in "
                        f"{mode} mode")


def _check_dtype(name, dtype):
    if dtype is not None and np.dtype(dtype) != np.float64:
        raise TypeError(f"numpy.{name}: dualad computes in float64; dtype={dtype!r} "
                        "is not supported")


def _per_lane(fn, t):
    """Apply a linear function to each tangent lane (the general tangent rule)."""
    return np.stack([fn(t[i]) for i in range(t.shape[0])])


def _unary_linear(x, fv, ft=None):
    """A linear op of one array: ``fv`` on the value, ``ft`` (or per lane) on the tangent."""
    v, t, tag = _parts(x)
    value = fv(v)
    if t is None:
        return value
    tangent = ft(t) if ft is not None else _per_lane(fv, t)
    # a view (reshape, transpose...) writes through to x, as in NumPy
    return as_view_of(wrap(value, tangent, tag), x)


def _common(arrays):
    """Lift a sequence of operands to the newest level among them."""
    arrays = [normalize(a) for a in arrays]
    tag = tag_of(arrays)
    k = None
    for a in arrays:
        v, t = split(a, tag)
        if t is not None:
            k = t.shape[0]
            break
    return [lift(a, tag, k) for a in arrays], tag


def _shape(v):
    return v.shape if type(v) is DualArray else np.shape(v)


# -- shape manipulation ----------------------------------------------------------------------

def _resolve_order(a, order):
    """NumPy's layout-dependent orders, resolved from the layout of the primal values.

    ``"A"`` means Fortran order for a Fortran-contiguous array and C order otherwise;
    ``"K"`` (ravel only) means memory order.  Returns ``"C"``, ``"F"``, or for ``"K"`` on
    a general strided array an index array: the C-order positions in memory order.
    """
    if order in ("A", "K"):
        p = primal(normalize(a))
        if not isinstance(p, np.ndarray) or p.flags.c_contiguous:
            return "C"
        if np.isfortran(p) or (order == "A" and p.flags.f_contiguous):
            return "F"
        if order == "A":
            return "C"
        # empty_like keeps the axis order of p's strides, so its memory order is p's
        idx = np.empty_like(p, dtype=np.intp)
        idx[...] = np.arange(p.size).reshape(p.shape)
        return idx.ravel("K")
    return order


@register(np.reshape)
def _reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    shape = newshape if shape is None else shape
    if order == "A":
        order = _resolve_order(a, order)
    if order != "C":
        return _unary_linear(a, lambda u: np.reshape(u, shape, order=order))

    def ft(t):
        return t.reshape((t.shape[0],) + np.reshape(np.empty(_shape(v), bool), shape).shape)
    v, _, _ = _parts(a)
    return _unary_linear(a, lambda u: np.reshape(u, shape), ft)


@register(np.ravel)
def _ravel(a, order="C"):
    order = _resolve_order(a, order)
    if isinstance(order, np.ndarray):  # "K" on a strided array: a fixed permutation
        return _take(_ravel(a), order)
    if order != "C":
        return _unary_linear(a, lambda u: np.ravel(u, order=order))
    return _unary_linear(a, lambda u: np.reshape(u, -1),
                         lambda t: t.reshape(t.shape[0], -1))


@register(np.transpose)
def _transpose(a, axes=None):
    nd = len(_shape(_parts(a)[0]))
    perm = tuple(range(nd))[::-1] if axes is None else _norm_axis(axes, nd)
    return _unary_linear(a, lambda u: np.transpose(u, perm),
                         lambda t: np.transpose(t, (0,) + _shift(perm)))


@register(np.swapaxes)
def _swapaxes(a, axis1, axis2):
    nd = len(_shape(_parts(a)[0]))
    a1, a2 = _norm_axis((axis1, axis2), nd)
    return _unary_linear(a, lambda u: np.swapaxes(u, a1, a2),
                         lambda t: np.swapaxes(t, a1 + 1, a2 + 1))


@register(np.moveaxis)
def _moveaxis(a, source, destination):
    nd = len(_shape(_parts(a)[0]))
    src, dst = _norm_axis(source, nd), _norm_axis(destination, nd)
    return _unary_linear(a, lambda u: np.moveaxis(u, src, dst),
                         lambda t: np.moveaxis(t, _shift(src), _shift(dst)))


@register(np.expand_dims)
def _expand_dims(a, axis):
    nd = len(_shape(_parts(a)[0]))
    axes = _norm_axis(axis, nd + (1 if np.isscalar(axis) else len(axis)))
    return _unary_linear(a, lambda u: np.expand_dims(u, axes),
                         lambda t: np.expand_dims(t, _shift(axes)))


@register(np.squeeze)
def _squeeze(a, axis=None):
    v = _parts(a)[0]
    out_shape = np.squeeze(np.empty(_shape(v), bool), axis).shape
    return _unary_linear(a, lambda u: np.squeeze(u, axis),
                         lambda t: t.reshape((t.shape[0],) + out_shape))


@_both(np.atleast_1d)
def _atleast_1d(*arys):
    res = []
    for a in arys:
        a = _operand(a)
        res.append(np.reshape(a, (1,)) if np.ndim(primal(a)) == 0 else a)
    return res[0] if len(res) == 1 else res


@_both(np.atleast_2d)
def _atleast_2d(*arys):
    res = []
    for a in arys:
        a = _operand(a)
        nd = np.ndim(primal(a))
        res.append(np.reshape(a, (1, 1)) if nd == 0 else
                   np.reshape(a, (1, -1)) if nd == 1 else a)
    return res[0] if len(res) == 1 else res


@register(np.broadcast_to)
def _broadcast_to(array, shape, subok=False):
    shape = (shape,) if np.isscalar(shape) else tuple(shape)
    return _unary_linear(array, lambda u: np.broadcast_to(u, shape),
                         lambda t: np.broadcast_to(
                             t.reshape((t.shape[0],) + (1,) * (len(shape) - t.ndim + 1)
                                       + t.shape[1:]), (t.shape[0],) + shape))


@register(np.flip)
def _flip(m, axis=None):
    nd = len(_shape(_parts(m)[0]))
    axes = tuple(range(nd)) if axis is None else _norm_axis(axis, nd)
    return _unary_linear(m, lambda u: np.flip(u, axes),
                         lambda t: np.flip(t, _shift(axes)))


@_both(np.fliplr)
def _fliplr(m):
    m = _operand(m)
    if np.ndim(primal(m)) < 2:
        raise ValueError("Input must be >= 2-d.")
    return np.flip(m, 1)


@_both(np.flipud)
def _flipud(m):
    m = _operand(m)
    if np.ndim(primal(m)) < 1:
        raise ValueError("Input must be >= 1-d.")
    return np.flip(m, 0)


@register(np.roll)
def _roll(a, shift, axis=None):
    if axis is None:
        return _unary_linear(a, lambda u: np.roll(u, shift),
                             lambda t: np.roll(t.reshape(t.shape[0], -1), shift,
                                               axis=1).reshape(t.shape))
    nd = len(_shape(_parts(a)[0]))
    axes = _norm_axis(axis, nd)
    ax = axes if not np.isscalar(axis) else axes[0]
    return _unary_linear(a, lambda u: np.roll(u, shift, axis=ax),
                         lambda t: np.roll(t, shift, axis=_shift(axes) if not np.isscalar(
                             axis) else axes[0] + 1))


@register(np.take)
def _take(a, indices, axis=None, out=None, mode="raise"):
    _reject("take", out)
    if tag_of((indices,)) >= 0:
        raise TypeError("numpy.take: indices must be plain integers, not dualad values")
    if axis is None:
        return _unary_linear(a, lambda u: np.take(u, indices, mode=mode),
                             lambda t: np.take(t.reshape(t.shape[0], -1), indices, axis=1,
                                               mode=mode))
    nd = len(_shape(_parts(a)[0]))
    ax = _norm_axis(axis, nd)[0]
    return _unary_linear(a, lambda u: np.take(u, indices, axis=ax, mode=mode),
                         lambda t: np.take(t, indices, axis=ax + 1, mode=mode))


@register(np.take_along_axis)
def _take_along_axis(arr, indices, axis=-1):
    if axis is None:
        return _unary_linear(arr, lambda u: np.take_along_axis(u, indices, None))
    nd = len(_shape(_parts(arr)[0]))
    ax = _norm_axis(axis, nd)[0]
    return _unary_linear(arr, lambda u: np.take_along_axis(u, indices, ax),
                         lambda t: np.take_along_axis(
                             t, np.broadcast_to(indices[None], (t.shape[0],)
                                                + np.shape(indices)), ax + 1))


@register(np.repeat)
def _repeat(a, repeats, axis=None):
    if axis is None:
        return _unary_linear(a, lambda u: np.repeat(u, repeats),
                             lambda t: np.repeat(t.reshape(t.shape[0], -1), repeats, axis=1))
    nd = len(_shape(_parts(a)[0]))
    ax = _norm_axis(axis, nd)[0]
    return _unary_linear(a, lambda u: np.repeat(u, repeats, axis=ax),
                         lambda t: np.repeat(t, repeats, axis=ax + 1))


@register(np.tile)
def _tile(A, reps):
    reps = (reps,) if np.isscalar(reps) else tuple(reps)
    nd = len(_shape(_parts(A)[0]))
    dim = max(nd, len(reps))
    full = (1,) * (dim - len(reps)) + reps

    def ft(t):
        t2 = t.reshape((t.shape[0],) + (1,) * (dim - nd) + t.shape[1:])
        return np.tile(t2, (1,) + full)
    return _unary_linear(A, lambda u: np.tile(u, reps), ft)


@register(np.diagonal)
def _diagonal(a, offset=0, axis1=0, axis2=1):
    nd = len(_shape(_parts(a)[0]))
    a1, a2 = _norm_axis((axis1, axis2), nd)
    return _unary_linear(a, lambda u: np.diagonal(u, offset, a1, a2),
                         lambda t: np.diagonal(t, offset, a1 + 1, a2 + 1))


@register(np.trace)
def _trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    _reject("trace", out)
    _check_dtype("trace", dtype)
    nd = len(_shape(_parts(a)[0]))
    a1, a2 = _norm_axis((axis1, axis2), nd)
    return _unary_linear(a, lambda u: np.trace(u, offset, a1, a2),
                         lambda t: np.trace(t, offset, a1 + 1, a2 + 1))


@register(np.diag)
def _diag(v, k=0):
    return _unary_linear(v, lambda u: np.diag(u, k))


@register(np.triu)
def _triu(m, k=0):
    nd = len(_shape(_parts(m)[0]))
    return _unary_linear(m, lambda u: np.triu(u, k),
                         (lambda t: np.triu(t, k)) if nd >= 2 else None)


@register(np.tril)
def _tril(m, k=0):
    nd = len(_shape(_parts(m)[0]))
    return _unary_linear(m, lambda u: np.tril(u, k),
                         (lambda t: np.tril(t, k)) if nd >= 2 else None)


@register(np.copy)
def _copy(a, order="K", subok=False):
    v, t, tag = _parts(a)
    if t is None:
        return np.copy(v)
    return make(v.copy(), t.copy(), tag, True)


# -- joining -------------------------------------------------------------------------------

@register(np.concatenate)
def _concatenate(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    _reject("concatenate", out)
    _check_dtype("concatenate", dtype)
    lifted, tag = _common(arrays)
    if axis is None:
        values = [np.ravel(a.value) for a in lifted]
        tangents = [a.tangent.reshape(a.tangent.shape[0], -1) for a in lifted]
        return wrap(np.concatenate(values), np.concatenate(tangents, axis=1), tag)
    nd = len(_shape(lifted[0].value))
    ax = _norm_axis(axis, nd)[0]
    return wrap(np.concatenate([a.value for a in lifted], axis=ax),
                np.concatenate([a.tangent for a in lifted], axis=ax + 1), tag)


@register(np.stack)
def _stack(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    _reject("stack", out)
    _check_dtype("stack", dtype)
    lifted, tag = _common(arrays)
    nd = len(_shape(lifted[0].value)) + 1
    ax = _norm_axis(axis, nd)[0]
    return wrap(np.stack([a.value for a in lifted], axis=ax),
                np.stack([a.tangent for a in lifted], axis=ax + 1), tag)


@_both(np.hstack)
def _hstack(tup, dtype=None, casting="same_kind"):
    _check_dtype("hstack", dtype)
    arrs = [_atleast_1d(a) for a in tup]
    first = arrs[0]
    return np.concatenate(arrs, axis=0 if np.ndim(primal(first)) == 1 else 1)


@_both(np.vstack)
def _vstack(tup, dtype=None, casting="same_kind"):
    _check_dtype("vstack", dtype)
    return np.concatenate([_atleast_2d(a) for a in tup], axis=0)


@_both(np.column_stack)
def _column_stack(tup):
    cols = []
    for a in tup:
        a = _operand(a)
        cols.append(np.reshape(a, (-1, 1)) if np.ndim(primal(a)) < 2 else a)
    return np.concatenate(cols, axis=1)


# -- selection -------------------------------------------------------------------------------

@register(np.where)
def _where(condition, x=None, y=None):
    cond = primal(normalize(condition))
    if x is None and y is None:
        return np.where(cond)
    if x is None or y is None:
        raise ValueError("either both or neither of x and y should be given")
    (lx, ly), tag = _common((x, y))
    value = np.where(cond, lx.value, ly.value)
    nd = len(_shape(value))
    tx, ty = lx.tangent, ly.tangent
    tx = tx.reshape((tx.shape[0],) + (1,) * (nd - tx.ndim + 1) + tx.shape[1:])
    ty = ty.reshape((ty.shape[0],) + (1,) * (nd - ty.ndim + 1) + ty.shape[1:])
    tangent = np.where(cond, tx, ty)
    return wrap(value, np.broadcast_to(tangent, (tangent.shape[0],) + _shape(value)), tag)


@_both(np.clip)
def _clip(a, a_min=np._NoValue, a_max=np._NoValue, out=None, *, min=np._NoValue,
          max=np._NoValue, **kwargs):
    _reject("clip", out)
    lo = a_min if a_min is not np._NoValue else (None if min is np._NoValue else min)
    hi = a_max if a_max is not np._NoValue else (None if max is np._NoValue else max)
    res = _operand(a)
    # Inside the bounds (bounds included) the derivative follows a; outside, the bound.
    if lo is not None:
        lo = _operand(lo)
        res = np.where(primal(res) < primal(lo), lo, res)
    if hi is not None:
        hi = _operand(hi)
        res = np.where(primal(res) > primal(hi), hi, res)
    return res


@_both(np.sort)
def _sort(a, axis=-1, kind=None, order=None, *, stable=None):
    a = _operand(a)
    if order is not None:
        raise TypeError("numpy.sort: order= (structured arrays) is not supported for "
                        "dualad values")
    if axis is None:
        a = np.ravel(a)
        axis = 0
    # The derivative follows the permutation the values define (ties: NumPy's order).
    idx = np.argsort(primal(a), axis=axis, kind=kind, stable=stable)
    return np.take_along_axis(a, idx, axis=axis)


def _plain(func):
    """Functions of the values only (indices, booleans): applied to the primal values."""
    def impl(*args, **kwargs):
        return func(*[primal(normalize(a)) if _is_arraylike(a) else a for a in args],
                    **kwargs)
    register(func)(impl)


def _is_arraylike(a):
    return isinstance(a, (DualArray, np.ndarray, list, tuple)) or tag_of((a,)) >= 0


for _f in (np.argmax, np.argmin, np.argsort, np.nonzero, np.count_nonzero, np.isclose,
           np.allclose, np.array_equal, np.shape, np.ndim, np.size, np.iscomplexobj,
           np.isrealobj, np.any, np.all, np.searchsorted, np.argwhere, np.flatnonzero):
    _plain(_f)
del _f


@register(np.round)
def _round(a, decimals=0, out=None):
    _reject("round", out)
    v, t, tag = _parts(a)
    value = np.round(v, decimals)
    if t is None:
        return value
    return wrap(value, _zeros_for(t, t.shape), tag)


# -- creation -------------------------------------------------------------------------

def _zeros_for(t, shape):
    """Zero tangents of ``shape``: a constant of the tangent's own level when the tangent
    is a tracer of an enclosing differentiation (so item assignment can store that
    level's values into it), a plain array otherwise."""
    return np.zeros_like(t, shape=shape) if is_tracer(t) else np.zeros(shape)


def _like(a, fill):
    v, t, tag = _parts(a)
    if t is None:
        return fill(v)
    value = fill(v)
    return make(value, _zeros_for(t, (t.shape[0],) + _shape(value)), tag, True)


def _plain_dtype(dtype):
    """True for a requested dtype other than float64: the result is a plain constant."""
    return dtype is not None and np.dtype(dtype) != np.float64


def _shape_or(a, shape):
    return np.shape(primal(normalize(a))) if shape is None else shape


@register(np.zeros_like)
def _zeros_like(a, dtype=None, order="K", subok=True, shape=None, *, device=None):
    if _plain_dtype(dtype):  # e.g. a boolean mask or an integer counter: no derivative
        return np.zeros(_shape_or(a, shape), dtype=dtype)
    return _like(a, lambda v: np.zeros(_shape(v) if shape is None else shape)
                 if not is_tracer(v) else np.zeros_like(v, shape=shape))


@register(np.ones_like)
def _ones_like(a, dtype=None, order="K", subok=True, shape=None, *, device=None):
    if _plain_dtype(dtype):
        return np.ones(_shape_or(a, shape), dtype=dtype)
    return _like(a, lambda v: np.ones(_shape(v) if shape is None else shape)
                 if not is_tracer(v) else np.ones_like(v, shape=shape))


@register(np.empty_like)
def _empty_like(prototype, dtype=None, order="K", subok=True, shape=None, *, device=None):
    if _plain_dtype(dtype):
        return np.empty(_shape_or(prototype, shape), dtype=dtype)
    # Zero-filled: an uninitialised tangent would be a silent wrong number.
    return _zeros_like(prototype, shape=shape)


@register(np.full_like)
def _full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None, *,
               device=None):
    if _plain_dtype(dtype):
        if tag_of((normalize(fill_value),)) >= 0:
            raise TypeError(f"numpy.full_like: a traced fill value cannot be stored in an "
                            f"array of dtype {np.dtype(dtype)}, which would silently drop "
                            "its derivative; leave dtype as float64")
        return np.full(_shape_or(a, shape), fill_value, dtype=dtype)
    base = _zeros_like(a, shape=shape)
    return base + fill_value


# -- reductions ---------------------------------------------------------------------------------

def _reduce_linear(name, a, axis, keepdims, fn):
    """A linear reduction ``fn(u, axis=..., keepdims=...)`` on value and tangent."""
    v, t, tag = _parts(a)
    nd = len(_shape(v))
    axes = tuple(range(nd)) if axis is None else _norm_axis(axis, nd)
    value = fn(v, axis=axes, keepdims=keepdims)
    if t is None:
        return value
    return wrap(value, fn(t, axis=_shift(axes), keepdims=keepdims), tag)


@register(np.sum)
def _sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=np._NoValue,
         where=np._NoValue):
    _reject("sum", out, initial=initial, where=where)
    _check_dtype("sum", dtype)
    return _reduce_linear("sum", a, axis, keepdims, np.sum)


@register(np.mean)
def _mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=np._NoValue):
    _reject("mean", out, where=where)
    _check_dtype("mean", dtype)
    return _reduce_linear("mean", a, axis, keepdims, np.mean)


@_both(np.var)
def _var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *,
         where=np._NoValue, mean=np._NoValue, correction=np._NoValue):
    a = _operand(a)
    _reject("var", out, _mode_of(a), where=where, mean=mean)
    _check_dtype("var", dtype)
    if correction is not np._NoValue:
        ddof = correction
    nd = np.ndim(primal(a))
    axes = tuple(range(nd)) if axis is None else _norm_axis(axis, nd)
    count = int(np.prod([np.shape(primal(a))[i] for i in axes]))
    dev = a - np.mean(a, axis=axes, keepdims=True)
    return np.sum(dev * dev, axis=axes, keepdims=keepdims) / max(count - ddof, 0)


def _safe_root(s, root):
    """``root(s)`` with derivative 0 where ``s == 0`` (instead of ``root'(0) * 0``).

    At ``s = 0`` the root's derivative is infinite while the derivative of ``s`` (a sum of
    squares or powers) is 0; their product is NaN in reverse mode, where the infinite
    cotangent meets the zero partial.  Both branches of ``where`` are finite and the
    dead branch gets a zero (co)tangent, so both modes give the minimum-norm subgradient
    0 there, and nested derivatives away from 0 are unchanged.
    """
    zero = primal(s) == 0
    if not np.any(zero):
        return root(s)
    return np.where(zero, 0.0, root(np.where(zero, 1.0, s)))


@_both(np.std)
def _std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *,
         where=np._NoValue, mean=np._NoValue, correction=np._NoValue):
    a = _operand(a)
    _reject("std", out, _mode_of(a), where=where, mean=mean)
    return _safe_root(_var(a, axis, dtype, None, ddof, keepdims, correction=correction),
                      np.sqrt)


def _extreme(name, a, axis, keepdims, pick):
    """max/min: the derivative of the selected element; ties share it evenly."""
    v, t, tag = _parts(a)
    nd = len(_shape(v))
    axes = tuple(range(nd)) if axis is None else _norm_axis(axis, nd)
    value = pick(v, axis=axes, keepdims=keepdims)
    if t is None:
        return value
    best = pick(primal(v), axis=axes, keepdims=True)
    mask = (primal(v) == best)
    weight = mask / np.sum(mask, axis=axes, keepdims=True)
    tangent = np.sum(weight * t, axis=_shift(axes), keepdims=keepdims)
    return wrap(value, tangent, tag)


@register(np.max)
def _max(a, axis=None, out=None, keepdims=False, initial=np._NoValue, where=np._NoValue):
    _reject("max", out, initial=initial, where=where)
    return _extreme("max", a, axis, keepdims, np.max)


@register(np.min)
def _min(a, axis=None, out=None, keepdims=False, initial=np._NoValue, where=np._NoValue):
    _reject("min", out, initial=initial, where=where)
    return _extreme("min", a, axis, keepdims, np.min)


if np.amax is not np.max:  # aliases in NumPy 2, separate functions in some versions
    register(np.amax)(_max)
    register(np.amin)(_min)


@register(np.prod)
def _prod(a, axis=None, dtype=None, out=None, keepdims=False, initial=np._NoValue,
          where=np._NoValue):
    _reject("prod", out, initial=initial, where=where)
    _check_dtype("prod", dtype)
    a = normalize(a)
    nd = np.ndim(primal(a))
    if axis is None or nd == 0:
        if axis is not None:
            _norm_axis(axis, nd)  # validates (AxisError)
        res = _prod(np.ravel(a), axis=0)
        if keepdims:
            res = np.reshape(res, (1,) * nd)
        return res
    v, t, tag = _parts(a)
    axes = _norm_axis(axis, nd)
    if len(axes) != 1:
        b = np.moveaxis(a, axes, tuple(range(-len(axes), 0)))
        b = np.reshape(b, _shape(primal(b))[:nd - len(axes)] + (-1,))
        res = _prod(b, axis=-1)
        if keepdims:
            res = np.expand_dims(res, axes)
        return res
    ax = axes[0]
    value = np.prod(v, axis=ax, keepdims=keepdims)
    if t is None:
        return value
    # d prod / d a_j = prod_{i != j} a_i, from exclusive cumulative products on both sides
    # (no division, so zeros are fine).
    n = _shape(v)[ax]
    ones = np.ones_like(np.take(v, [0], axis=ax))
    left = np.concatenate([ones, np.cumprod(np.take(v, range(n - 1), axis=ax), axis=ax)],
                          axis=ax)
    rv = np.flip(v, ax)
    right = np.flip(np.concatenate(
        [ones, np.cumprod(np.take(rv, range(n - 1), axis=ax), axis=ax)], axis=ax), ax)
    others = left * right
    tangent = np.sum(others * t, axis=ax + 1, keepdims=keepdims)
    return wrap(value, tangent, tag)


@register(np.cumsum)
def _cumsum(a, axis=None, dtype=None, out=None):
    _reject("cumsum", out)
    _check_dtype("cumsum", dtype)
    if axis is None:
        return _unary_linear(a, lambda u: np.cumsum(u),
                             lambda t: np.cumsum(t.reshape(t.shape[0], -1), axis=1))
    nd = len(_shape(_parts(a)[0]))
    ax = _norm_axis(axis, nd)[0]
    return _unary_linear(a, lambda u: np.cumsum(u, axis=ax),
                         lambda t: np.cumsum(t, axis=ax + 1))


@register(np.cumprod)
def _cumprod(a, axis=None, dtype=None, out=None):
    _reject("cumprod", out)
    _check_dtype("cumprod", dtype)
    a = normalize(a)
    if axis is None:
        a = np.ravel(a)
        axis = 0
    v, t, tag = _parts(a)
    ax = _norm_axis(axis, len(_shape(v)))[0]
    value = np.cumprod(v, axis=ax)
    if t is None:
        return value
    if np.all(primal(v) != 0):
        # y_j = prod_{i<=j} a_i, so dy_j = y_j * sum_{i<=j} da_i / a_i.
        tangent = value * np.cumsum(t / v, axis=ax + 1)
        return wrap(value, tangent, tag)
    # With zeros, build the products step by step: the product rule needs no division.
    n = _shape(v)[ax]
    acc = np.take(a, [0], axis=ax)
    pieces = [acc]
    for j in range(1, n):
        acc = acc * np.take(a, [j], axis=ax)
        pieces.append(acc)
    return np.concatenate(pieces, axis=ax)


@_both(np.diff)
def _diff(a, n=1, axis=-1, prepend=np._NoValue, append=np._NoValue):
    a = _operand(a)
    nd = np.ndim(primal(a))
    if nd == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    if n < 0:
        raise ValueError(f"order must be non-negative but got {n!r}")
    ax = _norm_axis(axis, nd)[0]
    if prepend is not np._NoValue or append is not np._NoValue:
        shape = list(np.shape(primal(a)))
        parts = []
        if prepend is not np._NoValue:
            parts.append(_edge(prepend, shape, ax))
        parts.append(a)
        if append is not np._NoValue:
            parts.append(_edge(append, shape, ax))
        a = np.concatenate(parts, axis=ax)
    # differences of neighbouring slices, as NumPy computes them (same rounding)
    upper = (slice(None),) * ax + (slice(1, None),)
    lower = (slice(None),) * ax + (slice(None, -1),)
    for _ in range(n):
        a = a[upper] - a[lower]
    return a


def _edge(extra, shape, ax):
    extra = _operand(extra)
    if np.ndim(primal(extra)) == 0:
        shape = list(shape)
        shape[ax] = 1
        if not is_tracer(extra):
            extra = np.asarray(extra, dtype=float)
        return np.broadcast_to(extra, tuple(shape))
    return extra


# -- products ---------------------------------------------------------------------------------

def _bilinear(a, b, op, left, right):
    """Product rule for a bilinear ``op``: ``left(ta, bv) + right(av, tb)``."""
    a, b = normalize(a), normalize(b)  # lists and object arrays of tracers
    (la, lb), tag = _common((a, b))
    av, ta = split(a, tag) if tag_of((a,)) == tag else (la.value, None)
    bv, tb = split(b, tag) if tag_of((b,)) == tag else (lb.value, None)
    av = as_value(av)
    bv = as_value(bv)
    value = op(av, bv)
    tangent = None
    if ta is not None:
        tangent = left(ta, bv, av)
    if tb is not None:
        term = right(av, tb, bv)
        tangent = term if tangent is None else tangent + term
    return wrap(value, tangent, tag)


def _lead(t, ndim):
    """Insert length-one axes after the lane axis of ``t`` until it has ``ndim`` value dims.

    The lane axis must stay in front of every axis that broadcasts against the other
    operand: NumPy aligns shapes from the right, so without the padding a lane axis of
    length k would meet a batch axis of the other operand (wrong, or an error).
    """
    have = t.ndim - 1
    if have >= ndim:
        return t
    return t.reshape((t.shape[0],) + (1,) * (ndim - have) + t.shape[1:])


def _matmul_left(ta, bv, av):
    # ta: (k,) + sa.  A 1-D a is a row vector; the result has b's batch axes.
    if av.ndim == 1:
        if bv.ndim == 1:
            return np.matmul(ta, bv)
        t = ta.reshape((ta.shape[0],) + (1,) * (bv.ndim - 2) + (1, ta.shape[-1]))
        return np.matmul(t, bv)[..., 0, :]
    return np.matmul(_lead(ta, bv.ndim), bv)


def _matmul_right(av, tb, bv):
    # tb: (k,) + sb.  A 1-D b is a column vector; the result has a's batch axes.
    if bv.ndim == 1:
        t = tb.reshape((tb.shape[0],) + (1,) * max(av.ndim - 2, 0) + (tb.shape[-1], 1))
        return np.matmul(av, t)[..., 0]
    return np.matmul(av, _lead(tb, av.ndim))


@register(np.matmul)
def _matmul(a, b, out=None, **kwargs):
    _reject("matmul", out, **{k: v for k, v in kwargs.items() if k != "casting"})
    return _bilinear(a, b, np.matmul, _matmul_left, _matmul_right)


def _tensordot_axes(axes, na, nb):
    if isinstance(axes, (int, np.integer)):
        return list(range(na - axes, na)), list(range(axes))
    xa, xb = axes
    xa = [xa] if isinstance(xa, (int, np.integer)) else list(xa)
    xb = [xb] if isinstance(xb, (int, np.integer)) else list(xb)
    return [x % na for x in xa], [x % nb for x in xb]


@register(np.tensordot)
def _tensordot(a, b, axes=2):
    def left(ta, bv, av):
        xa, xb = _tensordot_axes(axes, av.ndim, bv.ndim)
        return np.tensordot(ta, bv, axes=([x + 1 for x in xa], xb))

    def right(av, tb, bv):
        xa, xb = _tensordot_axes(axes, av.ndim, bv.ndim)
        r = np.tensordot(av, tb, axes=(xa, [x + 1 for x in xb]))
        return np.moveaxis(r, av.ndim - len(xa), 0)
    return _bilinear(a, b, lambda u, w: np.tensordot(u, w, axes), left, right)


@register(np.dot)
def _dot(a, b, out=None):
    _reject("dot", out)

    def op(u, w):
        if u.ndim == 0 or w.ndim == 0:
            return u * w
        return np.tensordot(u, w, axes=([u.ndim - 1], [max(w.ndim - 2, 0)]))

    def left(ta, bv, av):
        if av.ndim == 0 or bv.ndim == 0:
            return _lead(ta, bv.ndim) * bv
        return np.tensordot(ta, bv, axes=([av.ndim], [max(bv.ndim - 2, 0)]))

    def right(av, tb, bv):
        if av.ndim == 0 or bv.ndim == 0:
            return av * _lead(tb, av.ndim)
        r = np.tensordot(av, tb, axes=([av.ndim - 1], [max(bv.ndim - 2, 0) + 1]))
        return np.moveaxis(r, av.ndim - 1, 0)
    return _bilinear(a, b, op, left, right)


@_both(np.vdot)
def _vdot(a, b):
    return np.dot(np.ravel(_operand(a)), np.ravel(_operand(b)))


@_both(np.inner)
def _inner(a, b):
    a, b = _operand(a), _operand(b)
    if np.ndim(primal(a)) == 0 or np.ndim(primal(b)) == 0:
        return a * b
    return np.tensordot(a, b, axes=([-1], [-1]))


@_both(np.outer)
def _outer(a, b, out=None):
    _reject("outer", out)
    a = np.ravel(_operand(a))
    b = np.ravel(_operand(b))
    return np.reshape(a, (-1, 1)) * np.reshape(b, (1, -1))


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


@register(np.einsum)
def _einsum(*operands, out=None, optimize=False, **kwargs):
    _reject("einsum", out, **{k: v for k, v in kwargs.items()
                             if k not in ("dtype", "order", "casting")})
    _check_dtype("einsum", kwargs.get("dtype"))
    if not operands or not isinstance(operands[0], str):
        raise TypeError("numpy.einsum: dualad supports the subscripts-string form only")
    spec = operands[0].replace(" ", "")
    args = [normalize(o) for o in operands[1:]]
    if "->" in spec:
        ins, out_spec = spec.split("->")
    else:
        ins = spec
        letters = ins.replace(",", "").replace("...", "")
        out_spec = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
        if "..." in ins:
            out_spec = "..." + out_spec
    in_specs = ins.split(",")
    if len(in_specs) != len(args):
        raise ValueError("numpy.einsum: the subscripts do not match the operands")
    lane = next(c for c in _LETTERS if c not in spec)
    tag = tag_of(args)
    vals, tans = [], []
    for o in args:
        v, t = split(o, tag)
        vals.append(as_value(v))
        tans.append(t)
    value = np.einsum(f"{ins}->{out_spec}", *vals, optimize=optimize)
    tangent = None
    for i, t in enumerate(tans):
        if t is None:
            continue
        specs = list(in_specs)
        specs[i] = lane + specs[i]
        ops = list(vals)
        ops[i] = t
        term = np.einsum(f"{','.join(specs)}->{lane}{out_spec}", *ops, optimize=optimize)
        tangent = term if tangent is None else tangent + term
    return wrap(value, tangent, tag)


@_both(np.linalg.norm)
def _norm(x, ord=None, axis=None, keepdims=False):
    x = _operand(x)
    mode = _mode_of(x)
    nd = np.ndim(primal(x))
    if axis is None and ord is not None and nd == 2 and ord not in ("fro",):
        raise NoRuleError(unsupported_function(f"numpy.linalg.norm with ord={ord!r} for "
                                             "matrices", mode))
    if axis is not None and not np.isscalar(axis) and len(axis) == 2 and \
            ord not in (None, "fro"):
        raise NoRuleError(unsupported_function(f"numpy.linalg.norm with ord={ord!r} for "
                                             "matrices", mode))
    axes = tuple(range(nd)) if axis is None else _norm_axis(axis, nd)
    if ord is None or ord == "fro" or ord == 2:
        # sqrt(sum(x*x)), with derivative 0 at x = 0 (the minimum-norm subgradient)
        return _safe_root(np.sum(x * x, axis=axes, keepdims=keepdims), np.sqrt)
    if ord == np.inf:
        return np.max(np.abs(x), axis=axes, keepdims=keepdims)
    if ord == -np.inf:
        return np.min(np.abs(x), axis=axes, keepdims=keepdims)
    if ord == 1:
        return np.sum(np.abs(x), axis=axes, keepdims=keepdims)
    if ord == 0:
        return np.sum(primal(x) != 0, axis=axes, keepdims=keepdims).astype(float)
    s = np.sum(np.abs(x) ** ord, axis=axes, keepdims=keepdims)
    if ord > 0:
        return _safe_root(s, lambda u: u ** (1.0 / ord))
    return s ** (1.0 / ord)


@_both(np.polyval)
def _polyval(p, x):
    p = _operand(p)
    x = _operand(x)
    n = np.shape(primal(p))[0]
    y = p[0] * np.ones_like(x) if is_tracer(x) else p[0] + np.zeros(np.shape(x))
    for i in range(1, n):
        y = y * x + p[i]
    return y
