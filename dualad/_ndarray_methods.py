"""The ndarray methods traced arrays offer, written once for every tracer type.

Design note
-----------
``DualArray`` (forward mode) and ``RArray`` (reverse mode) both behave like ndarrays
inside user code.  Their methods only forward to the NumPy function of the same name,
which dispatches back through ``__array_function__`` to the mode's rules, or -- for
index-valued methods -- act on the primal values.  Both extension types take these
functions as class attributes, so each method is written once.
"""

import numpy as np

__all__ = ["METHODS", "inplace"]


def _primal(x):
    # imported here: the extension modules import this one while they initialise
    from ._array import primal
    return primal(x)


def sum(self, axis=None, dtype=None, out=None, keepdims=False):  # noqa: A001
    """Sum of the elements (``np.sum``)."""
    return np.sum(self, axis=axis, dtype=dtype, out=out, keepdims=keepdims)


def mean(self, axis=None, dtype=None, out=None, keepdims=False):
    """Mean of the elements (``np.mean``)."""
    return np.mean(self, axis=axis, dtype=dtype, out=out, keepdims=keepdims)


def prod(self, axis=None, dtype=None, out=None, keepdims=False):
    """Product of the elements (``np.prod``)."""
    return np.prod(self, axis=axis, dtype=dtype, out=out, keepdims=keepdims)


def max(self, axis=None, out=None, keepdims=False):  # noqa: A001
    """Maximum (``np.max``); ties share the derivative evenly."""
    return np.max(self, axis=axis, out=out, keepdims=keepdims)


def min(self, axis=None, out=None, keepdims=False):  # noqa: A001
    """Minimum (``np.min``); ties share the derivative evenly."""
    return np.min(self, axis=axis, out=out, keepdims=keepdims)


def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    """Variance (``np.var``)."""
    return np.var(self, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims)


def std(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    """Standard deviation (``np.std``)."""
    return np.std(self, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims)


def cumsum(self, axis=None):
    """Cumulative sum (``np.cumsum``)."""
    return np.cumsum(self, axis=axis)


def cumprod(self, axis=None):
    """Cumulative product (``np.cumprod``)."""
    return np.cumprod(self, axis=axis)


def reshape(self, *shape, order="C"):
    """Reshape (``np.reshape``); accepts ``reshape(2, 3)`` and ``reshape((2, 3))``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return np.reshape(self, shape, order=order)


def ravel(self, order="C"):
    """Flatten to 1-D (``np.ravel``)."""
    return np.ravel(self, order=order)


def flatten(self, order="C"):
    """Flatten to a 1-D copy."""
    return np.ravel(self, order=order).copy()


def transpose(self, *axes):
    """Permute the axes (``np.transpose``)."""
    if len(axes) == 0:
        axes = None
    elif len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
        axes = axes[0]
    return np.transpose(self, axes)


def swapaxes(self, axis1, axis2):
    """Interchange two axes (``np.swapaxes``)."""
    return np.swapaxes(self, axis1, axis2)


def squeeze(self, axis=None):
    """Remove length-one axes (``np.squeeze``)."""
    return np.squeeze(self, axis=axis)


def dot(self, other):
    """Dot product (``np.dot``)."""
    return np.dot(self, other)


def trace(self, offset=0, axis1=0, axis2=1):
    """Sum along a diagonal (``np.trace``)."""
    return np.trace(self, offset=offset, axis1=axis1, axis2=axis2)


def diagonal(self, offset=0, axis1=0, axis2=1):
    """A diagonal (``np.diagonal``)."""
    return np.diagonal(self, offset=offset, axis1=axis1, axis2=axis2)


def clip(self, min=None, max=None):  # noqa: A002
    """Clip the values (``np.clip``)."""
    return np.clip(self, min, max)


def take(self, indices, axis=None):
    """Take elements (``np.take``)."""
    return np.take(self, indices, axis=axis)


def repeat(self, repeats, axis=None):
    """Repeat elements (``np.repeat``)."""
    return np.repeat(self, repeats, axis=axis)


def argmax(self, axis=None):
    """Index of the maximum (plain integers)."""
    return np.argmax(_primal(self), axis=axis)


def argmin(self, axis=None):
    """Index of the minimum (plain integers)."""
    return np.argmin(_primal(self), axis=axis)


def argsort(self, axis=-1):
    """Indices that sort the values (plain integers)."""
    return np.argsort(_primal(self), axis=axis)


def all(self, axis=None):  # noqa: A001
    """Whether all values are non-zero."""
    return np.all(_primal(self), axis=axis)


def any(self, axis=None):  # noqa: A001
    """Whether any value is non-zero."""
    return np.any(_primal(self), axis=axis)


METHODS = ("sum", "mean", "prod", "max", "min", "var", "std", "cumsum", "cumprod",
           "reshape", "ravel", "flatten", "transpose", "swapaxes", "squeeze", "dot",
           "trace", "diagonal", "clip", "take", "repeat", "argmax", "argmin", "argsort",
           "all", "any")


def inplace(self, ufunc, other):
    """``self op= other`` as NumPy does it: the result is written into ``self`` (and,
    through a view, into the array it views) instead of rebinding the name.  The
    tracer types' in-place operators call this once their operand check passed."""
    self[...] = ufunc(self, other)
    return self
