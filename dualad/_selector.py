"""The measuring mode selector behind ``mode="auto"``.

Design note
-----------
A transform called with ``mode="auto"`` keeps one :class:`Selector`.  Per *call
signature* (the input's shape and the shapes of the array arguments) it keeps a
:class:`Choice`, which goes through two phases:

1. **Exploring.**  A cost model in units of "one evaluation of ``fun``" predicts each
   mode's cost from the input size ``n`` and the output size ``m`` (``m`` is learned from
   the first call; the first call of a Jacobian runs forward mode, which needs no ``m``).
   Modes predicted more than :data:`PLAUSIBLE` times dearer than the cheapest are never
   tried: nobody should pay for 834 forward sweeps to learn that reverse mode wins a
   10 000-input gradient.  The plausible modes are run in turn, each timed
   :data:`TRIALS` times (``time.perf_counter``; the best of the trials, so a descheduled
   call does not decide).  A mode that raises ``TypeError`` for a missing derivative rule
   is dropped and the call is retried in another mode.
2. **Decided.**  The fastest measured mode is stored; from then on a call costs one dict
   lookup on top of the chosen mode (no timing, no model).

Every decision keeps its reason, which ``explain()`` on the transform prints.
"""

import math
import time

__all__ = ["Selector", "Choice", "PLAUSIBLE", "TRIALS"]

#: Modes predicted more than this many times dearer than the cheapest are not tried.
PLAUSIBLE = 4.0
#: Timed calls per plausible mode before the choice is fixed.
TRIALS = 2

_LANES = 12  # forward.CHUNK_THRESHOLD (not imported: this module is engine-free)
_HYPER_MAX_N = 128  # second.HYPER_MAX_N (likewise; a test checks they agree)


def _sweeps(n):
    return max(1, math.ceil(n / _LANES))


def predicted_cost(kind, mode, n, m):
    """Predicted cost of one call, in evaluations of ``fun``.

    Parameters
    ----------
    kind : {"grad", "jacobian", "hessian", "hvp"}
        The transform.
    mode : {"forward", "reverse"}
        The mode.
    n, m : int
        Input and output sizes (``m`` is 1 for the scalar-output transforms).

    Returns
    -------
    float
        The model's estimate: a forward sweep with up to 12 lanes costs about 2
        evaluations, a reverse recording about 3 and each backward sweep about 1; a
        nested (second-order) evaluation costs about 3 times its first-order one.  A
        forward Hessian of up to 128 inputs is one evaluation on arrays that carry each
        element's Hessian: about ``2 + (n / 16)**2`` evaluations when every element
        depends on every input (less when each depends on a few).

    Examples
    --------
    >>> from dualad._selector import predicted_cost
    >>> predicted_cost("grad", "forward", 10_000, 1) > predicted_cost("grad", "reverse", 10_000, 1)
    True
    """
    if kind == "grad":
        return 2.0 * _sweeps(n) if mode == "forward" else 4.0
    if kind == "jacobian":
        return 2.0 * _sweeps(n) if mode == "forward" else 3.0 + 1.0 * max(m, 1)
    if kind == "hvp":
        return 3.0 * 2.0 * _sweeps(n) if mode == "forward" else 3.0 * 4.0
    if kind == "hessian":
        if mode == "reverse":
            return 3.0 * 4.0 * max(1, math.ceil(n / 64))
        if n <= _HYPER_MAX_N:  # one evaluation carrying each element's Hessian
            return 2.0 + (n / 16.0) ** 2
        return 3.0 * 2.0 * _sweeps(n) * _sweeps(n)
    raise ValueError(f"unknown transform kind {kind!r}")


class Choice:
    """The selector's state for one call signature (see the module notes)."""

    __slots__ = ("kind", "n", "m", "mode", "times", "dropped", "reason", "calls")

    def __init__(self, kind, n, m):
        self.kind = kind
        self.n = n
        self.m = m            # None until the first call of a Jacobian has run
        self.mode = None      # the decided mode, None while exploring
        self.times = {}       # mode -> list of measured seconds
        self.dropped = {}     # mode -> why it cannot be used
        self.reason = "no call yet"
        self.calls = 0

    def candidates(self):
        """The plausible modes, cheapest predicted first (``m`` must be known)."""
        modes = [mo for mo in ("forward", "reverse") if mo not in self.dropped]
        cost = {mo: predicted_cost(self.kind, mo, self.n, self.m) for mo in modes}
        best = min(cost.values())
        return sorted((mo for mo in modes if cost[mo] <= PLAUSIBLE * best), key=cost.get)

    def _next(self):
        if self.m is None:  # the first call: forward mode needs no output size
            return next(mo for mo in ("forward", "reverse") if mo not in self.dropped)
        return min(self.candidates(), key=lambda mo: len(self.times.get(mo, ())))

    def explore(self, run, first_error=None):
        """One exploring call: run the next mode under the clock; maybe decide."""
        from ._errors import NoRuleError  # late: keeps this module import-light

        mode = self._next()
        t0 = time.perf_counter()
        try:
            result, m = run(mode)
        except NoRuleError as err:
            # this mode lacks a rule this function needs: drop it and run another one;
            # if no mode has the rules, the first mode's error is the one to report
            first_error = first_error or err
            self.dropped[mode] = str(err).split(". ")[0]
            self.times.pop(mode, None)
            if len(self.dropped) == 2:
                self.dropped.clear()
                raise first_error from None
            return self.explore(run, first_error)
        elapsed = time.perf_counter() - t0
        self.calls += 1
        self.m = m
        self.times.setdefault(mode, []).append(elapsed)
        cands = self.candidates()
        if len(cands) == 1:
            self._decide(cands[0])
        elif all(len(self.times.get(mo, ())) >= TRIALS for mo in cands):
            self._decide(min(cands, key=lambda mo: min(self.times[mo])))
        else:
            self.reason = (f"exploring: {self._measured()}; plausible modes "
                           f"{', '.join(cands)}")
        return mode, result

    def _measured(self):
        parts = [f"{mo} {_fmt(min(ts))} (best of {len(ts)})"
                 for mo, ts in sorted(self.times.items())]
        return ", ".join(parts) if parts else "nothing measured"

    def _decide(self, mode):
        self.mode = mode
        sizes = f"n = {self.n}" + (f", m = {self.m}" if self.kind == "jacobian" else "")
        cands = self.candidates()
        if self.dropped:
            why = "; ".join(f"{mo} unavailable ({w})" for mo, w in self.dropped.items())
        elif len(cands) == 1:
            other = "reverse" if mode == "forward" else "forward"
            ratio = (predicted_cost(self.kind, other, self.n, self.m)
                     / predicted_cost(self.kind, mode, self.n, self.m))
            why = (f"the cost model predicts {other} mode {ratio:.0f}x dearer, "
                   "so it was not tried")
        else:
            why = f"measured {self._measured()}"
        self.reason = f"{mode} mode ({sizes}): {why}"


def _fmt(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


class Selector:
    """The ``mode="auto"`` state of one transform: a :class:`Choice` per call signature."""

    __slots__ = ("kind", "choices", "last")

    def __init__(self, kind):
        self.kind = kind
        self.choices = {}
        self.last = None

    def call(self, key, n, m, run):
        """Run ``run(mode) -> (result, m)`` in the chosen mode; returns ``(mode, result)``."""
        choice = self.choices.get(key)
        if choice is None:
            choice = self.choices[key] = Choice(self.kind, n, m)
        self.last = choice
        if choice.mode is not None:
            return choice.mode, run(choice.mode)[0]
        return choice.explore(run)
