"""Helpers shared by the asv benchmark modules.

asv skips a parameter combination whose ``setup`` raises
``NotImplementedError`` (and prints the message). The helpers here turn "dualad
is not importable", "dualad has no such function yet" and "this mode raises
NotImplementedError" into exactly that, so the suite runs against whatever the
core provides today and picks new features up without edits.
"""

import importlib

import numpy as np

__all__ = ["EXACT_ATOL", "EXACT_RTOL", "check_close", "checked_call", "dualad_attr",
           "recorded"]

#: Relative tolerance an automatic-differentiation result must meet against
#: the hand-written derivative before it is timed.
EXACT_RTOL = 1e-10
#: Absolute tolerance used with `EXACT_RTOL` (entries that are exactly zero).
EXACT_ATOL = 1e-12


def dualad_attr(path):
    """Look up a dualad attribute, or skip the benchmark when it is missing.

    Parameters
    ----------
    path : str
        Dotted name below the package, e.g. ``"jacobian"`` or
        ``"optimize.minimize"``.

    Returns
    -------
    object
        The attribute.

    Raises
    ------
    NotImplementedError
        If dualad (or the submodule) cannot be imported or has no such name;
        asv reports the benchmark as skipped.
    """
    module_name, _, name = ("dualad." + path).rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise NotImplementedError(f"{module_name} is not importable: {exc}") from exc
    try:
        return getattr(module, name)
    except AttributeError:
        raise NotImplementedError(f"{module_name}.{name} does not exist yet") from None


def checked_call(fun, args, expected, what):
    """Call ``fun(*args)`` once and compare it with the reference answer.

    Parameters
    ----------
    fun : callable
        The derivative under test (already built, e.g. ``jacobian(f)``).
    args : tuple
        Arguments of the call.
    expected : array_like
        The hand-written (closed-form) answer.
    what : str
        Name used in the failure message.

    Raises
    ------
    NotImplementedError
        Propagated from ``fun`` (a mode or option the core does not support
        yet): the benchmark is skipped.
    AssertionError
        If the result is wrong: asv then reports the benchmark as failed
        instead of timing a wrong answer.
    """
    check_close(fun(*args), expected, what)


def check_close(result, expected, what):
    """Compare a result with the reference answer (shape, then values).

    Parameters
    ----------
    result : array_like
        What the tool under test returned.
    expected : array_like
        The hand-written (closed-form) answer.
    what : str
        Name used in the failure message.

    Raises
    ------
    AssertionError
        If the shapes differ or a value is off by more than `EXACT_RTOL`
        (`EXACT_ATOL` near zero).
    """
    if np.shape(result) != np.shape(expected):
        raise AssertionError(
            f"{what} returned shape {np.shape(result)}, expected {np.shape(expected)}")
    np.testing.assert_allclose(
        np.asarray(result, dtype=float), expected,
        rtol=EXACT_RTOL, atol=EXACT_ATOL, err_msg=f"{what} disagrees with the reference",
    )


def recorded(fun, points):
    """Wrap ``fun`` so that every call appends a copy of its arguments to ``points``.

    The end-to-end SciPy benchmarks run the hand-written solve once through this
    wrapper and then time ``fun`` alone at the recorded points: the "plain f"
    baseline of a whole run, the evaluations no tool can avoid.

    Parameters
    ----------
    fun : callable
        The function to watch.
    points : list
        Receives one tuple of (copied) positional arguments per call.

    Returns
    -------
    callable
        Calls ``fun`` with the same arguments and returns what it returns.
    """
    def wrapped(*args):
        points.append(tuple(np.array(a, copy=True) if isinstance(a, np.ndarray) else a
                            for a in args))
        return fun(*args)
    return wrapped
