"""Shared fixtures: a seeded rng, tolerances, the rule table as parameters, oracles.

The oracles here are independent of dualad's rules: complex-step and central finite
differences computed with plain NumPy on the function itself.
"""

import importlib
import pathlib
import sys

import numpy as np
import pytest

import dualad
from dualad.rules._elementwise import RULES

# Tolerances (see tests' docstrings for where each applies).
RTOL_CS = 1e-12      # complex step: no subtractive cancellation
RTOL_FD = 1e-6       # 4th-order central differences
ATOL_FD = 1e-8

UNARY_RULES = [r for r in RULES if r.arity == 1]
BINARY_RULES = [r for r in RULES if r.arity == 2]


@pytest.fixture
def rng():
    """A NumPy Generator with a fixed seed (tests are reproducible and order-independent)."""
    return np.random.default_rng(20261126)


@pytest.fixture(params=["forward"])
def mode(request):
    """The differentiation modes available (reverse joins when it lands)."""
    return request.param


def pytest_collection_modifyitems(config, items):
    # The compiled core must be the one under test (never a bare source tree).
    assert dualad.Dual.__module__ == "dualad._scalar"


def central_diff(f, x, h=1e-3):
    """4th-order central difference of a scalar function at scalar x."""
    return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)


def fd_jacobian(f, x, h=1e-5):
    """Central-difference Jacobian, shape f(x).shape + x.shape (an independent oracle)."""
    x = np.asarray(x, dtype=float)
    f0 = np.asarray(f(x), dtype=float)
    jac = np.zeros(f0.shape + x.shape)
    for idx in np.ndindex(*x.shape) if x.shape else [()]:
        e = np.zeros_like(x)
        e[idx] = h
        d = (-np.asarray(f(x + 2 * e)) + 8 * np.asarray(f(x + e))
             - 8 * np.asarray(f(x - e)) + np.asarray(f(x - 2 * e))) / (12 * h)
        jac[(Ellipsis,) + tuple(idx)] = d  # out_shape + x.shape
    return jac


def benchmark_module(name):
    """``benchmarks.<name>`` from the repository (its hand-written references, such as
    the perceptron's backpropagation).  The repository root is appended to
    ``sys.path``, not prepended: ``dualad`` must stay the installed, compiled package."""
    root = str(pathlib.Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.append(root)
    return importlib.import_module(f"benchmarks.{name}")
