"""``HessianArray``: tape-free second-order forward mode for small Hessians.

Design note
-----------
A ``HessianArray`` of shape ``s`` carries, for each of its elements ``e``, the value
``v[e]``, the gradient ``g[e, :]`` with respect to the ``n`` inputs and the upper
triangle of the Hessian ``H[e, p]``, one entry per pair ``p = (i, j)``, ``i <= j``, in
row order (``n (n + 1) / 2`` entries).  The parts live in one C buffer, element major,
so that an element's lanes are contiguous: elementwise rules walk them in plain C
loops.  A Hessian known to be zero (the input, and everything affine in it) is not
stored.

Each element also has a *window*, the range ``[lo, hi)`` of inputs outside which its
gradient (and so its Hessian) is zero: ``x[i]`` starts with ``[i, i + 1)``, and a
result gets the hull of its operands' windows.  Only the window's part of an element
is computed, copied or read.  Objectives made of terms in neighbouring inputs
(Rosenbrock's terms have windows of two inputs) then cost ``O(size)`` per operation
instead of ``O(size * n^2)``; a dense coupling (``A @ x``, a sum feeding a nonlinear
function) widens the windows to the whole range, and the cost with them.

One evaluation of ``fun`` on a ``HessianArray`` gives the value, gradient and whole
Hessian (the "hyper-dual" idea of DESIGN.md, with all ``n`` directions at once): no
tape, no nested sweeps.  :func:`dualad.second.value_grad_hessian` uses it for
``mode="forward"`` up to :data:`dualad.second.HYPER_MAX_N` inputs.

Calculus: none here.  Every elementwise operation calls the rule table's second-order
kernel (``rule2_<name>`` from ``dualad/_kernels.pxd``, through ``fill_tables``) for the
partials ``f_x, f_y, f_xx, f_xy, f_yy`` and combines them by the chain rule:
``g = f_x g_a + f_y g_b`` and ``H = f_x H_a + f_y H_b + f_xx g_a g_a^T + f_xy (g_a g_b^T +
g_b g_a^T) + f_yy g_b g_b^T``.  As in ``dualad/_scalar.pyx`` (``HyperDual``), a constant
exponent uses only the base's partials, and a zero power (``ans == 0``) has no exponent
partials (no ``0 * log(0)``).  A zero factor annihilates (``0 * inf = 0``, DESIGN.md
"Errors"): the loops run with plain products and redo an element with the annihilating
products when a NaN shows up in its lanes (only a ``0 * inf`` or an earlier NaN can
make one).

Structural operations (indexing, reshape, transpose, concatenation, ``np.where``)
move whole elements: they are computed on an array of element numbers and the lanes
are gathered by the result.  ``np.sum`` of everything is a C loop; reductions along
axes and products with constant matrices use NumPy on views of the buffers (lane axis
last, windows widened to the whole range first).

Anything else -- a NumPy function without a rule here, item assignment, a tracer of
another kind (nesting), ``np.asarray`` -- raises :class:`Unsupported`; the caller then
evaluates the function again with the general nested forward mode
(:func:`dualad.second.value_grad_hessian`).
"""

cimport cython
cimport numpy as cnp
from cpython.slice cimport PySlice_GetIndicesEx
from libc.math cimport isnan
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset

import operator

import numpy as np

from dualad.rules._elementwise import ufunc_of
from dualad._kernels cimport (unary_kernel, binary_kernel, fill_tables, unary_names,
                              binary_names, N_UNARY, N_BINARY)
from dualad._scalar cimport Dual, HyperDual
from dualad._fpflags cimport clear_fp_flags as _clear_fp_flags
from dualad._errors import float_conversion, complex_input
from dualad._array import is_tracer
from dualad.rules import registry as _registry

cnp.import_array()

class Unsupported(Exception):
    """The function used something ``HessianArray`` does not implement; the caller
    falls back to nested forward mode.  Internal: never reaches the user."""


# ---------------------------------------------------------------------------------------
# kernel tables (the rule table's second-order kernels)

cdef unary_kernel U1[N_UNARY]
cdef unary_kernel U2[N_UNARY]
cdef binary_kernel B1[N_BINARY]
cdef binary_kernel B2[N_BINARY]
cdef binary_kernel B1X[N_BINARY]
cdef binary_kernel B1Y[N_BINARY]
fill_tables(U1, U2, B1, B2, B1X, B1Y)

cdef tuple UNARY_NAMES = unary_names()
cdef tuple BINARY_NAMES = binary_names()
cdef dict UNARY_INDEX = {ufunc_of(n): i for i, n in enumerate(UNARY_NAMES)}
cdef dict BINARY_INDEX = {ufunc_of(n): i for i, n in enumerate(BINARY_NAMES)}
cdef frozenset BOOLEAN = _registry.BOOLEAN
cdef Py_ssize_t I_ADD = BINARY_NAMES.index("add")
cdef Py_ssize_t I_SUB = BINARY_NAMES.index("subtract")
cdef Py_ssize_t I_MUL = BINARY_NAMES.index("multiply")
cdef Py_ssize_t I_DIV = BINARY_NAMES.index("true_divide")
cdef Py_ssize_t I_POW = BINARY_NAMES.index("power")
cdef Py_ssize_t I_FPOW = BINARY_NAMES.index("float_power")
cdef Py_ssize_t I_NEG = UNARY_NAMES.index("negative")
cdef Py_ssize_t I_ABS = UNARY_NAMES.index("absolute")
cdef Py_ssize_t I_SQUARE = UNARY_NAMES.index("square")

cdef type NDARRAY = np.ndarray
cdef object _INTP = np.intp

#: Doubles one array may hold (value, gradient and Hessian lanes): 64 MiB.  A bigger
#: intermediate raises Unsupported, and the chunked nested path takes over.
MAX_DOUBLES = 1 << 23
cdef Py_ssize_t _MAX_DOUBLES = MAX_DOUBLES

cdef Py_ssize_t _LAST_TAG = 0
#: Buffers of at least this many doubles (64 KiB) are NumPy arrays (see _new).
cdef Py_ssize_t _BLOCK_MIN = 8192

from dualad._array import DualArray as _DualArray
cdef frozenset _ARRAY_ATTRIBUTES = frozenset(
    a for a in set(dir(np.ndarray)) | set(dir(_DualArray)) if not a.startswith("__"))


# ---------------------------------------------------------------------------------------
# lane arithmetic for one element.
#
# An element's gradient is zero outside its *window*, a range [lo, hi) of inputs: x[i]
# depends on input i alone, and an operation's result on the union of its operands'
# windows (their hull).  Only the window's gradient entries and the window's block of
# the Hessian triangle are stored and computed (Rosenbrock's terms have windows of two
# inputs whatever n is); the rest of an element's storage is never read.  Entry (i, j),
# i <= j, of the packed triangle is at _rs(i, n) + j.
#
# ga/gb: the operands' gradients (NULL: constant or empty window); Ha/Hb: their
# Hessians (NULL: zero); [la, ha), [lb, hb): their windows; go/Ho: the result's
# (Ho NULL: the result's Hessian is zero) over the hull [lo, hi).  s: scratch of 4 n.

cdef inline Py_ssize_t _rs(Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    return i * n - (i * (i + 1)) // 2


cdef inline double _sc(double d, double t) noexcept nogil:
    """d * t, except that a zero on either side annihilates."""
    if d == 0.0 or t == 0.0:
        return 0.0
    return d * t


cdef inline double _p3(double d, double s, double t) noexcept nogil:
    if d == 0.0 or s == 0.0 or t == 0.0:
        return 0.0
    return d * s * t


cdef inline bint _has_nan(const double* p, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef bint bad = False
    for i in range(n):
        bad = bad | (p[i] != p[i])
    return bad


cdef const double* _extended(double* out, const double* g, Py_ssize_t l, Py_ssize_t h,
                             Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    """g over [lo, hi), zero outside its window [l, h): g itself if the windows agree."""
    cdef Py_ssize_t i
    if g == NULL or (l == lo and h == hi):
        return g
    for i in range(lo, hi):
        out[i] = g[i] if l <= i < h else 0.0
    return out


cdef bint _lanes_plain(double* go, double* Ho, Py_ssize_t n, Py_ssize_t lo, Py_ssize_t hi,
                       const double* ga, const double* Ha, Py_ssize_t la, Py_ssize_t ha,
                       double fx, double fxx,
                       const double* gb, const double* Hb, Py_ssize_t lb, Py_ssize_t hb,
                       double fy, double fyy, double fxy, double* s) noexcept nogil:
    """The chain rule with plain products; True if a NaN appeared (redo carefully)."""
    cdef Py_ssize_t i, j, r
    cdef const double* A = _extended(s, ga, la, ha, lo, hi)
    cdef const double* B = _extended(s + n, gb, lb, hb, lo, hi)
    cdef double* u = s + 2 * n
    cdef double* w = s + 3 * n
    cdef double* row
    cdef const double* ra
    cdef const double* rb
    cdef double c
    cdef bint bad, a_in, b_in, a_full, b_full, do_u = False, do_w = False
    if A != NULL and B != NULL:
        for i in range(lo, hi):
            go[i] = fx * A[i] + fy * B[i]
    elif A != NULL:
        for i in range(lo, hi):
            go[i] = fx * A[i]
    elif B != NULL:
        for i in range(lo, hi):
            go[i] = fy * B[i]
    bad = _has_nan(go + lo, hi - lo)
    if Ho == NULL:
        return bad
    if A != NULL and (fxx != 0.0 or (B != NULL and fxy != 0.0)):
        do_u = True
        for j in range(lo, hi):
            u[j] = fxx * A[j] + (fxy * B[j] if B != NULL else 0.0)
    if B != NULL and (fyy != 0.0 or (A != NULL and fxy != 0.0)):
        do_w = True
        for j in range(lo, hi):
            w[j] = fyy * B[j] + (fxy * A[j] if A != NULL else 0.0)
    for i in range(lo, hi):
        r = _rs(i, n)
        row = Ho + r
        a_in = Ha != NULL and la <= i < ha
        b_in = Hb != NULL and lb <= i < hb
        a_full = a_in and la == lo and ha == hi
        b_full = b_in and lb == lo and hb == hi
        ra = Ha + r if a_in else NULL
        rb = Hb + r if b_in else NULL
        if a_full and b_full:
            for j in range(i, hi):
                row[j] = fx * ra[j] + fy * rb[j]
        elif a_full:
            for j in range(i, hi):
                row[j] = fx * ra[j]
            if b_in:
                for j in range(i, hb):
                    row[j] = row[j] + fy * rb[j]
        elif b_full:
            for j in range(i, hi):
                row[j] = fy * rb[j]
            if a_in:
                for j in range(i, ha):
                    row[j] = row[j] + fx * ra[j]
        else:
            for j in range(i, hi):
                row[j] = 0.0
            if a_in:
                for j in range(i, ha):
                    row[j] = row[j] + fx * ra[j]
            if b_in:
                for j in range(i, hb):
                    row[j] = row[j] + fy * rb[j]
        if do_u and A[i] != 0.0:
            c = A[i]
            for j in range(i, hi):
                row[j] = row[j] + c * u[j]
        if do_w and B[i] != 0.0:
            c = B[i]
            for j in range(i, hi):
                row[j] = row[j] + c * w[j]
        bad = bad | _has_nan(row + i, hi - i)
    return bad


cdef void _lanes_careful(double* go, double* Ho, Py_ssize_t n, Py_ssize_t lo, Py_ssize_t hi,
                         const double* ga, const double* Ha, Py_ssize_t la, Py_ssize_t ha,
                         double fx, double fxx,
                         const double* gb, const double* Hb, Py_ssize_t lb, Py_ssize_t hb,
                         double fy, double fyy, double fxy, double* s) noexcept nogil:
    """The chain rule with annihilating products (a zero factor gives 0, even times
    inf or nan)."""
    cdef Py_ssize_t i, j, r
    cdef const double* A = _extended(s, ga, la, ha, lo, hi)
    cdef const double* B = _extended(s + n, gb, lb, hb, lo, hi)
    cdef double t, ai, bi, aj, bj
    for i in range(lo, hi):
        t = 0.0
        if A != NULL:
            t = _sc(fx, A[i])
        if B != NULL:
            t = t + _sc(fy, B[i])
        go[i] = t
    if Ho == NULL:
        return
    for i in range(lo, hi):
        r = _rs(i, n)
        ai = A[i] if A != NULL else 0.0
        bi = B[i] if B != NULL else 0.0
        for j in range(i, hi):
            aj = A[j] if A != NULL else 0.0
            bj = B[j] if B != NULL else 0.0
            t = 0.0
            if Ha != NULL and la <= i and j < ha:
                t = _sc(fx, Ha[r + j])
            if Hb != NULL and lb <= i and j < hb:
                t = t + _sc(fy, Hb[r + j])
            Ho[r + j] = (t + _p3(fxx, ai, aj) + _p3(fxy, ai, bj) + _p3(fxy, bi, aj)
                         + _p3(fyy, bi, bj))


# ---------------------------------------------------------------------------------------
# the array type

@cython.final
@cython.freelist(64)
@cython.no_gc  # it refers to a tuple of ints and a plain ndarray: no cycle through it
cdef class HessianArray:
    """HessianArray()

    A float64 array carrying its gradient and Hessian with respect to ``n`` inputs:
    the tape-free forward mode behind ``dualad.hessian(f, mode="forward")`` for small
    ``n``.  Created only by :func:`hessian_of`; user code sees it as the ``x`` passed
    to ``f`` and uses it like an ndarray (arithmetic, rule-table ufuncs, indexing,
    ``np.sum``/``np.mean``, reshaping, products with constant matrices, ``np.where``).

    Attributes
    ----------
    value : ndarray
        The primal values (a copy).
    shape : tuple of int
        The shape of the value.

    Examples
    --------
    >>> import numpy as np
    >>> from dualad._hyper import hessian_of
    >>> value, g, H = hessian_of(lambda x: x[0] ** 2 * x[1], np.array([1.0, 3.0]), ())
    >>> float(value), g, H
    (3.0, array([6., 1.]), array([[6., 2.],
           [2., 0.]]))
    """

    cdef Py_ssize_t n
    cdef Py_ssize_t npair
    cdef Py_ssize_t size
    cdef readonly tuple shape
    cdef Py_ssize_t tag
    cdef bint hz           # the Hessian is identically zero (h is NULL)
    cdef Py_ssize_t* win   # each element's window: [win[2 e], win[2 e + 1])
    cdef object block      # large buffers: the ndarray owning mem (else mem is malloc'd)
    cdef double* mem
    cdef double* v
    cdef double* g
    cdef double* h

    __array_priority__ = 200.0

    def __cinit__(self):
        self.mem = NULL

    def __dealloc__(self):
        if self.mem != NULL and self.block is None:
            free(self.mem)
        self.mem = NULL

    # -- attributes ------------------------------------------------------------------------
    @property
    def value(self):
        """ndarray: the primal values (a copy)."""
        return _part(self, 0)

    @property
    def gradient(self):
        """ndarray, shape ``shape + (n,)``: the gradient of every element (a copy)."""
        return _part(_dense(self), 1)

    @property
    def hessian(self):
        """ndarray, shape ``shape + (n, n)``: the Hessian of every element (a copy)."""
        return _full_hessian(self)

    @property
    def ndim(self):
        """int: the number of dimensions."""
        return len(self.shape)

    @property
    def size(self):
        """int: the number of elements."""
        return self.size

    @property
    def dtype(self):
        """numpy.dtype: always float64."""
        return np.dtype(np.float64)

    @property
    def T(self):
        """HessianArray: the transpose."""
        return _structural(np.transpose, (self,), {}, (0,))

    def __repr__(self):
        return f"HessianArray(value={self.value!r}, n={self.n})"

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d HessianArray")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d HessianArray")
        for i in range(self.shape[0]):
            yield self[i]

    def __getattr__(self, name):
        # an ndarray attribute the general forward mode may have and this type has not
        if name in _ARRAY_ATTRIBUTES:
            raise Unsupported(f"HessianArray.{name}")
        raise AttributeError(f"'HessianArray' object has no attribute {name!r}")

    # -- conversions that would drop the derivative -------------------------------------
    def __float__(self):
        raise TypeError(float_conversion("HessianArray",
                                         "float() or a math-module function"))

    def __int__(self):
        raise TypeError(float_conversion("HessianArray", "int()"))

    def __index__(self):
        raise TypeError(float_conversion("HessianArray", "an integer conversion"))

    def __complex__(self):
        raise TypeError(float_conversion("HessianArray", "complex()"))

    def __bool__(self):
        return bool(_part(self, 0))

    def __array__(self, dtype=None, copy=None):
        # np.asarray(x): the general forward mode makes an object array of Duals
        raise Unsupported("np.asarray")

    def __reduce__(self):
        raise Unsupported("pickle")

    # -- indexing ------------------------------------------------------------------------
    def __getitem__(self, key):
        return _getitem(self, key)

    def __setitem__(self, key, item):
        raise Unsupported("item assignment")

    # -- arithmetic ----------------------------------------------------------------------
    def __add__(self, other):
        return _operator(self, other, I_ADD)

    def __radd__(self, other):
        return _operator(other, self, I_ADD)

    def __sub__(self, other):
        return _operator(self, other, I_SUB)

    def __rsub__(self, other):
        return _operator(other, self, I_SUB)

    def __mul__(self, other):
        return _operator(self, other, I_MUL)

    def __rmul__(self, other):
        return _operator(other, self, I_MUL)

    def __truediv__(self, other):
        return _operator(self, other, I_DIV)

    def __rtruediv__(self, other):
        return _operator(other, self, I_DIV)

    def __pow__(self, other, mod):
        if mod is not None:
            return NotImplemented
        return _operator(self, other, I_POW)

    def __rpow__(self, other, mod):
        if mod is not None:
            return NotImplemented
        return _operator(other, self, I_POW)

    def __matmul__(self, other):
        _check_operand(other)
        return _matmul(self, other)

    def __rmatmul__(self, other):
        _check_operand(other)
        return _matmul(other, self)

    def __neg__(self):
        return _unary(self, I_NEG)

    def __pos__(self):
        return self

    def __abs__(self):
        return _unary(self, I_ABS)

    # in place: NumPy writes through views, which this type does not have
    def __iadd__(self, other):
        raise Unsupported("in-place operator")

    def __isub__(self, other):
        raise Unsupported("in-place operator")

    def __imul__(self, other):
        raise Unsupported("in-place operator")

    def __itruediv__(self, other):
        raise Unsupported("in-place operator")

    def __ipow__(self, other):
        raise Unsupported("in-place operator")

    def __mod__(self, other):
        raise Unsupported("%")

    def __rmod__(self, other):
        raise Unsupported("%")

    def __floordiv__(self, other):
        raise Unsupported("//")

    def __rfloordiv__(self, other):
        raise Unsupported("//")

    # comparisons look at the values (user code branches on them)
    def __lt__(self, other):
        return np.less(_part(self, 0), _primal(other))

    def __le__(self, other):
        return np.less_equal(_part(self, 0), _primal(other))

    def __gt__(self, other):
        return np.greater(_part(self, 0), _primal(other))

    def __ge__(self, other):
        return np.greater_equal(_part(self, 0), _primal(other))

    def __eq__(self, other):
        return np.equal(_part(self, 0), _primal(other))

    def __ne__(self, other):
        return np.not_equal(_part(self, 0), _primal(other))

    __hash__ = None

    # -- NumPy protocols -------------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        cdef object idx
        if method != "__call__" or kwargs:
            raise Unsupported(f"numpy.{ufunc.__name__}.{method}")
        if len(inputs) == 1:
            idx = UNARY_INDEX.get(ufunc)
            if idx is not None:
                return _unary(_traced(inputs[0]), <Py_ssize_t> idx)
        elif len(inputs) == 2:
            idx = BINARY_INDEX.get(ufunc)
            if idx is not None:
                _check_operand(inputs[0])
                _check_operand(inputs[1])
                return _binary(inputs[0], inputs[1], <Py_ssize_t> idx)
            if ufunc is np.matmul:
                _check_operand(inputs[0])
                _check_operand(inputs[1])
                return _matmul(inputs[0], inputs[1])
        if ufunc in BOOLEAN:
            return ufunc(*[_primal(i) for i in inputs])
        raise Unsupported(f"numpy.{ufunc.__name__}")

    def __array_function__(self, func, types, args, kwargs):
        for t in types:
            if t is not HessianArray and not issubclass(t, NDARRAY):
                raise Unsupported(f"{t.__name__} operand")
        handler = _FUNCTIONS.get(func)
        if handler is not None:
            return handler(*args, **kwargs)
        data = _STRUCTURAL.get(func)
        if data is not None:
            return _structural(func, args, kwargs, data)
        raise Unsupported(f"numpy.{getattr(func, '__name__', func)}")

    # -- ndarray methods -----------------------------------------------------------------
    def sum(self, axis=None, dtype=None, out=None, keepdims=False):
        """Sum of the elements (``np.sum``)."""
        return _np_sum(self, axis, dtype, out, keepdims)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False):
        """Mean of the elements (``np.mean``)."""
        return _np_mean(self, axis, dtype, out, keepdims)

    def reshape(self, *shape, order="C"):
        """Reshape (``np.reshape``)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _structural(np.reshape, (self, shape), {"order": order}, (0,))

    def ravel(self, order="C"):
        """Flatten to 1-D (``np.ravel``)."""
        return _structural(np.ravel, (self,), {"order": order}, (0,))

    def flatten(self, order="C"):
        """Flatten to 1-D (a copy)."""
        return _structural(np.ravel, (self,), {"order": order}, (0,))

    def transpose(self, *axes):
        """Permute the axes (``np.transpose``)."""
        if len(axes) == 0:
            axes = None
        elif len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return _structural(np.transpose, (self, axes), {}, (0,))

    def swapaxes(self, axis1, axis2):
        """Interchange two axes (``np.swapaxes``)."""
        return _structural(np.swapaxes, (self, axis1, axis2), {}, (0,))

    def squeeze(self, axis=None):
        """Remove length-one axes (``np.squeeze``)."""
        return _structural(np.squeeze, (self,), {"axis": axis}, (0,))

    def dot(self, other):
        """Dot product (``np.dot``)."""
        return _np_dot(self, other)

    def copy(self):
        """A copy."""
        return _copy(self)

    def astype(self, dtype, copy=True):
        """A float64 copy; other dtypes would drop the derivative and raise TypeError."""
        if np.dtype(dtype) != np.float64:
            raise TypeError(f"HessianArray.astype({dtype!r}): dualad values are float64; "
                            "other dtypes would drop the derivative")
        return _copy(self)


# ---------------------------------------------------------------------------------------
# construction and views

cdef HessianArray _new(Py_ssize_t n, Py_ssize_t size, tuple shape, bint hz,
                       Py_ssize_t tag):
    cdef Py_ssize_t P = n * (n + 1) // 2
    cdef Py_ssize_t lanes = size * (1 + n + (0 if hz else P))
    cdef Py_ssize_t total = lanes + 2 * size  # (+ the windows, as many 8-byte words)
    if total > _MAX_DOUBLES:
        raise Unsupported("an intermediate too large for one evaluation")
    cdef HessianArray r = HessianArray.__new__(HessianArray)
    cdef cnp.npy_intp dims[1]
    if total >= _BLOCK_MIN:
        # through NumPy's allocator: inside a transform that is dualad's caching
        # allocator (dualad/_memory.pyx), which spares fresh pages for every block
        dims[0] = total
        r.block = cnp.PyArray_EMPTY(1, dims, cnp.NPY_DOUBLE, 0)
        r.mem = <double*> cnp.PyArray_DATA(<cnp.ndarray> r.block)
    else:
        r.mem = <double*> malloc(max(total, 1) * sizeof(double))
        if r.mem == NULL:
            raise MemoryError()
    r.n = n
    r.npair = P
    r.size = size
    r.shape = shape
    r.tag = tag
    r.hz = hz
    r.v = r.mem
    r.g = r.v + size
    r.h = NULL if hz else r.g + size * n
    r.win = <Py_ssize_t*> (r.mem + lanes)
    return r


cdef HessianArray _copy(HessianArray a):
    cdef HessianArray r = _new(a.n, a.size, a.shape, a.hz, a.tag)
    memcpy(r.mem, a.mem, a.size * (3 + a.n + (0 if a.hz else a.npair)) * sizeof(double))
    return r


cdef inline void _copy_element(HessianArray dst, Py_ssize_t k, HessianArray src,
                               Py_ssize_t e) noexcept nogil:
    """Element e of src into element k of dst (the window's part only)."""
    cdef Py_ssize_t n = src.n, P = src.npair, lo = src.win[2 * e], hi = src.win[2 * e + 1]
    cdef Py_ssize_t i, r
    dst.v[k] = src.v[e]
    dst.win[2 * k] = lo
    dst.win[2 * k + 1] = hi
    if hi > lo:
        memcpy(dst.g + k * n + lo, src.g + e * n + lo, (hi - lo) * sizeof(double))
    if dst.h == NULL:
        return
    for i in range(lo, hi):
        r = _rs(i, n) + i
        if src.h == NULL:
            memset(dst.h + k * P + r, 0, (hi - i) * sizeof(double))
        else:
            memcpy(dst.h + k * P + r, src.h + e * P + r, (hi - i) * sizeof(double))


cdef HessianArray _dense(HessianArray a):
    """``a`` with every window the whole input range (zeros written), for NumPy views."""
    cdef Py_ssize_t e, n = a.n, P = a.npair, lo, hi, i, r
    for e in range(a.size):
        if a.win[2 * e] != 0 or a.win[2 * e + 1] != n:
            break
    else:
        return a
    cdef HessianArray d = _new(n, a.size, a.shape, a.hz, a.tag)
    memcpy(d.v, a.v, a.size * sizeof(double))
    memset(d.g, 0, a.size * n * sizeof(double))
    if not a.hz:
        memset(d.h, 0, a.size * P * sizeof(double))
    for e in range(a.size):
        _copy_element(d, e, a, e)
        d.win[2 * e] = 0
        d.win[2 * e + 1] = n
    return d


cdef object _view(HessianArray a, int which):
    """A read-only ndarray over the value (0), gradient (1) or Hessian (2) lanes, with
    the lane axis last; it keeps ``a`` alive."""
    cdef cnp.npy_intp dims[66]
    cdef int d, nd = len(a.shape)
    for d in range(nd):
        dims[d] = a.shape[d]
    cdef double* p = a.v
    if which == 1:
        dims[nd] = a.n
        nd += 1
        p = a.g
    elif which == 2:
        dims[nd] = a.npair
        nd += 1
        p = a.h
    cdef cnp.ndarray arr = cnp.PyArray_SimpleNewFromData(nd, dims, cnp.NPY_DOUBLE, p)
    cnp.set_array_base(arr, a)
    cnp.PyArray_CLEARFLAGS(arr, cnp.NPY_ARRAY_WRITEABLE)
    return arr


cdef object _part(HessianArray a, int which):
    return _view(a, which).copy()


cdef object _full_hessian(HessianArray a, tuple shape=None):
    """The Hessians as ``shape + (n, n)`` symmetric matrices (a new array; ``shape``
    replaces that whole shape if given)."""
    cdef Py_ssize_t n = a.n, e, i, j, p
    cdef cnp.ndarray out = <cnp.ndarray> np.zeros(a.shape + (n, n) if shape is None
                                                   else shape)
    if a.hz:
        return out
    cdef double* o = <double*> cnp.PyArray_DATA(out)
    cdef double* he
    cdef Py_ssize_t lo, hi, r
    with nogil:
        for e in range(a.size):
            he = a.h + e * a.npair
            lo = a.win[2 * e]
            hi = a.win[2 * e + 1]
            for i in range(lo, hi):
                r = _rs(i, n)
                for j in range(i, hi):
                    o[i * n + j] = he[r + j]
                    o[j * n + i] = he[r + j]
            o += n * n
    return out


cdef HessianArray _from_parts(object v, object g, object h, Py_ssize_t n, Py_ssize_t tag):
    """A new array from value, gradient and Hessian ndarrays (lanes last; h None: zero)."""
    v = np.asarray(v, dtype=np.float64, order="C")  # (keeps 0-d arrays 0-d)
    cdef Py_ssize_t size = v.size
    cdef HessianArray r = _new(n, size, v.shape, h is None, tag)
    cdef cnp.ndarray cv = <cnp.ndarray> v
    cdef cnp.ndarray cg = <cnp.ndarray> np.ascontiguousarray(g, dtype=np.float64)
    memcpy(r.v, cnp.PyArray_DATA(cv), size * sizeof(double))
    memcpy(r.g, cnp.PyArray_DATA(cg), size * n * sizeof(double))
    cdef cnp.ndarray ch
    if h is not None:
        ch = <cnp.ndarray> np.ascontiguousarray(h, dtype=np.float64)
        memcpy(r.h, cnp.PyArray_DATA(ch), size * r.npair * sizeof(double))
    cdef Py_ssize_t e
    for e in range(size):
        r.win[2 * e] = 0
        r.win[2 * e + 1] = n
    return r


def seed(x):
    """The input of one evaluation: ``x`` (float64 ndarray) with the identity gradient
    and a zero Hessian."""
    global _LAST_TAG
    _LAST_TAG += 1
    xv = np.asarray(x, dtype=np.float64, order="C")  # (keeps 0-d arrays 0-d)
    cdef Py_ssize_t n = xv.size, e
    cdef HessianArray r = _new(n, n, xv.shape, True, _LAST_TAG)
    memcpy(r.v, cnp.PyArray_DATA(<cnp.ndarray> xv), n * sizeof(double))
    for e in range(n):  # x[e] depends on input e alone: window [e, e + 1)
        r.g[e * n + e] = 1.0
        r.win[2 * e] = e
        r.win[2 * e + 1] = e + 1
    return r


def extract(HessianArray out, tuple shape):
    """``(value, gradient, Hessian)`` of a one-element result: a float64, an array of
    ``shape`` (the input's) and a symmetric array of ``shape + shape``."""
    if out.size != 1:
        raise ValueError("extract needs a single element")
    cdef cnp.ndarray g = <cnp.ndarray> np.zeros(shape)
    cdef Py_ssize_t lo = out.win[0], hi = out.win[1]
    memcpy(<double*> cnp.PyArray_DATA(g) + lo, out.g + lo, (hi - lo) * sizeof(double))
    return np.float64(out.v[0]), g, _full_hessian(out, shape + shape)


def hessian_of(fun, x, args, check=None):
    """``(f(x), grad f(x), H(x))`` from one evaluation of ``fun`` on a HessianArray.

    Parameters
    ----------
    fun : callable
        Scalar function ``fun(x, *args)``.
    x : ndarray
        The point (float64).
    args : tuple
        Extra arguments (constants).
    check : callable, optional
        Called with ``fun``'s output if that is not a scalar (the caller's
        scalar-output check, which raises).

    Returns
    -------
    tuple
        The value (float64), the gradient (shape of ``x``) and the Hessian
        (``x.shape + x.shape``).

    Raises
    ------
    Unsupported
        If ``fun`` uses something this type does not implement.
    ValueError
        From ``check``.
    """
    cdef tuple shape = x.shape
    out = fun(seed(x), *args)
    if type(out) is HessianArray:
        if check is not None and (<HessianArray> out).shape != ():
            check(out)  # raises
        return extract(out, shape)
    else:
        if out is None or is_tracer(out) or isinstance(out, (Dual, HyperDual)):
            raise Unsupported("output")
        value = np.asarray(out)
        if value.dtype.kind not in "biuf":
            raise Unsupported("output")
        if check is not None and value.shape != ():
            check(value)
        n = int(np.prod(shape))
        value = np.float64(value)
        g = np.zeros(n)
        h = np.zeros((n, n))
    return value, g.reshape(shape), h.reshape(shape + shape)


# ---------------------------------------------------------------------------------------
# operands

cdef inline HessianArray _traced(object o):
    if type(o) is not HessianArray:
        raise Unsupported("operand")
    return <HessianArray> o


cdef int _check_operand(object o) except -1:
    """Raise for what this type must not combine with: tracers of other kinds
    (Unsupported: the nested path handles them) and complex numbers (TypeError)."""
    if type(o) is HessianArray or type(o) is float or type(o) is int:
        return 0
    if isinstance(o, complex) or (isinstance(o, (np.ndarray, np.generic))
                                  and np.iscomplexobj(o)):
        raise TypeError(complex_input("forward"))
    if isinstance(o, (np.ndarray, np.generic, float, int)):
        if isinstance(o, np.ndarray) and o.dtype.kind not in "biuf":
            raise Unsupported("object operand")
        return 0
    if isinstance(o, (list, tuple)):
        return 0
    raise Unsupported(f"{type(o).__name__} operand")


cdef object _constant(object o):
    """A constant operand as a float (scalar) or a C-contiguous float64 ndarray."""
    cdef type t = type(o)
    if t is float or t is int:
        return float(o)
    if t is NDARRAY:
        if cnp.PyArray_TYPE(<cnp.ndarray> o) == cnp.NPY_DOUBLE and \
                cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> o):
            return o if cnp.PyArray_NDIM(<cnp.ndarray> o) else float(o)
    if isinstance(o, (list, tuple)):
        arr = np.asarray(o)
        if arr.dtype.kind not in "biuf":
            raise Unsupported("sequence operand")
        o = arr
    if isinstance(o, np.ndarray):
        if o.dtype.kind not in "biuf":
            raise Unsupported("operand dtype")
        if o.ndim == 0:
            return float(o)
        return np.ascontiguousarray(o, dtype=np.float64)
    return float(o)


cdef object _primal(object o):
    if type(o) is HessianArray:
        return _part(<HessianArray> o, 0)
    if is_tracer(o) or isinstance(o, (Dual, HyperDual)):
        raise Unsupported("tracer operand")
    return o


cdef inline tuple _shape_of(object o):
    if type(o) is HessianArray:
        return (<HessianArray> o).shape
    if type(o) is float:
        return ()
    return (<object> o).shape


cdef object _broadcast_ids(tuple shape, tuple out_shape):
    """Element numbers of an operand of ``shape`` broadcast to ``out_shape`` (intp)."""
    ids = np.arange(_prod(shape), dtype=_INTP).reshape(shape)
    return np.ascontiguousarray(np.broadcast_to(ids, out_shape)).reshape(-1)


cdef inline Py_ssize_t _prod(tuple shape):
    cdef Py_ssize_t s = 1
    for d in shape:
        s *= <Py_ssize_t> d
    return s


# ---------------------------------------------------------------------------------------
# elementwise operations

cdef object _operator(object x, object y, Py_ssize_t idx):
    """An arithmetic operator; NotImplemented for operands of unknown types."""
    cdef type tx = type(x), ty = type(y)
    if (tx is HessianArray or tx is float or tx is int or tx is NDARRAY) and \
            (ty is HessianArray or ty is float or ty is int or ty is NDARRAY):
        if tx is NDARRAY or ty is NDARRAY:
            _check_operand(x)
            _check_operand(y)
        return _binary(x, y, idx)
    for o in (x, y):
        if type(o) is not HessianArray:
            if is_tracer(o) or isinstance(o, (Dual, HyperDual)):
                raise Unsupported("tracer operand")
            if isinstance(o, complex):
                raise TypeError(complex_input("forward"))
            if not isinstance(o, (float, int, np.ndarray, np.generic, list, tuple)):
                return NotImplemented
    _check_operand(x)
    _check_operand(y)
    return _binary(x, y, idx)


cdef HessianArray _unary(HessianArray a, Py_ssize_t idx):
    cdef Py_ssize_t size = a.size, n = a.n, P = a.npair, e, lo, hi
    cdef double* part = <double*> malloc((3 * max(size, 1) + 4 * max(n, 1))
                                         * sizeof(double))
    if part == NULL:
        raise MemoryError()
    cdef double* scratch = part + 3 * max(size, 1)
    cdef unary_kernel kern = U2[idx]
    cdef bint hz = a.hz
    cdef HessianArray r
    cdef double* Ho
    cdef const double* Ha
    try:
        with nogil:
            for e in range(size):
                kern(a.v[e], part + 3 * e)
                if part[3 * e + 2] != 0.0 and a.win[2 * e + 1] > a.win[2 * e]:
                    hz = False
            _clear_fp_flags()
        r = _new(n, size, a.shape, hz, a.tag)
        with nogil:
            for e in range(size):
                r.v[e] = part[3 * e]
                lo = a.win[2 * e]
                hi = a.win[2 * e + 1]
                r.win[2 * e] = lo
                r.win[2 * e + 1] = hi
                if hi == lo:
                    continue
                Ho = NULL if hz else r.h + e * P
                Ha = NULL if a.hz else a.h + e * P
                if _lanes_plain(r.g + e * n, Ho, n, lo, hi, a.g + e * n, Ha, lo, hi,
                                part[3 * e + 1], part[3 * e + 2], NULL, NULL, 0, 0,
                                0.0, 0.0, 0.0, scratch):
                    _lanes_careful(r.g + e * n, Ho, n, lo, hi, a.g + e * n, Ha, lo, hi,
                                   part[3 * e + 1], part[3 * e + 2], NULL, NULL, 0, 0,
                                   0.0, 0.0, 0.0, scratch)
    finally:
        free(part)
    return r


cdef object _binary(object x, object y, Py_ssize_t idx):
    """A binary rule; operands are HessianArrays or constants (checked by the caller)."""
    cdef bint tx = type(x) is HessianArray, ty = type(y) is HessianArray
    if not tx and not ty:
        raise Unsupported("no traced operand")
    if idx == I_POW and tx and (type(y) is float or type(y) is int) and y == 2:
        # x ** 2 is the table's square: the kernel of power computes x * x for the
        # exponent 2 (bit for bit), and square gives the same partials without pow and
        # log calls for the exponent's partials, which a constant exponent does not use
        return _unary(<HessianArray> x, I_SQUARE)
    cdef HessianArray a = <HessianArray> x if tx else None
    cdef HessianArray b = <HessianArray> y if ty else None
    if tx and ty and a.tag != b.tag:
        raise Unsupported("HessianArrays of two evaluations")
    if not tx:
        x = _constant(x)
    if not ty:
        y = _constant(y)
    cdef HessianArray t = a if tx else b
    cdef Py_ssize_t n = t.n, P = t.npair
    cdef tuple sx = _shape_of(x), sy = _shape_of(y), so
    # element addressing: stride 1 (same order), 0 (one element) or an index array
    cdef Py_ssize_t ssx = 1, ssy = 1, size
    cdef object ix = None, iy = None
    if sx is sy or sx == sy or not sy:
        so = sx
    elif not sx:
        so = sy
    else:
        so = tuple(np.broadcast_shapes(sx, sy))
    size = _prod(so)
    cdef Py_ssize_t nx = _prod(sx), ny = _prod(sy)
    if nx != size:
        if nx == 1:
            ssx = 0
        else:
            ix = _broadcast_ids(sx, so)
    if ny != size:
        if ny == 1:
            ssy = 0
        else:
            iy = _broadcast_ids(sy, so)
    cdef const Py_ssize_t* px = NULL if ix is None else \
        <const Py_ssize_t*> cnp.PyArray_DATA(<cnp.ndarray> ix)
    cdef const Py_ssize_t* py = NULL if iy is None else \
        <const Py_ssize_t*> cnp.PyArray_DATA(<cnp.ndarray> iy)
    # values
    cdef double cx = 0.0, cy = 0.0
    cdef const double* vx
    cdef const double* vy
    if tx:
        vx = a.v
    elif type(x) is float:
        cx = x
        vx = &cx
    else:
        vx = <const double*> cnp.PyArray_DATA(<cnp.ndarray> x)
    if ty:
        vy = b.v
    elif type(y) is float:
        cy = y
        vy = &cy
    else:
        vy = <const double*> cnp.PyArray_DATA(<cnp.ndarray> y)
    cdef bint pw = idx == I_POW or idx == I_FPOW
    cdef binary_kernel kern = B2[idx]
    cdef double* part = <double*> malloc((6 * max(size, 1) + 4 * max(n, 1))
                                         * sizeof(double))
    if part == NULL:
        raise MemoryError()
    cdef double* scratch = part + 6 * max(size, 1)
    cdef Py_ssize_t la = 0, ha = 0, lb = 0, hb = 0, lo, hi
    cdef double* o
    cdef Py_ssize_t e, ex, ey
    cdef bint hz = (not tx or a.hz) and (not ty or b.hz)
    cdef HessianArray r
    cdef const double* ga
    cdef const double* gb
    cdef const double* Ha
    cdef const double* Hb
    cdef double* Ho
    try:
        with nogil:
            for e in range(size):
                ex = px[e] if px != NULL else e * ssx
                ey = py[e] if py != NULL else e * ssy
                o = part + 6 * e
                kern(vx[ex], vy[ey], o)
                # The partials a consumer must not use (as dualad/_scalar.pyx does): a
                # constant operand has none; a zero power has no exponent partials
                # (0 * log(0)).
                if not tx:
                    o[1] = 0.0
                    o[3] = 0.0
                    o[4] = 0.0
                if not ty:
                    o[2] = 0.0
                    o[4] = 0.0
                    o[5] = 0.0
                if pw and ty and o[0] == 0.0:
                    o[2] = 0.0
                    o[4] = 0.0
                    o[5] = 0.0
                if tx and a.win[2 * ex + 1] == a.win[2 * ex]:
                    o[1] = 0.0  # an empty window: a zero gradient (no lanes to scale)
                    o[3] = 0.0
                    o[4] = 0.0
                if ty and b.win[2 * ey + 1] == b.win[2 * ey]:
                    o[2] = 0.0
                    o[4] = 0.0
                    o[5] = 0.0
                if o[3] != 0.0 or o[4] != 0.0 or o[5] != 0.0:
                    hz = False
            _clear_fp_flags()
        r = _new(n, size, so, hz, t.tag)
        with nogil:
            for e in range(size):
                ex = px[e] if px != NULL else e * ssx
                ey = py[e] if py != NULL else e * ssy
                o = part + 6 * e
                r.v[e] = o[0]
                ga = NULL
                gb = NULL
                Ha = NULL
                Hb = NULL
                if tx:
                    la = a.win[2 * ex]
                    ha = a.win[2 * ex + 1]
                    if ha > la:
                        ga = a.g + ex * n
                        Ha = NULL if a.hz else a.h + ex * P
                if ty:
                    lb = b.win[2 * ey]
                    hb = b.win[2 * ey + 1]
                    if hb > lb:
                        gb = b.g + ey * n
                        Hb = NULL if b.hz else b.h + ey * P
                # the result's window: the hull of the operands' (empty if both are)
                if ga != NULL and gb != NULL:
                    lo = la if la < lb else lb
                    hi = ha if ha > hb else hb
                elif ga != NULL:
                    lo = la
                    hi = ha
                elif gb != NULL:
                    lo = lb
                    hi = hb
                else:
                    lo = 0
                    hi = 0
                r.win[2 * e] = lo
                r.win[2 * e + 1] = hi
                if hi == lo:
                    continue
                Ho = NULL if hz else r.h + e * P
                if _lanes_plain(r.g + e * n, Ho, n, lo, hi, ga, Ha, la, ha, o[1], o[3],
                                gb, Hb, lb, hb, o[2], o[5], o[4], scratch):
                    _lanes_careful(r.g + e * n, Ho, n, lo, hi, ga, Ha, la, ha, o[1],
                                   o[3], gb, Hb, lb, hb, o[2], o[5], o[4], scratch)
    finally:
        free(part)
    return r


# ---------------------------------------------------------------------------------------
# structure: indexing, reshaping, joining -- element moves

cdef HessianArray _gather(HessianArray src, object ids, tuple shape):
    """The elements ``ids`` (intp, any shape) of ``src`` as a new array of ``shape``."""
    cdef cnp.ndarray cid = <cnp.ndarray> np.ascontiguousarray(ids, dtype=_INTP)
    cdef Py_ssize_t m = cnp.PyArray_SIZE(cid), k
    cdef const Py_ssize_t* pid = <const Py_ssize_t*> cnp.PyArray_DATA(cid)
    cdef HessianArray r = _new(src.n, m, shape, src.hz, src.tag)
    with nogil:
        for k in range(m):
            _copy_element(r, k, src, pid[k])
    return r


cdef HessianArray _rows(HessianArray a, Py_ssize_t start, Py_ssize_t step,
                        Py_ssize_t count, tuple shape):
    """``count`` blocks of ``a``'s first axis from ``start`` by ``step``."""
    cdef Py_ssize_t inner = a.size // a.shape[0] if a.shape[0] else 0
    cdef Py_ssize_t k, i
    cdef HessianArray r = _new(a.n, count * inner, shape, a.hz, a.tag)
    with nogil:
        for k in range(count):
            for i in range(inner):
                _copy_element(r, k * inner + i, a, (start + k * step) * inner + i)
    return r


cdef object _getitem(HessianArray a, object key):
    cdef Py_ssize_t start, stop, step, length, i, nd = len(a.shape)
    if nd >= 1:
        if type(key) is slice:
            PySlice_GetIndicesEx(key, a.shape[0], &start, &stop, &step, &length)
            return _rows(a, start, step, length, (length,) + a.shape[1:])
        if type(key) is int:
            i = key
            length = a.shape[0]
            if i < 0:
                i += length
            if i < 0 or i >= length:
                raise IndexError(f"index {key} is out of bounds for axis 0 with size "
                                 f"{length}")
            return _rows(a, i, 1, 1, a.shape[1:])
    _check_key(key)
    ids = np.arange(a.size, dtype=_INTP).reshape(a.shape)[key]
    return _gather(a, ids, np.shape(ids))


cdef _check_key(object key):
    parts = key if type(key) is tuple else (key,)
    for k in parts:
        if type(k) is HessianArray:
            raise TypeError("a dualad HessianArray cannot be used as an index: an index "
                            "is an integer, and converting the traced value would drop its"
                            " derivative. Index with plain integers (for example computed "
                            "from x.value), or select with np.where.")
        if is_tracer(k) or isinstance(k, (Dual, HyperDual)):
            raise Unsupported("tracer index")


cdef object _structural(object func, tuple args, dict kwargs, object data):
    """``func`` moves elements: apply it to element numbers and gather.

    ``data`` names the positions of ``args`` holding array data (the other arguments,
    shapes, axes, conditions, are passed as they are); ``"seq"``: ``args[0]`` is a
    sequence of arrays.
    """
    for k in ("out", "dtype", "casting"):
        if kwargs.get(k) is not None:
            raise Unsupported(f"{k}= in a structural function")
    sources = []
    offset = [0]

    def ids_of(o):
        if type(o) is HessianArray:
            src = <HessianArray> o
        else:
            if is_tracer(o) or isinstance(o, (Dual, HyperDual)):
                raise Unsupported("tracer operand")
            if isinstance(o, complex) or np.iscomplexobj(o):
                raise TypeError(complex_input("forward"))
            src = np.asarray(o)
            if src.dtype.kind not in "biuf":
                raise Unsupported("operand dtype")
            src = src.astype(np.float64)
        size = _prod(tuple(np.shape(src)))
        ids = np.arange(offset[0], offset[0] + size, dtype=_INTP).reshape(np.shape(src))
        sources.append(src)
        offset[0] += size
        return ids

    new_args = list(args)
    if data == "seq":
        new_args[0] = [ids_of(o) for o in args[0]]
    else:
        for i in data:
            if i < len(args):
                new_args[i] = ids_of(args[i])
    out = func(*new_args, **kwargs)
    if isinstance(out, (tuple, list)):
        return type(out)(_collect(sources, o) for o in out)
    return _collect(sources, out)


cdef object _collect(list sources, object ids):
    """Gather the elements ``ids`` from the concatenation of ``sources``."""
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise Unsupported("a non-structural function")
    cdef HessianArray pool = None, t = None
    for s in sources:
        if type(s) is HessianArray:
            if t is not None and (<HessianArray> s).tag != t.tag:
                raise Unsupported("HessianArrays of two evaluations")
            t = <HessianArray> s
    if t is None:
        # no traced source: a constant
        return np.concatenate([np.ravel(s) for s in sources])[ids]
    if len(sources) == 1:
        pool = t
    else:
        pool = _concat_pool(sources, t)
    return _gather(pool, ids, ids.shape)


cdef HessianArray _concat_pool(list sources, HessianArray t):
    cdef Py_ssize_t n = t.n, total = 0, at = 0, k, e
    cdef bint hz = True
    for src in sources:
        total += _prod(tuple(np.shape(src)))
        if type(src) is HessianArray and not (<HessianArray> src).hz:
            hz = False
    cdef HessianArray r = _new(n, total, (total,), hz, t.tag)
    cdef HessianArray h
    cdef cnp.ndarray c
    for src in sources:
        if type(src) is HessianArray:
            h = <HessianArray> src
            k = h.size
            for e in range(k):
                _copy_element(r, at + e, h, e)
        else:  # a constant: values, and empty windows
            c = <cnp.ndarray> np.ascontiguousarray(src, dtype=np.float64)
            k = cnp.PyArray_SIZE(c)
            memcpy(r.v + at, cnp.PyArray_DATA(c), k * sizeof(double))
            for e in range(at, at + k):
                r.win[2 * e] = 0
                r.win[2 * e + 1] = 0
        at += k
    return r


# ---------------------------------------------------------------------------------------
# reductions and products with constants

cdef double _pairwise_sum(const double* a, Py_ssize_t n) noexcept nogil:
    """NumPy's pairwise summation of a contiguous float64 array (numpy/_core/src/umath/
    loops_utils.h.src), so that the value of ``np.sum`` is NumPy's to the last bit."""
    cdef Py_ssize_t i, n2
    cdef double res
    cdef double r[8]
    if n < 8:
        res = -0.0
        for i in range(n):
            res = res + a[i]
        return res
    if n <= 128:
        for i in range(8):
            r[i] = a[i]
        i = 8
        while i < n - (n % 8):
            r[0] += a[i]
            r[1] += a[i + 1]
            r[2] += a[i + 2]
            r[3] += a[i + 3]
            r[4] += a[i + 4]
            r[5] += a[i + 5]
            r[6] += a[i + 6]
            r[7] += a[i + 7]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res = res + a[i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise_sum(a, n2) + _pairwise_sum(a + n2, n - n2)


cdef HessianArray _sum_all(HessianArray a, tuple shape):
    cdef Py_ssize_t n = a.n, P = a.npair, size = a.size, e, i, j, r, lo = n, hi = 0
    cdef Py_ssize_t le, he
    cdef HessianArray out = _new(n, 1, shape, a.hz, a.tag)
    # (local pointers: the debug build checks attribute access for None, with the GIL)
    cdef double* rg = out.g
    cdef double* rh = out.h
    cdef const double* ag = a.g
    cdef const double* ah = a.h
    cdef const Py_ssize_t* win = a.win
    cdef const double* src
    cdef double* dst
    with nogil:
        out.v[0] = 0.0 + _pairwise_sum(a.v, size)  # + the identity, as NumPy's reduction
        for e in range(size):  # the hull of the windows
            if win[2 * e + 1] > win[2 * e]:
                lo = win[2 * e] if win[2 * e] < lo else lo
                hi = win[2 * e + 1] if win[2 * e + 1] > hi else hi
        if hi <= lo:
            lo = 0
            hi = 0
        out.win[0] = lo
        out.win[1] = hi
        for i in range(lo, hi):
            rg[i] = 0.0
            if rh != NULL:
                for j in range(i, hi):
                    rh[_rs(i, n) + j] = 0.0
        for e in range(size):
            le = win[2 * e]
            he = win[2 * e + 1]
            src = ag + e * n
            for i in range(le, he):
                rg[i] += src[i]
            if rh != NULL:
                src = ah + e * P
                for i in range(le, he):
                    r = _rs(i, n)
                    dst = rh + r
                    for j in range(i, he):
                        dst[j] += src[r + j]
    return out


cdef object _reduce_args(object axis, object dtype, object out, object where=True):
    if out is not None or where is not True:
        raise Unsupported("reduction keywords")
    if dtype is not None and np.dtype(dtype) != np.float64:
        raise Unsupported("reduction dtype")


def _np_sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None,
            where=True):
    _reduce_args(axis, dtype, out, where)
    if initial is not None:
        return _np_sum(a, axis, dtype, out, keepdims) + initial
    if type(a) is not HessianArray:
        raise Unsupported("np.sum of a sequence")
    cdef HessianArray h = <HessianArray> a
    if axis is None:
        return _sum_all(h, (1,) * len(h.shape) if keepdims else ())
    axes = np.lib.array_utils.normalize_axis_tuple(axis, len(h.shape))
    h = _dense(h)
    v = np.sum(_view(h, 0), axis=axes, keepdims=keepdims)
    g = np.sum(_view(h, 1), axis=axes, keepdims=keepdims)
    hh = None if h.hz else np.sum(_view(h, 2), axis=axes, keepdims=keepdims)
    return _from_parts(v, g, hh, h.n, h.tag)


def _np_mean(a, axis=None, dtype=None, out=None, keepdims=False, where=True):
    _reduce_args(axis, dtype, out, where)
    if type(a) is not HessianArray:
        raise Unsupported("np.mean of a sequence")
    cdef HessianArray h = <HessianArray> a
    if axis is None:
        count = h.size
    else:
        axes = np.lib.array_utils.normalize_axis_tuple(axis, len(h.shape))
        count = _prod(tuple(h.shape[i] for i in axes))
    # as NumPy: the sum divided by the count
    return _binary(_np_sum(a, axis, None, None, keepdims), float(count), I_DIV)


cdef object _linear_lanes(object op, HessianArray h, int which, int move_from):
    lanes = op(_view(h, which))
    if move_from >= 0:
        lanes = np.moveaxis(lanes, move_from, -1)
    return lanes


cdef object _matmul(object x, object y):
    """``x @ y`` with one constant operand of at most two dimensions (or two traced
    vectors: their dot product)."""
    cdef bint tx = type(x) is HessianArray, ty = type(y) is HessianArray
    cdef HessianArray h
    if tx and ty:
        if len((<HessianArray> x).shape) == 1 and len((<HessianArray> y).shape) == 1:
            if (<HessianArray> x).shape != (<HessianArray> y).shape:
                raise ValueError(f"matmul: shapes {(<HessianArray> x).shape} and "
                                 f"{(<HessianArray> y).shape} are not aligned")
            return _sum_all(_binary(x, y, I_MUL), ())
        raise Unsupported("matmul of two traced matrices")
    if tx:
        h = _dense(<HessianArray> x)
        c = _constant(y)
        if type(c) is float or len(h.shape) == 0:
            raise ValueError("matmul: an operand is a scalar (use * instead)")
        if c.ndim > 2 or len(h.shape) > 2:
            raise Unsupported("matmul of arrays of more than two dimensions")
        v = _view(h, 0) @ c
        nd = len(h.shape)
        op = lambda lanes: np.tensordot(lanes, c, axes=(nd - 1, 0))
        g = _linear_lanes(op, h, 1, nd - 1)
        hh = None if h.hz else _linear_lanes(op, h, 2, nd - 1)
        return _from_parts(v, g, hh, h.n, h.tag)
    h = _dense(<HessianArray> y)
    c = _constant(x)
    if type(c) is float or len(h.shape) == 0:
        raise ValueError("matmul: an operand is a scalar (use * instead)")
    if c.ndim > 2 or len(h.shape) > 2:
        raise Unsupported("matmul of arrays of more than two dimensions")
    v = c @ _view(h, 0)
    op = lambda lanes: np.tensordot(c, lanes, axes=(c.ndim - 1, 0))
    g = _linear_lanes(op, h, 1, -1)
    hh = None if h.hz else _linear_lanes(op, h, 2, -1)
    return _from_parts(v, g, hh, h.n, h.tag)


def _np_dot(a, b, out=None):
    if out is not None:
        raise Unsupported("dot with out=")
    _check_operand(a)
    _check_operand(b)
    if type(a) is not HessianArray and np.ndim(a) == 0 or \
            type(b) is not HessianArray and np.ndim(b) == 0:
        return _binary(a, b, I_MUL)
    if type(a) is HessianArray and not (<HessianArray> a).shape or \
            type(b) is HessianArray and not (<HessianArray> b).shape:
        return _binary(a, b, I_MUL)
    return _matmul(a, b)


def _np_where(condition, x=None, y=None):
    if x is None or y is None:
        raise Unsupported("np.where with one argument")
    if type(condition) is HessianArray:
        raise Unsupported("a traced condition")
    return _structural(np.where, (condition, x, y), {}, (1, 2))


def _np_shape(a):
    return a.shape


def _np_ndim(a):
    return len(a.shape)


def _np_size(a, axis=None):
    return a.size if axis is None else a.shape[axis]


cdef dict _FUNCTIONS = {np.sum: _np_sum, np.mean: _np_mean, np.dot: _np_dot,
                        np.where: _np_where, np.shape: _np_shape, np.ndim: _np_ndim,
                        np.size: _np_size}

#: Functions that only move elements, and the positions of their array arguments.
cdef dict _STRUCTURAL = {
    np.reshape: (0,), np.ravel: (0,), np.transpose: (0,), np.squeeze: (0,),
    np.expand_dims: (0,), np.swapaxes: (0,), np.moveaxis: (0,), np.flip: (0,),
    np.broadcast_to: (0,), np.atleast_1d: (0,), np.copy: (0,), np.roll: (0,),
    np.take: (0,), np.repeat: (0,), np.tile: (0,),
    np.concatenate: "seq", np.stack: "seq", np.hstack: "seq", np.vstack: "seq",
}
