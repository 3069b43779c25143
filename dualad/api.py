"""Public transforms: ``derivative``, ``jvp``, ``vjp``, ``jacobian``, ``grad``,
``value_and_grad``, ``hessian``, ``hvp`` (and ``ravel``, from :mod:`dualad.pytree`).

Design note
-----------
Each transform is a few lines over the engines (:mod:`dualad.forward`,
:mod:`dualad.reverse`): it validates the input, asks an engine for values and tangents or
cotangents, and shapes the result the way SciPy expects (float64 ndarrays; ``jac(x,
*args)`` has the shape of ``x``; a Jacobian has shape ``f(x).shape + x.shape``).
Transforms return small callable objects rather than closures so that they print usefully
and pickle whenever ``fun`` does.

``grad`` and ``value_and_grad`` also take ``x`` as a pytree (nested dicts, lists, tuples
of arrays): :func:`dualad.pytree.ravel` flattens it to one float64 vector, the engines
differentiate ``fun(unravel(v), *args)`` at that vector, and the gradient is unravelled
into the structure of ``x``.  The engines never see a tree.

``mode="auto"`` (the default of every transform with a mode) is the measuring selector
of :mod:`dualad._selector`: per call signature it predicts, tries the plausible modes on
the first calls and keeps the fastest; afterwards a call costs one dict lookup more than
the forced mode.  A forced mode always wins.  Every transform records ``last_mode`` and
explains its choice with ``explain()``.
"""

import math

import numpy as np

from . import _memory, _selector, forward, pytree, reverse, second
from .diagnostics import find_nonfinite
from ._array import DualArray, is_tracer
from ._errors import MixedTracerError
from ._scalar import Dual, HyperDual, derivative1, dual_lane, seed_dual, seed_hyperdual
from ._tags import new_tag

__all__ = ["derivative", "jvp", "vjp", "jacobian", "grad", "value_and_grad", "hessian", "hvp",
           "ravel"]

ravel = pytree.ravel

_MODES = ("auto", "forward", "reverse")


def _check_mode(mode):
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    return mode


def _size(x):
    shape = getattr(x, "shape", None)
    if shape is None:
        shape = np.shape(x)
    return math.prod(shape)


def _signature(x, args):
    """The selector's cache key: the input's shape and the array arguments' shapes."""
    shape = x.shape if hasattr(x, "shape") else np.shape(x)
    if not args:
        return shape
    return (shape, tuple(a.shape if type(a) is np.ndarray else type(a) for a in args))


def _float_out(value):
    """Plain results as float64 ndarrays (0-d results as NumPy floats); traced values of
    an enclosing differentiation are returned as they are."""
    if is_tracer(value):
        return value
    arr = np.asarray(value, dtype=np.float64)
    return arr[()] if arr.ndim == 0 else arr


class _Transform:
    """Base of the callables the transforms return (picklable if ``fun`` is)."""

    _kind = "transform"
    last_mode = None

    def __init__(self, fun):
        if not callable(fun):
            raise TypeError(f"{self._kind} expects a callable, got {type(fun).__name__}")
        self.fun = fun
        self.__name__ = f"{self._kind}({getattr(fun, '__name__', 'fun')})"
        self.__doc__ = getattr(fun, "__doc__", None)

    def __repr__(self):
        return f"<dualad {self.__name__}>"


class _ModeTransform(_Transform):
    """A transform with a ``mode`` argument: forced, or chosen per call by the selector."""

    def __init__(self, fun, mode, chunk=None, check_finite=False):
        super().__init__(fun)
        self.check_finite = bool(check_finite)
        self.requested_mode = mode
        self.mode = _check_mode(mode)
        if chunk is not None and (int(chunk) != chunk or chunk < 1):
            raise ValueError(f"chunk must be a positive integer or None, got {chunk!r}")
        self.chunk = chunk
        self._selector = _selector.Selector(self._selector_kind) if mode == "auto" else None

    def __getstate__(self):
        state = self.__dict__.copy()
        if state.get("_selector") is not None:  # measurements belong to this process
            state["_selector"] = _selector.Selector(self._selector_kind)
        return state

    def _input(self, x, args):
        """``check_finite``'s search if asked, then ``x`` validated (a tracer of an
        enclosing differentiation is taken as it is)."""
        if self.check_finite:
            find_nonfinite(self.fun, x, args)
        return x if is_tracer(x) else forward.as_input(x)

    def _dispatch(self, x, args, m, run):
        """``run(mode) -> (result, m)`` in the forced or the selected mode, with the
        large temporaries of the call served by the caching allocator.  Once the
        selector has decided for this call signature, a call costs one dict lookup."""
        previous = _memory.cache_on()
        try:
            selector = self._selector
            if selector is None:
                self.last_mode = self.mode
                return run(self.mode)[0]
            key = _signature(x, args)
            choice = selector.choices.get(key)
            if choice is not None and choice.mode is not None:  # decided
                selector.last = choice
                self.last_mode = choice.mode
                return run(choice.mode)[0]
            mode, result = selector.call(key, _size(x), m, run)
            self.last_mode = mode
            return result
        finally:
            _memory.cache_off(previous)

    def explain(self):
        """Which mode the last call used, and why.

        Returns
        -------
        str
            One line: the mode, the sizes it was chosen for and the reason (a forced
            mode, the cost model, or the timings measured on the first calls).

        Examples
        --------
        >>> import numpy as np
        >>> import dualad
        >>> g = dualad.grad(lambda x: np.sum(x ** 2), mode="reverse")
        >>> _ = g(np.ones(3))
        >>> g.explain()
        "grad(<lambda>): reverse mode, forced by mode='reverse'"
        """
        if self._selector is None:
            return f"{self.__name__}: {self.mode} mode, forced by mode={self.mode!r}"
        choice = self._selector.last
        if choice is None:
            return f"{self.__name__}: not called yet (mode='auto' chooses on the first calls)"
        return f"{self.__name__}: last call used {self.last_mode} mode; {choice.reason}"


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
        if is_tracer(x):
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
    previous = _memory.cache_on()
    try:
        value, tangent = forward.jvp(fun, x, v, args)
    finally:
        _memory.cache_off(previous)
    return _float_out(value), _float_out(tangent)


class _Jacobian(_ModeTransform):
    _kind = "jacobian"
    _selector_kind = "jacobian"

    def __call__(self, x, *args):
        x = self._input(x, args)
        return self._dispatch(x, args, None, lambda mode: self._run(mode, x, args))

    def _run(self, mode, x, args):
        if mode == "reverse":
            value, jac = reverse.jacobian(self.fun, x, args)
        else:
            value, jac = forward.jacobian(self.fun, x, args, self.chunk)
        return _float_out(jac), _size(value)


def jacobian(fun, mode="auto", chunk=None, sparsity=None, check_finite=False):
    """Jacobian of a function of an array.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args)`` written with NumPy, returning a scalar or an array.
    mode : {"auto", "forward", "reverse"}, optional
        Differentiation mode.  Forward mode pushes ``chunk`` directions per evaluation;
        reverse mode records one evaluation and sweeps it once per output element;
        "auto" (default) chooses per call signature from the sizes and the measured
        cost of the plausible modes (see :ref:`mode-selector`); ``jac.last_mode`` and
        ``jac.explain()`` tell which it used and why.
    chunk : int, optional
        Directions pushed per sweep.  By default all inputs up to 12 go in one sweep;
        larger inputs use the fewest sweeps of at most 12 lanes.

    sparsity : {None, "auto"} or sparse matrix or bool array of shape (m, n), optional
        If given, return *sparse* Jacobians (``scipy.sparse.csr_array``): "auto"
        detects the pattern by tracing ``fun`` once per input shape, a matrix or
        boolean array gives it.  The columns are coloured so that no two columns of a
        colour share a row, and the Jacobian costs one directional derivative per
        colour instead of one per input (see :doc:`sparse`).
    check_finite : bool, optional
        If True, first record one evaluation and raise ``FloatingPointError`` at the
        operation where a NaN or an infinity started in the value or the gradient,
        naming the line of your code (see :doc:`diagnostics`).  Off by default, and free
        then.
    Returns
    -------
    callable
        ``jac(x, *args)`` returning a float64 array of shape
        ``fun(x).shape + x.shape`` (SciPy's ``(m, n)`` for vector in and out).

    Raises
    ------
    FloatingPointError
        With ``check_finite=True``, where a non-finite value or derivative starts.
    ValueError
        For an unknown mode or a non-positive chunk.

    See Also
    --------
    grad, jvp, derivative

    Notes
    -----
    Cost in forward mode: ``ceil(n / chunk)`` evaluations of ``fun`` on dual arrays with
    ``chunk`` tangent lanes each, ``n = x.size``.  In reverse mode: one recorded
    evaluation and one backward sweep per output element (``chunk`` is ignored).

    Examples
    --------
    >>> import numpy as np
    >>> import dualad
    >>> J = dualad.jacobian(lambda x: np.array([x[0] * x[1], np.sin(x[0])]))
    >>> J(np.array([2.0, 3.0]))
    array([[ 3.        ,  2.        ],
           [-0.41614684,  0.        ]])
    """
    if sparsity is not None:
        if mode == "reverse" or check_finite:
            raise ValueError("sparse Jacobians are computed in forward mode (one sweep "
                             "per colour) without check_finite; use mode='auto' or "
                             "'forward' with sparsity=")
        _check_mode(mode)
        from .sparse import SparseJacobianTransform
        return SparseJacobianTransform(fun, sparsity, chunk)
    return _Jacobian(fun, mode, chunk, check_finite)


class _Grad(_ModeTransform):
    _kind = "grad"
    _selector_kind = "grad"

    def __call__(self, x, *args):
        return self.value_and_grad(x, args)[1]

    def value_and_grad(self, x, args):
        if self.check_finite:
            find_nonfinite(self.fun, x, args)
        if pytree.is_tree(x):
            return self._tree_value_and_grad(x, args)
        return self._flat_value_and_grad(self.fun, x, args)

    def _flat_value_and_grad(self, fun, x, args):
        if not is_tracer(x):
            x = forward.as_input(x)
        return self._dispatch(x, args, 1, lambda mode: (self._run(mode, fun, x, args), 1))

    def _run(self, mode, fun, x, args):
        if mode == "reverse":
            value, g = reverse.value_and_grad(fun, x, args)
            _check_scalar(value)
            return value, _float_out(g)
        value, jac = forward.jacobian(fun, x, args, self.chunk)
        _check_scalar(value)
        return value, _float_out(jac)

    def _tree_value_and_grad(self, x, args):
        # x is a pytree: differentiate fun(unravel(v)) at the flat v, unravel the result
        flat, unravel = pytree.ravel(x)
        if unravel.size == 0:  # nothing to differentiate: only the value is needed
            self.last_mode = self.mode if self.mode != "auto" else "forward"
            value = self.fun(unravel(flat), *args)
            _check_scalar(value)
            return value, unravel(flat)
        value, g = self._flat_value_and_grad(_OnTree(self.fun, unravel), flat, args)
        return value, unravel._unravel(g, copy=False)


class _OnTree:
    """``fun(unravel(v), *args)``: a function of a tree as a function of a flat vector."""

    def __init__(self, fun, unravel):
        self.fun = fun
        self.unravel = unravel

    def __call__(self, v, *args):
        return self.fun(self.unravel._unravel(v, copy=True), *args)


def _check_scalar(value):
    shape = getattr(value, "shape", None)
    if shape is None:
        shape = np.shape(value)
    if tuple(shape) != ():
        raise ValueError("grad needs a function with a scalar output; it returned "
                         f"shape {tuple(shape)}. Use dualad.jacobian instead.")


def grad(fun, mode="auto", chunk=None, check_finite=False):
    """Gradient of a scalar function of an array (or of a pytree of arrays).

    Parameters
    ----------
    fun : callable
        ``fun(x, *args)`` written with NumPy, returning a scalar.  ``x`` may be an
        array, or a pytree: a dict, list or tuple of arrays (nested as deep as you
        like, e.g. a model's parameters ``{"W": W, "b": b}``); see :func:`ravel`.
    mode : {"auto", "forward", "reverse"}, optional
        Differentiation mode.  Reverse mode costs one recorded evaluation and one
        backward sweep whatever the size of ``x``; forward mode ``ceil(n / chunk)``
        evaluations.  "auto" (default) chooses per call signature, measuring the
        plausible modes on the first calls (see :ref:`mode-selector`).
    chunk : int, optional
        Directions per forward sweep (see :func:`jacobian`).

    check_finite : bool, optional
        If True, first record one evaluation and raise ``FloatingPointError`` at the
        operation where a NaN or an infinity started in the value or the gradient,
        naming the line of your code (see :doc:`diagnostics`).  Off by default, and free
        then.
    Returns
    -------
    callable
        ``jac(x, *args)`` returning a float64 array with the shape of ``x``: SciPy's
        ``jac=`` convention.  For a pytree ``x`` the gradient is a pytree of the same
        structure (same containers, keys in the same order), each leaf a float64 array
        of its leaf's shape, or a ``numpy.float64`` where the leaf was a number.

    Raises
    ------
    FloatingPointError
        With ``check_finite=True``, where a non-finite value or derivative starts.
    ValueError
        If ``fun`` returns a non-scalar.
    TypeError
        If a pytree leaf is not an array or a number.

    See Also
    --------
    jacobian, derivative, ravel

    Notes
    -----
    Cost in forward mode: ``ceil(n / chunk)`` sweeps; in reverse mode one recorded
    evaluation and one backward sweep, independent of ``n``.  For a pytree, ``n`` is
    the total number of values in its leaves: the tree is flattened into one float64
    vector (:func:`ravel`) and ``fun`` receives leaves sliced from it.

    A list or tuple ``x`` is a pytree when it holds an ndarray, a dict or ``None``; a
    list of plain numbers is array_like, as in NumPy (``grad(f)([1.0, 2.0])`` returns
    an ndarray).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.optimize import rosen, rosen_der
    >>> import dualad
    >>> x = np.array([1.3, 0.7, 0.8])
    >>> np.allclose(dualad.grad(rosen)(x), rosen_der(x), rtol=1e-14)
    True

    Parameters in a dict, gradient in the same dict:

    >>> def loss(p, X, y):
    ...     return np.sum((X @ p["w"] + p["b"] - y) ** 2)
    >>> params = {"w": np.array([1.0, -1.0]), "b": 0.5}
    >>> X, y = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.0, 1.0])
    >>> dualad.grad(loss, mode="reverse")(params, X, y)
    {'w': array([-10., -14.]), 'b': np.float64(-4.0)}
    """
    return _Grad(fun, mode, chunk, check_finite)


class _ValueAndGrad(_Grad):
    _kind = "value_and_grad"

    def __call__(self, x, *args):
        value, g = _Grad.value_and_grad(self, x, args)
        return _float_out(value), g


def value_and_grad(fun, mode="auto", chunk=None, check_finite=False):
    """Value and gradient of a scalar function from one evaluation.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args)`` written with NumPy, returning a scalar.
    mode : {"auto", "forward", "reverse"}, optional
        Differentiation mode (see :func:`grad`).
    chunk : int, optional
        Directions per forward sweep.

    check_finite : bool, optional
        If True, first record one evaluation and raise ``FloatingPointError`` at the
        operation where a NaN or an infinity started in the value or the gradient,
        naming the line of your code (see :doc:`diagnostics`).  Off by default, and free
        then.
    Returns
    -------
    callable
        ``f_and_jac(x, *args)`` returning ``(value, gradient)``: a float64 scalar and a
        float64 array with the shape of ``x`` (SciPy's ``jac=True`` convention).  For a
        pytree ``x`` (a dict, list or tuple of arrays, see :func:`grad`) the gradient
        has the structure of ``x``.

    Raises
    ------
    FloatingPointError
        With ``check_finite=True``, where a non-finite value or derivative starts.
    ValueError
        If ``fun`` returns a non-scalar.

    See Also
    --------
    grad, vjp, ravel

    Notes
    -----
    The value comes free with the gradient: the same evaluation gives both.

    Examples
    --------
    >>> import numpy as np
    >>> import dualad
    >>> f = lambda x: np.sum(x ** 3)
    >>> value, g = dualad.value_and_grad(f, mode="reverse")(np.array([1.0, 2.0]))
    >>> float(value), g
    (9.0, array([ 3., 12.]))
    >>> value, g = dualad.value_and_grad(lambda p: p[0] ** 2 * np.sum(p[1]))(
    ...     (np.array(3.0), np.array([1.0, 2.0])))
    >>> float(value), g
    (27.0, (array(18.), array([9., 9.])))
    """
    return _ValueAndGrad(fun, mode, chunk, check_finite)


def vjp(fun, x, *args):
    """Vector-Jacobian product: record ``fun`` at ``x`` once, pull back cotangents.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args)`` written with NumPy.
    x : array_like
        The point; integers are promoted to float64.
    *args
        Extra arguments passed to ``fun`` unchanged.

    Returns
    -------
    value : ndarray or float
        ``fun(x, *args)``.
    pullback : callable
        ``pullback(u)`` returns ``u^T J(x)`` with the shape of ``x`` for a cotangent
        ``u`` of the shape of ``value``; it can be called many times on the one
        recording.

    Raises
    ------
    ValueError
        From ``pullback`` if ``u`` does not have the shape of ``value``.

    See Also
    --------
    jvp, grad

    Notes
    -----
    Cost: one recorded evaluation, then one backward sweep per call of ``pullback``.

    Examples
    --------
    >>> import numpy as np
    >>> import dualad
    >>> value, pullback = dualad.vjp(lambda x: x ** 2, np.array([1.0, 2.0, 3.0]))
    >>> value
    array([1., 4., 9.])
    >>> pullback(np.array([1.0, 0.0, 1.0]))
    array([2., 0., 6.])
    """
    previous = _memory.cache_on()
    try:
        value, pullback = reverse.vjp(fun, x, args)
    finally:
        _memory.cache_off(previous)
    return _float_out(value), lambda cotangent: _float_out(pullback(cotangent))


def _check_tree(x, kind):
    if pytree.is_tree(x):
        raise TypeError(f"{kind} takes an array x, not a pytree; flatten it with "
                        "dualad.ravel(x) and differentiate fun(unravel(v)) at the flat v")


class _Hessian(_ModeTransform):
    _kind = "hessian"
    _selector_kind = "hessian"

    def __call__(self, x, *args):
        return self.value_grad_hessian(x, *args)[2]

    def value_grad_hessian(self, x, *args):
        """``(f(x), grad f(x), H(x))`` from the same nested sweeps (float64)."""
        _check_tree(x, "hessian")
        x = self._input(x, args)
        return self._dispatch(x, args, 1, lambda mode: (self._run(mode, x, args), 1))

    def _run(self, mode, x, args):
        value, g, h = second.value_grad_hessian(self.fun, x, args, mode, self.chunk)
        return _float_out(value), _float_out(g), _float_out(h)


def hessian(fun, mode="auto", chunk=None, check_finite=False):
    """Hessian of a scalar function of an array: SciPy's ``hess(x, *args)``.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args)`` written with NumPy, returning a scalar.
    mode : {"auto", "forward", "reverse"}, optional
        How the gradient inside is computed before it is differentiated once more in
        forward mode.  "forward" (forward-over-forward, no tape) evaluates ``fun`` once
        on arrays that carry the gradient and Hessian of every element (up to 128
        inputs; beyond, or for a function those arrays cannot follow, ``ceil(n / 12)``
        squared nested dual sweeps): best for small ``n``, and for functions whose terms
        each depend on a few inputs.
        "reverse" (forward-over-reverse) records ``fun`` once per chunk of ``chunk``
        Hessian columns (64 by default), with values that carry the column tangents:
        best for large ``n``.  "auto" (default) measures the plausible strategies on the first calls
        and keeps the faster (see :ref:`mode-selector`).
    chunk : int, optional
        Hessian columns per outer sweep (default: up to 12 in forward mode, see
        :func:`jacobian`; 64 in reverse mode, where wider sweeps are cheaper).

    check_finite : bool, optional
        If True, first record one evaluation and raise ``FloatingPointError`` at the
        operation where a NaN or an infinity started in the value or the gradient,
        naming the line of your code (see :doc:`diagnostics`).  Off by default, and free
        then.
    Returns
    -------
    callable
        ``hess(x, *args)`` returning the symmetric float64 Hessian, shape
        ``x.shape + x.shape`` (``(n, n)`` for a vector ``x``).  The callable also has
        ``value_grad_hessian(x, *args)``, returning the value, the gradient and the
        Hessian from the same sweeps, and ``explain()``.

    Raises
    ------
    FloatingPointError
        With ``check_finite=True``, where a non-finite value or derivative starts.
    ValueError
        If ``fun`` returns a non-scalar, or for an unknown mode.
    TypeError
        If ``x`` is a pytree (flatten it with :func:`ravel`).

    See Also
    --------
    hvp, grad, derivative

    Notes
    -----
    Both strategies are exact (no truncation error); the result is symmetrised,
    ``(H + H.T) / 2``, which only removes the last-bit asymmetry of rounding.  For a
    scalar second derivative of a function of one variable,
    ``derivative(f, order=2)`` uses a single hyper-dual evaluation.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.optimize import rosen_hess
    >>> import dualad
    >>> def rosen(x):
    ...     return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    >>> x = np.array([1.2, 0.8, 1.1])
    >>> H = dualad.hessian(rosen)(x)
    >>> H.shape, np.allclose(H, rosen_hess(x), rtol=1e-14)
    ((3, 3), True)
    >>> dualad.hessian(lambda x: x[0] ** 2 * x[1], mode="reverse")(np.array([1.0, 3.0]))
    array([[6., 2.],
           [2., 0.]])
    """
    return _Hessian(fun, mode, chunk, check_finite)


class _Hvp(_ModeTransform):
    _kind = "hvp"
    _selector_kind = "hvp"

    def __call__(self, x, v, *args):
        return self.value_grad_hvp(x, v, *args)[2]

    def value_grad_hvp(self, x, v, *args):
        """``(f(x), grad f(x), H(x) v)`` from one nested sweep (float64)."""
        _check_tree(x, "hvp")
        x = self._input(x, args)
        if isinstance(v, complex) or np.iscomplexobj(v):
            v = forward.as_input(v)  # raises the complex-input TypeError
        if not is_tracer(v):
            v = np.asarray(v, dtype=np.float64)
        if tuple(np.shape(v)) != tuple(x.shape):
            raise ValueError(f"v must have the shape of x, {tuple(x.shape)}, got "
                             f"{tuple(np.shape(v))}")
        return self._dispatch(x, args, 1, lambda mode: (self._run(mode, x, v, args), 1))

    def _run(self, mode, x, v, args):
        value, g, hv = second.value_grad_hvp(self.fun, x, v, args, mode)
        return _float_out(value), _float_out(g), _float_out(hv)


def hvp(fun, mode="auto", check_finite=False):
    """Hessian-vector product of a scalar function: SciPy's ``hessp(x, p, *args)``.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args)`` written with NumPy, returning a scalar.
    mode : {"auto", "forward", "reverse"}, optional
        "reverse" (forward-over-reverse): one recording with plain values, then the
        product by replaying it (a tangent sweep and one backward sweep of adjoints and
        their tangents); a function whose recording cannot be replayed (see
        :doc:`/user/second-order`) takes one backward sweep over values carrying ``v``.
        A small constant times one gradient, whatever ``n`` is.  "forward" (forward-over-forward): the gradient inside is a
        forward sweep, ``ceil(n / 12)`` nested sweeps, for small ``n``.  "auto"
        (default) measures the plausible strategies on the first calls and keeps the
        faster (see :ref:`mode-selector`).

    check_finite : bool, optional
        If True, first record one evaluation and raise ``FloatingPointError`` at the
        operation where a NaN or an infinity started in the value or the gradient,
        naming the line of your code (see :doc:`diagnostics`).  Off by default, and free
        then.
    Returns
    -------
    callable
        ``hessp(x, v, *args)`` returning ``H(x) @ v`` as a float64 array of the shape of
        ``x``, without forming ``H``.  The callable also has
        ``value_grad_hvp(x, v, *args)`` (value, gradient and product from the same
        sweep) and ``explain()``.

    Raises
    ------
    FloatingPointError
        With ``check_finite=True``, where a non-finite value or derivative starts.
    ValueError
        If ``v`` does not have the shape of ``x``, or ``fun`` returns a non-scalar.
    TypeError
        If ``x`` is a pytree (flatten it with :func:`ravel`).

    See Also
    --------
    hessian, grad, jvp

    Notes
    -----
    This is the ``hessp=`` that SciPy's Newton-CG, trust-ncg and trust-krylov methods
    take: ``minimize(f, x0, jac=dualad.grad(f), hessp=dualad.hvp(f), method="trust-ncg")``.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.optimize import rosen_hess_prod
    >>> import dualad
    >>> def rosen(x):
    ...     return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    >>> x, v = np.array([1.2, 0.8, 1.1]), np.array([1.0, -1.0, 0.5])
    >>> np.allclose(dualad.hvp(rosen)(x, v), rosen_hess_prod(x, v), rtol=1e-14)
    True
    >>> dualad.hvp(lambda x, a: a * np.sum(x ** 3))(np.array([1.0, 2.0]), np.ones(2), 2.0)
    array([12., 24.])
    """
    return _Hvp(fun, mode, None, check_finite)
