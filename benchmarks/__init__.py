"""airspeed velocity (asv) benchmarks for dualad.

asv imports this package to discover the ``bench_<area>`` modules; see
``benchmarks/README.md``. ``problems`` holds the functions every benchmark and
``compare.py`` share, and ``_support`` the helpers that skip a benchmark
cleanly when the dualad feature it needs does not exist yet.
"""
