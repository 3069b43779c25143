"""Pytrees: ``dualad.ravel`` and ``grad``/``value_and_grad`` over dicts, lists, tuples.

Oracles: the flattening is checked against hand-built vectors; gradients over a tree
against closed forms and against central differences of the function of the flat
vector (:func:`conftest.fd_jacobian`), never against dualad itself.
"""

import collections
import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import minimize

import dualad
from dualad.pytree import Unravel, flatten, is_tree

from conftest import fd_jacobian

MODES = ["forward", "reverse"]

Point = collections.namedtuple("Point", ["x", "y"])


def _tree():
    """A tree with every container and leaf kind, keys deliberately not sorted."""
    return {
        "z": np.array([[0.3, -0.5, 0.8], [0.1, 0.7, -0.2]]),
        "a": [1.25, np.array(0.4), (np.array([0.9, -1.1]), None)],
        "m": Point(x=np.array([0.6]), y=2),
    }


def _tree_fun(p):
    a0, a1, (a2, _) = p["a"]
    return (np.sum(np.sin(p["z"]) * a0) + a1 ** 3 * np.sum(p["z"] ** 2)
            + np.sum(a2 * p["m"].x) * p["m"].y + np.exp(a2[1]) * a1)


def _tree_grad(p):
    """The gradient of `_tree_fun`, by hand, in the structure of the tree."""
    z = p["z"]
    a0, a1, (a2, _) = p["a"]
    x, y = p["m"].x, float(p["m"].y)
    gz = np.cos(z) * a0 + 2 * a1 ** 3 * z
    ga0 = np.sum(np.sin(z))
    ga1 = 3 * a1 ** 2 * np.sum(z ** 2) + np.exp(a2[1])
    ga2 = x * y + np.array([0.0, np.exp(a2[1]) * a1])
    gx = np.array([np.sum(a2) * y])
    gy = np.sum(a2 * x)
    return {"z": gz, "a": [ga0, np.array(ga1), (ga2, None)], "m": Point(x=gx, y=gy)}


def _assert_same_structure(got, expected, path="x"):
    assert type(got) is type(expected), f"{path}: {type(got)} != {type(expected)}"
    if isinstance(expected, dict):
        assert list(got) == list(expected), f"{path}: keys {list(got)}"
        for k in expected:
            _assert_same_structure(got[k], expected[k], f"{path}[{k!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected), path
        for i, (g, e) in enumerate(zip(got, expected)):
            _assert_same_structure(g, e, f"{path}[{i}]")
    elif isinstance(expected, np.ndarray):
        assert got.shape == expected.shape and got.dtype == np.float64, path


def _assert_tree_close(got, expected, rtol, atol=0.0):
    gl, gdef = flatten(got)
    el, edef = flatten(expected)
    assert gdef == edef, f"{gdef} != {edef}"
    for i, (g, e) in enumerate(zip(gl, el)):
        assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=f"leaf {i} of {edef}")


# -- ravel -----------------------------------------------------------------------------


def test_ravel_order_and_values():
    tree = _tree()
    flat, unravel = dualad.ravel(tree)
    expected = np.concatenate([tree["z"].ravel(), [1.25, 0.4, 0.9, -1.1, 0.6, 2.0]])
    assert flat.dtype == np.float64 and flat.shape == (12,)
    assert_array_equal(flat, expected)
    assert unravel.size == 12


def test_ravel_unravel_round_trip_keeps_structure():
    tree = _tree()
    flat, unravel = dualad.ravel(tree)
    back = unravel(flat)
    assert list(back) == ["z", "a", "m"]  # insertion order, not sorted
    assert type(back["m"]) is Point
    assert back["a"][2][1] is None
    assert type(back["a"][0]) is np.float64 and back["a"][0] == 1.25
    assert type(back["a"][1]) is np.ndarray and back["a"][1].shape == ()
    assert type(back["m"].y) is np.float64 and back["m"].y == 2.0  # int promoted
    assert_array_equal(back["z"], tree["z"])
    assert_array_equal(back["a"][2][0], tree["a"][2][0])
    assert_array_equal(back["m"].x, tree["m"].x)


def test_ravel_copies_both_ways():
    tree = {"w": np.ones(3)}
    flat, unravel = dualad.ravel(tree)
    flat[0] = 5.0
    assert tree["w"][0] == 1.0, "ravel must not alias the caller's arrays"
    vec = np.arange(3.0)
    out = unravel(vec)
    out["w"][0] = 9.0
    assert vec[0] == 0.0, "unravel must not alias the vector"


@pytest.mark.parametrize("tree, n", [
    (np.arange(6.0).reshape(2, 3), 6),
    (3.5, 1),
    ({}, 0),
    ([], 0),
    ({"a": None}, 0),
    (collections.OrderedDict([("b", np.zeros(2)), ("a", 1.0)]), 3),
    ((np.array([True, False]), np.array([1, 2], dtype=np.int32)), 4),
], ids=["bare-array", "bare-number", "empty-dict", "empty-list", "none", "ordereddict",
        "bool-int"])
def test_ravel_edge_cases(tree, n):
    flat, unravel = dualad.ravel(tree)
    assert flat.shape == (n,) and flat.dtype == np.float64
    back = unravel(flat)
    _, d1 = flatten(back)
    _, d0 = flatten(tree)
    assert d1 == d0
    assert type(back) is type(tree) or isinstance(tree, (float, np.ndarray))


def test_unravel_wrong_shape():
    _, unravel = dualad.ravel({"a": np.zeros(2), "b": 1.0})
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        unravel(np.zeros(4))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        unravel(np.zeros((3, 1)))


@pytest.mark.parametrize("tree, where, what", [
    ({"a": [np.zeros(2), "text"]}, r"\['a'\]\[1\]", "str"),
    ({"a": object()}, r"\['a'\]", "object"),
    ({"c": np.array([1j])}, r"\['c'\]", "complex"),
    ([np.zeros(1), {"s": {1, 2}}], r"\[1\]\['s'\]", "set"),
])
def test_bad_leaf_names_its_path(tree, where, what):
    with pytest.raises(TypeError, match=where) as info:
        dualad.ravel(tree)
    assert what in str(info.value)


def test_unravel_pickles_and_compares():
    _, unravel = dualad.ravel(_tree())
    again = pickle.loads(pickle.dumps(unravel))
    assert again == unravel
    vec = np.linspace(0, 1, unravel.size)
    _assert_tree_close(again(vec), unravel(vec), rtol=0)
    assert "12 values" in repr(unravel)
    assert dualad.ravel({"a": np.zeros(2)})[1] != dualad.ravel({"b": np.zeros(2)})[1]


@pytest.mark.parametrize("x, expected", [
    ([1.0, 2.0], False),
    ([[1.0, 2.0], [3.0, 4.0]], False),
    ((1, 2.5), False),
    (np.zeros(3), False),
    ([np.zeros(2), np.zeros(2)], True),
    ((np.zeros(2), 1.0), True),
    ([[1.0], [np.zeros(1)]], True),
    ({"a": 1.0}, True),
    ([None, 1.0], True),
])
def test_is_tree(x, expected):
    assert is_tree(x) is expected


# -- gradients over trees ----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_grad_of_tree_closed_form(mode):
    tree = _tree()
    g = dualad.grad(_tree_fun, mode=mode)(tree)
    expected = _tree_grad(tree)
    _assert_same_structure(g, expected)
    assert type(g["a"][0]) is np.float64 and type(g["m"].y) is np.float64
    _assert_tree_close(g, expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("mode", MODES)
def test_grad_of_tree_equals_central_differences_of_flat_function(mode):
    tree = _tree()
    flat, unravel = dualad.ravel(tree)
    fd = fd_jacobian(lambda v: _tree_fun(unravel(v)), flat)
    g = dualad.grad(_tree_fun, mode=mode)(tree)
    assert_allclose(dualad.ravel(g)[0], fd, rtol=1e-8, atol=1e-9,
                    err_msg=f"{mode}: tree gradient vs central differences")


@pytest.mark.parametrize("mode", MODES + ["auto"])
def test_value_and_grad_of_tree(mode):
    tree = _tree()
    value, g = dualad.value_and_grad(_tree_fun, mode=mode)(tree)
    assert type(value) is np.float64
    assert_allclose(value, _tree_fun(tree), rtol=1e-15)
    _assert_tree_close(g, _tree_grad(tree), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("mode", MODES)
def test_grad_of_tree_with_args(mode):
    def loss(p, X, y):
        return np.sum((X @ p["w"] + p["b"] - y) ** 2)
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((5, 3)), rng.standard_normal(5)
    p = {"w": rng.standard_normal(3), "b": 0.3}
    g = dualad.grad(loss, mode=mode)(p, X, y)
    r = X @ p["w"] + p["b"] - y
    assert_allclose(g["w"], 2 * X.T @ r, rtol=1e-13)
    assert_allclose(g["b"], 2 * np.sum(r), rtol=1e-13)


@pytest.mark.parametrize("mode", MODES)
def test_list_of_numbers_is_still_an_array(mode):
    g = dualad.grad(lambda x: np.sum(x ** 2), mode=mode)([1.0, 2.0])
    assert type(g) is np.ndarray
    assert_array_equal(g, [2.0, 4.0])


@pytest.mark.parametrize("mode", MODES)
def test_tuple_of_arrays_ragged(mode):
    x = (np.array([1.0, 2.0]), np.array([3.0, 4.0, 5.0]))
    g = dualad.grad(lambda t: np.sum(t[0]) * np.sum(t[1] ** 2), mode=mode)(x)
    assert type(g) is tuple
    assert_allclose(g[0], [50.0, 50.0], rtol=1e-15)
    assert_allclose(g[1], [18.0, 24.0, 30.0], rtol=1e-15)


@pytest.mark.parametrize("mode", MODES)
def test_list_of_equal_arrays_is_a_tree_not_a_matrix(mode):
    x = [np.array([1.0, 2.0]), np.array([3.0, 4.0])]
    g = dualad.grad(lambda t: np.sum(t[0] * t[1]), mode=mode)(x)
    assert type(g) is list and len(g) == 2
    assert_array_equal(g[0], [3.0, 4.0])
    assert_array_equal(g[1], [1.0, 2.0])


@pytest.mark.parametrize("mode", MODES)
def test_empty_tree(mode):
    value, g = dualad.value_and_grad(lambda t: 3.0, mode=mode)({"a": None, "b": []})
    assert value == 3.0
    assert g == {"a": None, "b": []}


@pytest.mark.parametrize("mode", MODES)
def test_callers_tree_not_modified(mode):
    tree = {"w": np.array([1.0, 2.0]), "v": [np.array([3.0])]}

    def f(p):
        w = p["w"]
        w[0] = 10.0 * w[1]  # item assignment inside fun: a functional update
        return np.sum(w ** 2) + np.sum(p["v"][0])

    g = dualad.grad(f, mode=mode)(tree)
    assert_array_equal(tree["w"], [1.0, 2.0])
    assert_array_equal(tree["v"][0], [3.0])
    assert_allclose(g["w"], [0.0, 2 * 2.0 + 2 * 20.0 * 10.0], rtol=1e-15)
    assert_allclose(g["v"][0], [1.0], rtol=1e-15)


def test_auto_mode_counts_all_leaves():
    f = dualad.grad(lambda p: np.sum(p[0] ** 2) + np.sum(p[1]), mode="auto")
    # the selector sees the flat size: all leaves together
    f((np.ones(3), np.ones(3)))
    assert f._selector.last.n == 6
    g = f((np.ones(1000), np.ones(1000)))
    assert f._selector.last.n == 2000
    assert f.last_mode == "reverse"  # forward (167 sweeps) is not even tried
    assert_allclose(g[0], 2.0 * np.ones(1000))


def test_integer_leaves_promoted():
    g = dualad.grad(lambda p: p["a"] * np.sum(p["b"] ** 2), mode="reverse")(
        {"a": 2, "b": np.array([1, 2])})
    assert type(g["a"]) is np.float64 and g["a"] == 5.0
    assert g["b"].dtype == np.float64
    assert_array_equal(g["b"], [4.0, 8.0])


@pytest.mark.parametrize("outer", MODES)
@pytest.mark.parametrize("inner", MODES)
def test_nested_hessian_over_tree(outer, inner):
    """Jacobian of the (raveled) tree gradient: the Hessian, symmetric, vs differences."""
    tree = _tree()
    flat, unravel = dualad.ravel(tree)

    def flat_grad(v):
        return dualad.ravel(dualad.grad(_tree_fun, mode=inner)(unravel(v)))[0]

    H = dualad.jacobian(flat_grad, mode=outer)(flat)
    fd = fd_jacobian(lambda v: dualad.ravel(_tree_grad(unravel(v)))[0], flat)
    assert H.shape == (12, 12)
    assert_allclose(H, H.T, rtol=1e-12, atol=1e-12, err_msg=f"{outer} over {inner}")
    assert_allclose(H, fd, rtol=1e-7, atol=1e-8, err_msg=f"{outer} over {inner}")


def test_grad_of_tree_pickles():
    g = dualad.grad(_tree_fun, mode="reverse")
    again = pickle.loads(pickle.dumps(g))
    _assert_tree_close(again(_tree()), _tree_grad(_tree()), rtol=1e-13, atol=1e-15)


def test_scipy_minimize_over_a_tree():
    """ravel + grad over a tree drive scipy.optimize.minimize (least squares fit)."""
    rng = np.random.default_rng(11)
    X = rng.standard_normal((20, 3))
    true = {"w": np.array([1.0, -2.0, 0.5]), "b": 0.25}
    y = X @ true["w"] + true["b"]

    def loss(p):
        return np.mean((X @ p["w"] + p["b"] - y) ** 2)

    x0, unravel = dualad.ravel({"w": np.zeros(3), "b": 0.0})
    vg = dualad.value_and_grad(loss, mode="reverse")

    def fun(v):
        value, g = vg(unravel(v))
        return value, dualad.ravel(g)[0]

    res = minimize(fun, x0, jac=True, method="BFGS", options={"gtol": 1e-12})
    best = unravel(res.x)
    assert_allclose(best["w"], true["w"], rtol=1e-7)
    assert_allclose(best["b"], true["b"], rtol=1e-7)


def test_unravel_class_exposed():
    _, unravel = dualad.ravel([np.zeros(2)])
    assert isinstance(unravel, Unravel)


def test_pytree_module_doctests():
    import doctest

    import dualad.pytree
    result = doctest.testmod(dualad.pytree, optionflags=doctest.ELLIPSIS
                             | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_forward_grad_of_empty_input():
    assert_array_equal(dualad.grad(np.sum, mode="forward")(np.zeros(0)), np.zeros(0))
