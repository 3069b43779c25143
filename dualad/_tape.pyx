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
* *fast elementwise nodes* (ufuncs and operators on plain float64 arrays of one shape,
  or numbers): the partials the forward pass computed (from the rule's C kernel or its
  NumPy expression, or a number, an operand or the result used in place), applied by the
  sweep in C.  The arithmetic operators of ``RArray`` record them directly, without
  NumPy's dispatch; the sweep multiplies into adjoint buffers it owns in place and hands
  a cotangent's buffer to a parent when it is the last reader (issue 4: on arrays of a
  hundred elements the tape's bookkeeping, not the arithmetic, was the cost).
* *array nodes*: a vector-Jacobian function called with the node's cotangent.  For
  elementwise ufuncs off the fast path it multiplies the cotangent by the partials the
  forward pass computed (the registry's NumPy-compiled rule table) and undoes
  broadcasting; structural and linear functions register their transposes in
  :mod:`dualad.rules.linear`.  Basic slices and ``np.sum(x)`` are applied in place too,
  and so are the nodes of a small network's training step (issue 7): ``a @ b`` of 2-D
  float64 values, or of a constant matrix and a traced vector (the VJP's products are
  BLAS calls), ``a + b`` / ``a - b`` with
  broadcasting (a bias row: the sums over the broadcast axes), ``np.mean(x)`` and C-order
  reshapes (the cotangent reshaped, keeping its flags and ownership).  Each records the
  value the generic rule would and applies the same NumPy calls without its Python
  closures (tests/test_reverse_mlp_fastpaths.py compares them with the generic rules).

A zero cotangent annihilates (``0 * inf = 0``), as a zero tangent does in forward mode.
Every shortcut of the sweep computes the numbers the plain products and sums would
(tests/test_reverse_fastpaths.py compares them with the general path).

Diagnostics.  :mod:`dualad.diagnostics` (``trace``, the non-finite origin search) sets
:attr:`Tape.observer`: every traced result is then reported with its node id, the name of
the operation that made it and its value (:meth:`Tape.node_info` gives its parents and
partials; :meth:`Tape.backward` over every node gives all adjoints).  While no tape in the
process has an observer, the hooks cost one test of a C integer per recorded node and per
NumPy dispatch, and the backward sweep has none.  While one has, the operators go
through NumPy's dispatch, which names the operation.

Nesting.  Traced values carry a tag.  A reverse-mode value whose ``value`` is a forward
tracer (``DualArray`` of an older tag) is how forward-over-reverse Hessian-vector
products work: every VJP here is written with NumPy operations, so the cotangents become
forward tracers too.  The common nodes of such sweeps (rule-table ufuncs and operators
on one-level DualArrays of one shape, basic slices of vectors, ``np.sum(x)``) have a
nested fast path in C with the same numbers (see "the nested fast path" below;
tests/test_second_fastpath.py compares it with the generic path).  When values of two tags meet, the newer level handles the operation
and the older value is a constant; a level that is older returns ``NotImplemented`` so
that NumPy asks the newer one.
"""

cimport cython
cimport numpy as cnp
from cpython.mem cimport PyMem_Malloc, PyMem_Realloc, PyMem_Free
from libc.string cimport memcmp, memset

cdef extern from "Python.h":
    int PySlice_Unpack(object key, Py_ssize_t* start, Py_ssize_t* stop,
                       Py_ssize_t* step) except -1
    Py_ssize_t PySlice_AdjustIndices(Py_ssize_t length, Py_ssize_t* start, Py_ssize_t* stop,
                                     Py_ssize_t step) noexcept

import threading
import weakref

import numpy as np

from dualad import _ndarray_methods as _nm

from dualad.rules._elementwise import ufunc_of

from dualad._scalar cimport Dual, HyperDual
from dualad._fpflags cimport clear_fp_flags as _clear_flags, fp_raised as _raised
from dualad._layout cimport empty_array, lane_stride, same_shape as _same_shape
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
cdef type DUALARRAY = _fwd.DualArray

cdef Py_ssize_t I_ADD = binary_names().index("add")
cdef Py_ssize_t I_SUB = binary_names().index("subtract")
cdef Py_ssize_t I_MUL = binary_names().index("multiply")
cdef Py_ssize_t I_DIV = binary_names().index("true_divide")
cdef Py_ssize_t I_POW = binary_names().index("power")
cdef Py_ssize_t I_NEG = unary_names().index("negative")
cdef Py_ssize_t I_ABS = unary_names().index("absolute")

_MODE = "reverse"
_np_sum = np.sum
_np_mean = np.mean
_np_reshape = np.reshape
_np_matmul = np.matmul
_add_reduce = np.add.reduce

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
    K_EW = 5        # fast elementwise op: parents p0 (and p1), partials in an _ElemVJP


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
    cdef list vjps       # K_ARRAY: (vjp, parents); K_EW: its _ElemVJP; others None
    cdef list shapes     # array nodes: the value's shape; scalar nodes: None
    cdef object _observer
    cdef bint _counted   # _observer is counted in _observing
    # [hvp replay hook] True: fast elementwise nodes also keep their rule and operands,
    # so that hvp_replay (end of this file) can differentiate the recording once more
    cdef public bint replay

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
        if k == K_EW:
            f = <_ElemVJP> self.vjps[i]
            operands = [self.p0[i]] if f.nin == 1 else [self.p0[i], self.p1[i]]
            return ("array", [p for p in operands if p >= 0], (f, operands))
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
        cdef int state
        cdef double* sadj = <double*> PyMem_Malloc(max(n, 1) * sizeof(double))
        cdef unsigned char* fl = <unsigned char*> PyMem_Malloc(max(n, 1))
        if sadj == NULL or fl == NULL:
            PyMem_Free(sadj)
            PyMem_Free(fl)
            raise MemoryError()
        cdef list aadj = [None] * n
        cdef list abuf = [None] * n   # plain float64 adjoint arrays that K_ELEM writes into
        cdef list shapes = self.shapes
        try:
            memset(sadj, 0, max(n, 1) * sizeof(double))
            # fl[p]: how aadj[p] is held (F_OWN, F_KEEP, F_LAZY, F_NEG: see _take)
            memset(fl, 0, max(n, 1))
            for p in wrt:
                if 0 <= p < n:
                    fl[p] |= F_KEEP
            if shapes[out] is None:
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
                        buf = np.zeros(shapes[p])
                        abuf[p] = buf
                    (<double*> cnp.PyArray_DATA(<cnp.ndarray> buf))[self.idx[i]] += a
                elif k == K_EW or k == K_ARRAY:
                    cot = _take(i, aadj, abuf, fl, &state)
                    if cot is None:
                        continue
                    if k == K_EW:
                        _sweep_elem(<_ElemVJP> self.vjps[i], cot, state, self.p0[i],
                                    self.p1[i], aadj, fl, shapes, shapes[i])
                    else:
                        _sweep_array(self.vjps[i], cot, state, aadj, fl, sadj, shapes)
                    if not fl[i] & F_KEEP:
                        # done with it: free it now (the sweep's peak memory)
                        aadj[i] = None
                        abuf[i] = None
            result = []
            for p in wrt:
                result.append(_adjoint_of(p, aadj, abuf, sadj, shapes, fl))
            return result
        finally:
            PyMem_Free(sadj)
            PyMem_Free(fl)


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
    """VJP of np.sum(x) (or np.mean(x), ``count`` its number of elements) over all
    axes: the cotangent (divided by ``count``) spread over x's shape."""
    cdef object shape
    cdef Py_ssize_t count   # 1 for a sum

    def __cinit__(self, shape, Py_ssize_t count=1):
        self.shape = shape
        self.count = count

    def __call__(self, cot):
        if self.count != 1:
            cot = cot / self.count  # (the generic mean rule's cot / count)
        if type(cot) is NDARRAY or isinstance(cot, float):
            return [np.full(self.shape, float(cot))]
        return [cot * np.ones(self.shape)]


@cython.final
cdef class _MatmulVJP:
    """VJP of ``a @ b`` for 2-D float64 values (or a constant matrix and a traced
    vector: see _fast_matmul): ``cot @ b.T`` to a traced ``a``,
    ``a.T @ cot`` to a traced ``b`` (the products of the generic rule, which the sweep
    calls without its Python closures; see _fast_matmul)."""
    cdef object a, b
    cdef bint ta, tb   # which operands are traced

    def __call__(self, cot):
        return [np.matmul(cot, self.b.T) if self.ta else None,
                np.matmul(self.a.T, cot) if self.tb else None]


@cython.final
cdef class _ReshapeVJP:
    """VJP of a C-order reshape: the cotangent reshaped back to the operand's shape."""
    cdef object shape

    def __call__(self, cot):
        return [np.reshape(cot, self.shape)]


@cython.final
cdef class _BroadcastVJP:
    """VJP of ``a + b`` / ``a - b`` with broadcasting: the cotangent (negated for the
    subtrahend) summed over the axes broadcasting added or stretched, as the generic
    rule's ``unbroadcast`` sums it (see _fast_broadcast)."""
    cdef object s0, s1   # the operands' shapes
    cdef object shape    # the result's shape
    cdef bint sub

    def __call__(self, cot):
        return [unbroadcast(cot, self.s0),
                unbroadcast(-cot if self.sub else cot, self.s1)]


cdef void* _realloc(void* p, size_t size) except NULL:
    cdef void* q = PyMem_Realloc(p, size)
    if q == NULL:
        raise MemoryError()
    return q


# ---------------------------------------------------------------------------------------
# C loops of the sweep and of the fast elementwise path

# Above this many elements the value and non-trivial partials come from NumPy (see
# _fast_elementwise); below it one C pass over the rule's kernel is cheaper.
cdef Py_ssize_t VECTOR_MIN = 128
# From this many elements the cotangent of np.sum(x) reaches x as a broadcast view of
# one number instead of a filled array (no write and no page faults for a big buffer).
cdef Py_ssize_t LAZY_MIN = 4096

cdef extern from *:
    """
    /* Loops of the reverse sweep and of the fast elementwise path (dualad/_tape.pyx).
       GCC does not vectorize a select between a product and 0 while it assumes that
       floating-point operations may trap (its default): the annihilating loops are
       compiled without that assumption.  It changes no result (the flags they raise are
       cleared by the caller); fp-contract=off keeps d * c + o two roundings, as NumPy. */
    #if defined(__GNUC__) && !defined(__clang__)
    #define DD_VECTORIZE __attribute__((optimize("no-trapping-math", "fp-contract=off")))
    #else
    #define DD_VECTORIZE
    #endif

    #define DD_ACC_LOOPS(P) \\
        if (acc == 0) { for (i = 0; i < n; i++) { P; o[i] = p; } } \\
        else if (acc == 1) { for (i = 0; i < n; i++) { P; o[i] = o[i] + p; } } \\
        else { for (i = 0; i < n; i++) { P; o[i] = -o[i] + p; } }

    /* o[i] = p, o[i] + p or -o[i] + p (acc = 0, 1, 2; 2: o held the negated sum) for
       p = (s * d[i]) * c[i * cs]: the partial s * d[i] (an array, s = +-1, or an operand
       times a number: 2 * x for x ** 2) times the cotangent, where a zero on either side
       gives 0 (0 * inf = 0, dualad's masking rule); cs is 1 or 0 (a broadcast number) */
    static DD_VECTORIZE void dd_axpy0(double* o, int acc, const double* d, double s,
                                      const double* c, Py_ssize_t cs, Py_ssize_t n) {
        Py_ssize_t i;
        if (cs == 1) {
            DD_ACC_LOOPS(double a = s * d[i]; double b = c[i];
                         double p = (a == 0.0 || b == 0.0) ? 0.0 : a * b)
        } else {
            double b = c[0];
            DD_ACC_LOOPS(double a = s * d[i];
                         double p = (a == 0.0 || b == 0.0) ? 0.0 : a * b)
        }
    }

    /* the same for a number d as the partial, as NumPy computes d * c (no annihilation:
       d is a nonzero number, or exactly 0 and the product 0) */
    static void dd_axpyc(double* o, int acc, double d, const double* c, Py_ssize_t cs,
                         Py_ssize_t n) {
        Py_ssize_t i;
        if (cs == 0) {
            double q = d == 0.0 ? 0.0 : (d == 1.0 ? c[0] : (d == -1.0 ? -c[0] : d * c[0]));
            DD_ACC_LOOPS(double p = q)
        } else if (d == 0.0) {
            DD_ACC_LOOPS(double p = 0.0)
        } else if (d == 1.0) {
            DD_ACC_LOOPS(double p = c[i])
        } else if (d == -1.0) {
            DD_ACC_LOOPS(double p = -c[i])
        } else {
            DD_ACC_LOOPS(double p = d * c[i])
        }
    }

    /* o[start + k * step] += (neg ? -1 : 1) * c[k * cs], k < m: the cotangent of a slice
       of a vector (o - c is o + (-c) in IEEE arithmetic: the sign is exact) */
    static void dd_scatter_add(double* o, Py_ssize_t start, Py_ssize_t step,
                               const double* c, Py_ssize_t cs, Py_ssize_t m, int neg) {
        Py_ssize_t k;
        double* q = o + start;
        if (step == 1 && cs == 1 && !neg) { for (k = 0; k < m; k++) q[k] = q[k] + c[k]; }
        else if (step == 1 && cs == 1) { for (k = 0; k < m; k++) q[k] = q[k] + -c[k]; }
        else if (step == 1) {
            double b = neg ? -c[0] : c[0];
            for (k = 0; k < m; k++) q[k] = q[k] + b;
        } else if (!neg) { for (k = 0; k < m; k++) q[k * step] = q[k * step] + c[k * cs]; }
        else { for (k = 0; k < m; k++) q[k * step] = q[k * step] + -c[k * cs]; }
    }

    /* the same into a new vector of length len: zeros elsewhere (0 + c, as zeros + c) */
    static void dd_scatter_new(double* o, Py_ssize_t len, Py_ssize_t start,
                               Py_ssize_t step, const double* c, Py_ssize_t cs,
                               Py_ssize_t m, int neg) {
        Py_ssize_t k;
        if (step == 1) {
            for (k = 0; k < start; k++) o[k] = 0.0;
            for (k = start + m; k < len; k++) o[k] = 0.0;
            if (cs == 1 && !neg) { for (k = 0; k < m; k++) o[start + k] = 0.0 + c[k]; }
            else if (cs == 1) { for (k = 0; k < m; k++) o[start + k] = 0.0 + -c[k]; }
            else {
                double b = 0.0 + (neg ? -c[0] : c[0]);
                for (k = 0; k < m; k++) o[start + k] = b;
            }
        } else {
            for (k = 0; k < len; k++) o[k] = 0.0;
            dd_scatter_add(o, start, step, c, cs, m, neg);
        }
    }

    /* out[i] = gt if x > y, lt if x < y, else 0.5 (a tie or a NaN): the partials of
       maximum and minimum, as their rules write them */
    static DD_VECTORIZE void dd_tie(const double* x, Py_ssize_t xs, const double* y,
                                    Py_ssize_t ys, double* out, Py_ssize_t n, double gt,
                                    double lt) {
        Py_ssize_t i;
        if (xs && ys) {
            for (i = 0; i < n; i++) out[i] = x[i] > y[i] ? gt : (x[i] < y[i] ? lt : 0.5);
        } else if (xs) {
            double b = y[0];
            for (i = 0; i < n; i++) out[i] = x[i] > b ? gt : (x[i] < b ? lt : 0.5);
        } else {
            double a = x[0];
            for (i = 0; i < n; i++) out[i] = a > y[i] ? gt : (a < y[i] ? lt : 0.5);
        }
    }

    /* out = x (op) y, NumPy's IEEE result; strides are 1 (array) or 0 (a number) */
    enum { DD_ADD = 1, DD_SUB = 2, DD_MUL = 3, DD_NEG = 4, DD_SQUARE = 5 };
    #define DD_LOOP(expr) \\
        if (xs && ys) { \\
            for (i = 0; i < n; i++) { double a = x[i], b = y[i]; out[i] = expr; } \\
        } else if (xs) { \\
            double b = y[0]; for (i = 0; i < n; i++) { double a = x[i]; out[i] = expr; } \\
        } else if (ys) { \\
            double a = x[0]; for (i = 0; i < n; i++) { double b = y[i]; out[i] = expr; } \\
        } else { double a = x[0], b = y[0]; for (i = 0; i < n; i++) out[i] = expr; }
    #define DD_LOOP1(expr) \\
        if (xs) { for (i = 0; i < n; i++) { double a = x[i]; out[i] = expr; } } \\
        else { double a = x[0]; for (i = 0; i < n; i++) out[i] = expr; }
    static void dd_arith(int op, const double* x, Py_ssize_t xs, const double* y,
                         Py_ssize_t ys, double* out, Py_ssize_t n) {
        Py_ssize_t i;
        switch (op) {
        case DD_ADD: { DD_LOOP(a + b) break; }
        case DD_SUB: { DD_LOOP(a - b) break; }
        case DD_MUL: { DD_LOOP(a * b) break; }
        case DD_NEG: { DD_LOOP1(-a) break; }
        default: { DD_LOOP1(a * a) break; }  /* DD_SQUARE */
        }
    }
    """
    void dd_axpy0(double* o, int acc, const double* d, double s, const double* c,
                  Py_ssize_t cs, Py_ssize_t n) noexcept nogil
    void dd_axpyc(double* o, int acc, double d, const double* c, Py_ssize_t cs,
                  Py_ssize_t n) noexcept nogil
    void dd_arith(int op, const double* x, Py_ssize_t xs, const double* y, Py_ssize_t ys,
                  double* out, Py_ssize_t n) noexcept nogil
    void dd_tie(const double* x, Py_ssize_t xs, const double* y, Py_ssize_t ys, double* out,
                Py_ssize_t n, double gt, double lt) noexcept nogil
    void dd_scatter_add(double* o, Py_ssize_t start, Py_ssize_t step, const double* c,
                        Py_ssize_t cs, Py_ssize_t m, int neg) noexcept nogil
    void dd_scatter_new(double* o, Py_ssize_t length, Py_ssize_t start, Py_ssize_t step,
                        const double* c, Py_ssize_t cs, Py_ssize_t m,
                        int neg) noexcept nogil
    enum:
        DD_ADD
        DD_SUB
        DD_MUL
        DD_NEG
        DD_SQUARE



# ---------------------------------------------------------------------------------------
# the backward sweep's array helpers
#
# Tape.backward keeps, per node, an adjoint object and flags.  Where the sweep allocated
# an adjoint and nobody else holds it (F_OWN) it adds into it in place, and the last
# reader of a cotangent may turn its buffer into a parent's adjoint.  Two shortcuts save
# whole passes over big arrays: a parent's adjoint may be the cotangent negated
# (F_NEG: ``a - b``, ``-a``; the next product flips its sign, exactly), and the
# cotangent of np.sum(x) is one number broadcast (F_LAZY).  Products and sums are then
# computed as NumPy would compute them from the plain adjoints: the same numbers.

cdef enum:
    F_OWN = 1    # an array this sweep allocated and nobody else holds: written in place
    F_KEEP = 2   # a requested adjoint (``wrt``): never reused
    F_LAZY = 4   # a read-only broadcast view of one number (np.sum's cotangent)
    F_NEG = 8    # the array holds the adjoint negated
    T_STEAL = 16  # (for a node's cotangent) the sweep may overwrite it: see _take


cdef inline bint _plain_owned(object a, object shape):
    return (type(a) is NDARRAY and cnp.PyArray_TYPE(<cnp.ndarray> a) == cnp.NPY_DOUBLE
            and cnp.PyArray_ISWRITEABLE(<cnp.ndarray> a) and _has_shape(a, shape))


cdef bint _has_shape(object a, object shape):
    """ndarray ``a`` has the shape tuple ``shape``."""
    cdef int k, nd = cnp.PyArray_NDIM(<cnp.ndarray> a)
    if type(shape) is not tuple or len(<tuple> shape) != nd:
        return False
    cdef cnp.npy_intp* dims = cnp.PyArray_DIMS(<cnp.ndarray> a)
    for k in range(nd):
        if dims[k] != <Py_ssize_t> (<tuple> shape)[k]:
            return False
    return True


cdef inline void _set(list aadj, unsigned char* fl, Py_ssize_t p, object value, int flags):
    aadj[p] = value
    fl[p] = (fl[p] & F_KEEP) | flags


cdef object _take(Py_ssize_t i, list aadj, list abuf, unsigned char* fl, int* state):
    """The accumulated adjoint of array node ``i`` for its VJP.  ``state``: F_LAZY and
    F_NEG as stored, T_STEAL if nobody else holds it and it is not requested (the
    sweep may overwrite it)."""
    a = aadj[i]
    b = abuf[i]
    if b is None:
        state[0] = fl[i] & (F_LAZY | F_NEG)
        if a is not None and (fl[i] & (F_OWN | F_KEEP)) == F_OWN:
            state[0] |= T_STEAL
        return a
    state[0] = 0 if fl[i] & F_KEEP else T_STEAL
    if a is None:
        return b
    r = b - a if fl[i] & F_NEG else a + b  # (b - (-a) is b + a, exactly)
    if type(r) is not NDARRAY:
        state[0] = 0
    return r


cdef object _plain(object a, int state):
    """A plain array for Python code: a negated adjoint negated back, a broadcast number
    as a writeable array."""
    if state & F_NEG:
        return np.negative(a)
    if state & F_LAZY:
        return np.array(a)
    return a


cdef object _accumulate(list aadj, unsigned char* fl, Py_ssize_t p, object c, object shape):
    """aadj[p] += c, in place when aadj[p] is this sweep's own plain array."""
    if type(c) is Scatter:
        _scatter(aadj, fl, p, (<Scatter> c).key, (<Scatter> c).cotangent, shape, 0)
        return None
    cur = aadj[p]
    if type(cur) is DUALARRAY and type(c) is DUALARRAY:
        # forward-over-reverse: the sweep's own DualArray adjoint takes the sum in place,
        # or the sum is a new DualArray the sweep owns (else NumPy's sum below)
        if fl[p] & F_OWN and _dual_iadd(cur, c):
            return None
        total = _dual_sum(cur, c)
        if total is not None:
            _set(aadj, fl, p, total, F_OWN)
            return None
    if cur is not None and fl[p] & F_NEG:
        cur = np.negative(cur)
        _set(aadj, fl, p, cur, F_OWN)
    if cur is None:
        _set(aadj, fl, p, c, 0)
    elif fl[p] & F_OWN and type(c) is NDARRAY and _plain_owned(cur, shape) and \
            cnp.PyArray_TYPE(<cnp.ndarray> c) == cnp.NPY_DOUBLE:
        np.add(cur, c, out=cur)
    else:
        cur = cur + c
        _set(aadj, fl, p, cur, F_OWN if type(cur) is NDARRAY else 0)
    return None


cdef int _scatter(list aadj, unsigned char* fl, Py_ssize_t p, object key, object cot,
                  object shape, int state) except -1:
    """aadj[p][key] += cot (the cotangent of a basic slice) in place, without a mostly
    zero array of the full shape; ``state``: cot's F_LAZY and F_NEG."""
    cdef Py_ssize_t start, stop, step, m, length
    cdef int neg = (state & F_NEG) != 0
    cur = aadj[p]
    if cur is not None and fl[p] & F_NEG:
        # a negated adjoint is made plain first (-(a + b) is not (-a) + (-b) when the
        # sum is 0: the sign of that zero)
        cur = np.negative(cur)
        _set(aadj, fl, p, cur, F_OWN)
    if type(cot) is NDARRAY and (cur is None or type(cur) is NDARRAY):
        if type(key) is slice and len(shape) == 1 and \
                cnp.PyArray_NDIM(<cnp.ndarray> cot) == 1 and \
                cnp.PyArray_TYPE(<cnp.ndarray> cot) == cnp.NPY_DOUBLE and \
                (state & F_LAZY or cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> cot)):
            # x[a:b:s] of a vector (x[1:], x[:-1]): one C loop
            length = shape[0]
            PySlice_Unpack(key, &start, &stop, &step)
            m = PySlice_AdjustIndices(length, &start, &stop, step)
            if m == cnp.PyArray_DIM(<cnp.ndarray> cot, 0):
                if cur is None:
                    cur = _filled(shape, 0.0, False)
                    dd_scatter_new(_ptr(cur), length, start, step, _ptr(cot),
                                   0 if state & F_LAZY else 1, m, neg)
                    _set(aadj, fl, p, cur, F_OWN)
                    return 0
                if not fl[p] & F_OWN or not _c_f64(cur) or not _plain_owned(cur, shape):
                    cur = np.array(cur, dtype=np.float64)
                    _set(aadj, fl, p, cur, F_OWN)
                dd_scatter_add(_ptr(cur), start, step, _ptr(cot),
                               0 if state & F_LAZY else 1, m, neg)
                return 0
        if cur is None or not fl[p] & F_OWN or not _plain_owned(cur, shape):
            cur = np.zeros(shape) if cur is None else np.array(cur, dtype=np.float64)
            _set(aadj, fl, p, cur, F_OWN)
        if neg:
            cur[key] -= cot  # (o - c is o + (-c), exactly)
        else:
            cur[key] += cot
        return 0
    # traced cotangent: materialise the full-size cotangent (nests)
    cot = _plain(cot, state)
    full = np.zeros_like(cot, shape=shape)
    full[key] = cot
    _accumulate(aadj, fl, p, full, shape)
    return 0


cdef object _filled(object shape, double value, bint fill=True):
    """A new float64 array of the given shape, every element ``value`` (if ``fill``)."""
    cdef cnp.npy_intp dims[64]
    cdef int k, nd = len(shape)
    cdef Py_ssize_t i, n
    if nd > 64:
        return np.full(shape, value)
    for k in range(nd):
        dims[k] = shape[k]
    out = cnp.PyArray_EMPTY(nd, dims, cnp.NPY_DOUBLE, 0)
    cdef double* o = _ptr(out)
    if fill:
        n = cnp.PyArray_SIZE(<cnp.ndarray> out)
        for i in range(n):
            o[i] = value
    return out


cdef object _broadcast(double value, object shape):
    """``value`` broadcast to ``shape``: a read-only view of one number (F_LAZY)."""
    return np.broadcast_to(np.array(value), shape)


cdef int _sweep_elem(_ElemVJP f, object cot, int state, Py_ssize_t p0, Py_ssize_t p1,
                     list aadj, unsigned char* fl, list shapes, object shape) except -1:
    """A fast elementwise node's VJP applied in place: each parent's adjoint gets the
    cotangent times the partial, written into the parent's own buffer when the sweep
    owns it, else into the cotangent's buffer when this node is its last reader."""
    cdef Py_ssize_t n, cs
    cdef int last
    cdef const double* cp
    if type(cot) is not NDARRAY or \
            cnp.PyArray_TYPE(<cnp.ndarray> cot) != cnp.NPY_DOUBLE or \
            not (state & F_LAZY or cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> cot)) or \
            not _has_shape(cot, shape):
        # traced cotangents (nested levels) and unusual layouts: NumPy's products
        cots = f(_plain(cot, state))
        if p0 >= 0 and cots[0] is not None:
            _accumulate(aadj, fl, p0, cots[0], shapes[p0])
        if p1 >= 0 and cots[1] is not None:
            _accumulate(aadj, fl, p1, cots[1], shapes[p1])
        return 0
    if state & T_STEAL and not cnp.PyArray_ISWRITEABLE(<cnp.ndarray> cot):
        state &= ~T_STEAL
    cp = _ptr(cot)
    cs = 0 if state & F_LAZY else 1
    n = cnp.PyArray_SIZE(<cnp.ndarray> cot)
    if p0 >= 0:
        if _contribute(aadj, fl, p0, f.d0, f.s0, cot, cp, cs, n, state, p1 < 0,
                       shapes[p0]) == 0:
            state &= ~T_STEAL
    if p1 >= 0:
        _contribute(aadj, fl, p1, f.d1, f.s1, cot, cp, cs, n, state, True, shapes[p1])
    return 0


cdef int _contribute(list aadj, unsigned char* fl, Py_ssize_t p, object d, double s,
                     object cot, const double* cp, Py_ssize_t cs, Py_ssize_t n, int state,
                     bint last, object pshape) except -1:
    """aadj[p] += d * cot (``state``: cot's flags, see _take).  Returns 1 if cot is still
    unshared and unchanged, else 0."""
    cdef bint annihilate = type(d) is not float
    cdef double dv = 0.0 if annihilate else <double> d
    cdef const double* dp = _ptr(d) if annihilate else NULL
    cdef bint steal = (state & T_STEAL) != 0 and last
    cdef int acc = 1
    if state & F_NEG:
        # cot holds -adjoint: (-s d) (-c) = s d c and (-dv) (-c) = dv c exactly
        s = -s
        dv = -dv
    cur = aadj[p]
    if cur is None:
        if state & F_LAZY and not annihilate:
            # a number times a broadcast number: another broadcast number
            if dv == 1.0:
                _set(aadj, fl, p, cot, F_LAZY)
                return 0
            dd_axpyc(&dv, 0, dv, cp, 0, 1)
            _set(aadj, fl, p, _broadcast(dv, pshape), F_LAZY)
            return 1
        if not annihilate and (dv == 1.0 or dv == -1.0) and not state & F_LAZY:
            # the parent's adjoint is this cotangent, or it negated (add, subtract,
            # negative): shared, or handed over if this was its last reader
            _set(aadj, fl, p, cot, (F_OWN if steal else 0) | (F_NEG if dv == -1.0 else 0))
            return 0
        out = cot if steal else empty_array(cot)
        _axpy(_ptr(out), 0, annihilate, dp, s, dv, cp, cs, n)
        _set(aadj, fl, p, out, F_OWN)
        return 0 if steal else (state & T_STEAL) != 0
    if fl[p] & F_OWN and _c_f64(cur) and _same_shape(cur, cot):
        if fl[p] & F_NEG:
            acc = 2  # the stored adjoint was negated: -o + p, and o is plain again
            fl[p] &= ~F_NEG
        _axpy(_ptr(cur), acc, annihilate, dp, s, dv, cp, cs, n)
        return (state & T_STEAL) != 0
    # a shared or broadcast adjoint, or a tracer: a new sum, as _accumulate
    prod = cot if steal else empty_array(cot)
    _axpy(_ptr(prod), 0, annihilate, dp, s, dv, cp, cs, n)
    _accumulate(aadj, fl, p, prod, pshape)
    return 0 if steal else (state & T_STEAL) != 0


cdef bint _dual_iadd(object cur, object c) except -1:
    """cur += c for DualArrays of one level and shape (``cur`` this sweep's own, with
    C-contiguous parts; ``c`` with lane-contiguous lanes); False if they do not qualify."""
    if cur.tag != c.tag:
        return False
    cv = cur.value
    ct = cur.tangent
    xv = c.value
    xt = c.tangent
    if not _c_f64(cv) or not _c_f64(ct) or not _c_f64(xv) or not _same_shape(cv, xv):
        return False
    cdef Py_ssize_t k = cnp.PyArray_DIM(<cnp.ndarray> ct, 0) \
        if cnp.PyArray_NDIM(<cnp.ndarray> ct) > 0 else -1
    if k < 1 or lane_stride(ct, cv, k) < 0 or \
            not cnp.PyArray_ISWRITEABLE(<cnp.ndarray> cv) or \
            not cnp.PyArray_ISWRITEABLE(<cnp.ndarray> ct):
        return False
    cdef Py_ssize_t xtl = lane_stride(xt, xv, k)
    if xtl < 0:
        return False
    cdef Py_ssize_t i, l, n = cnp.PyArray_SIZE(<cnp.ndarray> cv)
    cdef double* o = _ptr(cv)
    cdef const double* a = _ptr(xv)
    for i in range(n):
        o[i] = o[i] + a[i]
    for l in range(k):
        o = _ptr(ct) + l * n
        a = _ptr(xt) + l * xtl
        for i in range(n):
            o[i] = o[i] + a[i]
    return True


cdef object _dual_sum(object a, object b):
    """a + b as a new DualArray for DualArrays of one level and shape with float64
    C-contiguous values and lane-contiguous lanes, else None."""
    if a.tag != b.tag:
        return None
    av = a.value
    bv = b.value
    if not _c_f64(av) or not _c_f64(bv) or not _same_shape(av, bv):
        return None
    at = a.tangent
    bt = b.tangent
    if type(at) is not NDARRAY or cnp.PyArray_NDIM(<cnp.ndarray> at) == 0:
        return None
    cdef Py_ssize_t k = cnp.PyArray_DIM(<cnp.ndarray> at, 0)
    cdef Py_ssize_t atl = lane_stride(at, av, k), btl = lane_stride(bt, bv, k)
    if k < 1 or atl < 0 or btl < 0:
        return None
    cdef Py_ssize_t i, l, n = cnp.PyArray_SIZE(<cnp.ndarray> av)
    ov = empty_array(av)
    ot = empty_array(av, k)
    cdef double* o = _ptr(ov)
    cdef const double* x = _ptr(av)
    cdef const double* y = _ptr(bv)
    for i in range(n):
        o[i] = x[i] + y[i]
    for l in range(k):
        o = _ptr(ot) + l * n
        x = _ptr(at) + l * atl
        y = _ptr(bt) + l * btl
        for i in range(n):
            o[i] = x[i] + y[i]
    return _fwd.make(ov, ot, a.tag, True)


cdef bint _scatter_dual(list aadj, unsigned char* fl, Py_ssize_t p, object key, object cot,
                        object shape) except -1:
    """aadj[p][key] += cot for a DualArray cotangent of a basic slice (forward-over-
    reverse): in place into the sweep's own DualArray adjoint, else a new one."""
    cv = cot.value
    ct = cot.tangent
    if type(cv) is not NDARRAY or type(ct) is not NDARRAY or type(shape) is not tuple:
        return False
    cdef Py_ssize_t k = ct.shape[0]
    cur = aadj[p]
    cdef Py_ssize_t start, stop, step, m, length, l, ctl
    cdef cnp.npy_intp dims[2]
    cdef double* o
    if type(key) is slice and len(<tuple> shape) == 1 and _c_f64(cv) and \
            cnp.PyArray_NDIM(<cnp.ndarray> cv) == 1:
        # x[a:b:s] of a vector (x[1:], x[:-1]): value and lanes in C loops
        length = (<tuple> shape)[0]
        PySlice_Unpack(key, &start, &stop, &step)
        m = PySlice_AdjustIndices(length, &start, &stop, step)
        ctl = lane_stride(ct, cv, k)
        if m == cnp.PyArray_DIM(<cnp.ndarray> cv, 0) and ctl >= 0 and k >= 1:
            if cur is None:
                dims[0] = length
                v = cnp.PyArray_EMPTY(1, dims, cnp.NPY_DOUBLE, 0)
                dims[0] = k
                dims[1] = length
                t = cnp.PyArray_EMPTY(2, dims, cnp.NPY_DOUBLE, 0)
                dd_scatter_new(_ptr(v), length, start, step, _ptr(cv), 1, m, 0)
                for l in range(k):
                    dd_scatter_new(_ptr(t) + l * length, length, start, step,
                                   _ptr(ct) + l * ctl, 1, m, 0)
                _set(aadj, fl, p, _fwd.make(v, t, cot.tag, True), F_OWN)
                return True
            if fl[p] & F_OWN and type(cur) is DUALARRAY and cur.tag == cot.tag and \
                    _plain_owned(cur.value, shape) and _c_f64(cur.value) and \
                    _plain_owned(cur.tangent, (k,) + shape) and _c_f64(cur.tangent):
                dd_scatter_add(_ptr(cur.value), start, step, _ptr(cv), 1, m, 0)
                o = _ptr(cur.tangent)
                for l in range(k):
                    dd_scatter_add(o + l * length, start, step, _ptr(ct) + l * ctl, 1, m, 0)
                return True
    lkey = (slice(None),) + (key if type(key) is tuple else (key,))
    if cur is not None and fl[p] & F_OWN and type(cur) is DUALARRAY and \
            cur.tag == cot.tag and _plain_owned(cur.value, shape) and \
            _plain_owned(cur.tangent, (k,) + shape):
        cur.value[key] += cv
        cur.tangent[lkey] += ct
        return True
    v = np.zeros(shape)
    t = np.zeros((k,) + shape)
    v[key] = cv
    t[lkey] = ct
    full = _fwd.make(v, t, cot.tag, True)
    if cur is None:
        _set(aadj, fl, p, full, F_OWN)
    else:
        _accumulate(aadj, fl, p, full, shape)
    return True


cdef object _nested_sum(RArray a):
    """np.sum(x) of a DualArray-valued x (forward-over-reverse): the value and lanes
    summed as the generic rule sums them, and the sweep's node for a sum of all."""
    d = a.value
    v = d.value
    t = d.tangent
    if type(v) is not NDARRAY or type(t) is not NDARRAY:
        return None
    cdef int nd = cnp.PyArray_NDIM(<cnp.ndarray> v)
    if nd == 0:
        return None
    axes = tuple(range(nd))
    value = _fwd.make(np.asarray(v.sum(axis=axes)), t.sum(axis=tuple(range(1, nd + 1))),
                      d.tag, True)
    return wrap(a.tape, value, a.tape._push(K_ARRAY, -1, -1, 0.0, 0.0, -1,
                                            (_SumAllVJP(v.shape), [a.node]), ()))


cdef int _sweep_array(object info, object cot, int state, list aadj,
                      unsigned char* fl, double* sadj, list shapes) except -1:
    """An array node's VJP (slices and sums of all elements in place, others called)."""
    cdef Py_ssize_t j, p
    cdef bint fresh
    vjp, parents = info
    if type(vjp) is _SliceVJP and type(cot) is NDARRAY:
        p = parents[0]
        _scatter(aadj, fl, p, (<_SliceVJP> vjp).key, cot, shapes[p], state)
        return 0
    if type(cot) is NDARRAY and cnp.PyArray_TYPE(<cnp.ndarray> cot) == cnp.NPY_DOUBLE:
        if type(vjp) is _ReshapeVJP:
            _sweep_reshape(<_ReshapeVJP> vjp, cot, state, parents[0], aadj, fl, shapes)
            return 0
        if type(vjp) is _MatmulVJP:
            _sweep_matmul(<_MatmulVJP> vjp, _plain(cot, state), parents, aadj, fl, shapes)
            return 0
        if type(vjp) is _BroadcastVJP:
            _sweep_broadcast(<_BroadcastVJP> vjp, cot, state, parents, aadj, fl, shapes)
            return 0
    cot = _plain(cot, state)
    if type(vjp) is _NestedVJP:
        # forward-over-reverse elementwise node: products in C, new adjoints owned
        f = <_NestedVJP> vjp
        for j in range(len(parents)):
            p = parents[j]
            if p < 0:
                continue
            c = _nested_times(f.v0 if j == 0 else f.v1, f.t0 if j == 0 else f.t1,
                              f.s0 if j == 0 else f.s1, f, cot, &fresh)
            if c is None:
                continue
            if aadj[p] is None and fresh:
                _set(aadj, fl, p, c, F_OWN)
            else:
                _accumulate(aadj, fl, p, c, shapes[p])
        return 0
    if type(vjp) is _SliceVJP and type(cot) is DUALARRAY:
        p = parents[0]
        if _scatter_dual(aadj, fl, p, (<_SliceVJP> vjp).key, cot, shapes[p]):
            return 0
    if type(vjp) is _SumAllVJP and (type(cot) is float or type(cot) is NP_FLOAT64 or (
            type(cot) is NDARRAY and cnp.PyArray_NDIM(<cnp.ndarray> cot) == 0)):
        p = parents[0]
        shape = (<_SumAllVJP> vjp).shape
        c = float(cot)
        if (<_SumAllVJP> vjp).count != 1:
            c = c / (<_SumAllVJP> vjp).count  # np.mean: the generic rule's cot / count
        if aadj[p] is None and _shape_size(shape) >= LAZY_MIN:
            # every element's cotangent is one number: a broadcast view, no buffer
            _set(aadj, fl, p, _broadcast(c, shape), F_LAZY)
        elif aadj[p] is None:
            _set(aadj, fl, p, _filled(shape, c), F_OWN)
        else:
            _accumulate(aadj, fl, p, _filled(shape, c), shapes[p])
        return 0
    cots = vjp(cot)
    for j in range(len(parents)):
        p = parents[j]
        if p < 0 or cots[j] is None:
            continue
        if shapes[p] is None:
            c = cots[j]
            if _is_tracer(c):
                aadj[p] = c if aadj[p] is None else aadj[p] + c
            else:
                sadj[p] += float(np.sum(c))
        else:
            _accumulate(aadj, fl, p, cots[j], shapes[p])
    return 0


cdef inline void _give(list aadj, unsigned char* fl, Py_ssize_t p, object c,
                       list shapes) except *:
    """aadj[p] += c for a new float64 array ``c`` that nobody else holds: it becomes the
    adjoint (written in place later) when there is none yet."""
    if aadj[p] is None and type(c) is NDARRAY and \
            cnp.PyArray_ISWRITEABLE(<cnp.ndarray> c) and _c_f64(c):
        _set(aadj, fl, p, c, F_OWN)
    else:
        _accumulate(aadj, fl, p, c, shapes[p])


cdef int _sweep_reshape(_ReshapeVJP f, object cot, int state, Py_ssize_t p, list aadj,
                        unsigned char* fl, list shapes) except -1:
    """A reshape's cotangent reaches the operand as a reshaped view: it keeps its flags
    (negated, broadcast number) and, if it was this sweep's own buffer, its ownership."""
    c = cot.reshape(f.shape)
    if aadj[p] is not None:
        _accumulate(aadj, fl, p, _plain(c, state), shapes[p])
        return 0
    flags = state & (F_LAZY | F_NEG)
    if state & T_STEAL and type(c) is NDARRAY and _c_f64(c) and \
            cnp.PyArray_ISWRITEABLE(<cnp.ndarray> c):
        flags |= F_OWN
    _set(aadj, fl, p, c, flags)
    return 0


cdef int _sweep_matmul(_MatmulVJP f, object cot, list parents, list aadj,
                       unsigned char* fl, list shapes) except -1:
    """The two products of a 2-D matmul's VJP (BLAS), new adjoints owned."""
    if f.ta:
        _give(aadj, fl, parents[0], _np_matmul(cot, cnp.PyArray_Transpose(
            <cnp.ndarray> f.b, NULL)), shapes)
    if f.tb:
        _give(aadj, fl, parents[1], _np_matmul(cnp.PyArray_Transpose(
            <cnp.ndarray> f.a, NULL), cot), shapes)
    return 0


cdef object _unbroadcast(object cot, object shape):
    """``unbroadcast(cot, shape)`` for a float64 ndarray cotangent (the same sums)."""
    cdef Py_ssize_t i, nd = len(shape)
    cdef Py_ssize_t extra = cnp.PyArray_NDIM(<cnp.ndarray> cot) - nd
    if extra == 0 and _has_shape(cot, shape):
        return cot
    if extra > 0:
        cot = _add_reduce(cot, tuple(range(extra)))
    axes = []
    for i in range(nd):
        if shape[i] == 1 and cot.shape[i] != 1:
            axes.append(i)
    if axes:
        cot = _add_reduce(cot, tuple(axes), None, None, True)
    return cot


cdef int _sweep_broadcast(_BroadcastVJP f, object cot, int state, list parents,
                          list aadj, unsigned char* fl, list shapes) except -1:
    """``a + b`` / ``a - b`` with broadcasting: the sums over the broadcast axes first
    (new arrays), then the operand of the result's shape gets the cotangent itself,
    shared, or handed over when this node was its last reader."""
    cdef Py_ssize_t j, p, full = -1
    cdef int flags
    cdef bint shared = False
    c = _plain(cot, state)
    if c is not cot:
        state = (state & ~(F_LAZY | F_NEG)) | T_STEAL  # a new array of _plain's
    for j in range(2):
        p = parents[j]
        if p < 0:
            continue
        s = f.s0 if j == 0 else f.s1
        if j == 0 or not f.sub:
            if _has_shape(c, s) and full < 0:
                full = j  # the cotangent itself: last (the sums read it first)
                continue
            g = _unbroadcast(c, s)
        else:
            g = _unbroadcast(np.negative(c), s)
        if g is c:
            shared = True
            _accumulate(aadj, fl, p, g, shapes[p])
        else:
            _give(aadj, fl, p, g, shapes)
    if full >= 0:
        p = parents[full]
        if aadj[p] is None:
            flags = F_OWN if state & T_STEAL and not shared and _c_f64(c) and \
                cnp.PyArray_ISWRITEABLE(<cnp.ndarray> c) else 0
            _set(aadj, fl, p, c, flags)
        else:
            _accumulate(aadj, fl, p, c, shapes[p])
    return 0


cdef Py_ssize_t _shape_size(object shape):
    cdef Py_ssize_t n = 1
    for d in shape:
        n *= <Py_ssize_t> d
    return n


cdef object _adjoint_of(Py_ssize_t i, list aadj, list abuf, double* sadj, list shapes,
                        unsigned char* fl):
    """The accumulated adjoint of node i: generic part + element writes (+ scalar part)."""
    a = aadj[i]
    b = abuf[i]
    if shapes[i] is None:
        if a is None:
            return sadj[i] if sadj[i] != 0.0 else (None if a is None else a)
        return a + sadj[i]
    if b is not None:
        if a is None:
            return b
        return b - a if fl[i] & F_NEG else a + b
    if a is None:
        return None
    return _plain(a, fl[i])


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
# The node keeps the partials (a number, an operand's or the result's array, an operand
# times a number, or an array computed from the rule) and the sweep applies them in C:
# no Python call per node, and the cotangent is multiplied into the parent's adjoint in
# place where the sweep owns it (issue 4: the tape's overhead on small and medium arrays).
#
# Values: add, subtract, multiply, negative and squares (x ** 2, np.square) are C loops,
# bit for bit NumPy's (IEEE arithmetic).  Other rules: below VECTOR_MIN elements one C
# pass over the rule's kernel gives the value and the partials; above it NumPy's
# vectorized loops give the value and the table's partial expressions (x ** 2.0: 3.7 vs
# ~1 ns per element), or the partial is a number, an operand or the result, used in place.

# How a fast node has the partial of one operand (the rule table's ``kinds``).
cdef enum:
    PK_KERNEL = 0   # computed per element: the rule's C kernel or its NumPy expression
    PK_CONST = 1    # a number
    PK_X = 2        # the first operand
    PK_Y = 3        # the second operand
    PK_ANS = 4      # the result

ctypedef struct _Info:
    int nin             # 1 or 2; 0: not on the fast path
    Py_ssize_t idx      # the rule's index in the kernel tables (U1 or B1...)
    int kind[2]         # PK_* per operand
    double cval[2]      # the number of a PK_CONST partial
    int op              # DD_* when the value is one of dd_arith's loops, else 0
    int power           # 1: np.power, 2: np.float_power (zero-base guard on d/dy)
    int tie             # 1: np.maximum, -1: np.minimum (partials 1, 0 or 1/2: dd_tie)

# one entry per rule, unary rules first; FAST_INDEX maps a ufunc to its entry
cdef _Info INFO[N_UNARY + N_BINARY]
cdef list INFO_ENTRY = [None] * (N_UNARY + N_BINARY)
cdef list INFO_UFUNC = [None] * (N_UNARY + N_BINARY)
cdef dict FAST_INDEX = {}


cdef int _fill_info() except -1:
    cdef Py_ssize_t code
    cdef int j
    kinds = {"kernel": PK_KERNEL, "const": PK_CONST, "x": PK_X, "y": PK_Y, "ans": PK_ANS}
    arith = {"add": DD_ADD, "subtract": DD_SUB, "multiply": DD_MUL, "negative": DD_NEG,
             "square": DD_SQUARE}
    names = ([(1, i, name) for i, name in enumerate(unary_names())]
             + [(2, i, name) for i, name in enumerate(binary_names())])
    assert len(names) == N_UNARY + N_BINARY
    for code, (nin, i, name) in enumerate(names):
        ufunc = ufunc_of(name)
        entry = ELEMENTWISE.get(ufunc)
        INFO[code].nin = 0
        for j in range(2):
            INFO[code].kind[j] = PK_KERNEL
            INFO[code].cval[j] = 0.0
        if entry is None or entry.arity != nin:
            continue
        INFO[code].nin = nin
        INFO[code].idx = i
        for j in range(nin):
            kind, c = entry.kinds[j]
            INFO[code].kind[j] = kinds[kind]
            INFO[code].cval[j] = float(c) if kind == "const" else 0.0
        INFO[code].op = arith.get(name, 0)
        INFO[code].power = 1 if ufunc is np.power else (2 if ufunc is np.float_power else 0)
        INFO[code].tie = 1 if ufunc is np.maximum else (-1 if ufunc is np.minimum else 0)
        INFO_ENTRY[code] = entry
        INFO_UFUNC[code] = ufunc
        FAST_INDEX[ufunc] = code
    return 0


_fill_info()
# the operators' entries in INFO
cdef Py_ssize_t C_ADD = FAST_INDEX[np.add]
cdef Py_ssize_t C_SUB = FAST_INDEX[np.subtract]
cdef Py_ssize_t C_MUL = FAST_INDEX[np.multiply]
cdef Py_ssize_t C_DIV = FAST_INDEX[np.true_divide]
cdef Py_ssize_t C_POW = FAST_INDEX[np.power]
cdef Py_ssize_t C_NEG = FAST_INDEX[np.negative]
cdef type NP_FLOAT64 = np.float64


@cython.final
cdef class _ElemVJP:
    """VJP of a fast elementwise node: the cotangent times the stored partials.

    A partial is None (a constant operand), a number, or ``s * d`` for a float64 array
    ``d`` of the node's shape and a number ``s``: 1, or 2 for ``x ** 2``, whose partial
    ``2 x`` the sweep computes on the fly instead of storing it.  The sweep applies them
    in C (:meth:`Tape.backward`); this call is the same product for the diagnostics and
    for traced cotangents.
    """
    cdef object d0, d1
    cdef double s0, s1
    cdef int nin
    # [hvp replay hook] on a replay tape: the rule's INFO index + 1 and the operands
    # (arrays or Python floats); else 0 and None
    cdef Py_ssize_t rcode
    cdef object x0, x1

    def __call__(self, cot):
        return [_times(_partial(self.d0, self.s0), cot),
                _times(_partial(self.d1, self.s1), cot)]


cdef inline object _partial(object d, double s):
    if s == 1.0 or type(d) is not NDARRAY:
        return d
    return s * d  # NumPy's 2.0 * x: the numbers the sweep computes


cdef object _times(object d, object cot):
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
    out = empty_array(c)
    _axpy(_ptr(out), 0, True, _ptr(d), 1.0, 0.0, _ptr(c), 1,
          cnp.PyArray_SIZE(<cnp.ndarray> c))
    return out


cdef inline bint _c_f64(object a):
    return (type(a) is NDARRAY and cnp.PyArray_TYPE(<cnp.ndarray> a) == cnp.NPY_DOUBLE
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> a))


cdef inline double* _ptr(object a) noexcept:
    return <double*> cnp.PyArray_DATA(<cnp.ndarray> a)


cdef void _axpy(double* o, int acc, bint annihilate, const double* dp, double s, double dv,
                const double* cp, Py_ssize_t cs, Py_ssize_t n) noexcept:
    """o (+)= partial * cotangent: an array partial s * dp[i] annihilates (0 * inf = 0), a
    number dv multiplies as NumPy does; big arrays without the GIL."""
    if n >= LAZY_MIN:
        with nogil:
            if annihilate:
                dd_axpy0(o, acc, dp, s, cp, cs, n)
            else:
                dd_axpyc(o, acc, dv, cp, cs, n)
            _clear_flags()
    else:
        if annihilate:
            dd_axpy0(o, acc, dp, s, cp, cs, n)
        else:
            dd_axpyc(o, acc, dv, cp, cs, n)
        _clear_flags()


cdef void _kernel_loop(int arity, Py_ssize_t idx, int which, const double* xv,
                       Py_ssize_t xs, const double* yv, Py_ssize_t ys, double* ans,
                       double* d0, double* d1, Py_ssize_t n, bint powfix) noexcept nogil:
    """ans and partials (d0 if which & 1, d1 if which & 2) in one pass over the kernel."""
    cdef double out[3]
    cdef Py_ssize_t i
    cdef binary_kernel bk
    if arity == 1:
        for i in range(n):
            U1[idx](xv[i * xs], out)
            ans[i] = out[0]
            d0[i] = out[1]
    else:
        bk = B1[idx] if which == 3 else (B1X[idx] if which == 1 else B1Y[idx])
        for i in range(n):
            bk(xv[i * xs], yv[i * ys], out)
            ans[i] = out[0]
            if which & 1:
                d0[i] = out[1]
            if which & 2:
                if powfix and out[0] == 0.0:
                    out[2] = 0.0  # zero base: d/dy x**y -> 0, not 0 * log(0)
                d1[i] = out[2]
    _clear_flags()


cdef object _kind_partial(int kind, double c, object v0, object v1, object ans):
    """A partial that needs no computing: a number, an operand or the result."""
    if kind == PK_CONST:
        return c
    if kind == PK_X:
        return v0
    if kind == PK_Y:
        return v1
    return ans


cdef object _fast_broadcast(Tape tape, Py_ssize_t code, Py_ssize_t n0, Py_ssize_t n1,
                            object v0, object v1):
    """``x + y`` / ``x - y`` of plain float64 arrays of different shapes (``v0``, ``v1``
    their values, ``n0``, ``n1`` their nodes or -1): the value from NumPy's broadcasting
    loop (its errors for shapes that do not broadcast), the VJP a _BroadcastVJP."""
    ans = INFO_UFUNC[code](v0, v1)
    cdef _BroadcastVJP f = _BroadcastVJP.__new__(_BroadcastVJP)
    f.s0 = tuple(v0.shape)
    f.s1 = tuple(v1.shape)
    f.shape = tuple(ans.shape)
    f.sub = code == C_SUB
    return wrap(tape, ans, tape._push(K_ARRAY, -1, -1, 0.0, 0.0, -1, (f, [n0, n1]),
                                      f.shape))


cdef inline bint _f64_matrix(object v):
    return (type(v) is NDARRAY and cnp.PyArray_NDIM(<cnp.ndarray> v) == 2
            and cnp.PyArray_TYPE(<cnp.ndarray> v) == cnp.NPY_DOUBLE)


cdef inline bint _f64_vector(object v):
    # [hvp replay hook] (see _fast_matmul)
    return (type(v) is NDARRAY and cnp.PyArray_NDIM(<cnp.ndarray> v) == 1
            and cnp.PyArray_TYPE(<cnp.ndarray> v) == cnp.NPY_DOUBLE)


cdef object _fast_matmul(object x, object y):
    """``x @ y`` for 2-D float64 values (RArrays of one tape, or plain arrays; at least
    one traced), or a plain 2-D float64 matrix and a traced 1-D float64 vector: NumPy's
    product, and a node whose VJP the sweep applies without a Python call
    (_MatmulVJP); None when the operands do not qualify."""
    cdef Tape tape = None
    cdef Py_ssize_t nx = -1, ny = -1
    xv = x
    yv = y
    if type(x) is RArray:
        tape = (<RArray> x).tape
        xv = (<RArray> x).value
        nx = (<RArray> x).node
    if type(y) is RArray:
        if tape is not None and (<RArray> y).tape is not tape:
            return None
        tape = (<RArray> y).tape
        yv = (<RArray> y).value
        ny = (<RArray> y).node
    if tape is None:
        return None
    if not _f64_matrix(xv) or not _f64_matrix(yv):
        # [hvp replay hook] also a constant matrix @ a traced vector and a traced
        # vector @ a constant matrix (A @ x of model fits): the VJP's two products
        # are right for a 1-D traced operand (not for a 1-D constant one)
        if not ((nx < 0 and _f64_matrix(xv) and _f64_vector(yv)) or
                (ny < 0 and _f64_vector(xv) and _f64_matrix(yv))):
            return None
    value = np.matmul(xv, yv)  # (its error for mismatched inner dimensions)
    cdef _MatmulVJP f = _MatmulVJP.__new__(_MatmulVJP)
    f.a = xv
    f.b = yv
    f.ta = nx >= 0
    f.tb = ny >= 0
    return wrap(tape, value, tape._push(K_ARRAY, -1, -1, 0.0, 0.0, -1, (f, [nx, ny]),
                                        tuple(value.shape)))


cdef object _fast_reshape(RArray a, object shape):
    """``a.reshape(shape)`` (C order) of a plain float64 value: a view, and a node the
    sweep applies without a Python call (_ReshapeVJP); None if the value is a tracer."""
    v = a.value
    if type(v) is not NDARRAY or cnp.PyArray_TYPE(<cnp.ndarray> v) != cnp.NPY_DOUBLE:
        return None
    value = v.reshape(shape)  # (NumPy's error for a size that does not fit)
    cdef _ReshapeVJP f = _ReshapeVJP.__new__(_ReshapeVJP)
    f.shape = tuple(v.shape)
    return wrap(a.tape, value, a.tape._push(K_ARRAY, -1, -1, 0.0, 0.0, -1,
                                            (f, [a.node]), tuple(value.shape)))


cdef bint _whole(dict kwargs):
    """No keywords, or only a reduction's defaults (``x.sum()``, ``x.mean()``)."""
    for k, v in kwargs.items():
        if k == "keepdims":
            if v is not False:
                return False
        elif k == "axis" or k == "dtype" or k == "out":
            if v is not None:
                return False
        else:
            return False
    return True


cdef object _fast_elementwise(Tape tape, Py_ssize_t code, object x, object y):
    """Rule ``INFO[code]`` on ``x`` (and ``y``) by the fast path, or None when the
    operands do not qualify: RArrays of this tape and plain arrays (float64,
    C-contiguous, all of one shape), Python or NumPy numbers; at least one traced."""
    cdef _Info* u = &INFO[code]
    cdef int nin = u.nin, j, which = 0, op = u.op
    cdef Py_ssize_t n
    cdef const double* vp[2]
    cdef Py_ssize_t vs[2]
    cdef double cv[2]
    cdef Py_ssize_t nodes[2]
    cdef object arr = None  # an array operand: the result has its shape
    cdef object v0 = None, v1 = None  # the operands: arrays or Python floats
    cdef object o, v
    nodes[0] = nodes[1] = -1
    vp[1] = NULL
    vs[1] = 0
    for j in range(nin):
        o = x if j == 0 else y
        if type(o) is RArray:
            if (<RArray> o).tape is not tape:
                return None
            v = (<RArray> o).value
            if not _c_f64(v):
                if type(v) is DUALARRAY:
                    # forward-over-reverse: values that carry an older level's lanes
                    return _nested_elementwise(tape, code, x, y)
                return None
            nodes[j] = (<RArray> o).node
            which |= 1 << j
        elif type(o) is float or type(o) is int or type(o) is NP_FLOAT64:
            cv[j] = o
            vp[j] = &cv[j]
            vs[j] = 0
            if j == 0:
                v0 = cv[0]
            else:
                v1 = cv[1]
            continue
        elif _c_f64(o):
            v = o
        else:
            return None
        if arr is None:
            arr = v
        elif not _same_shape(arr, v):
            if op == DD_ADD or op == DD_SUB:
                # a bias row added to a matrix...: NumPy's broadcasting, sums back
                return _fast_broadcast(tape, code, nodes[0], nodes[1], v0, v)
            return None
        vp[j] = _ptr(v)
        vs[j] = 1 if cnp.PyArray_NDIM(<cnp.ndarray> v) > 0 else 0
        if j == 0:
            v0 = v
        else:
            v1 = v
    if which == 0:
        return None
    n = cnp.PyArray_SIZE(<cnp.ndarray> arr)
    if nin == 1:
        vp[1] = vp[0]
    cdef _ElemVJP f = _ElemVJP.__new__(_ElemVJP)
    f.nin = nin
    f.s0 = f.s1 = 1.0
    if u.power == 1 and which == 1 and vs[1] == 0 and vp[1][0] == 2.0:
        op = DD_SQUARE  # x ** 2: the value x * x (pow's result exactly), the partial 2 x
    cdef bint kernel = op != DD_SQUARE and (
        (u.power and (which & 2) != 0)
        or ((which & 1) and u.kind[0] == PK_KERNEL)
        or ((which & 2) and u.kind[1] == PK_KERNEL))
    if kernel:
        op = 0
    if op == DD_SQUARE:
        ans = empty_array(arr)
        dd_arith(DD_SQUARE, vp[0], vs[0], vp[0], vs[0], _ptr(ans), n)
        _clear_flags()  # (silent, as the rule's kernel: 1e300 ** 2 is inf)
        f.d0 = v0
        f.s0 = 2.0
    elif op != 0:
        # add, subtract, multiply, negative: partials are numbers or operands
        ans = empty_array(arr)
        _clear_flags()
        dd_arith(op, vp[0], vs[0], vp[1], vs[1], _ptr(ans), n)
        if _raised():
            # overflow or inf - inf: NumPy's own loop reports it as it would without
            # dualad (same value)
            _clear_flags()
            ans = INFO_UFUNC[code](v0) if nin == 1 else INFO_UFUNC[code](v0, v1)
        if which & 1:
            f.d0 = _kind_partial(u.kind[0], u.cval[0], v0, v1, ans)
        if which & 2:
            f.d1 = _kind_partial(u.kind[1], u.cval[1], v0, v1, ans)
    elif kernel and n >= VECTOR_MIN and u.tie != 0 and nin == 2:
        # maximum, minimum (ReLU) of large arrays: NumPy's loop for the value (it raises
        # no floating-point flag, NaNs included: no errstate to enter), each partial in
        # one C pass instead of two nested wheres
        ans = np.asarray(INFO_UFUNC[code](v0, v1), dtype=np.float64)
        for j in range(2):
            if (which >> j) & 1:
                d = empty_array(arr)
                dd_tie(vp[0], vs[0], vp[1], vs[1], _ptr(d), n,
                       1.0 if (u.tie > 0) == (j == 0) else 0.0,
                       0.0 if (u.tie > 0) == (j == 0) else 1.0)
                if j == 0:
                    f.d0 = d
                else:
                    f.d1 = d
        _clear_flags()  # (NaN compares)
    elif kernel and n >= VECTOR_MIN:
        # large arrays: NumPy's vectorized loops for the value and the table's partial
        # expressions beat one kernel call per element (x ** 2.0: 3.7 vs ~1 ns each)
        entry = INFO_ENTRY[code]
        ufunc = INFO_UFUNC[code]
        with np.errstate(all="ignore"):
            ans = np.asarray(ufunc(v0) if nin == 1 else ufunc(v0, v1), dtype=np.float64)
            for j in range(nin):
                if not (which >> j) & 1:
                    continue
                if u.kind[j] != PK_KERNEL:
                    d = _kind_partial(u.kind[j], u.cval[j], v0, v1, ans)
                elif u.tie != 0:
                    # maximum, minimum (ReLU): one C pass instead of two nested wheres
                    d = empty_array(arr)
                    dd_tie(vp[0], vs[0], vp[1], vs[1], _ptr(d), n,
                           1.0 if (u.tie > 0) == (j == 0) else 0.0,
                           0.0 if (u.tie > 0) == (j == 0) else 1.0)
                    _clear_flags()  # (NaN compares)
                else:
                    d = entry.first[j](v0, v1, ans)
                    if j == 1 and u.power:
                        d = np.where(ans == 0.0, 0.0, d)  # zero base: no 0 * log(0)
                    if type(d) is not NDARRAY or not _same_shape(d, arr):
                        d = np.broadcast_to(d, arr.shape)
                    d = np.ascontiguousarray(d, dtype=np.float64)
                if j == 0:
                    f.d0 = d
                else:
                    f.d1 = d
    elif kernel:
        ans = empty_array(arr)
        d0 = empty_array(arr) if which & 1 else None
        d1 = empty_array(arr) if which & 2 else None
        _kernel_loop(nin, u.idx, which, vp[0], vs[0], vp[1], vs[1], _ptr(ans),
                     _ptr(d0) if d0 is not None else NULL,
                     _ptr(d1) if d1 is not None else NULL, n, u.power != 0)
        f.d0, f.d1 = d0, d1
    else:
        # exp, sqrt (ans), ...: NumPy's loop for the value, the partials in place
        ufunc = INFO_UFUNC[code]
        ans = ufunc(v0) if nin == 1 else ufunc(v0, v1)
        if type(ans) is not NDARRAY:
            ans = np.asarray(ans, dtype=np.float64)
        if which & 1:
            f.d0 = _kind_partial(u.kind[0], u.cval[0], v0, v1, ans)
        if which & 2:
            f.d1 = _kind_partial(u.kind[1], u.cval[1], v0, v1, ans)
    if tape.replay:  # [hvp replay hook]
        f.rcode = code + 1
        f.x0, f.x1 = v0, v1
    node = tape._push(K_EW, nodes[0], nodes[1], 0.0, 0.0, -1, f, arr.shape)
    return wrap(tape, ans, node)


# ---------------------------------------------------------------------------------------
# the nested fast path (forward-over-reverse: Hessian-vector products and Hessians).
#
# Inside dualad.hvp / dualad.hessian the tape records values that are DualArrays of an
# older level (one lane for an HVP, k for k Hessian columns).  For a rule-table ufunc on
# such values (C-contiguous float64 values of one shape, lane-contiguous tangents, one
# tag), numbers and plain constant arrays, one C pass over the rule's second-order kernel
# (U2/B2: value, first and second partials) gives at once the result (value and lanes:
# ans' = phi_x x' + phi_y y') and the partials the sweep needs, as (value, lanes) pairs:
# d phi_x = phi_xx x' + phi_xy y'.  These are the numbers the generic path gets by
# evaluating the table's partial expressions over DualArrays, up to rounding (the
# kernels' second partials are the same expressions, differentiated once by hand in the
# table).  The node's VJP multiplies a cotangent (plain, or a DualArray of the same
# level) by these partials in C with the product rule, a zero on either side of every
# product annihilating the other (0 * inf = 0), as ``dualad._array.scale`` does.
# Partials that need no computing (a number, an operand, the result) are kept as they
# are, exactly as the generic path keeps them.  Everything else (broadcasting, other
# layouts, several levels, diagnostics) takes the generic path.

@cython.final
cdef class _NestedVJP:
    """VJP of a nested fast elementwise node (see _nested_elementwise): the cotangent
    times each operand's partial, a pair (value, lanes) of the outer level (times a
    number: x ** 2 keeps its partial 2 x as 2 and x's own parts), a value array without
    lanes (a constant operand's), or a number; None: a constant operand.
    """
    cdef object v0, t0, v1, t1
    cdef double s0, s1   # the partials are s0 * (v0, t0), s1 * (v1, t1)
    cdef Py_ssize_t tag, k
    cdef object shape

    def __call__(self, cot):
        return [_nested_times(self.v0, self.t0, self.s0, self, cot),
                _nested_times(self.v1, self.t1, self.s1, self, cot)]


cdef extern from *:
    """
    /* Products of the nested fast path (forward-over-reverse), a zero on either side
       annihilating the other (0 * inf = 0); strides are 1 (array) or 0 (a number).
       Specialised per stride so that GCC vectorizes them (see DD_VECTORIZE above). */
    #ifndef DD_VECTORIZE
    #define DD_VECTORIZE
    #endif
    #include <string.h>
    /* wider vectors where the CPU has them (one clone per target, chosen at load) */
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
        defined(__GLIBC__)
    #define DD2_CLONES __attribute__((target_clones("avx2", "default")))
    #else
    #define DD2_CLONES
    #endif
    #define DD_S(a, b) (((a) == 0.0 || (b) == 0.0) ? 0.0 : (a) * (b))

    /* o[i] = S(s d[i ds], c[i cs]) (s: a partial kept as a multiple of an operand) */
    static DD_VECTORIZE DD2_CLONES void dd2_mul(double* o, const double* d, Py_ssize_t ds,
                                                double s, const double* c, Py_ssize_t cs,
                                                Py_ssize_t n) {
        Py_ssize_t i;
        if (ds == 1 && cs == 1) {
            for (i = 0; i < n; i++) { double a = s * d[i], b = c[i]; o[i] = DD_S(a, b); }
        } else if (ds == 1) {
            double b = c[0];
            for (i = 0; i < n; i++) { double a = s * d[i]; o[i] = DD_S(a, b); }
        } else if (cs == 1) {
            double a = s * d[0];
            for (i = 0; i < n; i++) { double b = c[i]; o[i] = DD_S(a, b); }
        } else {
            double a = s * d[0], b = c[0], p = DD_S(a, b);
            for (i = 0; i < n; i++) o[i] = p;
        }
    }

    /* o[i] = S(s d[i ds], c[i]) + S(s e[i], f[i fs]): the product rule's lanes
       (d, e: the partial's value and lane; c, f: the cotangent's lane and value) */
    static DD_VECTORIZE DD2_CLONES void dd2_mul2(double* o, const double* d, Py_ssize_t ds,
                                                 double s, const double* c,
                                                 const double* e, const double* f,
                                                 Py_ssize_t fs, Py_ssize_t n) {
        Py_ssize_t i;
        if (ds == 1 && fs == 1) {
            for (i = 0; i < n; i++) {
                double a = s * d[i], b = c[i], g = s * e[i], h = f[i];
                o[i] = DD_S(a, b) + DD_S(g, h);
            }
        } else if (ds == 1) {
            double h = f[0];
            for (i = 0; i < n; i++) {
                double a = s * d[i], b = c[i], g = s * e[i];
                o[i] = DD_S(a, b) + DD_S(g, h);
            }
        } else if (fs == 1) {
            double a = s * d[0];
            for (i = 0; i < n; i++) {
                double b = c[i], g = s * e[i], h = f[i];
                o[i] = DD_S(a, b) + DD_S(g, h);
            }
        } else {
            double a = s * d[0], h = f[0];
            for (i = 0; i < n; i++) {
                double b = c[i], g = s * e[i];
                o[i] = DD_S(a, b) + DD_S(g, h);
            }
        }
    }

    /* 1 if some p[i] is an infinity or a nan, else 0: all eleven exponent bits set,
       when the exponent plus one carries into bit 11 (no compare: GCC vectorizes it) */
    static int dd2_nonfinite(const double* p, Py_ssize_t n) {
        Py_ssize_t i;
        unsigned long long acc = 0, u;
        for (i = 0; i < n; i++) {
            memcpy(&u, p + i, sizeof u);
            acc |= ((u >> 52) & 0x7ffULL) + 1ULL;
        }
        return (acc & 0x800ULL) != 0;
    }
    """
    int dd2_nonfinite(const double* p, Py_ssize_t n) noexcept nogil
    void dd2_mul(double* o, const double* d, Py_ssize_t ds, double s, const double* c,
                 Py_ssize_t cs, Py_ssize_t n) noexcept nogil
    void dd2_mul2(double* o, const double* d, Py_ssize_t ds, double s, const double* c,
                  const double* e, const double* f, Py_ssize_t fs,
                  Py_ssize_t n) noexcept nogil


# how _nested_loop gets the value and the partials
cdef enum:
    NM_KERNEL = 0   # the rule's second-order kernel (U2 / B2)
    NM_ARITH = 1    # add, subtract, multiply, negative: arithmetic, no kernel call
    NM_POWC = 2     # x ** c for a number c: the power rule's first-order kernel twice
    NM_SQUARE = 3   # x ** 2: x * x and 2 x x'; the partial 2 x kept as 2 and x


cdef int _nested_loop(int mode, int nin, Py_ssize_t idx, int op, int which, int need,
                      bint powfix, const double** vp, Py_ssize_t* vs,
                      const double** tp, Py_ssize_t* tl, double* ov, double* ot,
                      double* d0v, double* d0t, double* d1v, double* d1t, double* s,
                      Py_ssize_t n, Py_ssize_t k) noexcept nogil:
    """Value, lanes and (``need``) the partials' values and lanes of a rule on operands
    ``which`` (bit j: operand j has lanes ``tp[j]``, lane stride ``tl[j]``); ``s``:
    scratch space, 5 n doubles (binary kernels) or 2 n (unary kernels, NM_POWC).

    NM_POWC follows the generic path's constant-exponent partial, c * x ** (c - 1)
    evaluated on the DualArray x: its value and its derivative come from the power
    rule's kernel at (x, c - 1) (no log(x): the exponent is constant)."""
    cdef double out[6]
    cdef double out2[3]
    cdef Py_ssize_t i, l
    cdef double a, b, c
    cdef const double* xt
    cdef const double* yt
    if mode == NM_ARITH:
        _nested_arith(op, which, vp[0], vs[0], vp[1], vs[1], tp[0], tl[0], tp[1], tl[1],
                      ov, ot, n, k)
        return 0
    if mode == NM_SQUARE:
        # x ** 2: pow's value x * x (_dd_power) and its lanes 2 x x'; the partial, the
        # generic path's 2.0 * x (its value 2 x, its lanes 2 x'), is kept as 2 times x's
        # own parts (see _NestedVJP): nothing to compute or store
        dd_arith(DD_SQUARE, vp[0], 1, vp[0], 1, ov, n)
        for l in range(k):
            dd2_mul(ot + l * n, vp[0], 1, 2.0, tp[0] + l * tl[0], 1, n)
        return 0
    cdef double* fx = d0v if need & 1 else s
    cdef double* fxx = s + n
    cdef double* fy = d1v if need & 2 else s + 2 * n
    cdef double* fxy = s + 3 * n
    cdef double* fyy = s + 4 * n
    cdef const double* xv = vp[0]
    cdef const double* yv = vp[1]
    cdef Py_ssize_t xs = vs[0], ys = vs[1]
    cdef double* o
    cdef double* p
    cdef double* q
    if mode == NM_POWC:
        c = yv[0]
        for i in range(n):
            B1X[idx](xv[i], c, out2)
            ov[i] = out2[0]
            s[i] = out2[1]  # (the result's partial, for its lanes)
            B1X[idx](xv[i], c - 1.0, out2)
            fx[i] = c * out2[0]
            fxx[i] = c * out2[1]
        for l in range(k):
            xt = tp[0] + l * tl[0]
            dd2_mul(ot + l * n, s, 1, 1.0, xt, 1, n)
            dd2_mul(d0t + l * n, fxx, 1, 1.0, xt, 1, n)
        return 0
    if nin == 1:
        for i in range(n):
            U2[idx](xv[i], out)
            ov[i] = out[0]
            fx[i] = out[1]
            fxx[i] = out[2]
    else:
        for i in range(n):
            B2[idx](xv[i * xs], yv[i * ys], out)
            if powfix and out[0] == 0.0:
                # zero base: d/dy x**y -> 0, not 0 * log(0) (the generic path's where)
                out[2] = 0.0
                out[5] = 0.0
            ov[i] = out[0]
            fx[i] = out[1]
            fy[i] = out[2]
            fxx[i] = out[3]
            fxy[i] = out[4]
            fyy[i] = out[5]
    for l in range(k):
        o = ot + l * n
        p = d0t + l * n if need & 1 else NULL
        q = d1t + l * n if need & 2 else NULL
        if which == 1:
            xt = tp[0] + l * tl[0]
            dd2_mul(o, fx, 1, 1.0, xt, 1, n)
            if p != NULL:
                dd2_mul(p, fxx, 1, 1.0, xt, 1, n)
        elif which == 2:
            yt = tp[1] + l * tl[1]
            dd2_mul(o, fy, 1, 1.0, yt, 1, n)
            if q != NULL:
                dd2_mul(q, fyy, 1, 1.0, yt, 1, n)
        else:
            xt = tp[0] + l * tl[0]
            yt = tp[1] + l * tl[1]
            dd2_mul2(o, fx, 1, 1.0, xt, fy, yt, 1, n)
            if p != NULL:
                dd2_mul2(p, fxx, 1, 1.0, xt, fxy, yt, 1, n)
            if q != NULL:
                dd2_mul2(q, fxy, 1, 1.0, xt, fyy, yt, 1, n)
    return 0


cdef void _nested_arith(int op, int which, const double* xv, Py_ssize_t xs,
                        const double* yv, Py_ssize_t ys, const double* xt,
                        Py_ssize_t xtl, const double* yt, Py_ssize_t ytl, double* ov,
                        double* ot, Py_ssize_t n, Py_ssize_t k) noexcept nogil:
    """x + y, x - y, x * y, -x with their lanes (the partials are numbers or operands:
    nothing else to compute)."""
    cdef Py_ssize_t i, l
    cdef double* o
    cdef const double* a
    cdef const double* b
    dd_arith(op, xv, xs, yv, ys, ov, n)
    for l in range(k):
        o = ot + l * n
        a = xt + l * xtl if which & 1 else NULL
        b = yt + l * ytl if which & 2 else NULL
        if op == DD_NEG:
            for i in range(n):
                o[i] = -a[i]
        elif op == DD_MUL:
            if which == 3:
                dd2_mul2(o, yv, ys, 1.0, a, b, xv, xs, n)
            elif which == 1:
                dd2_mul(o, yv, ys, 1.0, a, 1, n)
            else:
                dd2_mul(o, xv, xs, 1.0, b, 1, n)
        elif which == 3:
            if op == DD_ADD:
                for i in range(n):
                    o[i] = a[i] + b[i]
            else:
                for i in range(n):
                    o[i] = a[i] - b[i]
        elif which == 1:
            for i in range(n):
                o[i] = a[i]
        elif op == DD_ADD:
            for i in range(n):
                o[i] = b[i]
        else:
            for i in range(n):
                o[i] = -b[i]
    _clear_flags()


cdef object _nested_elementwise(Tape tape, Py_ssize_t code, object x, object y):
    """Rule ``INFO[code]`` on RArrays of ``tape`` whose values are one-level DualArrays
    (and numbers or plain float64 arrays of the same shape), or None when the operands
    do not qualify (the generic path then handles them)."""
    if _unlikely(_observing):
        return None  # (the diagnostics name every operation: the NumPy dispatch)
    cdef _Info* u = &INFO[code]
    cdef int nin = u.nin, j, which = 0, need = 0, status
    cdef Py_ssize_t k = -1, tag = -1, n, kj, t, ls
    cdef const double* vp[2]
    cdef Py_ssize_t vs[2]
    cdef const double* tp[2]
    cdef Py_ssize_t tl[2]
    cdef double cv[2]
    cdef Py_ssize_t nodes[2]
    cdef object arr = None
    cdef object o, d, v, lanes
    cdef list vals = [None, None]   # per operand: a float, a plain array or a DualArray
    if nin == 2 and y is None:
        return None
    nodes[0] = nodes[1] = -1
    tp[0] = tp[1] = NULL
    tl[0] = tl[1] = 0
    for j in range(nin):
        o = x if j == 0 else y
        if type(o) is RArray:
            if (<RArray> o).tape is not tape:
                return None
            d = (<RArray> o).value
            if type(d) is not DUALARRAY:
                return None
            v = d.value
            if not _c_f64(v) or cnp.PyArray_NDIM(<cnp.ndarray> v) == 0:
                return None
            t = d.tag
            if tag < 0:
                tag = t
            elif tag != t:
                return None
            lanes = d.tangent
            if type(lanes) is not NDARRAY:
                return None
            kj = cnp.PyArray_DIM(<cnp.ndarray> lanes, 0) \
                if cnp.PyArray_NDIM(<cnp.ndarray> lanes) > 0 else -1
            if kj < 1 or k >= 0 and kj != k:
                return None
            k = kj
            ls = lane_stride(lanes, v, k)
            if ls < 0:
                return None
            nodes[j] = (<RArray> o).node
            which |= 1 << j
            tp[j] = _ptr(lanes)
            tl[j] = ls
            vals[j] = d
        elif type(o) is float or type(o) is int or type(o) is NP_FLOAT64:
            cv[j] = o
            vp[j] = &cv[j]
            vs[j] = 0
            vals[j] = cv[j]
            continue
        elif _c_f64(o) and cnp.PyArray_NDIM(<cnp.ndarray> o) > 0:
            v = o
            vals[j] = o
        else:
            return None
        if arr is None:
            arr = v
        elif not _same_shape(arr, v):
            return None
        vp[j] = _ptr(v)
        vs[j] = 1
    if which == 0 or arr is None:
        return None
    if u.power and which == 3:
        return None  # (zero-base guards of the cross terms: the generic path)
    if nin == 1:
        vp[1] = vp[0]
        vs[1] = 0
    cdef _NestedVJP f = _NestedVJP.__new__(_NestedVJP)
    f.tag = tag
    f.k = k
    f.shape = arr.shape
    f.s0 = f.s1 = 1.0
    cdef object const_partial = None
    cdef int mode = NM_KERNEL
    if u.op == DD_ADD or u.op == DD_SUB or u.op == DD_MUL or u.op == DD_NEG:
        mode = NM_ARITH
    elif u.power and which == 1 and vs[1] == 0:
        if cv[1] == 0.0 or cv[1] == 1.0:
            # x ** 0 and x ** 1: the generic path's partials are the numbers 0 and 1
            const_partial = cv[1]
        else:
            mode = NM_SQUARE if cv[1] == 2.0 and u.power == 1 else NM_POWC
    n = cnp.PyArray_SIZE(<cnp.ndarray> arr)
    ans_v = empty_array(arr)
    ans_t = empty_array(arr, k)
    d0v = d0t = d1v = d1t = None
    for j in range(nin):
        if (which >> j) & 1 and u.kind[j] == PK_KERNEL and const_partial is None and \
                mode != NM_SQUARE:
            need |= 1 << j
    if need & 1:
        d0v = empty_array(arr)
        d0t = empty_array(arr, k)
    if need & 2:
        d1v = empty_array(arr)
        d1t = empty_array(arr, k)
    cdef double* p0v = _ptr(d0v) if need & 1 else NULL
    cdef double* p0t = _ptr(d0t) if need & 1 else NULL
    cdef double* p1v = _ptr(d1v) if need & 2 else NULL
    cdef double* p1t = _ptr(d1t) if need & 2 else NULL
    cdef double* pav = _ptr(ans_v)
    cdef double* pat = _ptr(ans_t)
    cdef cnp.npy_intp ssize = (5 if nin == 2 else 2) * n
    scratch = cnp.PyArray_EMPTY(1, &ssize, cnp.NPY_DOUBLE, 0) \
        if mode == NM_KERNEL or mode == NM_POWC else None
    cdef double* ps = _ptr(scratch) if scratch is not None else NULL
    if n * k >= LAZY_MIN:
        with nogil:
            status = _nested_loop(mode, nin, u.idx, u.op, which, need, u.power != 0, vp,
                                  vs, tp, tl, pav, pat, p0v, p0t, p1v, p1t, ps, n, k)
            _clear_flags()
    else:
        status = _nested_loop(mode, nin, u.idx, u.op, which, need, u.power != 0, vp, vs,
                              tp, tl, pav, pat, p0v, p0t, p1v, p1t, ps, n, k)
        _clear_flags()
    if status < 0:
        raise MemoryError()
    if mode == NM_KERNEL and (
            dd2_nonfinite(pav, n) or dd2_nonfinite(pat, n * k)
            or need & 1 and (dd2_nonfinite(p0v, n) or dd2_nonfinite(p0t, n * k))
            or need & 2 and (dd2_nonfinite(p1v, n) or dd2_nonfinite(p1t, n * k))):
        # an infinity or a nan (a pole, an overflow, inf or nan input): the kernels'
        # closed-form second partials and the generic path's differentiated expressions
        # may then differ (arctan''(inf): nan from -2x / (1 + x**2)**2, 0 from the
        # forward sweep's annihilating steps); the generic path decides.  (Arithmetic,
        # x ** 2 and x ** c compute the generic path's own operations: no check.)
        return None
    ans = _fwd.make(ans_v, ans_t, tag, True)
    for j in range(nin):
        if not (which >> j) & 1:
            continue
        if const_partial is not None:
            pv, pt = const_partial, None
        elif mode == NM_SQUARE:
            pv, pt = vals[0].value, vals[0].tangent
            f.s0 = 2.0
        elif u.kind[j] == PK_KERNEL:
            pv, pt = (d0v, d0t) if j == 0 else (d1v, d1t)
        elif u.kind[j] == PK_CONST:
            pv, pt = u.cval[j], None
        elif u.kind[j] == PK_ANS:
            pv, pt = ans_v, ans_t
        else:
            o = vals[0] if u.kind[j] == PK_X else vals[1]
            if type(o) is DUALARRAY:
                pv, pt = o.value, o.tangent
            else:
                pv, pt = o, None
        if j == 0:
            f.v0, f.t0 = pv, pt
        else:
            f.v1, f.t1 = pv, pt
    node = tape._push(K_ARRAY, -1, -1, 0.0, 0.0, -1,
                      (f, [nodes[0], nodes[1]] if nin == 2 else [nodes[0]]), f.shape)
    return wrap(tape, ans, node)


cdef void _nested_product(const double* dv, Py_ssize_t ds, const double* dt,
                          Py_ssize_t dtl, double sc, const double* cv, Py_ssize_t cs,
                          const double* ct, Py_ssize_t ctl, double* ov, double* ot,
                          Py_ssize_t n, Py_ssize_t k) noexcept nogil:
    """(dv, dt) * (cv, ct) by the product rule: ov = dv cv, ot = dv ct + dt cv (a missing
    lane array, NULL, is zero; the partial is sc times (dv, dt)); strides ds, cs are 1
    (array) or 0 (a number)."""
    cdef Py_ssize_t i, l
    cdef double* o
    cdef const double* a
    cdef const double* b
    dd2_mul(ov, dv, ds, sc, cv, cs, n)
    if ot == NULL:
        _clear_flags()
        return
    for l in range(k):
        o = ot + l * n
        a = dt + l * dtl if dt != NULL else NULL
        b = ct + l * ctl if ct != NULL else NULL
        if a != NULL and b != NULL:
            dd2_mul2(o, dv, ds, sc, b, a, cv, cs, n)
        elif b != NULL:
            dd2_mul(o, dv, ds, sc, b, 1, n)
        else:
            dd2_mul(o, a, 1, sc, cv, cs, n)
    _clear_flags()


cdef bint _all_zero_strides(object a):
    cdef int d
    for d in range(cnp.PyArray_NDIM(<cnp.ndarray> a)):
        if cnp.PyArray_STRIDE(<cnp.ndarray> a, d) != 0 and \
                cnp.PyArray_DIM(<cnp.ndarray> a, d) > 1:
            return False
    return True


cdef object _nested_times(object dv, object dt, double sc, _NestedVJP f, object cot,
                          bint* fresh=NULL):
    """The partial ``sc * (dv, dt)`` (a number or a value array, lanes or None) times the
    cotangent: in C for plain or same-level DualArray cotangents of the node's shape,
    else by ``dualad._array.scale`` (the generic path's product).  ``fresh`` (if given)
    is set when the result is a new array nobody else holds."""
    cdef double dnum, cnum
    cdef const double* pdv
    cdef const double* pdt = NULL
    cdef const double* pcv
    cdef const double* pct = NULL
    cdef Py_ssize_t ds, cs, dtl = 0, ctl = 0, n, k = f.k
    cdef object cv = None, ct = None, shape_ref = None
    if fresh != NULL:
        fresh[0] = False
    if dv is None:
        return None
    if type(cot) is DUALARRAY:
        if cot.tag != f.tag:
            return _nested_generic(dv, dt, sc, f, cot)
        cv = cot.value
        ct = cot.tangent
        if not _c_f64(cv) or not _has_shape(cv, f.shape):
            return _nested_generic(dv, dt, sc, f, cot)
        ctl = lane_stride(ct, cv, k)
        if ctl < 0:
            return _nested_generic(dv, dt, sc, f, cot)
        if type(dv) is float and dt is None and dv == 1.0:
            return cot  # (a number partial has sc == 1)
        pct = _ptr(ct)
        pcv = _ptr(cv)
        cs = 1
        shape_ref = cv
    elif type(cot) is NDARRAY and cnp.PyArray_TYPE(<cnp.ndarray> cot) == cnp.NPY_DOUBLE \
            and _has_shape(cot, f.shape):
        if cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> cot):
            cs = 1
        elif _all_zero_strides(cot):
            cs = 0  # a broadcast number (np.sum's cotangent)
        else:
            return _nested_generic(dv, dt, sc, f, cot)
        pcv = _ptr(cot)
    else:
        return _nested_generic(dv, dt, sc, f, cot)
    if type(dv) is float:
        dnum = dv
        pdv = &dnum
        ds = 0
    elif _c_f64(dv) and _has_shape(dv, f.shape):
        pdv = _ptr(dv)
        ds = 1
    else:
        return _nested_generic(dv, dt, sc, f, cot)
    if dt is not None:
        if ds == 0:
            return _nested_generic(dv, dt, sc, f, cot)
        dtl = lane_stride(dt, dv, k)
        if dtl < 0:
            return _nested_generic(dv, dt, sc, f, cot)
        pdt = _ptr(dt)
    if shape_ref is None:
        shape_ref = dv if ds == 1 else (cot if cs == 1 else None)
        if shape_ref is None:
            return _nested_generic(dv, dt, sc, f, cot)
    n = cnp.PyArray_SIZE(<cnp.ndarray> shape_ref)
    out_v = empty_array(shape_ref)
    cdef bint traced = pdt != NULL or pct != NULL
    out_t = empty_array(shape_ref, k) if traced else None
    cdef double* pov = _ptr(out_v)
    cdef double* pot = _ptr(out_t) if traced else NULL
    if n * k >= LAZY_MIN:
        with nogil:
            _nested_product(pdv, ds, pdt, dtl, sc, pcv, cs, pct, ctl, pov, pot, n, k)
    else:
        _nested_product(pdv, ds, pdt, dtl, sc, pcv, cs, pct, ctl, pov, pot, n, k)
    if fresh != NULL:
        fresh[0] = True
    if not traced:
        return out_v
    return _fwd.make(out_v, out_t, f.tag, True)


cdef object _nested_generic(object dv, object dt, double sc, _NestedVJP f, object cot):
    """The generic path's product of a partial and a cotangent."""
    if sc != 1.0:
        dv = sc * dv
        dt = sc * dt if dt is not None else None
    d = _fwd.make(dv, dt, f.tag, False) if dt is not None else dv
    return unbroadcast(_fwd.scale(d, cot), f.shape)


cdef inline object _fast_binop(RArray a, object o, Py_ssize_t code, bint reflected):
    """``a (op) o`` (``o (op) a`` if reflected) by the fast path, or None.  Skipped
    while diagnostics observe a tape: their path names the NumPy operation (see
    __array_ufunc__)."""
    if _unlikely(_observing):
        return None
    if reflected:
        return _fast_elementwise(a.tape, code, o, a)
    return _fast_elementwise(a.tape, code, a, o)


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
    cdef Py_ssize_t code
    if ufunc is _np_matmul and not kwargs and len(inputs) == 2:
        r = _fast_matmul(inputs[0], inputs[1])
        if r is not None:
            return r
    if not kwargs:
        fast = FAST_INDEX.get(ufunc)
        if fast is not None and len(inputs) == INFO[<Py_ssize_t> fast].nin:
            code = fast
            for o in inputs:
                if type(o) is RArray:
                    if tag_of(inputs) == (<RArray> o).tape.tag:
                        r = _fast_elementwise((<RArray> o).tape, code, inputs[0],
                                              inputs[1] if len(inputs) == 2 else None)
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
    cdef RArray a
    cdef Py_ssize_t count
    if (func is _np_sum or func is _np_mean) and len(args) == 1 and \
            type(args[0]) is RArray and type((<RArray> args[0]).value) is NDARRAY and \
            (not kwargs or _whole(kwargs)):
        # np.sum(x), np.mean(x) of a plain array: no other tracer can be involved
        a = <RArray> args[0]
        if func is _np_sum:
            value = np.asarray(_add_reduce(a.value, None))  # (ndarray.sum's loop)
            count = 1
        else:
            count = cnp.PyArray_SIZE(<cnp.ndarray> a.value)
            # np.mean's own sum over all axes, then its division by the count (an empty
            # mean's warning and NaN stay the generic rule's)
            value = np.asarray(_add_reduce(a.value, tuple(range(a.value.ndim))) / count) \
                if count > 0 else None
        if value is not None:
            return wrap(a.tape, value, a.tape._push(
                K_ARRAY, -1, -1, 0.0, 0.0, -1, (_SumAllVJP(a.value.shape, count),
                                                [a.node]), ()))
    if func is _np_reshape and len(args) == 2 and not kwargs and \
            type(args[0]) is RArray:
        r = _fast_reshape(<RArray> args[0], args[1])
        if r is not None:
            return r
    if func is _np_sum and not kwargs and len(args) == 1 and type(args[0]) is RArray and \
            type((<RArray> args[0]).value) is DUALARRAY and not _observing:
        r = _nested_sum(<RArray> args[0])
        if r is not None:
            return r
    cdef Py_ssize_t mytag = tag_of(args)
    if _fwd.tag_of(args) > mytag or _fwd.tag_of(tuple(kwargs.values())) > mytag:
        return NotImplemented
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
        if type(self.value) is DUALARRAY and _basic_key(key) and not _observing:
            # forward-over-reverse: a slice of a DualArray value; the sweep scatters
            # the cotangent in place (no view link: as the registry's rule)
            value = self.value[key]
            if type(value) is DUALARRAY and value.ndim > 0:
                return wrap(self.tape, value, self.tape._push(
                    K_ARRAY, -1, -1, 0.0, 0.0, -1,
                    (_SliceVJP(key, self.value.shape), [self.node]), value.shape))
        return _registry.lookup(_getitem, _MODE)(self, key)

    cdef RArray _slice(self, object key):
        value = self.value[key]
        if type(value) is not NDARRAY:
            value = _value_array(value)  # (x[i, j] of a matrix: a NumPy scalar)
        return wrap(self.tape, value, self.tape._push(
            K_ARRAY, -1, -1, 0.0, 0.0, -1, (_SliceVJP(key, self.value.shape), [self.node]),
            value.shape))

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
        r = _fast_binop(self, o, C_ADD, False)
        if r is not None:
            return r
        return np.add(self, o) if _binop_ok(o) else NotImplemented

    def __radd__(self, o):
        r = _fast_binop(self, o, C_ADD, True)
        if r is not None:
            return r
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
        r = _fast_binop(self, o, C_SUB, False)
        if r is not None:
            return r
        return np.subtract(self, o) if _binop_ok(o) else NotImplemented

    def __rsub__(self, o):
        r = _fast_binop(self, o, C_SUB, True)
        if r is not None:
            return r
        return np.subtract(o, self) if _binop_ok(o) else NotImplemented

    def __mul__(self, o):
        r = _fast_binop(self, o, C_MUL, False)
        if r is not None:
            return r
        return np.multiply(self, o) if _binop_ok(o) else NotImplemented

    def __rmul__(self, o):
        r = _fast_binop(self, o, C_MUL, True)
        if r is not None:
            return r
        return np.multiply(o, self) if _binop_ok(o) else NotImplemented

    def __truediv__(self, o):
        r = _fast_binop(self, o, C_DIV, False)
        if r is not None:
            return r
        return np.true_divide(self, o) if _binop_ok(o) else NotImplemented

    def __rtruediv__(self, o):
        r = _fast_binop(self, o, C_DIV, True)
        if r is not None:
            return r
        return np.true_divide(o, self) if _binop_ok(o) else NotImplemented

    def __pow__(self, o, mod):
        if mod is not None:
            return NotImplemented
        r = _fast_binop(self, o, C_POW, False)
        if r is not None:
            return r
        return np.power(self, o) if _binop_ok(o) else NotImplemented

    def __rpow__(self, o, mod):
        if mod is not None:
            return NotImplemented
        r = _fast_binop(self, o, C_POW, True)
        if r is not None:
            return r
        return np.power(o, self) if _binop_ok(o) else NotImplemented

    def __matmul__(self, o):
        if not _observing:
            r = _fast_matmul(self, o)
            if r is not None:
                return r
        return np.matmul(self, o) if _binop_ok(o) else NotImplemented

    def __rmatmul__(self, o):
        if not _observing:
            r = _fast_matmul(o, self)
            if r is not None:
                return r
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
        if not _observing:
            r = _fast_elementwise(self.tape, C_NEG, self, None)
            if r is not None:
                return r
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
    def reshape(self, *shape, order="C"):
        """Reshape (``np.reshape``); accepts ``reshape(2, 3)`` and ``reshape((2, 3))``."""
        if order == "C" and shape and not _observing:
            r = _fast_reshape(self, shape[0] if len(shape) == 1 else shape)
            if r is not None:
                return r
        return _nm.reshape(self, *shape, order=order)

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


# ---------------------------------------------------------------------------------------
# Hessian-vector products by replaying a recording (issue 6: Newton-CG asks for one to
# three products at each point whose gradient it has just asked for).
#
# A tape recorded with ``Tape.replay`` set (plain float64 values) keeps, for each fast
# elementwise node, its rule, its operands and the first partials the gradient used.
# ``H v`` at that point is then two sweeps over the recording, with no new recording,
# no NumPy dispatch and no transcendental function evaluated twice for first partials:
#
# * forward, the tangents: t = sum_j d_j t_j over the operands (d_j the stored
#   partials); a basic slice's tangent is its parent's sliced, np.sum's the sum;
# * backward, the adjoints and their tangents together (the forward-over-reverse
#   derivative of the backward sweep): abar_j += d_j abar and
#   adot_j += d_j adot + dd_j abar, where dd_j, the tangent of the partial d_j, is
#   sum_k d_jk t_k with the rule's second partials d_jk from its U2/B2 kernel (the
#   table every second-order path uses), evaluated at the node's operands; a partial
#   that needs no computing has the tangent of what it is (an operand: x * y; the
#   result: exp; 2 x for x ** 2; nothing for a number).
#
# Linear array nodes whose partials do not depend on a traced value replay too, with no
# second-order term: their tangent is the node applied to its operands' tangents, their
# adjoints and adjoint tangents the node's VJP applied to each.  They are a matmul of a
# constant matrix and a traced matrix or vector (_MatmulVJP; two traced operands make a
# bilinear node with a cross term: not replayable), a C-order reshape (_ReshapeVJP) and
# a broadcasting ``a + b`` / ``a - b`` (_BroadcastVJP).
#
# Products annihilate as in the nested path (0 * inf = 0).  A recording with any other
# node (scalar nodes, other array ops, a power of two traced operands) is not
# replayable, nor are results or second partials with an infinity or a NaN: then
# ``hvp_replay`` returns None and the caller takes the nested path, which decides those
# (tests/test_hvp_replay.py compares both paths with independent references).

cdef extern from *:
    """
    /* o[i] = b[i] + S(s d[i], c[i]) + S(r e[i], f[i]) for the replay's sweeps, S the
       annihilating product (DD_S); b NULL: no b term; d NULL: the number s; f NULL: no
       second term; e NULL: the number r.  All arrays contiguous, of n elements. */
    /* (b == o, in place, has its own loops: GCC's runtime overlap check would send
       it to the scalar loop.  ivdep: no output overlaps an input other than itself at
       the same index, which GCC cannot know.) */
    #define RP_LOOP(E) _Pragma("GCC ivdep") for (i = 0; i < n; i++) { o[i] = E; }
    /* A number partial s that is finite and not zero cannot annihilate: its products
       are plain (the same numbers, but for the sign of a zero), which GCC vectorizes. */
    #define RP_PLAIN(a, b) ((a) * (b))
    #define RP_FINITE_NONZERO(s) ((s) != 0.0 && (s) - (s) == 0.0)
    #define RP_CASES_B(P, M, T2) \\
        if (b == o) RP_LOOP(o[i] + M(P, c[i]) T2) \\
        else if (b != NULL) RP_LOOP(b[i] + M(P, c[i]) T2) \\
        else RP_LOOP(M(P, c[i]) T2)
    #define RP_CASES(T2) \\
        if (d != NULL) { RP_CASES_B(s * d[i], DD_S, T2) } \\
        else if (RP_FINITE_NONZERO(s)) { RP_CASES_B(s, RP_PLAIN, T2) } \\
        else { RP_CASES_B(s, DD_S, T2) }
    static DD_VECTORIZE DD2_CLONES void rp_acc(double* o, const double* b,
                                               const double* d, double s, const double* c,
                                               const double* e, double r, const double* f,
                                               Py_ssize_t n) {
        Py_ssize_t i;
        if (f == NULL) {
            RP_CASES()
        } else if (e != NULL) {
            RP_CASES(+ DD_S(r * e[i], f[i]))
        } else {
            RP_CASES(+ DD_S(r, f[i]))
        }
    }
    static inline double rp_s(double a, double b) { return DD_S(a, b); }

    /* The backward sweep's two updates of one parent in one pass, with pd = s d[i]
       (d NULL: the number s) and va = a[i]:
         o1[i] = b1[i] + S(pd, va)
         o2[i] = b2[i] + S(pd, ad[i]) + S(r e[i], va)
       b1, b2 NULL: no such term (b1 == o1: in place); ad NULL or e NULL: no such term
       (not both).  The adjoint and its tangent of the parent, from the node's. */
    #define RP_BN(o, b)
    #define RP_BI(o, b) o[i] +
    #define RP_BS(o, b) b[i] +
    #define RP2(D, M, B1, B2, T2) _Pragma("GCC ivdep") for (i = 0; i < n; i++) { \\
        double pd = D; double va = a[i]; \\
        o1[i] = B1(o1, b1) M(pd, va); o2[i] = B2(o2, b2) T2; }
    #define RP2_T(D, M, B1, B2) \\
        if (ad != NULL && e != NULL) \\
            RP2(D, M, B1, B2, M(pd, ad[i]) + DD_S(r * e[i], va)) \\
        else if (ad != NULL) RP2(D, M, B1, B2, M(pd, ad[i])) \\
        else RP2(D, M, B1, B2, DD_S(r * e[i], va))
    #define RP2_B2(D, M, B1) \\
        if (b2 == NULL) { RP2_T(D, M, B1, RP_BN) } \\
        else if (b2 == o2) { RP2_T(D, M, B1, RP_BI) } \\
        else { RP2_T(D, M, B1, RP_BS) }
    #define RP2_B(D, M) \\
        if (b1 == NULL) { RP2_B2(D, M, RP_BN) } \\
        else if (b1 == o1) { RP2_B2(D, M, RP_BI) } \\
        else { RP2_B2(D, M, RP_BS) }
    static DD_VECTORIZE DD2_CLONES void rp_acc2(double* o1, const double* b1, double* o2,
                                                const double* b2, const double* d,
                                                double s, const double* a,
                                                const double* ad, const double* e,
                                                double r, Py_ssize_t n) {
        Py_ssize_t i;
        if (d != NULL) { RP2_B(s * d[i], DD_S) }
        else if (RP_FINITE_NONZERO(s)) { RP2_B(s, RP_PLAIN) }
        else { RP2_B(s, DD_S) }
    }
    """
    void rp_acc2(double* o1, const double* b1, double* o2, const double* b2,
                 const double* d, double s, const double* a, const double* ad,
                 const double* e, double r, Py_ssize_t n) noexcept nogil
    void rp_acc(double* o, const double* b, const double* d, double s, const double* c,
                const double* e, double r, const double* f, Py_ssize_t n) noexcept nogil
    double rp_s(double a, double b) noexcept nogil


cdef void _rp1(double* o, const double* b, const double* d, double s, const double* c,
               const double* e, double r, const double* f, Py_ssize_t n) noexcept:
    """rp_acc, without the GIL for big arrays (as the sweep's loops); flags cleared."""
    if n >= LAZY_MIN:
        with nogil:
            rp_acc(o, b, d, s, c, e, r, f, n)
            _clear_flags()
    else:
        rp_acc(o, b, d, s, c, e, r, f, n)
        _clear_flags()


cdef void _rp2(double* o1, const double* b1, double* o2, const double* b2,
               const double* d, double s, const double* a, const double* ad,
               const double* e, double r, Py_ssize_t n) noexcept:
    """rp_acc2, without the GIL for big arrays; flags cleared."""
    if n >= LAZY_MIN:
        with nogil:
            rp_acc2(o1, b1, o2, b2, d, s, a, ad, e, r, n)
            _clear_flags()
    else:
        rp_acc2(o1, b1, o2, b2, d, s, a, ad, e, r, n)
        _clear_flags()


cdef void _rp_second(_Info* u, const double* xv, Py_ssize_t xs, const double* yv,
                     Py_ssize_t ys, const double* t0, const double* t1, double* dd0,
                     double* dd1, Py_ssize_t n) noexcept nogil:
    """The tangents of a kernel rule's first partials: dd0 = f_xx t0 + f_xy t1 and
    dd1 = f_xy t0 + f_yy t1 (a NULL tangent is zero; a NULL output is not wanted),
    with the rule's second-order kernel at the operands (strides 1, or 0: a number)."""
    cdef double out[6]
    cdef Py_ssize_t i
    if u.nin == 1:
        for i in range(n):
            U2[u.idx](xv[i * xs], out)
            dd0[i] = rp_s(out[2], t0[i])
        _clear_flags()
        return
    for i in range(n):
        B2[u.idx](xv[i * xs], yv[i * ys], out)
        if u.power and out[0] == 0.0:
            # zero base: d/dy x**y -> 0, not 0 * log(0) (as the first-order path)
            out[2] = 0.0
            out[5] = 0.0
        if dd0 != NULL:
            if t0 != NULL and t1 != NULL:
                dd0[i] = rp_s(out[3], t0[i]) + rp_s(out[4], t1[i])
            elif t0 != NULL:
                dd0[i] = rp_s(out[3], t0[i])
            else:
                dd0[i] = rp_s(out[4], t1[i])
        if dd1 != NULL:
            if t0 != NULL and t1 != NULL:
                dd1[i] = rp_s(out[4], t0[i]) + rp_s(out[5], t1[i])
            elif t0 != NULL:
                dd1[i] = rp_s(out[4], t0[i])
            else:
                dd1[i] = rp_s(out[5], t1[i])
    _clear_flags()


cdef inline bint _rp_array_ok(object a, Py_ssize_t size):
    """A partial or operand the replay's C loops can read: a number, or a C-contiguous
    float64 array of the node's size."""
    if type(a) is float:
        return True
    return _c_f64(a) and cnp.PyArray_SIZE(<cnp.ndarray> a) == size


cdef object _rp_tangent(_ElemVJP f, object t0, object t1, object like):
    """A fast elementwise node's tangent: d0 t0 + d1 t1 (None: zero)."""
    if f.d0 is None or t0 is None:
        t0 = None
    if f.d1 is None or t1 is None:
        t1 = None
    if t0 is None and t1 is None:
        return None
    if t1 is None and type(f.d0) is float and f.s0 * <double> f.d0 == 1.0:
        return t0  # (tangents are never written: shared)
    if t0 is None and type(f.d1) is float and f.s1 * <double> f.d1 == 1.0:
        return t1
    # one pass: S(s0 d0, t0) [+ S(s1 d1, t1)], a number partial as the scale
    cdef double s = f.s0, r = f.s1
    cdef object d = f.d0, e = f.d1, c = t0, g = t1
    if t0 is None:
        d, s, c, e, g = e, r, t1, None, None
    out = empty_array(like)
    cdef const double* dp = NULL
    cdef const double* ep = NULL
    if type(d) is float:
        s *= <double> d
    else:
        dp = _ptr(d)
    if g is not None:
        if type(e) is float:
            r *= <double> e
        else:
            ep = _ptr(e)
    _rp1(_ptr(out), NULL, dp, s, _ptr(c), ep, r, _ptr(g) if g is not None else NULL,
         cnp.PyArray_SIZE(<cnp.ndarray> c))
    return out


def replayable(Tape tape, Py_ssize_t out, Py_ssize_t xnode):
    """Whether :func:`hvp_replay` can replay this recording (it may still decline a
    product whose numbers are not all finite)."""
    return _rp_check(tape, out, xnode)


cdef bint _rp_check(Tape tape, Py_ssize_t out, Py_ssize_t xnode) except -1:
    cdef Py_ssize_t i, n = out + 1, size
    cdef int k
    cdef _ElemVJP f
    cdef _Info* u
    if not tape.replay or not 0 <= xnode < n or n > tape.n:
        return False
    cdef list shapes = tape.shapes
    cdef list vjps = tape.vjps
    if shapes[out] != ():
        return False
    for i in range(n):
        k = tape.kind[i]
        if k == K_EW:
            f = <_ElemVJP> vjps[i]
            if f.rcode == 0:
                return False
            u = &INFO[f.rcode - 1]
            if u.power and tape.p0[i] >= 0 and tape.p1[i] >= 0:
                return False  # (zero-base guards of the cross terms: the nested path)
            size = _shape_size(shapes[i])
            for d in (f.d0, f.d1, f.x0, f.x1):
                if d is not None and not _rp_array_ok(d, size):
                    return False
        elif k == K_ARRAY:
            d, parents = <tuple> vjps[i]
            if type(d) is _SliceVJP or type(d) is _SumAllVJP:
                continue
            if not _rp_linear_ok(d, parents, shapes, i):
                return False
        elif k != K_LEAF and k != K_CONST:
            return False
    return True


cdef bint _rp_linear_ok(object d, object parents, list shapes, Py_ssize_t i) except -1:
    """Whether the K_ARRAY node i (VJP d, operands parents) is a linear node the
    replay handles: a float64 matmul of a constant matrix and one traced matrix or
    vector, a C-order reshape of one traced operand, a broadcasting add/subtract (see
    the notes above)."""
    cdef _MatmulVJP m
    cdef _BroadcastVJP b
    cdef Py_ssize_t p0, p1
    if type(parents) is not list:
        return False
    if type(d) is _MatmulVJP:
        m = <_MatmulVJP> d
        if len(parents) != 2 or m.ta == m.tb:
            return False  # (two traced operands: bilinear, a cross term)
        p0 = parents[0]
        p1 = parents[1]
        if (p0 >= 0) != m.ta or (p1 >= 0) != m.tb:
            return False
        # the constant operand a matrix, the traced one a matrix or a vector
        # (_fast_matmul's layouts: the VJP's products are right for those)
        if not _f64_matrix(m.b if m.ta else m.a):
            return False
        if not _f64_matrix(m.a if m.ta else m.b) and \
                not _f64_vector(m.a if m.ta else m.b):
            return False
        return shapes[p0 if m.ta else p1] == tuple((m.a if m.ta else m.b).shape)
    if type(d) is _ReshapeVJP:
        if len(parents) != 1:
            return False
        p0 = parents[0]
        return p0 >= 0 and shapes[p0] == (<_ReshapeVJP> d).shape and \
            shapes[i] is not None and \
            _shape_size(shapes[i]) == _shape_size((<_ReshapeVJP> d).shape)
    if type(d) is _BroadcastVJP:
        b = <_BroadcastVJP> d
        if len(parents) != 2:
            return False
        p0 = parents[0]
        p1 = parents[1]
        if p0 < 0 and p1 < 0:
            return False
        return (p0 < 0 or shapes[p0] == b.s0) and (p1 < 0 or shapes[p1] == b.s1) and \
            shapes[i] == b.shape
    return False


def hvp_replay(Tape tape, Py_ssize_t out, Py_ssize_t xnode, object v):
    """``(gradient, H v)`` of the scalar node ``out`` with respect to the leaf ``xnode``
    at the point ``tape`` recorded (with ``tape.replay`` set), by replaying it; None if
    the recording is not replayable (see the notes above this function).

    Parameters
    ----------
    tape : Tape
        A finished recording.
    out, xnode : int
        The output node (of shape ``()``) and the input leaf.
    v : ndarray
        The direction: C-contiguous float64 of the input's shape.

    Returns
    -------
    tuple or None
        ``(g, hv)``, float64 arrays of the input's shape; None when the caller must
        take another path.
    """
    cdef Py_ssize_t i, n = out + 1
    if not _rp_check(tape, out, xnode):
        return None
    cdef list shapes = tape.shapes
    if not _c_f64(v) or not _has_shape(v, shapes[xnode]):
        return None
    # forward: the tangents the backward sweep reads, and those they are made from
    cdef list tan = [None] * n
    tan[xnode] = v
    cdef unsigned char* need = <unsigned char*> PyMem_Malloc(n)
    if need == NULL:
        raise MemoryError()
    try:
        _rp_needed(tape, n, need)
        for i in range(n):
            if need[i]:
                _rp_forward(tape, i, tan)
    finally:
        PyMem_Free(need)
    # backward: adjoints (abar) and their tangents (adot) together
    cdef list abar = [None] * n
    cdef list adot = [None] * n
    abar[out] = np.ones(())
    cdef unsigned char* own = <unsigned char*> PyMem_Malloc(n)
    if own == NULL:
        raise MemoryError()
    try:
        memset(own, 0, n)
        own[out] = RP_A
        _rp_backward(tape, out, xnode, tan, abar, adot, own)
    except _ReplayUnavailable:
        return None
    finally:
        PyMem_Free(own)
    g = abar[xnode]
    hv = adot[xnode]
    if g is None:
        g = np.zeros(shapes[xnode])
    if hv is None:
        hv = np.zeros(shapes[xnode])
    if dd2_nonfinite(_ptr(hv), cnp.PyArray_SIZE(<cnp.ndarray> hv)) or \
            dd2_nonfinite(_ptr(g), cnp.PyArray_SIZE(<cnp.ndarray> g)):
        return None
    return g, hv


cdef int _rp_needed(Tape tape, Py_ssize_t n, unsigned char* need) except -1:
    """need[i]: whether node i's tangent is read, by the backward sweep (the tangent of
    a partial: an operand's, the result's, or both operands' for a rule's kernel) or
    by the forward sweep to make a needed tangent.  (Consumers come after their
    operands on the tape: one pass from the end.)"""
    cdef Py_ssize_t i, p0, p1
    cdef int k, j
    cdef _ElemVJP f
    cdef _Info* u
    memset(need, 0, n)
    for i in range(n - 1, -1, -1):
        k = tape.kind[i]
        if k == K_EW:
            f = <_ElemVJP> tape.vjps[i]
            u = &INFO[f.rcode - 1]
            p0 = tape.p0[i]
            p1 = tape.p1[i]
            for j in range(2):
                if (p0 if j == 0 else p1) < 0:
                    continue
                if (j == 0 and f.s0 == 2.0) or u.kind[j] == PK_X:
                    if p0 >= 0:
                        need[p0] = 1
                elif u.kind[j] == PK_Y:
                    if p1 >= 0:
                        need[p1] = 1
                elif u.kind[j] == PK_ANS:
                    need[i] = 1
                elif u.kind[j] == PK_KERNEL:
                    if p0 >= 0:
                        need[p0] = 1
                    if p1 >= 0:
                        need[p1] = 1
            if need[i]:
                if p0 >= 0:
                    need[p0] = 1
                if p1 >= 0:
                    need[p1] = 1
        elif k == K_ARRAY and need[i]:
            for p0 in (<tuple> tape.vjps[i])[1]:
                if p0 >= 0:
                    need[p0] = 1
    return 0


cdef int _rp_forward(Tape tape, Py_ssize_t i, list tan) except -1:
    """tan[i]: node i's tangent from its operands' (None: zero)."""
    cdef Py_ssize_t p0, p1
    cdef int k = tape.kind[i]
    cdef object d, t0, t1
    if k == K_EW:
        p0 = tape.p0[i]
        p1 = tape.p1[i]
        t0 = tan[p0] if p0 >= 0 else None
        t1 = tan[p1] if p1 >= 0 else None
        if t0 is not None or t1 is not None:
            tan[i] = _rp_tangent(<_ElemVJP> tape.vjps[i], t0, t1,
                                 t0 if t0 is not None else t1)
    elif k == K_ARRAY:
        d, parents = <tuple> tape.vjps[i]
        if type(d) is _MatmulVJP or type(d) is _ReshapeVJP or type(d) is _BroadcastVJP:
            tan[i] = _rp_linear_tangent(d, parents, tan, tape.shapes[i])
            return 0
        t0 = tan[<Py_ssize_t> parents[0]]
        if t0 is None:
            return 0
        if type(d) is _SliceVJP:
            tan[i] = np.ascontiguousarray(t0[(<_SliceVJP> d).key], dtype=np.float64)
        elif (<_SumAllVJP> d).count != 1:  # np.mean: the sum over the count
            tan[i] = np.asarray(_add_reduce(t0, None) / (<_SumAllVJP> d).count,
                                dtype=np.float64)
        else:
            tan[i] = np.asarray(_add_reduce(t0, None), dtype=np.float64)
    return 0


cdef enum:
    RP_A = 1   # (own[p]) abar[p] is the replay's own buffer: written in place
    RP_D = 2   # the same for adot[p]


cdef object _rp_linear_tangent(object d, list parents, list tan, object shape):
    """The tangent of a linear array node (the node applied to its operands'
    tangents; None: zero), a C-contiguous float64 array."""
    cdef Py_ssize_t p0 = parents[0]
    cdef Py_ssize_t p1 = parents[1] if len(parents) > 1 else -1
    t0 = tan[p0] if p0 >= 0 else None
    t1 = tan[p1] if p1 >= 0 else None
    if type(d) is _MatmulVJP:
        if (<_MatmulVJP> d).ta:
            return None if t0 is None else _np_matmul(t0, (<_MatmulVJP> d).b)
        return None if t1 is None else _np_matmul((<_MatmulVJP> d).a, t1)
    if t0 is None and t1 is None:
        return None
    if type(d) is _ReshapeVJP:
        return np.ascontiguousarray(np.reshape(t0, shape))
    # broadcasting add / subtract
    cdef _BroadcastVJP b = <_BroadcastVJP> d
    if t0 is not None and t1 is not None:
        return (np.subtract if b.sub else np.add)(t0, t1)
    o = _filled(b.shape, 0.0, False)
    if t0 is not None:
        np.copyto(o, t0)
    elif b.sub:
        np.negative(np.broadcast_to(t1, b.shape), out=o)
    else:
        np.copyto(o, t1)
    return o


cdef int _rp_linear_backward(object d, list parents, list shapes, list abar, list adot,
                             unsigned char* own, object a, object ad) except -1:
    """A linear array node's VJP applied to its adjoint and to the adjoint's tangent
    (None: zero), into its operands'."""
    cdef Py_ssize_t j, p
    cdef _MatmulVJP m
    cdef _BroadcastVJP b
    cdef object c
    if type(d) is _MatmulVJP:
        m = <_MatmulVJP> d
        if m.ta:
            p = parents[0]
            bt = cnp.PyArray_Transpose(<cnp.ndarray> m.b, NULL)
            _rp_share(abar, own, RP_A, p, None if a is None else _np_matmul(a, bt))
            _rp_share(adot, own, RP_D, p, None if ad is None else _np_matmul(ad, bt))
        else:
            p = parents[1]
            at = cnp.PyArray_Transpose(<cnp.ndarray> m.a, NULL)
            _rp_share(abar, own, RP_A, p, None if a is None else _np_matmul(at, a))
            _rp_share(adot, own, RP_D, p, None if ad is None else _np_matmul(at, ad))
        return 0
    if type(d) is _ReshapeVJP:
        p = parents[0]
        # (views of contiguous arrays: contiguous; shared, never written)
        s = (<_ReshapeVJP> d).shape
        _rp_share(abar, own, RP_A, p, None if a is None else a.reshape(s))
        _rp_share(adot, own, RP_D, p, None if ad is None else ad.reshape(s))
        return 0
    b = <_BroadcastVJP> d
    for j in range(2):
        p = parents[j]
        if p < 0:
            continue
        s = b.s0 if j == 0 else b.s1
        for c, adj, bit in ((a, abar, RP_A), (ad, adot, RP_D)):
            if c is None:
                continue
            c = _unbroadcast(c, s)
            if j == 1 and b.sub:
                c = np.negative(c)
            _rp_share(adj, own, bit, p, np.ascontiguousarray(c))
    return 0


cdef inline object _rp_target(list adj, unsigned char* own, int bit, Py_ssize_t p,
                              object like, const double** base):
    """The buffer that receives adj[p] + (contributions): adj[p] itself if the replay
    owns it (``base`` = it), else a new one (``base``: the shared adj[p], or NULL)."""
    cur = adj[p]
    if cur is not None and own[p] & bit:
        base[0] = _ptr(cur)
        return cur
    base[0] = _ptr(cur) if cur is not None else NULL
    o = empty_array(like)
    adj[p] = o
    own[p] |= bit
    return o


cdef int _rp_share(list adj, unsigned char* own, int bit, Py_ssize_t p,
                   object c) except -1:
    """adj[p] += c: c itself (shared: never written) if adj[p] is zero."""
    cdef const double* b
    if c is None:
        return 0
    if adj[p] is None:
        adj[p] = c
        own[p] &= ~bit
        return 0
    o = _rp_target(adj, own, bit, p, c, &b)
    _rp1(_ptr(o), b, NULL, 1.0, _ptr(c), NULL, 1.0, NULL,
         cnp.PyArray_SIZE(<cnp.ndarray> c))
    return 0


cdef int _rp_update(list abar, list adot, unsigned char* own, Py_ssize_t p, object d,
                    double s, object a, object ad, object e, double r) except -1:
    """abar[p] += S(s d, a) and adot[p] += S(s d, ad) + S(r e, a), in one pass where
    both are wanted (None: no such term)."""
    cdef const double* dp = NULL
    cdef const double* b1
    cdef const double* b2
    if type(d) is float:
        s *= <double> d
        if s == 1.0 and e is None:
            # (add, x - c...): the parent's adjoints are the node's, shared
            _rp_share(abar, own, RP_A, p, a)
            return _rp_share(adot, own, RP_D, p, ad)
    else:
        dp = _ptr(d)
    if a is None:
        if ad is not None:
            o2 = _rp_target(adot, own, RP_D, p, ad, &b2)
            _rp1(_ptr(o2), b2, dp, s, _ptr(ad), NULL, 1.0, NULL,
                 cnp.PyArray_SIZE(<cnp.ndarray> ad))
        return 0
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray> a)
    o1 = _rp_target(abar, own, RP_A, p, a, &b1)
    if ad is None and e is None:
        _rp1(_ptr(o1), b1, dp, s, _ptr(a), NULL, 1.0, NULL, n)
    else:
        o2 = _rp_target(adot, own, RP_D, p, a, &b2)
        _rp2(_ptr(o1), b1, _ptr(o2), b2, dp, s, _ptr(a),
             _ptr(ad) if ad is not None else NULL,
             _ptr(e) if e is not None else NULL, r, n)
    return 0


cdef int _rp_slice_add(list adj, unsigned char* own, int bit, Py_ssize_t p, object shape,
                       object key, object c) except -1:
    """adj[p][key] += c (a basic slice's adjoint into its parent's)."""
    cdef Py_ssize_t start, stop, step, m, length
    cdef const double* b
    if c is None:
        return 0
    cur = adj[p]
    if type(key) is slice and len(shape) == 1 and cnp.PyArray_NDIM(<cnp.ndarray> c) == 1:
        # x[a:b:s] of a vector (x[1:], x[:-1]): one C loop
        length = shape[0]
        PySlice_Unpack(key, &start, &stop, &step)
        m = PySlice_AdjustIndices(length, &start, &stop, step)
        if m == cnp.PyArray_DIM(<cnp.ndarray> c, 0):
            if cur is None:
                cur = _filled(shape, 0.0, False)
                dd_scatter_new(_ptr(cur), length, start, step, _ptr(c), 1, m, 0)
                adj[p] = cur
                own[p] |= bit
                return 0
            if not own[p] & bit:
                cur = np.array(cur)
                adj[p] = cur
                own[p] |= bit
            dd_scatter_add(_ptr(cur), start, step, _ptr(c), 1, m, 0)
            return 0
    if cur is None:
        cur = np.zeros(shape)
    elif not own[p] & bit:
        cur = np.array(cur)
    adj[p] = cur
    own[p] |= bit
    cur[key] += c
    return 0


cdef int _rp_spread(list adj, unsigned char* own, int bit, Py_ssize_t p, object shape,
                    object c) except -1:
    """adj[p] += c for the number c (np.sum's adjoint spread over its operand)."""
    cur = adj[p]
    if cur is None:
        adj[p] = _filled(shape, float(c))
        own[p] |= bit
    else:
        if not own[p] & bit:
            cur = np.array(cur)
            adj[p] = cur
            own[p] |= bit
        np.add(cur, float(c), out=cur)
    return 0


cdef int _rp_backward(Tape tape, Py_ssize_t out, Py_ssize_t xnode, list tan, list abar,
                      list adot, unsigned char* own) except -1:
    """The replay's backward sweep: adjoints and their tangents."""
    cdef Py_ssize_t i, j, p, p0, p1
    cdef int k
    cdef _ElemVJP f
    cdef _Info* u
    cdef object d, a, ad
    cdef list shapes = tape.shapes
    cdef list vjps = tape.vjps
    cdef tuple ddv
    for i in range(out, -1, -1):
        a = abar[i]
        ad = adot[i]
        if a is None and ad is None:
            continue
        k = tape.kind[i]
        if k == K_EW:
            f = <_ElemVJP> vjps[i]
            u = &INFO[f.rcode - 1]
            p0 = tape.p0[i]
            p1 = tape.p1[i]
            ddv = _rp_partial_tangents(f, u, p0, p1, tan, tan[i]) if a is not None \
                else (None, 1.0, None, 1.0)
            if p0 >= 0:
                _rp_update(abar, adot, own, p0, f.d0, f.s0, a, ad, ddv[0], ddv[1])
            if p1 >= 0:
                _rp_update(abar, adot, own, p1, f.d1, f.s1, a, ad, ddv[2], ddv[3])
        elif k == K_ARRAY:
            d, parents = <tuple> vjps[i]
            if type(d) is _MatmulVJP or type(d) is _ReshapeVJP or \
                    type(d) is _BroadcastVJP:
                _rp_linear_backward(d, parents, shapes, abar, adot, own, a, ad)
                if i != xnode:
                    abar[i] = adot[i] = None
                continue
            p = parents[0]
            if type(d) is _SliceVJP:
                _rp_slice_add(abar, own, RP_A, p, shapes[p], (<_SliceVJP> d).key, a)
                _rp_slice_add(adot, own, RP_D, p, shapes[p], (<_SliceVJP> d).key, ad)
            else:
                if (<_SumAllVJP> d).count != 1:  # np.mean: the sweep's cot / count
                    if a is not None:
                        a = a / (<_SumAllVJP> d).count
                    if ad is not None:
                        ad = ad / (<_SumAllVJP> d).count
                if a is not None:
                    _rp_spread(abar, own, RP_A, p, shapes[p], a)
                if ad is not None:
                    _rp_spread(adot, own, RP_D, p, shapes[p], ad)
        if i != xnode:
            abar[i] = adot[i] = None
    return 0


cdef tuple _rp_partial_tangents(_ElemVJP f, _Info* u, Py_ssize_t p0, Py_ssize_t p1,
                                list tan, object tself):
    """``(dd0, r0, dd1, r1)``: the tangent of the node's partial j is rj * ddj (None:
    zero)."""
    cdef object e0 = None, e1 = None, e
    cdef double r0 = 1.0
    cdef int j
    cdef Py_ssize_t p
    cdef object t0 = tan[p0] if p0 >= 0 else None
    cdef object t1 = tan[p1] if p1 >= 0 else None
    cdef bint kernel = False
    for j in range(2):
        p = p0 if j == 0 else p1
        if p < 0:
            continue
        e = None
        if j == 0 and f.s0 == 2.0:
            e = t0  # x ** 2, np.square: the partial 2 x, its tangent 2 x'
            r0 = 2.0
        elif u.kind[j] == PK_CONST:
            e = None
        elif u.kind[j] == PK_X:
            e = t0
        elif u.kind[j] == PK_Y:
            e = t1
        elif u.kind[j] == PK_ANS:
            e = tself
        else:
            kernel = True
        if j == 0:
            e0 = e
        else:
            e1 = e
    if not kernel or (t0 is None and t1 is None):
        return (e0, r0, e1, 1.0)
    # rule-table partials: their tangents from the rule's second partials
    like = t0 if t0 is not None else t1
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray> like)
    x0, x1 = f.x0, f.x1
    cdef double c0 = 0.0, c1 = 0.0
    cdef const double* xv
    cdef const double* yv = NULL
    cdef Py_ssize_t xs = 1, ys = 1
    if type(x0) is float:
        c0 = x0
        xv = &c0
        xs = 0
    else:
        xv = _ptr(x0)
    if u.nin == 2:
        if type(x1) is float:
            c1 = x1
            yv = &c1
            ys = 0
        else:
            yv = _ptr(x1)
    dd0 = empty_array(like) if p0 >= 0 and u.kind[0] == PK_KERNEL and f.s0 != 2.0 \
        else None
    dd1 = empty_array(like) if p1 >= 0 and u.kind[1] == PK_KERNEL else None
    if dd0 is None and dd1 is None:
        return (e0, r0, e1, 1.0)
    cdef const double* pt0 = _ptr(t0) if t0 is not None else NULL
    cdef const double* pt1 = _ptr(t1) if t1 is not None else NULL
    cdef double* pd0 = _ptr(dd0) if dd0 is not None else NULL
    cdef double* pd1 = _ptr(dd1) if dd1 is not None else NULL
    if n >= LAZY_MIN:
        with nogil:
            _rp_second(u, xv, xs, yv, ys, pt0, pt1, pd0, pd1, n)
    else:
        _rp_second(u, xv, xs, yv, ys, pt0, pt1, pd0, pd1, n)
    if dd0 is not None:
        if dd2_nonfinite(_ptr(dd0), n):
            raise _ReplayUnavailable()
        e0 = dd0
    if dd1 is not None:
        if dd2_nonfinite(_ptr(dd1), n):
            raise _ReplayUnavailable()
        e1 = dd1
    return (e0, r0, e1, 1.0)


class _ReplayUnavailable(Exception):
    """Raised inside hvp_replay where the nested path must decide (caught there)."""


def same_bits(object a, object b):
    """Whether two C-contiguous arrays of one shape and item size hold the same bytes
    (one ``memcmp``): the point cache of :class:`dualad.optimize.Objective` compares
    points bit for bit (-0.0 is not 0.0, a NaN is itself) at every call, and
    ``np.array_equal`` costs 5 us at n = 10^4 (an array of booleans, then a reduction)."""
    if type(a) is not NDARRAY or type(b) is not NDARRAY:
        raise TypeError("same_bits compares two ndarrays")
    if not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> a) or \
            not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> b):
        raise ValueError("same_bits compares C-contiguous arrays")
    if cnp.PyArray_ITEMSIZE(<cnp.ndarray> a) != cnp.PyArray_ITEMSIZE(<cnp.ndarray> b) or \
            not _same_shape(a, b):
        return False
    return memcmp(cnp.PyArray_DATA(<cnp.ndarray> a), cnp.PyArray_DATA(<cnp.ndarray> b),
                  cnp.PyArray_NBYTES(<cnp.ndarray> a)) == 0
