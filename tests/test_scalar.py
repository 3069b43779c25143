"""``Dual``: operators (forward and reflected), comparisons, conversions, pickling, lanes.

References are written out by hand from calculus (``d(x*y) = y dx + x dy``...), not taken
from dualad's rule table, so they are independent of the code under test.  Values are
compared with ``assert_allclose`` at a few ulps (``RTOL``): the Dual path and the
reference do the same floating-point operations up to ordering.
"""

import copy
import math
import operator
import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import dualad
from dualad import Dual, DualArray

RTOL = 1e-14

# ---------------------------------------------------------------------------------------
# reference calculus: value and partials (d/dx, d/dy) of each operator

REFERENCE = {
    "+": (lambda x, y: x + y, lambda x, y: (1.0, 1.0)),
    "-": (lambda x, y: x - y, lambda x, y: (1.0, -1.0)),
    "*": (lambda x, y: x * y, lambda x, y: (y, x)),
    "/": (lambda x, y: x / y, lambda x, y: (1.0 / y, -x / (y * y))),
    "**": (lambda x, y: x ** y,
           lambda x, y: (y * x ** (y - 1.0), x ** y * math.log(x) if x > 0 else 0.0)),
}
OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul,
             "/": operator.truediv, "**": operator.pow}
OPS = list(OPERATORS)

#: Constants of every numeric type a Dual meets: (label, constant, its float value).
CONSTANTS = [
    ("float", 1.75, 1.75),
    ("int", 3, 3.0),
    ("negative int", -2, -2.0),
    ("np.float64", np.float64(1.75), 1.75),
    ("np.int64", np.int64(3), 3.0),
    ("np.float32", np.float32(1.75), 1.75),  # exactly representable in float32
    ("np.int32", np.int32(2), 2.0),
    ("bool", True, 1.0),
]


def _expected(op, x, tx, y, ty):
    """(value, partials) of ``x op y`` with tangents tx, ty (None for a constant)."""
    f, d = REFERENCE[op]
    dx, dy = d(x, y)
    k = len(tx) if tx is not None else len(ty)
    partials = np.zeros(k)
    if tx is not None:
        partials = partials + dx * np.asarray(tx)
    if ty is not None:
        partials = partials + dy * np.asarray(ty)
    return f(x, y), partials


def _check(r, value, partials, label, tag=0):
    assert type(r) is Dual, f"{label}: got {type(r).__name__}"
    assert r.tag == tag, f"{label}: tag {r.tag}"
    assert_allclose(r.value, value, rtol=RTOL, atol=0, err_msg=f"{label}: value")
    scale = np.max(np.abs(partials), initial=0.0)
    assert_allclose(r.partials, partials, rtol=RTOL, atol=RTOL * scale,
                    err_msg=f"{label}: partials")


# ---------------------------------------------------------------------------------------
# operators

@pytest.mark.parametrize("const", CONSTANTS, ids=[c[0] for c in CONSTANTS])
@pytest.mark.parametrize("op", OPS)
def test_operator_with_constant_on_the_right(op, const):
    label, c, cv = const
    tx = [1.0, -0.5, 2.0]
    x = 1.3
    r = OPERATORS[op](Dual(x, tx), c)
    value, partials = _expected(op, x, tx, cv, None)
    _check(r, value, partials, f"Dual({x}) {op} {label} {c!r}")


@pytest.mark.parametrize("const", CONSTANTS, ids=[c[0] for c in CONSTANTS])
@pytest.mark.parametrize("op", OPS)
def test_operator_with_constant_on_the_left(op, const):
    label, c, cv = const
    if op == "**" and cv < 0:
        pytest.skip("a negative base to a real power is not real")
    ty = [1.0, -0.5, 2.0]
    y = 1.3
    r = OPERATORS[op](c, Dual(y, ty))
    value, partials = _expected(op, cv, None, y, ty)
    _check(r, value, partials, f"{label} {c!r} {op} Dual({y})")


@pytest.mark.parametrize("op", OPS)
def test_operator_between_duals(op):
    x, tx = 1.3, np.array([1.0, 0.0, 0.5])
    y, ty = 0.7, np.array([0.0, 1.0, -2.0])
    value, partials = _expected(op, x, tx, y, ty)
    _check(OPERATORS[op](Dual(x, tx), Dual(y, ty)), value, partials, f"Dual {op} Dual")


@pytest.mark.parametrize("op", OPS)
def test_operator_of_a_dual_with_itself(op):
    x, tx = 1.3, np.array([1.0, -3.0])
    d = Dual(x, tx)
    value, partials = _expected(op, x, tx, x, tx)
    _check(OPERATORS[op](d, d), value, partials, f"d {op} d")


@pytest.mark.parametrize("op", OPS)
def test_operator_with_ndarray_gives_dual_array(op):
    x, tx = 1.3, np.array([1.0, -0.5])
    arr = np.array([0.5, 1.0, 2.5])
    for r, left in ((OPERATORS[op](Dual(x, tx), arr), True),
                    (OPERATORS[op](arr, Dual(x, tx)), False)):
        assert type(r) is DualArray, op
        assert r.value.shape == (3,) and r.tangent.shape == (2, 3)
        for j, a in enumerate(arr):
            value, partials = (_expected(op, x, tx, a, None) if left
                               else _expected(op, a, None, x, tx))
            assert_allclose(r.value[j], value, rtol=RTOL, err_msg=f"{op}, left={left}")
            assert_allclose(r.tangent[:, j], partials, rtol=RTOL, atol=1e-15,
                            err_msg=f"{op}, left={left}")


POWER_CASES = [
    # (label, base, base tangent or None, exponent, exponent tangent or None,
    #  value, derivative)
    ("x**2 int", 3.0, 1.0, 2, None, 9.0, 6.0),
    ("x**2.0", 3.0, 1.0, 2.0, None, 9.0, 6.0),
    ("x**3 negative base", -2.0, 1.0, 3, None, -8.0, 12.0),
    ("x**2.0 negative base", -3.0, 1.0, 2.0, None, 9.0, -6.0),
    ("x**-1", 2.0, 1.0, -1, None, 0.5, -0.25),
    ("x**0.5", 4.0, 1.0, 0.5, None, 2.0, 0.25),
    ("x**0", 5.0, 1.0, 0, None, 1.0, 0.0),
    ("x**1", 5.0, 1.0, 1, None, 5.0, 1.0),
    ("2**y", 2.0, None, 3.0, 1.0, 8.0, 8.0 * math.log(2.0)),
    ("2.0**y negative y", 2.0, None, -1.0, 1.0, 0.5, 0.5 * math.log(2.0)),
    ("e**y", math.e, None, 1.5, 1.0, math.exp(1.5), math.exp(1.5)),
    ("1**y", 1.0, None, 7.0, 1.0, 1.0, 0.0),
    ("x**y", 2.0, 1.0, 3.0, 1.0, 8.0, 12.0 + 8.0 * math.log(2.0)),
    ("x**y only y traced", 2.0, 0.0, 3.0, 1.0, 8.0, 8.0 * math.log(2.0)),
]


@pytest.mark.parametrize("case", POWER_CASES, ids=[c[0] for c in POWER_CASES])
def test_power(case):
    label, x, tx, y, ty, value, derivative = case
    base = Dual(x, [tx]) if tx is not None else x
    expo = Dual(y, [ty]) if ty is not None else y
    r = base ** expo
    _check(r, value, [derivative], label)
    _check(np.power(base, expo), value, [derivative], "np.power: " + label)
    _check(pow(base, expo), value, [derivative], "pow(): " + label)


def test_power_of_dual_with_itself():
    # d/dx x**x = x**x (log x + 1)
    x = 1.7
    d = Dual(x, [1.0])
    _check(d ** d, x ** x, [x ** x * (math.log(x) + 1.0)], "x**x")


def test_three_argument_pow_is_rejected():
    with pytest.raises(TypeError):
        pow(Dual(2.0, [1.0]), 2, 3)


def test_unary_operators():
    d = Dual(-1.5, [1.0, -2.0, 0.0])
    _check(-d, 1.5, [-1.0, 2.0, 0.0], "-d")
    _check(+d, -1.5, [1.0, -2.0, 0.0], "+d")
    _check(abs(d), 1.5, [-1.0, 2.0, 0.0], "abs(d) at -1.5")
    _check(abs(Dual(2.0, [1.0, 3.0])), 2.0, [1.0, 3.0], "abs(d) at 2")
    _check(abs(Dual(0.0, [1.0, 3.0])), 0.0, [0.0, 0.0], "abs'(0) = 0")
    _check(abs(Dual(-0.0, [1.0])), 0.0, [0.0], "abs'(-0) = 0")
    _check(np.negative(d), 1.5, [-1.0, 2.0, 0.0], "np.negative")
    _check(np.positive(d), -1.5, [1.0, -2.0, 0.0], "np.positive")


def test_operators_keep_the_tag():
    a, b = Dual(1.0, [1.0], tag=7), Dual(2.0, [0.5], tag=7)
    for r in (a + b, a * 2.0, 2.0 - a, a / b, a ** 2, 2 ** a, -a, abs(a), np.sin(a)):
        assert r.tag == 7


def test_duals_of_one_tag_with_different_lanes_are_rejected():
    with pytest.raises(ValueError):
        Dual(1.0, [1.0, 0.0]) * Dual(2.0, [1.0, 0.0, 0.0])


@pytest.mark.parametrize("other", ["a", None, [1.0], object()],
                         ids=["str", "None", "list", "object"])
def test_operators_with_unsupported_types_raise_type_error(other):
    d = Dual(1.0, [1.0])
    for op in OPERATORS.values():
        with pytest.raises(TypeError):
            op(d, other)
        with pytest.raises(TypeError):
            op(other, d)


def test_complex_operands_are_rejected():
    d = Dual(1.0, [1.0])
    for op in OPERATORS.values():
        with pytest.raises(TypeError):
            op(d, 1j)
        with pytest.raises(TypeError):
            op(1j, d)
        with pytest.raises(TypeError):
            op(d, np.complex128(1.0))


# ---------------------------------------------------------------------------------------
# comparisons

COMPARISONS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
COMPARE_WITH = [("float", 2.0), ("int", 2), ("np.float64", np.float64(2.0)),
                ("np.int64", np.int64(2)), ("Dual", Dual(2.0, [5.0, -1.0])),
                ("Dual other tag", Dual(2.0, [3.0], tag=9))]


@pytest.mark.parametrize("other", COMPARE_WITH, ids=[c[0] for c in COMPARE_WITH])
@pytest.mark.parametrize("cmp", list(COMPARISONS))
@pytest.mark.parametrize("x", [1.0, 2.0, 3.0])
def test_ordering_compares_values(x, cmp, other):
    label, o = other
    f = COMPARISONS[cmp]
    d = Dual(x, [1.0, 0.0])
    ov = o.value if isinstance(o, Dual) else float(o)
    assert bool(f(d, o)) == f(x, ov), f"Dual({x}) {cmp} {label}"
    assert bool(f(o, d)) == f(ov, x), f"{label} {cmp} Dual({x})"


def test_ordering_with_nan_is_false():
    d = Dual(float("nan"), [1.0])
    for f in COMPARISONS.values():
        assert not f(d, 1.0) and not f(1.0, d)


def test_equality_compares_all_components():
    d = Dual(2.0, [1.0, -1.0], tag=3)
    assert d == Dual(2.0, [1.0, -1.0], tag=3)
    assert not d != Dual(2.0, [1.0, -1.0], tag=3)
    assert d != Dual(2.0, [1.0, -0.5], tag=3)  # partials differ
    assert d != Dual(2.5, [1.0, -1.0], tag=3)  # value differs
    assert d != Dual(2.0, [1.0, -1.0], tag=4)  # tag differs
    assert d != Dual(2.0, [1.0, -1.0, 0.0], tag=3)  # lanes differ
    assert d != 2.0 and 2.0 != d  # a constant has zero partials
    assert Dual(2.0, [0.0, 0.0]) == 2.0
    assert 2 == Dual(2.0, [0.0])
    assert Dual(2.0, [0.0]) == np.float64(2.0)
    assert not Dual(float("nan"), [0.0]) == float("nan")
    assert d != "2.0"


NUMERIC_TWOS = [2, 2.0, np.float64(2.0), np.int64(2), np.int32(2), np.float32(2.0),
               np.uint8(2), True + 1]


@pytest.mark.parametrize("two", NUMERIC_TWOS, ids=lambda c: type(c).__name__)
def test_equality_with_numbers_of_every_type(two):
    """A number is a Dual with zero partials, whatever its type: == sees the partials."""
    assert not (Dual(2.0, [1.0]) == two) and not (two == Dual(2.0, [1.0]))
    assert Dual(2.0, [1.0]) != two and two != Dual(2.0, [1.0])
    assert Dual(2.0, [0.0]) == two and two == Dual(2.0, [0.0])
    assert not (Dual(3.0, [0.0]) == two)


def test_hash_is_consistent_with_equality():
    assert hash(Dual(2.0, [0.0])) == hash(2.0)
    a, b = Dual(2.0, [1.0, 3.0], tag=1), Dual(2.0, [1.0, 3.0], tag=1)
    assert a == b and hash(a) == hash(b)
    assert len({a, b, Dual(2.0, [1.0, 3.0], tag=2)}) == 2


@pytest.mark.parametrize("value, expected", [(0.0, False), (-0.0, False), (2.0, True),
                                             (-1e-300, True), (float("nan"), True),
                                             (float("inf"), True)])
def test_bool_is_the_truth_of_the_value(value, expected):
    assert bool(Dual(value, [1.0])) is expected
    assert bool(Dual(value, [0.0, 0.0])) is expected


# ---------------------------------------------------------------------------------------
# construction, attributes, conversions

def test_constructor():
    d = Dual(2)
    assert d.value == 2.0 and type(d.value) is float
    assert_array_equal(d.partials, [1.0])
    assert d.tag == 0
    d = Dual(np.float32(1.5), partials=np.array([1, 2]), tag=4)
    assert d.value == 1.5 and d.tag == 4
    assert d.partials.dtype == np.float64
    assert_array_equal(d.partials, [1.0, 2.0])
    assert Dual(1.0, []).partials.shape == (0,)
    assert (d.shape, d.ndim, d.size) == ((), 0, 1)


@pytest.mark.parametrize("args, error", [
    ((1j,), TypeError), ((1.0, [1j]), TypeError), (("1.0",), TypeError),
    ((None,), TypeError), ((1.0, [[1.0]]), ValueError), ((Dual(1.0),), TypeError),
], ids=["complex value", "complex partials", "str", "None", "2-d partials", "Dual value"])
def test_constructor_rejects_bad_input(args, error):
    with pytest.raises(error):
        Dual(*args)


def test_partials_is_a_copy():
    d = Dual(1.0, [1.0, 2.0])
    p = d.partials
    assert p.dtype == np.float64 and p.shape == (2,)
    p[0] = 99.0
    assert_array_equal(d.partials, [1.0, 2.0])


@pytest.mark.parametrize("name", ["value", "partials", "tag", "k", "p", "new_attribute"])
def test_attributes_are_read_only(name):
    d = Dual(1.0, [1.0, 2.0], tag=1)
    with pytest.raises(AttributeError):
        setattr(d, name, 5.0)
    with pytest.raises((AttributeError, TypeError)):
        delattr(d, name)
    assert d == Dual(1.0, [1.0, 2.0], tag=1)


@pytest.mark.parametrize("k", [0, 2, 13])
def test_init_cannot_mutate(k):
    """Calling __init__ again must not change a Dual (it is hashable and shared)."""
    parts = np.arange(k, dtype=float)
    d = Dual(1.0, parts, tag=1)
    with pytest.raises(TypeError):
        d.__init__(5.0, [7.0, 8.0], tag=2)
    assert d.value == 1.0 and d.tag == 1
    assert_array_equal(d.partials, parts)


def test_conversions_that_would_drop_the_derivative_raise():
    d = Dual(1.0, [1.0])
    for conv in (float, int, complex, operator.index, math.sin, math.exp, math.floor):
        with pytest.raises(TypeError):
            conv(d)


@pytest.mark.parametrize("k", [0, 1, 3, 12, 13, 40])
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_round_trip(k, protocol):
    d = Dual(-1.25, np.linspace(-1.0, 2.0, k), tag=5)
    e = pickle.loads(pickle.dumps(d, protocol=protocol))
    assert type(e) is Dual
    assert e == d
    assert e.value == d.value and e.tag == 5
    assert_array_equal(e.partials, d.partials)
    assert copy.copy(d) == d and copy.deepcopy(d) == d


def test_repr_round_trips():
    d = Dual(1.5, [1.0, -2.25], tag=3)
    assert repr(d) == "Dual(1.5, partials=[1.0, -2.25], tag=3)"
    assert eval(repr(d), {"Dual": Dual}) == d  # noqa: S307
    big = Dual(0.1, np.arange(13.0) / 7.0)
    assert eval(repr(big), {"Dual": Dual}) == big  # noqa: S307 - exact float repr


# ---------------------------------------------------------------------------------------
# lanes: more than the inline storage (12) go on the heap

@pytest.mark.parametrize("k", [1, 12, 13, 40])
def test_many_lanes(k):
    rng = np.random.default_rng(k)
    tx, ty = rng.standard_normal(k), rng.standard_normal(k)
    x, y = 1.2, 0.8
    a, b = Dual(x, tx), Dual(y, ty)
    assert a.partials.shape == (k,)
    _check(a * b, x * y, y * tx + x * ty, f"a * b, k={k}")
    _check(a / b, x / y, tx / y - x * ty / y ** 2, f"a / b, k={k}")
    _check(a + 2, x + 2, tx, f"a + 2, k={k}")
    _check(2.0 - a, 2.0 - x, -tx, f"2 - a, k={k}")
    _check(a ** 3, x ** 3, 3 * x ** 2 * tx, f"a ** 3, k={k}")
    _check(-a, -x, -tx, f"-a, k={k}")
    _check(np.sin(a), math.sin(x), math.cos(x) * tx, f"sin(a), k={k}")
    _check(np.exp(a) * np.log(b), math.exp(x) * math.log(y),
           math.exp(x) * math.log(y) * tx + math.exp(x) / y * ty, f"exp(a) log(b), k={k}")
    _check(np.arctan2(a, b), math.atan2(x, y),
           (y * tx - x * ty) / (x * x + y * y), f"arctan2(a, b), k={k}")


def test_lane_storage_is_not_shared_through_the_freelist():
    """Duals of inline and heap storage created and freed in turn keep their partials."""
    rng = np.random.default_rng(3)
    for _ in range(50):
        keep = []
        for k in (1, 13, 3, 40, 12, 0, 25):
            t = rng.standard_normal(k)
            d = Dual(0.5, t)
            r = d * d + d  # results from the C factory
            keep.append((d, r, t))
        del d, r
        for d, r, t in keep:
            assert_array_equal(d.partials, t)
            assert_allclose(r.partials, 2.0 * t, rtol=RTOL, atol=1e-15)
        del keep


# ---------------------------------------------------------------------------------------
# object arrays of Duals: NumPy's object loops call the methods of the same name

def test_object_array_of_duals():
    d1, d2 = Dual(0.5, [1.0, 0.0]), Dual(-2.0, [0.0, 1.0])
    arr = np.array([d1, d2])
    assert arr.dtype == object and arr.shape == (2,)
    s = np.sin(arr)
    assert all(type(e) is Dual for e in s)
    _check(s[0], math.sin(0.5), [math.cos(0.5), 0.0], "np.sin(arr)[0]")
    _check(s[1], math.sin(-2.0), [0.0, math.cos(-2.0)], "np.sin(arr)[1]")
    e = np.exp(arr)
    _check(e[1], math.exp(-2.0), [0.0, math.exp(-2.0)], "np.exp(arr)[1]")
    total = np.sin(arr).sum()
    _check(total, math.sin(0.5) + math.sin(-2.0), [math.cos(0.5), math.cos(-2.0)],
           "np.sin(arr).sum()")
    _check(np.sum(np.exp(arr)), math.exp(0.5) + math.exp(-2.0),
           [math.exp(0.5), math.exp(-2.0)], "np.sum(np.exp(arr))")
    _check(np.sum(arr * arr), 0.25 + 4.0, [1.0, -4.0], "sum(arr * arr)")
    _check(np.dot(arr, arr), 0.25 + 4.0, [1.0, -4.0], "dot(arr, arr)")
    sq = np.sqrt(arr * arr)
    _check(sq[0], 0.5, [1.0, 0.0], "sqrt(arr * arr)[0]")
    _check(sq[1], 2.0, [0.0, -1.0], "sqrt(arr * arr)[1]")


def test_object_array_ops_leave_no_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        arr = np.array([Dual(0.0, [1.0]), Dual(-2.0, [1.0]), Dual(1.0, [1.0])])
        np.sqrt(arr * arr)
        arr ** 2.0
        np.abs(arr)
        np.cbrt(arr * arr)
        np.arcsin(np.array([Dual(1.0, [1.0]), Dual(-1.0, [1.0])]))
        np.hypot(arr * 0.0, arr * 0.0)
    assert not caught, [str(w.message) for w in caught]


def test_scalar_derivatives_through_the_transform():
    """derivative() hands the function a Dual; the operators above compose."""
    f = lambda x: (3 * x ** 2 - 2.0 / x + x * np.sin(x)) / (1 + x)  # noqa: E731
    x = 1.3

    def fprime(x):
        u = 3 * x ** 2 - 2.0 / x + x * math.sin(x)
        du = 6 * x + 2.0 / x ** 2 + math.sin(x) + x * math.cos(x)
        return (du * (1 + x) - u) / (1 + x) ** 2

    assert_allclose(dualad.derivative(f)(x), fprime(x), rtol=RTOL)
    assert_allclose(dualad.derivative(f)(np.float64(x)), fprime(x), rtol=RTOL)
    assert_allclose(dualad.derivative(lambda t: t ** 2)(3), 6.0, rtol=0)
