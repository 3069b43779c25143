"""The messages of dualad's errors, written once and used by every engine.

Design note
-----------
A tracer (``Dual``, ``HyperDual``, ``DualArray`` and later reverse-mode values) must never
be silently turned into a plain number: that would drop its derivative and produce a wrong
result without any sign.  Every place that refuses such a conversion raises ``TypeError``
with one of the messages built here, so the advice stays consistent.
"""

__all__ = ["float_conversion", "complex_input", "unsupported_function", "object_input",
           "tracer_index",
           "MixedTracerError", "NoRuleError", "MIXED_HYPERDUAL"]


class NoRuleError(TypeError):
    """A NumPy function or ufunc has no derivative rule in the mode being run.

    A subclass of ``TypeError`` (``except TypeError`` catches it), distinguishable so
    that ``mode="auto"`` can drop the mode that lacks the rule and run the other one.
    The message names the function and the mode.

    Examples
    --------
    >>> import numpy as np
    >>> import dualad
    >>> try:
    ...     dualad.grad(lambda x: np.sum(np.fft.fft(x).real))(np.ones(3))
    ... except dualad.NoRuleError as err:
    ...     print(str(err)[:60])
    dualad has no forward-mode derivative rule for numpy.fft.fft
    >>> issubclass(dualad.NoRuleError, TypeError)
    True
    """


NoRuleError.__module__ = "dualad"  # how tracebacks name it: the public name


class MixedTracerError(TypeError):
    """A HyperDual evaluation met what only Dual values support: a Dual or DualArray of
    another differentiation, or a custom (``defrule``) rule.  ``derivative(order=2)``
    catches it and nests first-order sweeps instead; anywhere else it reaches the user
    as a ``TypeError``."""


MIXED_HYPERDUAL = ("HyperDual values cannot be mixed with Dual or DualArray values; use "
                   "one kind of number per differentiation (nest dualad.derivative calls "
                   "instead)")


def float_conversion(kind, what="float()"):
    """Message for ``float()``/``int()``/``math.*`` on a tracer (or storing it in a float array)."""
    return (
        f"{what} was called on a dualad {kind}, which would silently drop its derivative. "
        "This happens with math-module functions (use np.sin(x), not math.sin(x)), "
        "with float(x) or int(x) (read the number without its derivative from x.value), "
        "and when a traced value is stored into a plain float ndarray "
        "(create the array with np.zeros_like(x) or build it with np.array([...]) so "
        "it can hold derivatives)."
    )


def complex_input(mode):
    """Message for complex inputs, which forward and reverse mode do not support."""
    return (
        f"complex values are not supported in {mode} mode: dualad differentiates real "
        "float64 functions. Split the computation into real and imaginary parts."
    )


def object_input(mode):
    """Message for object arrays that are not arrays of dualad values."""
    return (
        f"object arrays are not supported in {mode} mode except arrays of dualad values; "
        "pass a float64 array (np.asarray(x, dtype=float))."
    )


def tracer_index(kind):
    """Message for a traced value used as an index."""
    return (
        f"a dualad {kind} cannot be used as an index: an index is an integer, and "
        "converting the traced value would drop its derivative. Index with plain "
        "integers (for example computed from x.value), or select with np.where."
    )


def unsupported_function(name, mode):
    """Message for a NumPy function that has no derivative rule in ``mode``."""
    fix = ("you can add a rule with dualad.defrule, or compute this part outside the "
           "differentiated function." if mode.startswith("forward") else
           "use forward mode (mode='forward') if it has a rule there, or compute this "
           "part outside the differentiated function.")
    return (
        f"dualad has no {mode}-mode derivative rule for {name}. See the NumPy coverage "
        f"table in the documentation for what is supported; {fix}"
    )
