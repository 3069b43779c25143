"""Rule lookup: the rule table compiled for the NumPy path, and the function registry.

Design note
-----------
Two kinds of rules are looked up here:

* elementwise ufunc rules, compiled from the expressions of
  :mod:`dualad.rules._elementwise` over NumPy's functions.  On plain arrays they compute
  partials; on tracer arrays the same calls dispatch back into dualad, so a rule is itself
  differentiable (nesting, forward-over-forward second derivatives);
* rules for NumPy *functions* (``np.sum``, ``np.dot``, ``np.concatenate``...) registered
  per mode with :func:`register` (dualad's own in :mod:`dualad.rules.linear`) or by users
  with :func:`defrule`.

An unknown function is never guessed at: :func:`lookup` raises ``TypeError`` naming the
function and the mode.
"""

import numpy as np

from .._errors import NoRuleError, unsupported_function
from ._codegen import compile_expression
from ._elementwise import BOOLEAN_UFUNCS, FUNCTIONS, RULES, function_of, ufunc_of

__all__ = ["ElementwiseEntry", "ELEMENTWISE", "BOOLEAN", "register", "lookup", "defrule",
           "registered", "has_builtin_rule", "public_name"]

_NAMESPACE = {name: function_of(name) for name in FUNCTIONS}


def _rule_where(cond, a, b):
    """``np.where`` for the rule expressions.

    A condition on plain values that is uniformly false (or true) picks its branch
    without a ``where`` over traced operands: the guards of the rules (``x == 0`` in the
    power rule) are almost always all false, and a nested derivative would otherwise pay
    for a traced selection per rule evaluation.  The result is a temporary of the
    engine, never seen by user code, so returning the branch itself is safe."""
    if type(a) is float and type(b) is float and a == b:
        return a  # both branches one constant (a guard that reduced to 0.0 or 1.0)
    kind = type(cond)
    if kind is bool or kind is np.bool_:
        pick, other = (a, b) if cond else (b, a)
    elif kind is np.ndarray:
        if not cond.any():
            pick, other = b, a
        elif cond.all():
            pick, other = a, b
        else:
            return np.where(cond, a, b)
    else:
        return np.where(cond, a, b)
    shape = getattr(pick, "shape", ())
    if getattr(cond, "shape", ()) in ((), shape) and getattr(other, "shape", ()) in ((), shape):
        return pick
    return np.where(cond, a, b)


_NAMESPACE["where"] = _rule_where


def _partial_kind(expr):
    """How a first partial can be had without evaluating it per element.

    Returns ``("const", c)``, ``("x", None)``, ``("y", None)``, ``("ans", None)`` for a
    number, an operand or the result (add, multiply, exp...), else ``("kernel", None)``.
    The engines use the operand or result array in place instead of computing a copy.
    """
    text = expr.strip()
    if text in ("x", "y", "ans"):
        return (text, None)
    try:
        return ("const", float(text))
    except ValueError:
        return ("kernel", None)


class ElementwiseEntry:
    """A rule of the table with its partials compiled over NumPy.

    Attributes
    ----------
    rule : ElementwiseRule
        The table entry.
    ufunc : numpy.ufunc
        The NumPy ufunc it differentiates.
    first : tuple of callable
        ``first[i](x, y, ans)`` is the i-th first partial.
    second : tuple of callable
        Second partials ``(dxx,)`` or ``(dxx, dxy, dyy)``, same signature.
    kinds : tuple of (str, float or None)
        Per first partial: ``"const"``/``"x"``/``"y"``/``"ans"`` when it is a number, an
        operand or the result, ``"kernel"`` otherwise (see ``_partial_kind``).
    """

    __slots__ = ("rule", "ufunc", "first", "second", "arity", "name", "linear",
                 "is_power", "kinds")

    def __init__(self, rule):
        self.rule = rule
        self.name = rule.name
        self.arity = rule.arity
        self.ufunc = ufunc_of(rule.name)
        self.first = tuple(compile_expression(e, _NAMESPACE, f"{rule.name}.d{i}")
                           for i, e in enumerate(rule.d))
        self.second = tuple(compile_expression(e, _NAMESPACE, f"{rule.name}.dd{i}")
                            for i, e in enumerate(rule.dd))
        self.linear = "linear" in rule.flags
        self.is_power = rule.name in ("power", "float_power")
        self.kinds = tuple(_partial_kind(e) for e in rule.d)

    def __repr__(self):
        return f"<ElementwiseEntry {self.name}>"


#: ufunc -> ElementwiseEntry, for every rule in the table.
ELEMENTWISE = {ufunc_of(r.name): ElementwiseEntry(r) for r in RULES}

#: ufuncs applied to primal values only (boolean results).
BOOLEAN = frozenset(ufunc_of(n) for n in BOOLEAN_UFUNCS)

_FUNCTIONS = {"forward": {}, "reverse": {}}
_CUSTOM = set()  # functions whose rule came from defrule


def register(func, mode="forward"):
    """Decorator: register the implementation of NumPy function ``func`` in ``mode``.

    The implementation receives the same arguments as ``func`` (with tracers among them)
    and returns the traced result.
    """
    def deco(impl):
        _FUNCTIONS[mode][func] = impl
        return impl
    return deco


def registered(mode="forward"):
    """Return the functions with a rule in ``mode`` (a dict ``func -> implementation``)."""
    return dict(_FUNCTIONS[mode])


def _ufunc_module(ufunc):
    """Where a ufunc lives: NumPy's namespace, else scipy.special's."""
    if getattr(np, ufunc.__name__, None) is ufunc:
        return "numpy"
    try:
        import scipy.special as sp
    except ImportError:  # pragma: no cover - scipy is a dependency
        return None
    return "scipy.special" if getattr(sp, ufunc.__name__, None) is ufunc else None


def has_builtin_rule(func, mode="forward"):
    """Whether dualad itself (not ``defrule``) has a rule for ``func`` in ``mode``."""
    return func in _FUNCTIONS[mode] and func not in _CUSTOM


def public_name(func):
    """The public dotted name of a NumPy function (numpy.fft._pocketfft -> numpy.fft)."""
    return _name_of(func)


def _name_of(func):
    """The public dotted name of a NumPy function (numpy.fft._pocketfft -> numpy.fft)."""
    module = getattr(func, "__module__", None)
    if module is None and isinstance(func, np.ufunc):
        module = _ufunc_module(func)
    module = module or "numpy"
    public = [part for part in module.split(".") if not part.startswith("_")]
    return f"{'.'.join(public) or 'numpy'}.{getattr(func, '__name__', repr(func))}"


def lookup(func, mode="forward"):
    """Return the implementation of ``func`` in ``mode``.

    Raises
    ------
    TypeError
        If dualad has no rule for ``func`` in ``mode``; the message names both.
    """
    impl = _FUNCTIONS[mode].get(func)
    if impl is None:
        raise NoRuleError(unsupported_function(_name_of(func), mode))
    return impl


def defrule(func, jvp, mode="forward"):
    """Register a custom forward-mode rule for a NumPy-style function.

    Parameters
    ----------
    func : callable
        A NumPy function that dispatches through ``__array_function__`` (for example
        ``np.sinc``).  Functions of your own need no rule: dualad differentiates their
        NumPy code directly.
    jvp : callable
        ``jvp(primals, tangents) -> (value, tangent)`` where ``primals`` is the tuple
        of positional arguments with plain values and ``tangents`` the matching tuple
        of tangents (``None`` for arguments that carry none).  Each tangent has the
        lane axis first: ``tangent.shape == (k,) + primal.shape``.
    mode : {"forward"}
        Custom rules are forward-mode rules (a ``jvp``); in reverse mode a function with
        only a custom rule raises ``TypeError`` naming it.

    Returns
    -------
    callable
        ``func`` itself, unchanged.

    Raises
    ------
    TypeError
        If ``func`` is not a NumPy function that dispatches to dualad (a rule for it
        would never be called).

    Examples
    --------
    >>> import numpy as np
    >>> import dualad
    >>> def sinc_jvp(primals, tangents):
    ...     (x,), (t,) = primals, tangents
    ...     d = np.where(x == 0, 0.0, (np.cos(np.pi * x) * np.pi * x - np.sin(np.pi * x))
    ...                  / (np.pi * np.where(x == 0, 1.0, x) ** 2))
    ...     return np.sinc(x), d * t
    >>> _ = dualad.defrule(np.sinc, sinc_jvp)
    >>> round(float(dualad.derivative(np.sinc)(0.5)), 10)
    -1.2732395447
    """
    if mode != "forward":
        raise ValueError(f"defrule supports mode='forward' only, got {mode!r}")
    if not hasattr(func, "_implementation"):
        raise TypeError(
            f"defrule: {getattr(func, '__name__', func)!r} does not dispatch through "
            "NumPy's __array_function__, so a rule for it would never be called. Only "
            "NumPy functions take rules; dualad differentiates your own functions' "
            "NumPy code directly.")

    def impl(*args, **kwargs):
        from .._array import custom_jvp_call
        return custom_jvp_call(func, jvp, args, kwargs)

    _FUNCTIONS[mode][func] = impl
    _CUSTOM.add(func)
    return func
