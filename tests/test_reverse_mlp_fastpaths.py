"""Reverse mode's fast nodes for small networks: matmul, broadcast add, mean, reshape.

``dualad/_tape.pyx`` records ``a @ b`` of 2-D float64 values, ``a + b`` / ``a - b``
with broadcasting (a bias row added to a matrix), ``np.sum(x)`` / ``np.mean(x)`` over
all axes and C-order reshapes as nodes whose VJPs the backward sweep applies without a
Python call (issue 7: one training step of a 64-32-10 perceptron).  They must give the
numbers of the general rules exactly.  Oracles:

* the general path of the same operation, forced by a keyword the fast paths do not
  take (``dtype=np.float64`` for ufuncs, ``axis=`` for reductions, ``order="C"`` for
  ``np.reshape``): values and derivatives must be *equal* (same NumPy calls, same
  roundings, NaNs at the same places);
* closed forms (``u @ b.T`` and ``a.T @ u`` for a product, sums over the broadcast axes,
  the hand-written backpropagation of ``benchmarks.problems.mlp_grad``) and 4th-order
  central differences (``fd_jacobian``);
* nested derivatives (Hessian-vector products, forward over a pullback with traced
  cotangents) against the forward mode and differences.

Adam's in-place update (``dualad.optim``) is checked against its formulas written out.
"""

import numpy as np
import pytest
from conftest import ATOL_FD, RTOL_FD, benchmark_module, fd_jacobian
from numpy.testing import assert_allclose, assert_array_equal

import dualad
from dualad.optim import Adam, AdamW, fit

GENERIC = {"dtype": np.float64}  # ufunc keyword: the general path
RTOL_HAND = 1e-12  # against hand-written formulas: other summation orders
ATOL_HAND = 1e-15


def _vjps(f, params, u):
    """value, and the VJP ``u^T J`` of ``f`` for each entry of the dict ``params``."""
    def scalar(p):
        return np.sum(u * f(**p))
    value = f(**params)
    return value, dualad.grad(scalar, mode="reverse")(params)


def _equal(fast, general, what):
    """Fast and general path: the same arrays, bit for bit (NaNs at the same places)."""
    assert fast[0].shape == general[0].shape, what
    assert_array_equal(fast[0], general[0], err_msg=f"{what}: value")
    for name in general[1]:
        assert fast[1][name].shape == general[1][name].shape, what
        assert_array_equal(fast[1][name], general[1][name], err_msg=f"{what}: d/d{name}")


def _value_of(f, params):
    """The value the traced function computes, read from a recording."""
    out = {}

    def g(p):
        r = f(**p)
        out["v"] = dualad._tape.primal(r)
        return np.sum(r)
    dualad.grad(g, mode="reverse")(params)
    return out["v"]


# -- matmul --------------------------------------------------------------------------------

MATMUL_SHAPES = [(1, 1, 1), (3, 4, 2), (32, 64, 32), (7, 1, 5), (2, 9, 1), (0, 3, 2),
                 (2, 0, 3)]


@pytest.mark.parametrize("m,k,n", MATMUL_SHAPES, ids=str)
@pytest.mark.parametrize("traced", ["a", "b", "ab"])
def test_matmul_fast_equals_general_and_closed_form(m, k, n, traced, rng):
    a = rng.standard_normal((m, k))
    b = rng.standard_normal((k, n))
    u = rng.standard_normal((m, n))
    params = {name: v for name, v in (("a", a), ("b", b)) if name in traced}
    const = {name: v for name, v in (("a", a), ("b", b)) if name not in traced}

    def fast(**p):
        q = {**const, **p}
        return q["a"] @ q["b"]

    def general(**p):
        q = {**const, **p}
        return np.matmul(q["a"], q["b"], **GENERIC)

    got = (_value_of(fast, params), _vjps(fast, params, u)[1])
    want = (_value_of(general, params), _vjps(general, params, u)[1])
    _equal(got, want, f"matmul {m}x{k} @ {k}x{n}, traced {traced}")
    assert_array_equal(got[0], a @ b)
    closed = {"a": u @ b.T, "b": a.T @ u}
    for name in params:
        assert_allclose(got[1][name], closed[name], rtol=RTOL_HAND, atol=ATOL_HAND,
                        err_msg=f"d/d{name} of sum(u * (a @ b))")


def test_matmul_of_strided_operands_and_a_value_with_itself(rng):
    a = rng.standard_normal((6, 6))
    c = np.asfortranarray(rng.standard_normal((6, 4)))  # an F-ordered constant
    u = rng.standard_normal((6, 4))

    def f(x):
        sq = x @ x           # one node twice: its two cotangents add up
        return np.sum(u * (x.T @ c)) + np.sum(sq[::2, 1:] ** 2) + np.sum(c.T @ sq)

    def f_general(x):
        sq = np.matmul(x, x, **GENERIC)
        return (np.sum(u * np.matmul(x.T, c, **GENERIC))
                + np.sum(sq[::2, 1:] ** 2) + np.sum(np.matmul(c.T, sq, **GENERIC)))
    g = dualad.grad(f, mode="reverse")(a)
    assert_array_equal(g, dualad.grad(f_general, mode="reverse")(a))
    assert_allclose(g, fd_jacobian(f, a), rtol=RTOL_FD, atol=ATOL_FD)


def test_matmul_receives_a_broadcast_number_cotangent(rng):
    # np.sum of a big product: its cotangent is one number broadcast (no buffer)
    a = rng.standard_normal((80, 3))
    b = rng.standard_normal((3, 80))

    def f(x):
        return np.sum(a @ x) - np.sum(x.T @ a.T)

    def f_general(x):
        return (np.sum(np.matmul(a, x, **GENERIC))
                - np.sum(np.matmul(x.T, a.T, **GENERIC)))
    g = dualad.grad(f, mode="reverse")(b)
    assert_array_equal(g, dualad.grad(f_general, mode="reverse")(b))
    assert_allclose(g, np.zeros_like(b), atol=1e-12)


def test_matmul_errors_are_numpys(rng):
    a = rng.standard_normal((3, 4))
    with pytest.raises(ValueError) as numpy_error:
        a @ a
    with pytest.raises(ValueError) as ours:
        dualad.grad(lambda x: np.sum(x @ x), mode="reverse")(a)
    assert str(ours.value) == str(numpy_error.value)
    with pytest.raises(ValueError) as ours:
        dualad.grad(lambda x: np.sum(a @ x), mode="reverse")(a)
    assert str(ours.value) == str(numpy_error.value)


def test_matmul_other_ranks_stay_on_the_general_rule(rng):
    # vectors, batches of matrices, integer constants: the registry's rule
    a = rng.standard_normal((2, 3, 4))
    v = rng.standard_normal(4)
    m = np.arange(12).reshape(4, 3)

    def f(x):
        return np.sum((x @ v) ** 2) + np.sum(x @ m) + np.sum(v @ x[0].T)
    g = dualad.grad(f, mode="reverse")(a)
    assert_allclose(g, fd_jacobian(f, a), rtol=RTOL_FD, atol=ATOL_FD)


# -- broadcast add / subtract --------------------------------------------------------------

BROADCAST = [((4, 3), (3,)), ((3,), (4, 3)), ((4, 1), (1, 3)), ((2, 4, 3), (4, 3)),
             ((4, 3), ()), ((1, 4, 3), (4, 3)), ((5, 1), (5, 4)), ((32, 10), (10,)),
             ((0, 3), (3,))]


@pytest.mark.parametrize("sa,sb", BROADCAST, ids=str)
@pytest.mark.parametrize("op", ["add", "subtract"])
@pytest.mark.parametrize("traced", ["a", "b", "ab"])
def test_broadcast_add_fast_equals_general_and_closed_form(sa, sb, op, traced, rng):
    a = rng.standard_normal(sa)
    b = rng.standard_normal(sb)
    u = rng.standard_normal(np.broadcast_shapes(sa, sb))
    ufunc = getattr(np, op)
    params = {name: v for name, v in (("a", a), ("b", b)) if name in traced}
    const = {name: v for name, v in (("a", a), ("b", b)) if name not in traced}

    def fast(**p):
        q = {**const, **p}
        return q["a"] + q["b"] if op == "add" else q["a"] - q["b"]

    def general(**p):
        q = {**const, **p}
        return ufunc(q["a"], q["b"], **GENERIC)

    got = (_value_of(fast, params), _vjps(fast, params, u)[1])
    want = (_value_of(general, params), _vjps(general, params, u)[1])
    _equal(got, want, f"{op} {sa} {sb}, traced {traced}")
    assert_array_equal(got[0], ufunc(a, b))
    sign = 1.0 if op == "add" else -1.0
    closed = {"a": _sum_to(u, sa), "b": sign * _sum_to(u, sb)}
    for name in params:
        assert_allclose(got[1][name], closed[name], rtol=RTOL_HAND, atol=ATOL_HAND,
                        err_msg=f"d/d{name} of sum(u * {op}(a, b))")


def _sum_to(u, shape):
    """u summed down to ``shape`` (an independent spelling of undoing broadcasting)."""
    out = np.zeros(shape)
    for idx in np.ndindex(*u.shape):
        tail = idx[len(idx) - len(shape):] if shape else ()
        out[tuple(0 if s == 1 else i for i, s in zip(tail, shape))] += u[idx]
    return out


def test_broadcast_add_with_negated_and_broadcast_number_cotangents(rng):
    # the cotangent of (x + b) arrives negated (c - (x + b)), or as one broadcast number
    # (np.sum of 5000 elements), or both through a reshape
    x = rng.standard_normal((100, 50))
    b = rng.standard_normal(50)
    c = rng.standard_normal((100, 50))

    def f(p, kw):
        add = (lambda s, t: np.add(s, t, **GENERIC)) if kw else (lambda s, t: s + t)
        sub = (lambda s, t: np.subtract(s, t, **GENERIC)) if kw else (lambda s, t: s - t)
        h = add(p["x"], p["b"])
        r = sub(c, h)
        return (np.sum(r ** 2) + np.sum(add(p["x"], p["b"]))
                - np.sum(sub(p["x"].reshape(50, 100), p["b"][:1])) + np.sum(sub(h, c)))
    params = {"x": x, "b": b}
    g = dualad.grad(lambda p: f(p, False), mode="reverse")(params)
    want = dualad.grad(lambda p: f(p, True), mode="reverse")(params)
    for name in params:
        assert_array_equal(g[name], want[name], err_msg=name)
    dx = -2.0 * (c - x - b) + 1.0 - 1.0 + 1.0
    assert_allclose(g["x"], dx, rtol=RTOL_HAND, atol=1e-12)


def test_broadcast_errors_are_numpys(rng):
    a = rng.standard_normal((3, 4))
    b = rng.standard_normal(3)
    with pytest.raises(ValueError) as numpy_error:
        a + b
    with pytest.raises(ValueError) as ours:
        dualad.grad(lambda x: np.sum(x + b), mode="reverse")(a)
    assert str(ours.value) == str(numpy_error.value)
    with pytest.raises(ValueError) as ours:
        dualad.grad(lambda x: np.sum(b - x), mode="reverse")(a)
    assert "could not be broadcast" in str(ours.value)


# -- sum, mean, reshape --------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 4), (2, 3, 5), (90, 60)], ids=str)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_sum_and_mean_fast_equal_general(shape, reduction, rng):
    x = rng.standard_normal(shape)
    red = getattr(np, reduction)

    def fast(t):
        return red(t ** 2) + getattr(t[..., None], reduction)()

    def general(t):
        axes = tuple(range(np.ndim(x)))
        return red(t ** 2, axis=axes) + red(t[..., None], axis=axes + (np.ndim(x),))
    vf, gf = dualad.value_and_grad(fast, mode="reverse")(x)
    vg, gg = dualad.value_and_grad(general, mode="reverse")(x)
    assert_array_equal(vf, vg)
    assert_array_equal(vf, fast(x))
    assert_array_equal(gf, gg)
    scale = 1.0 if reduction == "sum" else 1.0 / max(x.size, 1)
    assert_allclose(gf, scale * (2.0 * x + 1.0), rtol=RTOL_HAND, atol=ATOL_HAND)


def test_mean_of_strided_values_and_of_nothing(rng):
    x = rng.standard_normal((6, 8))

    def f(t):
        return np.mean(t.T[::2]) * np.mean(t[:, 1:] ** 3)

    def f_general(t):
        return np.mean(t.T[::2], axis=(0, 1)) * np.mean(t[:, 1:] ** 3, axis=(0, 1))
    g = dualad.grad(f, mode="reverse")(x)
    assert_array_equal(g, dualad.grad(f_general, mode="reverse")(x))
    assert_allclose(g, fd_jacobian(f, x), rtol=RTOL_FD, atol=ATOL_FD)
    # the mean of an empty array: NumPy's warning and NaN, as on the general path
    with pytest.warns(RuntimeWarning):
        value, g = dualad.value_and_grad(lambda t: np.mean(t[:0]) + np.sum(t),
                                         mode="reverse")(x)
    assert np.isnan(value) and g.shape == x.shape


@pytest.mark.parametrize("spelling", ["method", "tuple", "function", "list"])
def test_reshape_fast_equals_general(spelling, rng):
    x = rng.standard_normal(24)
    u = rng.standard_normal((4, 6))
    shapes = {"method": lambda t: t.reshape(4, -1), "tuple": lambda t: t.reshape((4, 6)),
              "function": lambda t: np.reshape(t, (-1, 6)),
              "list": lambda t: t.reshape([4, 6])}
    reshape = shapes[spelling]

    def fast(t):
        y = reshape(t)
        # the reshape's cotangent arrives plain, negated (1 - y) and summed
        return np.sum(u * y) + np.sum((1.0 - y) ** 2) + np.sum(y.reshape(-1)[:5])

    def general(t):
        y = np.reshape(t, (4, 6), order="C")
        return (np.sum(u * y) + np.sum((1.0 - y) ** 2)
                + np.sum(np.reshape(y, -1, order="C")[:5]))
    g = dualad.grad(fast, mode="reverse")(x)
    assert_array_equal(g, dualad.grad(general, mode="reverse")(x))
    closed = u.reshape(-1) - 2.0 * (1.0 - x)
    closed[:5] += 1.0
    assert_allclose(g, closed, rtol=RTOL_HAND, atol=ATOL_HAND)


def test_reshape_of_a_big_broadcast_cotangent_and_errors(rng):
    x = rng.standard_normal(6000)
    g = dualad.grad(lambda t: np.sum(t.reshape(60, 100)) - np.sum(-t.reshape(100, 60)),
                    mode="reverse")(x)
    assert_array_equal(g, np.full(6000, 2.0))
    with pytest.raises(ValueError) as numpy_error:
        x.reshape(7, -1)
    with pytest.raises(ValueError) as ours:
        dualad.grad(lambda t: np.sum(t.reshape(7, -1)), mode="reverse")(x)
    assert str(ours.value) == str(numpy_error.value)
    # a reshape is a view: writing into it is refused as before (copy first)
    with pytest.raises(TypeError, match="view of a traced array made by reshape"):
        def write(t):
            v = t.reshape(2, 3000)
            v[0, 0] = 1.0
            return np.sum(v)
        dualad.grad(write, mode="reverse")(x)


# -- the perceptron ------------------------------------------------------------------------

def _mlp(theta, x, y, sizes, general=False):
    """problems.mlp_loss, optionally spelled so that every op takes the general path."""
    d_in, d_hid, d_out = sizes
    i = d_in * d_hid
    if general:
        w1 = np.reshape(theta[:i], (d_in, d_hid), order="C")
        w2 = np.reshape(theta[i + d_hid:i + d_hid + d_hid * d_out], (d_hid, d_out),
                        order="C")
        hid = np.maximum(np.add(np.matmul(x, w1, **GENERIC), theta[i:i + d_hid], **GENERIC),
                         0.0)
        out = np.add(np.matmul(hid, w2, **GENERIC), theta[i + d_hid + d_hid * d_out:],
                     **GENERIC)
        return np.mean((out - y) ** 2, axis=(0, 1))
    w1 = theta[:i].reshape(d_in, d_hid)
    w2 = theta[i + d_hid:i + d_hid + d_hid * d_out].reshape(d_hid, d_out)
    hid = np.maximum(x @ w1 + theta[i:i + d_hid], 0.0)
    out = hid @ w2 + theta[i + d_hid + d_hid * d_out:]
    return np.mean((out - y) ** 2)


@pytest.mark.parametrize("sizes,batch",
                         [((64, 32, 10), 32), ((5, 7, 3), 4), ((3, 2, 1), 1)], ids=str)
def test_perceptron_gradient_equals_general_path_and_backprop(sizes, batch):
    problems = benchmark_module("problems")
    theta, x, y = problems.mlp_data(sizes=sizes, batch=batch, seed=3)
    vf, gf = dualad.value_and_grad(_mlp, mode="reverse")(theta, x, y, sizes)
    vg, gg = dualad.value_and_grad(_mlp, mode="reverse")(theta, x, y, sizes, True)
    assert_array_equal(vf, vg)
    assert_array_equal(gf, gg)
    assert vf == problems.mlp_loss(theta, x, y, sizes=sizes)
    assert_allclose(gf, problems.mlp_grad(theta, x, y, sizes=sizes), rtol=RTOL_HAND,
                    atol=ATOL_HAND)
    # the benchmark's own spelling (slices and reshapes in problems._split)
    g = dualad.grad(problems.mlp_loss, mode="reverse")(theta, x, y, np, sizes)
    assert_allclose(g, problems.mlp_grad(theta, x, y, sizes=sizes), rtol=RTOL_HAND,
                    atol=ATOL_HAND)


def test_perceptron_hessian_vector_products_and_hessian(rng):
    n = 3 * 4 + 4 + 4 * 2 + 2
    theta = rng.standard_normal(n)
    x = rng.standard_normal((5, 3))
    y = rng.standard_normal((5, 2))

    def smooth(t):
        # tanh instead of the ReLU: a Hessian without kinks for the differences
        i = 12
        w1 = t[:i].reshape(3, 4)
        w2 = t[i + 4:i + 12].reshape(4, 2)
        hid = np.tanh(x @ w1 + t[i:i + 4])
        return np.mean((hid @ w2 + t[i + 12:] - y) ** 2)
    grad = dualad.grad(smooth, mode="reverse")
    H_fd = fd_jacobian(grad, theta)
    v = rng.standard_normal(n)
    assert_allclose(dualad.hvp(smooth)(theta, v), H_fd @ v, rtol=1e-6, atol=1e-8)
    assert_allclose(dualad.hessian(smooth)(theta), H_fd, rtol=1e-6, atol=1e-8)
    assert_allclose(dualad.hessian(smooth, mode="forward")(theta),
                    dualad.hessian(smooth)(theta), rtol=1e-10, atol=1e-12)
    # forward over reverse: the same Hessian from the forward mode's Jacobian of the
    # reverse-mode gradient (the tape records values that carry tangents)
    assert_allclose(dualad.jacobian(grad, mode="forward")(theta), H_fd, rtol=1e-6,
                    atol=1e-8)
    # reverse over reverse: the inner tape records values that are outer tracers
    assert_allclose(dualad.jacobian(grad, mode="reverse")(theta), H_fd, rtol=1e-6,
                    atol=1e-8)


def test_pullback_with_traced_cotangents(rng):
    # values are plain, the cotangent is a forward tracer: the nodes' Python VJPs
    a = rng.standard_normal((4, 3))
    b = rng.standard_normal(3)
    x0 = rng.standard_normal(6)

    def f(x):
        w = x.reshape(3, 2)
        return (a @ w + b[:2]) - np.mean(w)

    def pull(u):
        return dualad.vjp(f, x0)[1](u)
    u0 = rng.standard_normal((4, 2))
    J = dualad.jacobian(f, mode="forward")(x0)          # (4, 2, 6)
    got = dualad.jacobian(pull, mode="forward")(u0)     # (6, 4, 2)
    assert_allclose(got, np.moveaxis(J, -1, 0), rtol=1e-12, atol=1e-14)


def test_diagnostics_name_the_fast_nodes(rng):
    x = rng.standard_normal(6)
    c = rng.standard_normal((2, 3))
    graph = dualad.trace(lambda t: np.mean(c @ t.reshape(3, 2) + t[:2]), x)
    ops = " ".join(str(graph).split())
    for name in ("matmul", "add", "mean", "reshape"):
        assert name in ops, (name, ops)


# -- Adam's in-place update ----------------------------------------------------------------

def _adam_reference(theta, grads, lr, betas, eps, wd=0.0, decoupled=False):
    """Adam / AdamW written out (the Notes' formulas), fresh arrays each step."""
    b1, b2 = betas
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        if decoupled:
            theta = theta * (1.0 - lr * wd)
        elif wd:
            g = g + wd * theta
        m = b1 * m + (1.0 - b1) * g
        v = b2 * v + (1.0 - b2) * (g * g)
        theta = theta - (lr / (1.0 - b1 ** t)) * m / (np.sqrt(v / (1.0 - b2 ** t)) + eps)
    return theta


@pytest.mark.parametrize("wd,cls", [(0.0, Adam), (0.1, Adam), (0.1, AdamW)])
def test_adam_in_place_update_equals_the_formulas(wd, cls, rng):
    theta = rng.standard_normal((3, 5))
    grads = [rng.standard_normal((3, 5)) for _ in range(6)]
    opt = cls(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=wd)
    p = theta
    for g in grads:
        p_new = opt.step(p, g)
        assert p_new is not p and p_new.shape == theta.shape
        p = p_new
    want = _adam_reference(theta, grads, 0.05, (0.8, 0.99), 1e-6, wd, cls is AdamW)
    assert_array_equal(p, want)
    assert_array_equal(theta, _adam_reference(theta, [], 0.05, (0.8, 0.99), 1e-6))
    assert set(opt.state) == {"step", "m", "v"}
    # new parameters of another size after reset: fresh scratch space, same formulas
    opt.reset()
    small = rng.standard_normal(4)
    g = rng.standard_normal(4)
    want = _adam_reference(small, [g], 0.05, (0.8, 0.99), 1e-6, wd, cls is AdamW)
    assert_array_equal(opt.step(small, g), want)


def test_fit_epoch_equals_the_hand_written_epoch():
    B = benchmark_module("bench_training")
    problems = benchmark_module("problems")
    sizes, n, batch = (5, 4, 3), 40, 8
    theta, x, y = problems.mlp_data(sizes=sizes, batch=n, seed=1)

    def loss(t, xb, yb):
        return problems.mlp_loss(t, xb, yb, sizes=sizes)
    got, history = fit(loss, theta, (x, y), Adam(lr=B.LR, betas=B.BETAS, eps=B.EPS),
                       epochs=1, batch_size=batch, seed=B.SEED, progress=False)
    assert_allclose(got, B.hand_epoch(theta, x, y, sizes, batch), rtol=1e-12, atol=1e-15)
    assert history.epochs == 1 and np.isfinite(history.loss[0])


def _recorded(f, x):
    """The VJP classes of the array nodes ``f`` records at ``x``."""
    from dualad import _tape, reverse
    from dualad._tags import new_tag
    tape = _tape.Tape(new_tag())
    f(reverse._seed(np.asarray(x, dtype=float), tape)[0])
    kinds = []
    for i in range(tape.size):
        kind, _, payload = tape.node_info(i)
        if kind == "array":
            kinds.append(type(payload[0]).__name__)
    return kinds


def test_the_fast_nodes_are_recorded_and_the_general_spellings_avoid_them(rng):
    # (else the comparisons above would compare the general path with itself)
    sizes = (4, 3, 2)
    theta, x, y = rng.standard_normal(4 * 3 + 3 + 3 * 2 + 2), rng.standard_normal(
        (5, 4)), rng.standard_normal((5, 2))
    fast = _recorded(lambda t: _mlp(t, x, y, sizes), theta)
    general = _recorded(lambda t: _mlp(t, x, y, sizes, True), theta)
    for name in ("_MatmulVJP", "_BroadcastVJP", "_ReshapeVJP", "_SumAllVJP"):
        assert fast.count(name) == {"_SumAllVJP": 1}.get(name, 2), (name, fast)
        assert name not in general, (name, general)


def test_adam_learning_rate_checked_again_when_reassigned(rng):
    # the validated learning rate is remembered between steps, not a stale value
    p = rng.standard_normal(3)
    g = rng.standard_normal(3)
    opt = Adam(lr=0.1)
    p1 = opt.step(p, g)
    opt.lr = -0.5
    with pytest.raises(ValueError, match="lr must be > 0"):
        opt.step(p1, g)
    opt.lr = np.float64(0.2)
    steps = [opt.step(p1, g)]
    want = Adam(lr=0.1)
    q = want.step(p, g)
    want.lr = 0.2
    steps.append(want.step(q, g))
    assert_array_equal(steps[0], steps[1])
