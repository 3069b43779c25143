"""``DualArray``: forward mode over NumPy arrays, tangents stacked on a leading axis.

Design note
-----------
A ``DualArray`` holds a primal ``value`` of shape ``s`` and a ``tangent`` of shape
``(k,) + s``: ``k`` directional derivatives ("lanes") pushed forward at once.  With the
lane axis in front, an elementwise rule is ``partial(value) * tangent`` under NumPy's
ordinary broadcasting, and a linear op applies to the whole stack as a batch.

Two paths give the same numbers (tested):

* the fused Cython loops below, for rule-table ufuncs on C-contiguous float64 operands of
  one shape (or scalars): one pass writes value and tangents, no temporaries;
* the generic NumPy path (``_elementwise``), used for everything else: broadcasting,
  non-contiguous input, nesting.

Nesting.  Each differentiation has a tag (an increasing integer).  ``value`` and
``tangent`` are plain ndarrays, or -- when an older differentiation is still active --
``DualArray`` values of the older tag.  When operands of two tags meet, the newer tag wins
and the older operand is a constant whose value is itself a tracer; since every rule is
written with NumPy calls, the older level differentiates the newer level's arithmetic
(ForwardDiff.jl's tags, JAX's levels).

Structural and linear NumPy functions are implemented in :mod:`dualad.rules.linear` and
reached through ``__array_function__``; anything without a rule raises ``TypeError``
naming the function and the mode.
"""

cimport cython
cimport numpy as cnp
from libc.math cimport isfinite
from libc.stdlib cimport malloc, free
from libc.stdint cimport uint64_t


import numpy as np

from dualad import _ndarray_methods as _nm

from dualad.rules._elementwise import ufunc_of

from dualad._scalar cimport Dual, HyperDual, _new_dual
from dualad._fpflags cimport clear_fp_flags as _clear_fp_flags
from dualad._layout cimport empty_array, lane_stride, same_shape as _same_shape
from dualad._kernels cimport (unary_kernel, binary_kernel, unary_loop, fill_tables,
                              fill_loop_tables, unary_names, binary_names, N_UNARY,
                              N_BINARY)
from dualad._errors import float_conversion, complex_input, object_input, \
    unsupported_function, tracer_index, MixedTracerError, MIXED_HYPERDUAL, NoRuleError
from dualad.rules import registry as _registry

cnp.import_array()


cdef unary_kernel U1[N_UNARY]
cdef unary_kernel U2[N_UNARY]
cdef binary_kernel B1[N_BINARY]
cdef binary_kernel B2[N_BINARY]
cdef binary_kernel B1X[N_BINARY]
cdef binary_kernel B1Y[N_BINARY]
fill_tables(U1, U2, B1, B2, B1X, B1Y)
cdef unary_loop L1[N_UNARY]
fill_loop_tables(L1)

cdef dict UNARY_INDEX = {ufunc_of(n): i for i, n in enumerate(unary_names())}
cdef dict BINARY_INDEX = {ufunc_of(n): i for i, n in enumerate(binary_names())}
cdef set POWER_UFUNCS = {np.power, np.float_power}
cdef dict ELEMENTWISE = _registry.ELEMENTWISE
cdef frozenset BOOLEAN = _registry.BOOLEAN
cdef list UNARY_UFUNCS = [ufunc_of(n) for n in unary_names()]
cdef list BINARY_UFUNCS = [ufunc_of(n) for n in binary_names()]
cdef type NDARRAY = np.ndarray

_MODE = "forward"
_np_sum = np.sum
_REDUCE_AS = {np.add: np.sum, np.multiply: np.prod, np.maximum: np.max,
              np.minimum: np.min}
_ACCUMULATE_AS = {np.add: np.cumsum, np.multiply: np.cumprod}


# ---------------------------------------------------------------------------------------
# fused loops (contiguous float64).  A scalar operand has stride 0; a constant operand
# has no tangent (NULL).  A zero tangent annihilates (0 * inf = 0).

cdef inline double _scale(double d, double t) noexcept nogil:
    # a zero on either side annihilates: a zero tangent meets an infinite partial
    # (masked branches), a zero partial an infinite tangent (a 0/1 mask times sqrt(0))
    if t == 0.0 or d == 0.0:
        return 0.0
    return d * t


cdef void _lane_axpy(double* o, const double* d, Py_ssize_t ds, const double* t,
                     Py_ssize_t ts, Py_ssize_t n, bint first, bint careful) noexcept nogil:
    """o[i] (+)= d[i * ds] * t[i * ts] for one lane; strides are 1 (array) or 0 (scalar).

    The plain loops vectorize; ``careful`` (some partial is inf or nan) switches to the
    annihilating product, where a zero tangent gives 0 even against an infinite partial.
    """
    cdef Py_ssize_t i
    cdef double c, e
    if careful:
        if first:
            for i in range(n):
                o[i] = _scale(d[i * ds], t[i * ts])
        else:
            for i in range(n):
                o[i] = o[i] + _scale(d[i * ds], t[i * ts])
    elif ds == 1 and ts == 1:
        if first:
            for i in range(n):
                o[i] = d[i] * t[i]
        else:
            for i in range(n):
                o[i] = o[i] + d[i] * t[i]
    elif ds == 1:
        c = t[0]
        if first:
            for i in range(n):
                o[i] = d[i] * c
        else:
            for i in range(n):
                o[i] = o[i] + d[i] * c
    elif ts == 1:
        e = d[0]
        if first:
            for i in range(n):
                o[i] = e * t[i]
        else:
            for i in range(n):
                o[i] = o[i] + e * t[i]
    else:
        c = d[0] * t[0]
        if first:
            for i in range(n):
                o[i] = c
        else:
            for i in range(n):
                o[i] = o[i] + c


cdef bint _lane_axpy2(double* o, const double* d0, Py_ssize_t ds0, const double* t0,
                     Py_ssize_t ts0, const double* d1, Py_ssize_t ds1, const double* t1,
                     Py_ssize_t ts1, Py_ssize_t n) noexcept nogil:
    """o[i] = d0[i*ds0] * t0[i*ts0] + d1[i*ds1] * t1[i*ts1] in one pass (plain products)
    for the common stride patterns; False (nothing written) for the others."""
    cdef Py_ssize_t i
    cdef double a, b
    if ds0 == 1 and ts0 == 0 and ds1 == 0 and ts1 == 1:  # Dual * DualArray
        a = t0[0]
        b = d1[0]
        for i in range(n):
            o[i] = d0[i] * a + b * t1[i]
    elif ds0 == 0 and ts0 == 1 and ds1 == 1 and ts1 == 0:  # DualArray * Dual
        a = d0[0]
        b = t1[0]
        for i in range(n):
            o[i] = a * t0[i] + d1[i] * b
    elif ds0 == 0 and ts0 == 1 and ds1 == 0 and ts1 == 1:  # add, subtract
        a = d0[0]
        b = d1[0]
        for i in range(n):
            o[i] = a * t0[i] + b * t1[i]
    elif ds0 == 1 and ts0 == 1 and ds1 == 1 and ts1 == 1:  # multiply
        for i in range(n):
            o[i] = d0[i] * t0[i] + d1[i] * t1[i]
    else:
        return False
    return True


cdef bint _maybe_nan(const double* p, Py_ssize_t n) noexcept nogil:
    """True if some p[i] is nan (or inf: a false alarm only costs a careful redo)."""
    return _any_nonfinite(p, n)


cdef int _loop_unary(unary_loop loop, const double* v, const double* t, Py_ssize_t tls,
                     double* ov, double* ot, Py_ssize_t n, Py_ssize_t k) noexcept nogil:
    """Phase 1: values and partials (the rule's loop, its kernel inlined); phase 2:
    lanes."""
    cdef Py_ssize_t l
    cdef double* d = <double*> malloc(max(n, 1) * sizeof(double))
    if d == NULL:
        return -1
    loop(v, ov, d, n)
    cdef bint careful = _any_nonfinite(d, n)
    for l in range(k):
        _lane_axpy(ot + l * n, d, 1, t + l * tls, 1, n, True, careful)
    if not careful and _maybe_nan(ot, k * n):
        for l in range(k):  # an infinite tangent met a zero partial: redo carefully
            _lane_axpy(ot + l * n, d, 1, t + l * tls, 1, n, True, True)
    free(d)
    return 0


cdef int _loop_binary(binary_kernel kern, bint powfix,
                      const double* xv, Py_ssize_t xs, const double* xt, Py_ssize_t xls,
                      const double* yv, Py_ssize_t ys, const double* yt, Py_ssize_t yls,
                      double* ov, double* ot, Py_ssize_t n, Py_ssize_t k) noexcept nogil:
    cdef double out[3]
    cdef Py_ssize_t i, l
    cdef bint careful = False
    cdef double* dx = <double*> malloc(max(2 * n, 1) * sizeof(double))
    if dx == NULL:
        return -1
    cdef double* dy = dx + n
    for i in range(n):
        kern(xv[i * xs], yv[i * ys], out)
        if powfix and out[0] == 0.0:
            out[2] = 0.0  # zero base: d/dy x**y -> 0, not 0 * log(0)
        ov[i] = out[0]
        dx[i] = out[1]
        dy[i] = out[2]
        careful = careful or not (isfinite(out[1]) and isfinite(out[2]))
    while True:
        for l in range(k):
            if xt != NULL:
                _lane_axpy(ot + l * n, dx, 1, xt + l * xls, xs, n, True, careful)
                if yt != NULL:
                    _lane_axpy(ot + l * n, dy, 1, yt + l * yls, ys, n, False, careful)
            else:
                _lane_axpy(ot + l * n, dy, 1, yt + l * yls, ys, n, True, careful)
        if careful or not _maybe_nan(ot, k * n):
            break
        careful = True  # an infinite tangent met a zero partial: redo carefully
    free(dx)
    return 0


cdef inline double* _ptr(object a) noexcept:
    return <double*> cnp.PyArray_DATA(<cnp.ndarray> a)


cdef inline bint _c_f64(object a):
    """A C-contiguous float64 ndarray."""
    return (type(a) is NDARRAY and cnp.PyArray_TYPE(<cnp.ndarray> a) == cnp.NPY_DOUBLE
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> a))


cdef struct Operand:
    const double* v     # values
    Py_ssize_t vs       # value stride: 1 (array) or 0 (scalar)
    const double* t     # tangents, NULL for a constant
    Py_ssize_t tls      # lane stride of the tangents
    Py_ssize_t k        # lanes (traced operands)
    Py_ssize_t tag      # tag (traced operands), -1 otherwise
    double c            # storage for a scalar constant


cdef int _classify(object o, Operand* op) except -2:
    """Fill ``op`` for the fused path: 1 array operand, 0 scalar, -1 does not qualify."""
    cdef Dual d
    cdef DualArray a
    cdef Py_ssize_t tls
    op.t = NULL
    op.tag = -1
    op.k = 0
    if type(o) is DualArray:
        a = <DualArray> o
        if not _c_f64(a.value):
            return -1
        tls = lane_stride(a.tangent, a.value)
        if tls < 0:
            return -1
        op.v = _ptr(a.value)
        op.vs = 1 if cnp.PyArray_NDIM(<cnp.ndarray> a.value) > 0 else 0
        op.t = _ptr(a.tangent)
        op.tls = tls
        op.k = cnp.PyArray_DIM(<cnp.ndarray> a.tangent, 0)
        op.tag = a.tag
        return 1 if cnp.PyArray_NDIM(<cnp.ndarray> a.value) > 0 else 0
    if type(o) is Dual:
        d = <Dual> o
        op.c = d.value
        op.v = &op.c
        op.vs = 0
        op.t = d.p
        op.tls = 1
        op.k = d.k
        op.tag = d.tag
        return 0
    if type(o) is float or type(o) is int:
        op.c = o
        op.v = &op.c
        op.vs = 0
        return 0
    if _c_f64(o):
        op.v = _ptr(o)
        op.vs = 1 if cnp.PyArray_NDIM(<cnp.ndarray> o) > 0 else 0
        return 1 if cnp.PyArray_NDIM(<cnp.ndarray> o) > 0 else 0
    return -1


cdef inline object _value_of(object o):
    if type(o) is DualArray:
        return (<DualArray> o).value
    if type(o) is Dual:
        return (<Dual> o).value
    return o


cdef inline object _operand_array(object o):
    """The value array of a classified array operand (DualArray or ndarray), else None."""
    if type(o) is DualArray:
        return (<DualArray> o).value
    if type(o) is NDARRAY:
        return o
    return None


# Above this many elements, a rule whose partials are constants, operands or the result
# (add, subtract, multiply, exp, ...) takes its values from NumPy's vectorized (SIMD)
# ufunc loop and combines lanes in one vectorizable C pass: NumPy's exp costs 0.8 ns per
# element against 5 ns for a libm call.  Rules whose partials need computing (sin: cos)
# stay in the fused loop, where the compiler turns sin and cos of one argument into a
# single sincos call.  Below the threshold NumPy's per-call overhead dominates.
cdef Py_ssize_t VECTOR_MIN = 128


cdef enum PartialKind:
    P_KERNEL = 0   # computed per element by the rule's kernel
    P_CONST = 1    # a number (linear rules)
    P_X = 2        # the first operand's value (multiply)
    P_Y = 3        # the second operand's value (multiply)
    P_ANS = 4      # the result (exp)


cdef struct Partial:
    PartialKind kind
    double c


cdef Partial _describe(tuple kind):
    """The registry's analysis of a partial (``ElementwiseEntry.kinds``) as a C struct."""
    cdef Partial p
    p.kind = {"kernel": P_KERNEL, "const": P_CONST, "x": P_X, "y": P_Y,
              "ans": P_ANS}[kind[0]]
    p.c = kind[1] if kind[1] is not None else 0.0
    return p


cdef Partial PARTIALS_U[N_UNARY][2]
cdef Partial PARTIALS_B[N_BINARY][2]
for _i, _n in enumerate(unary_names()):
    PARTIALS_U[_i][0] = _describe(ELEMENTWISE[ufunc_of(_n)].kinds[0])
    PARTIALS_U[_i][1] = _describe(("const", 0.0))
for _i, _n in enumerate(binary_names()):
    PARTIALS_B[_i][0] = _describe(ELEMENTWISE[ufunc_of(_n)].kinds[0])
    PARTIALS_B[_i][1] = _describe(ELEMENTWISE[ufunc_of(_n)].kinds[1])


cdef inline bint _trivial(Partial* desc, bint x_traced, bint y_traced) noexcept:
    """Whether no partial a traced operand needs has to be computed per element."""
    return ((not x_traced or desc[0].kind != P_KERNEL)
            and (not y_traced or desc[1].kind != P_KERNEL))


cdef inline bint _any_nonfinite(const double* p, Py_ssize_t n) noexcept nogil:
    """Whether some p[i] is inf or nan: an all-ones exponent.  An integer OR-reduction
    vectorizes, where a floating-point sum may not be reordered (one add per cycle);
    four independent accumulators keep the OR chain from serialising the loop (one
    accumulator made this scan ~70% of a 4-lane, 1000-element product)."""
    cdef const uint64_t* b = <const uint64_t*> p
    cdef uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0
    cdef Py_ssize_t i = 0
    # adding one to an all-ones exponent carries into the top bit; nothing else does
    while i + 4 <= n:
        a0 |= (b[i] & 0x7ff0000000000000ULL) + 0x0010000000000000ULL
        a1 |= (b[i + 1] & 0x7ff0000000000000ULL) + 0x0010000000000000ULL
        a2 |= (b[i + 2] & 0x7ff0000000000000ULL) + 0x0010000000000000ULL
        a3 |= (b[i + 3] & 0x7ff0000000000000ULL) + 0x0010000000000000ULL
        i += 4
    while i < n:
        a0 |= (b[i] & 0x7ff0000000000000ULL) + 0x0010000000000000ULL
        i += 1
    return ((a0 | a1 | a2 | a3) & 0x8000000000000000ULL) != 0


cdef bint _all_finite(const double* d, Py_ssize_t ds, Py_ssize_t n) noexcept nogil:
    if ds == 0:
        return isfinite(d[0])
    return not _any_nonfinite(d, n)


cdef int _lanes_from_partials(const double** dp, Py_ssize_t* dst, Operand* ox,
                              Operand* oy, double* ot, Py_ssize_t n,
                              Py_ssize_t k) noexcept nogil:
    """tangent_out = dx * tx + dy * ty, one vectorizable pass per lane and operand."""
    cdef Py_ssize_t l
    cdef bint careful = False
    if ox.t != NULL:
        careful = not _all_finite(dp[0], dst[0], n)
    if oy.t != NULL:
        careful = careful or not _all_finite(dp[1], dst[1], n)
    # With finite partials a product can only meet inf * 0 through a non-finite tangent.
    # Tangents that are one number per lane (Duals, 0-d arrays: ``p[0] * t``) are checked
    # directly; otherwise the result is scanned after the fact.
    cdef bint scan = not (_lane_scalars_finite(ox, k) and _lane_scalars_finite(oy, k))
    while True:
        for l in range(k):
            if ox.t != NULL and oy.t != NULL and not careful and _lane_axpy2(
                    ot + l * n, dp[0], dst[0], ox.t + l * ox.tls, ox.vs,
                    dp[1], dst[1], oy.t + l * oy.tls, oy.vs, n):
                pass  # both operands' terms in one pass
            elif ox.t != NULL:
                _lane_axpy(ot + l * n, dp[0], dst[0], ox.t + l * ox.tls, ox.vs, n, True,
                           careful)
                if oy.t != NULL:
                    _lane_axpy(ot + l * n, dp[1], dst[1], oy.t + l * oy.tls, oy.vs, n,
                               False, careful)
            else:
                _lane_axpy(ot + l * n, dp[1], dst[1], oy.t + l * oy.tls, oy.vs, n, True,
                           careful)
        if careful or not scan or not _maybe_nan(ot, k * n):
            return 0
        careful = True  # an infinite tangent met a zero partial somewhere: redo carefully


cdef inline bint _lane_scalars_finite(Operand* op, Py_ssize_t k) noexcept nogil:
    """Whether ``op``'s tangent is known finite without a scan: no tangent, or one finite
    number per lane (``vs == 0``); False for array tangents (not examined here)."""
    cdef Py_ssize_t l
    if op.t == NULL:
        return True
    if op.vs != 0:
        return False
    for l in range(k):
        if not isfinite(op.t[l * op.tls]):
            return False
    return True


cdef object _vector_path(object ufunc, Partial* desc, Operand* ox, Operand* oy,
                         tuple vals, cnp.ndarray base, Py_ssize_t k, Py_ssize_t tag,
                         bint powfix):
    """Values and non-trivial partials from NumPy's vectorized loops; lanes in C.

    A partial that is a constant, an operand or the result (``desc``) is used in place.
    ``base`` is an operand value of the result's shape.
    """
    ans = ufunc(*vals)
    if type(ans) is not NDARRAY or not _c_f64(ans) or not _same_shape(ans, base):
        return None
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray> ans)
    cdef const double* dp[2]
    cdef Py_ssize_t dst[2]
    cdef Operand* ops[2]
    cdef int j
    ops[0] = ox
    ops[1] = oy
    keep = None
    for j in range(2):
        if ops[j].t == NULL:
            continue
        if desc[j].kind == P_KERNEL or (j == 1 and powfix):
            entry = ELEMENTWISE[ufunc]
            shape = (<object> base).shape
            if keep is None:
                keep = []
            with np.errstate(all="ignore"):
                d = entry.first[j](vals[0], vals[1] if len(vals) > 1 else None, ans)
                if j == 1 and powfix:
                    d = np.where(ans == 0.0, 0.0, d)  # zero base: no 0 * log(0)
            if type(d) is not NDARRAY or d.shape != shape:
                d = np.broadcast_to(d, shape)
            d = np.ascontiguousarray(d, dtype=np.float64)
            keep.append(d)
            dp[j] = _ptr(d)
            dst[j] = 1
        elif desc[j].kind == P_CONST:
            dp[j] = &desc[j].c
            dst[j] = 0
        elif desc[j].kind == P_X:
            dp[j] = ox.v
            dst[j] = ox.vs
        elif desc[j].kind == P_Y:
            dp[j] = oy.v
            dst[j] = oy.vs
        else:
            dp[j] = _ptr(ans)
            dst[j] = 1
    cdef cnp.ndarray ot = empty_array(ans, k)
    cdef double* pot = _ptr(ot)
    with nogil:
        _lanes_from_partials(dp, dst, ox, oy, pot, n, k)
    return _wrap_fresh(ans, ot, tag)


cdef object _fast_unary(DualArray a, Py_ssize_t idx):
    """The fused loop for a unary rule, or None if the operand does not qualify."""
    if not _c_f64(a.value):
        return None
    cdef Py_ssize_t tls = lane_stride(a.tangent, a.value)
    if tls < 0:
        return None
    cdef cnp.ndarray v = <cnp.ndarray> a.value
    cdef Py_ssize_t n = cnp.PyArray_SIZE(v)
    cdef Py_ssize_t k = cnp.PyArray_DIM(<cnp.ndarray> a.tangent, 0)
    cdef Operand op, dummy
    cdef object r
    if n >= VECTOR_MIN and PARTIALS_U[idx][0].kind != P_KERNEL:
        _classify(a, &op)
        _classify(0.0, &dummy)
        r = _vector_path(UNARY_UFUNCS[idx], PARTIALS_U[idx], &op, &dummy,
                         (a.value,), v, k, a.tag, False)
        if r is not None:
            return r
    cdef cnp.ndarray ov = empty_array(v)
    cdef cnp.ndarray ot = empty_array(v, k)
    cdef const double* pv = _ptr(v)
    cdef const double* pt = _ptr(a.tangent)
    cdef double* pov = _ptr(ov)
    cdef double* pot = _ptr(ot)
    cdef int status
    with nogil:
        status = _loop_unary(L1[idx], pv, pt, tls, pov, pot, n, k)
        _clear_fp_flags()
    if status < 0:
        raise MemoryError()
    return _wrap_fresh(ov, ot, a.tag)


cdef object _fast_binary(object x, object y, Py_ssize_t idx, bint powfix):
    """The fused loop for a binary rule, or None if the operands do not qualify.

    Qualifying operands: DualArrays (contiguous float64 values, lane-contiguous
    tangents) and Duals of one tag; Python floats/ints; contiguous float64 ndarrays.
    Array operands must all have one shape (no broadcasting here).
    """
    cdef Operand ox, oy
    cdef int cx = _classify(x, &ox)
    if cx < 0:
        return None
    cdef int cy = _classify(y, &oy)
    if cy < 0:
        return None
    if ox.t == NULL and oy.t == NULL:
        return None
    if ox.t != NULL and oy.t != NULL and (ox.tag != oy.tag or ox.k != oy.k):
        return None
    # the array operands' values (None for Duals and numbers); the result takes the
    # shape of one of them, ``base``: equal shapes, or an array and a 0-d one
    cdef object ax = _operand_array(x)
    cdef object ay = _operand_array(y)
    cdef cnp.ndarray base
    if ax is None and ay is None:
        return None  # two scalars: the Dual arithmetic handles it
    if ax is not None and ay is not None:
        if _same_shape(ax, ay) or cnp.PyArray_NDIM(<cnp.ndarray> ay) == 0:
            base = ax
        elif cnp.PyArray_NDIM(<cnp.ndarray> ax) == 0:
            base = ay
        else:
            return None
    else:
        base = ax if ax is not None else ay
    cdef Py_ssize_t k = ox.k if ox.t != NULL else oy.k
    cdef Py_ssize_t tag = ox.tag if ox.t != NULL else oy.tag
    cdef Py_ssize_t n = cnp.PyArray_SIZE(base)
    cdef object r
    if n >= VECTOR_MIN and _trivial(PARTIALS_B[idx], ox.t != NULL, oy.t != NULL) \
            and not powfix:
        r = _vector_path(BINARY_UFUNCS[idx], PARTIALS_B[idx], &ox, &oy,
                         (_value_of(x), _value_of(y)), base, k, tag, powfix)
        if r is not None:
            return r
    cdef cnp.ndarray ov = empty_array(base)
    cdef cnp.ndarray ot = empty_array(base, k)
    cdef double* pov = _ptr(ov)
    cdef double* pot = _ptr(ot)
    cdef binary_kernel kern = B1[idx] if (ox.t != NULL and oy.t != NULL) else (
        B1X[idx] if oy.t == NULL else B1Y[idx])
    cdef int status
    with nogil:
        status = _loop_binary(kern, powfix, ox.v, ox.vs, ox.t, ox.tls, oy.v, oy.vs, oy.t,
                              oy.tls, pov, pot, n, k)
        _clear_fp_flags()
    if status < 0:
        raise MemoryError()
    return _wrap_fresh(ov, ot, tag)


# ---------------------------------------------------------------------------------------
# operands, levels and results

cdef inline bint _is_tracer(object o):
    return type(o) is DualArray or type(o) is Dual


# Tracer types of other modes (reverse mode's RArray/RScalar) register here, so that a
# forward value defers (NotImplemented) to a newer level of another kind.
cdef set FOREIGN = set()


def register_foreign(cls):
    """Register a tracer type of another mode: it has a ``tag`` attribute."""
    FOREIGN.add(cls)
    return cls


cpdef Py_ssize_t foreign_tag(object objs) except -2:
    """The newest tag among tracers of other modes in ``objs`` (-1 if none)."""
    cdef Py_ssize_t tag = -1, t
    if not FOREIGN:
        return -1
    for o in objs:
        if type(o) in FOREIGN:
            t = o.tag
        elif type(o) is list or type(o) is tuple:
            t = foreign_tag(o)
        else:
            continue
        if t > tag:
            tag = t
    return tag


cpdef Py_ssize_t tag_of(object objs) except -2:
    """The newest tag among ``objs`` (tracers, and lists/tuples of them); -1 if none."""
    cdef Py_ssize_t tag = -1
    for o in objs:
        if type(o) is DualArray:
            if (<DualArray> o).tag > tag:
                tag = (<DualArray> o).tag
        elif type(o) is Dual:
            if (<Dual> o).tag > tag:
                tag = (<Dual> o).tag
        elif type(o) is list or type(o) is tuple:
            t = tag_of(o)
            if t > tag:
                tag = t
        elif isinstance(o, np.ndarray) and (<cnp.ndarray> o).dtype == object:
            t = tag_of((<cnp.ndarray> o).ravel().tolist())
            if t > tag:
                tag = t
    return tag


cpdef bint is_tracer(object o):
    """Whether o is a traced value of any mode (Dual, DualArray, reverse values)."""
    return type(o) is DualArray or type(o) is Dual or type(o) in FOREIGN


cpdef object from_dual(Dual d):
    """The 0-d DualArray of a Dual."""
    return _make(np.array(d.value), d.partials, d.tag)


cdef DualArray _make(object value, object tangent, Py_ssize_t tag):
    cdef DualArray r = DualArray.__new__(DualArray)
    r.value = value
    r.tangent = tangent
    r.tag = tag
    return r


cpdef object normalize(object o, str mode="forward"):
    """Check an operand of a traced operation: Duals stay, object arrays are converted.

    Complex values and object arrays that do not hold dualad values raise ``TypeError``.
    """
    if type(o) is DualArray or type(o) is Dual:
        return o
    if isinstance(o, HyperDual):
        raise MixedTracerError(MIXED_HYPERDUAL)
    if isinstance(o, (list, tuple)):
        arr = np.asarray(o) if tag_of(o) < 0 else _from_objects(_object_array(o))
        return normalize(arr, mode)
    if isinstance(o, np.ndarray):
        if o.dtype == object:
            return _from_objects(o, mode)
        if o.dtype.kind == "c":
            raise TypeError(complex_input(mode))
        if o.dtype != np.float64 and o.dtype.kind in "fiu":
            # constants join the computation in float64: a float32 constant would
            # otherwise make NumPy compute partials in single precision
            return o.astype(np.float64)
        return o
    if isinstance(o, complex) or (isinstance(o, np.generic) and np.iscomplexobj(o)):
        raise TypeError(complex_input(mode))
    if isinstance(o, np.number) and type(o) is not np.float64:
        return np.float64(o)
    return o


cdef object _object_array(object seq):
    """An object array holding the elements of a (nested) list of scalars and tracers."""
    try:
        return np.array(seq, dtype=object)
    except ValueError:
        raise ValueError("could not build an array from a ragged sequence of dualad "
                         "values")


cdef object _from_objects(object arr, str mode="forward"):
    """Convert an object array of Duals (and numbers) into a DualArray."""
    flat = arr.ravel().tolist()
    cdef Py_ssize_t tag = tag_of(flat)
    if tag < 0:
        for e in flat:
            if isinstance(e, (complex, np.complexfloating)):
                raise TypeError(complex_input(mode))
            if not isinstance(e, (float, int, np.number, np.bool_)):
                raise TypeError(object_input(mode) + f" Found {type(e).__name__}.")
        return np.asarray(arr, dtype=np.float64)
    k = -1
    for e in flat:
        if type(e) is Dual and (<Dual> e).tag == tag:
            k = (<Dual> e).k
            break
        if type(e) is DualArray and (<DualArray> e).tag == tag:
            k = (<DualArray> e).tangent.shape[0]
            break
    values = []
    tangents = []
    nested_v = False
    nested_t = False
    zero = np.zeros(k)
    for e in flat:
        if type(e) is Dual and (<Dual> e).tag == tag:
            values.append((<Dual> e).value)
            tangents.append((<Dual> e).partials)
        elif type(e) is DualArray and (<DualArray> e).tag == tag:
            if (<DualArray> e).value.shape != ():
                raise ValueError("an object array of dualad values may hold scalars only")
            v, t = (<DualArray> e).value, (<DualArray> e).tangent
            nested_v = nested_v or type(v) is DualArray
            nested_t = nested_t or type(t) is DualArray
            values.append(v if type(v) is DualArray else float(v))
            tangents.append(t)
        elif _is_tracer(e):
            nested_v = True
            values.append(e)
            tangents.append(zero)
        elif isinstance(e, (float, int, np.number)) and not isinstance(e, complex):
            if np.iscomplexobj(e):
                raise TypeError(complex_input(mode))
            values.append(float(e))
            tangents.append(zero)
        else:
            raise TypeError(object_input(mode))
    shape = arr.shape
    if nested_v:
        vals = np.empty(len(values), dtype=object)
        vals[:] = values
        value = _from_objects(vals.reshape(shape), mode)
    else:
        value = np.array(values, dtype=np.float64).reshape(shape)
    if nested_t:
        tangent = np.stack([normalize(t, mode) for t in tangents], axis=-1)
        tangent = tangent.reshape((k,) + shape)
    else:
        tangent = np.array(tangents, dtype=np.float64).reshape(shape + (k,))
        tangent = np.ascontiguousarray(np.moveaxis(tangent, -1, 0))
    return _make(value, tangent, tag)


cdef object _to_objects(DualArray a):
    """An object array of Duals (or 0-d DualArrays when nested) with a's shape."""
    cdef Py_ssize_t n, k, i, l
    cdef Dual d
    cdef const double[::1] v
    cdef const double[:, :] t
    shape = a.value.shape
    out = np.empty(shape, dtype=object)
    flat = out.reshape(-1)
    if type(a.value) is NDARRAY and type(a.tangent) is NDARRAY:
        v = np.ascontiguousarray(a.value, dtype=np.float64).reshape(-1)
        k = a.tangent.shape[0]
        n = v.shape[0]
        t = np.asarray(a.tangent, dtype=np.float64).reshape(k, n)
        for i in range(n):
            d = _new_dual(v[i], k, a.tag)
            for l in range(k):
                d.p[l] = t[l, i]
            flat[i] = d
    else:
        for i, idx in enumerate(np.ndindex(*shape)):
            flat[i] = a[idx]
    return out


cpdef tuple split(object o, Py_ssize_t tag):
    """``(value, tangent)`` of operand ``o`` at level ``tag``; tangent None if constant.

    A tracer of an older tag is a constant at this level: it is its own value.
    """
    if type(o) is DualArray:
        if (<DualArray> o).tag == tag:
            return (<DualArray> o).value, (<DualArray> o).tangent
        return o, None
    if type(o) is Dual:
        if (<Dual> o).tag == tag:
            return np.array((<Dual> o).value), (<Dual> o).partials
        return from_dual(<Dual> o), None
    return o, None


cpdef object wrap(object value, object tangent, Py_ssize_t tag):
    """A traced result: a Dual for a plain 0-d result, a DualArray otherwise."""
    return _wrap(value, tangent, tag)


cdef object _wrap(object value, object tangent, Py_ssize_t tag):
    cdef Dual d
    cdef Py_ssize_t i, k
    if tangent is None:
        return value
    if type(value) is not DualArray and type(value) is not NDARRAY:
        value = as_value(value)
    if type(tangent) is Dual:
        tangent = from_dual(<Dual> tangent)
    if type(value) is NDARRAY and (<cnp.ndarray> value).ndim == 0 \
            and type(tangent) is NDARRAY:
        k = tangent.shape[0]
        d = _new_dual((<cnp.ndarray> value).item(), k, tag)
        tv = np.ascontiguousarray(tangent, dtype=np.float64).reshape(k)
        for i in range(k):
            d.p[i] = tv[i]
        return d
    return _make(value, tangent, tag)


cdef object _wrap_fresh(object value, object tangent, Py_ssize_t tag):
    """_wrap for newly allocated value and tangent: item assignment may write in place."""
    r = _wrap(value, tangent, tag)
    if type(r) is DualArray:
        (<DualArray> r).owns = True
    return r


cpdef object lift(object o, Py_ssize_t tag, Py_ssize_t k):
    """``o`` as a DualArray of level ``tag`` with ``k`` lanes (zero tangent if constant)."""
    v, t = split(o, tag)
    v = as_value(v)
    if t is None:
        t = zeros_tangent(v, k)
    return _make(v, t, tag)


cpdef object zeros_tangent(object value, Py_ssize_t k):
    """A zero tangent with ``k`` lanes for ``value`` (a constant at this level)."""
    return np.zeros((k,) + tuple(value.shape if type(value) is DualArray
                                 else np.shape(value)))


cpdef object as_value(object a):
    """A value at some level: a DualArray (an older level's tracer) or a float64 ndarray."""
    if type(a) is DualArray:
        return a
    if type(a) is Dual:
        return from_dual(<Dual> a)
    if type(a) in FOREIGN:
        return a  # a reverse-mode value of an older level: a constant whose value traces
    return np.asarray(a, dtype=np.float64)


cpdef object as_view_of(object result, object source):
    """Mark ``result`` (a linear op of ``source``: reshape, transpose...) as a view when
    its value and lanes share ``source``'s storage: a write into it then writes through,
    as NumPy's does, wherever ``source`` itself may be written.  Returns ``result``."""
    if type(result) is DualArray and type(source) is DualArray:
        r = <DualArray> result
        a = <DualArray> source
        if a.owns and type(r.value) is NDARRAY and type(r.tangent) is NDARRAY and \
                np.may_share_memory(r.value, a.value) and \
                np.may_share_memory(r.tangent, a.tangent):
            r.owns = True
    return result


cpdef object make(object value, object tangent, Py_ssize_t tag, bint owns=False):
    """A DualArray from its parts, unchecked.  ``owns``: the parts are fresh arrays."""
    cdef DualArray r = _make(value, tangent, tag)
    r.owns = owns
    return r


cdef object _pad(object t, Py_ssize_t ndim):
    """Insert broadcast axes after the lane axis so that t lines up with ndim value dims."""
    cdef Py_ssize_t have = t.ndim - 1
    if have >= ndim:
        return t
    return t.reshape((t.shape[0],) + (1,) * (ndim - have) + t.shape[1:])


cdef inline bint _plain_dual(object o):
    """A DualArray whose value and lanes are plain arrays (one level, no nesting)."""
    return (type(o) is DualArray and type((<DualArray> o).value) is NDARRAY
            and type((<DualArray> o).tangent) is NDARRAY)


cdef object _scale_one_traced(object d, object t):
    """``scale`` where one factor is a DualArray of plain arrays and the other is plain.

    The product is linear in the traced factor, so the annihilation rule applies to its
    value and to each of its lanes separately: a zero plain factor kills an infinite
    partial in both (nested sweeps differentiate ``0 * inf`` cotangents as 0, as the
    plain sweep does), and a zero lane of the traced factor kills an infinite plain
    one.  Two broadcasting NumPy products; the fused loops do not take this case."""
    cdef DualArray a = <DualArray> (d if type(d) is DualArray else t)
    other = t if type(d) is DualArray else d
    v = as_value(scale(a.value, other))
    lanes = scale(_pad(a.tangent, v.ndim), other)
    if type(lanes) is not NDARRAY or lanes.shape[1:] != v.shape:
        lanes = np.broadcast_to(lanes, (a.tangent.shape[0],) + v.shape)
    return _wrap(v, lanes, a.tag)


cdef object _scale_both_traced(DualArray d, DualArray t):
    """``scale`` of two DualArrays of one level: the product rule with the annihilation
    rule applied to each product of parts (a zero cotangent value kills an infinite
    partial in the value and in the lanes it multiplies)."""
    v = as_value(scale(d.value, t.value))
    nd = v.ndim
    lanes = scale(d.value, _pad(t.tangent, nd)) + scale(_pad(d.tangent, nd), t.value)
    if type(lanes) is not NDARRAY or lanes.shape[1:] != v.shape:
        lanes = np.broadcast_to(lanes, (d.tangent.shape[0],) + v.shape)
    return _wrap(v, lanes, d.tag)


cpdef object scale(object d, object t):
    """``d * t`` (broadcasting) where a zero on either side annihilates the other factor,
    even an infinite or nan one (DESIGN.md: 0 * inf = 0).  Tracers multiply as usual."""
    if _plain_dual(d) and not is_tracer(t) or _plain_dual(t) and not is_tracer(d):
        return _scale_one_traced(d, t)
    if _plain_dual(d) and _plain_dual(t) and (<DualArray> d).tag == (<DualArray> t).tag:
        return _scale_both_traced(<DualArray> d, <DualArray> t)
    if is_tracer(d) or is_tracer(t):
        return d * t
    if isinstance(d, (float, int)) and type(t) is NDARRAY:
        if d == 0.0:
            return np.zeros(t.shape)
        if d == 1.0:
            return t
        if d == -1.0:
            return -t
    with np.errstate(invalid="ignore"):
        r = np.multiply(d, t)
    if not np.isfinite(r).all():
        # 0 * inf on either side annihilates (legitimate infinities and nans stay)
        r = np.where((np.asarray(t) == 0.0) | (np.asarray(d) == 0.0), 0.0, r)
    return r


cdef object _elementwise(object entry, tuple inputs, Py_ssize_t tag):
    """The generic (NumPy) path of an elementwise rule."""
    cdef Py_ssize_t i, nd
    vals = []
    tans = []
    for o in inputs:
        v, t = split(o, tag)
        vals.append(v)
        tans.append(t)
    if entry.arity == 1:
        vals.append(None)
    with np.errstate(all="ignore"):
        ans = as_value(entry.ufunc(*vals[:entry.arity]))
        nd = ans.ndim
        tangent = None
        k = None
        for i in range(entry.arity):
            t = tans[i]
            if t is None:
                continue
            k = t.shape[0]
            d = entry.first[i](vals[0], vals[1], ans)
            if i == 1 and entry.is_power:
                d = np.where(ans == 0.0, 0.0, d)  # zero base: no 0 * log(0)
            term = scale(d, _pad(t, nd))
            tangent = term if tangent is None else tangent + term
    if tangent is None:
        return ans
    target = (k,) + ans.shape
    if tangent.shape != target:
        tangent = np.broadcast_to(tangent, target)
    return _wrap_fresh(ans, tangent, tag)


cdef tuple _normalized(tuple inputs):
    cdef list out = []
    for i in inputs:
        out.append(normalize(i))
    return tuple(out)


cpdef object generic_ufunc(object ufunc, tuple inputs, dict kwargs):
    """Apply a ufunc to operands among which there are tracers.

    The fused Cython loops are tried first; everything else takes the NumPy path.
    """
    cdef Py_ssize_t tag
    cdef object r
    if not kwargs:
        if len(inputs) == 1:
            idx = UNARY_INDEX.get(ufunc)
            if idx is not None and type(inputs[0]) is DualArray:
                r = _fast_unary(<DualArray> inputs[0], <Py_ssize_t> idx)
                if r is not None:
                    return r
        elif len(inputs) == 2:
            idx = BINARY_INDEX.get(ufunc)
            if idx is not None:
                r = _fast_binary(inputs[0], inputs[1], <Py_ssize_t> idx,
                                 ufunc in POWER_UFUNCS)
                if r is not None:
                    return r
    kwargs = dict(kwargs) if kwargs else {}
    inputs = _normalized(inputs)
    out = kwargs.pop("out", None) if kwargs else None
    if out is not None:
        outs = out if isinstance(out, tuple) else (out,)
        if isinstance(outs[0], np.ndarray):
            raise TypeError(float_conversion("traced value", f"numpy.{ufunc.__name__} "
                                             "with out= a plain ndarray"))
        raise TypeError(f"numpy.{ufunc.__name__}: the out= argument is not supported for "
                        "dualad values; assign the result instead")
    if kwargs:
        dtype = kwargs.pop("dtype", None)
        if dtype is not None and np.dtype(dtype) != np.float64:
            raise TypeError(f"numpy.{ufunc.__name__}: dualad computes in float64; "
                            f"dtype={dtype!r} is not supported")
        if kwargs:
            raise TypeError(f"numpy.{ufunc.__name__}: keyword arguments "
                            f"{sorted(kwargs)} are not supported in forward mode")
    tag = tag_of(inputs)
    if foreign_tag(inputs) > tag:
        return NotImplemented  # a newer level of another mode handles it
    if ufunc in BOOLEAN:
        return ufunc(*[primal(i) for i in inputs])
    if tag < 0:
        return ufunc(*inputs)
    entry = ELEMENTWISE.get(ufunc)
    if entry is not None:
        if len(inputs) != entry.arity:
            raise TypeError(f"numpy.{ufunc.__name__} takes {entry.arity} argument(s)")
        return _elementwise(entry, inputs, tag)
    if ufunc is np.matmul:
        return _registry.lookup(np.matmul, _MODE)(*inputs)
    raise NoRuleError(unsupported_function(_registry.public_name(ufunc), _MODE))


cpdef object generic_ufunc_method(object ufunc, str method, tuple inputs, dict kwargs):
    """``ufunc.reduce``/``accumulate``/``outer`` on tracers, via the matching function."""
    inputs = _normalized(inputs)
    if foreign_tag(inputs) > tag_of(inputs):
        return NotImplemented
    if method in ("reduce", "accumulate"):
        kwargs = dict(kwargs)
        kwargs.setdefault("axis", 0)  # ufunc.reduce/accumulate default to axis 0
    if method == "reduce" and ufunc in _REDUCE_AS:
        return _REDUCE_AS[ufunc](*inputs, **kwargs)
    if method == "accumulate" and ufunc in _ACCUMULATE_AS:
        return _ACCUMULATE_AS[ufunc](*inputs, **kwargs)
    if method == "outer" and len(inputs) == 2 and not kwargs and \
            (ufunc in ELEMENTWISE or ufunc in BOOLEAN):
        a, b = inputs
        bn = np.ndim(b)
        a = np.reshape(a, np.shape(a) + (1,) * bn)
        return ufunc(a, b)
    raise NoRuleError(unsupported_function(f"{_registry.public_name(ufunc)}.{method}", _MODE))


cdef bint _plain_sum_kwargs(dict kwargs):
    """np.sum keywords the fast path handles: axis, keepdims=False, dtype float64."""
    for key, val in kwargs.items():
        if key == "axis":
            continue
        if key == "dtype" and (val is None or np.dtype(val) == np.float64):
            continue
        if key == "keepdims" and val is False:
            continue
        return False
    return True


cpdef object fast_binary(object x, object y, Py_ssize_t idx, bint powfix):
    """The fused loop for binary rule number ``idx``, or None (for the scalar module)."""
    return _fast_binary(x, y, idx, powfix)


cpdef object generic_array_function(object func, object types, object args, dict kwargs):
    """``__array_function__``: look the function up in the forward-mode registry.

    ``np.sum(a)`` of a plain DualArray, the most common reduction, is answered here.
    """
    cdef DualArray a
    cdef int nd
    if FOREIGN and foreign_tag(args) > tag_of(args):
        return NotImplemented  # a newer level of another mode handles it
    if func is _np_sum and len(args) == 1 and type(args[0]) is DualArray:
        a = <DualArray> args[0]
        if type(a.value) is NDARRAY and type(a.tangent) is NDARRAY and \
                _plain_sum_kwargs(kwargs):
            axis = kwargs.get("axis")
            k = a.tangent.shape[0]
            if axis is None:
                return _wrap(a.value.sum(), a.tangent.reshape(k, a.value.size).sum(1),
                             a.tag)
            nd = a.value.ndim
            if type(axis) is int and -nd <= <int> axis < nd:
                ax = axis + nd if axis < 0 else axis  # (C's % keeps the sign)
                return _wrap_fresh(a.value.sum(axis=ax), a.tangent.sum(axis=ax + 1), a.tag)
    impl = _registry.lookup(func, _MODE)
    return impl(*args, **kwargs)


cpdef object primal(object o):
    """The innermost plain value of a tracer (for comparisons and index computations)."""
    while True:
        if type(o) is DualArray:
            o = (<DualArray> o).value
        elif type(o) is Dual:
            return (<Dual> o).value
        elif type(o) in FOREIGN:
            o = o.value
        elif isinstance(o, np.ndarray) and o.dtype == object:
            o = _from_objects(o)
        else:
            return o


cdef object _element_1d(DualArray a, Py_ssize_t i):
    """``a[i]`` as a Dual for a 1-d float64 array (``p[0]`` of a parameter vector), or
    None when another path must handle it (other layouts, nesting, out of range)."""
    v = a.value
    t = a.tangent
    if not _c_f64(v) or cnp.PyArray_NDIM(<cnp.ndarray> v) != 1 or type(t) is not NDARRAY \
            or cnp.PyArray_TYPE(<cnp.ndarray> t) != cnp.NPY_DOUBLE \
            or cnp.PyArray_NDIM(<cnp.ndarray> t) != 2:
        return None
    cdef Py_ssize_t n = cnp.PyArray_DIM(<cnp.ndarray> v, 0)
    if i < 0:
        i += n
    if not 0 <= i < n:
        return None  # the general path raises NumPy's IndexError
    cdef Py_ssize_t l, k = cnp.PyArray_DIM(<cnp.ndarray> t, 0)
    cdef Py_ssize_t s0 = cnp.PyArray_STRIDE(<cnp.ndarray> t, 0)
    cdef Py_ssize_t s1 = cnp.PyArray_STRIDE(<cnp.ndarray> t, 1)
    cdef char* base = <char*> cnp.PyArray_DATA(<cnp.ndarray> t) + i * s1
    cdef Dual d = _new_dual(_ptr(v)[i], k, a.tag)
    for l in range(k):
        d.p[l] = (<double*> (base + l * s0))[0]
    return d


cdef tuple _lane_key(object key):
    if type(key) is tuple:
        return (slice(None),) + <tuple> key
    return (slice(None), key)


cdef object _check_key(object key):
    """Reject tracers used as indices (their value would silently lose its derivative)."""
    if _is_tracer(key):
        raise TypeError(tracer_index(type(key).__name__))
    if type(key) is tuple:
        for k in key:
            if _is_tracer(k):
                raise TypeError(tracer_index(type(k).__name__))
    return key


def custom_jvp_call(func, jvp, args, kwargs):
    """Call a user rule registered with :func:`dualad.defrule`."""
    if kwargs:
        raise TypeError(f"{getattr(func, '__name__', func)}: keyword arguments are not "
                        "supported by custom rules")
    args = _normalized(tuple(args))
    cdef Py_ssize_t tag = tag_of(args)
    if tag < 0:
        return func(*args)
    prim, tans = [], []
    for a in args:
        v, t = split(a, tag)
        prim.append(v)
        tans.append(t)
    value, tangent = jvp(tuple(prim), tuple(tans))
    value = as_value(value)
    tangent = np.broadcast_to(tangent, (next(t for t in tans if t is not None).shape[0],)
                              + value.shape)
    return _wrap(value, tangent, tag)


# ---------------------------------------------------------------------------------------

@cython.final
cdef class DualArray:
    """DualArray(value, tangent, tag=0)

    An array of forward-mode values: a float64 ``value`` array of shape ``s`` and its
    ``tangent``, shape ``(k,) + s``, holding ``k`` directional derivatives ("lanes").

    A ``DualArray`` behaves like an ndarray inside your function: NumPy ufuncs and the
    supported NumPy functions accept it, arithmetic works with ndarrays, scalars and
    :class:`Dual` values on either side, indexing with ints, slices, ``...``, ``None``,
    boolean masks and integer arrays works (a single element is a :class:`Dual`), and
    item assignment (``y[i] = ...``) updates it without touching the arrays it was made
    from.  The transforms (:func:`dualad.jacobian`, :func:`dualad.jvp`...) create them.

    Parameters
    ----------
    value : array_like
        The primal values; converted to float64.
    tangent : array_like
        The tangents, shape ``(k,) + value.shape``.
    tag : int, optional
        The differentiation the array belongs to.

    Attributes
    ----------
    value : ndarray
        The primal values.
    tangent : ndarray, shape (k,) + value.shape
        The tangent lanes.
    tag : int
        The tag.

    Raises
    ------
    ValueError
        If the tangent's shape is not ``(k,) + value.shape``.
    TypeError
        For complex or object input.

    Examples
    --------
    >>> import numpy as np
    >>> from dualad import DualArray
    >>> x = DualArray([1.0, 2.0], [[1.0, 0.0], [0.0, 1.0]])   # two lanes: the identity
    >>> y = np.sum(x ** 2)                                     # a Dual
    >>> y.value, y.partials                                    # the gradient 2x
    (5.0, array([2., 4.]))
    """

    cdef readonly object value
    cdef readonly object tangent
    cdef readonly Py_ssize_t tag
    cdef bint owns

    __array_priority__ = 100.0

    def __init__(self, value, tangent, tag=0):
        for a in (value, tangent):
            if np.iscomplexobj(a):
                raise TypeError(complex_input("forward"))
        v = np.array(value, dtype=np.float64)
        t = np.array(tangent, dtype=np.float64)
        if t.ndim != v.ndim + 1 or t.shape[1:] != v.shape:
            raise ValueError(f"tangent must have shape (k,) + value.shape = (k,) + "
                             f"{v.shape}, got {t.shape}")
        self.value = v
        self.tangent = t
        self.tag = int(tag)
        self.owns = True

    def __reduce__(self):
        if type(self.value) is not NDARRAY or type(self.tangent) is not NDARRAY:
            raise TypeError("a nested DualArray (inside another differentiation) cannot "
                            "be pickled")
        return (DualArray, (self.value, self.tangent, self.tag))

    def __repr__(self):
        return f"DualArray(value={self.value!r}, tangent={self.tangent!r}, tag={self.tag})"

    # -- array attributes --------------------------------------------------------------
    @property
    def shape(self):
        """tuple of int: the shape of the value."""
        return self.value.shape

    @property
    def ndim(self):
        """int: the number of value dimensions."""
        return self.value.ndim

    @property
    def size(self):
        """int: the number of values."""
        return self.value.size

    @property
    def dtype(self):
        """numpy.dtype: always float64."""
        return np.dtype(np.float64)

    @property
    def lanes(self):
        """int: the number of tangent lanes ``k``."""
        return self.tangent.shape[0]

    @property
    def T(self):
        """DualArray: the transpose (``np.transpose(self)``)."""
        return np.transpose(self)

    def __len__(self):
        if self.value.ndim == 0:
            raise TypeError("len() of a 0-d DualArray")
        return self.value.shape[0]

    def __iter__(self):
        if self.value.ndim == 0:
            raise TypeError("iteration over a 0-d DualArray")
        for i in range(self.value.shape[0]):
            yield self[i]

    # -- conversions that would drop the derivative ------------------------------------
    def __float__(self):
        raise TypeError(float_conversion("DualArray", "float() or a math-module function"))

    def __int__(self):
        raise TypeError(float_conversion("DualArray", "int()"))

    def __index__(self):
        raise TypeError(float_conversion("DualArray", "an integer conversion"))

    def __complex__(self):
        raise TypeError(float_conversion("DualArray", "complex()"))

    def __bool__(self):
        return bool(primal(self))

    # -- indexing ----------------------------------------------------------------------
    def __getitem__(self, key):
        if type(key) is int:
            r = _element_1d(self, key)
            if r is not None:
                return r
        _check_key(key)
        if isinstance(key, (list, DualArray)):
            key = np.asarray(key) if not isinstance(key, DualArray) else key
        v = self.value[key]
        t = self.tangent[_lane_key(key)]
        r = _wrap(v, t, self.tag)
        if type(r) is DualArray:
            # a view shares this array's storage, so it may write where this one may
            # (NumPy's semantics: a write through either is seen by both)
            (<DualArray> r).owns = self.owns
        return r

    def __setitem__(self, key, item):
        _check_key(key)
        item = normalize(item)
        cdef Py_ssize_t tag = self.tag
        cdef Py_ssize_t itag = tag_of((item,))
        cdef Py_ssize_t k = self.tangent.shape[0]
        if itag > tag:
            # The item belongs to a newer differentiation: this array becomes a value of
            # that level (a constant there) whose value is the old traced array.
            ik = _lanes(item)
            self.value = _make(self.value, self.tangent, self.tag)
            self.tangent = np.zeros((ik,) + self.value.shape)
            self.tag = itag
            self.owns = False
            tag, k = itag, ik
        iv, it = split(item, tag)
        if not self.owns or not _writeable(self.value) or not _writeable(self.tangent):
            self.value = self.value.copy()
            self.tangent = self.tangent.copy()
            self.owns = True
        if type(self.value) is NDARRAY and is_tracer(iv):
            # a traced value goes into plain storage: lift the storage to the item's level
            self.value = _lift_storage(self.value, iv)
        self.value[key] = iv
        lk = _lane_key(key)
        if it is None:
            self.tangent[lk] = 0.0
        else:
            if type(self.tangent) is NDARRAY and is_tracer(it):
                self.tangent = _lift_storage(self.tangent, it)
            sub = self.tangent[lk]
            self.tangent[lk] = _pad(it, np.ndim(sub) - 1) if np.ndim(it) >= 1 else it

    # -- arithmetic operators (all through the ufuncs) ---------------------------------
    def __add__(self, other):
        return _operator(self, other, np.add, False)

    # In-place operators write into this array, as NumPy's do (a view writes through to
    # the array it views); without them Python would rebind the name instead.
    def __iadd__(self, other):
        return _nm.inplace(self, np.add, other) if _binop_ok(other) else NotImplemented

    def __isub__(self, other):
        return _nm.inplace(self, np.subtract, other) if _binop_ok(other) else NotImplemented

    def __imul__(self, other):
        return _nm.inplace(self, np.multiply, other) if _binop_ok(other) else NotImplemented

    def __itruediv__(self, other):
        return _nm.inplace(self, np.true_divide, other) if _binop_ok(other) else NotImplemented

    def __ipow__(self, other):
        return _nm.inplace(self, np.power, other) if _binop_ok(other) else NotImplemented

    def __radd__(self, other):
        return _operator(self, other, np.add, True)

    def __sub__(self, other):
        return _operator(self, other, np.subtract, False)

    def __rsub__(self, other):
        return _operator(self, other, np.subtract, True)

    def __mul__(self, other):
        return _operator(self, other, np.multiply, False)

    def __rmul__(self, other):
        return _operator(self, other, np.multiply, True)

    def __truediv__(self, other):
        return _operator(self, other, np.true_divide, False)

    def __rtruediv__(self, other):
        return _operator(self, other, np.true_divide, True)

    def __pow__(self, other, mod):
        if mod is not None:
            return NotImplemented
        return _operator(self, other, np.power, False)

    def __rpow__(self, other, mod):
        if mod is not None or not _binop_ok(other):
            return NotImplemented
        return np.power(other, self)

    def __mod__(self, other):
        return np.remainder(self, other) if _binop_ok(other) else NotImplemented

    def __rmod__(self, other):
        return np.remainder(other, self) if _binop_ok(other) else NotImplemented

    def __floordiv__(self, other):
        return np.floor_divide(self, other) if _binop_ok(other) else NotImplemented

    def __rfloordiv__(self, other):
        return np.floor_divide(other, self) if _binop_ok(other) else NotImplemented

    def __matmul__(self, other):
        return np.matmul(self, other) if _binop_ok(other) else NotImplemented

    def __rmatmul__(self, other):
        return np.matmul(other, self) if _binop_ok(other) else NotImplemented

    def __neg__(self):
        return np.negative(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return np.absolute(self)

    def __lt__(self, other):
        return np.less(self, other)

    def __le__(self, other):
        return np.less_equal(self, other)

    def __gt__(self, other):
        return np.greater(self, other)

    def __ge__(self, other):
        return np.greater_equal(self, other)

    def __eq__(self, other):
        return np.equal(self, other)

    def __ne__(self, other):
        return np.not_equal(self, other)

    __hash__ = None

    # -- NumPy protocols -----------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "__call__":
            return generic_ufunc(ufunc, inputs, kwargs)
        return generic_ufunc_method(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return generic_array_function(func, types, args, kwargs)

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(x)``: an object array of :class:`Dual` values.

        Code that calls ``np.asarray`` on its input (SciPy's array-API functions do)
        keeps working, element by element.  A float dtype would drop the derivative and
        raises ``TypeError``.
        """
        if dtype is not None and np.dtype(dtype) != np.dtype(object):
            raise TypeError(float_conversion(
                "DualArray", f"conversion to a {np.dtype(dtype)} ndarray"))
        return _to_objects(self)

    # -- ndarray methods (written once in dualad/_ndarray_methods.py) -----------------------
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
        """A copy that shares no memory with this array."""
        return _make(self.value.copy(), self.tangent.copy(), self.tag)

    def astype(self, dtype, copy=True):
        """A float64 copy; other dtypes would drop the derivative and raise TypeError."""
        if np.dtype(dtype) != np.float64:
            raise TypeError(f"DualArray.astype({dtype!r}): dualad values are float64; "
                            "other dtypes would drop the derivative")
        return self.copy() if copy else self

    def tolist(self):
        """A (nested) list of :class:`Dual` values."""
        if self.value.ndim == 0:
            return self[()]
        return [row.tolist() if isinstance(row, DualArray) else row for row in self]







cdef object _lift_storage(object plain, object like):
    """Plain storage as a value of the level of tracer ``like`` (any mode), so that
    ``like``'s values can be assigned into it: a traced zero of its shape plus it."""
    return np.zeros_like(like, shape=plain.shape) + plain


cdef bint _writeable(object a):
    if type(a) is NDARRAY:
        return (<cnp.ndarray> a).flags.writeable
    return True


cdef Py_ssize_t _lanes(object o):
    if type(o) is DualArray:
        return (<DualArray> o).tangent.shape[0]
    return (<Dual> o).k


cdef object _operator(DualArray self, object other, object ufunc, bint reflected):
    """An arithmetic operator: the fused loop straight away when the operands qualify
    (skipping NumPy's override dispatch, about 0.4 us), else the ufunc."""
    cdef type t = type(other)
    if t is DualArray or t is float or t is int or t is NDARRAY or t is Dual:
        r = _fast_binary(other, self, BINARY_INDEX[ufunc], ufunc is np.power) \
            if reflected else _fast_binary(self, other, BINARY_INDEX[ufunc],
                                           ufunc is np.power)
        if r is not None:
            return r
    if not _binop_ok(other):
        return NotImplemented
    return ufunc(other, self) if reflected else ufunc(self, other)


cdef inline bint _binop_ok(object other):
    if isinstance(other, complex):
        raise TypeError(complex_input("forward"))
    return (isinstance(other, (float, int, np.ndarray, np.generic, Dual, DualArray, list,
                               tuple)))
