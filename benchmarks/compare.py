#!/usr/bin/env python
"""Side-by-side comparison of dualad with other ways to get derivatives.

Run from the repository root::

    python benchmarks/compare.py                    # all tasks, single thread
    python benchmarks/compare.py --quick            # fewer, shorter repeats
    python benchmarks/compare.py --tasks T2,T5 --out /tmp/bench
    python benchmarks/compare.py --threads default  # leave threading alone

Tasks
-----
T1  scalar derivative of ``g(x) = sin(x) exp(x)/(1 + x^2) + x^3`` at 0.7
T2  Rosenbrock gradient, n = 2, 100, 10000
T3  Rosenbrock Hessian, n = 10, 100
T4  Rosenbrock Hessian-vector product, n = 100, 10000
T5  Jacobian (1000 x 4) of the curve-fit residual
T6  gradient of a 784-500-10 ReLU perceptron's MSE loss w.r.t. all weights,
    batch 64
T7  ``scipy.optimize.minimize`` on Rosenbrock n = 100 with L-BFGS-B,
    trust-exact and Newton-CG
T8  ``scipy.optimize.least_squares`` on the curve fit

Tools
-----
dualad (whatever of its API exists; a missing function, or one raising
``NotImplementedError``, is skipped with a note): each derivative with
``mode="auto"``, its default, and with each forced mode (``"forward"``,
``"reverse"``) where that is worth timing; in T7 and T8 ``dualad.optimize``
(``minimize``, ``least_squares``) and dualad's transforms handed to SciPy.
JAX (``jax.jit`` of grad/jacfwd/jacrev/hessian/hvp, 64-bit; in T7 and T8 the
jitted callables handed to SciPy), autograd, PyTorch (``torch.func``,
float64), finite differences (``scipy.optimize.approx_fprime``, 2-point) and
numdifftools, beside the plain function and the hand-written derivatives
(``rosen_der``, ``rosen_hess``, ``rosen_hess_prod``, hand-written backprop and
Jacobians), which are the reference. A tool that is not installed is skipped
with a note.

Method
------
All tools differentiate the same expressions (``problems.py``, written against
an array namespace). For Rosenbrock that is the expression of
``scipy.optimize.rosen`` without SciPy's input coercion; T2 also times dualad
on SciPy's ``rosen`` itself, whose ``np.asanyarray`` call turns dualad's array
tracer into an object array of scalar duals.

Every tool is called the way ``scipy.optimize`` would call it: NumPy array (or
float) in, NumPy array (or float) out, so conversions to and from
``jax.Array``/``torch.Tensor`` are part of the time. Fixed data (``t``, ``y``,
the MLP batch) is converted once, outside the timed call. The first call is
timed on its own (for JAX it includes tracing and XLA compilation) and its
answer is compared with the reference; a wrong answer is reported as WRONG and
not timed. The steady state is then timed with `timeit` (garbage collector
off), calling the function enough times per repeat to reach a target duration,
and the median over the repeats is reported: the machine is shared and noisy.
For an optimisation task, one "call" is one complete ``minimize`` or
``least_squares`` run, checked against the run with hand-written derivatives.

dualad's ``mode="auto"`` measures the plausible modes on its first calls and
then keeps the fastest. An auto row is therefore warmed up first: it is called
until the selector has chosen (at most `AUTO_WARMUP_MAX` calls; its "first
call" is the first of them), every warm-up answer is checked, whichever mode
produced it, and only then is it timed; its note says which mode was chosen
and why. In T7 and T8 the transforms handed to SciPy are built once and make
their choice during the first run; ``dualad.optimize`` builds new transforms
in every run, so its choice is part of each timed run. The ``× dualad``
column divides by the case's dualad baseline: the auto row, or
``dualad.optimize`` in T7 and T8 (dualad as called by default).

By default everything runs single-threaded: the thread-count variables of
OpenMP, OpenBLAS, MKL, BLIS, Accelerate and numexpr are set to 1 and XLA is
told to use one intra-op thread *before* NumPy, JAX or PyTorch is imported,
and ``torch.set_num_threads(1)`` is called. ``--threads default`` leaves all
of that alone.

Output: a markdown table printed and written to ``<out>/comparison.md``, the
raw numbers in ``<out>/comparison.json`` and, if matplotlib is installed, a
bar chart of the ratios in ``<out>/comparison.png``. The default ``<out>`` is
``docs/_static/bench`` in the repository; it is created only when the script
runs. Nothing here touches the network.
"""

import argparse
import datetime
import gc
import importlib
import json
import math
import os
import platform
import statistics
import sys
import time
import timeit
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join("docs", "_static", "bench")

TASKS = {
    "T1": "scalar derivative of g",
    "T2": "Rosenbrock gradient",
    "T3": "Rosenbrock Hessian",
    "T4": "Rosenbrock Hessian-vector product",
    "T5": "curve-fit Jacobian (1000 x 4)",
    "T6": "MLP 784-500-10 gradient (batch 64)",
    "T7": "scipy.optimize.minimize, Rosenbrock n = 100",
    "T8": "scipy.optimize.least_squares, curve fit",
}

#: Environment variables that cap the thread pools of the numerical libraries.
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
#: XLA flags for a single-threaded CPU backend.
XLA_SINGLE_THREAD = ("--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=1")

#: Relative error (2-norm) an exact method must reach against the reference.
EXACT_RTOL = 1e-9
#: Relative error (2-norm) an approximate method (finite differences,
#: numdifftools) must reach.
APPROX_RTOL = 1e-4
#: Largest problem on which a forward-mode *full* Jacobian of a scalar
#: function (n x n tangents) is attempted for JAX/PyTorch.
DENSE_FORWARD_MAX_N = 2000
#: Largest n for numdifftools' gradient (O(n) Richardson sweeps, n x n work).
NUMDIFFTOOLS_MAX_N = 1000
#: Largest n at which dualad differentiates ``scipy.optimize.rosen`` itself:
#: SciPy coerces the input with ``np.asanyarray``, which makes an object array
#: of scalar duals out of dualad's array tracer (47 s per gradient at n=10^4).
SCIPY_ROSEN_MAX_N = 100
#: Largest n at which dualad's forward-over-forward Hessian-vector product
#: (``hvp(f, mode="forward")``, ceil(n/12) nested sweeps) is timed.
FORWARD_HVP_MAX_N = 1000
#: Most calls a ``mode="auto"`` transform gets before it is timed. The selector
#: tries each plausible mode ``dualad._selector.TRIALS`` (2) times and then
#: keeps the fastest, so two plausible modes decide within four calls; warm-up
#: stops as soon as the choice is made.
AUTO_WARMUP_MAX = 8
#: Warm-up calls when the selector's state cannot be read: two modes, each
#: tried ``TRIALS`` (2) times.
AUTO_WARMUP_BLIND = 4


class Skip(Exception):
    """A tool or dualad feature that is not available; the message says why."""


@dataclass
class Timing:
    """How long and how often each row is timed.

    Parameters
    ----------
    target : float
        Minimum duration of one repeat, in seconds; the number of calls per
        repeat grows 1, 2, 5, 10, 20, ... until it is reached.
    repeats : int
        Maximum number of repeats (the median is taken over them).
    min_repeats : int
        Minimum number of repeats.
    max_seconds : float
        Time budget per row; fewer repeats (down to `min_repeats`) are made
        when a repeat is slow.
    single_run_over : float
        A call whose first and second runs both took longer than this is not
        repeated: the second run is reported as the only sample.
    """

    target: float = 0.1
    repeats: int = 7
    min_repeats: int = 3
    max_seconds: float = 2.0
    single_run_over: float = 10.0


@dataclass
class Tool:
    """One way of computing a case's answer.

    Parameters
    ----------
    name : str
        Row label, e.g. ``"jax (jit grad)"``.
    family : str
        ``dualad``, ``jax``, ``autograd``, ``torch``, ``fd``, ``numdifftools``;
        used for the ratio-to-dualad column and the plot colours.
    build : callable
        ``build() -> call``; ``call()`` computes the answer from NumPy inputs.
        May raise `Skip` (or ``NotImplementedError``).
    exact : bool
        Whether the tool is exact up to rounding (AD) or an approximation.
    baseline : bool
        Whether this is the case's dualad baseline: the row the ``× dualad``
        column divides by (dualad as a user calls it by default).
    setup_free : bool
        Whether the first call does the same work as every later one (no
        tracing, compilation or mode selection): a first call slower than
        `Timing.single_run_over` is then reported as the single sample instead
        of being repeated.
    """

    name: str
    family: str
    build: object
    exact: bool = True
    baseline: bool = False
    setup_free: bool = False


@dataclass
class Case:
    """One measured problem: a task at one size (or with one method).

    Parameters
    ----------
    task : str
        ``"T1"`` ... ``"T8"``.
    label : str
        Size or method, e.g. ``"n=100"``.
    plain : callable
        Zero-argument call of the plain function (the "plain f" row).
    reference : callable
        Zero-argument call of the hand-written derivative; its answer is the
        oracle for every tool.
    reference_name : str
        Row label of the reference.
    tools : list of Tool
        The tools to measure.
    check : callable, optional
        ``check(result, expected, exact) -> (ok, error, message)``.
    describe : callable, optional
        ``describe(result) -> str`` for the notes column (e.g. iterations).
    """

    task: str
    label: str
    plain: object
    reference: object
    reference_name: str
    tools: list
    check: object = None
    describe: object = None


@dataclass
class Row:
    """One line of the result table."""

    task: str
    case: str
    tool: str
    family: str
    status: str  # "plain", "reference", "ok", "skipped", "WRONG", "error"
    median: float = None
    first: float = None
    samples: int = 0
    calls_per_sample: int = 0
    error: float = None
    note: str = ""
    ratio_plain: float = None
    ratio_dualad: float = None
    baseline: bool = False


# ---------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------


def configure_threads(mode):
    """Pin every numerical library to one thread, unless `mode` is "default".

    Must run before NumPy, SciPy, JAX or PyTorch is imported: the thread pools
    read these variables once, at import.

    Parameters
    ----------
    mode : {"single", "default"}
        ``"single"`` sets the variables; ``"default"`` leaves them alone.

    Returns
    -------
    dict
        The variables that were set, for the report.
    """
    changed = {}
    # JAX: CPU only, so that it does not probe for accelerators.
    if "JAX_PLATFORMS" not in os.environ:
        os.environ["JAX_PLATFORMS"] = "cpu"
        changed["JAX_PLATFORMS"] = "cpu"
    if mode == "default":
        return changed
    for name in THREAD_VARS:
        os.environ[name] = "1"
        changed[name] = "1"
    flags = os.environ.get("XLA_FLAGS", "").split()
    for flag in XLA_SINGLE_THREAD:
        key = flag.split("=")[0]
        flags = [f for f in flags if f.split("=")[0] != key] + [flag]
    os.environ["XLA_FLAGS"] = " ".join(flags)
    changed["XLA_FLAGS"] = os.environ["XLA_FLAGS"]
    return changed


def _import(name):
    # Any failure (not installed, broken build, missing shared library) just
    # means the tool is skipped; the reason goes into the report.
    try:
        return importlib.import_module(name), None
    except Exception as exc:  # noqa: BLE001 - reported, never swallowed silently
        return None, f"{type(exc).__name__}: {exc}"


class Peers:
    """The imported tools, or the reason each one is missing.

    Parameters
    ----------
    threads : {"single", "default"}
        Threading mode (PyTorch's pools are set here).
    """

    def __init__(self, threads):
        import numpy
        import scipy
        import scipy.optimize

        self.np = numpy
        self.scipy = scipy
        self.missing = {}
        self.versions = {
            "python": platform.python_version(),
            "numpy": numpy.__version__,
            "scipy": scipy.__version__,
        }

        self.jax, why = _import("jax")
        if self.jax is not None:
            try:
                self.jax.config.update("jax_enable_x64", True)
                import jax.numpy as jnp

                self.jnp = jnp
                self.versions["jax"] = self.jax.__version__
                jaxlib, _ = _import("jaxlib")
                if jaxlib is not None:
                    self.versions["jaxlib"] = getattr(jaxlib, "__version__", "?")
            except Exception as exc:  # noqa: BLE001
                self.jax, why = None, f"{type(exc).__name__}: {exc}"
        if self.jax is None:
            self.missing["jax"] = why

        self.autograd, why = _import("autograd")
        if self.autograd is not None:
            import autograd.numpy as anp

            self.anp = anp
            self.versions["autograd"] = _dist_version("autograd")
        else:
            self.missing["autograd"] = why

        self.torch, why = _import("torch")
        if self.torch is not None:
            torch_func, why = _import("torch.func")
            if torch_func is None:
                self.torch = None
            else:
                self.versions["torch"] = self.torch.__version__
                if threads != "default":
                    self.torch.set_num_threads(1)
                    try:
                        self.torch.set_num_interop_threads(1)
                    except RuntimeError:
                        pass  # only settable once, before any parallel work
        if self.torch is None:
            self.missing["torch"] = why

        self.nd, why = _import("numdifftools")
        if self.nd is not None:
            self.versions["numdifftools"] = getattr(self.nd, "__version__", "?")
        else:
            self.missing["numdifftools"] = why

        self.dualad, why = _import("dualad")
        if self.dualad is not None:
            self.versions["dualad"] = getattr(self.dualad, "__version__", "?")
        else:
            self.missing["dualad"] = why

    def need(self, name):
        """Return the module for `name`, or raise `Skip` saying it is missing.

        Parameters
        ----------
        name : {"jax", "autograd", "torch", "numdifftools", "dualad"}
            Tool name.
        """
        module = getattr(self, "nd" if name == "numdifftools" else name)
        if module is None:
            raise Skip(f"{name} not available ({self.missing.get(name)})")
        return module

    def dualad_attr(self, path):
        """Return ``dualad.<path>`` or raise `Skip` naming what is missing.

        Parameters
        ----------
        path : str
            Dotted name below the package, e.g. ``"hvp"`` or
            ``"optimize.minimize"``.
        """
        self.need("dualad")
        module_name, _, name = ("dualad." + path).rpartition(".")
        module, why = _import(module_name)
        if module is None:
            raise Skip(f"{module_name} not importable ({why})")
        if not hasattr(module, name):
            raise Skip(f"{module_name}.{name} does not exist yet")
        return getattr(module, name)

    def dualad_transform(self, name, fun, **kwargs):
        """Build ``dualad.<name>(fun, **kwargs)``; NotImplementedError -> `Skip`."""
        transform = self.dualad_attr(name)
        try:
            return transform(fun, **kwargs)
        except NotImplementedError as exc:
            raise Skip(f"dualad.{name}({_kwargs_text(kwargs)}) raised "
                       f"NotImplementedError: {exc}") from None


def _kwargs_text(kwargs):
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "f"


def _dist_version(name):
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001
        return "?"


def _blas_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    parts = []
    for pool in threadpool_info():
        parts.append(f"{pool.get('internal_api')} {pool.get('version')} "
                     f"({pool.get('architecture', '?')}, "
                     f"{pool.get('num_threads')} threads)")
    return "; ".join(sorted(set(parts))) or "none found"


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------


def _auto_decided(transform):
    """Whether a dualad transform's ``mode="auto"`` selector has made its choice.

    True for a forced mode; None when the transform does not expose its
    selector (then a fixed number of warm-up calls is made).
    """
    if getattr(transform, "mode", "auto") != "auto":
        return True
    # Private, read only: the selector keeps one Choice per call signature,
    # whose ``mode`` stays None while it is still exploring.
    choices = getattr(getattr(transform, "_selector", None), "choices", None)
    if choices is None:
        return None
    return bool(choices) and all(c.mode is not None for c in choices.values())


def _auto_reason(transform):
    """The selector's reason for its last choice, from ``explain()`` (or "")."""
    explain = getattr(transform, "explain", None)
    if explain is None:
        return ""
    text = explain()
    # "grad(rosen): last call used reverse mode; reverse mode (n = 100): why"
    return text.split("; ", 1)[1] if "; " in text else text


class AutoCall:
    """A dualad ``mode="auto"`` transform at fixed arguments, warmed up before timing.

    `run_case` calls `warm_up` instead of a plain first call: the transform is
    called until its selector has decided (at most `AUTO_WARMUP_MAX` calls),
    the first of those calls is the row's "first call", and every warm-up
    answer (one per mode tried) is checked like the timed one. The steady
    state is then what a caller gets once the choice is made.

    Parameters
    ----------
    transform : callable
        The transform, e.g. ``dualad.hessian(f, mode="auto")``.
    args : tuple
        Its arguments.
    """

    def __init__(self, transform, args):
        self.transform = transform
        self.args = args
        self.first = None
        self.answers = []  # (mode, answer) of each warm-up call

    def __call__(self):
        return self.transform(*self.args)

    def warm_up(self):
        """Call until the mode is chosen; return the last answer."""
        for i in range(AUTO_WARMUP_MAX):
            start = time.perf_counter()
            answer = self.transform(*self.args)
            if i == 0:
                self.first = time.perf_counter() - start
            self.answers.append((getattr(self.transform, "last_mode", "?"), answer))
            decided = _auto_decided(self.transform)
            if decided or (decided is None and i + 1 >= AUTO_WARMUP_BLIND):
                break
        return answer

    def note(self):
        """Which mode auto chose and why, and how many calls that took."""
        modes = sorted({mode for mode, _ in self.answers})
        calls = len(self.answers)
        tried = (f"{calls} warm-up call{'s' if calls > 1 else ''} "
                 f"({', '.join(modes)}) before timing")
        reason = _auto_reason(self.transform)
        if _auto_decided(self.transform) is False:
            return f"auto still exploring after {tried}: {reason}"
        return f"auto → {reason}; {tried}"


class OptimizerCall:
    """One complete optimiser run with prebuilt dualad transforms (T7, T8).

    The transforms are built once; the row's first call is the first run, in
    which any ``mode="auto"`` transform makes its choice, and the timed runs
    reuse the decided transforms, as repeated solves in one program would.

    Parameters
    ----------
    run : callable
        ``run(derivs) -> OptimizeResult``.
    derivs : dict
        The keyword arguments for the optimiser (``jac``, ``hess``, ``hessp``),
        dualad transforms.
    """

    def __init__(self, run, derivs):
        self.run = run
        self.derivs = derivs

    def __call__(self):
        return self.run(self.derivs)

    def note(self):
        """The mode each ``mode="auto"`` transform chose."""
        parts = []
        for key, transform in self.derivs.items():
            if getattr(transform, "mode", None) == "auto":
                parts.append(f"{key} → {getattr(transform, 'last_mode', '?')}")
        return "auto: " + ", ".join(parts) if parts else ""


def _autorange(timer, target):
    # Like timeit.Timer.autorange, with our own target duration.
    number = 1
    while True:
        for factor in (1, 2, 5):
            n = number * factor
            total = timer.timeit(n)
            if total >= target:
                return n, total
        number *= 10


def measure(call, timing):
    """Median time of one call of `call`, in seconds.

    Parameters
    ----------
    call : callable
        Zero-argument function to time.
    timing : Timing
        Targets and limits.

    Returns
    -------
    median : float
        Median over the repeats of the mean time per call.
    samples : int
        Number of repeats.
    number : int
        Calls per repeat.
    """
    timer = timeit.Timer(call)
    number, total = _autorange(timer, timing.target)
    samples = [total / number]
    budget_repeats = int(timing.max_seconds // max(total, 1e-9))
    repeats = max(timing.min_repeats, min(timing.repeats, budget_repeats))
    for _ in range(repeats - 1):
        samples.append(timer.timeit(number) / number)
    return statistics.median(samples), len(samples), number


def default_check(result, expected, exact):
    """Compare an answer with the reference in the 2-norm.

    Parameters
    ----------
    result, expected : array_like
        Tool answer and reference answer.
    exact : bool
        Exact tools must meet `EXACT_RTOL`, approximations `APPROX_RTOL`.

    Returns
    -------
    ok : bool
    error : float or None
        Relative error ``|result - expected| / |expected|``.
    message : str
        Empty when ok, else what is wrong.
    """
    import numpy as np

    try:
        result = np.asarray(result, dtype=float)
    except (TypeError, ValueError) as exc:
        return False, None, f"result is not a float array ({type(exc).__name__}: {exc})"
    expected = np.asarray(expected, dtype=float)
    if result.shape != expected.shape:
        return False, None, f"shape {result.shape}, expected {expected.shape}"
    if not np.all(np.isfinite(result)):
        return False, None, "non-finite entries"
    scale = max(float(np.linalg.norm(expected)), np.finfo(float).tiny)
    error = float(np.linalg.norm(result - expected)) / scale
    tol = EXACT_RTOL if exact else APPROX_RTOL
    if error > tol:
        return False, error, f"relative error {error:.2e} > {tol:.0e}"
    return True, error, ""


def optimizer_check(result, expected, exact):
    """Check an ``OptimizeResult`` against the hand-written-derivative run.

    The run must report success and end within ``1e-4`` of the reference
    solution, relative to ``1 + max|x_ref|``, in the max norm. The tolerance
    is the same for exact and approximate derivatives: a solver stops
    anywhere inside its own tolerance (L-BFGS-B's default leaves ~1e-5 in x),
    and rounding-level differences in the derivatives move that point, so
    the check asks "same minimum", not "same path".
    """
    import numpy as np

    if not getattr(result, "success", False):
        return False, None, f"did not converge: {getattr(result, 'message', '?')}"
    x, x_ref = np.asarray(result.x, dtype=float), np.asarray(expected.x, dtype=float)
    error = float(np.max(np.abs(x - x_ref))) / (1.0 + float(np.max(np.abs(x_ref))))
    tol = 1e-4
    if error > tol:
        return False, error, (f"solution differs from the reference run by {error:.2e} "
                              f"> {tol:.0e}")
    return True, error, ""


def describe_optimizer(result):
    """Iteration and evaluation counts of an ``OptimizeResult``, for notes."""
    parts = []
    for key in ("nit", "nfev", "njev", "nhev"):
        value = getattr(result, key, None)
        if value is not None:
            parts.append(f"{key}={value}")
    # dualad.optimize.minimize: the passes its Objective made (value and
    # gradient, Hessian, Hessian-vector product) and the calls it answered from
    # its cache.
    objective = result.get("objective") if hasattr(result, "get") else None
    counts = [f"{key}={getattr(objective, key)}" for key in ("ngev", "nhev", "nhvp", "nhit")
              if getattr(objective, key, 0)]
    if counts:
        parts.append("(dualad passes: " + " ".join(counts) + ")")
    return " ".join(parts)


def run_case(case, timing, log):
    """Measure every row of one case.

    Parameters
    ----------
    case : Case
        The problem and its tools.
    timing : Timing
        Timing parameters.
    log : callable
        Progress printer.

    Returns
    -------
    list of Row
    """
    check = case.check or default_check
    rows = []

    def timed_row(name, family, status, call):
        gc.collect()
        start = time.perf_counter()
        value = call()
        first = time.perf_counter() - start
        median, samples, number = measure(call, timing)
        row = Row(case.task, case.label, name, family, status, median=median, first=first,
                  samples=samples, calls_per_sample=number)
        log(f"  {name:<38} {fmt_time(median):>10}")
        return row, value

    plain_row, _ = timed_row("plain f", "plain", "plain", case.plain)
    ref_row, expected = timed_row(case.reference_name, "hand", "reference", case.reference)
    if case.describe is not None:
        ref_row.note = case.describe(expected)
    rows += [plain_row, ref_row]

    for tool in case.tools:
        row = Row(case.task, case.label, tool.name, tool.family, "ok",
                  baseline=tool.baseline)
        gc.collect()
        try:
            call = tool.build()
            if isinstance(call, AutoCall):
                value = call.warm_up()
                row.first = call.first
            else:
                start = time.perf_counter()
                value = call()
                row.first = time.perf_counter() - start
        except Skip as exc:
            row.status, row.note = "skipped", _short(exc, 240)
        except NotImplementedError as exc:
            row.status, row.note = "skipped", _short(f"NotImplementedError: {exc}", 240)
        except Exception as exc:  # noqa: BLE001 - a tool's failure is a result
            row.status, row.note = "error", _short(f"{type(exc).__name__}: {exc}")
        if row.status == "ok":
            try:
                _check_and_time(row, call, value, expected, tool, case, check, timing)
                _add_mode_note(row, call)
            except Exception as exc:  # noqa: BLE001 - reported as the row's result
                row.median = None
                row.status, row.note = "error", _short(f"{type(exc).__name__}: {exc}")
        shown = fmt_time(row.median) if row.status == "ok" else row.status
        log(f"  {tool.name:<38} {shown:>10}  {row.note if row.status != 'ok' else ''}")
        rows.append(row)
    gc.collect()

    plain = plain_row.median
    dualad = baseline_median(rows)
    for r in rows:
        if r.median is not None:
            r.ratio_plain = r.median / plain
            if dualad is not None:
                r.ratio_dualad = r.median / dualad
    return rows


def baseline_median(rows):
    """Median of the case's dualad baseline row, or of its fastest dualad row.

    The baseline is dualad as a user calls it by default (``mode="auto"``, or
    ``dualad.optimize``); when that row did not produce a time, the fastest
    dualad row stands in, and it is marked as the baseline instead.

    Parameters
    ----------
    rows : list of Row
        The rows of one case.

    Returns
    -------
    float or None
    """
    timed = [r for r in rows if r.family == "dualad" and r.status == "ok"]
    chosen = next((r for r in timed if r.baseline), None)
    if chosen is None and timed:
        chosen = min(timed, key=lambda r: r.median)
    for r in rows:
        r.baseline = r is chosen
    return None if chosen is None else chosen.median


def _check_and_time(row, call, value, expected, tool, case, check, timing):
    # Fill `row` in place: WRONG (not timed), a single slow run, or the median.
    ok, row.error, message = check(value, expected, tool.exact)
    if ok and isinstance(call, AutoCall):
        # The warm-up ran each plausible mode: every one of their answers must
        # be right too, not only the last.
        for mode, answer in call.answers[:-1]:
            ok, error, message = check(answer, expected, tool.exact)
            if error is not None:
                row.error = max(row.error or 0.0, error)
            if not ok:
                message = f"{mode} mode during warm-up: {message}"
                break
    if case.describe is not None:
        row.note = case.describe(value)
    if not ok:
        row.status = "WRONG"
        row.note = "; ".join(filter(None, [message, row.note]))
        return
    if row.first > timing.single_run_over and tool.setup_free:
        # Nothing is set up on the first call: it is as good a sample as a
        # second one, and repeating a call this slow buys nothing.
        row.median, row.samples, row.calls_per_sample = row.first, 1, 1
        row.note = "; ".join(filter(None, [row.note, "single timed run (slow)"]))
        return
    if row.first > timing.single_run_over:
        # The first call may include one-time set-up (imports, compilation):
        # decide on a second call whether the function is really that slow.
        start = time.perf_counter()
        call()
        second = time.perf_counter() - start
        if second > timing.single_run_over:
            row.median, row.samples, row.calls_per_sample = second, 1, 1
            row.note = "; ".join(filter(None, [row.note, "single timed run (slow)"]))
            return
    row.median, row.samples, row.calls_per_sample = measure(call, timing)


def _add_mode_note(row, call):
    # After timing: the mode a mode="auto" transform settled on, and why.
    note = getattr(call, "note", None)
    if callable(note):
        text = note()
        if text:
            row.note = "; ".join(filter(None, [row.note, text]))


def _short(text, limit=160):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------
# The tasks
# ---------------------------------------------------------------------------


class Suite:
    """Builds the cases of each task from the shared problems.

    Parameters
    ----------
    peers : Peers
        Imported tools.
    """

    def __init__(self, peers):
        import numpy as np
        import problems
        import scipy.optimize as so

        self.peers = peers
        self.np = np
        self.so = so
        self.P = problems
        self.eps = np.sqrt(np.finfo(float).eps)

    # -- conversions at the NumPy boundary ---------------------------------

    def _jax_jit(self, fun):
        jax = self.peers.need("jax")
        return jax.jit(fun)

    def _torch_in(self, x):
        torch = self.peers.need("torch")
        if isinstance(x, float):
            return torch.tensor(x, dtype=torch.float64)
        return torch.from_numpy(x)

    # -- generic tool sets ---------------------------------------------------

    def _ad_tools(self, kind, problem, x_args, fixed=()):
        """Peer AD tools for one derivative kind.

        Parameters
        ----------
        kind : {"grad", "grad_fwd", "jacfwd", "jacrev", "hessian", "hvp", "derivative"}
            What to compute. ``grad_fwd`` is a forward-mode gradient
            (``jacfwd`` of a scalar function).
        problem : callable
            ``problem(x, *fixed, xp=namespace)``.
        x_args : tuple
            NumPy inputs of the call: ``(x,)`` or ``(x, v)`` for ``hvp``.
        fixed : tuple of ndarray
            Fixed NumPy data, converted once per library.
        """
        np = self.np
        tools = []

        def jax_build():
            jax = self.peers.need("jax")
            jnp = self.peers.jnp
            f = lambda x, *a: problem(x, *a, xp=jnp)
            if kind in ("grad", "derivative"):
                d = jax.grad(f)
            elif kind in ("grad_fwd", "jacfwd"):
                d = jax.jacfwd(f)
            elif kind == "jacrev":
                d = jax.jacrev(f)
            elif kind == "hessian":
                d = jax.hessian(f)
            else:  # hvp, forward-over-reverse

                def d(x, v, *a):
                    return jax.jvp(lambda y: jax.grad(f)(y, *a), (x,), (v,))[1]

            jitted = jax.jit(d)
            data = tuple(jnp.asarray(a) for a in fixed)
            if kind == "derivative":
                return lambda: float(jitted(*x_args, *data))
            return lambda: np.asarray(jitted(*x_args, *data))

        def autograd_build():
            ag = self.peers.need("autograd")
            anp = self.peers.anp
            f = lambda x, *a: problem(x, *a, xp=anp)
            if kind in ("grad", "derivative"):
                d = ag.grad(f)
            elif kind in ("jacfwd", "jacrev", "grad_fwd"):
                d = ag.jacobian(f)
            elif kind == "hessian":
                d = ag.hessian(f)
            else:
                d = ag.hessian_vector_product(f)
            if kind == "derivative":
                return lambda: float(d(*x_args, *fixed))
            return lambda: np.asarray(d(*x_args, *fixed))

        def torch_build():
            self.peers.need("torch")
            import torch
            import torch.func as tf

            f = lambda x, *a: problem(x, *a, xp=torch)
            if kind in ("grad", "derivative"):
                d = tf.grad(f)
            elif kind in ("grad_fwd", "jacfwd"):
                d = tf.jacfwd(f)
            elif kind == "jacrev":
                d = tf.jacrev(f)
            elif kind == "hessian":
                d = tf.hessian(f)
            else:

                def d(x, v, *a):
                    return tf.jvp(lambda y: tf.grad(f)(y, *a), (x,), (v,))[1]

            data = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in fixed)
            to_t = self._torch_in
            if kind == "derivative":
                return lambda: d(*(to_t(a) for a in x_args), *data).item()
            return lambda: d(*(to_t(a) for a in x_args), *data).numpy()

        label = {
            "grad": ("jax (jit grad)", "autograd (grad)", "torch.func (grad)"),
            "derivative": ("jax (jit grad)", "autograd (grad)", "torch.func (grad)"),
            "grad_fwd": ("jax (jit jacfwd)", None, "torch.func (jacfwd)"),
            "jacfwd": ("jax (jit jacfwd)", "autograd (jacobian)", "torch.func (jacfwd)"),
            "jacrev": ("jax (jit jacrev)", None, "torch.func (jacrev)"),
            "hessian": ("jax (jit hessian)", "autograd (hessian)", "torch.func (hessian)"),
            "hvp": ("jax (jit jvp of grad)", "autograd (hessian_vector_product)",
                    "torch.func (jvp of grad)"),
        }[kind]
        for name, family, build in zip(label, ("jax", "autograd", "torch"),
                                       (jax_build, autograd_build, torch_build)):
            if name is not None:
                tools.append(Tool(name, family, build))
        return tools

    def _fd_tool(self, name, fun):
        return Tool(name, "fd", lambda: fun, exact=False, setup_free=True)

    def _nd_tool(self, name, make):
        def build():
            self.peers.need("numdifftools")
            return make(self.peers.nd)

        return Tool(name, "numdifftools", build, exact=False, setup_free=True)

    def _skip_tool(self, name, family, reason, exact=True):
        def build():
            raise Skip(reason)

        return Tool(name, family, build, exact=exact)

    def _dualad_tool(self, name, transform, fun, args, baseline=False, **kwargs):
        """A dualad row: ``dualad.<transform>(fun, **kwargs)(*args)``.

        With ``mode="auto"`` the call is an `AutoCall`: warmed up until the
        selector has chosen, every warm-up answer checked, then timed.
        """
        def build():
            d = self.peers.dualad_transform(transform, fun, **kwargs)
            if kwargs.get("mode") == "auto":
                return AutoCall(d, args)
            return lambda: d(*args)

        return Tool(name, "dualad", build, baseline=baseline)

    def _dualad_modes(self, transform, fun, args, skip=None, **kwargs):
        """The dualad rows of one derivative: ``mode="auto"`` (the case's
        baseline), then the two forced modes.

        Parameters
        ----------
        skip : dict, optional
            ``{mode: reason}`` for a forced mode not worth running.
        """
        tools = [self._dualad_tool("dualad (auto)", transform, fun, args, baseline=True,
                                   mode="auto", **kwargs)]
        for mode in ("forward", "reverse"):
            if skip and mode in skip:
                tools.append(self._skip_tool(f"dualad ({mode})", "dualad", skip[mode]))
            else:
                tools.append(self._dualad_tool(f"dualad ({mode})", transform, fun, args,
                                               mode=mode, **kwargs))
        return tools

    # -- T1 ------------------------------------------------------------------

    def t1(self):
        P = self.P
        x = P.G_X
        tools = [self._dualad_tool("dualad (derivative)", "derivative", P.g, (x,),
                                   baseline=True)]
        tools += self._ad_tools("derivative", P.g, (x,))
        tools.append(self._fd_tool(
            "finite differences (approx_fprime)",
            lambda: self.so.approx_fprime(self.np.array([x]), lambda v: P.g(v[0]))[0]))
        def nd_derivative(nd):
            d = nd.Derivative(P.g)
            return lambda: float(d(x))

        tools.append(self._nd_tool("numdifftools (Derivative)", nd_derivative))
        return [Case("T1", "x=0.7", lambda: P.g(x), lambda: P.g_prime(x),
                     "hand-written g'", tools)]

    # -- T2 ------------------------------------------------------------------

    def t2(self, sizes=(2, 100, 10000)):
        P, so = self.P, self.so
        cases = []
        for n in sizes:
            x = P.rosen_point(n)
            # dualad differentiates the same NumPy expression as the peers;
            # SciPy's own rosen is a separate row because SciPy coerces its
            # input with np.asanyarray first (see SCIPY_ROSEN_MAX_N).
            tools = self._dualad_modes("grad", P.rosen, (x,))
            if n <= SCIPY_ROSEN_MAX_N:
                tools.append(self._dualad_tool("dualad (forward, scipy.optimize.rosen)",
                                               "grad", so.rosen, (x,), mode="forward"))
            else:
                tools.append(self._skip_tool(
                    "dualad (forward, scipy.optimize.rosen)", "dualad",
                    f"skipped above n={SCIPY_ROSEN_MAX_N}: scipy's rosen calls "
                    f"np.asanyarray on its input, which turns dualad's tracer into an "
                    f"object array of scalar duals (minutes per gradient at n={n})"))
            tools += self._ad_tools("grad", P.rosen, (x,))
            if n <= DENSE_FORWARD_MAX_N:
                tools += self._ad_tools("grad_fwd", P.rosen, (x,))
            else:
                why = (f"forward-mode Jacobian of a scalar function materialises n x n "
                       f"tangents ({n * n * 8 / 1e9:.1f} GB per intermediate at n={n})")
                tools += [self._skip_tool("jax (jit jacfwd)", "jax", why),
                          self._skip_tool("torch.func (jacfwd)", "torch", why)]
            tools.append(self._fd_tool("finite differences (approx_fprime)",
                                       lambda x=x: so.approx_fprime(x, so.rosen, self.eps)))
            if n <= NUMDIFFTOOLS_MAX_N:
                tools.append(self._nd_tool("numdifftools (Gradient)",
                                           _nd_at(lambda nd: nd.Gradient(so.rosen), x)))
            else:
                tools.append(self._skip_tool(
                    "numdifftools (Gradient)", "numdifftools",
                    f"skipped above n={NUMDIFFTOOLS_MAX_N}: Richardson extrapolation over "
                    f"n directions (0.4 s per gradient at n=1000 on the reference machine)",
                    exact=False))
            cases.append(Case("T2", f"n={n}", lambda x=x: so.rosen(x),
                              lambda x=x: so.rosen_der(x), "hand-written (rosen_der)",
                              tools))
        return cases

    # -- T3 ------------------------------------------------------------------

    def t3(self, sizes=(10, 100)):
        P, so = self.P, self.so
        cases = []
        for n in sizes:
            x = P.rosen_point(n)
            tools = self._dualad_modes("hessian", P.rosen, (x,))
            tools += self._ad_tools("hessian", P.rosen, (x,))
            tools.append(self._fd_tool(
                "finite differences of rosen_der",
                lambda x=x: so.approx_fprime(x, so.rosen_der, self.eps)))
            tools.append(self._nd_tool("numdifftools (Hessian)",
                                       _nd_at(lambda nd: nd.Hessian(so.rosen), x)))
            cases.append(Case("T3", f"n={n}", lambda x=x: so.rosen(x),
                              lambda x=x: so.rosen_hess(x), "hand-written (rosen_hess)",
                              tools))
        return cases

    # -- T4 ------------------------------------------------------------------

    def t4(self, sizes=(100, 10000)):
        P, so, np = self.P, self.so, self.np
        cases = []
        for n in sizes:
            x, v = P.rosen_point(n), P.rosen_direction(n)

            def fd_hvp(x=x, v=v):
                # 2-point difference of the exact gradient along v.
                h = self.eps * (1.0 + np.linalg.norm(x)) / np.linalg.norm(v)
                return (so.rosen_der(x + h * v) - so.rosen_der(x)) / h

            skip = None
            if n > FORWARD_HVP_MAX_N:
                sweeps = math.ceil(n / 12)
                skip = {"forward": (
                    f"skipped above n={FORWARD_HVP_MAX_N}: forward-over-forward takes "
                    f"ceil(n/12) = {sweeps} nested sweeps per product at n={n} (seconds "
                    f"per call; auto never tries it)")}
            tools = self._dualad_modes("hvp", P.rosen, (x, v), skip=skip)
            tools += self._ad_tools("hvp", P.rosen, (x, v))
            tools.append(self._fd_tool("finite differences of rosen_der", fd_hvp))
            tools.append(self._skip_tool(
                "numdifftools", "numdifftools",
                "no Hessian-vector product in numdifftools; a full Hessian is O(n^2) "
                "evaluations (see T3)", exact=False))
            cases.append(Case("T4", f"n={n}", lambda x=x: so.rosen(x),
                              lambda x=x, v=v: so.rosen_hess_prod(x, v),
                              "hand-written (rosen_hess_prod)", tools))
        return cases

    # -- T5 ------------------------------------------------------------------

    def t5(self):
        P, so = self.P, self.so
        t, y = P.curve_fit_data()
        p = P.P0.copy()
        tools = self._dualad_modes("jacobian", P.residual, (p, t, y))
        tools += self._ad_tools("jacfwd", P.residual, (p,), fixed=(t, y))
        tools += self._ad_tools("jacrev", P.residual, (p,), fixed=(t, y))
        tools.append(self._fd_tool(
            "finite differences (approx_fprime)",
            lambda: so.approx_fprime(p, P.residual, self.eps, t, y)))
        tools.append(self._nd_tool(
            "numdifftools (Jacobian)",
            _nd_at(lambda nd: nd.Jacobian(lambda q: P.residual(q, t, y)), p)))
        return [Case("T5", "m=1000, n=4", lambda: P.residual(p, t, y),
                     lambda: P.residual_jacobian(p, t, y), "hand-written Jacobian", tools)]

    # -- T6 ------------------------------------------------------------------

    def t6(self):
        P = self.P
        theta, xb, yb = P.mlp_data()
        n = theta.size
        loss_time = _quick_time(lambda: P.mlp_loss(theta, xb, yb))
        tools = self._dualad_modes("grad", P.mlp_loss, (theta, xb, yb), skip={
            "forward": f"forward mode needs ceil(n/k) sweeps: {math.ceil(n / 12):,} at "
                       f"k=12 for n={n:,}; reverse mode is the tool for this (auto "
                       f"never tries it)"})
        tools += self._ad_tools("grad", P.mlp_loss, (theta,), fixed=(xb, yb))
        estimate = (n + 1) * loss_time
        tools.append(self._skip_tool(
            "finite differences (approx_fprime)", "fd",
            f"needs n+1 = {n + 1:,} loss evaluations, about {estimate:.0f} s per gradient",
            exact=False))
        tools.append(self._skip_tool(
            "numdifftools (Gradient)", "numdifftools",
            f"needs several times n = {n:,} loss evaluations (over {estimate:.0f} s)",
            exact=False))
        return [Case("T6", f"p={n:,}", lambda: P.mlp_loss(theta, xb, yb),
                     lambda: P.mlp_grad(theta, xb, yb), "hand-written backprop", tools)]

    # -- T7 ------------------------------------------------------------------

    def t7(self, n=100):
        P, so, np = self.P, self.so, self.np
        x0 = P.rosen_start(n)
        options = {
            "L-BFGS-B": {"maxfun": 10**6},  # FD gradients count n+1 evaluations each
            "trust-exact": {},
            "Newton-CG": {"xtol": 1e-8},
        }
        needs = {"L-BFGS-B": ("jac",), "trust-exact": ("jac", "hess"),
                 "Newton-CG": ("jac", "hessp")}
        cases = []

        def run(method, derivs, fun=so.rosen):
            return so.minimize(fun, x0, method=method, options=options[method], **derivs)

        def peer_derivs(family, method):
            # jac / hess / hessp from one AD library, NumPy in and out.
            if family == "jax":
                jax = self.peers.need("jax")
                jnp = self.peers.jnp
                f = lambda x: P.rosen(x, jnp)
                grad = jax.jit(jax.grad(f))
                hess = jax.jit(jax.hessian(f))
                hvp = jax.jit(lambda x, v: jax.jvp(jax.grad(f), (x,), (v,))[1])
                out = {"jac": lambda x: np.asarray(grad(x)),
                       "hess": lambda x: np.asarray(hess(x)),
                       "hessp": lambda x, v: np.asarray(hvp(x, v))}
            elif family == "autograd":
                ag = self.peers.need("autograd")
                f = lambda x: P.rosen(x, self.peers.anp)
                out = {"jac": ag.grad(f), "hess": ag.hessian(f),
                       "hessp": ag.hessian_vector_product(f)}
            else:
                self.peers.need("torch")
                import torch
                import torch.func as tf

                f = lambda x: P.rosen(x, torch)
                grad, hess = tf.grad(f), tf.hessian(f)

                def hvp(x, v):
                    return tf.jvp(tf.grad(f), (x,), (v,))[1]

                T = torch.from_numpy
                out = {"jac": lambda x: grad(T(x)).numpy(),
                       "hess": lambda x: hess(T(x)).numpy(),
                       "hessp": lambda x, v: hvp(T(x), T(v)).numpy()}
            return {k: out[k] for k in needs[method]}

        def fd_derivs(method):
            def fd_grad(x):
                return so.approx_fprime(x, so.rosen, self.eps)

            if method == "L-BFGS-B":
                return {"jac": "2-point"}
            if method == "Newton-CG":
                # hessp: a 2-point difference of the 2-point gradient along p,
                # with the larger step of the nested Hessian below. (SciPy's
                # hess="2-point" over this gradient stalls in rounding noise:
                # "precision loss" after ~1400 iterations.)
                def fd_hessp(x, p):
                    h = 1e-5 * (1.0 + np.linalg.norm(x)) / np.linalg.norm(p)
                    return (fd_grad(x + h * p) - fd_grad(x)) / h

                return {"jac": fd_grad, "hessp": fd_hessp}

            def fd_hess(x):
                # 2-point differences of the 2-point gradient; a larger step
                # keeps the nested differences out of rounding noise.
                return so.approx_fprime(x, fd_grad, 1e-5)

            return {"jac": fd_grad, "hess": fd_hess}

        def dualad_derivs(method):
            made = {}
            for key, name in (("jac", "grad"), ("hess", "hessian"), ("hessp", "hvp")):
                if key in needs[method]:
                    made[key] = self.peers.dualad_transform(name, P.rosen, mode="auto")
            return made

        hand = {"jac": so.rosen_der, "hess": so.rosen_hess, "hessp": so.rosen_hess_prod}
        for method in ("L-BFGS-B", "trust-exact", "Newton-CG"):
            ref = {k: hand[k] for k in needs[method]}
            def runner(make, method=method):
                # Build the derivatives once (outside the timed call), then
                # time complete minimize runs with them.
                def build():
                    derivs = make(method)
                    return OptimizerCall(lambda d: run(method, d), derivs)

                return build

            dualad_name = {"L-BFGS-B": "dualad (grad, auto)",
                           "trust-exact": "dualad (grad + hessian, auto)",
                           "Newton-CG": "dualad (grad + hvp, auto)"}[method]
            tools = [
                Tool("dualad.optimize.minimize (auto)", "dualad",
                     lambda m=method: self._dualad_minimize(m, x0, options[m]),
                     baseline=True),
                Tool(dualad_name, "dualad", runner(dualad_derivs)),
            ]
            for family, name in (("jax", "jax (jit)"), ("autograd", "autograd"),
                                 ("torch", "torch.func")):
                tools.append(Tool(name, family,
                                  runner(lambda m, fam=family: peer_derivs(fam, m))))
            fd_name = {"L-BFGS-B": "finite differences (jac='2-point')",
                       "Newton-CG": "finite differences (approx_fprime, nested hessp)",
                       "trust-exact": "finite differences (approx_fprime, nested)"}[method]
            tools.append(Tool(fd_name, "fd", runner(fd_derivs), exact=False,
                              setup_free=True))
            tools.append(self._skip_tool(
                "numdifftools", "numdifftools",
                "one call costs hundreds of numdifftools derivatives "
                "(per-call cost in T2/T3)",
                exact=False))
            cases.append(Case("T7", method, lambda: so.rosen(x0),
                              lambda m=method, d=ref: run(m, d),
                              "hand-written (rosen_der etc.)", tools,
                              check=optimizer_check, describe=describe_optimizer))
        return cases

    def _dualad_minimize(self, method, x0, options):
        minimize = self.peers.dualad_attr("optimize.minimize")
        # The plain-NumPy rosen, like every other row (see SCIPY_ROSEN_MAX_N).
        # Each run builds a new Objective, so its mode="auto" transforms choose
        # afresh inside every timed run: that cost is part of the row.
        return lambda: minimize(self.P.rosen, x0, method=method, options=options,
                                mode="auto")

    # -- T8 ------------------------------------------------------------------

    def t8(self):
        P, so, np = self.P, self.so, self.np
        t, y = P.curve_fit_data()
        p0 = P.P0.copy()

        def run(jac):
            return so.least_squares(P.residual, p0, jac=jac, args=(t, y))

        def peer_jac(family):
            if family == "jax":
                jax = self.peers.need("jax")
                jnp = self.peers.jnp
                tj, yj = jnp.asarray(t), jnp.asarray(y)
                jac = jax.jit(jax.jacfwd(lambda p, tt, yy: P.residual(p, tt, yy, jnp)))
                return lambda p, *_: np.asarray(jac(p, tj, yj))
            if family == "autograd":
                ag = self.peers.need("autograd")
                jac = ag.jacobian(lambda p, tt, yy: P.residual(p, tt, yy, self.peers.anp))
                return lambda p, *_: jac(p, t, y)
            if family == "numdifftools":
                nd = self.peers.need("numdifftools")
                jac = nd.Jacobian(lambda p: P.residual(p, t, y))
                return lambda p, *_: jac(p)
            self.peers.need("torch")
            import torch
            import torch.func as tf

            tt, yt = torch.from_numpy(t), torch.from_numpy(y)
            jac = tf.jacfwd(lambda p, a, b: P.residual(p, a, b, torch))
            return lambda p, *_: jac(torch.from_numpy(p), tt, yt).numpy()

        def dualad_run(mode):
            def build():
                jac = self.peers.dualad_transform("jacobian", P.residual, mode=mode)
                return OptimizerCall(lambda d: run(d["jac"]), {"jac": jac})

            return build

        def dualad_ls():
            least_squares = self.peers.dualad_attr("optimize.least_squares")
            # A new Jacobian transform per run: auto chooses inside each run.
            return lambda: least_squares(P.residual, p0, args=(t, y), mode="auto")

        def runner(family):
            def build():
                jac = peer_jac(family)
                return lambda: run(jac)

            return build

        tools = [Tool("dualad.optimize.least_squares (auto)", "dualad", dualad_ls,
                      baseline=True),
                 Tool("dualad (jacobian, auto)", "dualad", dualad_run("auto")),
                 Tool("dualad (jacobian, forward)", "dualad", dualad_run("forward"))]
        for family, name in (("jax", "jax (jit jacfwd)"),
                             ("autograd", "autograd (jacobian)"),
                             ("torch", "torch.func (jacfwd)")):
            tools.append(Tool(name, family, runner(family)))
        tools.append(Tool("finite differences (jac='2-point')", "fd",
                          lambda: (lambda: run("2-point")), exact=False, setup_free=True))
        tools.append(Tool("numdifftools (Jacobian)", "numdifftools", runner("numdifftools"),
                          exact=False, setup_free=True))
        return [Case("T8", "trf, m=1000, n=4", lambda: P.residual(p0, t, y),
                     lambda: run(P.residual_jacobian), "hand-written Jacobian", tools,
                     check=optimizer_check, describe=describe_optimizer)]


def _nd_at(make, x):
    # numdifftools builder: make(nd) -> derivative object, evaluated at x.
    def build(nd):
        d = make(nd)
        return lambda: d(x)

    return build


def _quick_time(call, repeats=5):
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------


def fmt_time(seconds):
    """Format a duration with three significant digits and a unit."""
    if seconds is None:
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_ratio(ratio):
    """Format a ratio (``—`` when there is none)."""
    if ratio is None:
        return "—"
    return f"{ratio:.3g}" if ratio < 1000 else f"{ratio:,.0f}"


def markdown_table(rows):
    """Render rows as one markdown table.

    Parameters
    ----------
    rows : list of Row

    Returns
    -------
    str
    """
    head = ("| task | case | tool | median | first call | × plain f | × dualad | "
            "rel. error | notes |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        if r.status in ("ok", "plain", "reference"):
            median = fmt_time(r.median)
        else:
            median = r.status
        if r.status == "reference":
            median += " (ref)"
        error = "—" if r.error is None else f"{r.error:.1e}"
        note = r.note
        if r.samples and r.samples < 3:
            note = "; ".join(filter(None, [note, f"{r.samples} sample(s)"]))
        cells = [r.task, r.case, r.tool, median, fmt_time(r.first),
                 fmt_ratio(r.ratio_plain), fmt_ratio(r.ratio_dualad), error,
                 note.replace("|", "/")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report_header(args, env_changes, peers, started, elapsed):
    """Markdown preamble: what ran, where, with which versions and threads."""
    lines = [
        "# dualad comparison",
        "",
        f"- run: `python benchmarks/compare.py {' '.join(args.argv)}`".rstrip() + ", "
        f"{started:%Y-%m-%d %H:%M} UTC, {elapsed:.0f} s",
        f"- machine: {_cpu_model()}, {os.cpu_count()} logical CPUs, {platform.platform()}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in peers.versions.items()),
        f"- threads: {args.threads}"
        + (" (" + ", ".join(f"{k}={v}" for k, v in env_changes.items()) + ")"
           if env_changes else ""),
        f"- BLAS: {_blas_info()}",
    ]
    for name, why in peers.missing.items():
        lines.append(f"- **{name} skipped**: {why}")
    lines += [
        "",
        ("median: steady-state time of one call (median over repeats). first call: the "
         "first call after building the transform, including JAX tracing and XLA "
         "compilation, and for dualad's `mode=\"auto\"` the first call of the selector's "
         "exploration. × plain f: median / median of one evaluation of the function "
         "itself. × dualad: median / median of the case's dualad baseline, dualad as "
         "called by default (the row showing 1: `mode=\"auto\"`, and `dualad.optimize` "
         "in T7 and T8). dualad (auto) rows are timed after warm-up calls, once the "
         "selector has chosen; the notes say what it chose and why, and every answer of "
         "the warm-up (one per mode tried) is checked too. dualad (forward) and dualad "
         "(reverse) force the mode. rel. error: 2-norm error against the hand-written "
         "derivative (optimisers: max-norm distance to the reference solution). Every "
         "call takes NumPy input and returns NumPy output."),
        "",
        "",
    ]
    return "\n".join(lines)


FAMILY_COLOURS = {
    "plain": "#bbbbbb",
    "hand": "#444444",
    "dualad": "#d62728",
    "jax": "#1f77b4",
    "autograd": "#2ca02c",
    "torch": "#ff7f0e",
    "fd": "#9467bd",
    "numdifftools": "#8c564b",
}


def plot(rows, path):
    """Bar chart of each case's ratios to the plain function (log scale).

    Parameters
    ----------
    rows : list of Row
    path : str
        PNG file to write.

    Returns
    -------
    str or None
        None on success, otherwise why no plot was made.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"matplotlib not available ({exc})"
    cases = []
    for r in rows:
        key = (r.task, r.case)
        if key not in cases:
            cases.append(key)
    ncol = 2
    nrow = math.ceil(len(cases) / ncol)
    heights = []
    for key in cases:
        heights.append(sum(1 for r in rows if (r.task, r.case) == key and r.median))
    fig_h = sum(max(heights[i:i + ncol]) * 0.28 + 0.9 for i in range(0, len(cases), ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(13, max(3.0, fig_h)), squeeze=False)
    for ax, key in zip(axes.flat, cases):
        sel = [r for r in rows if (r.task, r.case) == key and r.median]
        names = [r.tool for r in sel][::-1]
        ratios = [r.ratio_plain for r in sel][::-1]
        colours = [FAMILY_COLOURS.get(r.family, "#777777") for r in sel][::-1]
        ax.barh(range(len(sel)), ratios, color=colours, height=0.7)
        ax.set_yticks(range(len(sel)), names, fontsize=7)
        ax.set_xscale("log")
        for i, ratio in enumerate(ratios):
            ax.text(ratio, i, f" {fmt_ratio(ratio)}", va="center", fontsize=6)
        # Same bar thickness in every panel of a figure row, bars from the top.
        row_max = max(heights[(cases.index(key) // ncol) * ncol:][:ncol])
        ax.set_ylim(len(sel) - row_max - 0.6, len(sel) - 0.4)
        ax.set_xlim(right=max(ratios) * 8)
        ax.axvline(1.0, color="black", linewidth=0.6)
        plain = next((r.median for r in sel if r.status == "plain"), None)
        ax.set_title(f"{key[0]} {TASKS[key[0]]}, {key[1]}", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel(f"time / time of plain f ({fmt_time(plain)})", fontsize=7)
    for ax in list(axes.flat)[len(cases):]:
        ax.axis("off")
    fig.tight_layout(rect=(0, 0.015, 1, 1))
    fig.text(0.01, 0.003, "Skipped and WRONG rows are not drawn; comparison.md lists them "
             "with the reason.", fontsize=7)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def parse_args(argv):
    """Parse the command line (standard library only: runs before imports)."""
    parser = argparse.ArgumentParser(
        description="Compare dualad with JAX, autograd, PyTorch, finite differences, "
                    "numdifftools and hand-written derivatives.",
        epilog="tasks: " + "; ".join(f"{k} {v}" for k, v in TASKS.items()),
    )
    parser.add_argument("--threads", choices=("single", "default"), default="single",
                        help="'single' (default) pins every library to one thread before "
                             "importing it; 'default' leaves threading alone")
    parser.add_argument("--tasks", default=",".join(TASKS),
                        help="comma-separated subset of T1..T8 (default: all)")
    parser.add_argument("--out", default=None,
                        help=f"output directory (default: <repo>/{DEFAULT_OUT}); "
                             "created on first write")
    parser.add_argument("--quick", action="store_true",
                        help="short repeats (about a minute in total), for a smoke test")
    args = parser.parse_args(argv)
    args.argv = list(argv)
    tasks = [t.strip().upper() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        parser.error(f"unknown task(s) {', '.join(unknown)}; "
                     f"choose from {', '.join(TASKS)}")
    args.tasks = tasks
    args.out = args.out or os.path.join(REPO_ROOT, DEFAULT_OUT)
    return args


def main(argv=None):
    """Run the comparison; see the module docstring.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0.
    """
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    env_changes = configure_threads(args.threads)
    if HERE not in sys.path:
        sys.path.insert(0, HERE)

    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.perf_counter()
    peers = Peers(args.threads)
    suite = Suite(peers)
    if args.quick:
        timing = Timing(target=0.02, repeats=3, min_repeats=3, max_seconds=0.3,
                        single_run_over=2.0)
    else:
        timing = Timing()

    def log(text):
        print(text, file=sys.stderr, flush=True)

    for name, why in peers.missing.items():
        log(f"note: {name} skipped: {why}")
    rows = []
    for task in args.tasks:
        for case in getattr(suite, task.lower())():
            log(f"{case.task} {TASKS[case.task]}, {case.label}")
            rows += run_case(case, timing, log)
    elapsed = time.perf_counter() - clock

    header = report_header(args, env_changes, peers, started, elapsed)
    text = header + markdown_table(rows) + "\n"
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "comparison.md"), "w", encoding="utf-8") as fh:
        fh.write(text)
    with open(os.path.join(args.out, "comparison.json"), "w", encoding="utf-8") as fh:
        json.dump({"started": started.isoformat(), "seconds": elapsed,
                   "threads": args.threads, "environment": env_changes,
                   "versions": peers.versions, "missing": peers.missing,
                   "rows": [r.__dict__ for r in rows]}, fh, indent=1)
    why = plot(rows, os.path.join(args.out, "comparison.png"))
    if why:
        log(f"note: no plot: {why}")
    log(f"wrote {args.out}/comparison.md, comparison.json"
        + ("" if why else ", comparison.png") + f" ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
