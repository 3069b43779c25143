"""Nested differentiation without perturbation confusion (DESIGN.md, "Nesting").

Each transform call has its own tag; an inner derivative must treat values of an outer
differentiation as constants whose values are themselves traced.  The checks are closed
forms (ForwardDiff.jl's ConfusionTest and Siskind & Pearlmutter's examples).
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import rosen, rosen_hess

from dualad import derivative as D
from dualad import grad, jacobian, jvp
from conftest import ATOL_FD, RTOL_FD, fd_jacobian


def test_classic_confusion_example():
    # d/dx [x * d/dy (x + y)]|_{y=1} = d/dx [x * 1] = 1 (a confused implementation gives 2)
    assert D(lambda x: x * D(lambda y: x + y)(1.0))(2.0) == 1.0


@pytest.mark.parametrize("x", [2.0, -0.5, 0.0])
def test_confusion_at_several_points(x):
    r = D(lambda a: a * D(lambda y: a + y)(1.0))(x)
    assert r == 1.0 and isinstance(r, np.float64), r


def test_mixed_partial_xy():
    # d/dx d/dy (x * y) = 1
    assert D(lambda x: D(lambda y: x * y)(3.0))(2.0) == 1.0


def test_inner_derivative_at_the_outer_tracer():
    # d/dx [d/dy (x * y)]|_{y=x} = d/dx x = 1
    assert D(lambda x: D(lambda y: x * y)(x))(2.0) == 1.0
    # d/dx [d/dy (x * y**2)]|_{y=x} = d/dx 2 x^2 = 4 x
    assert_allclose(D(lambda x: D(lambda y: x * y ** 2)(x))(1.5), 6.0, rtol=1e-15, atol=0)


def test_inner_function_constant_in_its_variable():
    # the inner derivative is 0 whatever x is; so is its x-derivative
    assert D(lambda x: D(lambda y: x ** 2)(1.0))(3.0) == 0.0
    # x * 0 + x: outer derivative 1
    assert D(lambda x: x * D(lambda y: x ** 2)(1.0) + x)(3.0) == 1.0


def test_three_levels():
    # d/dx d/dy d/dz (x y z) = 1
    f = lambda x: D(lambda y: D(lambda z: x * y * z)(1.0))(1.0)  # noqa: E731
    assert D(f)(1.0) == 1.0
    # d/dx [x * d/dy [y * d/dz (x + y + z)]] = d/dx [x * 1] = 1
    g = lambda x: x * D(lambda y: y * D(lambda z: x + y + z)(1.0))(1.0)  # noqa: E731
    assert D(g)(2.0) == 1.0


def test_three_levels_closed_form():
    # h(x) = d/dy [ d/dz (x^2 y^3 z^4) at z=1 ] at y=2 = d/dy (4 x^2 y^3) = 12 x^2 y^2
    #      = 48 x^2, so h'(x) = 96 x
    h = lambda x: D(lambda y: D(lambda z: x ** 2 * y ** 3 * z ** 4)(1.0))(2.0)  # noqa: E731
    assert_allclose(D(h)(0.7), 96 * 0.7, rtol=1e-14, atol=0, err_msg="three levels")


def test_nested_equals_higher_order():
    f = lambda x: np.sin(x) * np.exp(x)  # noqa: E731
    nested = D(D(D(f)))(0.4)
    assert_allclose(nested, D(f, 3)(0.4), rtol=1e-13, atol=0, err_msg="D(D(D)) == D^3")
    # f''' = 2 e^x (cos x - sin x)
    assert_allclose(nested, 2 * np.exp(0.4) * (np.cos(0.4) - np.sin(0.4)), rtol=1e-13,
                    atol=0, err_msg="closed form")


def test_order2_inside_derivative():
    # d/da [d^2/dt^2 (a t^3)]_{t=2} = d/da 12 a = 12
    assert_allclose(D(lambda a: D(lambda t: a * t ** 3, 2)(2.0))(5.0), 12.0, rtol=1e-15,
                    atol=0, err_msg="order 2 inside")


def test_derivative_of_order2_in_jacobian():
    jac = jacobian(lambda a: D(lambda t: a * t ** 3, 2)(2.0))(np.array([1.0, 2.0]))
    assert_allclose(jac, 12.0 * np.eye(2), rtol=1e-15, atol=0,
                    err_msg="order 2 in jacobian")


def test_jacobian_inside_derivative():
    v = np.array([1.0, 2.0, -1.0])
    # d/dt J_v(t v^2) = d/dt diag(2 t v) = diag(2 v)
    res = D(lambda t: jacobian(lambda w: t * w ** 2)(v))(3.0)
    assert res.shape == (3, 3)
    assert_allclose(res, np.diag(2 * v), rtol=1e-15, atol=0,
                    err_msg="jacobian in derivative")


def test_grad_inside_jacobian():
    y = np.array([1.0, 2.0, 0.5])
    x = np.array([0.3, -1.0, 2.0])
    # grad_y sum(x * y^2) = 2 x y;  d/dx = diag(2 y)
    jac = jacobian(lambda a: grad(lambda b: np.sum(a * b ** 2))(y))(x)
    assert_allclose(jac, np.diag(2 * y), rtol=1e-15, atol=0, err_msg="grad in jacobian")


def test_grad_inside_grad_confusion():
    # grad_x sum(x * grad_y sum(x + y)) = grad_x sum(x * 1) = ones
    x = np.array([0.5, -2.0, 3.0])
    g = grad(lambda a: np.sum(a * grad(lambda b: np.sum(a + b))(a)))(x)
    assert_array_equal(g, np.ones(3), err_msg="array confusion")


def test_derivative_closure_over_outer_tracer_array(rng):
    x = rng.standard_normal(4)
    t = 0.5

    def f(a):
        # inner: d/dt sum(a sin(t a)) = sum(a^2 cos(t a))
        return D(lambda s: np.sum(a * np.sin(s * a)))(t)

    jac = grad(f)(x)
    expected = 2 * x * np.cos(t * x) - x ** 2 * t * np.sin(t * x)
    assert_allclose(jac, expected, rtol=1e-14, atol=1e-15, err_msg="closure over tracer")
    assert_allclose(jac, fd_jacobian(f, x), rtol=RTOL_FD, atol=ATOL_FD, err_msg="FD")


def test_derivative_closure_array_output(rng):
    x = rng.standard_normal(3)

    def f(a):
        return D(lambda s: a * s ** 2 + np.cumsum(a) * s)(2.0)   # 4 a + cumsum(a)

    jac = jacobian(f)(x)
    assert_allclose(jac, 4 * np.eye(3) + np.tril(np.ones((3, 3))), rtol=1e-15, atol=0,
                    err_msg="array output with closure")


def test_jvp_inside_derivative():
    v = np.array([1.0, 2.0])
    # jvp of w -> s w^2 at v along ones: 2 s v; sum = 6 s; d/ds = 6
    r = D(lambda s: np.sum(jvp(lambda w: s * w ** 2, v, np.ones(2))[1]))(2.0)
    assert_allclose(r, 6.0, rtol=1e-15, atol=0, err_msg="jvp in derivative")


def test_hessian_by_nesting_matches_scipy(rng):
    x = rng.uniform(-1.5, 1.5, 6)
    assert_allclose(jacobian(grad(rosen))(x), rosen_hess(x), rtol=1e-13, atol=1e-12,
                    err_msg="jacobian(grad(rosen))")


@pytest.mark.parametrize("chunk", [1, 2, None])
def test_nested_chunks_do_not_mix(chunk, rng):
    """Outer and inner sweeps with several lanes each: lanes of two levels never mix."""
    x = rng.standard_normal(5)

    def inner_grad(a):
        return grad(lambda b: np.sum(np.sin(a * b) * b), chunk=chunk)(a)

    hess = jacobian(inner_grad, chunk=chunk)(x)
    # g_i(a) = d/db_i sum(sin(a b) b) at b = a = a_i^2 cos(a_i^2) + sin(a_i^2), so
    # dg_i/da_i = 2a cos(a^2) - 2a^3 sin(a^2) + 2a cos(a^2), and dg_i/da_j = 0 for j != i
    d = 4 * x * np.cos(x ** 2) - 2 * x ** 3 * np.sin(x ** 2)
    assert_allclose(hess, np.diag(d), rtol=1e-13, atol=1e-14, err_msg=f"chunk={chunk}")


def test_outer_tracer_returned_by_inner_function():
    # the inner function returns a value of the outer level only: its derivative is 0
    r = jacobian(lambda a: D(lambda s: a * 1.0)(1.0))(np.array([1.0, 2.0]))
    assert_array_equal(r, np.zeros((2, 2)))


def test_siskind_pearlmutter_example():
    # d/dx [ x * d/dy (x * y) |_{y=2} ] at x=3 = d/dx x^2 = 6
    assert_allclose(D(lambda x: x * D(lambda y: x * y)(2.0))(3.0), 6.0, rtol=1e-15, atol=0)


def test_mixed_tags_in_array_operations(rng):
    """An outer tracer array and an inner one meet in linear ops (concatenate, matmul)."""
    x = rng.standard_normal(3)

    def f(a):
        return D(lambda s: np.sum(np.concatenate([a[:2], [s]]) @ np.stack([a, a]).T
                                  * s))(1.0)

    assert_allclose(grad(f)(x), fd_jacobian(f, x), rtol=RTOL_FD, atol=ATOL_FD,
                    err_msg="mixed tags in concatenate/matmul")


def test_setitem_inner_value_into_outer_array():
    """Writing an inner-level value into an array of the outer level."""
    x = np.array([0.1, 0.2, 0.3])
    s0 = 0.7

    def f(a):
        def inner(s):
            y = a * 1.0        # outer level (a plain array under finite differences)
            y[0] = s * a[1]    # an inner-level value stored into it
            return np.sum(y * s)   # s^2 a1 + s a1 + s a2
        return D(inner)(s0)

    assert_allclose(grad(f)(x), [0.0, 2 * s0 + 1, 1.0], rtol=1e-15, atol=0,
                    err_msg="inner value into outer array")


def test_setitem_outer_value_into_inner_array():
    x = np.array([0.1, 0.2, 0.3])

    def f(a):
        def inner(s):
            z = np.zeros_like(s * np.ones(2))   # inner level
            z[1] = a[2] * s                     # mixed value
            z[0] = a[0]                         # outer-only value
            return np.sum(z * s)                # a2 s^2 + a0 s
        return D(inner)(0.7)                    # 2 a2 s + a0

    assert_allclose(grad(f)(x), [1.0, 0.0, 1.4], rtol=1e-15, atol=0,
                    err_msg="outer value into inner array")
    assert_allclose(grad(f)(x), fd_jacobian(f, x), rtol=RTOL_FD, atol=ATOL_FD,
                    err_msg="outer value into inner array (FD)")
