"""dualad.optim: SGD, Adam and AdamW against hand-written update formulas, and fit.

The references below are written out element by element with Python floats and
``math``, straight from the recurrences in the docstrings (and in PyTorch's
documentation); none is derived from the code under test.
"""

import collections
import doctest
import importlib.util
import inspect
import math
import pathlib
import pickle
import sys
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import dualad
from dualad import optim
from dualad.optim import SGD, Adam, AdamW, History, fit

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


# -- references: the recurrences, one element at a time ------------------------------------

def ref_sgd(p0, grads, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    """Parameters after len(grads) SGD steps (grads: list of lists of floats)."""
    p = [float(v) for v in p0]
    b = [0.0] * len(p)
    for g_t in grads:
        for i, gi in enumerate(g_t):
            g = gi + weight_decay * p[i]
            if momentum:
                b[i] = momentum * b[i] + g
                d = g + momentum * b[i] if nesterov else b[i]
            else:
                d = g
            p[i] = p[i] - lr * d
    return p


def ref_adam(p0, grads, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0,
             decoupled=False):
    """Parameters after len(grads) Adam (or AdamW) steps."""
    p = [float(v) for v in p0]
    m = [0.0] * len(p)
    v = [0.0] * len(p)
    for t, g_t in enumerate(grads, start=1):
        for i, gi in enumerate(g_t):
            if decoupled:
                p[i] = p[i] - lr * weight_decay * p[i]
                g = gi
            else:
                g = gi + weight_decay * p[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            m_hat = m[i] / (1 - b1 ** t)
            v_hat = v[i] / (1 - b2 ** t)
            p[i] = p[i] - lr * m_hat / (math.sqrt(v_hat) + eps)
    return p


@pytest.fixture
def grad_seq():
    rng = np.random.default_rng(3)
    return [rng.normal(size=4) * s for s in (1.0, 0.1, 5.0, 1.0, 0.5)]


P0 = np.array([0.5, -1.5, 2.0, 0.0])


def run(opt, grads, p=P0):
    for g in grads:
        p = opt.step(p, g)
    return p


# -- single steps in closed form -----------------------------------------------------------

def test_sgd_single_step_closed_form():
    g = np.array([1.0, -2.0, 0.5, 3.0])
    assert_allclose(SGD(lr=0.1).step(P0, g), P0 - 0.1 * g, rtol=1e-15)
    # coupled weight decay: the gradient of (λ/2)|θ|² joins g
    assert_allclose(SGD(lr=0.1, weight_decay=0.3).step(P0, g), P0 - 0.1 * (g + 0.3 * P0),
                    rtol=1e-15)
    # the first momentum step is a plain step (b_1 = g); Nesterov's is (1 + μ) times it
    assert_allclose(SGD(lr=0.1, momentum=0.9).step(P0, g), P0 - 0.1 * g, rtol=1e-15)
    assert_allclose(SGD(lr=0.1, momentum=0.9, nesterov=True).step(P0, g),
                    P0 - 0.1 * 1.9 * g, rtol=1e-15)


def test_sgd_two_momentum_steps_closed_form():
    g1, g2 = np.array([1.0, 2.0, -1.0, 0.0]), np.array([-0.5, 1.0, 3.0, 2.0])
    lr, mu = 0.2, 0.7
    heavy = P0 - lr * g1 - lr * (mu * g1 + g2)
    nesterov = P0 - lr * (1 + mu) * g1 - lr * (g2 + mu * (mu * g1 + g2))
    assert_allclose(run(SGD(lr, momentum=mu), [g1, g2]), heavy, rtol=1e-14)
    assert_allclose(run(SGD(lr, momentum=mu, nesterov=True), [g1, g2]), nesterov,
                    rtol=1e-14)


def test_adam_first_step_closed_form():
    # bias correction makes m̂_1 = g and v̂_1 = g², so θ_1 = θ_0 - η g / (|g| + ε)
    g = np.array([1e-3, -2.0, 50.0, 0.0])
    lr, eps = 0.01, 1e-8
    assert_allclose(Adam(lr=lr, eps=eps).step(P0, g), P0 - lr * g / (np.abs(g) + eps),
                    rtol=1e-14)
    gw = g + 0.1 * P0  # coupled L2
    assert_allclose(Adam(lr=lr, weight_decay=0.1).step(P0, g),
                    P0 - lr * gw / (np.abs(gw) + eps), rtol=1e-14)
    # decoupled: shrink by (1 - ηλ), then the plain Adam step
    assert_allclose(AdamW(lr=lr, weight_decay=0.1).step(P0, g),
                    P0 * (1 - lr * 0.1) - lr * g / (np.abs(g) + eps), rtol=1e-14)


def test_adam_first_step_ignores_gradient_scale():
    g = np.array([1.0, -1.0, 2.0, 4.0])
    a = Adam(lr=0.05).step(P0, g)
    b = Adam(lr=0.05).step(P0, 1e4 * g)
    assert_allclose(a, b, rtol=1e-8)  # equal up to ε / |g|
    assert_allclose(a, P0 - 0.05 * np.sign(g), rtol=1e-7)


def test_adamw_default_weight_decay_is_one_percent():
    assert AdamW().weight_decay == 0.01
    assert Adam().weight_decay == 0.0
    assert Adam().lr == 1e-3 and Adam().betas == (0.9, 0.999) and Adam().eps == 1e-8


# -- several steps against the written-out recurrences -------------------------------------

@pytest.mark.parametrize("kwargs", [
    {}, {"momentum": 0.9}, {"momentum": 0.5, "nesterov": True},
    {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}, {"weight_decay": 0.2},
], ids=str)
def test_sgd_matches_recurrence(kwargs, grad_seq):
    got = run(SGD(0.05, **kwargs), grad_seq)
    want = ref_sgd(P0, [g.tolist() for g in grad_seq], 0.05, **kwargs)
    assert_allclose(got, want, rtol=1e-13, atol=1e-15, err_msg=f"SGD {kwargs}")


@pytest.mark.parametrize("cls, kwargs", [
    (Adam, {}), (Adam, {"betas": (0.5, 0.9), "eps": 1e-3}),
    (Adam, {"weight_decay": 0.1}), (AdamW, {}), (AdamW, {"weight_decay": 0.3}),
    (AdamW, {"betas": (0.0, 0.99)}),
], ids=str)
def test_adam_matches_recurrence(cls, kwargs, grad_seq):
    got = run(cls(lr=0.02, **kwargs), grad_seq)
    b1, b2 = kwargs.get("betas", (0.9, 0.999))
    want = ref_adam(P0, [g.tolist() for g in grad_seq], 0.02, b1, b2,
                    kwargs.get("eps", 1e-8),
                    kwargs.get("weight_decay", 0.01 if cls is AdamW else 0.0),
                    decoupled=cls is AdamW)
    assert_allclose(got, want, rtol=1e-13, atol=1e-15, err_msg=f"{cls.__name__} {kwargs}")


def test_against_torch_optim(grad_seq):
    torch = pytest.importorskip("torch")
    cases = [(SGD(0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
              lambda w: torch.optim.SGD([w], lr=0.05, momentum=0.9, nesterov=True,
                                        weight_decay=0.01)),
             (Adam(0.02, weight_decay=0.1),
              lambda w: torch.optim.Adam([w], lr=0.02, weight_decay=0.1)),
             (AdamW(0.02, weight_decay=0.3),
              lambda w: torch.optim.AdamW([w], lr=0.02, weight_decay=0.3))]
    for ours, make in cases:
        w = torch.tensor(P0.copy(), dtype=torch.float64, requires_grad=True)
        opt = make(w)
        for g in grad_seq:
            w.grad = torch.tensor(g, dtype=torch.float64)
            opt.step()
        assert_allclose(run(ours, grad_seq), w.detach().numpy(), rtol=1e-12,
                        err_msg=repr(ours))


def test_lr_schedule_gets_one_based_step_numbers(grad_seq):
    seen = []

    def schedule(t):
        seen.append(t)
        return 0.1 / t

    got = run(SGD(lr=schedule, momentum=0.5), grad_seq[:3])
    assert seen == [1, 2, 3]
    p = P0.copy()
    b = np.zeros(4)
    for t, g in enumerate(grad_seq[:3], start=1):
        b = 0.5 * b + g
        p = p - (0.1 / t) * b
    assert_allclose(got, p, rtol=1e-14)


def test_lr_can_be_changed_between_steps():
    opt = SGD(lr=0.1)
    p = opt.step(np.ones(2), np.ones(2))
    opt.lr = 0.5
    assert_allclose(opt.step(p, np.ones(2)), [0.4, 0.4], rtol=1e-15)


# -- pytrees -------------------------------------------------------------------------------

Pair = collections.namedtuple("Pair", "a b")


def make_tree():
    return {"W": np.arange(6.0).reshape(2, 3), "layers": [np.array([1.0, -1.0]),
            (2.5, None, np.array(3.0))], "pair": Pair(np.ones(1), np.int64(4))}


@pytest.mark.parametrize("opt", [SGD(0.1, momentum=0.9), Adam(0.1), AdamW(0.1)], ids=repr)
def test_tree_structure_and_types_preserved(opt):
    params = make_tree()
    grads = dualad.grad(lambda p: sum(np.sum(leaf ** 2) for leaf in
                                      dualad.pytree.flatten(p)[0]), mode="reverse")(params)
    new = opt.step(params, grads)
    assert dualad.pytree.flatten(new)[1] == dualad.pytree.flatten(grads)[1]
    assert type(new) is dict and list(new) == ["W", "layers", "pair"]
    assert type(new["pair"]) is Pair and new["layers"][1][1] is None
    assert new["W"].dtype == np.float64 and new["W"].shape == (2, 3)
    assert type(new["layers"][1][0]) is np.float64         # a number stays a number
    assert type(new["pair"].b) is np.float64              # an integer is promoted
    assert isinstance(new["layers"][1][2], np.ndarray) and new["layers"][1][2].shape == ()
    # and the values are those of the same update on the raveled vector
    flat = dualad.ravel(params)[0]
    fresh = type(opt)(**{k: v for k, v in opt._hyper().items()})
    want = fresh.step(flat, dualad.ravel(grads)[0])
    assert_allclose(dualad.ravel(new)[0], want, rtol=1e-15)


def test_single_number_params():
    new = SGD(lr=0.5).step(2.0, 1.0)
    assert type(new) is np.float64 and new == 1.5


def test_callers_arrays_untouched_and_not_shared():
    params = {"w": np.array([1.0, 2.0]), "b": np.array(0.5)}
    grads = {"w": np.array([0.1, 0.2]), "b": np.array(-1.0)}
    before = {k: v.copy() for k, v in params.items()}
    gbefore = {k: v.copy() for k, v in grads.items()}
    opt = Adam(lr=0.1)
    new = opt.step(params, grads)
    for k, value in params.items():
        assert_allclose(value, before[k], rtol=0)
        assert_allclose(grads[k], gbefore[k], rtol=0)
        assert not np.shares_memory(new[k], value)
        assert not np.shares_memory(new[k], grads[k])
    # writing into the returned arrays does not reach the optimizer's state
    m = opt.state["m"]["w"].copy()
    new["w"][:] = 1e6
    assert_allclose(opt.state["m"]["w"], m, rtol=0)


def test_read_only_and_float32_inputs():
    p = np.array([1.0, 2.0])
    p.setflags(write=False)
    g = np.array([1.0, 1.0], dtype=np.float32)
    out = SGD(lr=0.5).step(p, g)
    assert out.dtype == np.float64
    assert_allclose(out, [0.5, 1.5], rtol=0)


def test_grads_dict_in_another_key_order():
    params = {"a": np.array([1.0, 2.0]), "b": np.array([3.0])}
    grads = {"b": np.array([10.0]), "a": np.array([1.0, -1.0])}
    new = SGD(lr=0.1).step(params, grads)
    assert list(new) == ["a", "b"]
    assert_allclose(new["a"], [0.9, 2.1], rtol=1e-15)
    assert_allclose(new["b"], [2.0], rtol=1e-15)


def test_grads_number_for_zero_d_array_leaf():
    new = SGD(lr=0.1).step({"c": np.array(1.0)}, {"c": 2.0})
    assert_allclose(new["c"], 0.8, rtol=1e-15)


@pytest.mark.parametrize("grads, match", [
    ({"w": np.ones(3), "b": 1.0},
     r"grads\['w'\] has shape \(3,\) but params\['w'\] has shape \(2, 2\)"),
    ({"w": np.ones((2, 2))},
     r"grads \(the root\) has keys \['w'\] but params has keys \['w', 'b'\]"),
    ({"w": np.ones((2, 2)), "b": 1.0, "c": 1.0}, r"keys"),
    ([np.ones((2, 2)), 1.0], r"grads \(the root\) is a list where params is a dict"),
    ({"w": [np.ones(2), np.ones(2)], "b": 1.0}, r"grads\['w'\] is a list where params"),
    ({"w": np.ones((2, 2)), "b": np.ones(2)}, r"grads\['b'\] has shape \(2,\)"),
], ids=["shape", "missing-key", "extra-key", "container", "leaf-vs-list", "scalar-leaf"])
def test_grads_structure_errors(grads, match):
    params = {"w": np.zeros((2, 2)), "b": 0.0}
    with pytest.raises(ValueError, match=match):
        SGD(lr=0.1).step(params, grads)


def test_grads_sequence_length_error():
    with pytest.raises(ValueError, match=r"grads \(the root\) has 1 entries but params "
                                         r"has 2"):
        SGD(lr=0.1).step([np.zeros(2), np.zeros(1)], [np.zeros(2)])


def test_grads_bad_leaf_types():
    with pytest.raises(TypeError, match="grads: .*str"):
        SGD(lr=0.1).step({"a": np.zeros(2)}, {"a": "x"})
    with pytest.raises(TypeError, match="complex"):
        SGD(lr=0.1).step(np.zeros(2), np.ones(2) * 1j)
    with pytest.raises(TypeError, match="str"):
        SGD(lr=0.1).step({"a": "x"}, {"a": 1.0})


def test_failed_step_leaves_state_alone():
    opt = Adam(lr=0.1)
    with pytest.raises(ValueError):
        opt.step(np.zeros(2), np.zeros(3))
    assert opt.state == {"step": 0}
    opt.step(np.zeros(2), np.ones(2))
    assert opt.state["step"] == 1


def test_params_structure_change_needs_reset():
    opt = Adam(lr=0.1)
    opt.step({"w": np.zeros(2)}, {"w": np.ones(2)})
    with pytest.raises(ValueError, match=r"reset\(\)"):
        opt.step({"w": np.zeros(3)}, {"w": np.ones(3)})
    opt.reset()
    out = opt.step({"w": np.zeros(3)}, {"w": np.ones(3)})
    assert_allclose(out["w"], -0.1 * np.ones(3), rtol=1e-7)


def test_array_params_step_after_step(rng):
    # a single float64 array (fit's case) takes a shortcut from the second step on: same
    # numbers as the tree path, shape kept, the caller's arrays untouched, and a change
    # of shape still needs reset()
    params = rng.normal(size=(3, 2))
    original = params.copy()
    grads = [rng.normal(size=(3, 2)) for _ in range(3)]
    arr_opt, tree_opt = Adam(0.1), Adam(0.1)
    arr, tree = params, {"w": params}
    for g in grads:
        arr = arr_opt.step(arr, g)
        tree = tree_opt.step(tree, {"w": g})
        assert arr.shape == (3, 2) and arr.dtype == np.float64
        assert_allclose(arr, tree["w"], rtol=1e-15, atol=0)
    assert_array_equal(params, original)
    assert arr_opt.state["step"] == 3
    assert_allclose(arr_opt.state["m"], tree_opt.state["m"]["w"], rtol=1e-15, atol=0)
    with pytest.raises(ValueError, match=r"reset\(\)"):
        arr_opt.step(np.zeros(6), np.ones(6))


@settings(max_examples=30, deadline=None)
@given(shapes=st.lists(st.lists(st.integers(1, 3), max_size=2), min_size=1, max_size=4),
       seed=st.integers(0, 2 ** 32 - 1),
       which=st.sampled_from(["sgd", "nesterov", "adam", "adamw"]))
def test_update_does_not_depend_on_tree_layout(shapes, seed, which):
    # the same values as a list of leaves or as one flat vector: the same update
    rng = np.random.default_rng(seed)
    leaves = [rng.normal(size=s) for s in shapes]
    grads = [[rng.normal(size=s) for s in shapes] for _ in range(3)]
    make = {"sgd": lambda: SGD(0.1, momentum=0.9),
            "nesterov": lambda: SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
            "adam": lambda: Adam(0.1, weight_decay=0.1),
            "adamw": lambda: AdamW(0.1)}[which]
    tree_opt, flat_opt = make(), make()
    tree, flat = leaves, dualad.ravel(leaves)[0]
    for g in grads:
        tree = tree_opt.step(tree, g)
        flat = flat_opt.step(flat, dualad.ravel(g)[0])
    assert_allclose(dualad.ravel(tree)[0], flat, rtol=1e-15, atol=0)


# -- hyper-parameters ----------------------------------------------------------------------

@pytest.mark.parametrize("make, exc, match", [
    (lambda: SGD(lr=0.0), ValueError, "lr must be > 0"),
    (lambda: SGD(lr=-1.0), ValueError, "lr must be > 0"),
    (lambda: Adam(lr=float("nan")), ValueError, "lr must be finite"),
    (lambda: Adam(lr=float("inf")), ValueError, "lr must be finite"),
    (lambda: SGD(lr="0.1"), TypeError, "lr must be a real number"),
    (lambda: SGD(lr=True), TypeError, "lr must be a real number"),
    (lambda: SGD(lr=0.1, momentum=-0.1), ValueError, r"momentum must be in \[0, 1\)"),
    (lambda: SGD(lr=0.1, momentum=1.0), ValueError, r"momentum must be in \[0, 1\)"),
    (lambda: SGD(lr=0.1, nesterov=True), ValueError, "nesterov=True needs momentum > 0"),
    (lambda: SGD(lr=0.1, momentum=0.9, nesterov="yes"), TypeError, "nesterov must be"),
    (lambda: SGD(lr=0.1, weight_decay=-1e-3), ValueError, "weight_decay must be >= 0"),
    (lambda: Adam(betas=(1.0, 0.9)), ValueError, r"betas\[0\] must be in \[0, 1\)"),
    (lambda: Adam(betas=(0.9, -0.5)), ValueError, r"betas\[1\] must be in \[0, 1\)"),
    (lambda: Adam(betas=(0.9,)), TypeError, "betas must be a pair"),
    (lambda: Adam(betas=0.9), TypeError, "betas must be a pair"),
    (lambda: Adam(eps=0.0), ValueError, "eps must be > 0"),
    (lambda: AdamW(weight_decay=-0.01), ValueError, "weight_decay must be >= 0"),
    (lambda: AdamW(weight_decay=None), TypeError, "weight_decay must be a real number"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_hyperparameters(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_bad_schedule_values():
    with pytest.raises(ValueError, match=r"lr\(1\) must be > 0"):
        SGD(lr=lambda t: -0.1).step(np.zeros(1), np.ones(1))
    with pytest.raises(TypeError, match="schedule"):
        SGD(lr=lambda t: "fast").step(np.zeros(1), np.ones(1))
    def buggy(t):
        return len(t)  # a bug in the user's schedule surfaces unchanged

    with pytest.raises(TypeError, match="has no len"):
        SGD(lr=buggy).step(np.zeros(1), np.ones(1))
    opt = SGD(lr=0.1)
    opt.lr = 0.0
    with pytest.raises(ValueError, match="lr must be > 0"):
        opt.step(np.zeros(1), np.ones(1))


# -- state ---------------------------------------------------------------------------------

def test_state_contents_and_reset():
    sgd = SGD(lr=0.1)
    sgd.step(np.zeros(2), np.ones(2))
    assert sgd.state == {"step": 1}  # plain SGD keeps no buffer
    opt = Adam(lr=0.1, betas=(0.5, 0.75))
    assert opt.state == {"step": 0}
    g = {"w": np.array([2.0, -4.0])}
    opt.step({"w": np.zeros(2)}, g)
    state = opt.state
    assert state["step"] == 1 and set(state) == {"step", "m", "v"}
    assert_allclose(state["m"]["w"], 0.5 * g["w"], rtol=1e-15)
    assert_allclose(state["v"]["w"], 0.25 * g["w"] ** 2, rtol=1e-15)
    state["m"]["w"][:] = 99.0  # a copy
    assert_allclose(opt.state["m"]["w"], 0.5 * g["w"], rtol=1e-15)
    opt.reset()
    assert opt.state == {"step": 0}
    # after reset the next step is a first step again
    assert_allclose(opt.step(np.zeros(2), np.ones(2)), -0.1 * np.ones(2), rtol=1e-7)


def test_momentum_switched_on_later():
    opt = SGD(lr=0.1)
    p = opt.step(np.zeros(1), np.ones(1))
    opt.momentum = 0.5
    p = opt.step(p, np.ones(1))
    assert_allclose(p, [-0.2], rtol=1e-15)
    assert "velocity" in opt.state


@pytest.mark.parametrize("opt", [SGD(0.1, momentum=0.9, nesterov=True), Adam(0.05),
                                 AdamW(0.05)], ids=repr)
def test_pickle_resumes_identically(opt, grad_seq):
    p = run(opt, grad_seq[:2])
    clone = pickle.loads(pickle.dumps(opt))
    assert_allclose(run(clone, grad_seq[2:], p), run(opt, grad_seq[2:], p), rtol=0)


def test_repr():
    assert repr(SGD(0.1, momentum=0.9)) == ("SGD(lr=0.1, momentum=0.9, nesterov=False, "
                                            "weight_decay=0.0)")
    assert repr(AdamW(1e-3)) == ("AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-08, "
                                 "weight_decay=0.01)")

    def cosine(t):
        return 1.0

    assert repr(Adam(lr=cosine)).startswith("Adam(lr=cosine,")


# -- fit -----------------------------------------------------------------------------------

def _load_example(name):
    spec = importlib.util.spec_from_file_location(f"_example_{name}",
                                                  EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fit_reduces_loss_linear_regression_example():
    ex = _load_example("linear_regression")
    x, y = ex.make_data()[:2]
    x, y = x[:600], y[:600]
    params = {"W": np.zeros((784, 10)), "b": np.zeros(10)}
    start = ex.loss(params, x, y)
    new, history = fit(ex.loss, params, (x, y), SGD(0.01, momentum=0.9), epochs=3,
                       batch_size=100, seed=0)
    assert history.epochs == 3 and history.val_loss == []
    assert history.loss[-1] < history.loss[0] < start
    assert ex.loss(new, x, y) < 0.2 * start
    assert_allclose(params["W"], 0.0, atol=0)  # the caller's params are untouched


def test_fit_reduces_loss_mlp_example():
    ex = _load_example("mlp_digits")
    x, labels = ex.generated_digits(n=400)
    onehot = np.eye(10)[labels]
    params = ex.init_params(np.random.default_rng(0))
    start = ex.loss(params, x, onehot)
    new, history = fit(ex.loss, params, (x[:300], onehot[:300]), Adam(1e-2), epochs=4,
                       batch_size=32, seed=1, validation_data=(x[300:], onehot[300:]))
    assert len(history.val_loss) == 4 and history.monitor == "val_loss"
    assert history.val_loss[-1] < 0.5 * start
    assert ex.accuracy(new, x[300:], labels[300:]) > 0.7


class _Still:
    """An optimizer that never moves: every batch loss is taken at the same params."""

    def __init__(self):
        self.steps = 0

    def step(self, params, grads):
        self.steps += 1
        return params


def _mse(p, x, y):
    return np.mean((p * x - y) ** 2)


def test_epoch_loss_is_weighted_over_a_partial_last_batch():
    x = np.arange(1.0, 11.0)
    y = np.sin(x)
    opt = _Still()
    _, history = fit(_mse, 0.3, (x, y), opt, epochs=2, batch_size=4, seed=0)
    assert opt.steps == 6                     # 4 + 4 + 2, twice
    want = np.mean((0.3 * x - y) ** 2)        # equal weights per sample
    assert_allclose(history.loss, [want, want], rtol=1e-14)


def test_drop_last_and_batch_sizes():
    x = np.arange(10.0)
    sizes = []

    def loss(p, xb):
        sizes.append(len(xb))
        return np.sum(p * xb)

    fit(loss, 1.0, x, _Still(), epochs=1, batch_size=4, drop_last=True, shuffle=False)
    assert sizes == [4, 4]
    sizes.clear()
    fit(loss, 1.0, x, _Still(), epochs=1, batch_size=None)
    assert sizes == [10]
    sizes.clear()
    fit(loss, 1.0, x, _Still(), epochs=1, batch_size=50)
    assert sizes == [10]
    with pytest.raises(ValueError, match="drop_last=True would drop every batch"):
        fit(loss, 1.0, x, _Still(), batch_size=50, drop_last=True)


def _batches_seen(**kwargs):
    seen = []

    def loss(p, idx):
        seen.append(np.asarray(idx).copy())
        return p * np.sum(idx)

    fit(loss, 0.0, np.arange(11.0), _Still(), epochs=3, batch_size=4, **kwargs)
    return seen


def test_shuffling_is_reproducible_with_seed():
    a, b, c = _batches_seen(seed=5), _batches_seen(seed=5), _batches_seen(seed=6)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not all(np.array_equal(u, v) for u, v in zip(a, c))
    # each epoch visits every sample once, in the documented order
    rng = np.random.default_rng(5)
    for epoch in range(3):
        got = np.concatenate(a[3 * epoch:3 * epoch + 3])
        assert_allclose(got, rng.permutation(11).astype(float), rtol=0)
    # a Generator works as seed too
    d = _batches_seen(seed=np.random.default_rng(5))
    assert all(np.array_equal(u, v) for u, v in zip(a, d))


def test_no_shuffle_keeps_order():
    seen = _batches_seen(shuffle=False)
    assert_allclose(np.concatenate(seen[:3]), np.arange(11.0), rtol=0)
    assert_allclose(np.concatenate(seen[3:6]), np.arange(11.0), rtol=0)


def _toward_two(p, x):
    # training pulls p to 2 (the data); gradient 2 (p - 2)
    return np.mean((p - x) ** 2)


def _val_half(p, x):
    return (p - 0.5) ** 2 + 0.0 * np.sum(x)


def test_early_stopping_restores_best():
    # full-batch SGD with lr 0.1: p_t = 2 (1 - 0.8^t): 0.4, 0.72, 0.976, ...; the
    # validation loss (p - 0.5)² is lowest after the first epoch
    x = np.full(8, 2.0)
    val = (np.zeros(3),)
    expected = [2 * (1 - 0.8 ** t) for t in range(1, 4)]
    calls = []

    def val_loss(p, v):
        calls.append(float(p))
        return _val_half(p, v)

    def loss(p, xb):
        return _toward_two(p, xb)

    # validation_data's loss is the same loss function: route it by the data's value
    def combined(p, xb):
        return loss(p, xb) if xb[0] == 2.0 else val_loss(p, xb)

    params, history = fit(combined, 0.0, x, SGD(0.1), epochs=10, batch_size=None,
                          validation_data=val, patience=2)
    assert history.stop_reason == "patience" and history.epochs == 3
    assert history.best_epoch == 0 and history.monitor == "val_loss"
    assert_allclose(calls, expected, rtol=1e-14)
    assert_allclose(params, expected[0], rtol=1e-14)
    assert_allclose(history.best_loss, (expected[0] - 0.5) ** 2, rtol=1e-12)
    last, h2 = fit(combined, 0.0, x, SGD(0.1), epochs=10, batch_size=None,
                   validation_data=val, patience=2, restore_best=False)
    assert_allclose(last, expected[-1], rtol=1e-14) and h2.epochs == 3


def test_early_stopping_on_training_loss_with_min_delta():
    x = np.full(4, 2.0)
    params, history = fit(_toward_two, 0.0, x, SGD(0.1), epochs=20, batch_size=None,
                          patience=0, min_delta=10.0)
    # the first epoch sets the best; no later one improves by 10: stop at the second
    assert history.monitor == "loss" and history.epochs == 2
    assert history.best_epoch == 0 and history.stop_reason == "patience"
    assert_allclose(params, 0.4, rtol=1e-14)
    _, full = fit(_toward_two, 0.0, x, SGD(0.1), epochs=5, batch_size=None, patience=3)
    assert full.epochs == 5 and full.stop_reason is None and full.best_epoch == 4


def test_callback_sees_history_and_can_stop():
    calls = []

    def callback(epoch, params, history):
        calls.append((epoch, len(history.loss), float(params)))
        return epoch == 2

    x = np.full(4, 2.0)
    params, history = fit(_toward_two, 0.0, x, SGD(0.1), epochs=10, batch_size=None,
                          callback=callback)
    assert [c[:2] for c in calls] == [(0, 1), (1, 2), (2, 3)]
    assert history.stop_reason == "callback" and history.epochs == 3
    assert_allclose([c[2] for c in calls], [2 * (1 - 0.8 ** t) for t in (1, 2, 3)],
                    rtol=1e-14)
    assert_allclose(params, calls[-1][2], rtol=0)


def test_optimizer_state_carries_across_fit_calls():
    x = np.linspace(-1, 1, 12)
    y = 3 * x
    kw = {"batch_size": 5, "shuffle": False}
    once, _ = fit(_mse, 0.0, (x, y), Adam(0.1), epochs=2, **kw)
    opt = Adam(0.1)
    half, _ = fit(_mse, 0.0, (x, y), opt, epochs=1, **kw)
    twice, _ = fit(_mse, half, (x, y), opt, epochs=1, **kw)
    assert_allclose(twice, once, rtol=1e-15)
    assert opt.state["step"] == 6


def test_forward_mode_gives_the_same_training():
    x = np.linspace(-1, 1, 12)
    y = np.cos(x)

    def loss(p, x, y):
        return np.mean((p[0] * x + p[1] * x ** 2 - y) ** 2)

    p0 = np.array([0.1, 0.2])
    a, _ = fit(loss, p0, (x, y), Adam(0.05), epochs=3, batch_size=5, seed=0)
    b, _ = fit(loss, p0, (x, y), Adam(0.05), epochs=3, batch_size=5, seed=0,
               mode="forward")
    assert_allclose(a, b, rtol=1e-14)


def test_nonfinite_loss_names_epoch_and_batch():
    x = np.arange(10.0)
    x[5] = np.nan
    with pytest.raises(FloatingPointError, match=r"nan at epoch 0, batch 2 .*learning "
                                                 r"rate"):
        fit(lambda p, xb: np.sum(p * xb), 1.0, x, SGD(0.1), batch_size=2, shuffle=False)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"loss": 1.0}, TypeError, "loss must be a callable"),
    ({"optimizer": object()}, TypeError, "optimizer must have a step"),
    ({"callback": 3}, TypeError, "callback must be callable"),
    ({"data": (np.zeros(4), np.zeros(5))}, ValueError, r"lengths are \[4, 5\]"),
    ({"data": (np.zeros((0, 2)),)}, ValueError, "data has no samples"),
    ({"data": (np.float64(1.0),)}, ValueError, r"data\[0\] is a scalar"),
    ({"data": {"x": np.zeros(4)}}, TypeError, "data must be a tuple of arrays"),
    ({"data": ()}, TypeError, "data must be a tuple of arrays"),
    ({"validation_data": (np.zeros(2), np.zeros(3))}, ValueError, "validation_data"),
    ({"epochs": 0}, ValueError, "epochs must be >= 1"),
    ({"epochs": 2.0}, TypeError, "epochs must be an integer"),
    ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
    ({"patience": -1}, ValueError, "patience must be >= 0"),
    ({"min_delta": -0.5}, ValueError, "min_delta must be >= 0"),
    ({"params": {"a": "text"}}, TypeError, r"\['a'\]"),
    ({"loss": lambda p, x, y: p * x}, ValueError, "scalar output"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_fit_bad_input(kwargs, exc, match):
    args = {"loss": _mse, "params": 0.5, "data": (np.ones(4), np.ones(4)),
            "optimizer": SGD(0.1)}
    args.update(kwargs)
    loss, params, data, opt = (args.pop(k) for k in ("loss", "params", "data",
                                                     "optimizer"))
    with pytest.raises(exc, match=match):
        fit(loss, params, data, opt, **args)


def test_progress_text_bar(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm fails
    fit(_mse, 0.5, (np.ones(6), np.ones(6)), SGD(0.1), epochs=2, batch_size=4,
        progress=True, validation_data=(np.ones(2), np.ones(2)))
    err = capsys.readouterr().err
    assert "fit [" in err and "100%" in err and "epoch 2/2" in err and "val_loss" in err
    assert err.endswith("\n")


def test_progress_uses_tqdm_when_installed(capsys, monkeypatch):
    made = []

    class FakeBar:
        def __init__(self, total, **kwargs):
            self.total, self.kwargs, self.n, self.postfix, self.closed = total, kwargs, \
                0, [], False
            made.append(self)

        def update(self, k):
            self.n += k

        def set_postfix_str(self, text):
            self.postfix.append(text)

        def close(self):
            self.closed = True

    monkeypatch.setitem(sys.modules, "tqdm", types.SimpleNamespace(tqdm=FakeBar))
    fit(_mse, 0.5, (np.ones(6), np.ones(6)), SGD(0.1), epochs=3, batch_size=4,
        progress=True)
    (bar,) = made
    assert bar.total == 6 and bar.n == 6 and bar.closed and len(bar.postfix) == 3
    assert bar.kwargs["file"] is sys.stderr
    assert capsys.readouterr().err == ""


def test_progress_off_when_not_a_terminal(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    fit(_mse, 0.5, (np.ones(6), np.ones(6)), SGD(0.1), epochs=1)
    assert capsys.readouterr().err == ""


def test_progress_bar_closed_on_error(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    with pytest.raises(FloatingPointError):
        fit(lambda p, x: np.sum(p * x), 1.0, np.array([1.0, np.inf]), SGD(0.1),
            batch_size=1, shuffle=False, progress=True)
    assert capsys.readouterr().err.endswith("\n")


def test_history_repr_and_dict():
    _, history = fit(_toward_two, 0.0, np.full(3, 2.0), SGD(0.1), epochs=2,
                     batch_size=None, patience=5)
    text = repr(history)
    assert text.startswith("History(epochs=2, loss=") and "best_epoch=1" in text
    d = history.as_dict()
    assert d["epochs"] == 2 and d["loss"] == history.loss and d["stop_reason"] is None
    d["loss"].append(0.0)
    assert len(history.loss) == 2
    assert repr(History()) == "History(epochs=0)"


# -- docstrings ----------------------------------------------------------------------------

def _documented():
    for name in optim.__all__:
        obj = getattr(optim, name)
        yield name, obj
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if isinstance(member, property):
                    member = member.fget
                if callable(member) and member.__doc__:
                    yield f"{name}.{attr}", member


DOCUMENTED = list(_documented())


def test_all_names_exist():
    assert set(optim.__all__) == {"Optimizer", "SGD", "Adam", "AdamW", "fit", "History"}


@pytest.mark.parametrize("name, obj", DOCUMENTED, ids=[n for n, _ in DOCUMENTED])
def test_docstring_examples_run(name, obj):
    doc = inspect.getdoc(obj)
    assert doc and "Examples" in doc, f"{name}: no Examples section"
    if inspect.isfunction(obj) and not name.endswith(".state"):
        assert "Returns" in doc, f"{name}: no Returns section"
    test = doctest.DocTestParser().get_doctest(doc, {"np": np, "dualad": dualad}, name,
                                               None, 0)
    assert test.examples, f"{name}: no doctest"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS
                                   | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0, f"{name}: doctest failed"


def test_custom_optimizer_subclass():
    class SignSGD(optim.Optimizer):
        """Steps of size lr along -sign(g), counting sign flips per parameter."""

        _buffers = ("flips", "last")

        def _update(self, p, g, lr, t):
            s = np.sign(g)
            self._flips += (t > 1) & (s != self._last)
            self._last[:] = s
            p -= lr * s

    opt = SignSGD(lr=0.5)
    p = opt.step({"a": np.array([1.0, 2.0])}, {"a": np.array([3.0, -0.1])})
    p = opt.step(p, {"a": np.array([-1.0, -4.0])})
    assert_allclose(p["a"], [1.0, 3.0], rtol=0)
    assert_allclose(opt.state["flips"]["a"], [1.0, 0.0], rtol=0)
    with pytest.raises(NotImplementedError, match="_update"):
        optim.Optimizer(lr=0.1).step(np.zeros(1), np.ones(1))
