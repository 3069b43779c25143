"""Diagnostics: check_grad, trace (the recorded graph) and the non-finite origin search.

Oracles are independent of dualad: closed-form derivatives, SciPy's ``rosen_der`` /
``rosen_hess``, and source line numbers read from this file with ``inspect``.
"""

import inspect
import os
import re
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.optimize import rosen, rosen_der, rosen_hess

import dualad
from dualad import _tape
from dualad.diagnostics import (
    Component,
    GradientCheck,
    Graph,
    Node,
    check_grad,
    find_nonfinite,
    trace,
)

THIS_FILE = os.path.basename(__file__)


def line_of(func, text):
    """The line number in this file of the first line of ``func`` containing ``text``."""
    lines, start = inspect.getsourcelines(func)
    for k, line in enumerate(lines):
        if text in line:
            return start + k
    raise AssertionError(f"{text!r} is not in {func.__name__}")


# ---------------------------------------------------------------------------------------
# check_grad

X3 = np.array([1.3, 0.7, 0.8])


@pytest.mark.parametrize("mode", ["auto", "forward", "reverse"])
def test_check_grad_passes_for_rosenbrock(mode):
    report = check_grad(rosen, X3, mode=mode)
    assert isinstance(report, GradientCheck)
    assert report.passed and bool(report)
    assert report.max_rel_error < 1e-9
    # both sides against SciPy's closed form
    assert_allclose(report.checked, rosen_der(X3), rtol=1e-13)
    assert_allclose(report.finite_differences, rosen_der(X3), rtol=1e-9)
    assert report.raise_if_failed() is report


def test_check_grad_jacobian_of_a_vector_function():
    def f(x, a):
        return np.array([x[0] * x[1], np.sin(x[0]) + a * x[2], x[2] ** 2])
    x = np.array([0.3, -1.2, 2.0])
    report = check_grad(f, x, 1.5)
    expected = np.array([[x[1], x[0], 0.0],
                         [np.cos(x[0]), 0.0, 1.5],
                         [0.0, 0.0, 2 * x[2]]])
    assert report.passed
    assert report.checked.shape == (3, 3)
    assert_allclose(report.checked, expected, rtol=1e-14, atol=1e-15)
    assert all(len(c.index) == 2 for c in report.worst)


def test_check_grad_catches_a_wrong_user_gradient():
    def f(x):
        return np.sum(np.sin(x) * x)

    def forgot_product_rule(x):
        return np.cos(x) * x
    x = np.array([0.5, 2.0, -1.0])
    report = check_grad(f, x, grad=forgot_product_rule)
    assert not report.passed and not bool(report)
    # the reference is the exact gradient sin(x) + x cos(x)
    assert_allclose(report.reference, np.sin(x) + x * np.cos(x), rtol=1e-14)
    assert_allclose(report.checked, np.cos(x) * x, rtol=0)
    errors = np.abs(np.sin(x))
    assert_allclose(report.max_abs_error, errors.max(), rtol=1e-12)
    assert report.worst[0].index == (int(np.argmax(errors)),)
    with pytest.raises(AssertionError, match="FAILED") as info:
        report.raise_if_failed()
    assert "forgot_product_rule" in str(info.value)


def test_check_grad_names_the_one_wrong_component():
    def wrong(x):
        g = rosen_der(x).copy()
        g[2] *= 1.001
        return g
    x = np.linspace(0.5, 1.5, 6)
    report = check_grad(rosen, x, grad=wrong)
    assert not report.passed
    assert report.worst[0].index == (2,)
    assert report.worst[0].label == "(2,)"
    assert_allclose(report.worst[0].error, abs(rosen_der(x)[2]) * 1e-3, rtol=1e-9)
    assert "(2,)" in str(report).split("worst components:")[1].splitlines()[2]
    assert check_grad(rosen, x, grad=rosen_der).passed


def test_check_grad_pytree_labels_leaves():
    def loss(p, X, y):
        return np.sum((X @ p["w"] + p["b"] - y) ** 2)
    X = np.array([[1.0, 2.0], [3.0, 4.0], [0.5, -1.0]])
    y = np.array([0.0, 1.0, 2.0])
    p = {"w": np.array([0.3, -0.2]), "b": 0.1}

    def exact(p, X, y):
        r = X @ p["w"] + p["b"] - y
        return {"w": 2 * X.T @ r, "b": 2 * np.sum(r)}

    def wrong_b(p, X, y):
        g = exact(p, X, y)
        return {"w": g["w"], "b": g["b"] + 0.5}
    assert check_grad(loss, p, X, y).passed
    assert check_grad(loss, p, X, y, grad=exact).passed
    report = check_grad(loss, p, X, y, grad=wrong_b)
    assert not report.passed
    assert report.worst[0].label == "['b']"
    assert {c.label for c in report.worst} == {"['w'][0]", "['w'][1]", "['b']"}


def test_check_grad_hessian():
    x = np.array([1.1, 0.9, 1.3, 0.7])
    report = check_grad(rosen, x, order=2)
    assert report.passed
    assert report.checked.shape == (4, 4)
    assert_allclose(report.checked, rosen_hess(x), rtol=1e-13, atol=1e-12)
    assert check_grad(rosen, x, order=2, grad=rosen_hess).passed

    def wrong(x):
        return rosen_hess(x) + np.eye(4) * 1e-3
    bad = check_grad(rosen, x, order=2, grad=wrong)
    assert not bad.passed
    assert bad.worst[0].index[0] == bad.worst[0].index[1]  # a diagonal entry


def test_check_grad_tolerates_rounding_of_large_offsets():
    # values around 1e8: each evaluation carries ~1e-8 of rounding, which the
    # differences divide by the step; the rounding allowance keeps this a pass
    def f(x):
        return 1e8 + np.sum(x ** 2)
    x = np.array([0.3, -0.7])
    report = check_grad(f, x)
    assert report.passed
    assert_allclose(report.checked, 2 * x, rtol=1e-14)
    assert np.all(report.tolerance > 1e-6)


def test_check_grad_step_is_used():
    def f(x):
        return np.sum(np.exp(x))
    x = np.array([0.0, 1.0])
    report = check_grad(f, x, step=1e-2)
    assert report.passed
    # the 4th-order truncation error of exp with step h is ~ h**4 exp(x) / 30 (in
    # magnitude): a step of 0.5 is far outside the tolerance
    coarse = check_grad(f, x, step=0.5)
    assert not coarse.passed
    assert_allclose(coarse.reference, np.exp(x) * (1 - 0.5 ** 4 / 30), rtol=5e-3)


def test_check_grad_nan_derivative_fails_cleanly():
    report = check_grad(lambda x: np.sum(x ** 2), np.ones(2),
                        grad=lambda x: np.array([np.nan, 2.0]))
    assert not report.passed
    assert report.worst[0].index == (0,)
    assert "nan" in str(report)


def test_check_grad_report_text():
    report = check_grad(lambda x: np.sum(x ** 3), np.array([1.0, 2.0]))
    text = str(report)
    assert text.startswith("check_grad: gradient at x of shape (2,): passed")
    assert "central differences" in text and "worst components:" in text
    assert repr(report) == text
    assert all(isinstance(c, Component) for c in report.worst)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"mode": "sideways"}, ValueError, "mode must be one of"),
    ({"order": 3}, ValueError, "order must be 1"),
    ({"rtol": -1.0}, ValueError, "rtol must be a finite number >= 0"),
    ({"atol": "small"}, TypeError, "atol must be a number"),
    ({"step": 0.0}, ValueError, "step must be positive"),
    ({"step": np.ones(5)}, ValueError, "step must be a positive number or an array"),
    ({"grad": 3.0}, TypeError, "grad must be a callable"),
    ({"grad": lambda x: np.ones(4)}, ValueError, "grad returned shape"),
])
def test_check_grad_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        check_grad(lambda x: np.sum(x ** 2), np.ones(3), **kwargs)


def test_check_grad_bad_f():
    with pytest.raises(TypeError, match="expects a callable f"):
        check_grad(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="order=2 checks the Hessian of a scalar"):
        check_grad(lambda x: x ** 2, np.ones(3), order=2)


@settings(max_examples=25, deadline=None)
@given(coef=st.lists(st.floats(-3, 3), min_size=3, max_size=3),
       x=st.lists(st.floats(-2, 2), min_size=3, max_size=3),
       which=st.integers(0, 2))
def test_check_grad_property_exact_passes_perturbed_fails(coef, x, which):
    c = np.array(coef)
    x = np.array(x)

    def f(v):
        return np.sum(c * v ** 3) + v[0] * v[1] * v[2]

    def exact(v):
        return 3 * c * v ** 2 + np.array([v[1] * v[2], v[0] * v[2], v[0] * v[1]])
    assert check_grad(f, x).passed
    assert check_grad(f, x, grad=exact).passed
    g = exact(x)

    def perturbed(v):
        out = exact(v).copy()
        out[which] += 1e-3 * (1.0 + abs(g[which]))
        return out
    report = check_grad(f, x, grad=perturbed)
    assert not report.passed
    assert report.worst[0].index == (which,)


# ---------------------------------------------------------------------------------------
# trace

def small(x):
    y = np.sin(x)
    z = y * x[0]
    return np.sum(z ** 2)


def test_trace_nodes_edges_shapes_lines():
    x = np.array([0.4, 1.1, -0.7])
    g = trace(small, x)
    assert isinstance(g, Graph) and len(g) == 6
    assert [n.op for n in g] == ["input", "sin", "getitem", "multiply", "power", "sum"]
    assert [n.shape for n in g] == [(3,), (3,), (), (3,), (3,), ()]
    assert [n.parents for n in g] == [(), (0,), (0,), (1, 2), (3,), (4,)]
    assert g.edges == [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4), (4, 5)]
    assert [n.kind for n in g] == ["leaf", "array", "element", "array", "array", "array"]
    assert g.input == 0 and g.output == 5
    lines = [line_of(small, "np.sin(x)"), line_of(small, "y * x[0]"),
             line_of(small, "y * x[0]"), line_of(small, "z ** 2"), line_of(small, "z ** 2")]
    for node, line in zip(g.nodes[1:], lines):
        assert node.filename == __file__
        assert node.lineno == line
        assert node.function == "small"
        assert node.location.endswith(f"{THIS_FILE}:{line}")
    assert g.nodes[1].source == "y = np.sin(x)"
    # the input is made where trace is called
    assert g.nodes[0].function == "test_trace_nodes_edges_shapes_lines"
    assert all(n.id == i for i, n in enumerate(g)) and g[3] is g.nodes[3]
    assert_allclose(g.value, np.sum((np.sin(x) * x[0]) ** 2), rtol=1e-15)


def test_trace_adjoints_match_grad_and_closed_form():
    x = np.array([0.4, 1.1, -0.7])
    g = trace(small, x)
    y, c = np.sin(x), x[0]
    # f = sum((y c)^2): df/dz = 2 z, df/dy = 2 y c^2, df/dc = 2 c sum(y^2)
    assert_allclose(g.nodes[5].grad, 1.0)
    assert_allclose(g.nodes[4].grad, np.ones(3))
    assert_allclose(g.nodes[3].grad, 2 * y * c, rtol=1e-14)
    assert_allclose(g.nodes[2].grad, 2 * c * np.sum(y ** 2), rtol=1e-14)
    assert_allclose(g.nodes[1].grad, 2 * y * c ** 2, rtol=1e-14)
    closed = 2 * y * c ** 2 * np.cos(x)
    closed[0] += 2 * c * np.sum(y ** 2)
    assert_allclose(g.grad, closed, rtol=1e-14)
    assert_allclose(g.nodes[0].grad, closed, rtol=1e-14)
    assert_allclose(g.grad, dualad.grad(small, mode="reverse")(x), rtol=1e-15)
    assert_allclose(g.nodes[3].grad_norm, np.linalg.norm(2 * y * c), rtol=1e-14)


def chain_loop(x):
    s = 0.0
    for i in range(len(x) - 1):
        s = s + x[i] * x[i + 1]
    return s


def test_trace_scalar_loop():
    x = np.cos(np.arange(6.0))
    g = trace(chain_loop, x)
    ops = [n.op for n in g]
    assert ops[0] == "input"
    assert set(ops[1:]) == {"getitem", "multiply", "add"}
    assert ops.count("multiply") == 5 and ops.count("getitem") == 10
    # the first addition is 0.0 + x[0] * x[1]: one parent (the constant is not a node)
    assert g.nodes[ops.index("add")].parents == (ops.index("multiply"),)
    line = line_of(chain_loop, "x[i] * x[i + 1]")
    assert {n.lineno for n in g.nodes[1:]} == {line}
    closed = np.zeros_like(x)
    closed[:-1] += x[1:]
    closed[1:] += x[:-1]
    assert_allclose(g.grad, closed, rtol=1e-15)
    assert all(isinstance(n.grad, float) for n in g.nodes[1:])


def test_trace_unreached_nodes_and_vanishing_gradient():
    def f(x):
        unused = np.exp(x)  # noqa: F841
        return np.sum(np.tanh(10.0 * x))
    g = trace(f, np.array([0.01, 5.0]))
    exp_node = next(n for n in g if n.op == "exp")
    assert exp_node.grad is None and exp_node.grad_norm is None
    tanh_node = next(n for n in g if n.op == "tanh")
    # d tanh(z)/dz = 1 - tanh(z)^2: 0 in double precision at z = 50
    z = 10.0 * np.array([0.01, 5.0])
    assert_allclose(g.nodes[tanh_node.parents[0]].grad, 1 - np.tanh(z) ** 2, rtol=1e-14)
    row = next(r for r in g.summary().splitlines() if " exp " in r)
    assert row.split()[5] == "-"


def test_trace_vector_output_and_cotangent():
    def f(x):
        return np.array([x[0] * x[1], np.sin(x[2])])
    x = np.array([2.0, 3.0, 0.5])
    jac = np.array([[x[1], x[0], 0.0], [0.0, 0.0, np.cos(x[2])]])
    g = trace(f, x)
    assert [n.op for n in g][-1] == "stack"
    assert_allclose(g.grad, np.ones(2) @ jac, rtol=1e-15)
    w = np.array([0.5, -2.0])
    assert_allclose(trace(f, x, cotangent=w).grad, w @ jac, rtol=1e-15)
    with pytest.raises(ValueError, match="cotangent must have the output's shape"):
        trace(f, x, cotangent=np.ones(3))
    with pytest.raises(ValueError, match="cotangent must be finite"):
        trace(f, x, cotangent=np.array([1.0, np.inf]))
    with pytest.raises(TypeError, match="cotangent must be real"):
        trace(f, x, cotangent=np.array([1.0, 1j]))


def test_trace_pytree_and_args():
    def loss(p, X):
        return np.sum((X @ p["w"] + p["b"]) ** 2)
    X = np.array([[1.0, 2.0], [3.0, -1.0]])
    p = {"w": np.array([0.5, -0.25]), "b": 0.75}
    g = trace(loss, p, X)
    r = X @ p["w"] + p["b"]
    assert set(g.grad) == {"w", "b"}
    assert_allclose(g.grad["w"], 2 * X.T @ r, rtol=1e-15)
    assert_allclose(g.grad["b"], 2 * np.sum(r), rtol=1e-15)
    assert "matmul" in [n.op for n in g]


def test_trace_inside_numpy_functions_and_indexing():
    def f(x):
        w = np.zeros_like(x)
        w[1] = x[0]
        return np.linalg.norm(x[1:]) + np.sum(w)
    x = np.array([3.0, 4.0, 1.0])
    g = trace(f, x)
    by_op = {n.op: n for n in g}
    assert {"zeros_like", "setitem", "getitem", "sqrt"} <= set(by_op)
    assert by_op["zeros_like"].kind == "leaf" and by_op["zeros_like"].parents == ()
    assert by_op["sqrt"].within == ("norm",)
    assert "sqrt (in norm)" in g.summary()
    line = line_of(f, "np.linalg.norm")
    assert by_op["sqrt"].lineno == line
    closed = np.concatenate([[1.0], x[1:] / np.sqrt(np.sum(x[1:] ** 2))])
    assert_allclose(g.grad, closed, rtol=1e-15)


def test_trace_summary_and_repr():
    g = trace(small, np.array([0.4, 1.1, -0.7]))
    lines = g.summary().splitlines()
    assert lines[0].split() == ["node", "op", "shape", "parents", "|value|", "|grad|",
                                "line"]
    assert len(lines) == 1 + len(g)
    assert f"{THIS_FILE}:{line_of(small, 'np.sin(x)')} small" in lines[2]
    short = g.summary(max_rows=2).splitlines()
    assert len(short) == 4 and "4 more nodes" in short[2]
    assert str(g) == g.summary()
    assert repr(g) == "<dualad Graph: 6 nodes, 6 edges, input (3,), output ()>"
    assert repr(g.nodes[1]).startswith("<Node 1: sin (3,) parents=[0] at ")
    with pytest.raises(ValueError, match="max_rows must be a positive integer"):
        g.summary(max_rows=0)


# a small DOT reader: the grammar subset to_dot writes (graph, node and edge statements
# with attribute lists), strict enough to reject unbalanced braces, bad quoting and
# edges to undeclared nodes

_DOT_TOKEN = re.compile(r'\s*(?:(->)|([{}\[\];,=])|("(?:[^"\\]|\\.)*")'
                        r'|([A-Za-z_][\w.]*|-?\d+(?:\.\d+)?))')


def _dot_tokens(text):
    pos, out = 0, []
    text = text.rstrip()
    while pos < len(text):
        m = _DOT_TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise AssertionError(f"bad DOT at {text[pos:pos + 30]!r}")
        out.append(next(g for g in m.groups() if g is not None))
        pos = m.end()
    return out


def _unquote(tok):
    assert tok.startswith('"') and tok.endswith('"')
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), tok[1:-1])


def parse_dot(text):
    """``(nodes, edges)``: node id -> attributes, and (tail, head) pairs."""
    try:
        import pydot
    except ImportError:
        pydot = None
    if pydot is not None:  # pragma: no cover - not installed in CI
        (graph,) = pydot.graph_from_dot_data(text)
        assert graph.get_type() == "digraph"
    toks = _dot_tokens(text)
    assert toks[:3] == ["digraph", '"dualad"', "{"] and toks[-1] == "}"
    body = toks[3:-1]
    nodes, edges, k = {}, [], 0

    def attrs(k):
        assert body[k] == "["
        k += 1
        out = {}
        while body[k] != "]":
            key, eq, val = body[k:k + 3]
            assert eq == "="
            out[key] = _unquote(val) if val.startswith('"') else val
            k += 3
            if body[k] == ",":
                k += 1
        return out, k + 1
    while k < len(body):
        name = body[k]
        if body[k + 1] == "->":
            edges.append((name, body[k + 2]))
            k += 3
        else:
            a, k = attrs(k + 1)
            if name != "node":
                assert name not in nodes
                nodes[name] = a
        assert body[k] == ";"
        k += 1
    for tail, head in edges:
        assert tail in nodes and head in nodes, (tail, head)
    return nodes, edges


def test_to_dot_parses():
    g = trace(small, np.array([0.4, 1.1, -0.7]))
    nodes, edges = parse_dot(g.to_dot())
    assert list(nodes) == [f"n{i}" for i in range(len(g))]
    assert edges == [(f"n{p}", f"n{c}") for p, c in g.edges]
    label = nodes["n1"]["label"].split("\n")
    assert label[0] == "1: sin" and label[1] == "(3,)"
    assert label[2] == f"{THIS_FILE}:{line_of(small, 'np.sin(x)')}"
    assert nodes["n0"]["shape"] == "ellipse" and nodes["n5"]["peripheries"] == "2"


def test_to_dot_escapes_and_colours():
    from dualad.diagnostics import _dot_string
    tricky = 'a "quoted" \\ back\nslash'
    assert _unquote(_dot_string(tricky)) == tricky
    assert _dot_tokens(_dot_string(tricky)) == [_dot_string(tricky)]

    def f(x):
        unused = np.exp(x)  # noqa: F841
        return np.sum(np.sqrt(x))
    g = trace(f, np.array([0.0, 1.0]))
    nodes, _ = parse_dot(g.to_dot())
    exp_id = next(n.id for n in g if n.op == "exp")
    sqrt_id = next(n.id for n in g if n.op == "sqrt")
    assert nodes[f"n{exp_id}"]["color"] == "gray"
    # sqrt'(0) = inf: the input's gradient is infinite
    assert nodes["n0"]["color"] == "red"
    assert "color" not in nodes[f"n{sqrt_id}"]


def test_trace_errors_and_hooks_off():
    with pytest.raises(TypeError, match="expected a callable"):
        trace(3.0, np.ones(2))

    def uses_math(x):
        import math
        return math.sin(x[0])
    with pytest.raises(TypeError, match="math-module"):
        trace(uses_math, np.ones(2))
    assert _tape._observers() == 0  # the observer is removed even when f raises
    tape = _tape.Tape(1)
    with pytest.raises(TypeError, match="observer must be callable"):
        tape.observer = 3
    tape.observer = print
    assert _tape._observers() == 1
    tape.observer = None
    assert _tape._observers() == 0
    with pytest.raises(IndexError, match="not on this tape"):
        tape.node_info(0)


def test_trace_in_threads_keeps_names_apart():
    x = np.array([0.4, 1.1, -0.7])
    expected = dualad.grad(small, mode="reverse")(x)
    failures = []

    def tracer():
        for _ in range(20):
            g = trace(small, x)
            if [n.op for n in g] != ["input", "sin", "getitem", "multiply", "power",
                                     "sum"]:
                failures.append([n.op for n in g])

    def plain():
        for _ in range(50):
            if not np.allclose(dualad.grad(small, mode="reverse")(x), expected,
                               rtol=1e-15):
                failures.append("grad")
    threads = [threading.Thread(target=tracer), threading.Thread(target=plain)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert _tape._observers() == 0


def test_node_attributes():
    g = trace(lambda x: np.sum(np.exp(x)), np.array([0.0, 1.0]))
    node = g.nodes[1]
    assert isinstance(node, Node)
    assert_allclose(node.value, np.exp([0.0, 1.0]))
    assert_allclose(node.value_norm, np.linalg.norm(np.exp([0.0, 1.0])))
    assert node.within == ()


# ---------------------------------------------------------------------------------------
# non-finite origins

def sqrt_at_one(x):
    shifted = x - 1
    return np.sum(np.sqrt(shifted))


def log_of_zero(x):
    zero = 0 * x
    return np.sum(np.log(zero))


def test_nonfinite_sqrt_derivative_names_the_line():
    with pytest.raises(FloatingPointError) as info:
        find_nonfinite(sqrt_at_one, np.array([1.0, 2.0]))
    msg = str(info.value)
    line = line_of(sqrt_at_one, "np.sqrt(shifted)")
    assert msg.startswith("sqrt produced an infinite derivative at ")
    assert f"{THIS_FILE}:{line} (in sqrt_at_one): return np.sum(np.sqrt(shifted))" in msg
    assert "element (0,)" in msg and "input is 0.0" in msg


def test_nonfinite_log_value_names_the_line():
    with pytest.raises(FloatingPointError) as info:
        find_nonfinite(log_of_zero, np.array([1.0, 2.0]))
    msg = str(info.value)
    line = line_of(log_of_zero, "np.log(zero)")
    assert msg.startswith("log produced -inf at ")
    assert f"{THIS_FILE}:{line}" in msg


def test_nonfinite_zero_over_zero():
    def f(x):
        ratio = x / x
        return np.sum(ratio)
    with pytest.raises(FloatingPointError, match=r"^divide produced NaN") as info:
        find_nonfinite(f, np.array([2.0, 0.0]))
    assert f"{THIS_FILE}:{line_of(f, 'x / x')}" in str(info.value)
    assert "element (1,)" in str(info.value)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_nonfinite_overflow_then_inf_times_zero_names_the_overflow():
    def f(x):
        big = np.exp(x)
        return np.sum(big * 0.0)  # inf * 0 = nan here, but the inf started above
    with pytest.raises(FloatingPointError, match=r"^exp produced inf") as info:
        find_nonfinite(f, np.array([1.0, 1000.0]))
    assert f"{THIS_FILE}:{line_of(f, 'np.exp(x)')}" in str(info.value)


def test_nonfinite_infinite_partials_against_zero_cotangents_pass():
    # a zero cotangent annihilates an infinite partial (0 * inf = 0): finite gradients
    x = np.array([0.0, 1.0])

    def masked(x):
        return np.sum(np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), 0.0)
                      + np.where(x > 0.5, np.sqrt(x), 0.0))

    def times_zero(x):
        return np.sum(np.sqrt(x) * 0.0) + np.sum(x)

    def sqrt_of_square(x):
        return np.sum(np.sqrt(x ** 2))
    for f in (masked, times_zero, sqrt_of_square):
        assert find_nonfinite(f, x) is None
        assert np.all(np.isfinite(dualad.grad(f, mode="reverse")(x)))


def test_nonfinite_nan_derivative_from_inf_minus_inf():
    def f(x):
        a = np.sqrt(x)
        b = np.sqrt(x)
        return np.sum(a - b)
    with pytest.raises(FloatingPointError) as info:
        find_nonfinite(f, np.array([0.0, 1.0]))
    # two sqrt nodes make infinite derivatives; the first in evaluation order is named
    assert str(info.value).startswith("sqrt produced an infinite derivative")
    assert f"{THIS_FILE}:{line_of(f, 'a = np.sqrt(x)')}" in str(info.value)


def test_nonfinite_scalar_loop():
    def f(x):
        s = 0.0
        for i in range(len(x)):
            s = s + x[i] ** 0.5
        return s
    with pytest.raises(FloatingPointError, match=r"^power produced an infinite "
                                                 r"derivative") as info:
        find_nonfinite(f, np.array([1.0, 0.0, 4.0]))
    assert f"{THIS_FILE}:{line_of(f, 'x[i] ** 0.5')}" in str(info.value)
    assert "input is 0.0" in str(info.value)


def test_nonfinite_input_and_constant_output():
    with pytest.raises(FloatingPointError, match=r"the input x has NaN at element \(1,\)"):
        find_nonfinite(lambda x: np.sum(x), np.array([1.0, np.nan]))
    with pytest.raises(FloatingPointError, match="does not depend on x"):
        find_nonfinite(lambda x: np.nan, np.ones(2))


def test_nonfinite_gradient_overflow_in_a_sum():
    def f(x):
        return np.sum(1e308 * x) + np.sum(1e308 * x)
    x = np.array([1e-300])
    assert np.isfinite(f(x))
    with pytest.raises(FloatingPointError, match="the gradient arriving at input "
                                                 "overflowed to inf"):
        find_nonfinite(f, x)


def test_nonfinite_vector_output():
    def f(x):
        return np.array([x[0] ** 2, np.sqrt(x[1])])
    assert find_nonfinite(f, np.array([1.0, 4.0])) is None
    with pytest.raises(FloatingPointError, match="^sqrt produced an infinite derivative"):
        find_nonfinite(f, np.array([1.0, 0.0]))
    # a zero weight on the sqrt row: only the first row is swept
    assert find_nonfinite(f, np.array([1.0, 0.0]), cotangent=np.array([1.0, 0.0])) is None


@pytest.mark.parametrize("f", [rosen, chain_loop, small,
                               lambda x: np.sum(np.log1p(x ** 2) / (1 + np.abs(x)))])
def test_nonfinite_finite_functions_pass(f):
    x = np.linspace(-1.5, 2.0, 7)
    assert find_nonfinite(f, x) is None
    assert find_nonfinite(f, x, ()) is None


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(0.01, 10.0), min_size=1, max_size=5))
def test_nonfinite_property_finite_domain_passes(values):
    x = np.array(values)
    assert find_nonfinite(lambda v: np.sum(np.sqrt(v) * np.log(v)), x) is None


def test_nonfinite_pytree_input():
    def loss(p):
        return np.sum(np.sqrt(p["w"])) + p["b"] ** 2
    assert find_nonfinite(loss, {"w": np.array([1.0, 4.0]), "b": 0.5}) is None
    with pytest.raises(FloatingPointError, match="^sqrt produced an infinite derivative"):
        find_nonfinite(loss, {"w": np.array([1.0, 0.0]), "b": 0.5})


def test_nonfinite_args_and_errors():
    def f(x, a):
        return np.sum(np.log(x - a))
    assert find_nonfinite(f, np.array([2.0, 3.0]), (1.0,)) is None
    with pytest.raises(FloatingPointError, match="^log produced -inf"):
        find_nonfinite(f, np.array([2.0, 3.0]), (2.0,))
    with pytest.raises(TypeError, match="expected a callable"):
        find_nonfinite(None, np.ones(2))


def test_top_level_exports():
    if not hasattr(dualad, "check_grad"):
        pytest.skip("dualad.check_grad is not exported at the top level yet")
    assert dualad.check_grad is check_grad
    assert dualad.trace is trace
