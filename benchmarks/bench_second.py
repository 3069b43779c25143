"""Second order and the mode selector.

- ``RosenbrockHvp``: ``dualad.hvp`` of the plain-NumPy Rosenbrock function at
  n = 100 and 10 000 beside SciPy's hand-written ``rosen_hess_prod`` and beside one
  reverse-mode gradient (the promise: an HVP is a small constant times a gradient).
- ``RosenbrockHessian``: ``dualad.hessian`` at n = 10, 100 and 1000 beside
  ``rosen_hess`` and the plain function, in both strategies (forced ``mode="forward"``:
  one HessianArray evaluation up to n = 128) and with ``mode="auto"``.
- ``SelectorRegret``: over a grid of problems, the time of ``mode="auto"`` (after its
  first calls) divided by the time of the faster forced mode: 1.0 is a perfect choice;
  the target is at most 1.15 everywhere.  ``track_`` benchmark: asv records the ratio.
- ``SelectorOverhead``: a decided ``mode="auto"`` call beside the forced mode it chose
  and the plain function, at n = 2.

Every dualad result is checked against the hand-written derivative before it is timed.
"""

import timeit

import numpy as np
from scipy.optimize import rosen_der, rosen_hess, rosen_hess_prod

from . import problems as P
from ._support import checked_call, dualad_attr

PLAIN = "plain f"
HAND = "hand-written"
GRAD = "dualad grad (reverse)"
FWD = "dualad forward"
REV = "dualad reverse"
AUTO = "dualad auto"

#: Forward-over-forward Hessians of up to ``dualad.second.HYPER_MAX_N`` (128) inputs are
#: one evaluation on HessianArray values; above, ceil(n/12)**2 nested sweeps: beyond this
#: n they only measure patience.
_FOF_MAX_N = 200


class RosenbrockHvp:
    """Hessian-vector product of Rosenbrock: ``dualad.hvp`` beside ``rosen_hess_prod``."""

    params = ((100, 10_000), (PLAIN, HAND, GRAD, REV, AUTO))
    param_names = ("n", "tool")

    def setup(self, n, tool):
        self.x = P.rosen_point(n)
        self.v = P.rosen_direction(n)
        if tool == PLAIN:
            self.call = lambda: P.rosen(self.x)
        elif tool == HAND:
            self.call = lambda: rosen_hess_prod(self.x, self.v)
        elif tool == GRAD:
            g = dualad_attr("grad")(P.rosen, mode="reverse")
            self.call = lambda: g(self.x)
        else:
            mode = "reverse" if tool == REV else "auto"
            hp = dualad_attr("hvp")(P.rosen, mode=mode)
            for _ in range(6):  # auto: past its exploring calls
                checked_call(hp, (self.x, self.v), rosen_hess_prod(self.x, self.v),
                             f'dualad.hvp(rosen, mode="{mode}")')
            self.call = lambda: hp(self.x, self.v)

    def time_hvp(self, n, tool):
        self.call()


class RosenbrockHessian:
    """Dense Hessian of Rosenbrock: ``dualad.hessian`` beside ``rosen_hess``."""

    params = ((10, 100, 1000), (PLAIN, HAND, FWD, REV, AUTO))
    param_names = ("n", "tool")
    timeout = 120

    def setup(self, n, tool):
        self.x = P.rosen_point(n)
        if tool == PLAIN:
            self.call = lambda: P.rosen(self.x)
        elif tool == HAND:
            self.call = lambda: rosen_hess(self.x)
        else:
            mode = {FWD: "forward", REV: "reverse", AUTO: "auto"}[tool]
            if mode == "forward" and n > _FOF_MAX_N:
                raise NotImplementedError(f"forward-over-forward at n = {n} takes "
                                          f"{(-(-n // 12)) ** 2} nested sweeps; skipped")
            h = dualad_attr("hessian")(P.rosen, mode=mode)
            for _ in range(6 if mode == "auto" else 1):
                checked_call(h, (self.x,), rosen_hess(self.x),
                             f'dualad.hessian(rosen, mode="{mode}")')
            self.call = lambda: h(self.x)

    def time_hessian(self, n, tool):
        self.call()


# ---------------------------------------------------------------------------------------
# the selector's regret

def _scalar_problem(n):
    rng = np.random.default_rng(n)
    c = rng.uniform(0.5, 1.5, n)

    def f(x):
        return np.sum(c * np.sin(x) ** 2) + P.rosen(x) if n > 1 else np.sum(c * x ** 2)

    def gradient(x):  # by hand
        return c * np.sin(2.0 * x) + rosen_der(x) if n > 1 else 2.0 * c * x
    f.gradient = gradient
    return f, rng.uniform(-1, 1, n)


def _vector_problem(m, n):
    rng = np.random.default_rng(1000 * m + n)
    A = rng.standard_normal((m, n)) / np.sqrt(n)

    def f(x):
        return np.tanh(A @ x) + 0.1 * np.sum(x ** 2)
    return f, rng.uniform(-1, 1, n)


#: (transform, n, m): scalar outputs n = 2 .. 10 000; vector outputs m, n from 1 to
#: 1000 in both directions; Hessians n = 2 .. 1000.
GRID = ([("grad", n, 1) for n in (2, 10, 100, 1000, 10_000)]
        + [("jacobian", n, m) for m, n in ((1, 1000), (10, 1000), (100, 1000), (1000, 1000),
                                           (1000, 100), (1000, 10), (1000, 1), (100, 100),
                                           (10, 10), (30, 30))]
        + [("hessian", n, 1) for n in (2, 10, 100, 1000)]
        + [("hvp", n, 1) for n in (10, 1000)])


def _calls_per_sample(call, budget):
    number = 1
    while timeit.timeit(call, number=number) < budget and number < 4096:
        number *= 2
    return number


def regret(kind, n, m, warmup=6, slow=2.0, rounds=7, budget=0.01):
    """``time(auto) / min(time(forward), time(reverse))`` for one grid point.

    The three callables are timed in interleaved rounds (forward, reverse, auto, then
    again), so that a slow spell of a shared machine hits them alike; each time is the
    median over the rounds.  Each sample follows one untimed call of the same callable:
    otherwise the one timed after reverse mode finds the memory cache holding reverse
    mode's block sizes (a few percent against whichever comes third).

    Parameters
    ----------
    kind : {"grad", "jacobian", "hessian", "hvp"}
        The transform.
    n, m : int
        Input size, and output size (``jacobian`` only).
    warmup : int, optional
        Calls of the ``auto`` transform before it is timed (its exploring calls).
    slow : float, optional
        A forced mode whose single call takes longer than this many seconds is not
        timed further (it cannot be the faster one once the other is measured).
    rounds : int, optional
        Interleaved timing rounds.
    budget : float, optional
        Seconds per sample (calls are batched up to it).

    Returns
    -------
    ratio : float
        The regret (1.0: auto is as fast as the best forced mode).
    detail : dict
        Median seconds per mode and the mode auto chose.
    """
    import dualad

    if kind == "jacobian":
        f, x = _vector_problem(m, n)
    else:
        f, x = _scalar_problem(n)
    make = getattr(dualad, kind)
    args = (x, np.cos(x)) if kind == "hvp" else (x,)
    calls = {}
    for mode in ("forward", "reverse"):
        if kind == "hessian" and mode == "forward" and n > _FOF_MAX_N:
            continue  # ceil(n/12)**2 nested sweeps: minutes, and never the faster one
        t = make(f, mode=mode)
        t0 = timeit.default_timer()
        t(*args)
        if timeit.default_timer() - t0 <= slow:
            calls[mode] = t
    auto = make(f)
    for _ in range(warmup):
        auto(*args)
    calls["auto"] = auto
    numbers = {k: _calls_per_sample(lambda t=t: t(*args), budget) for k, t in calls.items()}
    samples = {k: [] for k in calls}
    for _ in range(rounds):
        for k, t in calls.items():
            t(*args)  # untimed: the previous callable's temporaries may hold the cache
            samples[k].append(timeit.timeit(lambda t=t: t(*args), number=numbers[k])
                              / numbers[k])
    times = {k: float(np.median(v)) for k, v in samples.items()}
    for mode in ("forward", "reverse"):
        times.setdefault(mode, float("inf"))
    best = min(times["forward"], times["reverse"])
    return times["auto"] / best, dict(times, chosen=auto.last_mode)


class SelectorRegret:
    """``mode="auto"`` against the faster forced mode, over the grid (ratio; 1 = best)."""

    params = ([f"{k} n={n} m={m}" for k, n, m in GRID],)
    param_names = ("problem",)
    timeout = 300
    unit = "auto / best forced"

    def setup(self, problem):
        dualad_attr("hessian")  # skip cleanly on a dualad without the transforms
        kind, n, m = problem.split()
        self.point = (kind, int(n[2:]), int(m[2:]))

    def track_regret(self, problem):
        return regret(*self.point)[0]


if __name__ == "__main__":  # python -m benchmarks.bench_second: the regret table
    worst = (0.0, None)
    for point in GRID:
        r, d = regret(*point)
        worst = max(worst, (r, point))
        print(f"{point[0]:9s} n={point[1]:6d} m={point[2]:5d}  auto/best {r:5.2f}  chose "
              f"{d['chosen']:8s} forward {d['forward'] * 1e3:9.3f} ms  reverse "
              f"{d['reverse'] * 1e3:9.3f} ms  auto {d['auto'] * 1e3:9.3f} ms", flush=True)
    print(f"worst: {worst[0]:.2f} at {worst[1]}")


class SelectorOverhead:
    """A decided ``mode="auto"`` call beside the forced mode it chose, on the cheapest
    problem there is (n = 2, where a lookup would show): the two should be equal.  The
    plain ``f`` is timed beside them; the selector's choices over larger problems are
    in `SelectorRegret` (and, with ``f`` beside them, in ``bench_reverse.ValueAndGrad``
    and ``bench_reverse.WideJacobian``)."""

    params = ((PLAIN, "forced forward", "auto"),)
    param_names = ("tool",)

    def setup(self, tool):
        f, self.x = _scalar_problem(2)
        if tool == PLAIN:
            self.g = f
            return
        g = dualad_attr("grad")(f, mode="forward" if tool == "forced forward" else "auto")
        for _ in range(6):
            checked_call(g, (self.x,), f.gradient(self.x), f"grad ({tool})")
        if g.last_mode != "forward":
            raise NotImplementedError(f"auto chose {g.last_mode} here; nothing to compare")
        self.g = g

    def time_grad(self, tool):
        self.g(self.x)
