"""Scalar forward-mode numbers: ``Dual`` (k first-order partials) and ``HyperDual``.

Design note
-----------
This module owns the two scalar extension types and their C arithmetic.  It does not own
any calculus: every operation calls the kernels generated from the rule table
(``dualad/_kernels.pxd``) and combines partials mechanically,

* Dual:      tangent_out = sum_i d_i f * tangent_i (every lane);
* HyperDual: eps12_out = sum_i d_i f * eps12_i + sum_ij d_ij f * eps1_i * eps2_j.

The C fast path covers a Dual (or HyperDual) meeting a float/int or a value of its own tag.
Everything else (ndarrays, DualArrays, values of another tag, i.e. nesting) is delegated
to the generic path in :mod:`dualad._array`, which works on NumPy arrays and nests.

A zero annihilates on either side of a product: ``_scale(d, 0) == _scale(0, t) == 0`` even
where the other factor is inf or nan, so ``sqrt(x**2)`` at 0 or a masked branch gives a
finite derivative (DESIGN.md, "Errors").
"""

cimport cython
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.math cimport isnan

from dualad._fpflags cimport clear_fp_flags as _clear_fp_flags

import numpy as np

from dualad.rules._elementwise import ufunc_of

from dualad._kernels cimport (unary_kernel, binary_kernel, fill_tables, unary_names,
                              binary_names, N_UNARY, N_BINARY)
from dualad._errors import float_conversion, complex_input, MixedTracerError, \
    MIXED_HYPERDUAL, unsupported_function, NoRuleError
from dualad.rules._elementwise import BOOLEAN_UFUNCS

# ---------------------------------------------------------------------------------------
# kernel tables
cdef unary_kernel U1[N_UNARY]
cdef unary_kernel U2[N_UNARY]
cdef binary_kernel B1[N_BINARY]
cdef binary_kernel B2[N_BINARY]
cdef binary_kernel B1X[N_BINARY]
cdef binary_kernel B1Y[N_BINARY]
fill_tables(U1, U2, B1, B2, B1X, B1Y)

UNARY_NAMES = unary_names()
BINARY_NAMES = binary_names()
cdef dict UNARY_INDEX = {ufunc_of(n): i for i, n in enumerate(UNARY_NAMES)}
cdef dict BINARY_INDEX = {ufunc_of(n): i for i, n in enumerate(BINARY_NAMES)}
cdef dict METHOD_INDEX = {n: (1, i) for i, n in enumerate(UNARY_NAMES)}
METHOD_INDEX.update({n: (2, i) for i, n in enumerate(BINARY_NAMES)})
cdef frozenset BOOLEAN = frozenset(ufunc_of(n) for n in BOOLEAN_UFUNCS)

cdef Py_ssize_t I_ADD = BINARY_NAMES.index("add")
cdef Py_ssize_t I_SUB = BINARY_NAMES.index("subtract")
cdef Py_ssize_t I_MUL = BINARY_NAMES.index("multiply")
cdef Py_ssize_t I_DIV = BINARY_NAMES.index("true_divide")
cdef Py_ssize_t I_POW = BINARY_NAMES.index("power")
cdef Py_ssize_t I_FPOW = BINARY_NAMES.index("float_power")
cdef Py_ssize_t I_NEG = UNARY_NAMES.index("negative")
cdef Py_ssize_t I_POS = UNARY_NAMES.index("positive")
cdef Py_ssize_t I_ABS = UNARY_NAMES.index("absolute")

_add, _sub, _mul, _div, _pow = np.add, np.subtract, np.multiply, np.true_divide, np.power
_np_equal, _np_not_equal = np.equal, np.not_equal


cdef bint _all_scalars(tuple inputs):
    """No array among the inputs (0-d arrays count as scalars: NumPy makes one of a
    NumPy scalar on the left of ``==`` before asking us)."""
    for i in inputs:
        if (isinstance(i, np.ndarray) and i.ndim > 0) or hasattr(i, "tangent"):
            return False
    return True


cdef object _scalar_eq(tuple inputs, type kind):
    """``a == b`` for a scalar dualad value and a number, with ``kind.__eq__``."""
    a, b = inputs
    if type(a) is not kind:
        a, b = b, a
    if isinstance(b, np.ndarray):
        b = b.item()
    return a == b


def _kernel(name, *args):
    """Evaluate the compiled kernels of rule ``name`` (testing aid).

    Returns ``(ans, first, second)``: the value, the tuple of first partials from the
    first-order kernel and the tuple ``(first..., second...)`` from the second-order one.
    """
    cdef double out1[3]
    cdef double out2[6]
    if name in UNARY_NAMES:
        i = UNARY_NAMES.index(name)
        U1[i](args[0], out1)
        U2[i](args[0], out2)
        return out1[0], (out1[1],), (out2[1], out2[2])
    i = BINARY_NAMES.index(name)
    B1[i](args[0], args[1], out1)
    B2[i](args[0], args[1], out2)
    return out1[0], (out1[1], out1[2]), (out2[1], out2[2], out2[3], out2[4], out2[5])


cdef inline double _scale(double d, double t) noexcept nogil:
    """d * t, except that a zero on either side annihilates (0 * inf = 0)."""
    if t == 0.0 or d == 0.0:
        return 0.0
    return d * t


cdef inline bint _is_pow(Py_ssize_t idx) noexcept nogil:
    return idx == I_POW or idx == I_FPOW


# The generic path lives in dualad._array; imported lazily (it cimports this module).
cdef object _arraymod = None
cdef object _DualArray = None   # dualad._array.DualArray, once that module is loaded


cdef object _am():
    global _arraymod, _DualArray
    if _arraymod is None:
        import dualad._array as m
        _arraymod = m
        _DualArray = m.DualArray
    return _arraymod


cdef inline bint _is_real_number(object o):
    # float covers np.float64; bool is an int; other real NumPy scalars (float32, int64)
    # are constants too, taken exactly into float64.
    return (isinstance(o, float) or isinstance(o, int)
            or (isinstance(o, np.number) and not isinstance(o, np.complexfloating)))


cdef object _reject_complex(object o, str mode="forward"):
    if isinstance(o, complex) or (isinstance(o, np.generic) and np.iscomplexobj(o)):
        raise TypeError(complex_input(mode))
    return None


# ---------------------------------------------------------------------------------------
# Dual

cdef Dual _new_dual(double value, Py_ssize_t k, Py_ssize_t tag):
    cdef Dual d = Dual.__new__(Dual)
    d.value = value
    d.tag = tag
    d.k = k
    if k > INLINE_LANES:
        d.p = <double*> PyMem_Malloc(k * sizeof(double))
        if d.p == NULL:
            d.p = d.buf
            d.k = 0
            raise MemoryError()
    return d


cdef Dual _dual_unary(Dual a, unary_kernel kern):
    cdef double out[2]
    cdef Py_ssize_t i
    kern(a.value, out)
    _clear_fp_flags()
    cdef Dual r = _new_dual(out[0], a.k, a.tag)
    for i in range(a.k):
        r.p[i] = _scale(out[1], a.p[i])
    return r


cdef Dual _dual_dd(Dual a, Dual b, Py_ssize_t idx):
    cdef double out[3]
    cdef Py_ssize_t i
    if a.k != b.k:
        raise ValueError(f"Duals of one differentiation (tag {a.tag}) carry different "
                         f"numbers of partials ({a.k} and {b.k})")
    B1[idx](a.value, b.value, out)
    _clear_fp_flags()
    if _is_pow(idx) and out[0] == 0.0:
        out[2] = 0.0  # zero base: d/dy x**y = x**y log x -> 0 (not 0 * -inf)
    cdef Dual r = _new_dual(out[0], a.k, a.tag)
    for i in range(a.k):
        r.p[i] = _scale(out[1], a.p[i]) + _scale(out[2], b.p[i])
    return r


cdef Dual _dual_dc(Dual a, double c, Py_ssize_t idx):
    """a (op) c with c constant: only the first partial is used."""
    cdef double out[3]
    cdef Py_ssize_t i
    B1X[idx](a.value, c, out)
    _clear_fp_flags()
    cdef Dual r = _new_dual(out[0], a.k, a.tag)
    for i in range(a.k):
        r.p[i] = _scale(out[1], a.p[i])
    return r


cdef Dual _dual_cd(double c, Dual b, Py_ssize_t idx):
    """c (op) b with c constant: only the second partial is used."""
    cdef double out[3]
    cdef Py_ssize_t i
    B1Y[idx](c, b.value, out)
    _clear_fp_flags()
    if _is_pow(idx) and out[0] == 0.0:
        out[2] = 0.0
    cdef Dual r = _new_dual(out[0], b.k, b.tag)
    for i in range(b.k):
        r.p[i] = _scale(out[2], b.p[i])
    return r


cdef object _generic(object ufunc, tuple inputs, dict kwargs=None):
    """Hand an operation the C path does not cover to the NumPy (DualArray) path."""
    return _am().generic_ufunc(ufunc, inputs, kwargs or {})


cdef object _dual_binop(object x, object y, Py_ssize_t idx, object ufunc):
    cdef Dual a
    cdef Dual b
    if type(x) is Dual:
        a = <Dual> x
        if type(y) is Dual:
            b = <Dual> y
            if a.tag == b.tag:
                return _dual_dd(a, b, idx)
            return _generic(ufunc, (x, y))
        if _is_real_number(y):
            return _dual_dc(a, y, idx)
    elif _is_real_number(x):
        return _dual_cd(x, <Dual> y, idx)
    return _generic(ufunc, (x, y))


cdef type NDARRAY = np.ndarray
cdef list BINARY_UFUNCS = [ufunc_of(n) for n in BINARY_NAMES]


cdef object _dual_op(Dual a, object other, Py_ssize_t idx, bint reflected):
    """An operator method: C paths for same-tag Duals and exact floats/ints first."""
    cdef Dual b
    cdef double c
    if type(other) is Dual:
        b = <Dual> other
        if b.tag == a.tag:
            return _dual_dd(b, a, idx) if reflected else _dual_dd(a, b, idx)
    elif type(other) is float or type(other) is int:
        c = other
        return _dual_cd(c, a, idx) if reflected else _dual_dc(a, c, idx)
    if type(other) is NDARRAY or (type(other) is _DualArray and _DualArray is not None):
        r = _am().fast_binary(other, a, idx, _is_pow(idx)) if reflected else \
            _am().fast_binary(a, other, idx, _is_pow(idx))
        if r is not None:
            return r
    if not _operand_ok(other):
        return NotImplemented
    if reflected:
        return _dual_binop(other, a, idx, BINARY_UFUNCS[idx])
    return _dual_binop(a, other, idx, BINARY_UFUNCS[idx])


cdef inline bint _operand_ok(object o):
    """Whether an operator method should handle ``o`` (else NotImplemented)."""
    _reject_complex(o)
    if type(o) is HyperDual:
        raise MixedTracerError(MIXED_HYPERDUAL)
    return (_is_real_number(o) or isinstance(o, (Dual, np.ndarray, np.generic))
            or hasattr(o, "__array_ufunc__") and not isinstance(o, HyperDual))


cdef class _Scalar:
    """What Dual and HyperDual share: the primal value, the tag, comparisons, refusals.

    Ordering compares values (so user code can branch); ``==`` compares every component
    (``_equals`` in each subclass).  ``float()``/``int()`` would drop the derivative and
    raise.  NumPy's object-dtype loops call methods named like the ufunc, so an object
    array of these scalars (``np.array([d1, d2])``) supports ``np.sin`` and friends
    through ``__getattr__``.
    """

    cdef object _equals(self, object other):
        return NotImplemented

    cdef object _hash(self):
        return hash(self.value)

    def __eq__(self, other):
        return self._equals(other)

    def __ne__(self, other):
        r = self._equals(other)
        return r if r is NotImplemented else not r

    def __hash__(self):
        return self._hash()

    def __lt__(self, other):
        v = _primal_or_none(other)
        return NotImplemented if v is None else self.value < v

    def __le__(self, other):
        v = _primal_or_none(other)
        return NotImplemented if v is None else self.value <= v

    def __gt__(self, other):
        v = _primal_or_none(other)
        return NotImplemented if v is None else self.value > v

    def __ge__(self, other):
        v = _primal_or_none(other)
        return NotImplemented if v is None else self.value >= v

    @property
    def shape(self):
        """tuple: ``()``, as for a NumPy scalar."""
        return ()

    @property
    def ndim(self):
        """int: 0, as for a NumPy scalar."""
        return 0

    @property
    def size(self):
        """int: 1, as for a NumPy scalar."""
        return 1

    def __float__(self):
        raise TypeError(float_conversion(type(self).__name__,
                                         "float() or a math-module function"))

    def __int__(self):
        raise TypeError(float_conversion(type(self).__name__, "int()"))

    def __index__(self):
        raise TypeError(float_conversion(type(self).__name__, "an integer conversion"))

    def __complex__(self):
        raise TypeError(float_conversion(type(self).__name__, "complex()"))

    def __bool__(self):
        return self.value != 0.0

    def __format__(self, spec):
        # f"{x:.3f}" in a progress message formats the value; repr shows everything
        return format(self.value, spec) if spec else repr(self)

    def __pos__(self):
        return self

    # No derivative rule exists for these: going through the ufunc gives the error that
    # names numpy.remainder / numpy.floor_divide and the mode.
    def __mod__(self, other):
        return np.remainder(self, other)

    def __rmod__(self, other):
        return np.remainder(other, self)

    def __floordiv__(self, other):
        return np.floor_divide(self, other)

    def __rfloordiv__(self, other):
        return np.floor_divide(other, self)

    def __getattr__(self, name):
        entry = METHOD_INDEX.get(name)
        if entry is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute "
                                 f"{name!r}")
        ufunc = ufunc_of(name)
        if entry[0] == 1:
            return lambda: ufunc(self)
        return lambda other: ufunc(self, other)


@cython.final
@cython.freelist(256)
cdef class Dual(_Scalar):
    """Dual(value, partials=(1.0,), tag=0)

    A float64 value with ``k`` first-order partials: forward mode's scalar.

    Arithmetic, comparisons and NumPy ufuncs (``np.sin(d)``, ``np.maximum(d, 0.0)``) on
    a ``Dual`` propagate the partials exactly; the derivative rules come from dualad's
    rule table.  A ``Dual`` is immutable.  Usually you do not build one yourself: the
    transforms (:func:`dualad.derivative`, :func:`dualad.jacobian`, ...) pass them to
    your function.

    Parameters
    ----------
    value : float
        The primal value.
    partials : sequence of float, optional
        The partial derivatives (one per lane), default ``(1.0,)``.
    tag : int, optional
        The differentiation this number belongs to.  Values of different tags never
        mix their partials (nested differentiation).

    Attributes
    ----------
    value : float
        The primal value.
    partials : ndarray, shape (k,)
        A copy of the partials.
    tag : int
        The tag.

    Notes
    -----
    ``float(d)``, ``int(d)`` and ``math.sin(d)`` raise ``TypeError``: they would drop
    the derivative.  Ordering comparisons (``<``, ``>``...) compare values, so code can
    branch; ``==`` compares all components (value, partials and tag).

    Examples
    --------
    >>> import numpy as np
    >>> from dualad import Dual
    >>> x = Dual(2.0, [1.0])
    >>> y = x * np.sin(x)
    >>> round(y.value, 6), np.round(y.partials, 6)
    (1.818595, array([0.077004]))
    """

    __array_priority__ = 100.0

    def __cinit__(self):
        self.p = self.buf
        self.k = -1  # not yet initialised; the factory and __init__ set it

    def __init__(self, value, partials=(1.0,), tag=0):
        if self.k != -1:
            raise TypeError("Dual is immutable")
        _reject_complex(value)
        if isinstance(value, (Dual, HyperDual)) or not _is_real_number(value) and \
                not isinstance(value, np.number):
            raise TypeError(f"Dual value must be a real number, not "
                            f"{type(value).__name__}")
        parts = np.asarray(partials)
        if np.iscomplexobj(parts):
            raise TypeError(complex_input("forward"))
        parts = np.ascontiguousarray(parts, dtype=np.float64)
        if parts.ndim != 1:
            raise ValueError(f"partials must be one-dimensional, got shape {parts.shape}")
        cdef Py_ssize_t k = parts.shape[0], i
        cdef const double[::1] pv = parts
        if k > INLINE_LANES:
            self.p = <double*> PyMem_Malloc(k * sizeof(double))
            if self.p == NULL:
                self.p = self.buf
                raise MemoryError()
        for i in range(k):
            self.p[i] = pv[i]
        self.k = k
        self.value = float(value)
        self.tag = int(tag)

    def __dealloc__(self):
        if self.p != self.buf:
            PyMem_Free(self.p)
            self.p = self.buf

    @property
    def partials(self):
        """ndarray, shape (k,): a copy of the partial derivatives."""
        out = np.empty(max(self.k, 0))
        cdef double[::1] ov = out
        cdef Py_ssize_t i
        for i in range(self.k):
            ov[i] = self.p[i]
        return out

    def __reduce__(self):
        return (Dual, (self.value, tuple(self.partials.tolist()), self.tag))

    def __repr__(self):
        return (f"Dual({self.value!r}, partials={self.partials.tolist()!r}, "
                f"tag={self.tag})")

    # -- arithmetic ----------------------------------------------------------------
    def __add__(self, other):
        return _dual_op(self, other, I_ADD, False)

    def __radd__(self, other):
        return _dual_op(self, other, I_ADD, True)

    def __sub__(self, other):
        return _dual_op(self, other, I_SUB, False)

    def __rsub__(self, other):
        return _dual_op(self, other, I_SUB, True)

    def __mul__(self, other):
        return _dual_op(self, other, I_MUL, False)

    def __rmul__(self, other):
        return _dual_op(self, other, I_MUL, True)

    def __truediv__(self, other):
        return _dual_op(self, other, I_DIV, False)

    def __rtruediv__(self, other):
        return _dual_op(self, other, I_DIV, True)

    def __pow__(self, other, mod):
        if mod is not None:
            return NotImplemented
        return _dual_op(self, other, I_POW, False)

    def __rpow__(self, other, mod):
        if mod is not None:
            return NotImplemented
        return _dual_op(self, other, I_POW, True)

    def __neg__(self):
        return _dual_unary(self, U1[I_NEG])

    def __abs__(self):
        return _dual_unary(self, U1[I_ABS])

    cdef object _equals(self, object other):
        cdef Dual o
        cdef Py_ssize_t i
        if type(other) is Dual:
            o = <Dual> other
            if o.value != self.value or o.k != self.k or o.tag != self.tag:
                return False
            for i in range(self.k):
                if o.p[i] != self.p[i]:
                    return False
            return True
        if _is_real_number(other):
            if self.value != other:
                return False
            for i in range(self.k):
                if self.p[i] != 0.0:
                    return False
            return True
        return NotImplemented

    cdef object _hash(self):
        cdef Py_ssize_t i
        for i in range(self.k):
            if self.p[i] != 0.0:
                return hash((self.value, tuple(self.partials.tolist()), self.tag))
        return hash(self.value)

    # -- NumPy protocols -------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "__call__" and not kwargs:
            idx = UNARY_INDEX.get(ufunc)
            if idx is not None and len(inputs) == 1:
                return _dual_unary(self, U1[<Py_ssize_t> idx])
            idx = BINARY_INDEX.get(ufunc)
            if idx is not None and len(inputs) == 2:
                _reject_complex(inputs[0])
                _reject_complex(inputs[1])
                return _dual_binop(inputs[0], inputs[1], <Py_ssize_t> idx, ufunc)
            if (ufunc is _np_equal or ufunc is _np_not_equal) and _all_scalars(inputs):
                # np.float64(2.0) == d lands here: keep the semantics of Dual.__eq__
                eq = _scalar_eq(inputs, Dual)
                return np.bool_(eq if ufunc is _np_equal else not eq)
            if ufunc in BOOLEAN:
                return ufunc(*[_primal_of(i) for i in inputs])
        return _generic(ufunc, inputs, kwargs) if method == "__call__" else \
            _am().generic_ufunc_method(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return _am().generic_array_function(func, types, args, kwargs)



cdef object _primal_of(object o):
    if type(o) is Dual:
        return (<Dual> o).value
    if type(o) is HyperDual:
        return (<HyperDual> o).value
    return o


cdef object _primal_or_none(object o):
    if type(o) is Dual:
        return (<Dual> o).value
    if type(o) is HyperDual:
        return (<HyperDual> o).value
    if _is_real_number(o) or isinstance(o, np.number):
        return o
    return None


# ---------------------------------------------------------------------------------------
# HyperDual

cdef HyperDual _new_hyperdual(double value, double eps1, double eps2, double eps12,
                              Py_ssize_t tag):
    cdef HyperDual h = HyperDual.__new__(HyperDual)
    h.value = value
    h.eps1 = eps1
    h.eps2 = eps2
    h.eps12 = eps12
    h.tag = tag
    h.ready = True
    return h


cdef HyperDual _hd_unary(HyperDual a, unary_kernel kern2):
    cdef double out[3]
    kern2(a.value, out)
    _clear_fp_flags()
    # eps12 = f' a12 + f'' a1 a2; a zero factor annihilates the f'' term.
    cdef double cross = 0.0
    if a.eps1 != 0.0 and a.eps2 != 0.0:
        cross = out[2] * a.eps1 * a.eps2
    return _new_hyperdual(out[0], _scale(out[1], a.eps1), _scale(out[1], a.eps2),
                          _scale(out[1], a.eps12) + cross, a.tag)


cdef inline double _prod2(double d, double s, double t) noexcept nogil:
    if s == 0.0 or t == 0.0:
        return 0.0
    return d * s * t


cdef HyperDual _hd_hh(HyperDual a, HyperDual b, Py_ssize_t idx):
    cdef double o[6]
    B2[idx](a.value, b.value, o)
    _clear_fp_flags()
    if _is_pow(idx) and o[0] == 0.0:
        o[2] = 0.0
        o[4] = 0.0
        o[5] = 0.0
    cdef double e12 = (_scale(o[1], a.eps12) + _scale(o[2], b.eps12)
                       + _prod2(o[3], a.eps1, a.eps2)
                       + _prod2(o[4], a.eps1, b.eps2) + _prod2(o[4], b.eps1, a.eps2)
                       + _prod2(o[5], b.eps1, b.eps2))
    return _new_hyperdual(o[0], _scale(o[1], a.eps1) + _scale(o[2], b.eps1),
                          _scale(o[1], a.eps2) + _scale(o[2], b.eps2), e12, a.tag)


cdef HyperDual _hd_hc(HyperDual a, double c, Py_ssize_t idx):
    cdef double o[6]
    B2[idx](a.value, c, o)
    _clear_fp_flags()
    return _new_hyperdual(o[0], _scale(o[1], a.eps1), _scale(o[1], a.eps2),
                          _scale(o[1], a.eps12) + _prod2(o[3], a.eps1, a.eps2), a.tag)


cdef HyperDual _hd_ch(double c, HyperDual b, Py_ssize_t idx):
    cdef double o[6]
    B2[idx](c, b.value, o)
    _clear_fp_flags()
    if _is_pow(idx) and o[0] == 0.0:
        o[2] = 0.0
        o[5] = 0.0
    return _new_hyperdual(o[0], _scale(o[2], b.eps1), _scale(o[2], b.eps2),
                          _scale(o[2], b.eps12) + _prod2(o[5], b.eps1, b.eps2), b.tag)


cdef object _via_objects(object ufunc, str method, tuple inputs, dict kwargs):
    """Apply a ufunc to HyperDuals mixed with arrays through NumPy's object loops."""
    conv = []
    for i in inputs:
        _reject_complex(i)
        if isinstance(i, HyperDual):
            box = np.empty((), dtype=object)
            box[()] = i
            conv.append(box)
        elif isinstance(i, Dual) or hasattr(i, "tangent") or hasattr(i, "tape"):
            raise MixedTracerError(MIXED_HYPERDUAL)
        elif isinstance(i, np.ndarray):
            if np.iscomplexobj(i):
                raise TypeError(complex_input("forward"))
            conv.append(i.astype(object))
        else:
            conv.append(i)
    out = getattr(ufunc, method)(*conv, **kwargs)
    if isinstance(out, np.ndarray) and out.ndim == 0:
        return out[()]
    return out


cdef object _hd_binop(object x, object y, Py_ssize_t idx, object ufunc):
    cdef HyperDual a
    cdef HyperDual b
    if type(x) is HyperDual:
        a = <HyperDual> x
        if type(y) is HyperDual:
            b = <HyperDual> y
            if a.tag == b.tag:
                return _hd_hh(a, b, idx)
            raise TypeError(f"HyperDuals of different tags ({a.tag}, {b.tag}) cannot be "
                            "combined: nested differentiation uses Dual values")
        if _is_real_number(y):
            return _hd_hc(a, y, idx)
    elif _is_real_number(x):
        return _hd_ch(x, <HyperDual> y, idx)
    return _via_objects(ufunc, "__call__", (x, y), {})


cdef inline bint _hd_operand_ok(object o):
    _reject_complex(o)
    if type(o) is Dual or hasattr(o, "tangent") or hasattr(o, "tape"):
        raise MixedTracerError(MIXED_HYPERDUAL)
    return _is_real_number(o) or isinstance(o, (HyperDual, np.ndarray, np.generic))


@cython.final
@cython.freelist(256)
cdef class HyperDual(_Scalar):
    """HyperDual(value, eps1=1.0, eps2=1.0, eps12=0.0, tag=0)

    A hyper-dual number ``value + eps1 e1 + eps2 e2 + eps12 e1 e2`` with
    ``e1**2 = e2**2 = 0``: exact second derivatives without a tape.

    If ``h = f(HyperDual(x, 1, 1, 0))`` then ``h.eps1 == h.eps2 == f'(x)`` and
    ``h.eps12 == f''(x)``, with no truncation error.  With ``eps1 = u`` and
    ``eps2 = v`` for two directions, ``eps12`` is the mixed second directional
    derivative ``u^T H v``.  Operators, comparisons and NumPy ufuncs work as for
    :class:`Dual`; arrays of HyperDuals go through NumPy's object loops.

    Parameters
    ----------
    value : float
        The primal value.
    eps1, eps2 : float, optional
        The two first-order parts (default 1.0).
    eps12 : float, optional
        The cross (second-order) part (default 0.0).
    tag : int, optional
        The differentiation this number belongs to.

    Attributes
    ----------
    value : float
        The primal value.
    eps1, eps2 : float
        The first-order parts.
    eps12 : float
        The cross part: the second derivative when ``eps1 = eps2 = 1``.
    tag : int
        The tag.

    Examples
    --------
    >>> import numpy as np
    >>> from dualad import HyperDual
    >>> x = HyperDual(0.5)
    >>> h = x * np.exp(x)                  # f(x) = x exp(x)
    >>> print(f"{h.eps1:.10f} {(1 + 0.5) * np.exp(0.5):.10f}")   # f'(x) = (1 + x) e^x
    2.4730819061 2.4730819061
    >>> print(f"{h.eps12:.10f} {(2 + 0.5) * np.exp(0.5):.10f}")  # f''(x) = (2 + x) e^x
    4.1218031768 4.1218031768
    """

    __array_priority__ = 100.0

    def __init__(self, value, eps1=1.0, eps2=1.0, eps12=0.0, tag=0):
        if self.ready:
            raise TypeError("HyperDual is immutable")
        for part in (value, eps1, eps2, eps12):
            _reject_complex(part)
            if isinstance(part, (Dual, HyperDual)) or not (
                    _is_real_number(part) or isinstance(part, np.number)):
                raise TypeError("HyperDual parts must be real numbers, not "
                                f"{type(part).__name__}")
        self.value = float(value)
        self.eps1 = float(eps1)
        self.eps2 = float(eps2)
        self.eps12 = float(eps12)
        self.tag = int(tag)
        self.ready = True

    def __reduce__(self):
        return (HyperDual, (self.value, self.eps1, self.eps2, self.eps12, self.tag))

    def __repr__(self):
        return (f"HyperDual({self.value!r}, eps1={self.eps1!r}, eps2={self.eps2!r}, "
                f"eps12={self.eps12!r}, tag={self.tag})")

    def __add__(self, other):
        if not _hd_operand_ok(other):
            return NotImplemented
        return _hd_binop(self, other, I_ADD, _add)

    def __radd__(self, other):
        if not _hd_operand_ok(other):
            return NotImplemented
        return _hd_binop(other, self, I_ADD, _add)

    def __sub__(self, other):
        if not _hd_operand_ok(other):
            return NotImplemented
        return _hd_binop(self, other, I_SUB, _sub)

    def __rsub__(self, other):
        if not _hd_operand_ok(other):
            return NotImplemented
        return _hd_binop(other, self, I_SUB, _sub)

    def __mul__(self, other):
        if not _hd_operand_ok(other):
            return NotImplemented
        return _hd_binop(self, other, I_MUL, _mul)

    def __rmul__(self, other):
        if not _hd_operand_ok(other):
            return NotImplemented
        return _hd_binop(other, self, I_MUL, _mul)

    def __truediv__(self, other):
        if not _hd_operand_ok(other):
            return NotImplemented
        return _hd_binop(self, other, I_DIV, _div)

    def __rtruediv__(self, other):
        if not _hd_operand_ok(other):
            return NotImplemented
        return _hd_binop(other, self, I_DIV, _div)

    def __pow__(self, other, mod):
        if mod is not None or not _hd_operand_ok(other):
            return NotImplemented
        return _hd_binop(self, other, I_POW, _pow)

    def __rpow__(self, other, mod):
        if mod is not None or not _hd_operand_ok(other):
            return NotImplemented
        return _hd_binop(other, self, I_POW, _pow)

    def __neg__(self):
        return _hd_unary(self, U2[I_NEG])

    def __abs__(self):
        return _hd_unary(self, U2[I_ABS])

    cdef object _equals(self, object other):
        if type(other) is HyperDual:
            o = <HyperDual> other
            return (o.value == self.value and o.eps1 == self.eps1 and o.eps2 == self.eps2
                    and o.eps12 == self.eps12 and o.tag == self.tag)
        if _is_real_number(other):
            return (self.value == other and self.eps1 == 0.0 and self.eps2 == 0.0
                    and self.eps12 == 0.0)
        return NotImplemented

    cdef object _hash(self):
        if self.eps1 == 0.0 and self.eps2 == 0.0 and self.eps12 == 0.0:
            return hash(self.value)
        return hash((self.value, self.eps1, self.eps2, self.eps12, self.tag))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "__call__" and not kwargs:
            idx = UNARY_INDEX.get(ufunc)
            if idx is not None and len(inputs) == 1:
                return _hd_unary(self, U2[<Py_ssize_t> idx])
            idx = BINARY_INDEX.get(ufunc)
            if idx is not None and len(inputs) == 2:
                return _hd_binop(inputs[0], inputs[1], <Py_ssize_t> idx, ufunc)
            if (ufunc is _np_equal or ufunc is _np_not_equal) and _all_scalars(inputs):
                eq = _scalar_eq(inputs, HyperDual)
                return np.bool_(eq if ufunc is _np_equal else not eq)
            if ufunc in BOOLEAN:
                return ufunc(*[_primal_of(i) for i in inputs])
        if ufunc not in UNARY_INDEX and ufunc not in BINARY_INDEX \
                and ufunc is not np.matmul:
            from dualad.rules import registry
            raise NoRuleError(unsupported_function(registry.public_name(ufunc),
                                                 "forward (HyperDual)"))
        return _via_objects(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        # Arrays of HyperDuals are object arrays: NumPy runs the function on them, for
        # the functions dualad has forward rules for (an allow-list, as everywhere);
        # custom rules (defrule) are written for Dual values and do not apply.
        from dualad.rules import registry
        if not registry.has_builtin_rule(func):
            if func in registry.registered("forward"):
                # a defrule rule: derivative(order=2) falls back to nested Dual sweeps
                raise MixedTracerError(f"the custom rule for {registry.public_name(func)}"
                                       " takes Dual values, not HyperDual ones")
            raise NoRuleError(unsupported_function(registry.public_name(func),
                                                 "forward (HyperDual)"))

        def conv(a):
            if isinstance(a, HyperDual):
                box = np.empty((), dtype=object)
                box[()] = a
                return box
            if isinstance(a, (list, tuple)):
                return type(a)(conv(b) for b in a)
            return a
        out = func._implementation(*conv(tuple(args)), **kwargs)
        if isinstance(out, np.ndarray) and out.ndim == 0 and out.dtype == object:
            return out[()]
        return out



# ---------------------------------------------------------------------------------------
# tags: one increasing counter for the whole process (the GIL makes the increment atomic)

cdef Py_ssize_t _LAST_TAG = 0


cpdef Py_ssize_t new_tag() noexcept:
    """Return a fresh tag, larger than every tag handed out before."""
    global _LAST_TAG
    _LAST_TAG += 1
    return _LAST_TAG


# ---------------------------------------------------------------------------------------
# engine helpers (fast seeding and extraction for scalar derivatives)

cpdef Dual seed_dual(double value, Py_ssize_t tag):
    """A Dual with one lane set to 1: the input of a scalar derivative."""
    cdef Dual d = _new_dual(value, 1, tag)
    d.p[0] = 1.0
    return d


cpdef HyperDual seed_hyperdual(double value, Py_ssize_t tag):
    """A HyperDual with eps1 = eps2 = 1: the input of a scalar second derivative."""
    return _new_hyperdual(value, 1.0, 1.0, 0.0, tag)


cpdef object dual_lane(object d, Py_ssize_t tag, Py_ssize_t lane):
    """Partial ``lane`` of a Dual of ``tag``, or None if ``d`` is not such a Dual."""
    if type(d) is Dual and (<Dual> d).tag == tag:
        if lane >= (<Dual> d).k:
            raise IndexError("lane out of range")
        return (<Dual> d).p[lane]
    return None


cpdef object derivative1(object fun, double x, tuple args):
    """The first derivative of ``fun`` at scalar ``x`` in one Dual evaluation.

    Returns the derivative as a float when ``fun`` returned a Dual of this evaluation
    (the common case, handled without leaving C); otherwise the tuple ``(out, tag)`` so
    that the caller can extract arrays, constants and values of enclosing levels.
    """
    cdef Py_ssize_t tag = new_tag()
    cdef Dual d = _new_dual(x, 1, tag)
    d.p[0] = 1.0
    out = fun(d, *args)
    if type(out) is Dual and (<Dual> out).tag == tag:
        return (<Dual> out).p[0]
    return (out, tag)
