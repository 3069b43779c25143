"""The reverse-mode tape: fan-out, release, threads, processes, repeated pullbacks.

Oracles are closed forms written by hand (and forward mode where the point is that both
engines agree); nothing here compares reverse mode with itself.
"""

import concurrent.futures
import gc
import multiprocessing
import os
import pickle
import threading

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import dualad
from dualad._tape import Tape

# -- module-level functions (picklable by reference, for the process pool) ---------------


def quartic(x):
    """``sum(x**4) + x0 x1``; gradient ``4 x**3 + (x1, x0, 0, ...)``."""
    return np.sum(x ** 4) + x[0] * x[1]


def quartic_grad(x):
    g = 4 * x ** 3
    g[0] += x[1]
    g[1] += x[0]
    return g


def chain_loop(x):
    """``sum_i x_i x_{i+1}`` as a Python loop over scalar elements."""
    s = 0.0
    for i in range(len(x) - 1):
        s = s + x[i] * x[i + 1]
    return s


def chain_loop_grad(x):
    g = np.zeros_like(x)
    g[:-1] += x[1:]
    g[1:] += x[:-1]
    return g


def dual_work(d):
    """Arithmetic on a Dual or DualArray in a worker process."""
    return d * d + np.sin(d)


def call(fn, *args):
    return fn(*args)


# -- helpers -------------------------------------------------------------------------------


def _live_tapes():
    """The Tape objects alive now, found without a collection (so a Tape kept only by a
    reference cycle, waiting for the cyclic collector, still counts)."""
    return sum(1 for o in gc.get_objects() if type(o) is Tape)


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- fan-out -------------------------------------------------------------------------------


def test_fan_out_scalar():
    """One element read once and used 500 times: the adjoints add up."""
    def f(x):
        x0 = x[0]
        s = 0.0
        for k in range(1, 501):
            s = s + x0 * k + x[1]
        return s
    g = dualad.grad(f, mode="reverse")(np.array([0.3, -1.2]))
    assert_allclose(g, [500 * 501 / 2, 500.0], rtol=1e-15)


def test_fan_out_power_chain():
    """``y = x0 * x0 * ... * x0`` (20 factors, each the same node): 20 x0^19."""
    def f(x):
        y = x[0]
        for _ in range(19):
            y = y * x[0]
        return y
    x = np.array([1.1])
    assert_allclose(dualad.grad(f, mode="reverse")(x), [20 * 1.1 ** 19], rtol=1e-14)


def test_fan_out_array():
    """One array node feeding many array operations (and element reads)."""
    def f(x):
        a = np.sin(x)
        return np.sum(a * a) + np.sum(a) * np.sum(a ** 3) + a @ a + a[0] * a[-1]
    x = np.array([0.3, -0.7, 1.2, 0.5])
    a, c = np.sin(x), np.cos(x)
    da = 2 * a + np.sum(a ** 3) + np.sum(a) * 3 * a ** 2 + 2 * a
    da[0] += a[-1]
    da[-1] += a[0]
    expected = da * c
    for mode in ("reverse", "forward"):
        assert_allclose(dualad.grad(f, mode=mode)(x), expected, rtol=1e-14,
                        err_msg=f"fan-out, {mode} mode")


def test_fan_out_input_used_in_many_outputs():
    """A vector output whose every element depends on the same input node."""
    x = np.array([0.5, 2.0])
    jac = dualad.jacobian(lambda z: np.stack([z[0] * z[1]] * 7 + [np.sum(z)]),
                          mode="reverse")(x)
    assert_allclose(jac, np.array([[2.0, 0.5]] * 7 + [[1.0, 1.0]]), rtol=1e-15)


# -- release -------------------------------------------------------------------------------


@pytest.mark.parametrize("fun", [quartic, chain_loop], ids=["array-nodes", "scalar-nodes"])
def test_tape_released_when_call_returns(fun):
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()  # a tape freed only by the cyclic collector would show up here
    try:
        before = _live_tapes()
        g = dualad.grad(fun, mode="reverse")
        for _ in range(5):
            g(np.array([0.5, 1.5, -2.0]))
        dualad.value_and_grad(fun, mode="reverse")(np.array([0.5, 1.5, -2.0]))
        after = _live_tapes()
    finally:
        if was_enabled:
            gc.enable()
    assert after == before, f"{after - before} tape(s) outlived the call"


def test_tape_kept_by_pullback_then_released():
    gc.collect()
    gc.disable()
    try:
        before = _live_tapes()
        _, pullback = dualad.vjp(lambda z: np.sin(z) * z[0], np.array([1.0, 2.0]))
        assert _live_tapes() == before + 1, "the pullback must keep its recording"
        pullback(np.ones(2))
        del pullback
        assert _live_tapes() == before, "the tape outlived its pullback"
    finally:
        gc.enable()


def test_tape_released_after_error():
    def bad(z):
        np.sum(z ** 2)
        raise RuntimeError("boom")
    gc.collect()
    before = _live_tapes()
    with pytest.raises(RuntimeError):
        dualad.grad(bad, mode="reverse")(np.ones(3))
    gc.collect()  # the traceback held the frames; it is gone now
    assert _live_tapes() == before


def test_memory_stable_over_100k_gradients():
    """100 000 reverse-mode gradients of a small function leave RSS where it was."""
    g = dualad.grad(quartic, mode="reverse")
    x = np.array([0.5, 1.5, -2.0])
    for _ in range(5_000):  # warm-up: freelists, caches, allocator arenas
        g(x)
    gc.collect()
    start = _rss_bytes()
    for _ in range(100_000):
        g(x)
    gc.collect()
    growth = _rss_bytes() - start
    # one leaked tape per call (hundreds of bytes at least) would be > 20 MB here
    assert growth < 4 * 2 ** 20, f"RSS grew by {growth / 2 ** 20:.1f} MiB"
    assert_allclose(g(x), quartic_grad(x), rtol=1e-15)


# -- threads -------------------------------------------------------------------------------


def _thread_case(i):
    """Thread i's function, point and closed-form gradient (all different)."""
    rng = np.random.default_rng(100 + i)
    x = rng.uniform(0.5, 1.5, size=5 + i)
    c = float(i + 1)
    if i % 2 == 0:
        def f(z):
            return c * np.sum(np.exp(z) * z) + chain_loop(z)
        expected = c * np.exp(x) * (1 + x) + chain_loop_grad(x)
    else:
        def f(z):
            s = 0.0
            for k in range(len(z)):
                s = s + c * z[k] ** 3
            return s + np.sum(np.log(z)) * c
        expected = 3 * c * x ** 2 + c / x
    return f, x, expected


def test_threads_compute_different_gradients_at_once():
    n_threads = 8
    barrier = threading.Barrier(n_threads)

    def work(i):
        f, x, expected = _thread_case(i)
        g = dualad.grad(f, mode="reverse")
        barrier.wait()  # all threads start recording together
        results = [g(x) for _ in range(200)]
        return i, results, expected

    with concurrent.futures.ThreadPoolExecutor(max_workers=n_threads) as ex:
        futures = [ex.submit(work, i) for i in range(n_threads)]
        for fut in concurrent.futures.as_completed(futures):
            i, results, expected = fut.result()
            for r in results:
                assert_allclose(r, expected, rtol=1e-13,
                                err_msg=f"thread {i} got another thread's gradient")


def test_threads_share_one_pullback():
    """Sweeps of one recording from 8 threads at once (the tape is only read)."""
    x = np.array([0.3, 0.9, -0.4])
    _, pullback = dualad.vjp(lambda z: np.sin(z) * np.sum(z ** 2), x)
    jac = np.diag(np.cos(x)) * np.sum(x ** 2) + 2 * np.outer(np.sin(x), x)
    barrier = threading.Barrier(8)

    def work(i):
        u = np.zeros(3)
        u[i % 3] = 1.0 + i
        barrier.wait()
        return [pullback(u) for _ in range(100)], u @ jac

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
        for results, expected in ex.map(work, range(8)):
            for r in results:
                assert_allclose(r, expected, rtol=1e-14)


# -- pickling and processes ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_grad_callable_pickles(mode):
    g = pickle.loads(pickle.dumps(dualad.grad(quartic, mode=mode)))
    x = np.array([0.5, 1.5, -2.0])
    assert_allclose(g(x), quartic_grad(x), rtol=1e-15)


def test_dual_values_pickle():
    d = dualad.Dual(0.5, (1.0, -2.0), 3)
    d2 = pickle.loads(pickle.dumps(d))
    assert d2 == d and d2.tag == 3
    a = dualad.DualArray(np.array([1.0, 2.0]), np.array([[1.0, 0.0], [0.0, 1.0]]), 4)
    a2 = pickle.loads(pickle.dumps(a))
    assert_array_equal(a2.value, a.value)
    assert_array_equal(a2.tangent, a.tangent)
    assert a2.tag == 4


def test_reverse_tracer_refuses_pickle():
    def f(z):
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(z)
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(z[0])
        return np.sum(z)
    dualad.grad(f, mode="reverse")(np.ones(2))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_process_pool(method):
    x = np.array([0.5, 1.5, -2.0, 0.25])
    d = dualad.Dual(0.5, (1.0, 2.0), 7)
    a = dualad.DualArray(np.array([0.1, 0.2]), np.ones((1, 2)), 8)
    ctx = multiprocessing.get_context(method)
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=ctx) as ex:
        fut_rev = ex.submit(dualad.grad(quartic, mode="reverse"), x)
        fut_fwd = ex.submit(dualad.grad(chain_loop, mode="forward"), x)
        fut_vg = ex.submit(dualad.value_and_grad(chain_loop, mode="reverse"), x)
        fut_d = ex.submit(call, dual_work, d)
        fut_a = ex.submit(call, dual_work, a)
        assert_allclose(fut_rev.result(), quartic_grad(x), rtol=1e-15)
        assert_allclose(fut_fwd.result(), chain_loop_grad(x), rtol=1e-15)
        value, g = fut_vg.result()
        assert_allclose(value, chain_loop(x), rtol=1e-15)
        assert_allclose(g, chain_loop_grad(x), rtol=1e-15)
        rd = fut_d.result()
        assert type(rd) is dualad.Dual and rd.tag == 7
        assert_allclose(rd.value, 0.25 + np.sin(0.5), rtol=1e-15)
        assert_allclose(rd.partials, (1.0 + np.cos(0.5)) * np.array([1.0, 2.0]), rtol=1e-15)
        ra = fut_a.result()
        assert type(ra) is dualad.DualArray and ra.tag == 8
        assert_allclose(ra.tangent, [2 * a.value + np.cos(a.value)], rtol=1e-15)


# -- pullbacks -----------------------------------------------------------------------------


def _vector_fun(z):
    """R^4 -> R^3 with array nodes and scalar nodes mixed."""
    s = z[0] * z[1] + z[2] ** 2
    return np.stack([s, np.sum(np.exp(z)), s * z[3]])


def _vector_jac(z):
    ds = np.array([z[1], z[0], 2 * z[2], 0.0])
    s = z[0] * z[1] + z[2] ** 2
    return np.array([ds, np.exp(z), ds * z[3] + np.array([0, 0, 0, s])])


def test_pullback_many_times_on_one_recording():
    x = np.array([0.4, -1.3, 0.8, 2.1])
    value, pullback = dualad.vjp(_vector_fun, x)
    jac = _vector_jac(x)
    rng = np.random.default_rng(5)
    for trial in range(300):
        u = rng.standard_normal(3)
        if trial % 3 == 0:
            u[rng.integers(3)] = 0.0
        r = pullback(u)
        assert_allclose(r, u @ jac, rtol=1e-13, atol=1e-14,
                        err_msg=f"pullback call {trial}")
        r[:] = np.nan  # the caller owns the result: later sweeps are unaffected
    for i in range(3):
        e = np.zeros(3)
        e[i] = 1.0
        assert_allclose(pullback(e), jac[i], rtol=1e-14)
    assert_allclose(pullback(np.zeros(3)), np.zeros(4), rtol=0, atol=0)


def test_pullback_of_scalar_output_many_times():
    x = np.linspace(0.1, 1.0, 7)
    value, pullback = dualad.vjp(chain_loop, x)
    for k in range(50):
        assert_allclose(pullback(float(k)), k * chain_loop_grad(x), rtol=1e-15)


# -- zero cotangents -----------------------------------------------------------------------


X_MASK = np.array([0.0, -2.0, 4.0, 1e-300])


@pytest.mark.parametrize("f, expected", [
    (lambda z: np.sum(np.where(z > 0, np.sqrt(z), 0.0)),
     [0.0, 0.0, 0.25, 0.5 / np.sqrt(1e-300)]),
    (lambda z: np.sum(np.where(z > 0, np.log(z), 0.0)), [0.0, 0.0, 0.25, 1e300]),
    (lambda z: np.sum(np.where(z != 0, np.sin(z) / z, 1.0)),
     [0.0, (np.cos(-2.0) * -2.0 - np.sin(-2.0)) / 4.0, (np.cos(4.0) * 4 - np.sin(4.0)) / 16,
      0.0]),
    (lambda z: np.where(z[0] > 0, np.sqrt(z[0]), 0.0) + np.where(z[1] > 0, np.log(z[1]),
                                                                 z[1]),
     [0.0, 1.0, 0.0, 0.0]),
], ids=["where-sqrt", "where-log", "where-sinc", "scalar-where"])
@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_zero_cotangent_annihilates(f, expected, mode):
    """np.where masks a branch that is inf/nan at the masked points: its zero cotangent
    (or tangent) times an infinite partial is 0, not nan."""
    with np.errstate(all="ignore"):
        g = dualad.grad(f, mode=mode)(X_MASK)
    assert np.all(np.isfinite(g)), f"{mode}: {g}"
    assert_allclose(g, expected, rtol=1e-14, atol=0, err_msg=mode)


def test_zero_cotangent_from_masking_multiply_reverse():
    """A cotangent that is exactly 0 (masked by a zero factor) annihilates inf."""
    with np.errstate(all="ignore"):
        g = dualad.grad(lambda z: np.sum(np.array([0.0, 1.0]) * np.sqrt(z)),
                        mode="reverse")(np.array([0.0, 4.0]))
    assert_array_equal(g, [0.0, 0.25])


def test_zero_mask_factor_forward_matches_reverse():
    def f(z):
        return np.sum(np.array([0.0, 1.0]) * np.sqrt(z))
    x = np.array([0.0, 4.0])
    with np.errstate(all="ignore"):
        assert_array_equal(dualad.grad(f, mode="forward")(x),
                           dualad.grad(f, mode="reverse")(x))


@pytest.mark.parametrize("f", [
    lambda z: np.sum(np.sqrt(z ** 2)),
    lambda z: np.sqrt(z[0] ** 2) + z[1],
], ids=["array", "scalar"])
def test_sqrt_of_square_at_zero_reverse(f):
    with np.errstate(all="ignore"):
        g = dualad.grad(f, mode="reverse")(np.array([0.0, -2.0]))
    assert_array_equal(g, dualad.grad(f, mode="forward")(np.array([0.0, -2.0])))


# -- the scalar loop at n = 1000 -----------------------------------------------------------


def test_scalar_loop_gradient_n1000():
    x = np.cos(np.arange(1000.0)) + 0.1 * np.arange(1000.0) / 1000
    value, g = dualad.value_and_grad(chain_loop, mode="reverse")(x)
    assert_allclose(value, np.dot(x[:-1], x[1:]), rtol=1e-12)
    assert_allclose(g, chain_loop_grad(x), rtol=1e-15, atol=0)
    assert g.shape == (1000,) and g.dtype == np.float64


def test_scalar_loop_auto_picks_reverse():
    x = np.linspace(-1.0, 1.0, 1000)
    g = dualad.grad(chain_loop, mode="auto")
    assert_allclose(g(x), chain_loop_grad(x), rtol=1e-15, atol=0)
    assert g.last_mode == "reverse"
