# The scalar extension types.  What other modules cimport: the types' layout and the
# C factories.  Changing this file changes dualad's C API.

# Partials up to this many lanes live inside the object (no malloc); more go on the heap.
cdef enum:
    INLINE_LANES = 12


cdef class _Scalar:
    cdef readonly double value
    cdef readonly Py_ssize_t tag
    cdef object _equals(self, object other)
    cdef object _hash(self)


cdef class Dual(_Scalar):
    cdef Py_ssize_t k
    cdef double* p
    cdef double buf[INLINE_LANES]


cdef class HyperDual(_Scalar):
    cdef readonly double eps1
    cdef readonly double eps2
    cdef readonly double eps12
    cdef bint ready


cdef Dual _new_dual(double value, Py_ssize_t k, Py_ssize_t tag)
cdef HyperDual _new_hyperdual(double value, double eps1, double eps2, double eps12,
                              Py_ssize_t tag)
