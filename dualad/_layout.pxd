# Array layout helpers shared by the forward (dualad/_array.pyx) and reverse
# (dualad/_tape.pyx) fast paths: which tangent stacks the C loops can read, and new
# float64 arrays allocated through NumPy's C API (no Python-level calls).

cimport numpy as cnp


cdef inline Py_ssize_t lane_stride(object t, object v, Py_ssize_t k=-1):
    """Lane stride (in doubles) of a float64 tangent of shape ``(k,) + v.shape`` whose
    every lane is C-contiguous and shaped like the C-contiguous value ``v``; -1 if the
    tangent does not qualify (``k < 0``: any number of lanes).

    Slices along the first value axis (``x[1:]``) keep lanes contiguous, so they stay on
    the fused paths even though the tangent stack as a whole is not contiguous.
    """
    if type(t) is not cnp.ndarray:
        return -1
    cdef cnp.ndarray ta = <cnp.ndarray> t
    cdef cnp.ndarray va = <cnp.ndarray> v
    cdef int nd = cnp.PyArray_NDIM(va), d
    if cnp.PyArray_TYPE(ta) != cnp.NPY_DOUBLE or cnp.PyArray_NDIM(ta) != nd + 1:
        return -1
    cdef cnp.npy_intp* ts = cnp.PyArray_STRIDES(ta)
    cdef cnp.npy_intp* tshape = cnp.PyArray_DIMS(ta)
    cdef cnp.npy_intp* vshape = cnp.PyArray_DIMS(va)
    cdef cnp.npy_intp expect = sizeof(double)
    if k >= 0 and tshape[0] != k:
        return -1
    for d in range(nd - 1, -1, -1):
        if tshape[d + 1] != vshape[d]:
            return -1
        if vshape[d] > 1 and ts[d + 1] != expect:
            return -1
        expect *= vshape[d]
    if tshape[0] > 1 and (ts[0] <= 0 or ts[0] % sizeof(double) != 0):
        return -1
    return ts[0] // sizeof(double) if tshape[0] > 1 else 0


cdef inline cnp.ndarray empty_array(object like, Py_ssize_t lanes=-1):
    """A new C-contiguous float64 array of ``like``'s shape, or with ``lanes >= 0`` of
    shape ``(lanes,) + like.shape`` (tangent lanes)."""
    cdef cnp.npy_intp dims[65]  # NumPy 2 allows 64 dimensions, lanes included
    cdef int d, nd = cnp.PyArray_NDIM(<cnp.ndarray> like)
    cdef int off = 1 if lanes >= 0 else 0
    if nd + off > 64:
        raise ValueError(f"an array of {nd + off} dimensions: NumPy allows at most 64")
    dims[0] = lanes
    for d in range(nd):
        dims[d + off] = cnp.PyArray_DIM(<cnp.ndarray> like, d)
    return cnp.PyArray_EMPTY(nd + off, dims, cnp.NPY_DOUBLE, 0)


cdef inline bint same_shape(object a, object b):
    """Whether two ndarrays have one shape."""
    cdef int d, nd = cnp.PyArray_NDIM(<cnp.ndarray> a)
    if cnp.PyArray_NDIM(<cnp.ndarray> b) != nd:
        return False
    for d in range(nd):
        if cnp.PyArray_DIM(<cnp.ndarray> a, d) != cnp.PyArray_DIM(<cnp.ndarray> b, d):
            return False
    return True
