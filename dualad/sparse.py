"""Sparse and matrix-free Jacobians.

Design note
-----------
This module owns three things, each a thin layer over the forward and reverse engines:

* **Sparsity detection by tracing.**  ``fun`` is called once with a *pattern tracer* in
  place of ``x``: an object that carries no numbers, only, for every element of every
  intermediate array, the set of input columns it depends on.  The sets of an array are
  rows of a boolean ``scipy.sparse`` matrix (elements x n).  Elementwise ufuncs take the
  union of their broadcast operands' rows (an operand whose partial is identically zero
  in the rule table, like ``floor``, contributes nothing); reductions take the union over
  the reduced axes; indexing, slicing, reshapes, transposes, concatenation and the other
  data-movement functions move rows; products with a constant matrix combine patterns
  through the constant's nonzeros.  The tracer follows NumPy's view semantics exactly:
  it keeps a real integer array of *row ids* and applies the same NumPy call to it, so a
  slice is a view that sees later item assignments and a fancy index is a copy.  The
  pattern found holds for every ``x`` (it never looks at values), so a branch on a value
  cannot be followed: it raises ``TypeError`` naming the cause and the remedy (pass
  ``sparsity=``).  Comparisons yield boolean tracers that carry no dependence, and
  ``np.where(cond, a, b)`` counts both ``a`` and ``b``.
* **Column colouring** (Curtis, Powell and Reid, 1974): columns that share no row may
  share a colour, and one directional derivative per colour, with the seed the sum of
  the colour's unit vectors, recovers every nonzero.  Greedy distance-1 colouring of the
  column intersection graph in two orders (natural and largest-first); the one with
  fewer colours is kept.
* **The compressed Jacobian**: the colours' seeds are pushed through ``fun`` by
  :func:`dualad.forward.push`, up to ``CHUNK_THRESHOLD`` lanes per evaluation, and the
  tangents are scattered into a ``scipy.sparse.csr_array``.

:func:`linear_operator` is the matrix-free alternative for Jacobians that fit neither
dense nor sparse: a ``LinearOperator`` whose ``matvec`` is one forward sweep and whose
``rmatvec`` is one backward sweep over a single recording.
"""

import math
import operator
import string

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from . import _memory, forward, reverse
from ._array import is_tracer
from .rules import registry as _registry

__all__ = ["detect_sparsity", "color_columns", "sparse_jacobian", "SparseJacobian",
           "SparseJacobianTransform", "linear_operator"]

_IDX = np.int64
_NO_COLS = np.zeros(0, dtype=_IDX)
_REMEDY = ("Pass the pattern explicitly with sparsity= (a scipy.sparse matrix or a boolean "
           "array of shape (m, n) that is True wherever the Jacobian may be nonzero).")


class _DetectionError(TypeError):
    """Sparsity detection met something it cannot follow (a ``TypeError``)."""


_NO_RULE = ("dualad cannot differentiate it in forward mode either: compute that part "
            "outside the function, or add a rule with dualad.defrule and pass sparsity=.")


def _fail(what, why, remedy=_REMEDY):
    return _DetectionError(f"sparsity detection cannot follow {what}: {why}. {remedy}")


def _branch_error(what):
    return _fail(what, "the detector tracks which inputs each value depends on, never "
                 "the values (so that the pattern holds at every x); for a "
                 "value-dependent choice use np.where(cond, a, b), where both sides "
                 "count, and NumPy functions instead of math-module ones")


# ---------------------------------------------------------------------------------------
# boolean CSR helpers: a pattern is a csr_array (elements x n) of True values

def _csr(indices, indptr, shape):
    return sp.csr_array((np.ones(len(indices), dtype=bool), indices, indptr), shape=shape)


def _empty(rows, n):
    return _csr(_NO_COLS, np.zeros(rows + 1, dtype=_IDX), (rows, n))


def _take(P, ids):
    """Rows of ``P`` in the order of the 1-based ``ids`` (0 gives an empty row)."""
    ids = np.asarray(ids, dtype=_IDX).reshape(-1)
    count, n = len(ids), P.shape[1]
    if P.shape[0] == 0 or P.nnz == 0:
        return _empty(count, n)
    src = ids - 1
    valid = src >= 0
    src = np.where(valid, src, 0)
    indptr = P.indptr.astype(_IDX, copy=False)
    start = indptr[src]
    counts = np.where(valid, indptr[src + 1] - start, 0)
    out_ptr = np.zeros(count + 1, dtype=_IDX)
    np.cumsum(counts, out=out_ptr[1:])
    total = int(out_ptr[-1])
    pos = np.repeat(start - out_ptr[:-1], counts) + np.arange(total, dtype=_IDX)
    return _csr(P.indices[pos], out_ptr, (count, n))


def _vstack(mats, n):
    mats = [m for m in mats if m.shape[0]]
    if not mats:
        return _empty(0, n)
    if len(mats) == 1:
        return mats[0]
    ptrs, offset = [np.zeros(1, dtype=_IDX)], 0
    for m in mats:
        ptrs.append(m.indptr[1:].astype(_IDX) + offset)
        offset += m.nnz
    indices = np.concatenate([m.indices.astype(_IDX, copy=False) for m in mats])
    return _csr(indices, np.concatenate(ptrs), (sum(m.shape[0] for m in mats), n))


def _union(mats, rows, n):
    mats = [m for m in mats if m is not None and m.nnz]
    if not mats:
        return _empty(rows, n)
    out = mats[0]
    for m in mats[1:]:
        out = out + m
    return out


def _repeat_row(cols, count, n):
    k = len(cols)
    return _csr(np.tile(cols, count), np.arange(0, k * count + 1, max(k, 1), dtype=_IDX)
                if k else np.zeros(count + 1, dtype=_IDX), (count, n))


def _group_rows(P, group, out_size):
    """Row ``g`` of the result: the union of the rows ``i`` of ``P`` with group[i] == g."""
    size = len(group)
    R = sp.csr_array((np.ones(size, dtype=bool), (group, np.arange(size))),
                     shape=(out_size, size))
    out = R @ P
    out.sort_indices()
    return out


def _row_cols(P, i):
    return P.indices[P.indptr[i]:P.indptr[i + 1]].astype(_IDX)


# ---------------------------------------------------------------------------------------
# the tracer

class _Store:
    """The rows of one array's memory, shared by all its views (NumPy's semantics)."""

    __slots__ = ("rows", "slots", "over")

    def __init__(self, rows):
        self.rows = rows
        self.slots = np.arange(1, rows.shape[0] + 1, dtype=_IDX)
        self.over = {}  # single-element writes not yet merged: row -> cols

    def matrix(self):
        if self.over:
            keys = np.fromiter(self.over.keys(), dtype=_IDX, count=len(self.over))
            cols = list(self.over.values())
            self.over = {}
            lengths = np.array([len(c) for c in cols], dtype=_IDX)
            ptr = np.zeros(len(cols) + 1, dtype=_IDX)
            np.cumsum(lengths, out=ptr[1:])
            flat = np.concatenate(cols) if len(cols) else _NO_COLS
            self.assign(keys, _csr(flat, ptr, (len(cols), self.rows.shape[1])))
        return self.rows

    def row(self, i):
        cols = self.over.get(i)
        return _row_cols(self.rows, i) if cols is None else cols

    def assign(self, rows0, R):
        """Replace rows ``rows0`` (0-based; the last write wins) with the rows of R."""
        P = self.matrix()
        size = P.shape[0]
        src = np.arange(1, size + 1, dtype=_IDX)
        src[rows0] = size + 1 + np.arange(len(rows0), dtype=_IDX)
        self.rows = _take(_vstack([P, R], P.shape[1]), src)


def _is_traced(o):
    return isinstance(o, _Traced)


def _is_float_traced(o):
    return isinstance(o, _Traced) and o.kind == "float"


def _shape(o):
    return o.shape if isinstance(o, _Traced) else np.shape(o)


def _check_foreign(o):
    if is_tracer(o):
        raise _fail("a dualad value of another differentiation (Dual, DualArray or a "
                    "reverse-mode value)", "sparse Jacobians do not nest inside other "
                    "transforms")


class _Traced:
    """Common part of the pattern tracers: NumPy protocols, operators, conversions."""

    __slots__ = ()
    __array_priority__ = 1000
    __hash__ = None

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return math.prod(self.shape)

    @property
    def dtype(self):
        return np.dtype({"float": np.float64, "bool": bool, "int": np.int64}[self.kind])

    def __repr__(self):
        return f"<dualad sparsity tracer, shape {self.shape}, {self.kind}>"

    # -- conversions: values are unknown -----------------------------------------------
    def __bool__(self):
        raise _branch_error("a branch on a traced value (if, while, and/or, bool())")

    def __float__(self):
        raise _branch_error("float() or a math-module function on a traced value (also "
                            "raised when a traced value is stored into a plain float "
                            "array: create it with np.zeros_like(x) instead)")

    def __int__(self):
        raise _branch_error("int() of a traced value")

    def __index__(self):
        raise _fail("a traced value used as an integer or an index",
                    "which elements are selected would depend on the values")

    def __complex__(self):
        raise _branch_error("complex() of a traced value")

    def item(self, *args):
        raise _branch_error("item() of a traced value")

    # -- NumPy protocols ---------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        inputs = tuple(_lift(i) for i in inputs)
        for i in inputs:
            _check_foreign(i)
        out = kwargs.pop("out", None)
        if out is not None:
            raise _fail(f"numpy.{ufunc.__name__} with out=", "assign the result instead "
                        "(y[...] = f(x))")
        where = kwargs.pop("where", True)
        if where is not True:
            raise _fail(f"numpy.{ufunc.__name__} with where=", "use np.where instead")
        if method == "__call__":
            return _ufunc_call(ufunc, inputs)
        if method in ("reduce", "accumulate"):
            kwargs.setdefault("axis", 0)
            func = (_REDUCE_AS if method == "reduce" else _ACCUMULATE_AS).get(ufunc)
            if func is not None:
                kwargs.pop("dtype", None)
                return _FUNCTIONS[func](*inputs, **kwargs)
        if method == "outer" and len(inputs) == 2 and not kwargs:
            a, b = inputs
            if _is_traced(a):
                a = np.reshape(a, a.shape + (1,) * len(_shape(b)))
            else:
                a = np.reshape(np.asarray(a), np.shape(a) + (1,) * len(_shape(b)))
            return ufunc(a, b)
        raise _fail(f"numpy.{ufunc.__name__}.{method}", "it has no sparsity rule")

    def __array_function__(self, func, types, args, kwargs):
        handler = _FUNCTIONS.get(func)
        if handler is None:
            name = _registry.public_name(func)
            if func in _registry.registered("forward") and not _registry.has_builtin_rule(
                    func):
                raise _fail(f"{name}, which has a custom rule (dualad.defrule)",
                            "the detector cannot see which inputs it mixes")
            if not _registry.has_builtin_rule(func):
                raise _fail(name, "it has no sparsity rule", _NO_RULE)
            raise _fail(name, "it has no sparsity rule")
        return handler(*args, **kwargs)

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and np.dtype(dtype) != np.dtype(object):
            raise _branch_error(f"a conversion of a traced value to a {np.dtype(dtype)} "
                                "ndarray (np.asarray(x, dtype=...))")
        return _to_objects(self)

    # -- operators (all through the ufuncs) ----------------------------------------------
    def __add__(self, o):
        return np.add(self, o)

    def __radd__(self, o):
        return np.add(o, self)

    def __sub__(self, o):
        return np.subtract(self, o)

    def __rsub__(self, o):
        return np.subtract(o, self)

    def __mul__(self, o):
        return np.multiply(self, o)

    def __rmul__(self, o):
        return np.multiply(o, self)

    def __truediv__(self, o):
        return np.true_divide(self, o)

    def __rtruediv__(self, o):
        return np.true_divide(o, self)

    def __floordiv__(self, o):
        return np.floor_divide(self, o)

    def __rfloordiv__(self, o):
        return np.floor_divide(o, self)

    def __mod__(self, o):
        return np.remainder(self, o)

    def __rmod__(self, o):
        return np.remainder(o, self)

    def __pow__(self, o, mod=None):
        if mod is not None:
            return NotImplemented
        return np.power(self, o)

    def __rpow__(self, o, mod=None):
        if mod is not None:
            return NotImplemented
        return np.power(o, self)

    def __matmul__(self, o):
        return np.matmul(self, o)

    def __rmatmul__(self, o):
        return np.matmul(o, self)

    def __neg__(self):
        return np.negative(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return np.absolute(self)

    def __lt__(self, o):
        return np.less(self, o)

    def __le__(self, o):
        return np.less_equal(self, o)

    def __gt__(self, o):
        return np.greater(self, o)

    def __ge__(self, o):
        return np.greater_equal(self, o)

    def __eq__(self, o):
        return np.equal(self, o)

    def __ne__(self, o):
        return np.not_equal(self, o)

    def __and__(self, o):
        return np.logical_and(self, o)

    def __rand__(self, o):
        return np.logical_and(o, self)

    def __or__(self, o):
        return np.logical_or(self, o)

    def __ror__(self, o):
        return np.logical_or(o, self)

    def __invert__(self):
        return np.logical_not(self)

    # -- ndarray methods ------------------------------------------------------------------
    def sum(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        return _sum(self, axis, dtype, out, keepdims, **kw)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        return _sum(self, axis, dtype, out, keepdims, **kw)

    def prod(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        return _sum(self, axis, dtype, out, keepdims, **kw)

    def max(self, axis=None, out=None, keepdims=False, **kw):
        return _max(self, axis, out, keepdims, **kw)

    min = max

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
        return _var(self, axis, dtype, out, ddof, keepdims)

    std = var

    def cumsum(self, axis=None, dtype=None, out=None):
        return _cumulative(self, axis, dtype, out)

    cumprod = cumsum

    def all(self, axis=None, out=None, keepdims=False, **kw):
        return _reduce(self, axis, keepdims, "bool")

    any = all

    def argmax(self, axis=None, out=None, keepdims=False):
        return _arg_reduce(np.argmax, self, axis, out, keepdims)

    def argmin(self, axis=None, out=None, keepdims=False):
        return _arg_reduce(np.argmin, self, axis, out, keepdims)

    def argsort(self, axis=-1, kind=None, order=None, **kw):
        return _argsort(self, axis)

    def reshape(self, *shape, order="C", copy=None):
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = shape[0]
        return _restructure(self, lambda i: i.reshape(shape, order=order))

    def ravel(self, order="C"):
        return _restructure(self, lambda i: i.ravel(order))

    def flatten(self, order="C"):
        return _restructure(self, lambda i: i.flatten(order))

    def transpose(self, *axes):
        if len(axes) == 1 and (axes[0] is None
                               or not isinstance(axes[0], (int, np.integer))):
            axes = axes[0]
        return _restructure(self, lambda i: i.transpose(axes) if axes else i.transpose())

    @property
    def T(self):
        return self.transpose()

    @property
    def mT(self):
        return np.swapaxes(self, -1, -2)

    def swapaxes(self, axis1, axis2):
        return _restructure(self, lambda i: i.swapaxes(axis1, axis2))

    def squeeze(self, axis=None):
        return _restructure(self, lambda i: i.squeeze(axis))

    def diagonal(self, offset=0, axis1=0, axis2=1):
        return _restructure(self, lambda i: i.diagonal(offset, axis1, axis2))

    def trace(self, offset=0, axis1=0, axis2=1, dtype=None, out=None):
        return _trace(self, offset, axis1, axis2, dtype, out)

    def dot(self, b, out=None):
        return _dot(self, b, out)

    def clip(self, min=None, max=None, out=None, **kw):
        return _clip(self, min, max, out)

    def take(self, indices, axis=None, out=None, mode="raise"):
        return _take_fn(self, indices, axis, out, mode)

    def repeat(self, repeats, axis=None):
        return _structural(np.repeat)(self, repeats, axis)

    def copy(self, order="C"):
        return _restructure(self, lambda i: i.copy(order))

    def astype(self, dtype, copy=True, **kw):
        if np.dtype(dtype) != np.float64 or self.kind != "float":
            raise _branch_error(f"astype({np.dtype(dtype)}) of a traced value")
        return self.copy() if copy else self

    def conj(self):
        return self

    conjugate = conj

    @property
    def real(self):
        return self

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of an unsized (0-d) traced value")
        return self.shape[0]


class _Array(_Traced):
    """An n-d tracer: its row ids into a store (a view of the store's ids or not)."""

    __slots__ = ("store", "ids", "kind", "n")

    def __init__(self, store, ids, kind, n):
        self.store = store
        self.ids = ids
        self.kind = kind
        self.n = n

    @property
    def shape(self):
        return self.ids.shape

    def rows(self):
        """The rows of this array's elements in C order (csr, size x n)."""
        if self.store is None:
            return None
        P = self.store.matrix()
        ids, slots = self.ids, self.store.slots
        if (ids.size == slots.size and ids.flags.c_contiguous and ids.size
                and ids.ctypes.data == slots.ctypes.data):
            return P
        return _take(P, ids)

    # in-place operators write through the store, so a view's `v += y` reaches the
    # array it views, as in NumPy
    def _inplace(self, ufunc, o):
        self[...] = ufunc(self, o)
        return self

    def __iadd__(self, o):
        return self._inplace(np.add, o)

    def __isub__(self, o):
        return self._inplace(np.subtract, o)

    def __imul__(self, o):
        return self._inplace(np.multiply, o)

    def __itruediv__(self, o):
        return self._inplace(np.true_divide, o)

    def __ipow__(self, o):
        return self._inplace(np.power, o)

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d traced value")
        for i in range(self.shape[0]):
            yield self[i]

    def __getitem__(self, key):
        _check_key(key)
        return _result(self, self.ids[key])

    def __setitem__(self, key, value):
        _check_key(key)
        value = _lift(value)
        _check_foreign(value)
        if self.store is None:
            raise _fail(f"an assignment into a {self.kind} array computed from x",
                        "it has no derivative to hold")
        if not self.ids.flags.writeable:
            raise ValueError("assignment destination is read-only")
        pos = np.asarray(self.ids[key])
        vshape = _shape(value)
        if np.broadcast_shapes(vshape, pos.shape) != pos.shape:
            raise ValueError(f"could not broadcast input array from shape {vshape} into "
                             f"shape {pos.shape}")
        if pos.ndim == 0 and not vshape:
            self.store.over[int(pos) - 1] = (value.cols if _is_float_traced(value)
                                             else _NO_COLS)
            return
        R = _rows_of(value, pos.shape, self.n)
        if R is None:
            R = _empty(pos.size, self.n)
        self.store.assign(pos.reshape(-1) - 1, R)


class _Scalar(_Traced):
    """A 0-d tracer: the sorted columns it depends on."""

    __slots__ = ("cols", "kind", "n")
    shape = ()

    def __init__(self, cols, kind, n):
        self.cols = cols
        self.kind = kind
        self.n = n


def _scalar_method(ufunc):
    # NumPy's object-array loops call x.sin() etc. on each element
    def method(self):
        return ufunc(self)
    method.__name__ = ufunc.__name__
    return method


for _uf in list(_registry.ELEMENTWISE):
    if _uf.nin == 1 and not hasattr(_Scalar, _uf.__name__):
        setattr(_Scalar, _uf.__name__, _scalar_method(_uf))


def _check_key(key):
    keys = key if isinstance(key, tuple) else (key,)
    for k in keys:
        if _is_traced(k) or is_tracer(k):
            raise _fail("indexing with a traced value (x[i] or x[mask] where i or the "
                        "mask is computed from x)",
                        "which elements are selected would depend on the values")
        if isinstance(k, list) and any(_is_traced(e) for e in k):
            raise _fail("indexing with a list holding traced values",
                        "which elements are selected would depend on the values")


def _new(rows, shape, kind, n):
    """A tracer of the given shape with its own store (a fresh array)."""
    shape = tuple(shape)
    if not shape:
        return _Scalar(_row_cols(rows, 0) if rows is not None else _NO_COLS, kind, n)
    if rows is None:
        return _Array(None, np.zeros(shape, dtype=_IDX), kind, n)
    store = _Store(rows)
    return _Array(store, store.slots.reshape(shape), kind, n)


def _derived(shape, kind, n):
    """A value computed from x that carries no derivative (booleans, indices)."""
    return _new(None, shape, kind, n)


def _as_array(t):
    """A tracer as an _Array (a scalar gets a one-row store and 0-d ids)."""
    if isinstance(t, _Array):
        return t
    if t.kind != "float":
        return _Array(None, np.zeros((), dtype=_IDX), t.kind, t.n)
    store = _Store(_repeat_row(t.cols, 1, t.n))
    return _Array(store, store.slots.reshape(()), t.kind, t.n)


def _result(t, new_ids):
    """The tracer whose ids are ``new_ids`` = some NumPy call applied to ``t.ids``."""
    new_ids = np.asarray(new_ids)
    if t.store is None:
        return _derived(new_ids.shape, t.kind, t.n)
    if new_ids.ndim == 0:
        i = int(new_ids)
        return _Scalar(t.store.row(i - 1) if i else _NO_COLS, t.kind, t.n)
    if np.may_share_memory(new_ids, t.store.slots):
        return _Array(t.store, new_ids, t.kind, t.n)  # a view, as NumPy gives one
    return _new(_take(t.store.matrix(), new_ids), new_ids.shape, t.kind, t.n)


def _restructure(t, op):
    return _result(_as_array(t), op(_as_array(t).ids))


def _rows_of(o, shape, n):
    """The rows of operand ``o`` broadcast to ``shape`` (csr); None if it carries none."""
    if not _is_float_traced(o):
        return None
    size = math.prod(shape)
    if isinstance(o, _Scalar):
        return _repeat_row(o.cols, size, n) if len(o.cols) else None
    if o.shape == tuple(shape):
        return o.rows()
    return _take(o.store.matrix(), np.broadcast_to(o.ids, shape))


def _n_of(objs):
    for o in objs:
        if _is_traced(o):
            return o.n
        if isinstance(o, (list, tuple)):
            n = _n_of(o)
            if n is not None:
                return n
    return None


def _union_of(operands, shape, n, kind="float"):
    """A fresh tracer whose element i depends on what operands' elements i depend on."""
    shape = tuple(shape)
    if not shape:
        cols = [o.cols for o in operands if isinstance(o, _Scalar) and o.kind == "float"]
        cols += [_row_cols(o.rows(), 0) for o in operands
                 if isinstance(o, _Array) and o.kind == "float"]
        if not cols:
            return _Scalar(_NO_COLS, kind, n)
        out = cols[0]
        for c in cols[1:]:
            out = np.union1d(out, c)
        return _Scalar(out, kind, n)
    size = math.prod(shape)
    mats = [_rows_of(o, shape, n) for o in operands]
    return _new(_union(mats, size, n), shape, kind, n)


def _objects_rows(arr, n):
    """The rows of an object array of 0-d tracers and numbers (csr, size x n)."""
    cols = []
    for e in arr.reshape(-1):
        _check_foreign(e)
        if isinstance(e, _Array):
            raise ValueError("a nest of sequences of different lengths (a ragged array) "
                             "cannot be made into an array")
        cols.append(e.cols if _is_float_traced(e) else _NO_COLS)
    ptr = np.zeros(len(cols) + 1, dtype=_IDX)
    np.cumsum([len(c) for c in cols], out=ptr[1:])
    flat = np.concatenate(cols).astype(_IDX) if cols else _NO_COLS
    return _csr(flat, ptr, (len(cols), n))


def _contains_traced(o):
    if isinstance(o, (list, tuple)):
        return any(_contains_traced(e) for e in o)
    if isinstance(o, np.ndarray) and o.dtype == object:
        return any(_contains_traced(e) for e in o.reshape(-1))
    return _is_traced(o)


def _lift(o):
    """Lists, tuples and object arrays holding tracers become one tracer; other
    operands pass unchanged (``np.array([x[0] ** 2, 1.0])`` traces as NumPy builds it)."""
    if _is_traced(o) or not isinstance(o, (list, tuple, np.ndarray)):
        return o
    if isinstance(o, np.ndarray) and o.dtype != object:
        return o
    if not _contains_traced(o):
        return o
    arr = np.array(o, dtype=object)
    n = _n_of(arr.reshape(-1).tolist())
    return _new(_objects_rows(arr, n), arr.shape, "float", n)


def _to_objects(t):
    """An object array of 0-d tracers (``np.asarray(x)`` on a tracer)."""
    out = np.empty(t.shape, dtype=object)
    flat = out.reshape(-1)
    if isinstance(t, _Scalar):
        out[()] = t
        return out
    P = t.rows()
    for i in range(t.size):
        flat[i] = _Scalar(_row_cols(P, i) if P is not None else _NO_COLS, t.kind, t.n)
    return out


# ---------------------------------------------------------------------------------------
# ufuncs

_BOOLEAN = frozenset(_registry.BOOLEAN)
_REDUCE_AS = {np.add: np.sum, np.multiply: np.prod, np.maximum: np.max,
              np.minimum: np.min, np.logical_and: np.all, np.logical_or: np.any}
_ACCUMULATE_AS = {np.add: np.cumsum, np.multiply: np.cumprod}


def _ufunc_call(ufunc, inputs):
    if ufunc is np.matmul:
        return _matmul(*inputs)
    n = _n_of(inputs)
    shape = np.broadcast_shapes(*[_shape(i) for i in inputs])
    if ufunc in _BOOLEAN:
        return _derived(shape, "bool", n)
    entry = _registry.ELEMENTWISE.get(ufunc)
    if entry is None:
        raise _fail(f"the ufunc {_registry.public_name(ufunc)}", "it has no rule",
                    _NO_RULE)
    if len(inputs) != entry.arity:
        raise TypeError(f"{ufunc.__name__} takes {entry.arity} argument(s)")
    # an operand whose partial is identically zero (floor, sign, ...) adds no dependence
    live = [i for i, kind in zip(inputs, entry.kinds) if kind != ("const", 0.0)]
    return _union_of(live, shape, n)


# ---------------------------------------------------------------------------------------
# NumPy functions

_FUNCTIONS = {}


def _register(*funcs):
    def deco(impl):
        for f in funcs:
            _FUNCTIONS[f] = impl
        return impl
    return deco


def _no_out(name, out):
    if out is not None:
        raise _fail(f"numpy.{name} with out=", "assign the result instead")


def _norm_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        a = operator.index(a)
        if not -ndim <= a < max(ndim, 1):
            raise np.exceptions.AxisError(a, ndim)
        out.append(a % max(ndim, 1))
    return tuple(sorted(set(out)))


def _reduce(a, axis=None, keepdims=False, kind="float"):
    """Union over ``axis`` (all by default): what a sum, max or norm depends on."""
    if not _is_traced(a):
        a = np.asarray(a)
    shape = _shape(a)
    n = a.n if _is_traced(a) else None
    axes = _norm_axes(axis, len(shape))
    kept = tuple(1 if i in axes else s for i, s in enumerate(shape))
    out_shape = kept if keepdims else tuple(s for i, s in enumerate(shape) if i not in axes)
    if not _is_float_traced(a) or kind != "float":
        return _derived(out_shape, kind if kind != "float" else "int", n)
    if isinstance(a, _Scalar):
        if not out_shape:
            return _Scalar(a.cols, "float", n)
        return _union_of([a], out_shape, n)
    P = a.rows()
    out_size = math.prod(out_shape)
    if out_size == 1:
        cols = np.unique(P.indices).astype(_IDX)
        return _new(_repeat_row(cols, 1, n), out_shape, "float", n)
    group = np.broadcast_to(np.arange(out_size, dtype=_IDX).reshape(kept), shape)
    return _new(_group_rows(P, group.reshape(-1), out_size), out_shape, "float", n)


@_register(np.sum, np.mean, np.prod)
def _sum(a, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
    _no_out("reduction", out)
    return _reduce(a, axis, keepdims)


@_register(np.max, np.min, np.amax, np.amin)
def _max(a, axis=None, out=None, keepdims=False, **kwargs):
    _no_out("max/min", out)
    return _reduce(a, axis, keepdims)


@_register(np.std, np.var)
def _var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kwargs):
    _no_out("std/var", out)
    return _reduce(a, axis, keepdims)


@_register(np.all, np.any)
def _all(a, axis=None, out=None, keepdims=False, **kwargs):
    _no_out("all/any", out)
    return _reduce(a, axis, keepdims, "bool")


@_register(np.count_nonzero)
def _count_nonzero(a, axis=None, *, keepdims=False):
    return _reduce(a, axis, keepdims, "int")


def _arg_reduce(func, a, axis, out, keepdims):
    _no_out(func.__name__, out)
    shape = func(np.zeros(_shape(a)), axis=axis, keepdims=keepdims).shape
    return _derived(shape, "int", a.n)


@_register(np.argmax)
def _argmax(a, axis=None, out=None, *, keepdims=False):
    return _arg_reduce(np.argmax, a, axis, out, keepdims)


@_register(np.argmin)
def _argmin(a, axis=None, out=None, *, keepdims=False):
    return _arg_reduce(np.argmin, a, axis, out, keepdims)


@_register(np.argsort)
def _argsort(a, axis=-1, kind=None, order=None, **kwargs):
    shape = np.argsort(np.zeros(_shape(a)), axis=axis).shape
    return _derived(shape, "int", a.n)


@_register(np.sort)
def _sort(a, axis=-1, kind=None, order=None, **kwargs):
    # which element lands where depends on the values: each output depends on the
    # whole sorted axis
    if axis is None:
        a, axis = np.ravel(a), 0
    r = _reduce(a, axis, keepdims=True)
    return _union_of([r], _shape(a), a.n)


@_register(np.linalg.norm)
def _norm(x, ord=None, axis=None, keepdims=False):
    return _reduce(x, axis, keepdims)


@_register(np.isclose)
def _isclose(a, b, *args, **kwargs):
    return _derived(np.broadcast_shapes(_shape(a), _shape(b)), "bool", _n_of((a, b)))


@_register(np.allclose, np.array_equal)
def _allclose(a, b, *args, **kwargs):
    return _derived((), "bool", _n_of((a, b)))


@_register(np.iscomplexobj)
def _iscomplexobj(x):
    return False


@_register(np.isrealobj)
def _isrealobj(x):
    return True


@_register(np.shape)
def _shape_fn(a):
    return _shape(a)


@_register(np.ndim)
def _ndim_fn(a):
    return len(_shape(a))


@_register(np.size)
def _size_fn(a, axis=None):
    shape = _shape(a)
    return math.prod(shape) if axis is None else shape[axis]


def _value_dependent(name):
    def impl(*args, **kwargs):
        raise _fail(f"numpy.{name} of a traced value",
                    "the size or the positions of its result depend on the values")
    return impl


for _f in (np.nonzero, np.flatnonzero, np.argwhere, np.searchsorted, np.unique):
    _FUNCTIONS[_f] = _value_dependent(_f.__name__)


@_register(*[f for f in (np.round, getattr(np, "around", None)) if f is not None])
def _round(a, decimals=0, out=None):
    _no_out("round", out)
    return _derived(_shape(a), "float", a.n) if _is_traced(a) else np.round(a, decimals)


# -- data movement: the same NumPy call on the row ids -------------------------------------

def _structural(func):
    def impl(a, *args, **kwargs):
        for o in list(args) + list(kwargs.values()):
            if _is_traced(o):
                raise _fail(f"numpy.{func.__name__} with a traced index or parameter",
                            "which elements move where would depend on the values")
        if not _is_traced(a):
            return func(a, *args, **kwargs)
        return _restructure(a, lambda i: func(i, *args, **kwargs))
    impl.__name__ = func.__name__
    return impl


for _f in (np.reshape, np.ravel, np.transpose, np.swapaxes, np.moveaxis, np.expand_dims,
           np.squeeze, np.broadcast_to, np.flip, np.fliplr, np.flipud, np.roll, np.rot90,
           np.take_along_axis, np.repeat, np.tile, np.diagonal, np.diag, np.diagflat,
           np.triu, np.tril, np.copy, np.real, np.matrix_transpose, np.permute_dims,
           np.resize):
    _FUNCTIONS[_f] = _structural(_f)


@_register(np.take)
def _take_fn(a, indices, axis=None, out=None, mode="raise"):
    _no_out("take", out)
    return _structural(np.take)(a, indices, axis=axis, mode=mode)


def _many(func):
    def impl(*arys):
        res = [_structural(func)(a) for a in arys]
        return res[0] if len(res) == 1 else tuple(res)
    return impl


_FUNCTIONS[np.atleast_1d] = _many(np.atleast_1d)
_FUNCTIONS[np.atleast_2d] = _many(np.atleast_2d)
_FUNCTIONS[np.atleast_3d] = _many(np.atleast_3d)


def _split(func):
    def impl(ary, *args, **kwargs):
        if not _is_traced(ary):
            return func(ary, *args, **kwargs)
        t = _as_array(ary)
        return [_result(t, part) for part in func(t.ids, *args, **kwargs)]
    return impl


for _f in (np.split, np.array_split, np.hsplit, np.vsplit, np.dsplit):
    _FUNCTIONS[_f] = _split(_f)


def _combine(func, arrays, n):
    """``func`` of several arrays (tracers or constants) that only moves elements."""
    mats, ids, offset, kinds = [], [], 0, []
    for a in arrays:
        a = _lift(a)
        _check_foreign(a)
        if _is_float_traced(a):
            size = a.size
            mats.append(a.rows() if isinstance(a, _Array) else _repeat_row(a.cols, 1, n))
            ids.append(np.arange(offset + 1, offset + size + 1,
                                 dtype=_IDX).reshape(a.shape))
            offset += size
        else:
            ids.append(np.zeros(_shape(a), dtype=_IDX))
        if _is_traced(a):
            kinds.append(a.kind)
    new = np.asarray(func(ids))
    kind = "float" if "float" in kinds or len(kinds) < len(arrays) else kinds[0]
    if not mats:
        return _derived(new.shape, kind, n)
    return _new(_take(_vstack(mats, n), new), new.shape, kind, n)


@_register(np.concatenate)
def _concatenate(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    _no_out("concatenate", out)
    arrays = list(arrays)
    return _combine(lambda ids: np.concatenate(ids, axis=axis), arrays, _n_of(arrays))


@_register(np.stack)
def _stack(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    _no_out("stack", out)
    arrays = list(arrays)
    return _combine(lambda ids: np.stack(ids, axis=axis), arrays, _n_of(arrays))


def _stack_like(func):
    def impl(tup, *args, **kwargs):
        kwargs.pop("dtype", None)
        kwargs.pop("casting", None)
        tup = list(tup)
        return _combine(lambda ids: func(ids), tup, _n_of(tup))
    return impl


for _f in (np.hstack, np.vstack, np.dstack, np.column_stack):
    _FUNCTIONS[_f] = _stack_like(_f)


@_register(np.append)
def _append(arr, values, axis=None):
    if axis is None:
        return _concatenate([np.ravel(arr), np.ravel(values)])
    return _concatenate([arr, values], axis=axis)


@_register(np.where)
def _where(condition, x=None, y=None):
    if x is None and y is None:
        return _value_dependent("where (with one argument)")()
    if x is None or y is None:
        raise ValueError("either both or neither of x and y should be given")
    condition, x, y = _lift(condition), _lift(x), _lift(y)
    shape = np.broadcast_shapes(_shape(condition), _shape(x), _shape(y))
    n = _n_of((condition, x, y))
    if _is_traced(condition) or not shape:
        return _union_of([x, y], shape, n)  # either side may be chosen: both count
    # a constant condition picks each element's side for every x
    cond = np.broadcast_to(np.asarray(condition, dtype=bool), shape)
    mats = []
    for side, keep in ((x, cond), (y, ~cond)):
        if _is_float_traced(side):
            t = _as_array(side)
            ids = np.where(keep, np.broadcast_to(t.ids, shape), 0)
            mats.append(_take(t.store.matrix(), ids))
    return _new(_union(mats, math.prod(shape), n), shape, "float", n)


@_register(np.clip)
def _clip(a, a_min=None, a_max=None, out=None, **kwargs):
    _no_out("clip", out)
    a_min = kwargs.pop("min", a_min)
    a_max = kwargs.pop("max", a_max)
    ops = [_lift(o) for o in (a, a_min, a_max) if o is not None and o is not np._NoValue]
    return _union_of(ops, np.broadcast_shapes(*[_shape(o) for o in ops]), _n_of(ops))


def _like(fill_value=None):
    def impl(a, *args, dtype=None, shape=None, **kwargs):
        fill = args[0] if fill_value is None and args else kwargs.pop("fill_value", None)
        shape = _shape(a) if shape is None else (
            (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape))
        if dtype is not None and np.dtype(dtype) != np.float64:
            return np.zeros(shape, dtype=dtype)
        n = _n_of((a, fill))
        if _is_float_traced(fill):
            return _union_of([fill], shape, n)
        return _new(_empty(math.prod(shape), n), shape, "float", n)
    return impl


_FUNCTIONS[np.zeros_like] = _like(0)
_FUNCTIONS[np.ones_like] = _like(1)
_FUNCTIONS[np.empty_like] = _like(0)
_FUNCTIONS[np.full_like] = _like()


# -- along an axis: cumulative sums, differences ------------------------------------------

def _along_axis(a, axis, M):
    """Apply the boolean (out_len x len) map ``M`` along ``axis`` of tracer ``a``."""
    t = _as_array(a)
    moved = np.moveaxis(t.ids, axis, -1)
    batch = moved.shape[:-1]
    P = _take(t.store.matrix(), moved)
    K = sp.kron(sp.eye_array(math.prod(batch), dtype=bool, format="csr"), M, format="csr")
    out = K @ P
    out.sort_indices()
    out_len = M.shape[0]
    back = np.arange(1, out.shape[0] + 1, dtype=_IDX).reshape(batch + (out_len,))
    back = np.moveaxis(back, -1, axis)
    return _new(_take(out, back), back.shape, "float", t.n)


@_register(np.cumsum, np.cumprod)
def _cumulative(a, axis=None, dtype=None, out=None):
    _no_out("cumsum", out)
    if axis is None:
        a, axis = np.ravel(a), 0
    if not _is_float_traced(a):
        return _derived(_shape(a), a.kind, a.n)
    axis = _norm_axes(axis, a.ndim)[0]
    L = a.shape[axis]
    M = sp.csr_array(np.tril(np.ones((L, L), dtype=bool)))
    return _along_axis(a, axis, M)


@_register(np.diff)
def _diff(a, n=1, axis=-1, prepend=np._NoValue, append=np._NoValue):
    ndim = len(_shape(a))
    axis = _norm_axes(axis, ndim)[0]
    if prepend is not np._NoValue or append is not np._NoValue:
        parts = []
        for extra in (prepend, a, append):
            if extra is np._NoValue:
                continue
            if extra is not a and len(_shape(extra)) == 0:
                shape = list(_shape(a))
                shape[axis] = 1
                extra = np.broadcast_to(extra, tuple(shape))
            parts.append(extra)
        a = _concatenate(parts, axis=axis)
    if n == 0:
        return a
    if not _is_float_traced(a):
        return _derived(tuple(s - n if i == axis else s for i, s in enumerate(_shape(a))),
                        a.kind, a.n)
    L = a.shape[axis]
    out_len = max(L - n, 0)
    rows = np.repeat(np.arange(out_len), n + 1)
    cols = (np.arange(out_len)[:, None] + np.arange(n + 1)[None, :]).reshape(-1)
    M = sp.csr_array((np.ones(len(rows), dtype=bool), (rows, cols)), shape=(out_len, L))
    return _along_axis(a, axis, M)


@_register(np.trace)
def _trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    _no_out("trace", out)
    return _reduce(np.diagonal(a, offset, axis1, axis2), -1)


@_register(np.polyval)
def _polyval(p, x):
    n = _n_of((p, x))
    pr = _reduce(p) if _is_traced(p) else None
    return _union_of([o for o in (pr, x) if o is not None], _shape(x), n)


# -- products: einsum is the general form; a 2-D constant matrix is used exactly -----------

_LETTERS = string.ascii_letters


def _parse_einsum(subscripts, shapes):
    subscripts = subscripts.replace(" ", "")
    if "->" in subscripts:
        ins, out = subscripts.split("->")
    else:
        ins, out = subscripts, None
    ins = ins.split(",")
    if len(ins) != len(shapes):
        raise ValueError("einsum: the number of subscripts does not match the operands")
    used = {c for c in subscripts if c.isalpha()}
    free = [c for c in _LETTERS if c not in used]
    ell_len = 0
    for s, shape in zip(ins, shapes):
        if "..." in s:
            ell_len = max(ell_len, len(shape) - len(s.replace("...", "")))
    ell = "".join(free[:ell_len])
    full = []
    for s, shape in zip(ins, shapes):
        if "..." in s:
            k = len(shape) - len(s.replace("...", ""))
            s = s.replace("...", ell[ell_len - k:] if k else "")
        if len(s) != len(shape):
            raise ValueError(f"einsum: subscripts {s!r} do not match an operand of shape "
                             f"{shape}")
        full.append(s)
    if out is None:
        counts = {}
        for s in full:
            for c in s:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, k in counts.items() if k == 1 and c not in ell))
    else:
        out = out.replace("...", ell)
    return full, out


def _contract(subs, out, operands):
    """The pattern of ``einsum(",".join(subs) + "->" + out, *operands)``."""
    n = _n_of(operands)
    dims = {}
    for s, o in zip(subs, operands):
        for c, d in zip(s, _shape(o)):
            if dims.get(c, 1) == 1:
                dims[c] = d
            elif d not in (1, dims[c]):
                raise ValueError(f"einsum: dimension {c!r} has sizes {dims[c]} and {d}")
    out_shape = tuple(dims[c] for c in out)
    traced = [i for i, o in enumerate(operands) if _is_float_traced(o)]
    if len(operands) == 2 and len(traced) == 1:
        exact = _constant_product(subs, out, operands, traced[0], out_shape, n)
        if exact is not None:
            return exact
    mats = []
    for i in traced:
        s, t = subs[i], _as_array(operands[i])
        ids = t.ids
        uniq = "".join(dict.fromkeys(s))
        if uniq != s:  # a repeated letter takes a diagonal
            ids = np.einsum(f"{s}->{uniq}", ids)
        P = _take(t.store.matrix(), ids)
        keep = "".join(c for c in uniq if c in out)
        if keep != uniq:  # letters summed over: union along them
            kept = tuple(d if c in out else 1 for c, d in zip(uniq, ids.shape))
            size = math.prod(kept)
            group = np.broadcast_to(np.arange(size, dtype=_IDX).reshape(kept), ids.shape)
            P = _group_rows(P, group.reshape(-1), size)
            shape = tuple(d for c, d in zip(uniq, ids.shape) if c in out)
        else:
            shape = ids.shape
        local = np.arange(1, P.shape[0] + 1, dtype=_IDX).reshape(shape)
        local = np.einsum(f"{keep}->{''.join(c for c in out if c in keep)}", local)
        expand = tuple(d if c in keep else 1 for c, d in zip(out, out_shape))
        local = np.broadcast_to(local.reshape(expand), out_shape)
        mats.append(_take(P, local))
    if not out_shape:
        return _union_of([_new(m, (1,), "float", n) for m in mats], (), n) if mats else \
            _Scalar(_NO_COLS, "float", n)
    return _new(_union(mats, math.prod(out_shape), n), out_shape, "float", n)


def _constant_product(subs, out, operands, ti, out_shape, n):
    """``C @ T`` or ``T @ C`` with a constant 2-D matrix C: exact, through C's nonzeros."""
    ci = 1 - ti
    C, T = operands[ci], operands[ti]
    sc, st = subs[ci], subs[ti]
    if (len(sc) != 2 or sc[0] == sc[1] or not isinstance(C, np.ndarray)
            or len(set(st)) != len(st)):
        return None
    a, b = sc
    rows = _as_array(T).rows() if isinstance(T, _Array) else _repeat_row(T.cols, 1, n)
    nz = sp.csr_array(C != 0)
    if st[:1] == b and b not in out and out[:1] == a and out[1:] == st[1:]:
        # out[a, c] = sum_b C[a, b] T[b, c]
        q = math.prod(T.shape[1:])
        L = nz if q == 1 else sp.kron(nz, sp.eye_array(q, dtype=bool), format="csr")
    elif st[-1:] == a and a not in out and out[-1:] == b and out[:-1] == st[:-1]:
        # out[c, b] = sum_a T[c, a] C[a, b]
        p = math.prod(T.shape[:-1])
        L = nz.T.tocsr() if p == 1 else sp.kron(sp.eye_array(p, dtype=bool), nz.T,
                                                format="csr")
    else:
        return None
    P = L @ rows
    P.sort_indices()
    return _new(P, out_shape, "float", n)


def _operand(o):
    o = _lift(o)
    if _is_traced(o):
        return o
    _check_foreign(o)
    if sp.issparse(o):
        raise _fail("a product with a scipy.sparse matrix", "dualad's forward mode does "
                    "not support it either; use a dense array or write the product with "
                    "slices")
    return np.asarray(o)


def _both(a, b):
    return _operand(a), _operand(b)


@_register(np.matmul)
def _matmul(a, b, out=None, **kwargs):
    _no_out("matmul", out)
    a, b = _both(a, b)
    na, nb = len(_shape(a)), len(_shape(b))
    if na == 0 or nb == 0:
        raise ValueError("matmul: Input operand does not have enough dimensions")
    if na == 1 and nb == 1:
        return _contract(["i", "i"], "", [a, b])
    if na == 1:
        batch = _LETTERS[:nb - 2]
        return _contract(["y", batch + "yz"], batch + "z", [a, b])
    if nb == 1:
        batch = _LETTERS[:na - 2]
        return _contract([batch + "xy", "y"], batch + "x", [a, b])
    nbatch = max(na, nb) - 2
    batch = _LETTERS[:nbatch]
    ba, bb = batch[nbatch - (na - 2):], batch[nbatch - (nb - 2):]
    return _contract([ba + "xy", bb + "yz"], batch + "xz", [a, b])


@_register(np.dot)
def _dot(a, b, out=None):
    _no_out("dot", out)
    a, b = _both(a, b)
    na, nb = len(_shape(a)), len(_shape(b))
    if na == 0 or nb == 0:
        return np.multiply(a, b)
    if nb == 1:
        la = _LETTERS[:na]
        return _contract([la, la[-1]], la[:-1], [a, b])
    la = _LETTERS[:na]
    lb = _LETTERS[na:na + nb - 2] + la[-1] + _LETTERS[na + nb - 2]
    return _contract([la, lb], la[:-1] + lb[:-2] + lb[-1], [a, b])


@_register(np.vdot)
def _vdot(a, b):
    a, b = _both(a, b)
    return _contract(["i", "i"], "", [np.ravel(a), np.ravel(b)])


@_register(np.inner)
def _inner(a, b):
    a, b = _both(a, b)
    na, nb = len(_shape(a)), len(_shape(b))
    if na == 0 or nb == 0:
        return np.multiply(a, b)
    la = _LETTERS[:na]
    lb = _LETTERS[na:na + nb - 1] + la[-1]
    return _contract([la, lb], la[:-1] + lb[:-1], [a, b])


@_register(np.outer)
def _outer(a, b, out=None):
    _no_out("outer", out)
    a, b = _both(a, b)
    return _contract(["i", "j"], "ij", [np.ravel(a), np.ravel(b)])


@_register(np.tensordot)
def _tensordot(a, b, axes=2):
    a, b = _both(a, b)
    na, nb = len(_shape(a)), len(_shape(b))
    if isinstance(axes, (int, np.integer)):
        ax_a, ax_b = list(range(na - axes, na)), list(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, (int, np.integer)) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, (int, np.integer)) else list(ax_b)
    ax_a = [x % na for x in ax_a]
    ax_b = [x % nb for x in ax_b]
    la = list(_LETTERS[:na])
    lb = list(_LETTERS[na:na + nb])
    for i, j in zip(ax_a, ax_b):
        lb[j] = la[i]
    out = [c for i, c in enumerate(la) if i not in ax_a] + \
          [c for j, c in enumerate(lb) if j not in ax_b]
    return _contract(["".join(la), "".join(lb)], "".join(out), [a, b])


@_register(np.einsum)
def _einsum(*operands, out=None, optimize=False, **kwargs):
    _no_out("einsum", out)
    if not operands or not isinstance(operands[0], str):
        raise _fail("numpy.einsum in its interleaved (operand, sublist) form",
                    "write the subscripts as a string")
    ops = [_operand(o) for o in operands[1:]]
    subs, out_sub = _parse_einsum(operands[0], [_shape(o) for o in ops])
    return _contract(subs, out_sub, ops)


# -- linear algebra: every output depends on the whole matrix (per batch) ------------------

def _whole(a, nd):
    """What each matrix of a stack depends on: the union over its last ``nd`` axes."""
    return _reduce(a, tuple(range(-nd, 0)), keepdims=True)


@_register(np.linalg.det)
def _det(a):
    return _reduce(a, (-2, -1))


@_register(np.linalg.slogdet)
def _slogdet(a):
    logdet = _reduce(a, (-2, -1))
    sign = _derived(logdet.shape, "float", a.n)
    return _result_type(np.linalg.slogdet)(sign, logdet)


@_register(np.linalg.inv)
def _inv(a):
    return _union_of([_whole(a, 2)], a.shape, a.n)


@_register(np.linalg.eigh)
def _eigh(a, UPLO="L"):
    w = _union_of([_whole(a, 2)[..., 0]], a.shape[:-1], a.n)
    v = _union_of([_whole(a, 2)], a.shape, a.n)
    return _result_type(np.linalg.eigh)(w, v)


@_register(np.linalg.cholesky)
def _cholesky(a, /, *, upper=False):
    full = _union_of([_whole(a, 2)], a.shape, a.n)
    return np.triu(full) if upper else np.tril(full)


@_register(np.linalg.solve)
def _solve(a, b):
    a, b = _both(a, b)
    n = _n_of((a, b))
    sa, sb = _shape(a), _shape(b)
    if len(sb) == 1:
        out_shape = np.broadcast_shapes(sa[:-2], ()) + (sb[0],)
        parts = [_whole(a, 2)[..., 0] if _is_traced(a) else None,
                 _reduce(b, 0, keepdims=True) if _is_traced(b) else None]
    else:
        out_shape = np.broadcast_shapes(sa[:-2], sb[:-2]) + sb[-2:]
        parts = [_whole(a, 2) if _is_traced(a) else None,
                 _reduce(b, -2, keepdims=True) if _is_traced(b) else None]
    return _union_of([p for p in parts if p is not None], out_shape, n)


_RESULT_TYPES = {}


def _result_type(func):
    if func not in _RESULT_TYPES:
        _RESULT_TYPES[func] = type(func(np.eye(1)))
    return _RESULT_TYPES[func]


# ---------------------------------------------------------------------------------------
# detection

def _output_rows(out, n):
    """``(rows, shape)`` of what ``fun`` returned: its elements' columns (csr)."""
    if out is None:
        raise TypeError("the differentiated function returned None; it must return a "
                        "number or an array (is a `return` missing?)")
    if isinstance(out, _Traced):
        if out.kind != "float":
            return _empty(out.size, n), out.shape
        if isinstance(out, _Scalar):
            return _repeat_row(out.cols, 1, n), ()
        return out.rows(), out.shape
    if isinstance(out, (list, tuple)) or (isinstance(out, np.ndarray)
                                          and out.dtype == object):
        arr = np.array(out, dtype=object)
        return _objects_rows(arr, n), arr.shape
    _check_foreign(out)
    try:
        value = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError("the differentiated function must return a number or an array of "
                        f"numbers, not {type(out).__name__}") from None
    return _empty(value.size, n), value.shape


def _plain_input(x, what):
    if is_tracer(x):
        raise TypeError(f"{what} takes a plain float array x, not a dualad value of an "
                        "enclosing differentiation (sparse Jacobians do not nest)")
    return forward.as_input(x)


def _detect(fun, x, args):
    shape = tuple(x.shape)
    n = x.size
    eye = _csr(np.arange(n, dtype=_IDX), np.arange(n + 1, dtype=_IDX), (n, n))
    tx = _new(eye, shape, "float", n) if shape else _Scalar(np.zeros(1, dtype=_IDX),
                                                              "float", 1)
    rows, out_shape = _output_rows(fun(tx, *args), n)
    return _canonical(rows), tuple(out_shape)


def _canonical(S):
    """Sorted, duplicate-free, with SciPy's usual 32-bit indices when they fit."""
    S = sp.csr_array(S, dtype=bool)
    S.sum_duplicates()
    S.sort_indices()
    if max(S.nnz, S.shape[1]) < np.iinfo(np.int32).max:
        S = sp.csr_array((S.data, S.indices.astype(np.int32), S.indptr.astype(np.int32)),
                         shape=S.shape)
        S.has_sorted_indices = True
    return S


def detect_sparsity(fun, x, args=()):
    """The sparsity pattern of the Jacobian of ``fun``, found by tracing ``fun`` once.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args)`` written with NumPy, returning an array (or a scalar).
    x : array_like
        An input of the shape ``fun`` takes.  Only its shape is used: the pattern holds
        for every ``x``.
    args : tuple, optional
        Extra arguments passed to ``fun`` unchanged (constants: their zeros are used,
        so the pattern holds for every ``x`` with these ``args``).

    Returns
    -------
    scipy.sparse.csr_array, shape (m, n)
        Boolean; ``True`` where an output element (row, ``m = fun(x).size``) may depend
        on an input element (column, ``n = x.size``), both in C order.

    Raises
    ------
    TypeError
        If ``fun`` branches on a value of ``x`` (``if x[0] > 0:``), converts one to a
        number (``float``, ``math.*``), indexes with one, or calls a function the
        detector has no rule for.  The message names the cause; pass ``sparsity=``
        explicitly to :func:`sparse_jacobian` in that case.

    See Also
    --------
    color_columns, sparse_jacobian

    Notes
    -----
    The detector never evaluates ``fun`` on numbers.  The pattern is *global* (valid at
    every ``x``), and conservative: an entry that vanishes only at some points (``x *
    y`` at ``y = 0``), or an element both sides of ``np.where`` count for, is kept.
    Cost: one call of ``fun`` on sparse boolean matrices.

    Examples
    --------
    >>> import numpy as np
    >>> from dualad.sparse import detect_sparsity
    >>> def f(x):
    ...     return np.concatenate([x[1:] - x[:-1], [np.sum(x[:2] ** 2)]])
    >>> detect_sparsity(f, np.zeros(4)).toarray().astype(int)
    array([[1, 1, 0, 0],
           [0, 1, 1, 0],
           [0, 0, 1, 1],
           [1, 1, 0, 0]])
    """
    if not callable(fun):
        raise TypeError(f"detect_sparsity expects a callable, got {type(fun).__name__}")
    x = _plain_input(x, "detect_sparsity")
    return _detect(fun, x, tuple(args))[0]


# ---------------------------------------------------------------------------------------
# colouring

def _as_pattern(sparsity):
    """A user-given pattern as a canonical boolean csr_array."""
    if sp.issparse(sparsity):
        S = sp.csr_array(sparsity)
        S = sp.csr_array(S != 0) if S.dtype != bool else S.copy()
    else:
        arr = np.asarray(sparsity)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                       or arr.dtype == bool):
            raise TypeError("sparsity must be 'auto', a scipy.sparse matrix or a boolean "
                            f"array of shape (m, n), got {type(sparsity).__name__}")
        if arr.ndim != 2:
            raise ValueError(f"sparsity must be 2-D, shape (m, n), got shape {arr.shape}")
        S = sp.csr_array(arr != 0)
    if S.ndim != 2:
        raise ValueError(f"sparsity must be 2-D, shape (m, n), got shape {S.shape}")
    S.eliminate_zeros()
    return _canonical(S)


def _greedy(csc_ptr, csc_rows, order, m):
    """Greedy distance-1 colouring of the column intersection graph, in ``order``.

    Each row keeps the set of colours already used by its columns as a bitset (a
    Python int), so a column's forbidden colours are the OR of its rows' sets: the
    cost is proportional to nnz, and no n x n graph is formed.
    """
    used = [0] * m
    colors = [0] * len(order)
    for j in order:
        rows = csc_rows[csc_ptr[j]:csc_ptr[j + 1]]
        forbidden = 0
        for r in rows:
            forbidden |= used[r]
        c = ((forbidden + 1) & ~forbidden).bit_length() - 1  # lowest free colour
        bit = 1 << c
        for r in rows:
            used[r] |= bit
        colors[j] = c
    return np.array(colors, dtype=_IDX)


def _degrees(S):
    """Degrees in the column intersection graph: exact when S^T S is affordable, else
    the upper bound (the sum over a column's rows of the row's length minus one)."""
    row_len = np.diff(S.indptr).astype(np.float64)
    if float(row_len @ row_len) <= 2e7:
        G = (S.T @ S).tocsr()
        return np.diff(G.indptr) - (G.diagonal() != 0)
    return S.T.astype(np.float64) @ np.maximum(row_len - 1.0, 0.0)


def color_columns(sparsity):
    """Colour the columns of a sparsity pattern so that no two columns of one colour
    share a row (Curtis–Powell–Reid grouping).

    Parameters
    ----------
    sparsity : scipy.sparse matrix or array_like, shape (m, n)
        The pattern: nonzero (or ``True``) where the Jacobian may be nonzero.

    Returns
    -------
    ndarray of int64, shape (n,)
        ``colors[j]`` in ``0 .. ncolors - 1``.  Columns of one colour have disjoint
        rows, so one directional derivative along the sum of their unit vectors gives
        all their nonzeros.

    Raises
    ------
    TypeError, ValueError
        If ``sparsity`` is not a 2-D matrix or array.

    See Also
    --------
    detect_sparsity, sparse_jacobian

    Notes
    -----
    Greedy distance-1 colouring of the column intersection graph (columns adjacent when
    they share a row), in the natural order and in largest-degree-first order; the
    colouring with fewer colours is kept (the natural one on ties, and the largest-first
    pass is skipped when the natural one already meets the lower bound, the largest
    number of nonzeros in a row).  Cost: proportional to the number of nonzeros times
    the number of colours / 64.  A dense row forces one colour per column; for such
    Jacobians use :func:`linear_operator` or reverse mode.

    Examples
    --------
    >>> import numpy as np
    >>> from dualad.sparse import color_columns
    >>> tridiagonal = np.eye(6) + np.eye(6, k=1) + np.eye(6, k=-1)
    >>> color_columns(tridiagonal)
    array([0, 1, 2, 0, 1, 2])
    """
    S = _as_pattern(sparsity)
    m, n = S.shape
    if n == 0:
        return np.zeros(0, dtype=_IDX)
    C = S.tocsc()
    C.sort_indices()
    ptr, rows = C.indptr.tolist(), C.indices.tolist()
    best = _greedy(ptr, rows, range(n), m)
    lower = int(np.diff(S.indptr).max()) if m else 0
    if best.max() + 1 > max(lower, 1):
        order = np.argsort(-_degrees(S), kind="stable").tolist()
        other = _greedy(ptr, rows, order, m)
        if other.max() < best.max():
            best = other
    return best


# ---------------------------------------------------------------------------------------
# the compressed Jacobian

class SparseJacobian:
    """SparseJacobian(fun, x, args=(), sparsity="auto", chunk=None)

    The sparse Jacobian of ``fun`` with a pattern found (or given) once.

    Build it with :func:`sparse_jacobian`.  Calling it, ``J(x, *args)``, returns the
    Jacobian at ``x`` as a ``scipy.sparse.csr_array``: SciPy's ``jac`` for
    ``least_squares`` (with ``jac_sparsity=J.sparsity``) and ``root``.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args)`` written with NumPy.
    x : array_like
        A point where the pattern is detected (only its shape matters).
    args : tuple, optional
        Extra arguments used for detection.
    sparsity : "auto", scipy.sparse matrix or array_like of bool, optional
        "auto" (default) detects the pattern by tracing (:func:`detect_sparsity`);
        otherwise the pattern itself, shape ``(m, n)``.
    chunk : int, optional
        Colours pushed per evaluation of ``fun``.  By default up to 12 in one
        evaluation (the fewest evaluations of at most 12 lanes above that); ``chunk=1``
        makes one evaluation per colour.

    Attributes
    ----------
    sparsity : scipy.sparse.csr_array of bool, shape (m, n)
        The pattern; pass it to ``least_squares`` as ``jac_sparsity``.
    colors : ndarray of int64, shape (n,)
        The colour of each column (:func:`color_columns`).
    ncolors : int
        The number of colours: directional derivatives per Jacobian.
    passes : int
        Evaluations of ``fun`` (forward sweeps) made by the last call:
        ``ceil(ncolors / chunk)``; 0 before the first call.
    chunk : int
        Colours (tangent lanes) per forward sweep.
    shape : tuple of int
        ``(m, n)``.

    Raises
    ------
    ValueError
        If ``x`` or ``fun(x)`` does not have the size the pattern was made for.

    See Also
    --------
    sparse_jacobian, SparseJacobianTransform, linear_operator

    Examples
    --------
    >>> import numpy as np
    >>> from dualad.sparse import sparse_jacobian
    >>> def f(x):
    ...     return x[1:] ** 2 - x[:-1]
    >>> J = sparse_jacobian(f, np.ones(5))
    >>> J.ncolors, J.sparsity.nnz
    (2, 8)
    >>> J(np.arange(5.0)).toarray()
    array([[-1.,  2.,  0.,  0.,  0.],
           [ 0., -1.,  4.,  0.,  0.],
           [ 0.,  0., -1.,  6.,  0.],
           [ 0.,  0.,  0., -1.,  8.]])
    >>> J.passes
    1
    """

    def __init__(self, fun, x, args=(), sparsity="auto", chunk=None):
        if not callable(fun):
            raise TypeError(f"sparse_jacobian expects a callable, got {type(fun).__name__}")
        x = _plain_input(x, "sparse_jacobian")
        args = tuple(args)
        self.fun = fun
        self.x_shape = tuple(x.shape)
        n = x.size
        if isinstance(sparsity, str):
            if sparsity != "auto":
                raise ValueError(f"sparsity must be 'auto' or a pattern, got {sparsity!r}")
            S, self.out_shape = _detect(fun, x, args)
        elif sparsity is None:
            raise ValueError("sparsity must be 'auto' or a pattern, got None")
        else:
            S = _as_pattern(sparsity)
            if S.shape[1] != n:
                raise ValueError(f"the sparsity pattern has {S.shape[1]} columns but x has "
                                 f"{n} elements")
            self.out_shape = None
        self.sparsity = S
        self.shape = S.shape
        self.colors = color_columns(S)
        self.ncolors = int(self.colors.max()) + 1 if n else 0
        if chunk is not None and (int(chunk) != chunk or chunk < 1):
            raise ValueError(f"chunk must be a positive integer or None, got {chunk!r}")
        self.chunk = forward.chunk_size(self.ncolors, chunk)
        self.passes = 0
        seeds = np.zeros((self.ncolors, n))
        seeds[self.colors, np.arange(n)] = 1.0
        self._seeds = seeds.reshape((self.ncolors,) + self.x_shape)
        m = S.shape[0]
        entry_rows = np.repeat(np.arange(m, dtype=_IDX), np.diff(S.indptr))
        # J[i, j] is lane colors[j] of output i: one gather from the compressed tangents
        self._gather = self.colors[S.indices] * m + entry_rows

    def __repr__(self):
        return (f"<dualad SparseJacobian of {getattr(self.fun, '__name__', 'fun')}: shape "
                f"{self.shape}, {self.sparsity.nnz} nonzeros, {self.ncolors} colours>")

    def __call__(self, x, *args):
        return self.value_and_jac(x, *args)[1]

    def value_and_jac(self, x, *args):
        """``(fun(x, *args), J(x))`` from the same forward sweeps.

        Parameters
        ----------
        x : array_like
            The point, of the shape the pattern was made for.
        *args
            Extra arguments passed to ``fun``.

        Returns
        -------
        value : ndarray
            ``fun(x, *args)`` as float64.
        jac : scipy.sparse.csr_array, shape (m, n)
            The Jacobian, float64, with the pattern's structure (entries of the pattern
            that are zero at this ``x`` are stored as explicit zeros).

        Raises
        ------
        ValueError
            If ``x`` or ``fun(x)`` does not have the size the pattern was made for.

        Examples
        --------
        >>> import numpy as np
        >>> from dualad.sparse import sparse_jacobian
        >>> J = sparse_jacobian(np.exp, np.zeros(3))
        >>> value, jac = J.value_and_jac(np.zeros(3))
        >>> value, jac.diagonal()
        (array([1., 1., 1.]), array([1., 1., 1.]))
        """
        x = _plain_input(x, "the sparse Jacobian")
        if tuple(x.shape) != self.x_shape:
            raise ValueError(f"x has shape {x.shape} but the sparsity pattern was made for "
                             f"shape {self.x_shape}; build a new sparse Jacobian (or use "
                             "dualad.sparse.SparseJacobianTransform, one per shape)")
        m, n = self.shape
        blocks, value, passes = [], None, 0
        previous = _memory.cache_on()  # the sweeps' large temporaries: see dualad._memory
        try:
            for start in range(0, self.ncolors, self.chunk):
                # a copy: the sweep owns its tangents (item assignment in fun writes there)
                seeds = self._seeds[start:start + self.chunk].copy()
                value, tangent = forward.push(self.fun, x, seeds, args)
                passes += 1
                tangent = np.asarray(tangent, dtype=np.float64)
                blocks.append(tangent.reshape(tangent.shape[0], -1))
        finally:
            _memory.cache_off(previous)
        if passes == 0:
            value, tangent = forward.push(self.fun, x, np.zeros((0,) + self.x_shape), args)
            passes = 1
            blocks.append(np.zeros((0, np.size(value))))
        self.passes = passes
        value = np.asarray(value, dtype=np.float64)
        if value.size != m:
            raise ValueError(f"fun returned {value.size} values but the sparsity pattern "
                             f"has {m} rows")
        compressed = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
        data = compressed.reshape(-1)[self._gather]
        S = self.sparsity
        # copies: a caller may work in place on the index arrays (eliminate_zeros)
        jac = sp.csr_array((data, S.indices.copy(), S.indptr.copy()), shape=(m, n),
                           copy=False)
        jac.has_sorted_indices = True
        return value, jac


def sparse_jacobian(fun, x, args=(), sparsity="auto", chunk=None):
    """The sparse Jacobian of ``fun``: pattern detected once, columns coloured, one
    directional derivative per colour.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args)`` written with NumPy, returning an array of ``m`` elements
        (any shape; rows are its elements in C order).
    x : array_like
        A point of the shape ``fun`` takes (``n = x.size`` columns); the pattern is
        detected for this shape and reused.
    args : tuple, optional
        Extra arguments passed to ``fun`` during detection.
    sparsity : "auto", scipy.sparse matrix or array_like of bool, optional
        "auto" (default) detects the pattern by tracing ``fun`` once
        (:func:`detect_sparsity`).  Otherwise the pattern itself, shape ``(m, n)``:
        nonzero wherever the Jacobian may be nonzero.
    chunk : int, optional
        Colours pushed per evaluation of ``fun`` (default: up to 12 in one evaluation;
        ``chunk=1`` gives one evaluation per colour).

    Returns
    -------
    SparseJacobian
        ``J(x, *args)`` returns a float64 ``scipy.sparse.csr_array`` of shape
        ``(m, n)``; ``J.sparsity``, ``J.colors``, ``J.ncolors`` and ``J.passes`` describe
        the work.

    Raises
    ------
    TypeError
        If detection cannot follow ``fun`` (a branch on a value of ``x``, ``float()``,
        an index computed from ``x``, a function without a sparsity rule); the message
        names it.  Pass ``sparsity=`` explicitly then.
    ValueError
        If a given pattern does not have ``x.size`` columns, or ``chunk < 1``.

    See Also
    --------
    detect_sparsity, color_columns, SparseJacobianTransform, linear_operator,
    dualad.jacobian

    Notes
    -----
    Cost per Jacobian: ``ncolors`` directional derivatives in ``ceil(ncolors / chunk)``
    evaluations of ``fun`` on dual arrays, instead of ``n``.  A banded Jacobian of
    bandwidth ``b`` needs about ``2b + 1`` colours whatever ``n`` is.  Detection and
    colouring are paid once, at construction.

    The pattern must hold at every point where ``J`` is called; a detected one does (it
    never depends on values), a given one is trusted: a nonzero outside it is silently
    attributed to another column of its colour.

    Examples
    --------
    Broyden's tridiagonal function, a classic large sparse test problem: three colours,
    whatever the size.

    >>> import numpy as np
    >>> from dualad.sparse import sparse_jacobian
    >>> def broyden(x):
    ...     X = np.concatenate([[0.0], x, [0.0]])
    ...     return (3.0 - 2.0 * x) * x - X[:-2] - 2.0 * X[2:] + 1.0
    >>> J = sparse_jacobian(broyden, np.zeros(1000))
    >>> J.ncolors, J.sparsity.nnz
    (3, 2998)
    >>> jac = J(np.ones(1000))
    >>> jac.shape, jac[0, 0], jac[0, 1], jac[1, 0]
    ((1000, 1000), np.float64(-1.0), np.float64(-2.0), np.float64(-1.0))

    With ``scipy.optimize.least_squares``, which then solves with LSMR:

    >>> from scipy.optimize import least_squares
    >>> res = least_squares(broyden, -np.ones(1000), jac=J, jac_sparsity=J.sparsity)
    >>> bool(res.success), bool(np.abs(res.fun).max() < 1e-8)
    (True, True)
    """
    return SparseJacobian(fun, x, args, sparsity, chunk)


class SparseJacobianTransform:
    """SparseJacobianTransform(fun, sparsity="auto", chunk=None)

    ``jac(x, *args)`` returning sparse Jacobians: the pattern is detected on the first
    call for each input shape and reused.

    This is what ``dualad.jacobian(fun, sparsity=...)`` returns.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args)`` written with NumPy.
    sparsity : "auto", scipy.sparse matrix or array_like of bool, optional
        "auto" (default) detects the pattern on the first call per shape of ``x`` (with
        that call's ``args``: the pattern must not depend on the values of ``args``);
        otherwise the pattern, shape ``(m, n)``, used for every call.
    chunk : int, optional
        Colours pushed per evaluation (see :func:`sparse_jacobian`).

    Attributes
    ----------
    last : SparseJacobian or None
        The sparse Jacobian used by the last call (its ``ncolors``, ``passes``...).

    Raises
    ------
    TypeError
        If ``fun`` is not callable.
    ValueError
        For a ``sparsity`` string other than "auto", or ``chunk < 1``.

    See Also
    --------
    sparse_jacobian, dualad.jacobian

    Examples
    --------
    >>> import numpy as np
    >>> from dualad.sparse import SparseJacobianTransform
    >>> jac = SparseJacobianTransform(lambda x, c: c * x ** 2)
    >>> jac(np.array([1.0, 2.0]), 3.0).toarray()
    array([[ 6.,  0.],
           [ 0., 12.]])
    >>> jac.ncolors, jac.passes
    (1, 1)
    """

    def __init__(self, fun, sparsity="auto", chunk=None):
        if not callable(fun):
            raise TypeError(f"jacobian expects a callable, got {type(fun).__name__}")
        if isinstance(sparsity, str) and sparsity != "auto":
            raise ValueError(f"sparsity must be 'auto' or a pattern, got {sparsity!r}")
        if chunk is not None and (int(chunk) != chunk or chunk < 1):
            raise ValueError(f"chunk must be a positive integer or None, got {chunk!r}")
        self.fun = fun
        self.sparsity_arg = sparsity if isinstance(sparsity, str) else _as_pattern(sparsity)
        self.chunk = chunk
        self.last = None
        self._cache = {}
        self.__name__ = f"jacobian({getattr(fun, '__name__', 'fun')}, sparse)"
        self.__doc__ = getattr(fun, "__doc__", None)

    def __repr__(self):
        return f"<dualad {self.__name__}>"

    def _for(self, x, args):
        x = _plain_input(x, "the sparse Jacobian")
        key = tuple(x.shape)
        J = self._cache.get(key)
        if J is None:
            J = SparseJacobian(self.fun, x, args, self.sparsity_arg, self.chunk)
            self._cache[key] = J
        self.last = J
        return J, x

    def __call__(self, x, *args):
        J, x = self._for(x, args)
        return J(x, *args)

    def value_and_jac(self, x, *args):
        """``(fun(x, *args), J(x))`` from the same sweeps (see
        :meth:`SparseJacobian.value_and_jac`).

        Parameters
        ----------
        x : array_like
            The point.
        *args
            Extra arguments passed to ``fun``.

        Returns
        -------
        value : ndarray
            ``fun(x, *args)``.
        jac : scipy.sparse.csr_array, shape (m, n)
            The Jacobian.

        Examples
        --------
        >>> import numpy as np
        >>> from dualad.sparse import SparseJacobianTransform
        >>> value, jac = SparseJacobianTransform(np.sin).value_and_jac(np.zeros(2))
        >>> value, jac.toarray()
        (array([0., 0.]), array([[1., 0.],
               [0., 1.]]))
        """
        J, x = self._for(x, args)
        return J.value_and_jac(x, *args)

    @property
    def sparsity(self):
        """scipy.sparse.csr_array or None: the pattern of the last call."""
        return None if self.last is None else self.last.sparsity

    @property
    def colors(self):
        """ndarray or None: the column colours of the last call."""
        return None if self.last is None else self.last.colors

    @property
    def ncolors(self):
        """int or None: the number of colours of the last call."""
        return None if self.last is None else self.last.ncolors

    @property
    def passes(self):
        """int: evaluations of ``fun`` made by the last call (0 before the first)."""
        return 0 if self.last is None else self.last.passes


# ---------------------------------------------------------------------------------------
# matrix-free

#: Lanes per forward sweep in ``matmat`` (bounds the memory of one sweep).
_MATMAT_LANES = 64


class _JacobianOperator(LinearOperator):
    """The Jacobian at one point as a LinearOperator (see :func:`linear_operator`)."""

    def __init__(self, fun, x, args):
        if not callable(fun):
            raise TypeError(f"linear_operator expects a callable, got {type(fun).__name__}")
        x = _plain_input(x, "linear_operator")
        self.fun, self.x, self.args = fun, x, tuple(args)
        value, self._pullback = reverse.vjp(fun, x, self.args)  # the one recording
        if is_tracer(value):
            raise TypeError("linear_operator: fun returned a value of an enclosing "
                            "differentiation; it does not nest")
        self.value = np.asarray(value, dtype=np.float64)
        self.out_shape = self.value.shape
        self.nmatvec = 0
        self.nrmatvec = 0
        super().__init__(dtype=np.float64, shape=(self.value.size, x.size))

    def _split(self, v, apply):
        if np.iscomplexobj(v):
            return apply(np.ascontiguousarray(v.real)) + 1j * apply(
                np.ascontiguousarray(v.imag))
        return apply(np.asarray(v, dtype=np.float64))

    def _forward(self, V):
        """J @ V for V of shape (n, k): forward sweeps of up to _MATMAT_LANES lanes."""
        k = V.shape[1]
        out = np.empty((self.shape[0], k))
        for start in range(0, k, _MATMAT_LANES):
            # a copy: the sweep owns its tangents (item assignment in fun writes there)
            lanes = np.array(V[:, start:start + _MATMAT_LANES].T, dtype=np.float64,
                             order="C")
            seeds = lanes.reshape((lanes.shape[0],) + self.x.shape)
            _, tangent = forward.push(self.fun, self.x, seeds, self.args)
            self.nmatvec += lanes.shape[0]
            out[:, start:start + _MATMAT_LANES] = np.asarray(
                tangent, dtype=np.float64).reshape(lanes.shape[0], -1).T
        return out

    def _backward(self, u):
        self.nrmatvec += 1
        g = self._pullback(np.reshape(u, self.out_shape))
        return np.asarray(g, dtype=np.float64).reshape(-1)

    def _matvec(self, v):
        return self._split(np.reshape(v, (-1, 1)), self._forward).reshape(-1)

    def _matmat(self, V):
        return self._split(np.asarray(V), self._forward)

    def _rmatvec(self, u):
        return self._split(np.reshape(u, -1), self._backward)

    def _rmatmat(self, U):
        U = np.asarray(U)
        cols = [self._rmatvec(U[:, i]) for i in range(U.shape[1])]
        if not cols:
            return np.zeros((self.shape[1], 0))
        return np.stack(cols, axis=1)


def linear_operator(f, x, *args):
    """The Jacobian of ``f`` at ``x`` as a matrix-free
    ``scipy.sparse.linalg.LinearOperator``.

    Parameters
    ----------
    f : callable
        ``f(x, *args)`` written with NumPy.
    x : array_like
        The point (any shape; the operator acts on ``x.ravel()``).
    *args
        Extra arguments passed to ``f`` unchanged.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator
        Shape ``(m, n)`` with ``m = f(x).size``, ``n = x.size``, dtype float64.
        ``matvec(v)`` is ``J @ v`` (one forward sweep), ``rmatvec(u)`` is ``J.T @ u``
        (one backward sweep over the recording made here), ``matmat``/``rmatmat`` do
        several; ``.value`` holds ``f(x, *args)``, and ``.nmatvec``/``.nrmatvec``
        count the products computed.

    Raises
    ------
    TypeError
        If ``f`` is not callable, or ``x`` is a value of an enclosing differentiation.

    See Also
    --------
    sparse_jacobian, dualad.jvp, dualad.vjp

    Notes
    -----
    Construction records ``f`` once (reverse mode); each ``rmatvec`` sweeps that
    recording backwards (a small multiple of one evaluation), each ``matvec`` evaluates
    ``f`` once on dual numbers.  Nothing of size ``m x n`` is ever formed, so this is
    the Jacobian for ``least_squares(..., tr_solver="lsmr")``, ``lsmr``/``lsqr`` and
    Newton–Krylov solvers when it fits neither dense nor sparse.  Complex vectors are
    applied as real and imaginary parts.

    Examples
    --------
    >>> import numpy as np
    >>> import dualad
    >>> from dualad.sparse import linear_operator
    >>> f = lambda x: np.array([x[0] * x[1], np.sin(x[0])])
    >>> J = linear_operator(f, np.array([2.0, 3.0]))
    >>> J.shape, J.dtype
    ((2, 2), dtype('float64'))
    >>> J.matvec(np.array([1.0, 0.0]))
    array([ 3.        , -0.41614684])
    >>> J.rmatvec(np.array([1.0, 0.0]))
    array([3., 2.])

    In ``least_squares`` (the recording is made once per Jacobian evaluation):

    >>> from scipy.optimize import least_squares
    >>> r = lambda x: np.array([x[0] - 1.0, 10.0 * (x[1] - x[0] ** 2)])
    >>> res = least_squares(r, np.zeros(2), jac=lambda x: linear_operator(r, x),
    ...                     tr_solver="lsmr")
    >>> np.round(res.x, 6)
    array([1., 1.])
    """
    return _JacobianOperator(f, x, args)
