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
  ``n`` (one nested evaluation gives the whole Hessian up to 12 inputs).  A Hessian of
  up to :data:`HYPER_MAX_N` inputs takes a faster road first: one evaluation on
  :class:`dualad._hyper.HessianArray` values, which carry the value, the gradient and
  the Hessian's upper triangle of every element in C buffers (the hyper-dual idea for
  all ``n`` directions at once).  That type covers what small objectives use; a
  function that needs more (see :mod:`dualad._hyper`) is evaluated again by the nested
  sweeps, and remembered so that later calls go there directly.

Nothing here knows a rule: the rules are the ones of the first-order engines, which are
written in differentiable operations, so nesting them is exact (tags keep the two levels
apart; see :mod:`dualad._tags`).

A Hessian-vector product in reverse mode on plain arrays first tries a cheaper route to
the same numbers: one recording with plain values, replayed once more for ``H v``
(:func:`dualad.reverse.record`; the replay, in ``dualad/_tape.pyx``, applies the rule
table's second partials node by node).  Functions whose recordings cannot be replayed
take the nested sweep.
"""

import math
import types
import weakref

import numpy as np

from . import _hyper, forward, reverse
from ._array import DualArray, is_tracer
from ._scalar import Dual

__all__ = ["HYPER_MAX_N", "REVERSE_HESSIAN_CHUNK", "REVERSE_HESSIAN_ONE_SWEEP",
           "value_grad_hessian", "value_grad_hvp"]

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

#: Inputs up to which ``mode="forward"`` Hessians are one evaluation on
#: ``HessianArray`` values; above, the nested sweeps.  Its work per operation grows as
#: ``size * w**2 / 2`` for elements that depend on ``w`` of the inputs (``w = n`` for a
#: dense coupling), the nested sweeps' as ``size * n**2`` plus far more overhead.
#: Rosenbrock (w = 2), HessianArray evaluation / nested sweeps / forward-over-reverse:
#: n = 16: 18 us / 1.2 ms / 63 us; n = 64: 27 us / 8.3 ms / 62 us; n = 96: 44 us /
#: 24 ms / 0.14 ms.  The bound caps the buffers (an element has room for
#: n (n + 3) / 2 + 3 numbers); an intermediate above :data:`dualad._hyper.MAX_DOUBLES`
#: numbers falls back to the nested sweeps.  ``mode="auto"`` measures the strategies.
HYPER_MAX_N = 128

# Functions on which HessianArray failed (they use something it lacks), by id() of the
# function (of the function behind a bound method, whose object is new at every
# attribute access): a weak reference to it, which drops the entry when the function
# dies, or _NO_REF for objects that take no weak reference (then a new object that
# reuses the id is sent to the nested sweeps too: slower, never wrong).  A dict keyed on the id
# is the cheapest test for the common case, a function that never failed.
_HYPER_FAILED = {}
_MAX_FAILED = 4096


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


def _check_hessian_output(value):
    _scalar_output(value, "hessian")


def _primal(value):
    """The value of ``fun`` without the outer level's tangents."""
    if type(value) is Dual or type(value) is DualArray:
        value = value.value
    if is_tracer(value):
        return value
    return np.float64(value)


# functions whose recordings did not replay (see value_grad_hvp): the nested sweep
# straight away next time.  The same memory as _HYPER_FAILED's (by id, with a weak
# reference; a bound method by the function behind it): a WeakKeyDictionary needs a
# hash, which a dataclass instance (eq=True) has not, and such a callable then
# evaluated fun twice at every product
_NO_REPLAY = {}


def _no_replay(fun):
    return _remembered(_NO_REPLAY, fun)


def _mark_no_replay(fun):
    _remember(_NO_REPLAY, fun)


def _replayed(fun, x, v, args):
    """``(f(x), grad f(x), H(x) v)`` from one replayable recording and its replay
    (:meth:`dualad.reverse.Recording.grad_hvp`), or None."""
    # (not ascontiguousarray: it makes a 0-d x 1-d, and the gradient and product too)
    x = np.asarray(x, dtype=np.float64, order="C")
    value, rec = reverse.record(fun, x, args)
    if rec is None:
        _mark_no_replay(fun)
        return None
    r = rec.grad_hvp(v)
    if r is None:
        return None  # (infinities or NaNs: the nested sweep decides)
    return np.float64(value), r[0], r[1]


def value_grad_hvp(fun, x, v, args, mode):
    """``(f(x), grad f(x), H(x) v)`` from one nested sweep, or in reverse mode from one
    recording replayed (see Notes).

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

    Notes
    -----
    In reverse mode, on plain arrays, the function is first recorded once with plain
    values and the product comes from replaying that recording
    (:func:`dualad.reverse.record`): a forward sweep of tangents and one backward
    sweep of adjoints and their tangents, with the rules' second partials from the
    rule table.  That is about two thirds of the nested sweep's cost (Rosenbrock,
    n = 10^4).  Recordings that cannot be replayed (scalar loops, array operations
    other than elementwise rules, basic slices, whole-array sums and means, C-order
    reshapes, broadcasting ``+``/``-`` and matrix products with one traced operand)
    take the nested sweep, at once for a function once seen to need it.
    """
    if mode == "reverse" and type(x) is np.ndarray and type(v) is np.ndarray and \
            not any(is_tracer(a) for a in args) and not _no_replay(fun):
        r = _replayed(fun, x, v, args)
        if r is not None:
            return r
    inner = _InnerGrad(fun, mode, "hvp")
    shape = tuple(x.shape)
    g, hv = forward.push(inner, x, np.reshape(v, (1,) + shape).copy(), args)
    return _primal(inner.value), g, hv[0]


def _failure_key(fun):
    return fun.__func__ if type(fun) is types.MethodType else fun


def _hyper_failed(fun):
    return _remembered(_HYPER_FAILED, fun)


def _remember_failure(fun):
    _remember(_HYPER_FAILED, fun)


def _remembered(table, fun):
    """Whether ``fun`` is in ``table`` (_HYPER_FAILED or _NO_REPLAY)."""
    key = _failure_key(fun)
    ref = table.get(id(key))
    return ref is not None and (ref is _NO_REF or ref() is key)


def _remember(table, fun):
    key = _failure_key(fun)
    if len(table) >= _MAX_FAILED:
        table.clear()
    i = id(key)
    try:
        ref = weakref.ref(key, lambda _, i=i: table.pop(i, None))
    except TypeError:  # no weak reference to it
        ref = _NO_REF
    table[i] = ref


def _NO_REF():  # the entry of a function without weak references
    return None


def _hyper_applies(x, args, chunk, n):
    """Whether a forward-mode Hessian may try HessianArray values: a plain input of at
    most HYPER_MAX_N numbers, no tracer among the arguments (an enclosing
    differentiation: nesting is the nested sweeps' job), no chunk below ``n``."""
    if type(x) is not np.ndarray or n > HYPER_MAX_N or (chunk is not None and chunk < n):
        return False
    for a in args:
        if is_tracer(a) or type(a) is _hyper.HessianArray or \
                isinstance(a, (list, tuple)) and any(map(is_tracer, a)):
            return False
    return True


def value_grad_hessian(fun, x, args, mode, chunk=None):
    """``(f(x), grad f(x), H(x))`` with ``H`` of shape ``x.shape + x.shape``.

    Parameters
    ----------
    fun : callable
        Scalar function ``fun(x, *args)``.
    x : ndarray or tracer
        The point (validated by :func:`dualad.forward.as_input`).
    args : tuple
        Extra arguments.
    mode : {"forward", "reverse"}
        The strategy (see the module notes).
    chunk : int, optional
        Hessian columns per outer sweep.

    Returns
    -------
    tuple
        Value (float64), gradient (shape of ``x``) and Hessian (``x.shape + x.shape``).

    Raises
    ------
    ValueError
        If ``fun`` does not return a scalar.

    Notes
    -----
    ``"forward"`` with at most :data:`HYPER_MAX_N` inputs (and no ``chunk`` below
    ``n``) evaluates ``fun`` once on :class:`dualad._hyper.HessianArray` values, which
    give the exact, symmetric Hessian at once.  If ``fun`` uses something that type does
    not support (a NumPy function outside its list, item assignment, a tracer of an
    enclosing differentiation, ``np.asarray`` on its input...), or raises any other
    error on it, ``fun`` is evaluated again by the nested sweeps below: on that first
    call ``fun`` runs twice (an error is then raised by the nested sweeps).  A function
    the nested sweeps handle where HessianArray failed is remembered, so later calls go
    to the nested sweeps at once.

    Otherwise the outer forward sweeps take ``chunk`` columns each: by default up to 12
    for ``"forward"`` (see :func:`dualad.forward.chunk_size`) and
    :data:`REVERSE_HESSIAN_CHUNK` for ``"reverse"`` (one sweep of ``n`` lanes up to
    :data:`REVERSE_HESSIAN_ONE_SWEEP` inputs).  That result is symmetrised,
    ``(H + H.T) / 2``: both strategies are exact, and the mean only removes the last-bit
    asymmetry of rounding, so SciPy's symmetric solvers see a symmetric matrix.
    """
    if mode == "forward" and not _hyper_failed(fun) and \
            _hyper_applies(x, args, chunk, x.size):
        try:
            return _hyper.hessian_of(fun, x, args, _check_hessian_output)
        except _hyper.Unsupported:
            _remember_failure(fun)
        except Exception:  # noqa: BLE001 (re-raised by the nested sweeps)
            # Any other error is left to the nested sweeps: they raise it in the words of
            # the general forward mode (a checker inside fun may not know HessianArray),
            # or succeed where only HessianArray failed.
            result = _nested_hessian(fun, x, args, mode, chunk)
            _remember_failure(fun)
            return result
    return _nested_hessian(fun, x, args, mode, chunk)


def _nested_hessian(fun, x, args, mode, chunk):
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
