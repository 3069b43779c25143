"""dualad.special (logsumexp, softmax, log_softmax) against SciPy and closed forms, in
every mode; scipy.special ufuncs through the public transforms."""

import numpy as np
import pytest
import scipy.special as sp
from numpy.testing import assert_allclose

import dualad
from dualad import special
from conftest import fd_jacobian

MODES = ["forward", "reverse"]


@pytest.fixture
def x(rng):
    return rng.normal(size=(3, 4)) * 3


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1), -1])
def test_values_match_scipy(x, axis):
    assert_allclose(special.logsumexp(x, axis=axis), sp.logsumexp(x, axis=axis),
                    rtol=1e-14, err_msg=f"logsumexp axis={axis}")
    assert_allclose(special.softmax(x, axis=axis), sp.softmax(x, axis=axis), rtol=1e-14,
                    err_msg=f"softmax axis={axis}")
    assert_allclose(special.log_softmax(x, axis=axis), sp.log_softmax(x, axis=axis),
                    rtol=1e-13, atol=1e-14, err_msg=f"log_softmax axis={axis}")


def test_logsumexp_weights_and_keepdims(x, rng):
    b = rng.uniform(0.1, 2.0, size=x.shape)
    assert_allclose(special.logsumexp(x, axis=1, b=b, keepdims=True),
                    sp.logsumexp(x, axis=1, b=b, keepdims=True), rtol=1e-14)


def test_logsumexp_is_stable_for_large_inputs():
    x = np.array([1000.0, 1000.0])
    assert_allclose(special.logsumexp(x), 1000.0 + np.log(2.0), rtol=1e-15)
    g = dualad.grad(special.logsumexp, mode="reverse")(x)
    assert_allclose(g, [0.5, 0.5], rtol=1e-15)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_jacobians_match_finite_differences(x, mode, name, axis):
    f = getattr(special, name)
    J = dualad.jacobian(lambda z: f(z, axis=axis), mode=mode)(x)
    assert_allclose(J, fd_jacobian(lambda z: f(z, axis=axis), x), rtol=1e-6, atol=1e-8,
                    err_msg=f"{name} axis={axis} {mode}")


@pytest.mark.parametrize("mode", MODES)
def test_gradient_of_logsumexp_is_softmax(x, mode):
    g = dualad.grad(lambda z: special.logsumexp(z), mode=mode)(x)
    assert_allclose(g, sp.softmax(x), rtol=1e-13)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ufunc, lo, hi", [
    (sp.erf, -2, 2), (sp.erfc, -2, 2), (sp.gamma, 0.5, 4), (sp.gammaln, 0.5, 6),
    (sp.digamma, 0.5, 6), (sp.expit, -5, 5), (sp.logit, 0.1, 0.9)],
    ids=lambda v: getattr(v, "__name__", None))
def test_special_ufuncs_through_transforms(ufunc, lo, hi, mode, rng):
    x = rng.uniform(lo, hi, size=5)
    J = dualad.jacobian(lambda z: ufunc(z), mode=mode)(x)
    assert_allclose(J, fd_jacobian(ufunc, x), rtol=1e-6, atol=1e-8,
                    err_msg=f"{ufunc.__name__} {mode}")


@pytest.mark.parametrize("mode", MODES)
def test_xlogy_and_xlog1py(mode, rng):
    x = rng.uniform(0.2, 2, size=4)
    f = lambda z: np.sum(sp.xlogy(z, z + 1.0) + sp.xlog1py(z, z))  # noqa: E731
    g = dualad.grad(f, mode=mode)(x)
    assert_allclose(g, fd_jacobian(f, x), rtol=1e-6, atol=1e-8)
