"""SciPy's optimizers with dualad's derivatives filled in.

Design note
-----------
This module owns the glue between the transforms of :mod:`dualad.api` and
``scipy.optimize``; it computes no derivative itself and re-implements no solver.  Each
wrapper has SciPy's signature plus a keyword-only ``mode``, and does four things:

1. **Checks the input before any work** (issue 6): the method name, ``x0`` (real,
   numeric, finite, not empty), and one evaluation of ``fun`` at ``x0`` (output shape,
   finite value).  That evaluation is *reused*: it is the first pass of the
   :class:`Objective` (minimize) or sits in a one-point memo (the other wrappers), so
   the solver's own first call at ``x0`` costs nothing.
2. **Flattens the variables.**  ``x0`` may be an array of any shape or a pytree (dicts,
   lists, tuples of arrays, see :func:`dualad.ravel`); SciPy sees one float64 vector,
   ``fun`` sees the original structure, and the result's ``x`` is unravelled.
3. **Fills in what the method uses**, and only that: ``jac`` for the gradient methods,
   ``jac`` + ``hessp`` for the Newton-Krylov methods, ``jac`` + ``hess`` for the
   trust-region methods that factorise the Hessian, the Jacobians (and for
   ``trust-constr`` the constraint Hessians ``hess(x, v)``) of nonlinear constraints,
   the residual Jacobian for ``least_squares``/``curve_fit``/``root``.  Whatever the
   user passes is kept.
4. **Shares work at one point.**  An :class:`Objective` caches, per ``x`` (keyed on its
   bytes), the value, the gradient and the Hessian.  A gradient pass also returns the
   value (``value_and_grad``), a Hessian or Hessian-vector pass also returns the value
   and the gradient (:mod:`dualad.second`), so SciPy's ``fun(x)`` followed by
   ``jac(x)`` costs one pass, as with ``jac=True``, and ``fun`` is never evaluated twice
   at the same ``x``.  For the Newton-Krylov methods with ``n > 100`` the gradient pass
   keeps its reverse-mode recording, and the Hessian-vector products at that ``x``
   replay it (``dualad.reverse.Recording.hvp``) without evaluating ``fun`` again.

Large least-squares problems go through :mod:`dualad.sparse` when it is available
(sparsity detection and column colouring); the import is local and optional so that
this module works without it.
"""

import importlib
import importlib.util
import inspect
import math

import numpy as np
import scipy
import scipy.optimize as _so
from scipy.optimize import Bounds, NonlinearConstraint, OptimizeResult

from . import _memory, _selector, _tape, api, pytree, reverse, second
from ._array import is_tracer
from .forward import CHUNK_THRESHOLD

__all__ = ["minimize", "least_squares", "curve_fit", "root", "Objective"]

# ---------------------------------------------------------------------------------------
# What each method uses.  The names are SciPy's, lower-cased.
# ---------------------------------------------------------------------------------------

#: minimize: the derivatives each method takes from dualad when the user gives none.
_MINIMIZE_USES = {
    "nelder-mead": (), "powell": (), "cobyla": (), "cobyqa": (),
    "cg": ("jac",), "bfgs": ("jac",), "l-bfgs-b": ("jac",), "tnc": ("jac",),
    "slsqp": ("jac",),
    "newton-cg": ("jac", "hessp"), "trust-ncg": ("jac", "hessp"),
    "trust-krylov": ("jac", "hessp"),
    "dogleg": ("jac", "hess"), "trust-exact": ("jac", "hess"),
    "trust-constr": ("jac", "hess"),
}
_MINIMIZE_NAMES = ("Nelder-Mead", "Powell", "CG", "BFGS", "Newton-CG", "L-BFGS-B", "TNC",
                   "COBYLA", "COBYQA", "SLSQP", "trust-constr", "dogleg", "trust-ncg",
                   "trust-exact", "trust-krylov")
#: minimize: the constraint derivatives each constrained method uses.
_CONSTRAINT_USES = {"slsqp": ("jac",), "trust-constr": ("jac", "hess")}
#: minimize: methods that clip x0 into the bounds before their first evaluation.
_CLIPS_X0 = ("l-bfgs-b", "slsqp", "tnc", "nelder-mead")

_LSQ_METHODS = ("trf", "dogbox", "lm")
_ROOT_METHODS = ("hybr", "lm", "broyden1", "broyden2", "anderson", "linearmixing",
                 "diagbroyden", "excitingmixing", "krylov", "df-sane")
_ROOT_USES_JAC = ("hybr", "lm")

#: least_squares(sparse="auto") tries a sparse Jacobian from this many variables on...
SPARSE_MIN_N = 100
#: ...and keeps it when at most this fraction of the Jacobian's entries can be non-zero.
SPARSE_MAX_DENSITY = 0.1

_MODES = ("auto", "forward", "reverse")

#: Objective's Hessians take up to this many columns per sweep.  dualad.hessian's
#: default chunk (12, the first-order one) makes a forward-over-reverse Hessian
#: ceil(n / 12) sweeps, each with its own recording; one wide sweep is several times
#: faster for moderate n (measured on Rosenbrock at n = 100: 0.33 ms against 2.8 ms,
#: about two Hessian-vector products), while wider tangent arrays stop paying off
#: (n = 128 in one sweep: 1.2 ms).
HESSIAN_CHUNK = 100
#: Up to this n, a second Hessian-vector product at the same x forms the whole Hessian
#: (one sweep, about two products) and multiplies it from then on: Newton-CG asks for
#: several products per point.  Up to CHUNK_THRESHOLD (12) the first product does.
HESSP_DENSE_N = HESSIAN_CHUNK


def _InputError(message):
    """A ValueError from the checks here, marked so that it gets no "while evaluating"
    note (a plain ValueError: tracebacks show the builtin type)."""
    err = ValueError(message)
    err._dualad_check = True
    return err


def _InputTypeError(message):
    """A TypeError from the checks here (see `_InputError`)."""
    err = TypeError(message)
    err._dualad_check = True
    return err


# ---------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------

def _check_mode(mode):
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    return mode


def _as_args(args):
    return args if isinstance(args, tuple) else (args,)


def _describe(out):
    if isinstance(out, np.ndarray) or is_tracer(out):
        return f"an array of shape {tuple(np.shape(out))}"
    return f"a {type(out).__name__} of length {len(out)}" if hasattr(out, "__len__") \
        else f"a {type(out).__name__}"


def _shape(out):
    shape = getattr(out, "shape", None)
    if shape is not None:
        return tuple(shape)
    try:
        return tuple(np.shape(out))
    except ValueError:  # a ragged sequence, e.g. (value, gradient)
        return (len(out),)


def _at_x0(thunk, who, what, where):
    """Run the checking evaluation at ``x0``; a user error gets a note saying where."""
    try:
        return thunk()
    except Exception as err:
        # add_note: Python >= 3.11
        if hasattr(err, "add_note") and not getattr(err, "_dualad_check", False):
            err.add_note(f"(raised while dualad.optimize.{who} evaluated {what} at "
                         f"{where}, to check it before starting the solver)")
        raise


def _nonfinite_error(who, what, values, fix, where="x0"):
    bad = np.flatnonzero(~np.isfinite(np.reshape(values, -1)))
    shown = ", ".join(str(int(i)) for i in bad[:5]) + (", ..." if bad.size > 5 else "")
    return _InputError(f"{who}: {what} is not finite at {where} (flat indices {shown}: "
                       f"{np.reshape(values, -1)[bad[:3]].tolist()}); {fix}")


class _Space:
    """The variables: ``x0`` validated and flattened, and the way back.

    ``kind`` is "vector" (a 1-d array or a number: SciPy's own convention, nothing to
    convert), "array" (an array of another shape: reshaped) or "tree" (a pytree:
    unravelled with :func:`dualad.ravel`).
    """

    def __init__(self, x0, who):
        if is_tracer(x0):
            raise TypeError(f"{who}: x0 is a dualad traced value; dualad.optimize runs "
                            "a SciPy solver on plain numbers and cannot be differentiated "
                            "through. Call it outside the differentiated function")
        if pytree.is_tree(x0):
            leaves, _ = pytree.flatten(x0)
            for leaf in leaves:
                _check_numeric(np.asarray(leaf) if not isinstance(leaf, np.ndarray)
                               else leaf, who)
            flat, self.unravel = pytree.ravel(x0)
            self.kind = "tree"
            self.shape = None
        else:
            if isinstance(x0, complex):
                _check_numeric(np.asarray(x0), who)
            try:
                arr = np.asarray(x0)
            except (TypeError, ValueError) as err:
                raise TypeError(f"{who}: x0 must be an array of numbers or a pytree of "
                                f"arrays; np.asarray(x0) failed: {err}") from None
            _check_numeric(arr, who)
            self.kind = "vector" if arr.ndim <= 1 else "array"
            flat = np.array(arr, dtype=np.float64).reshape(-1)
            # a number is a vector of one value, as in SciPy (np.atleast_1d)
            self.shape = arr.shape if self.kind == "array" else flat.shape
        if flat.size == 0:
            raise _InputError(f"{who}: x0 is empty; there is nothing to optimise")
        if not np.all(np.isfinite(flat)):
            raise _nonfinite_error(who, "x0", flat, "start from finite values")
        self.flat = flat
        self.n = flat.size

    def describe(self):
        """How x0 is named in messages."""
        if self.kind == "tree":
            return f"x0 (a pytree of {self.n} values)"
        return f"x0 (shape {self.shape})"

    def to_user(self, v):
        """The flat vector ``v`` in the user's structure (copies for plain arrays)."""
        if self.kind == "vector":
            return v
        if self.kind == "array":
            return np.reshape(v, self.shape) if is_tracer(v) else \
                np.array(v, dtype=np.float64).reshape(self.shape)
        return self.unravel._unravel(v, copy=True)

    def to_flat(self, value, what):
        """A gradient-like value in the user's structure as a flat float64 vector."""
        if self.kind == "tree":
            flat, unravel = pytree.ravel(value)
            if unravel != self.unravel:
                raise ValueError(f"{what} returned a tree of another structure than x0: "
                                 f"{unravel.treedef._str()} instead of "
                                 f"{self.unravel.treedef._str()}")
            return flat
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
        if arr.size != self.n:
            raise ValueError(f"{what} returned {arr.size} values, x0 has {self.n}")
        return arr

    def wrap(self, fun):
        """``fun`` as a function of the flat vector."""
        return fun if self.kind == "vector" else _OnUser(fun, self)


def _check_numeric(arr, who):
    if arr.dtype == object:
        raise TypeError(f"{who}: x0 is an object array (dtype=object); pass numbers, e.g. "
                        "np.asarray(x0, dtype=float)")
    if arr.dtype.kind == "c":
        raise TypeError(f"{who}: x0 is complex; dualad.optimize works over real "
                        "variables. Split complex unknowns into real and imaginary parts "
                        "(e.g. np.concatenate([z.real, z.imag]))")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{who}: x0 has dtype {arr.dtype}; it must hold real numbers")


class _OnUser:
    """``fun(to_user(v), *args)``: a function of the user's structure on the flat ``v``."""

    def __init__(self, fun, space):
        self.fun = fun
        self.space = space
        self.__name__ = getattr(fun, "__name__", "fun")

    def __call__(self, v, *args, **kwargs):
        return self.fun(self.space.to_user(v), *args, **kwargs)


class _Flat:
    """A vector-valued function on the flat vector, its output raveled to 1-d;
    ``kwargs`` are bound (least_squares' ``kwargs=``)."""

    def __init__(self, fun, space, kwargs=None):
        self.fun = space.wrap(fun)
        self.kwargs = kwargs or {}
        self.__name__ = getattr(fun, "__name__", "fun")

    def __call__(self, v, *args):
        out = self.fun(v, *args, **self.kwargs)
        if getattr(out, "ndim", None) == 1:
            return out  # already a vector (the usual residual): no reshape to record
        # a list of traced scalars becomes an object array, which dualad reads back
        return np.reshape(out, (-1,))


class _FirstValue:
    """A function that returns a value already computed at ``x0`` when called there
    (the checking evaluation is not repeated); copies, so callers may write into it."""

    def __init__(self, fun, x0, value):
        self.fun = fun
        self._key = np.ascontiguousarray(x0, dtype=np.float64).tobytes()
        self._value = value
        self.hits = 0

    def __call__(self, x, *args):
        if np.shape(x) == (len(self._key) // 8,) and \
                np.ascontiguousarray(x, dtype=np.float64).tobytes() == self._key:
            self.hits += 1
            return _copy(self._value)
        return self.fun(x, *args)


def _copy(value):
    if isinstance(value, tuple):
        return tuple(_copy(v) for v in value)
    return value.copy() if isinstance(value, np.ndarray) else value


class _Bound:
    """A user-supplied derivative callable with the user's structure, on flat vectors:
    ``fn(to_user(x), [to_user(p),] *args)`` with the output flattened if ``ravel``."""

    def __init__(self, fn, space, args=(), nvec=0, ravel=None):
        self.fn = fn
        self.space = space
        self.args = args
        self.nvec = nvec
        self.ravel = ravel

    def __call__(self, x, *rest):
        vecs = [self.space.to_user(v) for v in rest[:self.nvec]]
        out = self.fn(self.space.to_user(x), *vecs, *rest[self.nvec:], *self.args)
        if self.ravel == "grad":
            return self.space.to_flat(out, "jac")
        if self.ravel == "pair":
            return out[0], self.space.to_flat(out[1], "fun (with jac=True)")
        return out


# ---------------------------------------------------------------------------------------
# Objective
# ---------------------------------------------------------------------------------------

class _ScalarOutput:
    """``fun`` with its output checked to be a scalar (size-1 arrays are accepted, as in
    SciPy, and reshaped to a scalar)."""

    def __init__(self, fun):
        self.fun = fun
        self.__name__ = getattr(fun, "__name__", "fun")

    def __call__(self, x, *args):
        out = self.fun(x, *args)
        if out is None:
            raise _InputTypeError("fun returned None; it must return the value to "
                                  "minimize (a missing `return`?)")
        shape = _shape(out)
        if shape == ():
            return out
        if math.prod(shape) == 1 and hasattr(out, "reshape"):
            return out.reshape(())
        hint = ("If fun returns (value, gradient), pass jac=True. "
                if isinstance(out, tuple) and len(out) == 2 else "")
        raise _InputError(f"fun must return a scalar (the value to minimize); it returned "
                          f"{_describe(out)}. {hint}For a vector of residuals use "
                          "dualad.optimize.least_squares, or return np.sum(r ** 2)")


class _Point:
    __slots__ = ("H", "f", "g", "products", "rec")

    def __init__(self):
        self.f = self.g = self.H = self.rec = None
        self.products = 0  # Hessian-vector products computed at this point

    def __getstate__(self):  # (a recording, a tape, does not pickle: dropped)
        return self.f, self.g, self.H, self.products

    def __setstate__(self, state):
        self.f, self.g, self.H, self.products = state
        self.rec = None


class Objective:
    """A scalar function whose value, gradient, Hessian and Hessian-vector products share
    their work at the same ``x``.

    SciPy's minimizers call ``fun(x)`` and then ``jac(x)`` at the same point (and
    ``hess(x)`` or ``hessp(x, p)`` for the second-order methods).  An ``Objective``
    answers all of them from one computation per point: the value comes with the
    gradient (one reverse sweep, or the forward sweeps, give both), and value and
    gradient come with the Hessian or a Hessian-vector product.  Results are cached per
    ``x``, keyed on its bytes.  :func:`minimize` builds one; use it directly to hand
    SciPy (or any other optimizer) its callables.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args)`` written with NumPy, returning a scalar (a size-1 array is
        accepted, as SciPy does).
    args : tuple, optional
        Extra arguments of ``fun``, bound here: the methods take ``x`` only, so do not
        pass ``args`` to the solver as well.
    mode : {"auto", "forward", "reverse"}, optional
        Differentiation mode of the gradient, Hessian and Hessian-vector transforms
        (see :func:`dualad.grad`).
    with_grad : bool, optional
        If True (default), :meth:`fun` computes the gradient in the same pass and keeps
        it for :meth:`jac` (SciPy's ``jac=True`` behaviour).  False makes :meth:`fun` a
        plain evaluation, for solvers that do not use the gradient at most points.
    with_hess : bool, optional
        If True, :meth:`jac` (and :meth:`value_and_grad`) compute the Hessian in the
        same pass and keep it for :meth:`hess` and :meth:`hessp`: for solvers that use
        the Hessian wherever they use the gradient (trust-region methods).  Default
        False.
    cache_size : int, optional
        How many points are remembered (the oldest is dropped first).

    Attributes
    ----------
    nfev : int
        Value-only evaluations of ``fun`` (``with_grad=False``).
    ngev : int
        Value-and-gradient passes.
    nhev : int
        Hessian passes (each also gives the value and the gradient).
    nhvp : int
        Hessian-vector products computed (each a pass that also gives the value and
        the gradient, or a replay: see ``nreplay``).
    nreplay : int
        Of those, the products that replayed the recording of the gradient pass at
        their ``x`` (``n > 100``, fun made of elementwise NumPy rules, basic slices and
        ``np.sum``): no evaluation of ``fun``.
    nhit : int
        Calls answered from the cache, at no cost.

    Raises
    ------
    TypeError
        If ``fun`` is not callable, or a method gets arguments beyond ``x`` (and ``p``).
    ValueError
        For an unknown mode; from the methods, if ``fun`` does not return a scalar.

    See Also
    --------
    minimize, dualad.value_and_grad, dualad.hessian, dualad.hvp

    Notes
    -----
    Every pass evaluates ``fun`` once (a forward-mode gradient with ``n`` inputs
    evaluates it ``ceil(n / 12)`` times on dual arrays); the counts are passes, so the
    work done is ``nfev + ngev + nhev + nhvp - nreplay`` passes (plus ``nreplay``
    replays) and SciPy's own counts of calls are ``nhit`` larger.

    Hessians are computed forward-over-reverse with up to 100 columns per sweep (one
    sweep up to ``n = 100``, about the cost of two Hessian-vector products).  So
    :meth:`hessp` forms the whole Hessian at ``x`` and multiplies it: at the first
    product for ``n <= 12`` (where it costs one product), at the second product at the
    same ``x`` for ``n <= 100`` (Newton-CG asks for many); further products at that
    ``x`` are then free.  Larger ``n`` get one Hessian-vector pass per product, or,
    once :meth:`hessp` has been asked for, a replay of the gradient pass's recording
    at that ``x`` (the newest point's recording is kept; see ``nreplay``): the value
    and gradient pass keeps its tape, and each product is two sweeps over it, with no
    new recording (``dualad.reverse.Recording.hvp``).

    The caller's ``x`` is never modified or kept; returned arrays are fresh copies.

    Examples
    --------
    >>> from scipy.optimize import minimize
    >>> from dualad.optimize import Objective
    >>> def rosen(x):
    ...     return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    >>> obj = Objective(rosen)
    >>> res = minimize(obj.fun, np.zeros(3), jac=obj.jac, method="BFGS")
    >>> bool(res.success), np.round(res.x, 6)
    (True, array([1., 1., 1.]))

    One pass per point: every ``jac`` call was answered from the pass of ``fun``.

    >>> obj.ngev == res.nfev, obj.nfev, obj.nhit == res.njev
    (True, 0, True)
    >>> obj.hessp(np.ones(3), np.array([1.0, 0.0, 0.0]))
    array([ 802., -400.,    0.])
    """

    def __init__(self, fun, args=(), mode="auto", *, with_grad=True, with_hess=False,
                 cache_size=4):
        if not callable(fun):
            raise TypeError(f"Objective expects a callable fun, got {type(fun).__name__}")
        if int(cache_size) != cache_size or cache_size < 1:
            raise ValueError(f"cache_size must be a positive integer, got {cache_size!r}")
        self.args = _as_args(args)
        self.mode = _check_mode(mode)
        self.with_grad = bool(with_grad)
        self.with_hess = bool(with_hess)
        self.cache_size = int(cache_size)
        self.__name__ = getattr(fun, "__name__", "fun")
        self._fun = fun
        self._scalar = _ScalarOutput(fun)
        self._vg = api.value_and_grad(self._scalar, mode)
        self._hess = {}  # chunk -> dualad.hessian transform
        self._hvp = api.hvp(self._scalar, mode)
        self._cache = []  # [(x's bits, _Point)], newest last
        self.nfev = self.ngev = self.nhev = self.nhvp = self.nhit = self.nreplay = 0
        # products by replaying the gradient's recording (reverse.value_grad_recording):
        # None until hessp is first asked for at n > HESSP_DENSE_N (minimize sets it
        # for the hessp methods), then whether fun's recordings replay; only the newest
        # point's recording is kept (_rec_entry)
        self._replay = None if self.mode != "forward" else False
        self._rec_entry = None

    def __repr__(self):
        return (f"<dualad Objective({self.__name__}, mode={self.mode!r}): "
                f"nfev={self.nfev}, ngev={self.ngev}, nhev={self.nhev}, "
                f"nhvp={self.nhvp} (nreplay={self.nreplay}), nhit={self.nhit}>")

    def __call__(self, x):
        return self.fun(x)

    def _point(self, x, extra, name):
        if extra:
            raise TypeError(f"Objective.{name} takes x only (got {len(extra)} more "
                            "arguments): give args to Objective(fun, args=...) and not "
                            "to the solver")
        if type(x) is not np.ndarray or x.dtype != np.float64:  # SciPy's x skips this
            if isinstance(x, complex) or np.iscomplexobj(x):
                raise TypeError("Objective: x is complex; the variables must be real")
            x = np.asarray(x, dtype=np.float64)
        # the last few points, newest last, compared bit for bit (-0.0 is not 0.0, a
        # nan is itself) without hashing x: bytes keys cost ~25 us per call at n = 10^4
        bits = np.ascontiguousarray(x).view(np.uint64)
        flat = bits.reshape(-1)
        for i in range(len(self._cache) - 1, -1, -1):
            seen, entry = self._cache[i]
            if seen.shape != bits.shape:
                continue
            if flat.size and (seen.flat[0] != flat[0] or seen.flat[-1] != flat[-1]):
                continue  # (a new iterate usually differs at both ends: no full compare)
            if _tape.same_bits(seen, bits):  # (one memcmp)
                return x, entry
        entry = _Point()
        if len(self._cache) >= self.cache_size:
            del self._cache[0]
        self._cache.append((bits.copy(), entry))
        return x, entry

    def _gradient_pass(self, x, entry):
        if self.with_hess:
            return self._hessian_pass(x, entry)
        if self._replay and x.size > HESSP_DENSE_N:
            return self._recording_pass(x, entry)
        f, g = self._vg(x, *self.args)
        self.ngev += 1
        entry.f, entry.g = f, g

    def _recording_pass(self, x, entry):
        """A reverse-mode value-and-gradient pass that keeps its recording for the
        Hessian-vector products at ``x`` (they replay it: no evaluation of fun)."""
        previous = _memory.cache_on()
        try:
            f, g, rec = reverse.value_grad_recording(self._scalar, x, self.args)
        finally:
            _memory.cache_off(previous)
        self.ngev += 1
        entry.f, entry.g = np.float64(f), g
        if self._rec_entry is not None:
            self._rec_entry.rec = None  # (one recording kept: the newest point's)
        entry.rec = rec
        self._rec_entry = entry if rec is not None else None
        self._replay = rec is not None
        if rec is None:
            second._mark_no_replay(self._scalar)  # (its hvp passes: no recording first)

    def _hessian_pass(self, x, entry):
        chunk = min(x.size, HESSIAN_CHUNK)
        hess = self._hess.get(chunk)
        if hess is None:
            hess = self._hess[chunk] = api.hessian(self._scalar, self.mode, chunk)
        f, g, H = hess.value_grad_hessian(x, *self.args)
        self.nhev += 1
        entry.f, entry.g, entry.H = f, g, H

    def fun(self, x, *extra):
        """The value ``fun(x, *args)`` (with the gradient if ``with_grad``, and then the
        Hessian too if ``with_hess``).

        Parameters
        ----------
        x : ndarray
            The point.

        Returns
        -------
        numpy.float64
            The value.
        """
        x, entry = self._point(x, extra, "fun")
        if entry.f is not None:
            self.nhit += 1
        elif self.with_grad:
            self._gradient_pass(x, entry)
        else:
            entry.f = np.float64(self._scalar(x, *self.args))
            self.nfev += 1
        return np.float64(entry.f)

    def jac(self, x, *extra):
        """The gradient at ``x``: float64, shape of ``x``.

        Parameters
        ----------
        x : ndarray
            The point.

        Returns
        -------
        ndarray
            The gradient (a fresh copy).
        """
        x, entry = self._point(x, extra, "jac")
        if entry.g is not None:
            self.nhit += 1
        else:
            self._gradient_pass(x, entry)
        return entry.g.copy()

    def value_and_grad(self, x, *extra):
        """``(value, gradient)`` at ``x``: pass it as ``fun`` with ``jac=True``.

        Parameters
        ----------
        x : ndarray
            The point.

        Returns
        -------
        tuple
            The value (numpy.float64) and the gradient (ndarray, shape of ``x``).
        """
        x, entry = self._point(x, extra, "value_and_grad")
        if entry.g is not None:
            self.nhit += 1
        else:
            self._gradient_pass(x, entry)
        return np.float64(entry.f), entry.g.copy()

    def hess(self, x, *extra):
        """The Hessian at ``x``: float64, shape ``(n, n)`` for ``n = x.size``.

        Parameters
        ----------
        x : ndarray
            The point.

        Returns
        -------
        ndarray
            The symmetric Hessian (a fresh copy); value and gradient are cached too.
        """
        x, entry = self._point(x, extra, "hess")
        if entry.H is not None:
            self.nhit += 1
        else:
            self._hessian_pass(x, entry)
        return entry.H.copy()

    def hessp(self, x, p, *extra):
        """The Hessian-vector product ``H(x) @ p`` without forming ``H`` (for n > 12).

        Parameters
        ----------
        x : ndarray
            The point.
        p : ndarray
            The direction, shape of ``x``.

        Returns
        -------
        ndarray
            ``H(x) @ p``, float64, shape of ``x``; value and gradient are cached too.
        """
        x, entry = self._point(x, extra, "hessp")
        p = np.asarray(p, dtype=np.float64)
        if entry.H is not None:
            self.nhit += 1
            return entry.H @ p
        if x.size <= CHUNK_THRESHOLD or (entry.products and x.size <= HESSP_DENSE_N):
            self._hessian_pass(x, entry)  # about the cost of one or two products
            return entry.H @ p
        if self._replay is not False and x.size > HESSP_DENSE_N:
            if entry.rec is None:
                self._recording_pass(x, entry)
            if entry.rec is not None:
                hv = entry.rec.hvp(p)
                if hv is not None:
                    self.nhvp += 1
                    self.nreplay += 1
                    entry.products += 1
                    return hv
        f, g, hv = self._hvp.value_grad_hvp(x, p, *self.args)
        self.nhvp += 1
        entry.products += 1
        entry.f, entry.g = f, g
        return hv

    def _cached(self, x):
        """The cache entry at ``x`` (value, gradient, Hessian or None each)."""
        return self._point(x, (), "_cached")[1]


# ---------------------------------------------------------------------------------------
# minimize
# ---------------------------------------------------------------------------------------

def _minimize_method(method, bounds, constraints):
    """``(meth, method)``: SciPy's default choice, validated and lower-cased."""
    if method is None:
        if constraints:
            method = "SLSQP"
        elif bounds is not None:
            method = "L-BFGS-B"
        else:
            method = "BFGS"
    if callable(method):
        return "_custom", method
    if not isinstance(method, str):
        raise TypeError(f"minimize: method must be a string or a callable, got "
                        f"{type(method).__name__}")
    meth = method.lower()
    if meth not in _MINIMIZE_USES:
        raise _InputError(f"minimize: unknown method {method!r}. SciPy's methods are "
                          f"{', '.join(_MINIMIZE_NAMES)} (any case), or pass a callable "
                          "for a custom method")
    if meth == "cobyqa" and importlib.util.find_spec("scipy.optimize._cobyqa_py") is None:
        raise _InputError(f"minimize: method 'COBYQA' needs SciPy >= 1.14; this is SciPy "
                          f"{scipy.__version__}. Use 'COBYLA', or upgrade SciPy")
    return meth, method


def _clip_to_bounds(x, bounds):
    """``x`` clipped into ``bounds`` (as the methods in ``_CLIPS_X0`` do first)."""
    try:
        if isinstance(bounds, Bounds):
            lb, ub = bounds.lb, bounds.ub
        else:
            pairs = list(bounds)
            lb = [-np.inf if b[0] is None else b[0] for b in pairs]
            ub = [np.inf if b[1] is None else b[1] for b in pairs]
        lb = np.broadcast_to(np.asarray(lb, dtype=np.float64), x.shape)
        ub = np.broadcast_to(np.asarray(ub, dtype=np.float64), x.shape)
    except (TypeError, ValueError, IndexError):
        return x  # malformed bounds: SciPy reports them
    return np.clip(x, lb, ub)


class _ValuePart:
    """The value of a ``fun`` that returns ``(value, gradient)`` (``jac=True``)."""

    def __init__(self, fun):
        self.fun = fun

    def __call__(self, x, *args):
        return self.fun(x, *args)[0]


class _BindArgs:
    def __init__(self, fun, args):
        self.fun = fun
        self.args = args

    def __call__(self, x, *more):
        return self.fun(x, *more, *self.args)


class _ConstraintJac:
    """The Jacobian ``(m, n)`` of a constraint function, by dualad."""

    def __init__(self, fun, n, mode):
        self.n = n
        self._jac = api.jacobian(_FlatOut(fun), mode)

    def __call__(self, x, *args):
        return np.reshape(self._jac(x, *args), (-1, self.n))


class _FlatOut:
    def __init__(self, fun):
        self.fun = fun

    def __call__(self, x, *args):
        return np.reshape(self.fun(x, *args), (-1,))


class _Weighted:
    """``sum_i v_i c_i(x)``: the constraint term of the Lagrangian."""

    def __init__(self, fun):
        self.fun = fun

    def __call__(self, x, v, *args):
        return np.sum(np.reshape(self.fun(x, *args), (-1,)) * v)


class _ConstraintHess:
    """``hess(x, v) = sum_i v_i Hessian(c_i)(x)``, SciPy's NonlinearConstraint ``hess``."""

    def __init__(self, fun, n, mode):
        self._hess = api.hessian(_Weighted(fun), mode, min(n, HESSIAN_CHUNK))

    def __call__(self, x, v):
        return self._hess(x, np.asarray(v, dtype=np.float64))


def _constraints(constraints, meth, space, mode):
    """The constraints with functions on the flat vector and derivatives filled in."""
    if isinstance(constraints, (dict, _so.LinearConstraint, NonlinearConstraint)):
        constraints = [constraints]
    uses = _CONSTRAINT_USES.get(meth, ())
    out = []
    for i, con in enumerate(constraints):
        if isinstance(con, dict):
            if con.get("type") not in ("eq", "ineq") or not callable(con.get("fun")):
                raise _InputError(f"minimize: constraint {i} must be a dict with 'type' "
                                  "('eq' or 'ineq') and a callable 'fun'")
            con = dict(con)
            cargs = _as_args(con.get("args", ()))
            cfun = space.wrap(con["fun"])
            jac = con.get("jac")
            if callable(jac):
                jac = _Bound(jac, space) if space.kind != "vector" else jac
            elif "jac" in uses:
                jac = _ConstraintJac(cfun, space.n, mode)
            if meth == "trust-constr":
                lb, ub = (0.0, 0.0) if con["type"] == "eq" else (0.0, np.inf)
                out.append(NonlinearConstraint(
                    _BindArgs(cfun, cargs), lb, ub,
                    jac=_BindArgs(jac, cargs) if callable(jac) else "2-point",
                    hess=_ConstraintHess(_BindArgs(cfun, cargs), space.n, mode)))
                continue
            con["fun"] = cfun
            if jac is not None:
                con["jac"] = jac
            out.append(con)
        elif isinstance(con, NonlinearConstraint):
            cfun = space.wrap(con.fun)
            jac, hess = con.jac, con.hess
            if callable(jac):
                jac = _Bound(jac, space) if space.kind != "vector" else jac
            elif "jac" in uses:
                jac = _ConstraintJac(cfun, space.n, mode)
            if callable(hess):
                hess = _Bound(hess, space) if space.kind != "vector" else hess
            elif "hess" in uses:
                hess = _ConstraintHess(cfun, space.n, mode)
            out.append(NonlinearConstraint(
                cfun, con.lb, con.ub, jac=jac, hess=hess, keep_feasible=con.keep_feasible,
                finite_diff_rel_step=con.finite_diff_rel_step,
                finite_diff_jac_sparsity=con.finite_diff_jac_sparsity))
        else:
            out.append(con)  # LinearConstraint: nothing to differentiate
    return out


def _wrap_callback(callback, space):
    """The user's callback, called with ``x`` in the user's structure."""
    if callback is None or space.kind == "vector":
        return callback
    try:
        params = set(inspect.signature(callback).parameters)
    except (TypeError, ValueError):
        params = set()
    if params == {"intermediate_result"}:
        def new_style(intermediate_result):
            result = OptimizeResult(intermediate_result)
            result.x = space.to_user(result.x)
            return callback(intermediate_result=result)
        return new_style

    def old_style(xk, *rest):
        return callback(space.to_user(xk), *rest)
    return old_style


def minimize(fun, x0, args=(), method=None, jac=None, hess=None, hessp=None, bounds=None,
             constraints=(), tol=None, callback=None, options=None, *, mode="auto"):
    """Minimize a scalar function with ``scipy.optimize.minimize``, derivatives by
    dualad.

    The signature and the result are SciPy's; what the method uses and you do not give
    is filled in:

    ======================================================  ===========================
    method                                                  dualad fills in
    ======================================================  ===========================
    CG, BFGS, L-BFGS-B, TNC, SLSQP                          ``jac`` (value and gradient
                                                            from one pass)
    Newton-CG, trust-ncg, trust-krylov                      ``jac`` and ``hessp``
    dogleg, trust-exact, trust-constr                       ``jac`` and ``hess``
    Nelder-Mead, Powell, COBYLA, COBYQA                     nothing (derivative-free)
    ======================================================  ===========================

    Parameters
    ----------
    fun : callable
        ``fun(x, *args)`` written with NumPy, returning a scalar.
    x0 : array_like or pytree
        The starting point: an array (a number or a 1-d array as in SciPy; other shapes
        are allowed too and ``fun`` receives that shape) or a pytree of arrays (a dict,
        list or tuple, see :func:`dualad.ravel`), which ``fun`` then receives.
    args : tuple, optional
        Extra arguments of ``fun`` (and of your ``jac``, ``hess``, ``hessp``).
    method : str or callable, optional
        SciPy's method name (any case), or a custom method.  Default as SciPy: BFGS, or
        L-BFGS-B with bounds, or SLSQP with constraints.
    jac : callable, bool or str, optional
        Your gradient (kept), ``True`` if ``fun`` returns ``(value, gradient)`` (kept),
        or a finite-difference scheme ("2-point"...; kept).  None (default): dualad's.
    hess, hessp : callable, str or HessianUpdateStrategy, optional
        Your Hessian or Hessian-vector product (kept).  None (default): dualad's, for
        the methods in the table above.
    bounds : sequence or Bounds, optional
        As in SciPy, over the flat vector (``dualad.ravel(x0)[0]``) for a pytree.
    constraints : dict, Constraint or list of them, optional
        As in SciPy.  Nonlinear constraints (``NonlinearConstraint`` or dicts) get
        dualad's Jacobian for SLSQP and trust-constr, and for trust-constr the Hessian
        of the constraint term ``hess(x, v) = sum_i v_i Hessian(c_i)(x)``.  Callables
        you give are kept; strings and ``HessianUpdateStrategy`` objects (such as
        ``NonlinearConstraint``'s defaults) are replaced.  Constraint functions receive
        ``x`` in the structure of ``x0``.
    tol : float, optional
        As in SciPy.
    callback : callable, optional
        As in SciPy; it receives ``x`` in the structure of ``x0``.
    options : dict, optional
        As in SciPy.
    mode : {"auto", "forward", "reverse"}, optional
        Differentiation mode (see :func:`dualad.grad`).

    Returns
    -------
    OptimizeResult
        SciPy's result.  ``x`` (and ``jac``, when present) have the structure of
        ``x0``; ``objective`` is the :class:`Objective` that served ``fun`` (its
        counts say how many passes were made), absent when ``jac=True``.

    Raises
    ------
    ValueError
        For an unknown method or mode, an empty or non-finite ``x0``, a ``fun`` that
        does not return a scalar or returns a non-finite value (or gradient) at ``x0``:
        all before the solver starts.
    TypeError
        For a complex, object or non-numeric ``x0``, or a non-callable ``fun``.

    See Also
    --------
    Objective, least_squares

    Notes
    -----
    ``fun`` is evaluated once at ``x0`` to check it, and that pass (value and gradient,
    or value, gradient and Hessian) is the one the solver's first calls are answered
    from.  Afterwards no point is evaluated twice for the same quantity: a gradient pass
    gives the value too, a Hessian or Hessian-vector pass gives value and gradient.  The
    gradient methods get value and gradient together at every point (SciPy's
    ``jac=True``).  dogleg and trust-exact (and the other second-order methods when
    ``n <= 12``, where a whole Hessian costs about one Hessian-vector product) get the
    gradient together with the Hessian, and a rejected trial point costs only a plain
    evaluation.  Newton-CG, trust-ncg and trust-krylov with ``n > 100`` keep each
    gradient pass's recording and answer the Hessian-vector products at that point by
    replaying it (see :class:`Objective`, ``nreplay``).  Bounded L-BFGS-B, SLSQP, TNC
    and Nelder-Mead runs start from ``x0`` clipped into the bounds, as SciPy's do.

    Examples
    --------
    >>> import dualad.optimize as dopt
    >>> def rosen(x):
    ...     return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    >>> res = dopt.minimize(rosen, np.zeros(10), method="L-BFGS-B")
    >>> bool(res.success), bool(np.allclose(res.x, 1.0, atol=1e-4))
    (True, True)
    >>> res = dopt.minimize(rosen, np.zeros(10), method="trust-exact")
    >>> bool(res.success), bool(np.allclose(res.x, 1.0))
    (True, True)

    The same iterations as with the hand-written derivatives:

    >>> from scipy.optimize import minimize, rosen_der, rosen_hess
    >>> ref = minimize(rosen, np.zeros(10), method="trust-exact", jac=rosen_der,
    ...                hess=rosen_hess)
    >>> res.nit == ref.nit, res.nfev == ref.nfev
    (True, True)

    Parameters in a dict:

    >>> def loss(p, t, y):
    ...     return np.sum((p["a"] * np.exp(-p["k"] * t) - y) ** 2)
    >>> t = np.linspace(0.0, 2.0, 9)
    >>> res = dopt.minimize(loss, {"a": 1.0, "k": 0.5}, args=(t, 3.0 * np.exp(-2.0 * t)))
    >>> {key: round(float(v), 6) for key, v in res.x.items()}
    {'a': 3.0, 'k': 2.0}
    """
    if not callable(fun):
        raise TypeError(f"minimize: fun must be callable, got {type(fun).__name__}")
    mode = _check_mode(mode)
    args = _as_args(args)
    meth, method = _minimize_method(method, bounds, constraints)
    space = _Space(x0, "minimize")
    x0f = space.flat
    if bounds is not None and meth in _CLIPS_X0:
        x0f = _clip_to_bounds(x0f, bounds)
    uses = _MINIMIZE_USES.get(meth, ("jac", "hess", "hessp"))  # a custom method: all
    flat_fun = space.wrap(fun)
    fill_hess = ("hess" in uses and hess is None
                 and (hessp is None or meth != "trust-constr"))
    fill_hessp = "hessp" in uses and hess is None and hessp is None
    if meth == "_custom":
        fill_hess = hess is None
        fill_hessp = hessp is None

    obj = None
    if jac is True:
        pair = _Bound(fun, space, args, ravel="pair" if space.kind != "vector" else None)
        out = _at_x0(lambda: pair(x0f), "minimize", "fun", space.describe())
        if not isinstance(out, tuple) or len(out) != 2:
            raise _InputError("minimize: with jac=True, fun must return (value, "
                              f"gradient); it returned {_describe(out)}")
        f0 = _ScalarOutput(lambda *a: out[0])(x0f)
        g0 = np.asarray(out[1], dtype=np.float64)
        if g0.size != space.n:
            raise _InputError(f"minimize: with jac=True, fun's gradient has {g0.size} "
                              f"values; x0 has {space.n}")
        if not np.isfinite(f0):
            raise _nonfinite_error("minimize", "fun", f0, "start inside fun's domain")
        if not np.all(np.isfinite(g0)):
            raise _nonfinite_error("minimize", "fun's gradient", g0,
                                   "start where fun is differentiable")
        solver_fun, solver_jac = _FirstValue(pair, x0f, out), True
        if fill_hess or fill_hessp:
            obj = Objective(_ValuePart(flat_fun), args, mode, with_grad=False)
    else:
        fill_jac = "jac" in uses and jac is None
        # What one pass computes.  Trust-region methods want the Hessian wherever they
        # want the gradient, so there the gradient comes with the Hessian and a trial
        # point that is rejected costs a plain evaluation; likewise for n <= 12, where
        # the whole Hessian costs about one Hessian-vector product.  Elsewhere the value
        # comes with the gradient (SciPy's jac=True behaviour).
        with_hess = fill_jac and meth != "_custom" and (fill_hess or fill_hessp) and (
            meth in ("dogleg", "trust-exact") or space.n <= CHUNK_THRESHOLD)
        obj = Objective(flat_fun, args, mode, with_grad=fill_jac and not with_hess,
                        with_hess=with_hess)
        if fill_hessp and fill_jac and obj._replay is None:
            # products will be asked for: gradient passes record for replays from x0 on
            # (for n > HESSP_DENSE_N; a function that does not replay stops it)
            obj._replay = True
        first = obj.jac if fill_jac else obj.fun
        _at_x0(lambda: first(x0f), "minimize", "fun", space.describe())
        entry = obj._cached(x0f)
        if not np.isfinite(entry.f):
            raise _nonfinite_error("minimize", "fun", entry.f, "start inside fun's domain")
        if entry.g is not None and not np.all(np.isfinite(entry.g)):
            raise _nonfinite_error("minimize", "the gradient of fun", entry.g,
                                   "start where fun is differentiable")
        solver_fun = obj.fun
        if fill_jac:
            solver_jac = obj.jac
        elif callable(jac):
            solver_jac = _Bound(jac, space, args,
                                ravel="grad" if space.kind != "vector" else None)
        else:
            solver_jac = jac
    solver_hess = hess
    if fill_hess and obj is not None:
        solver_hess = obj.hess
    elif callable(hess):
        solver_hess = _Bound(hess, space, args)
    solver_hessp = hessp
    if fill_hessp and obj is not None:
        solver_hessp = obj.hessp
    elif callable(hessp):
        solver_hessp = _Bound(hessp, space, args, nvec=1,
                              ravel="grad" if space.kind != "vector" else None)
    if meth == "_custom":
        cons = constraints
    else:
        cons = _constraints(constraints, meth, space, mode)
    res = _so.minimize(solver_fun, x0f, args=(), method=method, jac=solver_jac,
                       hess=solver_hess, hessp=solver_hessp, bounds=bounds,
                       constraints=cons, tol=tol, callback=_wrap_callback(callback, space),
                       options=options)
    if space.kind != "vector":
        res.x = space.to_user(res.x)
        if np.shape(res.get("jac")) == (space.n,):
            res.jac = space.to_user(res.jac)
    if obj is not None and jac is not True:
        res.objective = obj
    return res


# ---------------------------------------------------------------------------------------
# least_squares, curve_fit, root: Jacobians of vector functions
# ---------------------------------------------------------------------------------------

def _jacobian_mode(mode, n, m):
    """``mode``; for "auto", the one mode the selector's cost model finds plausible for
    an ``(m, n)`` Jacobian, if there is one.  The selector would take that mode on its
    first call anyway (it never times a mode it finds implausible); deciding here, where
    ``m`` is known from the check at ``x0``, saves that exploring call, which a solver
    run pays once (a few percent of a small fit).  Otherwise "auto": measure."""
    if mode != "auto":
        return mode
    candidates = _selector.Choice("jacobian", n, m).candidates()
    return candidates[0] if len(candidates) == 1 else mode


class _DenseJac:
    """``jac(x, *args)``: the ``(m, n)`` Jacobian of a 1-d-valued function, by dualad
    (``m``, when known, settles a clear-cut mode up front: :func:`_jacobian_mode`)."""

    def __init__(self, fun, mode, n=None, m=None):
        if n is not None and m is not None:
            mode = _jacobian_mode(mode, n, m)
        self._jac = api.jacobian(fun, mode)

    def __call__(self, x, *args):
        J = self._jac(x, *args)
        return np.reshape(J, (-1, np.size(x)))


def _sparse_jacobian(fun, x0, args, m, force, pattern=None):
    """dualad.sparse's Jacobian callable if it is available and worth it, else None.

    The interface (agreed with :mod:`dualad.sparse`):
    ``sparse_jacobian(fun, x, args=(), sparsity=...)`` returns ``J(x, *args)`` giving a
    ``scipy.sparse.csr_array``, with the pattern in ``J.sparsity``.
    """
    try:
        sparse = importlib.import_module("dualad.sparse")
        make = sparse.sparse_jacobian
    except (ImportError, AttributeError):
        if force:
            raise _InputError("least_squares: sparse=True needs dualad.sparse, which this "
                              "installation does not have") from None
        return None
    try:
        J = make(fun, x0, args=args) if pattern is None else \
            make(fun, x0, args=args, sparsity=pattern)
    except (TypeError, NotImplementedError, ValueError):
        if force:
            raise
        return None  # sparse="auto": detection cannot follow fun; the dense way can
    detected = getattr(J, "sparsity", None)
    if not force and pattern is None and detected is not None and \
            detected.nnz > SPARSE_MAX_DENSITY * m * x0.size:
        return None  # (nearly) dense: the dense Jacobian is cheaper
    return J


def _infeasible(x, bounds):
    """Whether ``x`` lies outside ``bounds`` (a ``(lb, ub)`` pair or Bounds)."""
    if type(bounds) is tuple and len(bounds) == 2 and type(bounds[0]) is float and \
            type(bounds[1]) is float and bounds[0] == -np.inf and bounds[1] == np.inf:
        return False  # the default: unbounded
    try:
        lb, ub = (bounds.lb, bounds.ub) if isinstance(bounds, Bounds) else bounds
        lb = np.broadcast_to(np.asarray(lb, dtype=np.float64), x.shape)
        ub = np.broadcast_to(np.asarray(ub, dtype=np.float64), x.shape)
    except (TypeError, ValueError):
        return False  # malformed bounds: SciPy reports them
    return bool(np.any((x < lb) | (x > ub)))


def _residual_x0(fun, space, x0f, args, kwargs, who):
    """Evaluate the residual at ``x0`` once and check it.

    Returns the raveled float64 residual and the shape ``fun`` returned.
    """
    out = _at_x0(lambda: space.wrap(fun)(x0f, *args, **kwargs), who, "fun",
                 space.describe())
    try:
        f0 = np.asarray(out, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise _InputError(f"{who}: fun must return an array of numbers; it returned "
                          f"{_describe(out)}") from None
    if f0.size == 0:
        raise _InputError(f"{who}: fun(x0) returned an empty array; it must return the "
                          "residual vector")
    if not np.all(np.isfinite(f0)):
        raise _nonfinite_error(who, "fun", f0, "start inside fun's domain")
    return f0, _shape(out)


def least_squares(fun, x0, jac=None, bounds=(-np.inf, np.inf), method="trf", *, args=(),
                  kwargs=None, mode="auto", sparse="auto", **options):
    """Nonlinear least squares with ``scipy.optimize.least_squares``, the Jacobian
    by dualad.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args, **kwargs)`` written with NumPy, returning the residuals (an
        array of any shape; it is raveled).
    x0 : array_like or pytree
        The starting point (an array of any shape, or a pytree of arrays, see
        :func:`minimize`).
    jac : callable or str, optional
        Your Jacobian or finite-difference scheme (kept).  None (default): dualad's,
        dense ``(m, n)`` or, for large sparse problems, sparse (see ``sparse``).
    bounds : 2-tuple or Bounds, optional
        As in SciPy (over the flat vector for a pytree).
    method : {"trf", "dogbox", "lm"}, optional
        As in SciPy.
    args, kwargs : optional
        Extra arguments of ``fun`` (and of your ``jac``).
    mode : {"auto", "forward", "reverse"}, optional
        Differentiation mode of the dense Jacobian (see :func:`dualad.jacobian`); "auto"
        settles a clear-cut choice from the residual's length at ``x0`` (as
        :func:`curve_fit` does), else measures on the first calls.
    sparse : {"auto", True, False}, optional
        "auto" (default): from ``n >= 100`` variables, detect the Jacobian's sparsity
        pattern with ``dualad.sparse`` and use the sparse Jacobian (as many forward
        directions as the columns need colours) when at most 10% of its entries can be
        non-zero; if detection cannot follow ``fun``, the dense Jacobian is used.  A
        ``jac_sparsity=`` you pass is taken as the pattern (and trusted).  True forces
        the sparse Jacobian, False never uses it.  Not used with ``method="lm"`` or
        ``tr_solver="exact"``, which need dense matrices.
    **options
        SciPy's other arguments (``ftol``, ``x_scale``, ``loss``, ``max_nfev``,
        ``tr_solver``, ``verbose``, ``callback``...).

    Returns
    -------
    OptimizeResult
        SciPy's result; ``x`` and ``grad`` have the structure of ``x0``, ``fun`` the
        shape of ``fun``'s output, ``jac`` is the ``(m, n)`` matrix over the flat
        vector.

    Raises
    ------
    ValueError
        For an unknown method or mode, an empty or non-finite ``x0``, an ``x0`` outside
        the bounds, a ``fun`` returning an empty or non-finite residual at ``x0``.
    TypeError
        For a complex, object or non-numeric ``x0``.

    See Also
    --------
    curve_fit, minimize

    Notes
    -----
    The residual at ``x0`` is computed once, checked and handed to SciPy's first call.
    A dense Jacobian costs ``ceil(n / 12)`` forward sweeps (or ``m`` reverse sweeps);
    a sparse one as many forward sweeps as the columns need colours.

    Examples
    --------
    >>> import dualad.optimize as dopt
    >>> t = np.linspace(0.0, 3.0, 7)
    >>> y = 2.0 * np.exp(-1.3 * t) + 0.5
    >>> def residual(p, t, y):
    ...     return p[0] * np.exp(-p[1] * t) + p[2] - y
    >>> fit = dopt.least_squares(residual, np.array([1.0, 1.0, 0.0]), args=(t, y))
    >>> np.round(fit.x, 6)
    array([2. , 1.3, 0.5])
    """
    if not callable(fun):
        raise TypeError(f"least_squares: fun must be callable, got {type(fun).__name__}")
    mode = _check_mode(mode)
    args = _as_args(args)
    if method not in _LSQ_METHODS:
        raise _InputError(f"least_squares: unknown method {method!r}; choose one of "
                          f"{', '.join(_LSQ_METHODS)}")
    if sparse not in ("auto", True, False):
        raise ValueError(f"least_squares: sparse must be 'auto', True or False, got "
                         f"{sparse!r}")
    kwargs = dict(kwargs or {})
    space = _Space(x0, "least_squares")
    x0f = space.flat
    if _infeasible(x0f, bounds):
        raise _InputError("least_squares: x0 lies outside the bounds; start from a "
                          "feasible point (e.g. np.clip(x0, lb, ub))")
    flat_fun = _Flat(fun, space, kwargs)
    f0, out_shape = _residual_x0(fun, space, x0f, args, kwargs, "least_squares")
    if jac is None:
        solver_jac = None
        use_sparse = (sparse is True or
                      (sparse == "auto" and (space.n >= SPARSE_MIN_N
                                             or options.get("jac_sparsity") is not None)))
        if use_sparse and (method == "lm" or options.get("tr_solver") == "exact"):
            if sparse is True:
                raise _InputError("least_squares: sparse=True does not work with "
                                  "method='lm' or tr_solver='exact' (dense solvers)")
            use_sparse = False
        if use_sparse:
            solver_jac = _sparse_jacobian(flat_fun, x0f, args, f0.size, sparse is True,
                                          options.get("jac_sparsity"))
            pattern = getattr(solver_jac, "sparsity", None)
            if pattern is not None:
                options["jac_sparsity"] = pattern
        if solver_jac is None:
            solver_jac = _DenseJac(flat_fun, mode, x0f.size, f0.size)
    elif callable(jac) and (space.kind != "vector" or kwargs):
        solver_jac = _Bound(_KwBound(jac, kwargs), space)
    else:
        solver_jac = jac  # yours, or a finite-difference scheme
    res = _so.least_squares(_FirstValue(flat_fun, x0f, f0), x0f, jac=solver_jac,
                            bounds=bounds, method=method, args=args, **options)
    _finish_vector_result(res, space, out_shape)
    return res


class _KwBound:
    def __init__(self, fn, kwargs):
        self.fn = fn
        self.kwargs = kwargs

    def __call__(self, *args):
        return self.fn(*args, **self.kwargs)


def _finish_vector_result(res, space, out_shape):
    if space.kind != "vector":
        res.x = space.to_user(res.x)
        if np.shape(res.get("grad")) == (space.n,):
            res.grad = space.to_user(res.grad)
    if out_shape is not None and len(out_shape) > 1 and \
            np.size(res.get("fun")) == math.prod(out_shape):
        res.fun = np.reshape(res.fun, out_shape)


def _n_params(f):
    """The number of fit parameters from ``f(x, p1, p2, ...)``'s signature (SciPy's
    rule)."""
    try:
        params = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        params = None
    if params is not None:
        positional = [p for p in params
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(positional) >= 2 and not any(p.kind == p.VAR_POSITIONAL for p in params):
            return len(positional) - 1
    raise _InputError("curve_fit: cannot tell the number of fit parameters from f's "
                      "signature (it takes *args, or fewer than two arguments); pass p0")


def _feasible_start(lb, ub):
    """SciPy's default p0: 1, or inside one-sided bounds, or the middle of two."""
    p0 = np.ones_like(lb)
    lower, upper = np.isfinite(lb), np.isfinite(ub)
    both = lower & upper
    p0[both] = 0.5 * (lb[both] + ub[both])
    p0[lower & ~upper] = lb[lower & ~upper] + 1.0
    p0[upper & ~lower] = ub[upper & ~lower] - 1.0
    return p0


class _Model:
    """``model(p, xdata) = f(xdata, p[0], p[1], ...)``, raveled: the curve-fit model as a
    function of one parameter vector, which dualad differentiates."""

    def __init__(self, f, n):
        self.f = f
        self.n = n

    def __call__(self, p, xdata):
        out = self.f(xdata, *[p[i] for i in range(self.n)])
        if getattr(out, "ndim", None) == 1:
            return out  # already a vector (the usual model): no reshape to record
        return np.reshape(out, (-1,))


class _ModelJac:
    """curve_fit's ``jac(xdata, *params)``: the ``(m, n)`` Jacobian w.r.t. the params."""

    def __init__(self, f, n, mode, m=None):
        self.n = n
        if m is not None:
            mode = _jacobian_mode(mode, n, m)
        self._jac = api.jacobian(_Model(f, n), mode)

    def __call__(self, xdata, *params):
        J = self._jac(np.asarray(params, dtype=np.float64), xdata)
        return np.reshape(J, (-1, self.n))


class _FirstModel:
    """``f(xdata, *params)`` answered from the checking evaluation at ``p0``."""

    def __init__(self, f, xdata, p0, y0):
        self.f = f
        self._xdata = xdata
        self._key = p0.tobytes()
        self._first = tuple(p0.tolist())
        self._y0 = y0
        self.hits = 0

    def __call__(self, xdata, *params):
        # SciPy asks for p0 first: compare numbers (cheap), then confirm bit for bit
        # (the numbers compare equal for 0.0 and -0.0)
        if xdata is self._xdata and params == self._first and \
                np.asarray(params, dtype=np.float64).tobytes() == self._key:
            self.hits += 1
            return _copy(self._y0)
        return self.f(xdata, *params)


def curve_fit(f, xdata, ydata, p0=None, sigma=None, absolute_sigma=False, check_finite=None,
              bounds=(-np.inf, np.inf), method=None, jac=None, *, full_output=False,
              nan_policy=None, mode="auto", **kwargs):
    """Fit ``f(xdata, *params)`` to data with ``scipy.optimize.curve_fit``, the
    Jacobian with respect to the parameters by dualad.

    Parameters
    ----------
    f : callable
        The model ``f(xdata, p1, p2, ...)`` written with NumPy; it is differentiated
        with respect to the parameters, never ``xdata``.
    xdata : array_like or object
        The independent variable, passed to ``f`` unchanged (converted to float64 when
        it is an array, list or tuple, as SciPy does).
    ydata : array_like
        The data, ``ydata ~ f(xdata, *popt)``.
    p0 : array_like, optional
        Initial parameters; by default SciPy's (ones, or inside the bounds), with their
        number taken from ``f``'s signature.
    sigma, absolute_sigma, check_finite, bounds, method, full_output, nan_policy
        As in SciPy.
    jac : callable or str, optional
        Your Jacobian ``jac(xdata, *params)`` or a finite-difference scheme (kept).
        None (default): dualad's.
    mode : {"auto", "forward", "reverse"}, optional
        Differentiation mode (see :func:`dualad.jacobian`).  "auto" takes the selector's
        cost model with the number of data points known from the check at ``p0``: with
        few parameters and many data points that settles on forward mode before the
        first Jacobian (where the model leaves a choice, the first calls measure).
    **kwargs
        Passed to SciPy's solver (``maxfev``, ``ftol``...).

    Returns
    -------
    popt : ndarray
        The fitted parameters.
    pcov : ndarray
        Their estimated covariance; ``np.sqrt(np.diag(pcov))`` are the standard errors.
    infodict, mesg, ier
        Only with ``full_output=True``, as in SciPy.

    Raises
    ------
    ValueError
        For an unknown method or mode, a ``p0`` that is not finite or lies outside the
        bounds, a model output whose size differs from ``ydata``'s, or a non-finite
        model value at ``p0``.
    TypeError
        For a complex or object ``p0``.

    See Also
    --------
    least_squares, minimize

    Notes
    -----
    dualad differentiates ``p -> f(xdata, p[0], p[1], ...)``; each parameter reaches
    ``f`` as a traced scalar, so ``f`` is written exactly as for SciPy.  The model value
    at ``p0`` is computed once, checked, and reused by the solver's first call.

    Examples
    --------
    >>> import dualad.optimize as dopt
    >>> def model(t, a, k, c):
    ...     return a * np.exp(-k * t) + c
    >>> t = np.linspace(0.0, 3.0, 20)
    >>> y = model(t, 2.0, 1.3, 0.5)
    >>> popt, pcov = dopt.curve_fit(model, t, y, p0=[1.0, 1.0, 0.0])
    >>> np.round(popt, 6), pcov.shape
    (array([2. , 1.3, 0.5]), (3, 3))
    """
    if not callable(f):
        raise TypeError(f"curve_fit: f must be callable, got {type(f).__name__}")
    mode = _check_mode(mode)
    if method not in (None, "lm", "trf", "dogbox"):
        raise _InputError(f"curve_fit: unknown method {method!r}; choose None, 'lm', "
                          "'trf' or 'dogbox'")
    if p0 is None:
        n = _n_params(f)
        if isinstance(bounds, Bounds):
            lb, ub = bounds.lb, bounds.ub
        else:
            lb, ub = bounds
        lb = np.broadcast_to(np.asarray(lb, dtype=np.float64), (n,)).copy()
        ub = np.broadcast_to(np.asarray(ub, dtype=np.float64), (n,)).copy()
        p0 = _feasible_start(lb, ub)
    else:
        space = _Space(p0, "curve_fit")
        if space.kind != "vector":
            raise _InputError("curve_fit: p0 must be a 1-d sequence of parameters, got "
                              "a " + ("pytree" if space.kind == "tree" else
                                      f"array of shape {space.shape}"))
        p0 = space.flat
        if _infeasible(p0, bounds):
            raise _InputError("curve_fit: p0 lies outside the bounds; start from a "
                              "feasible point (e.g. np.clip(p0, lb, ub))")
    n = p0.size
    if check_finite is None:
        check_finite = nan_policy is None
    if isinstance(xdata, (list, tuple, np.ndarray)):
        xdata = np.asarray_chkfinite(xdata, float) if check_finite else \
            np.asarray(xdata, float)
    y = np.asarray(ydata, dtype=np.float64) if not check_finite else \
        np.asarray_chkfinite(ydata, float)
    model = f
    m = None
    if nan_policy is None:
        y0 = _at_x0(lambda: np.asarray(f(xdata, *p0), dtype=np.float64), "curve_fit",
                    "f(xdata, *params)", f"p0 ({n} parameters)")
        if y.size != 1 and y0.size != y.size:
            raise _InputError(f"curve_fit: f(xdata, *p0) returned {y0.size} values for "
                              f"{y.size} data points; the model must return one value "
                              "per data point")
        if not np.all(np.isfinite(y0)):
            raise _nonfinite_error("curve_fit", "f(xdata, *params)", y0,
                                   "choose p0 inside the model's domain", where="p0")
        model = _FirstModel(f, xdata, p0, y0)
        m = y0.size
    if jac is None:
        jac = _ModelJac(f, n, mode, m)
    return _so.curve_fit(model, xdata, y, p0=p0, sigma=sigma, absolute_sigma=absolute_sigma,
                         check_finite=check_finite, bounds=bounds, method=method, jac=jac,
                         full_output=full_output, nan_policy=nan_policy, **kwargs)


def root(fun, x0, args=(), method="hybr", jac=None, tol=None, callback=None, options=None,
         *, mode="auto"):
    """Solve ``fun(x) = 0`` with ``scipy.optimize.root``, the Jacobian by dualad.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args)`` written with NumPy, returning as many values as ``x`` has.
    x0 : array_like or pytree
        The starting point (see :func:`minimize`).
    args : tuple, optional
        Extra arguments of ``fun`` (and of your ``jac``).
    method : str, optional
        SciPy's method.  dualad fills in ``jac`` for "hybr" (default) and "lm"; the
        quasi-Newton and Krylov methods do not use a Jacobian.
    jac : callable, bool or None, optional
        Your Jacobian, or ``True`` if ``fun`` returns ``(value, jacobian)`` (kept).
        None (default): dualad's, for the methods that use it.
    tol, callback, options
        As in SciPy (``callback`` receives ``x`` in the structure of ``x0``).
    mode : {"auto", "forward", "reverse"}, optional
        Differentiation mode (see :func:`dualad.jacobian`).

    Returns
    -------
    OptimizeResult
        SciPy's result; ``x`` has the structure of ``x0``.

    Raises
    ------
    ValueError
        For an unknown method or mode, an empty or non-finite ``x0``, a ``fun`` whose
        output size differs from ``x0``'s or that is not finite at ``x0``.
    TypeError
        For a complex, object or non-numeric ``x0``.

    See Also
    --------
    least_squares, minimize

    Examples
    --------
    >>> import dualad.optimize as dopt
    >>> def F(v):
    ...     return np.array([v[0] ** 2 + v[1] ** 2 - 4.0, np.exp(v[0]) + v[1] - 1.0])
    >>> sol = dopt.root(F, np.array([1.0, -1.0]))
    >>> bool(sol.success), np.round(sol.x, 6)
    (True, array([ 1.004169, -1.729637]))
    """
    if not callable(fun):
        raise TypeError(f"root: fun must be callable, got {type(fun).__name__}")
    mode = _check_mode(mode)
    args = _as_args(args)
    if not isinstance(method, str) or method.lower() not in _ROOT_METHODS:
        raise _InputError(f"root: unknown method {method!r}; choose one of "
                          f"{', '.join(_ROOT_METHODS)}")
    meth = method.lower()
    space = _Space(x0, "root")
    x0f = space.flat
    if jac is True:
        if space.kind != "vector":
            raise _InputError("root: jac=True needs a 1-d x0 (the Jacobian is (n, n)); "
                              "flatten x0 with dualad.ravel")
        out = _at_x0(lambda: fun(x0f, *args), "root", "fun", space.describe())
        if not isinstance(out, tuple) or len(out) != 2:
            raise _InputError("root: with jac=True, fun must return (value, jacobian); "
                              f"it returned {_describe(out)}")
        f0, out_shape = np.asarray(out[0], dtype=np.float64).reshape(-1), None
        solver_fun = _FirstValue(fun, x0f, out)
    else:
        flat_fun = _Flat(fun, space)
        f0, out_shape = _residual_x0(fun, space, x0f, args, {}, "root")
        solver_fun = _FirstValue(flat_fun, x0f, f0)
        if jac is None and meth in _ROOT_USES_JAC:
            jac = _DenseJac(flat_fun, mode)
        elif callable(jac) and space.kind != "vector":
            jac = _Bound(jac, space)
    if f0.size != space.n:
        raise _InputError(f"root: fun(x0) returned {f0.size} values for {space.n} "
                          "unknowns; root needs a square system (use least_squares "
                          "for more equations than unknowns)")
    if not np.all(np.isfinite(f0)):
        raise _nonfinite_error("root", "fun", f0, "start inside fun's domain")
    res = _so.root(solver_fun, x0f, args=args, method=method, jac=jac, tol=tol,
                   callback=_wrap_callback(callback, space), options=options)
    _finish_vector_result(res, space, out_shape)
    return res
