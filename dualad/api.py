"""Public transforms: ``derivative``, ``jvp``, ``jacobian``, ``grad``.

Design note
-----------
Each transform is a few lines over the engine (:mod:`dualad.forward`): it validates the
input, asks the engine for values and tangents, and shapes the result the way SciPy
expects (float64 ndarrays; ``jac(x, *args)`` has the shape of ``x``; a Jacobian has shape
``f(x).shape + x.shape``).  Transforms return small callable objects rather than closures
so that they print usefully and pickle whenever ``fun`` does.

Only forward mode exists so far; ``mode="reverse"`` raises ``NotImplementedError`` until
the reverse-mode engine lands, rather than silently running forward mode.
"""

import numpy as np

from . import forward
from ._array import DualArray
from ._errors import MixedTracerError
from ._scalar import Dual, HyperDual, derivative1, dual_lane, seed_dual, seed_hyperdual
from ._tags import new_tag

__all__ = ["derivative", "jvp", "jacobian", "grad"]

_MODES = ("auto", "forward", "reverse")


def _check_mode(mode):
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    if mode == "reverse":
        raise NotImplementedError(
            "mode='reverse' is not available yet: this version of dualad has forward mode "
            "only. Use mode='forward' (or 'auto').")
    return "forward"


def _float_out(value):
    """Plain results as float64 ndarrays (0-d results as NumPy floats)."""
    if isinstance(value, (Dual, DualArray)):
        return value
    arr = np.asarray(value, dtype=np.float64)
    return arr[()] if arr.ndim == 0 else arr


class _Transform:
    """Base of the callables the transforms return (picklable if ``fun`` is)."""

    _kind = "transform"

    def __init__(self, fun):
        if not callable(fun):
            raise TypeError(f"{self._kind} expects a callable, got {type(fun).__name__}")
        self.fun = fun
        self.__name__ = f"{self._kind}({getattr(fun, '__name__', 'fun')})"
        self.__doc__ = getattr(fun, "__doc__", None)

    def __repr__(self):
        return f"<dualad {self.__name__}>"


class _Derivative(_Transform):
    _kind = "derivative"

    def __init__(self, fun, order):
        super().__init__(fun)
        if int(order) != order or order < 1:
            raise ValueError(f"order must be a positive integer, got {order!r}")
        self.order = int(order)
        self.mode = "forward"
        self._inner = fun if order == 1 else _Derivative(fun, order - 1)

    def __call__(self, x, *args):
        if self.order == 1 and (isinstance(x, float) or type(x) is int):
            # the hot path: a Python number in, one Dual evaluation in C
            out = derivative1(self.fun, x, args)
            if type(out) is float:
                return np.float64(out)
            value, tangent = forward.extract(out[0], out[1], 1)
            return _float_out(tangent[0])
        if isinstance(x, (Dual, DualArray)):
            return self._traced(x, args)
        x = forward.as_input(x)
        if x.ndim != 0:
            raise ValueError(f"derivative needs a scalar x, got an array of shape {x.shape};"
                             " use dualad.jacobian (or dualad.grad) for array inputs")
        if self.order == 2:
            try:
                return self._second(float(x), args)
            except MixedTracerError:
                # fun mixes x with values of an enclosing differentiation: HyperDuals
                # cannot carry those, nested Dual sweeps can (also exact).
                return self._traced(x, args)
        if self.order > 2:
            return self._traced(x, args)
        tag = new_tag()
        out = self.fun(seed_dual(float(x), tag), *args)
        d = dual_lane(out, tag, 0)
        if d is not None:
            return np.float64(d)
        value, tangent = forward.extract(out, tag, 1)
        return _float_out(tangent[0])

    def _second(self, x, args):
        tag = new_tag()
        out = self.fun(seed_hyperdual(x, tag), *args)
        if type(out) is HyperDual:
            if out.tag == tag:
                return np.float64(out.eps12)
            return np.float64(0.0)
        arr = np.asarray(out, dtype=object) if not isinstance(out, np.ndarray) else out
        if arr.dtype != object:
            return np.zeros(arr.shape)
        flat = [e.eps12 if isinstance(e, HyperDual) and e.tag == tag else 0.0
                for e in arr.ravel()]
        if any(isinstance(e, (Dual, DualArray)) for e in arr.ravel()):
            raise TypeError("derivative(order=2) got Dual values from a HyperDual "
                            "evaluation; nested transforms inside an order-2 derivative "
                            "use derivative(derivative(f))")
        return np.asarray(flat, dtype=np.float64).reshape(arr.shape)[()]

    def _traced(self, x, args):
        # x belongs to an enclosing differentiation, or order > 2: one first-order
        # forward sweep over the derivative of one order less (tags keep levels apart).
        shape = tuple(x.shape)
        value, tangent = forward.push(self._inner, x, np.ones((1,) + shape), args)
        return _float_out(tangent[0])


def derivative(fun, order=1):
    """Derivative of a function of one real variable.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args)`` with scalar ``x``, written with NumPy (``np.sin``, ``**``...);
        it may return a scalar or an array.
    order : int, optional
        1 (default) uses a :class:`Dual`; 2 uses a :class:`HyperDual` (exact, no
        truncation error); higher orders nest first-order forward sweeps.

    Returns
    -------
    callable
        ``df(x, *args)`` returning the derivative as a float64 scalar, or a float64
        array of the shape of ``fun``'s output.

    Raises
    ------
    ValueError
        If ``x`` is not a scalar.
    TypeError
        If ``fun`` calls ``float()``/``math.*`` on its argument or uses a NumPy
        function without a derivative rule.

    See Also
    --------
    jacobian, grad, jvp

    Notes
    -----
    Cost: one evaluation of ``fun`` on dual numbers (order 1 and 2).

    Examples
    --------
    >>> import numpy as np
    >>> import dualad
    >>> df = dualad.derivative(lambda x: np.sin(x) * x)
    >>> float(df(0.0)), float(df(np.pi / 2))
    (0.0, 1.0)
    >>> d2 = dualad.derivative(lambda x: x ** 3, order=2)
    >>> float(d2(2.0))
    12.0
    >>> dualad.derivative(lambda t: np.array([t, t ** 2]))(3.0)
    array([1., 6.])
    """
    return _Derivative(fun, order)


def jvp(fun, x, v, *args):
    """Jacobian-vector product: ``(fun(x), J(x) @ v)`` in one forward sweep.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args)`` written with NumPy.
    x : array_like
        The point; integers are promoted to float64.
    v : array_like
        The direction, same shape as ``x``.
    *args
        Extra arguments passed to ``fun`` unchanged.

    Returns
    -------
    value : ndarray or float
        ``fun(x, *args)``.
    tangent : ndarray or float
        The directional derivative, shape of ``value``.

    Raises
    ------
    ValueError
        If ``v`` does not have the shape of ``x``.

    See Also
    --------
    jacobian

    Notes
    -----
    Cost: one evaluation of ``fun`` on dual numbers with one lane.

    Examples
    --------
    >>> import numpy as np
    >>> import dualad
    >>> value, tangent = dualad.jvp(lambda x: x ** 2, np.array([1.0, 2.0]), np.array([1.0, 0.5]))
    >>> value, tangent
    (array([1., 4.]), array([2., 2.]))
    """
    value, tangent = forward.jvp(fun, x, v, args)
    return _float_out(value), _float_out(tangent)


class _Jacobian(_Transform):
    _kind = "jacobian"

    def __init__(self, fun, mode, chunk):
        super().__init__(fun)
        self.requested_mode = mode
        self.mode = _check_mode(mode)
        if chunk is not None and (int(chunk) != chunk or chunk < 1):
            raise ValueError(f"chunk must be a positive integer or None, got {chunk!r}")
        self.chunk = chunk

    def __call__(self, x, *args):
        value, jac = forward.jacobian(self.fun, x, args, self.chunk)
        return _float_out(jac)


def jacobian(fun, mode="forward", chunk=None):
    """Jacobian of a function of an array.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args)`` written with NumPy, returning a scalar or an array.
    mode : {"forward", "auto", "reverse"}, optional
        Differentiation mode.  Only forward mode exists in this version ("auto" picks
        it; "reverse" raises ``NotImplementedError``).
    chunk : int, optional
        Directions pushed per sweep.  By default all inputs up to 12 go in one sweep;
        larger inputs use the fewest sweeps of at most 12 lanes.

    Returns
    -------
    callable
        ``jac(x, *args)`` returning a float64 array of shape
        ``fun(x).shape + x.shape`` (SciPy's ``(m, n)`` for vector in and out).

    Raises
    ------
    ValueError
        For an unknown mode or a non-positive chunk.

    See Also
    --------
    grad, jvp, derivative

    Notes
    -----
    Cost: ``ceil(n / chunk)`` evaluations of ``fun`` on dual arrays with ``chunk``
    tangent lanes each, ``n = x.size``.

    Examples
    --------
    >>> import numpy as np
    >>> import dualad
    >>> J = dualad.jacobian(lambda x: np.array([x[0] * x[1], np.sin(x[0])]))
    >>> J(np.array([2.0, 3.0]))
    array([[ 3.        ,  2.        ],
           [-0.41614684,  0.        ]])
    """
    return _Jacobian(fun, mode, chunk)


class _Grad(_Jacobian):
    _kind = "grad"

    def __call__(self, x, *args):
        value, jac = forward.jacobian(self.fun, x, args, self.chunk)
        if np.shape(value) != ():
            raise ValueError("grad needs a function with a scalar output; it returned "
                             f"shape {np.shape(value)}. Use dualad.jacobian instead.")
        return _float_out(jac)


def grad(fun, mode="forward", chunk=None):
    """Gradient of a scalar function of an array.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args)`` written with NumPy, returning a scalar.
    mode : {"forward", "auto", "reverse"}, optional
        Differentiation mode.  Only forward mode exists in this version.
    chunk : int, optional
        Directions per forward sweep (see :func:`jacobian`).

    Returns
    -------
    callable
        ``jac(x, *args)`` returning a float64 array with the shape of ``x``: SciPy's
        ``jac=`` convention.

    Raises
    ------
    ValueError
        If ``fun`` returns a non-scalar.

    See Also
    --------
    jacobian, derivative

    Notes
    -----
    Cost in forward mode: ``ceil(n / chunk)`` sweeps; reverse mode (planned) will make
    this independent of ``n``.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.optimize import rosen, rosen_der
    >>> import dualad
    >>> x = np.array([1.3, 0.7, 0.8])
    >>> np.allclose(dualad.grad(rosen)(x), rosen_der(x), rtol=1e-14)
    True
    """
    return _Grad(fun, mode, chunk)
