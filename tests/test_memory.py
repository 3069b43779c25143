"""The caching allocator behind the transforms (dualad._memory).

Large temporaries of a derivative call are served from a cache of freed blocks instead
of fresh pages.  These tests check what must never change because of it: arrays hold
the right values (a reused block given out by ``np.zeros`` is cleared), the limit is
kept, the previous NumPy handler comes back, threads do not corrupt the cache, the
environment variable works, and derivatives are the same with the cache on or off.
"""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from numpy._core.multiarray import get_handler_name
from numpy.testing import assert_array_equal
from scipy.optimize import rosen_der, rosen_hess_prod

import dualad
from dualad import _memory

BIG = 200_000  # float64 elements: 1.6 MB, well above the cache's minimum block


@pytest.fixture
def cache():
    """The cache on in this context, emptied before and after."""
    _memory.release()
    previous = _memory.cache_on()
    assert previous is not None, "the cache is off (DUALAD_CACHE_MB=0 in the environment?)"
    yield
    _memory.cache_off(previous)
    _memory.release()


def test_reused_block_is_cleared_for_zeros(cache):
    a = np.full(BIG, 7.0)
    del a  # the block goes to the cache, dirty
    hits = _memory.cache_info()["hits"]
    z = np.zeros(BIG)
    assert _memory.cache_info()["hits"] == hits + 1, "np.zeros did not reuse the block"
    assert not z.any()
    e = np.empty(BIG)
    e[:] = 3.0
    assert_array_equal(e, 3.0)


def test_small_blocks_and_other_sizes_are_not_cached(cache):
    a = np.ones(100)          # 800 bytes: NumPy's own allocator
    b = np.ones(BIG)
    del a, b
    info = _memory.cache_info()
    assert info["blocks"] == 1 and info["bytes"] == BIG * 8
    c = np.ones(BIG + 1)      # another size: a miss, and the cached block stays
    assert _memory.cache_info()["blocks"] == 1
    del c


def test_limit_is_kept_and_oldest_blocks_go_first(cache):
    old = _memory.cache_limit()
    try:
        _memory.cache_limit(3 * BIG * 8)
        arrays = [np.ones(BIG + i) for i in range(5)]
        sizes = [a.nbytes for a in arrays]
        for i in range(len(arrays)):  # freed in this order (a list frees from its end)
            arrays[i] = None
        info = _memory.cache_info()
        assert info["bytes"] <= 3 * BIG * 8
        # the newest blocks are the ones kept
        kept = sum(sizes[-info["blocks"]:])
        assert info["bytes"] == kept
        _memory.cache_limit(0)  # off: nothing kept, nothing handed out
        assert _memory.cache_info()["blocks"] == 0
        a = np.ones(BIG)
        del a
        assert _memory.cache_info()["blocks"] == 0
    finally:
        _memory.cache_limit(old)


def test_handler_restored_and_outside_arrays_untouched():
    before = get_handler_name()
    previous = _memory.cache_on()
    try:
        inside = np.ones(BIG)
        assert get_handler_name(inside) == "dualad_cache"
    finally:
        _memory.cache_off(previous)
    assert get_handler_name() == before
    outside = np.ones(BIG)
    assert get_handler_name(outside) == before
    del inside  # freed after the context: still returned to its own handler
    assert_array_equal(outside, 1.0)


def test_transforms_use_the_cache_only_while_they_run():
    g = dualad.grad(lambda z: np.sum(np.exp(z) * z))
    x = np.linspace(0.0, 1.0, BIG)
    result = g(x)
    assert get_handler_name() != "dualad_cache"
    np.testing.assert_allclose(result, np.exp(x) * (1.0 + x), rtol=1e-15, atol=0)


def test_threads_share_the_cache_safely():
    errors = []

    def work(seed):
        previous = _memory.cache_on()
        try:
            rng = np.random.default_rng(seed)
            for _ in range(200):
                n = BIG + int(rng.integers(0, 4)) * 1000
                value = float(seed)
                a = np.full(n, value)
                z = np.zeros(n)
                if not (np.all(a == value) and not z.any()):
                    errors.append(seed)
                del a, z
        finally:
            _memory.cache_off(previous)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _memory.cache_info()["bytes"] <= _memory.cache_limit()


@pytest.mark.parametrize("n", [1000, 20_000])
def test_derivatives_identical_with_and_without_the_cache(n):
    x = np.linspace(-1.2, 1.3, n)
    v = np.cos(np.arange(n))
    rosen = lambda z: np.sum(100.0 * (z[1:] - z[:-1] ** 2) ** 2 + (1 - z[:-1]) ** 2)
    old = _memory.cache_limit()
    try:
        results = []
        for limit in (old, 0):
            _memory.cache_limit(limit)
            results.append((dualad.grad(rosen, mode="reverse")(x),
                            dualad.hvp(rosen)(x, v)))
    finally:
        _memory.cache_limit(old)
    assert_array_equal(results[0][0], results[1][0])
    assert_array_equal(results[0][1], results[1][1])
    np.testing.assert_allclose(results[0][0], rosen_der(x), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(results[0][1], rosen_hess_prod(x, v), rtol=1e-12, atol=1e-8)


def _run(env_value, code):
    env = dict(os.environ, DUALAD_CACHE_MB=env_value)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_environment_variable_sets_or_disables_the_limit():
    code = ("import dualad, numpy as np; from dualad import _memory as m; "
            "print(m.cache_limit(), m.cache_on() is None)")
    out = _run("0", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "True"]
    out = _run("1.5", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(int(1.5 * 2 ** 20)), "False"]


@pytest.mark.parametrize("value", ["lots", "-1"])
def test_bad_environment_variable_is_a_clear_error(value):
    out = _run(value, "import dualad")
    assert out.returncode != 0
    assert "DUALAD_CACHE_MB must be" in out.stderr


def test_bad_limit_is_a_clear_error():
    with pytest.raises(ValueError, match="cache limit must be >= 0"):
        _memory.cache_limit(-1)
