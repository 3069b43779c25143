"""Second-order engine: Hessians and Hessian-vector products as nested sweeps.

Design note
-----------
Both strategies differentiate a *gradient* once more in forward mode; they differ in how
the inner gradient is computed:

- ``"reverse"`` (forward-over-reverse): the inner gradient is one recording and one
  backward sweep over values that carry the outer tangents (``DualArray`` values on the
  tape).  An HVP is one such sweep with one lane, a small constant times one gradient
  whatever ``n`` is; a Hessian is ``ceil(n / k)`` sweeps with ``k`` lanes.
- ``"forward"`` (forward-over-forward): the inner gradient is itself a forward sweep
  with ``n`` lanes, nested inside the outer sweep; no tape at all, which wins for small
  ``n`` (one nested evaluation gives the whole Hessian up to 12 inputs).

Nothing here knows a rule: the rules are the ones of the first-order engines, which are
written in differentiable operations, so nesting them is exact (tags keep the two levels
apart; see :mod:`dualad._tags`).
"""

import math

import numpy as np

from . import forward, reverse
from ._array import DualArray, is_tracer
from ._scalar import Dual

__all__ = ["REVERSE_HESSIAN_CHUNK", "REVERSE_HESSIAN_ONE_SWEEP", "value_grad_hessian",
           "value_grad_hvp"]

#: Hessian columns per forward-over-reverse sweep by default.  Each sweep records the
#: function once with values that carry that many lanes; wide lanes are vectorised, so
#: fewer, wider sweeps win (Rosenbrock n = 100: 0.54 ms at 64 lanes, 1.9 ms at 12).
#: Up to :data:`REVERSE_HESSIAN_ONE_SWEEP` inputs take one sweep with ``n`` lanes: more
#: sweeps cost more than the extra width (Rosenbrock with the nested C path, one sweep
#: against sweeps of 64 lanes: n = 100: 85 against 110 us; n = 256: 0.52 against
#: 1.1 ms).  The bound keeps a sweep's arrays (``n`` lanes of ``n`` numbers each) at
#: the size 64 lanes have for n = 1000.
REVERSE_HESSIAN_CHUNK = 64
REVERSE_HESSIAN_ONE_SWEEP = 256


def _scalar_output(value, kind):
    shape = getattr(value, "shape", None)
    if shape is None:
        shape = np.shape(value)
    if tuple(shape) != ():
        raise ValueError(f"{kind} needs a function with a scalar output; it returned "
                         f"shape {tuple(shape)}. Use dualad.jacobian for vector outputs.")


class _InnerGrad:
    """``g(x, *args)``: the gradient of ``fun`` at a traced ``x``, computed in ``mode``;
    the (traced) value of ``fun`` is kept in ``self.value``."""

    def __init__(self, fun, mode, kind):
        self.fun = fun
        self.mode = mode
        self.kind = kind
        self.value = None

    def __call__(self, x, *args):
        if self.mode == "reverse":
            value, g = reverse.value_and_grad(self.fun, x, args)
            _scalar_output(value, self.kind)
            self.value = value
            return g
        value, jac = forward.jacobian(self.fun, x, args)
        _scalar_output(value, self.kind)
        self.value = value
        return jac


def _primal(value):
    """The value of ``fun`` without the outer level's tangents."""
    if type(value) is Dual or type(value) is DualArray:
        value = value.value
    if is_tracer(value):
        return value
    return np.float64(value)


def value_grad_hvp(fun, x, v, args, mode):
    """``(f(x), grad f(x), H(x) v)`` from one nested sweep.

    Parameters
    ----------
    fun : callable
        Scalar function ``fun(x, *args)``.
    x : ndarray or tracer
        The point (validated by :func:`dualad.forward.as_input`).
    v : ndarray
        The direction, shape of ``x``.
    args : tuple
        Extra arguments.
    mode : {"forward", "reverse"}
        How the inner gradient is computed (see the module notes).

    Returns
    -------
    tuple
        Value (float64), gradient and product (arrays of the shape of ``x``).
    """
    inner = _InnerGrad(fun, mode, "hvp")
    shape = tuple(x.shape)
    g, hv = forward.push(inner, x, np.reshape(v, (1,) + shape).copy(), args)
    return _primal(inner.value), g, hv[0]


def value_grad_hessian(fun, x, args, mode, chunk=None):
    """``(f(x), grad f(x), H(x))`` with ``H`` of shape ``x.shape + x.shape``.

    The outer forward sweeps take ``chunk`` columns each: by default up to 12 for
    ``"forward"`` (see :func:`dualad.forward.chunk_size`) and
    :data:`REVERSE_HESSIAN_CHUNK` for ``"reverse"`` (one sweep of ``n`` lanes up to
    :data:`REVERSE_HESSIAN_ONE_SWEEP` inputs).  The result is symmetrised,
    ``(H + H.T) / 2``: both strategies are exact, and the mean only removes the last-bit
    asymmetry of rounding, so SciPy's symmetric solvers see a symmetric matrix.
    """
    inner = _InnerGrad(fun, mode, "hessian")
    shape = tuple(x.shape)
    n = math.prod(shape)
    if chunk is None and mode == "reverse":
        chunk = n if 0 < n <= REVERSE_HESSIAN_ONE_SWEEP else REVERSE_HESSIAN_CHUNK
    g, hess = forward.jacobian(inner, x, args, chunk)
    h2 = np.reshape(hess, (n, n))
    h2 = h2 + h2.T
    h2 *= 0.5  # (in place: the sum is a new array)
    return _primal(inner.value), g, np.reshape(h2, shape + shape)
