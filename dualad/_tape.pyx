"""Reverse mode: the tape, traced values (``RArray``, ``RScalar``) and the backward sweep.

Design note
-----------
A :class:`Tape` records every operation on traced values in execution order, so the
order is already topological; :meth:`Tape.backward` walks it once from the end,
accumulating adjoints in place.  Nothing is global: each reverse-mode call makes its own
tape, traced values point to it, and it is freed when the last reference goes (the
pullback of :func:`dualad.vjp` keeps it alive for repeated sweeps).  Threads never share
a tape.

Two kinds of node:

* *scalar nodes* (``RScalar`` arithmetic, ``x[i]`` of an array): a value of type double,
  up to two parents and the local partials, stored in flat C arrays.  Their sweep is a C
  loop with no Python call per node.  The partials come from the rule table's kernels
  (``dualad/_kernels.pxd``), exactly as in forward mode.
* *array nodes*: a vector-Jacobian function called with the node's cotangent.  For
  elementwise ufuncs it multiplies the cotangent by the partials the forward pass already
  computed (the registry's NumPy-compiled rule table) and undoes broadcasting; structural
  and linear functions register their transposes in :mod:`dualad.rules.linear`.

A zero cotangent annihilates (``0 * inf = 0``), as a zero tangent does in forward mode.

Diagnostics.  :mod:`dualad.diagnostics` (``trace``, the non-finite origin search) sets
:attr:`Tape.observer`: every traced result is then reported with its node id, the name of
the operation that made it and its value (:meth:`Tape.node_info` gives its parents and
partials; :meth:`Tape.backward` over every node gives all adjoints).  While no tape in the
process has an observer, the hooks cost one test of a C integer per recorded node and per
NumPy dispatch, and the backward sweep has none.

Nesting.  Traced values carry a tag.  A reverse-mode value whose ``value`` is a forward
tracer (``DualArray`` of an older tag) is how forward-over-reverse Hessian-vector
products work: every VJP here is written with NumPy operations, so the cotangents become
forward tracers too.  When values of two tags meet, the newer level handles the operation
and the older value is a constant; a level that is older returns ``NotImplemented`` so
that NumPy asks the newer one.
"""

cimport cython
cimport numpy as cnp
from cpython.mem cimport PyMem_Malloc, PyMem_Realloc, PyMem_Free
from libc.math cimport isfinite
from libc.stdint cimport uint64_t

import threading
import weakref

import numpy as np

from dualad import _ndarray_methods as _nm

from dualad.rules._elementwise import ufunc_of

from dualad._scalar cimport Dual, HyperDual
from dualad._kernels cimport (unary_kernel, binary_kernel, fill_tables, unary_names,
                              binary_names, N_UNARY, N_BINARY)
from dualad._errors import (float_conversion, complex_input, object_input,
                            unsupported_function, tracer_index)
from dualad.rules import registry as _registry
from dualad import _array as _fwd

cnp.import_array()

cdef unary_kernel U1[N_UNARY]
cdef unary_kernel U2[N_UNARY]
cdef binary_kernel B1[N_BINARY]
cdef binary_kernel B2[N_BINARY]
cdef binary_kernel B1X[N_BINARY]
cdef binary_kernel B1Y[N_BINARY]
fill_tables(U1, U2, B1, B2, B1X, B1Y)

cdef dict UNARY_INDEX = {ufunc_of(n): i for i, n in enumerate(unary_names())}
cdef dict BINARY_INDEX = {ufunc_of(n): i for i, n in enumerate(binary_names())}
cdef list BINARY_UFUNCS = [ufunc_of(n) for n in binary_names()]
# operation names the diagnostics report for the C scalar paths (NumPy's ufunc names)
cdef list UNARY_OPS = [ufunc_of(n).__name__ for n in unary_names()]
cdef list BINARY_OPS = [u.__name__ for u in BINARY_UFUNCS]
cdef dict ELEMENTWISE = _registry.ELEMENTWISE
cdef frozenset BOOLEAN = _registry.BOOLEAN
cdef type NDARRAY = np.ndarray
cdef set POWER_UFUNCS = {np.power, np.float_power}

cdef Py_ssize_t I_ADD = binary_names().index("add")
cdef Py_ssize_t I_SUB = binary_names().index("subtract")
cdef Py_ssize_t I_MUL = binary_names().index("multiply")
cdef Py_ssize_t I_DIV = binary_names().index("true_divide")
cdef Py_ssize_t I_POW = binary_names().index("power")
cdef Py_ssize_t I_NEG = unary_names().index("negative")
cdef Py_ssize_t I_ABS = unary_names().index("absolute")

_MODE = "reverse"
_np_sum = np.sum

# Diagnostics hooks.  _observing counts the tapes that have an observer: while it is 0
# (always, outside dualad.diagnostics) every hook below is skipped after one C test.
cdef int _observing = 0
cdef extern from *:
    # Cython's own branch hint (a macro in every generated module): keeps the rarely
    # taken diagnostics calls out of the hot paths' straight-line code
    bint _unlikely "unlikely"(bint) nogil
# the names of the NumPy operations being dispatched, innermost last (per thread; only
# maintained while _observing)
_local = threading.local()

# node kinds
cdef enum:
    K_LEAF = 0      # an input (array or scalar)
    K_SCALAR = 1    # scalar op: adj[p0] += adj * d0, adj[p1] += adj * d1
    K_ELEM = 2      # scalar read from array node p0 at flat index idx
    K_ARRAY = 3     # array op with a Python VJP
    K_CONST = 4     # placeholder (never propagates)


cdef inline double _scale(double d, double t) noexcept nogil:
    # a zero on either side annihilates: a zero cotangent meets an infinite partial
    # (masked branches), a zero partial an infinite cotangent (sqrt(x**2) at 0)
    if t == 0.0 or d == 0.0:
        return 0.0
    return d * t


cdef class RScalar
cdef class RArray


# ---------------------------------------------------------------------------------------
# the tape

@cython.final
cdef class Tape:
    """Tape(tag)

    The record of one reverse-mode evaluation (internal; made by the transforms).

    Parameters
    ----------
    tag : int
        The level of the values recorded on it.

    Examples
    --------
    >>> from dualad._tape import Tape
    >>> Tape(1).size
    0
    """

    cdef readonly Py_ssize_t tag
    cdef Py_ssize_t n, cap
    cdef int* kind
    cdef Py_ssize_t* p0
    cdef Py_ssize_t* p1
    cdef Py_ssize_t* idx
    cdef double* d0
    cdef double* d1
    cdef list vjps       # K_ARRAY: (vjp, parents); K_LEAF/K_ELEM: shape or None
    cdef list shapes     # array nodes: the value's shape; scalar nodes: None
    cdef object _observer
    cdef bint _counted   # _observer is counted in _observing

    def __cinit__(self, Py_ssize_t tag):
        self.tag = tag
        self.n = 0
        self.cap = 0
        self.kind = NULL
        self.p0 = self.p1 = self.idx = NULL
        self.d0 = self.d1 = NULL
        self.vjps = []
        self.shapes = []
        self._observer = None
        self._counted = False

    def __dealloc__(self):
        global _observing
        if self._counted:
            _observing -= 1
        PyMem_Free(self.kind)
        PyMem_Free(self.p0)
        PyMem_Free(self.p1)
        PyMem_Free(self.idx)
        PyMem_Free(self.d0)
        PyMem_Free(self.d1)

    @property
    def size(self):
        """int: the number of recorded nodes."""
        return self.n

    @property
    def observer(self):
        """callable or None: called as ``observer(node, op, value)`` for every traced
        result recorded on this tape (for :mod:`dualad.diagnostics`).

        ``op`` is the name of the NumPy operation being dispatched (``"sin"``,
        ``"multiply"``, ``"sum"``...) or ``None`` when the node was made outside a
        dispatch (the input, a conversion, indexing); ``value`` is the node's value.
        Exceptions raised by the observer propagate into the traced function.
        """
        return self._observer

    @observer.setter
    def observer(self, value):
        global _observing
        if value is not None and not callable(value):
            raise TypeError(f"Tape.observer must be callable or None, not "
                            f"{type(value).__name__}")
        self._observer = value
        if value is not None and not self._counted:
            _observing += 1
            self._counted = True
        elif value is None and self._counted:
            _observing -= 1
            self._counted = False

    def node_info(self, Py_ssize_t i):
        """``(kind, parents, payload)`` of node ``i`` (for :mod:`dualad.diagnostics`).

        ``kind`` is ``"leaf"``, ``"scalar"``, ``"element"`` or ``"array"``; ``parents``
        the list of parent node ids.  ``payload``: for a scalar node its local partials,
        one per parent; for an element node the flat index it reads; for an array node
        ``(vjp, operands)``, where ``vjp(cotangent)`` returns one cotangent per operand
        and ``operands`` lists their node ids (-1 for a constant); None for a leaf.
        """
        if not 0 <= i < self.n:
            raise IndexError(f"node {i} is not on this tape (it has {self.n} nodes)")
        cdef int k = self.kind[i]
        if k == K_SCALAR:
            parents = []
            partials = []
            if self.p0[i] >= 0:
                parents.append(self.p0[i])
                partials.append(self.d0[i])
            if self.p1[i] >= 0:
                parents.append(self.p1[i])
                partials.append(self.d1[i])
            return ("scalar", parents, tuple(partials))
        if k == K_ELEM:
            return ("element", [self.p0[i]], self.idx[i])
        if k == K_ARRAY:
            vjp, operands = self.vjps[i]
            return ("array", [p for p in operands if p >= 0], (vjp, list(operands)))
        return ("leaf", [], None)

    cdef int _grow(self) except -1:
        cdef Py_ssize_t cap = 64 if self.cap == 0 else 2 * self.cap
        self.kind = <int*> _realloc(self.kind, cap * sizeof(int))
        self.p0 = <Py_ssize_t*> _realloc(self.p0, cap * sizeof(Py_ssize_t))
        self.p1 = <Py_ssize_t*> _realloc(self.p1, cap * sizeof(Py_ssize_t))
        self.idx = <Py_ssize_t*> _realloc(self.idx, cap * sizeof(Py_ssize_t))
        self.d0 = <double*> _realloc(self.d0, cap * sizeof(double))
        self.d1 = <double*> _realloc(self.d1, cap * sizeof(double))
        self.cap = cap
        return 0

    cdef Py_ssize_t _push(self, int kind, Py_ssize_t p0, Py_ssize_t p1, double d0,
                          double d1, Py_ssize_t idx, object info, object shape) except -1:
        if self.n == self.cap:
            self._grow()
        cdef Py_ssize_t i = self.n
        self.kind[i] = kind
        self.p0[i] = p0
        self.p1[i] = p1
        self.d0[i] = d0
        self.d1[i] = d1
        self.idx[i] = idx
        self.vjps.append(info)
        self.shapes.append(shape)
        self.n = i + 1
        return i

    cpdef Py_ssize_t leaf(self, object shape) except -1:
        """Record an input node of the given shape (``None`` for a scalar)."""
        return self._push(K_LEAF, -1, -1, 0.0, 0.0, -1, None, shape)

    cpdef Py_ssize_t array_node(self, object shape, list parents, object vjp) except -1:
        """Record an array op: ``vjp(cotangent)`` returns one cotangent per parent.

        ``parents`` holds node ids (``-1`` for a constant operand, skipped).
        """
        return self._push(K_ARRAY, -1, -1, 0.0, 0.0, -1, (vjp, parents), shape)

    def backward(self, Py_ssize_t out, object cotangent, list wrt):
        """Sweep from node ``out`` seeded with ``cotangent``; return the adjoints of ``wrt``.

        Adjoints of nodes never reached are ``None``.
        """
        cdef Py_ssize_t i, j, p, n = out + 1
        cdef double a
        cdef double* sadj = <double*> PyMem_Malloc(max(n, 1) * sizeof(double))
        if sadj == NULL:
            raise MemoryError()
        cdef list aadj = [None] * n
        cdef list abuf = [None] * n   # plain float64 adjoint arrays that K_ELEM writes into
        # own[p]: aadj[p] is an array this sweep allocated, so it may add into it in place
        # (others may be views or another node's cotangent, and are never written)
        cdef bytearray own = bytearray(n)
        try:
            for i in range(n):
                sadj[i] = 0.0
            if self.shapes[out] is None:
                sadj[out] = <double> cotangent if not _is_tracer(cotangent) else 0.0
                if _is_tracer(cotangent):
                    aadj[out] = cotangent
            else:
                aadj[out] = cotangent
            for i in range(out, -1, -1):
                k = self.kind[i]
                if k == K_SCALAR:
                    a = sadj[i]
                    if a == 0.0:
                        continue
                    if self.p0[i] >= 0:
                        sadj[self.p0[i]] += _scale(self.d0[i], a)
                    if self.p1[i] >= 0:
                        sadj[self.p1[i]] += _scale(self.d1[i], a)
                elif k == K_ELEM:
                    a = sadj[i]
                    if a == 0.0:
                        continue
                    p = self.p0[i]
                    buf = abuf[p]
                    if buf is None:
                        buf = np.zeros(self.shapes[p])
                        abuf[p] = buf
                    (<double*> cnp.PyArray_DATA(<cnp.ndarray> buf))[self.idx[i]] += a
                elif k == K_ARRAY:
                    cot = _adjoint_of(i, aadj, abuf, sadj, self.shapes)
                    if cot is None:
                        continue
                    vjp, parents = self.vjps[i]
                    cots = vjp(cot)
                    for j in range(len(parents)):
                        p = parents[j]
                        if p < 0 or cots[j] is None:
                            continue
                        if self.shapes[p] is None:
                            c = cots[j]
                            if _is_tracer(c):
                                aadj[p] = c if aadj[p] is None else aadj[p] + c
                            else:
                                sadj[p] += float(np.sum(c))
                        else:
                            _accumulate(aadj, own, p, cots[j], self.shapes[p])
            result = []
            for p in wrt:
                result.append(_adjoint_of(p, aadj, abuf, sadj, self.shapes))
            return result
        finally:
            PyMem_Free(sadj)


def _observers():
    """The number of tapes that have an observer (0 unless diagnostics are running)."""
    return _observing


cdef int _notify(Tape tape, Py_ssize_t node, object op, object value) except -1:
    """Report a recorded node to its tape's observer, if it has one (diagnostics)."""
    if tape._observer is not None:
        tape._observer(node, op, value)
    return 0


cdef int _notify_element(Tape tape, Py_ssize_t node, object value,
                         Py_ssize_t flat) except -1:
    """Report an element node (its value: element ``flat`` of ``value``)."""
    if tape._observer is not None:
        tape._observer(node, "getitem", float(value.reshape(-1)[flat]))
    return 0


cdef object _current_op():
    """The NumPy operation being dispatched on this thread (diagnostics), or None."""
    ops = getattr(_local, "ops", None)
    return ops[len(ops) - 1] if ops else None  # (wraparound is off: no ops[-1])


cdef object _named(object op, object fn, tuple args):
    """``fn(*args)`` with ``op`` named as the operation being dispatched (diagnostics):
    nodes recorded inside take that name unless an inner dispatch names them."""
    ops = getattr(_local, "ops", None)
    if ops is None:
        ops = _local.ops = []
    ops.append(op)
    try:
        return fn(*args)
    finally:
        ops.pop()


def _ufunc_dispatch(ufunc, method, inputs, kwargs):
    if method == "__call__":
        return generic_ufunc(ufunc, inputs, kwargs)
    return generic_ufunc_method(ufunc, method, inputs, kwargs)


cdef object _ufunc_op(object ufunc, str method):
    name = getattr(ufunc, "__name__", repr(ufunc))
    return name if method == "__call__" else f"{name}.{method}"


@cython.final
cdef class Scatter:
    """Scatter(key, cotangent)

    A cotangent for ``x[key]`` of an array node: the sweep adds it into the parent's
    adjoint in place instead of materialising a mostly-zero array of the full shape.

    Parameters
    ----------
    key : index
        A basic index (ints, slices, ``...``, ``None``, boolean masks): no repeats.
    cotangent : ndarray
        The cotangent of ``x[key]``.

    Examples
    --------
    >>> import numpy as np
    >>> from dualad._tape import Scatter
    >>> Scatter(slice(1, None), np.ones(2)).key
    slice(1, None, None)
    """
    cdef readonly object key
    cdef readonly object cotangent

    def __init__(self, key, cotangent):
        self.key = key
        self.cotangent = cotangent


cdef bint _basic_key(object key):
    """A key of slices and plain ints only (no arrays, masks, None or tracers)."""
    if type(key) is slice:
        return True
    if type(key) is tuple:
        for k in key:
            if type(k) is not slice and type(k) is not int and k is not Ellipsis:
                return False
        return True
    return False


@cython.final
cdef class _SliceVJP:
    """VJP of a basic slice: scatter the cotangent into the parent's adjoint."""
    cdef object key, shape

    def __cinit__(self, key, shape):
        self.key = key
        self.shape = shape

    def __call__(self, cot):
        if type(cot) is NDARRAY:
            return [Scatter(self.key, cot)]
        full = np.zeros_like(cot, shape=self.shape)  # traced cotangent: nests
        full[self.key] = cot
        return [full]


@cython.final
cdef class _SumAllVJP:
    """VJP of np.sum(x) over all axes: the cotangent spread over x's shape."""
    cdef object shape

    def __cinit__(self, shape):
        self.shape = shape

    def __call__(self, cot):
        if type(cot) is NDARRAY or isinstance(cot, float):
            return [np.full(self.shape, float(cot))]
        return [cot * np.ones(self.shape)]


cdef inline bint _plain_owned(object a, object shape):
    return (type(a) is NDARRAY and cnp.PyArray_TYPE(<cnp.ndarray> a) == cnp.NPY_DOUBLE
            and (<cnp.ndarray> a).flags.writeable and a.shape == shape)


cdef object _accumulate(list aadj, bytearray own, Py_ssize_t p, object c, object shape):
    """aadj[p] += c, in place when aadj[p] is this sweep's own plain array."""
    cur = aadj[p]
    if type(c) is Scatter:
        cot = (<Scatter> c).cotangent
        if type(cot) is NDARRAY and (cur is None or type(cur) is NDARRAY):
            if cur is None or not own[p] or not _plain_owned(cur, shape):
                cur = np.zeros(shape) if cur is None else np.array(cur, dtype=np.float64)
                aadj[p] = cur
                own[p] = 1
            cur[(<Scatter> c).key] += cot
            return None
        # traced cotangent: materialise the full-size cotangent (nests)
        full = np.zeros_like(cot, shape=shape)
        full[(<Scatter> c).key] = cot
        c = full
    if cur is None:
        aadj[p] = c
        own[p] = 0
    elif own[p] and type(c) is NDARRAY and _plain_owned(cur, shape) and \
            c.dtype == np.float64:
        np.add(cur, c, out=cur)
    else:
        aadj[p] = cur + c
        own[p] = type(aadj[p]) is NDARRAY
    return None


cdef void* _realloc(void* p, size_t size) except NULL:
    cdef void* q = PyMem_Realloc(p, size)
    if q == NULL:
        raise MemoryError()
    return q


cdef object _adjoint_of(Py_ssize_t i, list aadj, list abuf, double* sadj, list shapes):
    """The accumulated adjoint of node i: generic part + element writes (+ scalar part)."""
    a = aadj[i]
    b = abuf[i]
    if shapes[i] is None:
        if a is None:
            return sadj[i] if sadj[i] != 0.0 else (None if a is None else a)
        return a + sadj[i]
    if b is not None:
        return b if a is None else a + b
    return a


# ---------------------------------------------------------------------------------------
# traced values

cdef inline bint _is_tracer(object o):
    return (type(o) is RArray or type(o) is RScalar or type(o) is Dual
            or type(o) is _fwd.DualArray)


cpdef Py_ssize_t tag_of(object objs) except -2:
    """The newest tag among objs: forward and reverse tracers, lists of them."""
    cdef Py_ssize_t tag = -1, t
    for o in objs:
        if type(o) is RArray:
            t = (<RArray> o).tape.tag
        elif type(o) is RScalar:
            t = (<RScalar> o).tape.tag
        elif type(o) is list or type(o) is tuple:
            t = tag_of(o)
        else:
            t = _fwd.tag_of((o,))
        if t > tag:
            tag = t
    return tag


cdef inline Py_ssize_t _own_tag(object o):
    if type(o) is RArray:
        return (<RArray> o).tape.tag
    if type(o) is RScalar:
        return (<RScalar> o).tape.tag
    return -1


cpdef tuple split(object o, Tape tape):
    """``(value, node)`` of operand o on ``tape``: node -1 for a constant."""
    if type(o) is RArray and (<RArray> o).tape is tape:
        return (<RArray> o).value, (<RArray> o).node
    if type(o) is RScalar and (<RScalar> o).tape is tape:
        return (<RScalar> o).value, (<RScalar> o).node
    return o, -1


cdef object _value_array(object v):
    """A value as an array-like: ndarray float64 or a tracer of an older level."""
    if type(v) is RScalar:
        return _as_rarray(v)
    return _fwd.as_value(v)


cpdef object wrap(Tape tape, object value, Py_ssize_t node):
    """A traced result: RArray (value of any shape; 0-d stays an array)."""
    cdef RArray r = RArray.__new__(RArray)
    r.value = value
    r.tape = tape
    r.node = node
    if _unlikely(_observing):
        _notify(tape, node, _current_op(), value)
    return r


cpdef object element(Tape tape, object value, Py_ssize_t node, Py_ssize_t flat):
    """``value.flat[flat]`` of array node ``node`` as an RScalar (a K_ELEM node)."""
    cdef Py_ssize_t e = tape._push(K_ELEM, node, -1, 1.0, 0.0, flat, None, None)
    if _unlikely(_observing):
        _notify_element(tape, e, value, flat)
    return _new_scalar((<double*> cnp.PyArray_DATA(<cnp.ndarray> value))[flat]
                       if cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> value)
                       else float(value.reshape(-1)[flat]), tape, e)


cdef object _to_objects(RArray a):
    """An object array of RScalars (one element node each) with a's shape."""
    value = a.value
    out = np.empty(tuple(value.shape), dtype=object)
    flat = out.reshape(-1)
    cdef Py_ssize_t i, n = flat.shape[0]
    if type(value) is NDARRAY:
        plain = np.ascontiguousarray(value, dtype=np.float64)
        if plain is not value:
            # element nodes index the node's own value; keep a contiguous copy node
            a = record(a.tape, plain, [a.node], lambda cot: [cot])
            plain = a.value
        for i in range(n):
            flat[i] = element(a.tape, plain, a.node, i)
    else:
        for i, idx in enumerate(np.ndindex(*value.shape)):
            flat[i] = a[idx]
    return out


cpdef object constant(Tape tape, object value):
    """A traced constant (a leaf no derivative flows to): for ``np.zeros_like(x)``, so
    that item assignment of traced values into it is recorded."""
    value = _value_array(value)
    return wrap(tape, value, tape.leaf(tuple(value.shape)))


cpdef object record(Tape tape, object value, list parents, object vjp):
    """Record an array op producing ``value``; ``parents`` are node ids (-1: constant)."""
    value = _value_array(value)
    for p in parents:
        if p >= 0:
            break
    else:
        return value  # nothing traced: a constant
    cdef Py_ssize_t node = tape.array_node(tuple(value.shape), parents, vjp)
    return wrap(tape, value, node)


def unbroadcast(cot, shape):
    """Sum a cotangent over the axes that broadcasting added or stretched."""
    shape = tuple(shape)
    cshape = tuple(cot.shape)
    if cshape == shape:
        return cot
    extra = len(cshape) - len(shape)
    if extra > 0:
        cot = np.sum(cot, axis=tuple(range(extra)))
    axes = []
    for i in range(len(shape)):
        if shape[i] == 1 and cot.shape[i] != 1:
            axes.append(i)
    axes = tuple(axes)
    if axes:
        cot = np.sum(cot, axis=axes, keepdims=True)
    return cot


cdef object _defer(tuple inputs, Py_ssize_t mytag):
    """NotImplemented when another tracer kind of a newer level is present."""
    cdef Py_ssize_t t = _fwd.tag_of(inputs)
    return t > mytag


cdef inline bint _number(object v):
    return type(v) is float or type(v) is int or type(v) is np.float64


cdef object _constant_power_partial(object x, double y):
    """``d/dx x ** y`` for a constant ``y``: the power rule of the table, whose zero-base
    guard only matters for ``y == 0`` (a constant), without evaluating it on traced
    values; ``x ** 2`` costs one product."""
    if y == 0.0:
        return 0.0
    if y == 1.0:
        return 1.0
    if y == 2.0:
        return 2.0 * x
    return y * x ** (y - 1.0)


def _elementwise(Tape tape, entry, tuple inputs):
    """A rule-table ufunc on reverse tracers (the NumPy path; nests)."""
    cdef Py_ssize_t i
    vals = []
    nodes = []
    for o in inputs:
        v, nd = split(o, tape)
        if nd >= 0 or type(v) is Dual:
            v = _value_array(v)
        vals.append(v)
        nodes.append(nd)
    if entry.arity == 1:
        vals.append(None)
    with np.errstate(all="ignore"):
        ans = _value_array(entry.ufunc(*vals[:entry.arity]))
        partials = []
        shapes = []
        for i in range(entry.arity):
            if nodes[i] < 0:
                partials.append(None)
                shapes.append(None)
                continue
            if i == 0 and entry.is_power and nodes[1] < 0 and _number(vals[1]):
                # a constant exponent (the commonest power: x ** 2 inside nested sweeps)
                d = _constant_power_partial(vals[0], float(vals[1]))
            else:
                d = entry.first[i](vals[0], vals[1], ans)
                if i == 1 and entry.is_power:
                    d = np.where(ans == 0.0, 0.0, d)  # zero base: no 0 * log(0)
            partials.append(d)
            shapes.append(tuple(vals[i].shape))

    def vjp(cot):
        out = []
        for j in range(len(partials)):
            if partials[j] is None:
                out.append(None)
            else:
                out.append(unbroadcast(_fwd.scale(partials[j], cot), shapes[j]))
        return out
    return record(tape, ans, nodes, vjp)


# ---------------------------------------------------------------------------------------
# the fast elementwise path: plain contiguous float64 values of one shape (or scalars).
# Values and partials come from one C pass over the rule's kernel, or -- when every
# needed partial is a constant, an operand or the result -- values from NumPy's
# vectorized loop and the partials used in place.  The node keeps the partial arrays;
# its VJP is one multiplication per operand.

# Above this many elements the value and non-trivial partials come from NumPy (see
# _fast_elementwise); below it one C pass over the rule's kernel is cheaper.
cdef Py_ssize_t VECTOR_MIN = 128


@cython.final
cdef class _ElemVJP:
    """VJP of a fast elementwise node: the cotangent times the stored partials."""
    cdef object d0, d1
    cdef bint careful

    def __call__(self, cot):
        return [_times(self.d0, cot, self.careful), _times(self.d1, cot, self.careful)]


cdef object _times(object d, object cot, bint careful):
    """d * cot where a zero on either side annihilates the other (0 * inf = 0)."""
    if d is None:
        return None
    if type(d) is float:
        if d == 1.0:
            return cot
        if d == -1.0:
            return -cot
        if d == 0.0:
            return cot * 0.0 if type(cot) is not NDARRAY else np.zeros(cot.shape)
        return d * cot
    if type(cot) is NDARRAY and _c_f64(d) and cot.shape == d.shape and \
            cnp.PyArray_TYPE(<cnp.ndarray> cot) == cnp.NPY_DOUBLE:
        # (a broadcast cotangent, e.g. from sum, is made contiguous: one copy)
        return _mul0(d, cot if _c_f64(cot) else np.ascontiguousarray(cot))
    return _fwd.scale(d, cot)  # annihilates on both sides


cdef object _mul0(object d, object c):
    """Elementwise d * c in C, with 0 * inf = 0 on either side."""
    out = np.empty(c.shape)
    cdef const double* pd = _ptr(d)
    cdef const double* pc = _ptr(c)
    cdef double* po = _ptr(out)
    cdef Py_ssize_t i, n = cnp.PyArray_SIZE(<cnp.ndarray> c)
    with nogil:
        for i in range(n):
            po[i] = 0.0 if (pd[i] == 0.0 or pc[i] == 0.0) else pd[i] * pc[i]
        _clear_flags()
    return out


cdef inline bint _c_f64(object a):
    return (type(a) is NDARRAY and cnp.PyArray_TYPE(<cnp.ndarray> a) == cnp.NPY_DOUBLE
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> a))


cdef inline double* _ptr(object a) noexcept:
    return <double*> cnp.PyArray_DATA(<cnp.ndarray> a)


cdef bint _kernel_loop(int arity, Py_ssize_t idx, int which, const double* xv,
                       Py_ssize_t xs, const double* yv, Py_ssize_t ys, double* ans,
                       double* d0, double* d1, Py_ssize_t n, bint powfix) noexcept nogil:
    """ans and partials (d0 if which & 1, d1 if which & 2); True if all are finite."""
    cdef double out[3]
    cdef Py_ssize_t i
    cdef bint finite = True
    cdef binary_kernel bk
    if arity == 1:
        for i in range(n):
            U1[idx](xv[i * xs], out)
            ans[i] = out[0]
            d0[i] = out[1]
            finite = finite and isfinite(out[1])
    else:
        bk = B1[idx] if which == 3 else (B1X[idx] if which == 1 else B1Y[idx])
        for i in range(n):
            bk(xv[i * xs], yv[i * ys], out)
            ans[i] = out[0]
            if which & 1:
                d0[i] = out[1]
                finite = finite and isfinite(out[1])
            if which & 2:
                if powfix and out[0] == 0.0:
                    out[2] = 0.0  # zero base: d/dy x**y -> 0, not 0 * log(0)
                d1[i] = out[2]
                finite = finite and isfinite(out[2])
    _clear_flags()
    return finite


cdef bint _finite(object a):
    cdef const uint64_t* b
    cdef Py_ssize_t i, n
    cdef uint64_t acc = 0
    if type(a) is float:
        return isfinite(<double> a)
    b = <const uint64_t*> _ptr(a)
    n = cnp.PyArray_SIZE(<cnp.ndarray> a)
    with nogil:
        for i in range(n):  # an all-ones exponent (inf, nan) carries into the top bit
            acc |= (b[i] & 0x7ff0000000000000ULL) + 0x0010000000000000ULL
    return (acc & 0x8000000000000000ULL) == 0


cdef object _fast_elementwise(Tape tape, object ufunc, tuple inputs):
    """The fast path, or None when the operands do not qualify."""
    cdef int nin = len(inputs), j, which = 0
    cdef Py_ssize_t idx, n = 1
    cdef const double* vp[2]
    cdef Py_ssize_t vs[2]
    cdef double cv[2]
    cdef Py_ssize_t nodes[2]
    shape = None
    vals = [None, None]
    for j in range(nin):
        o = inputs[j]
        nodes[j] = -1
        if type(o) is RArray:
            if (<RArray> o).tape is not tape or not _c_f64((<RArray> o).value):
                return None
            v = (<RArray> o).value
            nodes[j] = (<RArray> o).node
            which |= (1 << j)
        elif type(o) is float or type(o) is int:
            cv[j] = o
            vp[j] = &cv[j]
            vs[j] = 0
            vals[j] = float(o)
            continue
        elif _c_f64(o):
            v = o
        else:
            return None
        if shape is None:
            shape = v.shape
        elif v.shape != shape:
            return None
        vals[j] = v
        vp[j] = _ptr(v)
        vs[j] = 1 if v.ndim > 0 else 0
    if shape is None or which == 0:
        return None
    for d in shape:
        n *= d
    if nin == 1:
        idx = UNARY_INDEX[ufunc]
    else:
        idx = BINARY_INDEX[ufunc]
    entry = ELEMENTWISE[ufunc]
    kinds = entry.kinds
    cdef bint powfix = ufunc in POWER_UFUNCS and (which & 2) != 0
    cdef bint kernel = powfix
    for j in range(nin):
        if (which >> j) & 1 and kinds[j][0] == "kernel":
            kernel = True
    cdef _ElemVJP f = _ElemVJP.__new__(_ElemVJP)
    cdef bint finite
    if kernel and n >= VECTOR_MIN:
        # large arrays: NumPy's vectorized loops for the value and the table's partial
        # expressions beat one kernel call per element (x ** 2.0: 3.7 vs ~1 ns each)
        with np.errstate(all="ignore"):
            ans = np.asarray(ufunc(*vals[:nin]), dtype=np.float64)
            parts = []
            for j in range(2):
                if j >= nin or not (which >> j) & 1:
                    parts.append(None)
                    continue
                kind, c = kinds[j]
                if kind == "const":
                    d = float(c)
                elif kind == "x":
                    d = vals[0]
                elif kind == "y":
                    d = vals[1]
                elif kind == "ans":
                    d = ans
                else:
                    d = entry.first[j](vals[0], vals[1] if nin > 1 else None, ans)
                    if j == 1 and powfix:
                        d = np.where(ans == 0.0, 0.0, d)  # zero base: no 0 * log(0)
                    if type(d) is not NDARRAY or d.shape != shape:
                        d = np.broadcast_to(d, shape)
                    d = np.ascontiguousarray(d, dtype=np.float64)
                if type(d) is not float and type(d) is not NDARRAY:
                    d = float(d)
                parts.append(d)
        finite = _finite(parts[0]) if parts[0] is not None else True
        if parts[1] is not None and not _finite(parts[1]):
            finite = False
        f.d0, f.d1, f.careful = parts[0], parts[1], not finite
    elif kernel:
        ans = np.empty(shape)
        d0 = np.empty(shape) if which & 1 else None
        d1 = np.empty(shape) if which & 2 else None
        finite = _kernel_loop(nin, idx, which, vp[0], vs[0], vp[1] if nin > 1 else vp[0],
                              vs[1] if nin > 1 else 0, _ptr(ans),
                              _ptr(d0) if d0 is not None else NULL,
                              _ptr(d1) if d1 is not None else NULL, n, powfix)
        f.d0, f.d1, f.careful = d0, d1, not finite
    else:
        ans = ufunc(*vals[:nin])
        if type(ans) is not NDARRAY:
            ans = np.asarray(ans, dtype=np.float64)
        parts = []
        finite = True
        for j in range(2):
            if j >= nin or not (which >> j) & 1:
                parts.append(None)
                continue
            kind, c = kinds[j]
            if kind == "const":
                d = float(c)
            elif kind == "x":
                d = vals[0]
            elif kind == "y":
                d = vals[1]
            else:
                d = ans
            if type(d) is not float and type(d) is not NDARRAY:
                d = float(d)
            if not _finite(d):
                finite = False
            parts.append(d)
        f.d0, f.d1, f.careful = parts[0], parts[1], not finite
    parents = [nodes[0]] if nin == 1 else [nodes[0], nodes[1]]
    node = tape.array_node(tuple(shape), parents, f)
    return wrap(tape, ans, node)


cdef tuple _normalized(tuple inputs):
    cdef list out = []
    for i in inputs:
        if type(i) is RArray or type(i) is RScalar:
            out.append(i)
        elif isinstance(i, (list, tuple)) and tag_of(i) >= 0:
            out.append(stack_objects(i))
        elif isinstance(i, np.ndarray) and i.dtype == object:
            out.append(stack_objects(i))
        else:
            out.append(_fwd.normalize(i, _MODE))
    return tuple(out)


def stack_objects(seq):
    """An RArray from a (nested) list / object array of reverse scalars and numbers."""
    arr = np.array(seq, dtype=object) if not isinstance(seq, np.ndarray) else seq
    flat = arr.reshape(-1)
    tape = None
    for e in flat:
        if type(e) is RScalar:
            tape = (<RScalar> e).tape
        elif type(e) is RArray:
            tape = (<RArray> e).tape
        if tape is not None:
            break
    if tape is None:
        return _fwd.normalize(arr, _MODE)
    parts = [e if (type(e) is RScalar or type(e) is RArray) else e for e in flat]
    shape = arr.shape
    vals = []
    nodes = []
    for e in parts:
        if type(e) is RScalar and (<RScalar> e).tape is tape:
            vals.append((<RScalar> e).value)
            nodes.append((<RScalar> e).node)
        elif type(e) is RArray and (<RArray> e).tape is tape:
            vals.append((<RArray> e).value)
            nodes.append((<RArray> e).node)
        else:
            vals.append(e)
            nodes.append(-1)
    value = _fwd.normalize(np.array(vals, dtype=object).reshape(shape)
                           if any(_is_tracer(v) for v in vals)
                           else np.array(vals, dtype=np.float64).reshape(shape), _MODE)
    size = len(vals)

    def vjp(cot):
        flatc = np.reshape(cot, (size,))
        return [flatc[i] for i in range(size)]
    return record(tape, value, nodes, vjp)


cpdef object generic_ufunc(object ufunc, tuple inputs, dict kwargs):
    """Apply a ufunc to operands among which there are reverse tracers."""
    cdef object r
    if not kwargs and (ufunc in UNARY_INDEX or ufunc in BINARY_INDEX):
        for o in inputs:
            if type(o) is RArray:
                if tag_of(inputs) == (<RArray> o).tape.tag:
                    r = _fast_elementwise((<RArray> o).tape, ufunc, inputs)
                    if r is not None:
                        return r
                break
    inputs = _normalized(inputs)
    cdef Py_ssize_t mytag = -1, t
    cdef Tape tape = None
    for o in inputs:
        t = _own_tag(o)
        if t > mytag:
            mytag = t
            tape = (<RArray> o).tape if type(o) is RArray else (<RScalar> o).tape
    if tape is None:
        return ufunc(*inputs, **kwargs)
    if _fwd.tag_of(inputs) > mytag:
        return NotImplemented
    if kwargs:
        out = kwargs.get("out")
        if out is not None:
            raise TypeError(float_conversion("reverse-mode value", f"numpy.{ufunc.__name__}"
                                             " with out="))
        dtype = kwargs.get("dtype")
        if dtype is not None and np.dtype(dtype) != np.float64:
            raise TypeError(f"numpy.{ufunc.__name__}: dualad computes in float64; "
                            f"dtype={dtype!r} is not supported")
        rest = set(kwargs) - {"out", "dtype"}
        if rest:
            raise TypeError(f"numpy.{ufunc.__name__}: keyword arguments {sorted(rest)} "
                            "are not supported in reverse mode")
    if ufunc in BOOLEAN:
        return ufunc(*[primal(i) for i in inputs])
    entry = ELEMENTWISE.get(ufunc)
    if entry is not None:
        if len(inputs) != entry.arity:
            raise TypeError(f"numpy.{ufunc.__name__} takes {entry.arity} argument(s)")
        return _elementwise(tape, entry, inputs)
    if ufunc is np.matmul:
        return _registry.lookup(np.matmul, _MODE)(*inputs)
    raise TypeError(unsupported_function(_registry.public_name(ufunc), _MODE))


_REDUCE_AS = {np.add: np.sum, np.multiply: np.prod, np.maximum: np.max,
              np.minimum: np.min}
_ACCUMULATE_AS = {np.add: np.cumsum, np.multiply: np.cumprod}


cpdef object generic_ufunc_method(object ufunc, str method, tuple inputs, dict kwargs):
    """``ufunc.reduce``/``accumulate``/``outer`` on reverse tracers."""
    inputs = _normalized(inputs)
    if method in ("reduce", "accumulate"):
        kwargs = dict(kwargs)
        kwargs.setdefault("axis", 0)
    if method == "reduce" and ufunc in _REDUCE_AS:
        return _REDUCE_AS[ufunc](*inputs, **kwargs)
    if method == "accumulate" and ufunc in _ACCUMULATE_AS:
        return _ACCUMULATE_AS[ufunc](*inputs, **kwargs)
    if method == "outer" and len(inputs) == 2 and not kwargs and \
            (ufunc in ELEMENTWISE or ufunc in BOOLEAN):
        a, b = inputs
        a = np.reshape(a, np.shape(primal(a)) + (1,) * np.ndim(primal(b)))
        return ufunc(a, b)
    raise TypeError(unsupported_function(f"{_registry.public_name(ufunc)}.{method}",
                                         _MODE))


cpdef object generic_array_function(object func, object types, object args, dict kwargs):
    """``__array_function__`` of reverse tracers: the reverse-mode registry."""
    cdef Py_ssize_t mytag = tag_of(args)
    if _fwd.tag_of(args) > mytag or _fwd.tag_of(tuple(kwargs.values())) > mytag:
        return NotImplemented
    cdef RArray a
    if func is _np_sum and not kwargs and len(args) == 1 and type(args[0]) is RArray:
        a = <RArray> args[0]
        if type(a.value) is NDARRAY and a.tape.tag == mytag:
            return record(a.tape, np.asarray(a.value.sum()), [a.node],
                          _SumAllVJP(a.value.shape))
    impl = _registry.lookup(func, _MODE)
    return impl(*args, **kwargs)


cdef void _refresh_views(RArray a) except *:
    """After a write into ``a``: its live views re-read their part of it (new nodes)."""
    if not a._views:
        return
    cdef list alive = []
    cdef RArray v, r
    for ref in a._views:
        v = ref()
        if v is None:
            continue
        alive.append(ref)
        r = a._slice(v.view[1])
        v.value = r.value
        v.node = r.node
        _refresh_views(v)
    a._views = alive


cpdef object primal(object o):
    """The innermost plain value of any tracer."""
    while True:
        if type(o) is RArray:
            o = (<RArray> o).value
        elif type(o) is RScalar:
            return (<RScalar> o).value
        elif type(o) is _fwd.DualArray or type(o) is Dual:
            o = _fwd.primal(o)
        elif isinstance(o, np.ndarray) and o.dtype == object:
            o = np.array([primal(e) for e in o.reshape(-1)], dtype=np.float64).reshape(
                o.shape)
        else:
            return o


# ---------------------------------------------------------------------------------------

cdef inline bint _binop_ok(object other):
    if isinstance(other, complex):
        raise TypeError(complex_input(_MODE))
    return (isinstance(other, (float, int, np.ndarray, np.generic, list, tuple))
            or _is_tracer(other))


@cython.final
cdef class RArray:
    """RArray

    A value traced by reverse mode: an ndarray-like view of a node on a :class:`Tape`.

    Made by the reverse-mode transforms (:func:`dualad.grad` with ``mode="reverse"``,
    :func:`dualad.vjp`); inside your function it behaves like an ndarray: NumPy ufuncs,
    the supported NumPy functions, operators, indexing and item assignment (a functional
    update: the caller's arrays are never modified).

    Attributes
    ----------
    value : ndarray
        The primal value (or a forward tracer when nested inside forward mode).
    node : int
        Its node on the tape.

    Examples
    --------
    >>> import numpy as np
    >>> import dualad
    >>> def f(x):
    ...     return np.sum(x ** 2)
    >>> dualad.grad(f, mode="reverse")(np.array([1.0, 2.0]))
    array([2., 4.])
    """

    cdef readonly object value
    cdef readonly Tape tape
    cdef readonly Py_ssize_t node
    # NumPy's view semantics (basic slicing): a write into a view reaches the array it
    # was sliced from (``view``: that array and the key), and a write into an array is
    # seen by its live views (``_views``: weak references)
    cdef public object view
    cdef list _views
    cdef object __weakref__

    __array_priority__ = 100.0

    def __reduce__(self):
        raise TypeError("a reverse-mode traced value lives on its tape and cannot be "
                        "pickled; pickle the function or the result instead")

    def __repr__(self):
        return f"RArray(value={self.value!r}, node={self.node}, tag={self.tape.tag})"

    @property
    def tag(self):
        """int: the level of this value."""
        return self.tape.tag

    @property
    def shape(self):
        """tuple of int: the shape of the value."""
        return tuple(self.value.shape)

    @property
    def ndim(self):
        """int: the number of dimensions."""
        return len(self.value.shape)

    @property
    def size(self):
        """int: the number of elements."""
        return int(np.prod(self.value.shape))

    @property
    def dtype(self):
        """numpy.dtype: always float64."""
        return np.dtype(np.float64)

    @property
    def T(self):
        """RArray: the transpose."""
        return np.transpose(self)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d array")
        return self.value.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        for i in range(self.value.shape[0]):
            yield self[i]

    def __float__(self):
        raise TypeError(float_conversion("reverse-mode value",
                                         "float() or a math-module function"))

    def __int__(self):
        raise TypeError(float_conversion("reverse-mode value", "int()"))

    def __index__(self):
        raise TypeError(tracer_index("reverse-mode value"))

    def __complex__(self):
        raise TypeError(float_conversion("reverse-mode value", "complex()"))

    def __bool__(self):
        return bool(primal(self))

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(x)``: an object array of :class:`RScalar` elements.

        Code that calls ``np.asarray`` on its input (SciPy's Python-level functions such
        as ``scipy.special.logsumexp`` do) keeps working, element by element.  A float
        dtype would drop the derivative and raises ``TypeError``.
        """
        if dtype is not None and np.dtype(dtype) != np.dtype(object):
            raise TypeError(float_conversion("reverse-mode value",
                                             f"conversion to a {np.dtype(dtype)} ndarray"))
        return _to_objects(self)

    def __getitem__(self, key):
        cdef Py_ssize_t i, n
        if type(key) is int and _c_f64(self.value) and \
                cnp.PyArray_NDIM(<cnp.ndarray> self.value) == 1:
            # x[i] of a plain vector: a scalar node, no Python rule call (scalar loops)
            n = cnp.PyArray_DIM(<cnp.ndarray> self.value, 0)
            i = key
            if i < 0:
                i += n
            if not 0 <= i < n:
                raise IndexError(f"index {key} is out of bounds for axis 0 with size {n}")
            return element(self.tape, self.value, self.node, i)
        if type(self.value) is NDARRAY and _basic_key(key):
            # x[1:], x[:, 0]...: a view, whose cotangent the sweep scatters in place
            r = <RArray> self._slice(key)
            if type(r.value) is NDARRAY and r.value.base is not None:
                r.view = (self, key)
                if self._views is None:
                    self._views = []
                self._views.append(weakref.ref(r))
            return r
        return _registry.lookup(_getitem, _MODE)(self, key)

    cdef RArray _slice(self, object key):
        return record(self.tape, self.value[key], [self.node],
                      _SliceVJP(key, self.value.shape))

    def __setitem__(self, key, item):
        # a functional update: this object now names the result node
        res = _registry.lookup(_setitem, _MODE)(self, key, item)
        self.value = res.value
        self.node = res.node
        if self.view:  # (an empty tuple: a view that is written as a copy, no link)
            # up: the array this view was sliced from takes the new values (and then
            # refreshes its views, this one included)
            base, bkey = self.view
            base[bkey] = self
        else:
            _refresh_views(self)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if _unlikely(_observing):
            return _named(_ufunc_op(ufunc, method), _ufunc_dispatch,
                          (ufunc, method, inputs, kwargs))
        if method == "__call__":
            return generic_ufunc(ufunc, inputs, kwargs)
        return generic_ufunc_method(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        if _unlikely(_observing):
            return _named(getattr(func, "__name__", None), generic_array_function,
                          (func, types, args, kwargs))
        return generic_array_function(func, types, args, kwargs)

    def __add__(self, o):
        return np.add(self, o) if _binop_ok(o) else NotImplemented

    def __radd__(self, o):
        return np.add(o, self) if _binop_ok(o) else NotImplemented

    # In-place operators update this array (NumPy's ``a += b`` writes into ``a``);
    # without them Python would rebind the name and a view would silently diverge from
    # the array it views.  Writing into a view is refused by the setitem rule.
    def __iadd__(self, o):
        return _nm.inplace(self, np.add, o) if _binop_ok(o) else NotImplemented

    def __isub__(self, o):
        return _nm.inplace(self, np.subtract, o) if _binop_ok(o) else NotImplemented

    def __imul__(self, o):
        return _nm.inplace(self, np.multiply, o) if _binop_ok(o) else NotImplemented

    def __itruediv__(self, o):
        return _nm.inplace(self, np.true_divide, o) if _binop_ok(o) else NotImplemented

    def __ipow__(self, o):
        return _nm.inplace(self, np.power, o) if _binop_ok(o) else NotImplemented

    def __sub__(self, o):
        return np.subtract(self, o) if _binop_ok(o) else NotImplemented

    def __rsub__(self, o):
        return np.subtract(o, self) if _binop_ok(o) else NotImplemented

    def __mul__(self, o):
        return np.multiply(self, o) if _binop_ok(o) else NotImplemented

    def __rmul__(self, o):
        return np.multiply(o, self) if _binop_ok(o) else NotImplemented

    def __truediv__(self, o):
        return np.true_divide(self, o) if _binop_ok(o) else NotImplemented

    def __rtruediv__(self, o):
        return np.true_divide(o, self) if _binop_ok(o) else NotImplemented

    def __pow__(self, o, mod):
        if mod is not None or not _binop_ok(o):
            return NotImplemented
        return np.power(self, o)

    def __rpow__(self, o, mod):
        if mod is not None or not _binop_ok(o):
            return NotImplemented
        return np.power(o, self)

    def __matmul__(self, o):
        return np.matmul(self, o) if _binop_ok(o) else NotImplemented

    def __rmatmul__(self, o):
        return np.matmul(o, self) if _binop_ok(o) else NotImplemented

    def __mod__(self, o):
        return np.remainder(self, o)

    def __rmod__(self, o):
        return np.remainder(o, self)

    def __floordiv__(self, o):
        return np.floor_divide(self, o)

    def __rfloordiv__(self, o):
        return np.floor_divide(o, self)

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

    __hash__ = None

    # ndarray methods, written once in dualad/_ndarray_methods.py
    sum = _nm.sum
    mean = _nm.mean
    prod = _nm.prod
    max = _nm.max
    min = _nm.min
    var = _nm.var
    std = _nm.std
    cumsum = _nm.cumsum
    cumprod = _nm.cumprod
    reshape = _nm.reshape
    ravel = _nm.ravel
    flatten = _nm.flatten
    transpose = _nm.transpose
    swapaxes = _nm.swapaxes
    squeeze = _nm.squeeze
    dot = _nm.dot
    trace = _nm.trace
    diagonal = _nm.diagonal
    clip = _nm.clip
    take = _nm.take
    repeat = _nm.repeat
    argmax = _nm.argmax
    argmin = _nm.argmin
    argsort = _nm.argsort
    all = _nm.all
    any = _nm.any














    def copy(self):
        """A copy (the same node: values are never mutated in place)."""
        return np.copy(self)

    def astype(self, dtype, copy=True):
        """A float64 copy; other dtypes would drop the derivative and raise."""
        if np.dtype(dtype) != np.float64:
            raise TypeError(f"astype({dtype!r}) of a reverse-mode value would drop "
                            "its derivative")
        return self













    def tolist(self):
        """A (nested) list of traced scalars."""
        if self.ndim == 0:
            return self
        return [row.tolist() if isinstance(row, RArray) else row for row in self]



# marker functions: item access and functional item assignment have reverse rules in
# the registry under these names (dualad.rules.linear registers them)
def _getitem(a, key):
    """``a[key]`` (registry key for the indexing rule)."""
    return a[key]


def _setitem(a, key, item):
    """``a[key] = item`` as a new value (registry key for the update rule)."""
    raise NotImplementedError


cdef RScalar _new_scalar(double value, Tape tape, Py_ssize_t node):
    cdef RScalar r = RScalar.__new__(RScalar)
    r.value = value
    r.tape = tape
    r.node = node
    return r


cdef object _scalar_unary(RScalar a, Py_ssize_t idx):
    cdef double out[2]
    U1[idx](a.value, out)
    _clear_flags()
    cdef Py_ssize_t node = a.tape._push(K_SCALAR, a.node, -1, out[1], 0.0, -1, None, None)
    if _unlikely(_observing):
        _notify(a.tape, node, UNARY_OPS[idx], out[0])
    return _new_scalar(out[0], a.tape, node)


cdef object _scalar_binary(object x, object y, Py_ssize_t idx):
    """x (op) y where at least one is an RScalar of the newest tape and the other a
    float or an RScalar of the same tape; None if the C path does not apply."""
    cdef RScalar a = None, b = None
    cdef double xv, yv
    cdef double out[3]
    cdef Tape tape
    if type(x) is RScalar:
        a = <RScalar> x
        xv = a.value
    elif type(x) is float or type(x) is int:
        xv = x
    else:
        return None
    if type(y) is RScalar:
        b = <RScalar> y
        yv = b.value
    elif type(y) is float or type(y) is int:
        yv = y
    else:
        return None
    if a is not None and b is not None and a.tape is not b.tape:
        return None
    tape = a.tape if a is not None else b.tape
    if a is not None and b is not None:
        B1[idx](xv, yv, out)
    elif a is not None:
        B1X[idx](xv, yv, out)
        out[2] = 0.0
    else:
        B1Y[idx](xv, yv, out)
        out[1] = 0.0
    _clear_flags()
    if (idx == I_POW) and out[0] == 0.0:
        out[2] = 0.0  # zero base: d/dy x**y -> 0, not 0 * log(0)
    cdef Py_ssize_t node = tape._push(K_SCALAR, a.node if a is not None else -1,
                                      b.node if b is not None else -1, out[1], out[2],
                                      -1, None, None)
    if _unlikely(_observing):
        _notify(tape, node, BINARY_OPS[idx], out[0])
    return _new_scalar(out[0], tape, node)


cdef extern from "<fenv.h>" nogil:
    int feclearexcept(int excepts)
    int fetestexcept(int excepts)
    int FE_INVALID
    int FE_DIVBYZERO
    int FE_OVERFLOW
    int FE_UNDERFLOW


cdef inline void _clear_flags() noexcept nogil:
    # see dualad._scalar: partials may raise flags NumPy would report later
    cdef int flags = FE_INVALID | FE_DIVBYZERO | FE_OVERFLOW | FE_UNDERFLOW
    if fetestexcept(flags):
        feclearexcept(flags)


cdef object _scalar_op(RScalar self, object other, Py_ssize_t idx, bint reflected):
    r = _scalar_binary(other, self, idx) if reflected else _scalar_binary(self, other, idx)
    if r is not None:
        return r
    if not _binop_ok(other):
        return NotImplemented
    ufunc = BINARY_UFUNCS[idx]
    return ufunc(other, self) if reflected else ufunc(self, other)


@cython.final
@cython.freelist(256)
cdef class RScalar:
    """RScalar

    A float traced by reverse mode: one scalar node on a :class:`Tape`.

    Indexing a traced array to one element gives an ``RScalar``; arithmetic and ufuncs
    on it record nodes with their local partials (from the rule table's C kernels), and
    the backward sweep over such nodes is a C loop.  Loops like
    ``for i in range(n): s = s + x[i] * x[i + 1]`` are therefore cheap to differentiate.

    Attributes
    ----------
    value : float
        The primal value.
    node : int
        Its node on the tape.

    Examples
    --------
    >>> import numpy as np
    >>> import dualad
    >>> def f(x):
    ...     s = 0.0
    ...     for i in range(len(x) - 1):
    ...         s = s + x[i] * x[i + 1]
    ...     return s
    >>> dualad.grad(f, mode="reverse")(np.array([1.0, 2.0, 3.0]))
    array([2., 4., 2.])
    """

    cdef readonly double value
    cdef readonly Tape tape
    cdef readonly Py_ssize_t node

    __array_priority__ = 100.0

    def __reduce__(self):
        raise TypeError("a reverse-mode traced value lives on its tape and cannot be "
                        "pickled; pickle the function or the result instead")

    def __repr__(self):
        return f"RScalar({self.value!r}, node={self.node}, tag={self.tape.tag})"

    @property
    def tag(self):
        """int: the level of this value."""
        return self.tape.tag

    @property
    def shape(self):
        """tuple: ``()``."""
        return ()

    @property
    def ndim(self):
        """int: 0."""
        return 0

    @property
    def size(self):
        """int: 1."""
        return 1

    def __float__(self):
        raise TypeError(float_conversion("reverse-mode value",
                                         "float() or a math-module function"))

    def __int__(self):
        raise TypeError(float_conversion("reverse-mode value", "int()"))

    def __index__(self):
        raise TypeError(tracer_index("reverse-mode value"))

    def __complex__(self):
        raise TypeError(float_conversion("reverse-mode value", "complex()"))

    def __bool__(self):
        return self.value != 0.0

    def __format__(self, spec):
        return format(self.value, spec) if spec else repr(self)

    def __add__(self, o):
        return _scalar_op(self, o, I_ADD, False)

    def __radd__(self, o):
        return _scalar_op(self, o, I_ADD, True)

    def __sub__(self, o):
        return _scalar_op(self, o, I_SUB, False)

    def __rsub__(self, o):
        return _scalar_op(self, o, I_SUB, True)

    def __mul__(self, o):
        return _scalar_op(self, o, I_MUL, False)

    def __rmul__(self, o):
        return _scalar_op(self, o, I_MUL, True)

    def __truediv__(self, o):
        return _scalar_op(self, o, I_DIV, False)

    def __rtruediv__(self, o):
        return _scalar_op(self, o, I_DIV, True)

    def __pow__(self, o, mod):
        if mod is not None:
            return NotImplemented
        return _scalar_op(self, o, I_POW, False)

    def __rpow__(self, o, mod):
        if mod is not None:
            return NotImplemented
        return _scalar_op(self, o, I_POW, True)

    def __mod__(self, o):
        return np.remainder(self, o)

    def __rmod__(self, o):
        return np.remainder(o, self)

    def __floordiv__(self, o):
        return np.floor_divide(self, o)

    def __rfloordiv__(self, o):
        return np.floor_divide(o, self)

    def __neg__(self):
        return _scalar_unary(self, I_NEG)

    def __pos__(self):
        return self

    def __abs__(self):
        return _scalar_unary(self, I_ABS)

    def __lt__(self, o):
        return self.value < primal(o)

    def __le__(self, o):
        return self.value <= primal(o)

    def __gt__(self, o):
        return self.value > primal(o)

    def __ge__(self, o):
        return self.value >= primal(o)

    def __eq__(self, o):
        return self.value == primal(o)

    def __ne__(self, o):
        return self.value != primal(o)

    __hash__ = None

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "__call__" and not kwargs:
            idx = UNARY_INDEX.get(ufunc)
            if idx is not None and len(inputs) == 1:
                return _scalar_unary(self, <Py_ssize_t> idx)
            idx = BINARY_INDEX.get(ufunc)
            if idx is not None and len(inputs) == 2:
                r = _scalar_binary(inputs[0], inputs[1], <Py_ssize_t> idx)
                if r is not None:
                    return r
        inputs = tuple(_as_rarray(i) for i in inputs)
        if _unlikely(_observing):
            return _named(_ufunc_op(ufunc, method), _ufunc_dispatch,
                          (ufunc, method, inputs, kwargs))
        if method == "__call__":
            return generic_ufunc(ufunc, inputs, kwargs)
        return generic_ufunc_method(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        args = tuple(_as_rarray(a) for a in args)
        if _unlikely(_observing):
            return _named(getattr(func, "__name__", None), generic_array_function,
                          (func, types, args, kwargs))
        return generic_array_function(func, types, args, kwargs)

    def __getattr__(self, name):
        # NumPy's object loops call methods named like the ufunc
        try:
            ufunc = ufunc_of(name)
        except AttributeError:
            ufunc = None
        if isinstance(ufunc, np.ufunc) and (ufunc in UNARY_INDEX or ufunc in BINARY_INDEX):
            if ufunc.nin == 1:
                return lambda: ufunc(self)
            return lambda other: ufunc(self, other)
        raise AttributeError(f"'RScalar' object has no attribute {name!r}")


def _as_rarray(o):
    """An RScalar as a 0-d RArray node (for the array path); anything else unchanged."""
    if type(o) is not RScalar:
        return o
    s = o

    def vjp(cot):
        return [cot]
    return record(s.tape, np.array(s.value), [s.node], vjp)


_fwd.register_foreign(RArray)
_fwd.register_foreign(RScalar)
