# Floating-point flags, shared by the C cores (_scalar, _array, _tape, _hyper).
#
# A partial such as 0.5 / sqrt(0), or log(x < 0) for a constant exponent, raises a flag
# the user never asked for; NumPy reads leftover flags after its next loop and would
# warn there, at an unrelated line.  The cores clear them after computing partials.

cdef extern from "<fenv.h>" nogil:
    int feclearexcept(int excepts)
    int fetestexcept(int excepts)
    int FE_INVALID
    int FE_DIVBYZERO
    int FE_OVERFLOW
    int FE_UNDERFLOW


cdef inline void clear_fp_flags() noexcept nogil:
    """Drop the invalid, divide-by-zero, overflow and underflow flags (testing first is
    much cheaper than clearing unconditionally)."""
    cdef int flags = FE_INVALID | FE_DIVBYZERO | FE_OVERFLOW | FE_UNDERFLOW
    if fetestexcept(flags):
        feclearexcept(flags)


cdef inline bint fp_raised() noexcept nogil:
    """Whether a flag NumPy reports by default is set (it ignores underflow)."""
    return fetestexcept(FE_INVALID | FE_DIVBYZERO | FE_OVERFLOW) != 0
