"""``DualArray`` inside a user's function: indexing, item assignment, attributes, methods,
conversions at the boundary, arithmetic and broadcasting, awkward inputs, ufunc methods.

The oracle is ``fd_jacobian`` (central differences on the same function with plain
arrays); indexing is linear, so its Jacobian is also checked exactly against the matrix
of the index operation applied to the basis vectors.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import dualad
import dualad.forward
from dualad import Dual, DualArray
from conftest import ATOL_FD, RTOL_FD, fd_jacobian


def _on_copy(f):
    """``f`` applied to a copy of a plain array: the oracle's own evaluations must not
    write into the point (NumPy item assignment would)."""
    return lambda z: f(np.array(z, dtype=float)) if isinstance(z, np.ndarray) else f(z)


def _check(f, x, name, chunk=None):
    jac = dualad.jacobian(f, chunk=chunk)(x)
    expected = fd_jacobian(_on_copy(f), np.array(x, dtype=float))
    assert np.asarray(jac).dtype == np.float64, name
    assert np.shape(jac) == expected.shape, f"{name}: {np.shape(jac)} != {expected.shape}"
    assert_allclose(jac, expected, rtol=RTOL_FD, atol=ATOL_FD, err_msg=name)
    return jac


def _basis_matrix(f, shape):
    cols = []
    for idx in np.ndindex(*shape):
        e = np.zeros(shape)
        e[idx] = 1.0
        cols.append(np.asarray(f(e), dtype=float))
    out = np.stack(cols, axis=-1)
    return out.reshape(out.shape[:-1] + shape)


# -- indexing ------------------------------------------------------------------------------

_MASK = np.array([[True, False, True, False], [False, False, True, True],
                  [True, True, False, False]])

KEYS = {
    "int": (1,),
    "neg-int": (-1,),
    "int-pair": (1, 2),
    "neg-int-pair": (-1, -3),
    "slice": (slice(1, None),),
    "slice-step": (slice(None, None, 2),),
    "slice-neg-step": (slice(None, None, -1), slice(3, 0, -2)),
    "slice-empty": (slice(2, 1),),
    "ellipsis": (Ellipsis, 1),
    "ellipsis-front": (0, Ellipsis),
    "none": (None, 1),
    "none-middle": (slice(None), None, 2),
    "mask-2d": (_MASK,),
    "mask-rows": (np.array([True, False, True]),),
    "mask-cols": (slice(None), np.array([False, True, True, False])),
    "intarray": (np.array([2, 0, 2]),),
    "intarray-2d": (np.array([[0, 1], [2, 2]]),),
    "intarray-pair": (np.array([0, 2, 1]), np.array([3, 3, 0])),
    "intarray-slice": (slice(None), np.array([3, 0])),
    "list": ([1, 0],),
    "int-and-slice": (2, slice(1, 3)),
}


@pytest.mark.parametrize("key", list(KEYS.values()), ids=list(KEYS))
def test_getitem_jacobian(key, rng):
    x = rng.standard_normal((3, 4))
    key = key[0] if len(key) == 1 else key
    f = lambda z: z[key]  # noqa: E731
    jac = _check(f, x, f"x[{key!r}]")
    assert_array_equal(jac, _basis_matrix(f, x.shape), err_msg=f"x[{key!r}] exact")


@pytest.mark.parametrize("key", [np.s_[1, 2], np.s_[-1, 0], np.s_[np.int64(1), 3],
                                 np.s_[0, -1]], ids=["pos", "neg", "npint", "mixed"])
def test_single_element_is_a_dual(key):
    seen = []

    def f(z):
        d = z[key]
        seen.append(d)
        return d * d

    x = np.arange(12.0).reshape(3, 4)
    g = dualad.jacobian(f)(x)
    assert type(seen[0]) is Dual, f"x[{key}] is {type(seen[0]).__name__}"
    assert seen[0].value == x[key]
    expected = np.zeros_like(x)
    expected[key] = 2 * x[key]
    assert_array_equal(g, expected, err_msg=f"d(x[{key}]**2)")


def test_index_result_types():
    seen = {}

    def f(z):
        seen["row"] = type(z[0])
        seen["elem-of-row"] = type(z[0][1])
        seen["mask"] = type(z[z > 100.0])  # empty selection
        seen["intarray-one"] = type(z[np.array([1]), np.array([2])])
        seen["0d"] = type(z[0, 0, None])
        return z

    dualad.jacobian(f)(np.arange(6.0).reshape(2, 3))
    assert seen == {"row": DualArray, "elem-of-row": Dual, "mask": DualArray,
                    "intarray-one": DualArray, "0d": DualArray}, seen


@pytest.mark.parametrize("layout", ["contiguous", "lanes-transposed", "strided-view",
                                    "nested"])
def test_int_index_of_1d_array_every_layout(layout, rng):
    # a[i] on a 1-d array has a C shortcut (contiguous values, any tangent strides); it
    # must give what indexing the value and every tangent lane gives, in range or not
    n, k = 7, 3
    tag = dualad._tags.new_tag()
    if layout == "strided-view":  # values and lanes both non-contiguous (a[::2])
        big = DualArray(rng.standard_normal(2 * n), rng.standard_normal((k, 2 * n)), tag)
        a = big[::2]
        value, lanes = big.value[::2], big.tangent[:, ::2]
    else:
        value = rng.standard_normal(n)
        lanes = rng.standard_normal((n, k)).T if layout == "lanes-transposed" else \
            rng.standard_normal((k, n))
        if layout == "nested":  # values that are DualArrays of an enclosing level
            inner = DualArray(value, rng.standard_normal((2, n)), tag)
            a = dualad.forward._seed(inner, lanes, dualad._tags.new_tag())
        else:
            a = DualArray(value, lanes, tag)
            assert a.tangent.strides == lanes.strides or layout == "contiguous"
    for i in list(range(-n, n)) + [np.int64(2)]:
        d = a[i]
        if layout == "nested":  # a 0-d DualArray over the inner level's element
            assert type(d) is DualArray and d.tag == a.tag, (layout, i)
            assert d.value.value == value[i]
            assert_array_equal(d.tangent, lanes[:, i], err_msg=f"{layout}: a[{i}]")
            continue
        assert type(d) is Dual and d.tag == a.tag, (layout, i)
        assert d.value == value[i]
        assert_array_equal(d.partials, lanes[:, i], err_msg=f"{layout}: a[{i}]")
    for i in (n, -n - 1):
        with pytest.raises(IndexError):
            a[i]


def test_getitem_0d_input():
    f = lambda z: z[()] * 3.0  # noqa: E731
    assert_allclose(dualad.jacobian(f)(np.array(2.0)), 3.0, rtol=0, atol=0, err_msg="x[()]")
    assert_allclose(dualad.jacobian(lambda z: z[None] * 3.0)(np.array(2.0)), [3.0],
                    rtol=0, atol=0, err_msg="x[None] of 0-d")


def test_mask_from_values_follows_the_point(rng):
    x = rng.standard_normal(8)
    f = lambda z: np.sum(z[z > 0] ** 2)  # noqa: E731
    assert_allclose(dualad.grad(f)(x), np.where(x > 0, 2 * x, 0.0), rtol=1e-15, atol=0,
                    err_msg="sum(x[x > 0]**2)")


# -- item assignment -----------------------------------------------------------------------

def _set_int(z):
    z[0] = z[1] ** 2
    return z


def _set_elem(z):
    z[1, 2] = np.sin(z[0, 0]) * z[2, 3]
    return z


def _set_row_dual(z):
    z[0] = z[1, 1]  # a Dual broadcast into a row
    return z


def _set_slice(z):
    z[1:, ::2] = z[:-1, 1::2] * 3.0
    return z


def _set_mask(z):
    z[z > 0.5] = 0.0
    return z


def _set_mask_traced(z):
    m = z < 0
    z[m] = z[m] ** 2
    return z


def _set_intarray(z):
    z[np.array([0, 2]), np.array([1, 3])] = z[1, :2] * z[0, 0]
    return z


def _set_ellipsis(z):
    z[..., 0] = z[..., 3] + 1.0
    return z


def _iadd_slice(z):
    z[1:] += z[:1] * 2.0
    return z


def _imul(z):
    z[:, 1] *= z[:, 2]
    return z


def _set_constant_row(z):
    z[2] = np.array([1.0, 2.0, 3.0, 4.0])
    return z * z


def _set_list_of_duals(z):
    z[0, :2] = [z[1, 1], z[2, 2] * 2.0]
    return z


def _set_twice(z):
    z[0, 0] = z[1, 1] * z[2, 2]
    z[0, 0] = z[0, 0] * z[0, 1]
    return z


def _augmented_whole(z):
    z += 1.0
    z *= z
    return z


SETITEM = [_set_int, _set_elem, _set_row_dual, _set_slice, _set_mask, _set_mask_traced,
           _set_intarray, _set_ellipsis, _iadd_slice, _imul, _set_constant_row,
           _set_list_of_duals, _set_twice, _augmented_whole]


@pytest.mark.parametrize("chunk", [1, 3, None], ids=lambda c: f"chunk{c}")
@pytest.mark.parametrize("f", SETITEM, ids=lambda f: f.__name__)
def test_setitem_derivative_and_input_untouched(f, chunk, rng):
    x = rng.standard_normal((3, 4))
    before = x.copy()
    _check(f, x, f.__name__, chunk)
    assert_array_equal(x, before, err_msg=f"{f.__name__} modified the caller's x")


@pytest.mark.parametrize("f", SETITEM, ids=lambda f: f.__name__)
def test_setitem_jvp_input_and_tangent_untouched(f, rng):
    x = rng.standard_normal((3, 4))
    v = rng.standard_normal((3, 4))
    xb, vb = x.copy(), v.copy()
    dualad.jvp(f, x, v)
    assert_array_equal(x, xb, err_msg=f"{f.__name__} modified x")
    assert_array_equal(v, vb, err_msg=f"{f.__name__} modified v")


def _view_before_first_write(z):
    y = z * 1.0
    w = y[1:]             # a basic-slice view, taken before y is written
    y[1] = 100.0 * z[0]
    return np.concatenate([w, y])


def _view_after_first_write(z):
    y = z * 1.0
    y[2] = 0.5 * z[2]
    w = y[1:]             # a view taken after a first write
    y[1] = 100.0 * z[0]
    return np.concatenate([w, y])


def _view_of_input(z):
    a = z[:2]             # a view of the traced input itself
    z[0] = 0.0
    return a + z[1:]


@pytest.mark.parametrize("f", [_view_before_first_write, _view_after_first_write,
                               _view_of_input],
                         ids=lambda f: f.__name__)
def test_views_of_intermediates_see_later_writes_like_numpy(f):
    """NumPy semantics for a view of an intermediate array: it sees later writes.

    The value (not only the derivative) must be NumPy's, whatever the history of the
    array: the same code run on plain arrays is the reference.
    """
    x = np.array([1.0, 2.0, 3.0])
    before = x.copy()
    value, _ = dualad.jvp(f, x, np.ones(3))
    assert_array_equal(x, before, err_msg=f"{f.__name__} modified the caller's x")
    assert_array_equal(value, f(x.copy()),
                       err_msg=f"{f.__name__}: value differs from NumPy")
    _check(f, x, f.__name__)


@pytest.mark.parametrize("alloc", ["zeros_like", "copy", "ones_like", "empty_like",
                                   "full_like", "np.copy"])
def test_assign_into_allocated_array(alloc, rng):
    makers = {"zeros_like": np.zeros_like, "copy": lambda z: z.copy(),
              "ones_like": np.ones_like, "empty_like": np.empty_like,
              "full_like": lambda z: np.full_like(z, -1.0), "np.copy": np.copy}

    def f(z):
        y = makers[alloc](z)
        y[0] = z[1] ** 2
        y[1:3] = z[2:] * z[0]
        y[-1] = np.exp(z[0])
        y[-1] += z[3]
        return y

    x = rng.standard_normal(4)
    before = x.copy()
    _check(f, x, f"assign into {alloc}")
    assert_array_equal(x, before, err_msg=alloc)


def test_copy_is_independent():
    def f(z):
        y = z.copy()
        y[0] = 10.0
        return z + y   # z keeps its own element 0

    x = np.array([1.0, 2.0])
    jac = _check(f, x, "copy independence")
    assert_array_equal(jac, [[1.0, 0.0], [0.0, 2.0]], err_msg="copy independence")


def test_setitem_loop_recurrence(rng):
    """A loop filling an array element by element (the classic explicit-Euler pattern)."""
    def f(z):
        y = np.zeros_like(z)
        y[0] = z[0]
        for i in range(1, len(z)):
            y[i] = y[i - 1] * z[i] + np.sin(y[i - 1])
        return y

    _check(f, rng.uniform(0.5, 1.0, 6), "recurrence", chunk=2)


# -- attributes, iteration -----------------------------------------------------------------

def test_attributes_match_numpy():
    seen = {}

    def f(z):
        seen.update(shape=z.shape, ndim=z.ndim, size=z.size, len=len(z),
                    tshape=z.T.shape, dtype=z.dtype)
        return z

    dualad.jacobian(f)(np.ones((2, 3, 4)))
    assert seen == dict(shape=(2, 3, 4), ndim=3, size=24, len=2, tshape=(4, 3, 2),
                        dtype=np.dtype(np.float64)), seen


@pytest.mark.parametrize("shape", [(4,), (3, 2)], ids=["1d", "2d"])
def test_iteration(shape, rng):
    def f(z):
        rows = [r for r in z]
        assert len(rows) == shape[0]
        return np.stack([r * (i + 1.0) for i, r in enumerate(rows)])

    _check(f, rng.standard_normal(shape), f"iteration over {shape}")


def test_iteration_python_sum_of_elements(rng):
    f = lambda z: sum(e ** 2 for e in z)  # noqa: E731
    x = rng.standard_normal(5)
    assert_allclose(dualad.grad(f)(x), 2 * x, rtol=1e-15, atol=0, err_msg="sum(e**2)")


def test_len_of_0d_raises():
    with pytest.raises(TypeError, match="len"):
        dualad.derivative(lambda t: len(np.reshape(t, ())))(1.0)


# -- methods -----------------------------------------------------------------------------

METHODS = {
    "sum": lambda z: z.sum(),
    "sum-axis": lambda z: z.sum(axis=0),
    "sum-keepdims": lambda z: z.sum(axis=1, keepdims=True),
    "mean": lambda z: z.mean(axis=-1),
    "prod": lambda z: z.prod(axis=0),
    "max": lambda z: z.max(),
    "max-axis": lambda z: z.max(axis=1),
    "min": lambda z: z.min(axis=0, keepdims=True),
    "reshape-tuple": lambda z: z.reshape((2, 6)),
    "reshape-args": lambda z: z.reshape(4, 3),
    "reshape-neg": lambda z: z.reshape(-1),
    "reshape-F": lambda z: z.reshape(4, 3, order="F"),
    "ravel": lambda z: z.ravel(),
    "flatten": lambda z: z.flatten(),
    "transpose": lambda z: z.transpose(),
    "transpose-args": lambda z: z.transpose(1, 0),
    "transpose-tuple": lambda z: z.transpose((1, 0)),
    "T": lambda z: z.T,
    "dot-const": lambda z: z.dot(np.arange(4.0)),
    "dot-self": lambda z: z.dot(z.T),
    "copy": lambda z: z.copy() * 2.0,
    "astype-float": lambda z: z.astype(float),
    "astype-float64": lambda z: z.astype(np.float64),
    "astype-str": lambda z: z.astype("f8"),
    "var": lambda z: z.var(axis=0),
    "std": lambda z: z.std(),
    "cumsum": lambda z: z.cumsum(axis=1),
    "cumprod": lambda z: z.cumprod(),
    "clip": lambda z: z.clip(-0.3, 0.3),
    "squeeze": lambda z: z[None].squeeze(0),
    "swapaxes": lambda z: z.swapaxes(0, 1),
    "take": lambda z: z.take([0, 5]),
    "repeat": lambda z: z.repeat(2, axis=0),
    "trace": lambda z: z.trace(),
    "diagonal": lambda z: z.diagonal(1),
    "tolist": lambda z: z.tolist(),
}


@pytest.mark.parametrize("name", list(METHODS))
def test_methods(name, rng):
    x = rng.standard_normal((3, 4))
    if name == "clip":
        x = np.array([[-1.0, -0.1, 0.2, 0.9], [0.5, -0.6, 0.05, 2.0],
                      [0.1, -2.0, 1.0, -0.2]])
    _check(METHODS[name], x, f"DualArray.{name}")


def test_astype_other_dtype_raises():
    with pytest.raises(TypeError, match="float64"):
        dualad.jacobian(lambda z: z.astype(np.float32))(np.ones(2))


def test_argmethods_are_plain(rng):
    seen = {}

    def f(z):
        seen["argmax"] = z.argmax()
        seen["argsort"] = z.argsort()
        return z[z.argmax()]

    x = rng.standard_normal(5)
    g = dualad.grad(f)(x)
    assert seen["argmax"] == np.argmax(x)
    assert_array_equal(seen["argsort"], np.argsort(x))
    assert_array_equal(g, np.eye(5)[np.argmax(x)], err_msg="x[argmax]")


# -- building arrays of tracers ------------------------------------------------------------

BUILDERS = {
    "np.array-duals": lambda z: np.array([z[0] * z[1], z[2], 3.0]),
    "np.array-nested": lambda z: np.array([[z[0], z[1]], [z[2] ** 2, 1.0]]),
    "np.array-dualarrays": lambda z: np.array([z[:2], z[1:3] * 2.0]),
    "np.array-mixed": lambda z: np.array([z[:2], [z[3], 5.0]]),
    "np.asarray-list": lambda z: np.asarray([z[0], z[3]]),
    "np.stack-duals": lambda z: np.stack([z[0], z[1] * z[2]]),
    "np.stack-dualarrays": lambda z: np.stack([z[:2], z[2:]], axis=1),
    "np.hstack-duals": lambda z: np.hstack([z[0], z[1:3]]),
    "np.concatenate-lists": lambda z: np.concatenate([[z[0]], z[1:]]),
    "np.sum-list": lambda z: np.sum([z[0], z[1] ** 2]),
    "np.dot-list": lambda z: np.dot([z[0], z[1]], np.array([1.0, 2.0])),
    "ufunc-on-list": lambda z: np.sin([z[0], z[1]]),
    "arithmetic-on-object-array": lambda z: np.array([z[0], z[2]], dtype=object) * 2.0
    + z[1],
}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_build_arrays_of_tracers(name, rng):
    _check(BUILDERS[name], rng.standard_normal(4), name)


def test_np_array_of_duals_is_a_dualarray():
    seen = []

    def f(z):
        a = np.array([z[0], z[1]])
        seen.append(type(a))
        return np.sum(a * a)   # differentiable whether or not it is an object array

    g = dualad.grad(f)(np.array([1.0, 2.0]))
    assert_array_equal(g, [2.0, 4.0], err_msg="np.array of Duals")


OUTPUTS = {
    "list-of-duals": lambda z: [z[0] * z[1], z[1]],
    "list-with-constant": lambda z: [z[0] ** 2, 1.0],
    "tuple-of-duals": lambda z: (z[0], z[1] * 3.0),
    "object-array": lambda z: np.array([z[0] ** 2, z[1]], dtype=object),
    "object-array-filled": lambda z: _object_fill(z),
    "nested-list": lambda z: [[z[0], z[1]], [z[1] * z[0], 2.0]],
    "list-of-dualarrays": lambda z: [z * 2.0, z ** 2],
    "dual": lambda z: z[0] * z[1],
    "constant": lambda z: np.array([1.0, 2.0]),
    "python-float": lambda z: 3.0,
}


def _object_fill(z):
    out = np.empty(3, dtype=object)
    for i in range(3):
        out[i] = z[i % 2] * (i + 1.0)
    return out


@pytest.mark.parametrize("name", list(OUTPUTS))
def test_outputs_converted_at_boundary(name, rng):
    f = OUTPUTS[name]
    x = rng.standard_normal(2)
    jac = _check(f, x, name)
    assert isinstance(jac, (np.ndarray, np.floating)) and jac.dtype == np.float64, name


# -- arithmetic ----------------------------------------------------------------------------

OPS = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
       "div": lambda a, b: a / b, "pow": lambda a, b: a ** b}

OTHERS = {
    "ndarray": lambda z: np.array([1.5, 2.0, 0.7]),
    "ndarray-2d": lambda z: np.array([[1.5], [0.8]]),
    "python-float": lambda z: 1.7,
    "python-int": lambda z: 2,
    "np.float64": lambda z: np.float64(1.3),
    "np.int64": lambda z: np.int64(3),
    "0d-ndarray": lambda z: np.array(1.2),
    "list": lambda z: [1.1, 1.9, 0.6],
    "dual": lambda z: z[1] * 0.5 + 1.0,
    "dualarray": lambda z: np.exp(z[::-1]),
    "dualarray-2d": lambda z: np.reshape(z, (3, 1)) * z + 1.0,
}


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("other", list(OTHERS))
@pytest.mark.parametrize("op", list(OPS))
def test_arithmetic_with_other_operands(op, other, side, rng):
    fop, fother = OPS[op], OTHERS[other]

    def f(z):
        a = np.exp(z * 0.3)  # positive base for pow
        o = fother(z)
        return fop(a, o) if side == "left" else fop(o, a)

    x = rng.uniform(-1.0, 1.0, 3)
    _check(f, x, f"{op} ({side}) with {other}")


@pytest.mark.parametrize("op", ["neg", "pos", "abs", "matmul-vec", "rmatmul-vec",
                                "compare-where"])
def test_unary_and_matmul_operators(op, rng):
    m = rng.standard_normal((3, 3))
    fs = {"neg": lambda z: -z, "pos": lambda z: +z, "abs": lambda z: abs(z),
          "matmul-vec": lambda z: z @ m, "rmatmul-vec": lambda z: m @ z,
          "compare-where": lambda z: np.where(z > 0.1, z, -z) * (z < 5.0)}
    _check(fs[op], np.array([0.5, -0.8, 1.2]), op)


@pytest.mark.parametrize("shapes", [((3, 1), (1, 4)), ((4,), (3, 4)), ((2, 1, 3), (4, 1)),
                                    ((), (2, 3)), ((3, 4), ())],
                         ids=["col-row", "vec-mat", "3d", "0d-left", "0d-right"])
def test_broadcasting_both_traced(shapes, rng):
    sa, sb = shapes
    na, nb = int(np.prod(sa)), int(np.prod(sb))

    def f(z):
        a = np.reshape(z[:na], sa)
        b = np.reshape(z[na:], sb)
        return a * b + np.sin(a) - b / (2.0 + a ** 2)

    _check(f, rng.standard_normal(na + nb), f"broadcast {sa} with {sb}")


@pytest.mark.parametrize("shapes", [((3,), (2, 3)), ((2, 1), (2, 3)), ((2, 3), (3,))])
def test_broadcasting_with_constant(shapes, rng):
    sx, sc = shapes
    c = rng.standard_normal(sc)
    _check(lambda z: z * c + c ** 2 / (1.0 + z ** 2), rng.standard_normal(sx),
           f"broadcast traced {sx} with constant {sc}")


BINARY_PATH_UFUNCS = [np.add, np.subtract, np.multiply, np.true_divide, np.power,
                      np.arctan2, np.hypot, np.maximum, np.minimum]

# (3, 4) runs the fused per-element loop; (10, 20) is above the size where values and
# partials come from NumPy's SIMD loops; a transposed view always takes the NumPy path.
PATH_SHAPES = [(3, 4), (10, 20)]


@pytest.mark.parametrize("shape", PATH_SHAPES, ids=lambda s: str(s))
@pytest.mark.parametrize("fn", [np.sin, np.exp, np.log, np.sqrt, np.tanh, np.arctan,
                                np.square, np.reciprocal, np.cbrt, np.log1p, np.negative,
                                np.absolute],
                         ids=lambda f: f.__name__)
def test_fast_and_generic_paths_agree_unary(fn, shape, rng):
    x = rng.uniform(0.5, 2.0, shape)
    v = rng.standard_normal((3,) + shape)
    fast = _push(lambda z: fn(z), x, v)
    generic = _push(lambda z: fn(z.T).T, x, v)
    # Same formula on both paths; libm and NumPy's SIMD loops may differ in the last bit
    # of ans, and a partial such as 1 - ans**2 (tanh) can amplify that tenfold.
    assert_allclose(fast[0], generic[0], rtol=1e-14, atol=0, err_msg=f"{fn.__name__} value")
    assert_allclose(fast[1], generic[1], rtol=1e-14, atol=0, err_msg=fn.__name__)


@pytest.mark.parametrize("shape", PATH_SHAPES, ids=lambda s: str(s))
@pytest.mark.parametrize("operands", ["both", "const-right", "const-left", "scalar"])
@pytest.mark.parametrize("fn", BINARY_PATH_UFUNCS, ids=lambda f: f.__name__)
def test_fast_and_generic_paths_agree_binary(fn, operands, shape, rng):
    x = rng.uniform(0.5, 2.0, (2,) + shape)
    c = rng.uniform(0.5, 2.0, shape)
    v = rng.standard_normal((3, 2) + shape)
    pick = {"both": lambda a, b: (a, b), "const-right": lambda a, b: (a, c),
            "const-left": lambda a, b: (c, b), "scalar": lambda a, b: (a, 1.7)}[operands]
    fast = _push(lambda z: fn(*pick(z[0], z[1])), x, v)
    generic = _push(lambda z: fn(*[_t(o) for o in pick(z[0], z[1])]).T, x, v)
    assert_allclose(fast[0], generic[0], rtol=1e-14, atol=0,
                    err_msg=f"{fn.__name__} {operands} value")
    assert_allclose(fast[1], generic[1], rtol=1e-14, atol=0,
                    err_msg=f"{fn.__name__} {operands} lanes")


@pytest.mark.parametrize("n", [12, 300])
@pytest.mark.parametrize("fn", BINARY_PATH_UFUNCS, ids=lambda f: f.__name__)
def test_lane_contiguous_slices_agree_with_generic_path(fn, n, rng):
    """x[1:] and x[:-1]: each lane is contiguous, the tangent stack is not."""
    x = rng.uniform(0.5, 2.0, n)
    v = rng.standard_normal((3, n))
    fast = _push(lambda z: fn(z[1:], z[:-1]), x, v)
    generic = _push(lambda z: fn(z[1:], z[:-1][None])[0], x, v)   # broadcasting: NumPy
    assert_allclose(fast[0], generic[0], rtol=1e-14, atol=0, err_msg=f"{fn.__name__} value")
    assert_allclose(fast[1], generic[1], rtol=1e-14, atol=0, err_msg=f"{fn.__name__} lanes")
    assert_allclose(fast[1], fd_jvps(lambda z: fn(z[1:], z[:-1]), x, v), rtol=RTOL_FD,
                    atol=ATOL_FD, err_msg=f"{fn.__name__} vs finite differences")


def fd_jvps(f, x, v):
    jac = fd_jacobian(f, x)
    return np.stack([jac @ vi for vi in v])


def _t(o):
    return o.T if np.ndim(o) >= 2 else o


def _push(f, x, v):
    """Value and the k lanes of one forward sweep with tangent lanes ``v`` (k, *x.shape)."""
    value, tangent = dualad.forward.push(f, np.asarray(x, dtype=float), v)
    return np.asarray(value), np.asarray(tangent)


def test_zero_tangent_annihilates_infinite_partial():
    """sqrt(x**2) at 0: sqrt'(0) = inf meets a zero tangent, giving 0 (not NaN)."""
    g = dualad.grad(lambda z: np.sum(np.sqrt(z ** 2)))(np.array([0.0, -2.0]))
    assert_array_equal(g, [0.0, -1.0], err_msg="sqrt(x**2)")


@pytest.mark.parametrize("n", [5, 300], ids=["loop", "vector"])
@pytest.mark.parametrize("reflected", [False, True], ids=["dual*t", "t*dual"])
def test_dual_times_array_lanes_follow_the_product_rule(n, reflected, rng):
    # Dual x array takes a shortcut that skips the non-finite scan when the Dual's
    # partials are finite; with an infinite partial the zero entries of t annihilate it
    t = rng.standard_normal(n)
    t[::3] = 0.0
    for partials in ([0.5, -2.0, 0.0], [np.inf, 1.0, -np.inf]):
        d = Dual(1.5, partials, tag=dualad._tags.new_tag())
        r = t * d if reflected else d * t
        assert type(r) is DualArray
        assert_array_equal(r.value, 1.5 * t)
        for lane, p in enumerate(partials):
            with np.errstate(invalid="ignore"):  # (the reference's own inf * 0)
                expected = np.where(t == 0.0, 0.0, p * t) if np.isinf(p) else p * t
            assert_array_equal(r.tangent[lane], expected, err_msg=f"lane {lane}, {p}")


@pytest.mark.parametrize("n", [7, 150], ids=["loop", "vector"])
@pytest.mark.parametrize("op", ["multiply", "add", "dual*array"])
def test_infinite_tangent_meets_zero_partial_in_two_operand_products(op, n, rng):
    # both operands' lane terms are combined in one pass; an infinite tangent against a
    # zero partial must still give 0 (the annihilation convention), not nan
    tag = dualad._tags.new_tag()
    av, bv = rng.standard_normal(n), rng.standard_normal(n)
    bv[::4] = 0.0                      # zero partial d(a*b)/da where b == 0
    at, bt = rng.standard_normal((2, n)), rng.standard_normal((2, n))
    at[0, ::4] = np.inf                # ... against an infinite tangent of a
    a, b = DualArray(av, at, tag), DualArray(bv, bt, tag)
    if op == "multiply":
        r, d_a, d_b = a * b, bv, av
    elif op == "add":
        r, d_a, d_b = a + b, np.ones(n), np.ones(n)
    else:
        d = Dual(0.0, [0.0, 1.0], tag)   # zero value: d(d*b)/db = 0 meets b's tangents
        bt[1, ::3] = np.inf
        b = DualArray(bv, bt, tag)
        r = d * b
        expected = np.stack([np.where(bv == 0.0, 0.0, 0.0 * bv),
                             bv + np.where(np.isinf(bt[1]), 0.0, 0.0)])
        assert_array_equal(r.tangent, expected)
        return
    with np.errstate(invalid="ignore"):
        expected = (np.where((d_a == 0.0) | (at == 0.0), 0.0, d_a * at)
                    + np.where((d_b == 0.0) | (bt == 0.0), 0.0, d_b * bt))
    assert_array_equal(r.tangent, expected, err_msg=f"{op}, n={n}")
    assert not np.isnan(r.tangent).any()


# -- awkward inputs -----------------------------------------------------------------------

def _f_awkward(z):
    y = z * 1.0
    y[0] = z[-1] ** 2
    return np.sin(y) * z[::-1]


@pytest.mark.parametrize("kind", ["non-contiguous", "read-only", "read-only-non-contiguous",
                                  "fortran", "transposed", "int", "bool", "list",
                                  "int-list", "float32", "big-endian"])
def test_awkward_inputs(kind):
    base = np.arange(10.0)
    x = {"non-contiguous": lambda: base[::2],
         "read-only": lambda: _readonly(np.arange(5.0)),
         "read-only-non-contiguous": lambda: _readonly(np.arange(10.0)[::2]),
         "fortran": lambda: np.asfortranarray(np.arange(6.0).reshape(2, 3)),
         "transposed": lambda: np.arange(6.0).reshape(3, 2).T,
         "int": lambda: np.arange(5),
         "bool": lambda: np.array([True, False, True]),
         "list": lambda: [0.5, 1.0, 2.0],
         "int-list": lambda: [1, 2, 3],
         "float32": lambda: np.arange(4, dtype=np.float32),
         "big-endian": lambda: np.arange(4.0).astype(">f8")}[kind]()
    before = np.array(x, copy=True)
    xf = np.asarray(x, dtype=np.float64)
    jac = dualad.jacobian(_f_awkward)(x)
    assert jac.dtype == np.float64, kind
    assert_allclose(jac, fd_jacobian(_f_awkward, xf.copy()), rtol=RTOL_FD, atol=ATOL_FD,
                    err_msg=kind)
    assert_array_equal(np.asarray(x), before, err_msg=f"{kind}: input modified")


def _readonly(a):
    a.setflags(write=False)
    return a


def test_readonly_input_setitem_inside():
    x = _readonly(np.arange(10.0)[::2])

    def f(z):
        z[1] = z[0] * 3.0
        z[2:] += 1.0
        return z

    jac = _check(f, x, "read-only + setitem")
    assert jac.shape == (5, 5)


@pytest.mark.parametrize("x", [np.arange(3), np.array(2), 4, [1, 2]],
                         ids=["int-array", "int-0d", "python-int", "int-list"])
def test_integer_input_promoted_output_float64(x):
    jac = dualad.jacobian(lambda z: z ** 2 / 2.0 + 1)(x)
    assert np.asarray(jac).dtype == np.float64
    xf = np.asarray(x, dtype=float)
    assert_allclose(np.reshape(jac, (xf.size, xf.size)), np.diag(xf.ravel()), rtol=0,
                    atol=0, err_msg="promoted integer input")
    val, tan = dualad.jvp(lambda z: z * 2 + z, x, np.ones_like(xf))
    assert np.asarray(val).dtype == np.float64 and np.asarray(tan).dtype == np.float64


def test_integer_valued_function_output_is_float64():
    # a constant integer output still comes back as a float64 Jacobian
    jac = dualad.jacobian(lambda z: np.array([1, 2]))(np.ones(3))
    assert jac.dtype == np.float64 and jac.shape == (2, 3)


# -- ufunc methods -------------------------------------------------------------------------

UFUNC_METHODS = {
    "add.reduce-1d": (lambda z: np.add.reduce(z), (5,)),
    "add.reduce-2d": (lambda z: np.add.reduce(z), (3, 4)),
    "add.reduce-axis1": (lambda z: np.add.reduce(z, axis=1), (3, 4)),
    "add.reduce-axisNone": (lambda z: np.add.reduce(z, axis=None), (3, 4)),
    "add.reduce-keepdims": (lambda z: np.add.reduce(z, axis=0, keepdims=True), (3, 4)),
    "multiply.reduce-2d": (lambda z: np.multiply.reduce(z), (3, 4)),
    "maximum.reduce-2d": (lambda z: np.maximum.reduce(z), (3, 4)),
    "add.accumulate-1d": (lambda z: np.add.accumulate(z), (5,)),
    "add.accumulate-2d": (lambda z: np.add.accumulate(z), (3, 4)),
    "add.accumulate-axis1": (lambda z: np.add.accumulate(z, axis=1), (3, 4)),
    "multiply.accumulate-2d": (lambda z: np.multiply.accumulate(z), (3, 4)),
    "multiply.outer": (lambda z: np.multiply.outer(z[:2], z[2:]), (5,)),
    "multiply.outer-const": (lambda z: np.multiply.outer(z, np.arange(1.0, 3.0)), (3,)),
    "multiply.outer-2d": (lambda z: np.multiply.outer(z, z[0]), (2, 3)),
    "add.outer": (lambda z: np.add.outer(z, z), (3,)),
    "subtract.outer-const-left": (lambda z: np.subtract.outer(np.arange(2.0), z), (3,)),
}


@pytest.mark.parametrize("name", list(UFUNC_METHODS))
def test_ufunc_methods(name, rng):
    f, shape = UFUNC_METHODS[name]
    # distinct values, so maximum.reduce has no ties within the FD steps
    x = (rng.permutation(int(np.prod(shape))) * 0.31 + 0.2).reshape(shape)
    _check(f, x, f"np.{name}")
