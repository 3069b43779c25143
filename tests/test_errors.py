"""Every refusal raises the documented exception with a message that names the cause and
the fix (DESIGN.md, "Errors"): nothing returns a wrong number silently."""

import math

import numpy as np
import pytest

import dualad

X = np.array([1.0, 2.0, 3.0])


def _jac(f, x=X):
    return dualad.jacobian(f)(x)


def _der(f, x=1.5):
    return dualad.derivative(f)(x)


# -- conversions that would drop the derivative --------------------------------------------

CONVERSIONS = {
    "float(Dual)": (lambda: _der(lambda t: float(t)), "float()"),
    "int(Dual)": (lambda: _der(lambda t: int(t)), "int()"),
    "math.sin(Dual)": (lambda: _der(lambda t: math.sin(t)), "math"),
    "math.exp(Dual)": (lambda: _der(lambda t: math.exp(t)), "math"),
    "math.sqrt(Dual)": (lambda: _der(lambda t: math.sqrt(t)), "math"),
    "float(element)": (lambda: _jac(lambda z: float(z[0])), "float()"),
    "int(element)": (lambda: _jac(lambda z: int(z[1])), "int()"),
    "math.sin(element)": (lambda: _jac(lambda z: math.sin(z[0])), "math"),
    "math.exp(element)": (lambda: _jac(lambda z: math.exp(z[2]) * z), "math"),
    "float(DualArray)": (lambda: _jac(lambda z: float(z[:1])), "float()"),
    "math.sin(DualArray)": (lambda: _jac(lambda z: math.sin(z[1:2])), "math"),
    "float(0-d DualArray)": (lambda: _jac(lambda z: float(z), np.array(2.0)), "float()"),
    "int(element) in range": (lambda: _jac(lambda z: z * len(range(int(z[0])))), "int()"),
}


@pytest.mark.parametrize("name", list(CONVERSIONS))
def test_conversion_to_python_number_raises(name):
    call, what = CONVERSIONS[name]
    with pytest.raises(TypeError) as err:
        call()
    msg = str(err.value)
    assert what in msg, f"{name}: {msg}"
    assert "drop its derivative" in msg, f"{name}: {msg}"
    assert "np.sin(x), not math.sin(x)" in msg, f"{name}: {msg}"
    assert ".value" in msg, f"{name}: the message should say how to read the number: {msg}"


def _store_element(z):
    a = np.zeros(3)
    a[0] = z[0]
    return a


def _store_slice(z):
    a = np.zeros(3)
    a[1:] = z[:2] * 2.0
    return a


def _store_whole(z):
    a = np.empty(3)
    a[:] = z
    return a


def _store_dual_from_derivative(t):
    a = np.ones(2)
    a[1] = t ** 2
    return a


@pytest.mark.parametrize("f,x", [(_store_element, X), (_store_slice, X), (_store_whole, X),
                                 (_store_dual_from_derivative, 2.0)],
                         ids=["element", "slice", "whole", "derivative"])
def test_storing_tracer_into_plain_array_raises(f, x):
    call = (lambda: _jac(f, x)) if np.ndim(x) else (lambda: _der(f, x))
    with pytest.raises(TypeError) as err:
        call()
    msg = str(err.value)
    assert "np.zeros_like" in msg, f"{f.__name__}: {msg}"
    assert "plain float ndarray" in msg, f"{f.__name__}: {msg}"


@pytest.mark.parametrize("key", ["dual", "dual-in-tuple"])
def test_indexing_with_a_tracer_raises(key):
    f = (lambda z: z[z[0]]) if key == "dual" else (lambda z: z[0, z[1]])
    x = np.zeros(3) if key == "dual" else np.zeros((2, 2))
    with pytest.raises(TypeError, match="drop its derivative"):
        _jac(f, x)


# -- unsupported NumPy functions -----------------------------------------------------------

UNSUPPORTED = {
    "fft": (lambda z: np.fft.fft(z), "numpy.fft.fft"),
    "rfft": (lambda z: np.fft.rfft(z), "numpy.fft.rfft"),
    "svd": (lambda z: np.linalg.svd(z.reshape(1, 3)), "numpy.linalg.svd"),
    "unique": (lambda z: np.unique(z), "numpy.unique"),
    "mod": (lambda z: np.mod(z, 2.0), "numpy.remainder"),
    "remainder": (lambda z: np.remainder(z, 2.0), "numpy.remainder"),
    "fmod": (lambda z: np.fmod(z, 2.0), "numpy.fmod"),
    "mod-of-dual": (lambda z: np.mod(z[0], 2.0), "numpy.remainder"),
    "fmod-of-dual": (lambda z: np.fmod(z[1], 2.0), "numpy.fmod"),
    "convolve": (lambda z: np.convolve(z, z), "numpy.convolve"),
    "interp": (lambda z: np.interp(z, [0.0, 5.0], [1.0, 2.0]), "numpy.interp"),
    "subtract.reduce": (lambda z: np.subtract.reduce(z), "numpy.subtract.reduce"),
}


@pytest.mark.parametrize("name", list(UNSUPPORTED))
def test_unsupported_function_raises_naming_it_and_the_mode(name):
    f, fname = UNSUPPORTED[name]
    with pytest.raises(TypeError) as err:
        _jac(f)
    msg = str(err.value)
    assert fname in msg, f"{name}: expected {fname!r} in {msg!r}"
    assert "forward" in msg, f"{name}: the mode is not named: {msg}"


def test_unsupported_function_on_scalar_derivative():
    with pytest.raises(TypeError) as err:
        _der(lambda t: np.fmod(t, 1.0))
    assert "numpy.fmod" in str(err.value) and "forward" in str(err.value), str(err.value)


@pytest.mark.parametrize("kwargs,bad", [({"where": X > 1}, "where"),
                                        ({"initial": 1.0}, "initial")])
def test_unsupported_argument_raises(kwargs, bad):
    with pytest.raises(TypeError) as err:
        _jac(lambda z: np.sum(z, **kwargs))
    assert bad in str(err.value) and "forward" in str(err.value), str(err.value)


@pytest.mark.parametrize("fn", [lambda z: np.sum(z, dtype=np.float32),
                                lambda z: np.add(z, 1.0, dtype=np.float32),
                                lambda z: z.astype(np.int64)],
                         ids=["sum", "add", "astype"])
def test_non_float64_dtype_raises(fn):
    with pytest.raises(TypeError, match="float64"):
        _jac(fn)


def test_traced_fill_value_into_integer_array_raises():
    with pytest.raises(TypeError) as err:
        _jac(lambda z: np.full_like(z, z[0], dtype=int))
    assert "numpy.full_like" in str(err.value) and "derivative" in str(err.value)


# -- complex values ------------------------------------------------------------------------

COMPLEX = {
    "complex x": lambda: _jac(lambda z: z * 2.0, X + 1j),
    "complex list x": lambda: _jac(lambda z: z, [1.0, 2j]),
    "complex scalar x": lambda: _der(lambda t: t * 2.0, 1.0 + 2.0j),
    "complex constant": lambda: _jac(lambda z: z * 1j),
    "complex constant left": lambda: _jac(lambda z: (1.0 + 1j) + z),
    "complex np constant": lambda: _jac(lambda z: z * np.complex128(1j)),
    "complex array constant": lambda: _jac(lambda z: z * np.array([1j, 1.0, 1.0])),
    "complex constant with Dual": lambda: _der(lambda t: t * 1j),
    "complex constant with element": lambda: _jac(lambda z: z[0] * 1j),
    "complex jvp tangent": lambda: dualad.jvp(np.sin, X, X * 1j),
    "np.exp of complex": lambda: _jac(lambda z: np.exp(z + 1j)),
}


@pytest.mark.parametrize("name", list(COMPLEX))
def test_complex_raises(name):
    with pytest.raises(TypeError) as err:
        COMPLEX[name]()
    assert "complex" in str(err.value), f"{name}: {err.value}"
    assert "forward" in str(err.value), f"{name}: {err.value}"


# -- object inputs -------------------------------------------------------------------------

OBJECTS = {
    "strings": np.array(["a", "b"], dtype=object),
    "None": np.array([None, 1.0], dtype=object),
    "dict": np.array([{}, 1.0], dtype=object),
    "str": "abc",
    "list-of-None": [None, 2.0],
    "nested-objects": np.array([object(), object()], dtype=object),
}


@pytest.mark.parametrize("name", list(OBJECTS))
def test_object_input_of_non_numbers_raises(name):
    with pytest.raises(TypeError) as err:
        _jac(lambda z: z * 2.0, OBJECTS[name])
    assert "object arrays are not supported" in str(err.value), f"{name}: {err.value}"


def test_function_returning_non_numbers_raises():
    with pytest.raises(TypeError, match="must return a number or an array of numbers"):
        _jac(lambda z: "not a number")


# -- API misuse ----------------------------------------------------------------------------

def test_grad_of_non_scalar_function_raises():
    with pytest.raises(ValueError) as err:
        dualad.grad(lambda z: z * 2.0)(X)
    assert "scalar" in str(err.value) and "jacobian" in str(err.value), str(err.value)


@pytest.mark.parametrize("x", [X, [1.0, 2.0], np.ones((2, 2))], ids=["1d", "list", "2d"])
def test_derivative_of_array_input_raises(x):
    with pytest.raises(ValueError) as err:
        dualad.derivative(np.sin)(x)
    assert "scalar" in str(err.value) and "jacobian" in str(err.value), str(err.value)


@pytest.mark.parametrize("transform", [dualad.jacobian, dualad.grad])
def test_reverse_mode_unsupported_function_names_it(transform):
    with pytest.raises(TypeError) as err:
        transform(lambda x: np.sum(np.fft.fft(x).real), mode="reverse")(X)
    assert "numpy.fft.fft" in str(err.value) and "reverse" in str(err.value), str(err.value)


def test_reverse_mode_float_of_traced_value():
    with pytest.raises(TypeError, match="drop its derivative"):
        dualad.grad(lambda x: float(x[0]) * x[1], mode="reverse")(X)
    with pytest.raises(TypeError, match="math.sin"):
        dualad.grad(lambda x: math.sin(x[0]), mode="reverse")(X)


@pytest.mark.parametrize("transform", [dualad.jacobian, dualad.grad])
@pytest.mark.parametrize("mode", ["sideways", "Forward", "", None, 1])
def test_bad_mode_raises(transform, mode):
    with pytest.raises(ValueError) as err:
        transform(np.sum, mode=mode)
    assert "mode" in str(err.value) and repr(mode) in str(err.value), str(err.value)


@pytest.mark.parametrize("chunk", [0, -1, 1.5])
def test_bad_chunk_raises(chunk):
    with pytest.raises(ValueError, match="chunk"):
        dualad.jacobian(np.sin, chunk=chunk)


@pytest.mark.parametrize("order", [0, -1, 1.5])
def test_bad_order_raises(order):
    with pytest.raises(ValueError, match="order"):
        dualad.derivative(np.sin, order=order)


def test_jvp_tangent_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        dualad.jvp(np.sin, X, np.ones(2))


def test_non_callable_raises():
    with pytest.raises(TypeError, match="callable"):
        dualad.jacobian(3)


# -- out= ----------------------------------------------------------------------------------

OUT = {
    "ufunc sin": lambda z: np.sin(z, out=np.empty(3)),
    "ufunc add": lambda z: np.add(z, 1.0, out=np.empty(3)),
    "ufunc multiply tuple": lambda z: np.multiply(z, z, out=(np.empty(3),)),
    "ufunc on Dual": lambda z: np.exp(z[0], out=np.empty(())),
    "matmul": lambda z: np.matmul(np.eye(3), z, out=np.empty(3)),
    "sum": lambda z: np.sum(z, out=np.empty(())),
    "cumsum": lambda z: np.cumsum(z, out=np.empty(3)),
    "dot": lambda z: np.dot(np.eye(3), z, out=np.empty(3)),
    "concatenate": lambda z: np.concatenate([z, z], out=np.empty(6)),
    "clip": lambda z: np.clip(z, 0.0, 1.0, out=np.empty(3)),
}


@pytest.mark.parametrize("name", list(OUT))
def test_out_into_plain_array_raises(name):
    with pytest.raises(TypeError) as err:
        _jac(OUT[name])
    assert "out=" in str(err.value), f"{name}: {err.value}"


# -- regressions found while writing the documentation -----------------------------------

def test_missing_return_is_an_error_not_a_zero_gradient():
    with pytest.raises(TypeError, match="returned None"):
        dualad.grad(lambda x: None)(np.ones(2))


def test_defrule_rejects_functions_that_do_not_dispatch():
    def softplus(x):
        return np.log1p(np.exp(x))

    with pytest.raises(TypeError, match="__array_function__"):
        dualad.defrule(softplus, lambda p, t: (softplus(p[0]), t[0]))


def test_hyperdual_unsupported_function_names_it():
    with pytest.raises(TypeError, match=r"HyperDual.*numpy\.fft\.fft"):
        np.fft.fft(dualad.HyperDual(1.0))


def test_reduce_of_ufunc_without_reduction_rule_names_it():
    x = np.array([1.0, 3.0, 2.0])
    with pytest.raises(TypeError, match=r"numpy\.fmax\.reduce"):
        dualad.grad(lambda z: np.fmax.reduce(z))(x)


def test_index_with_tracer_message():
    # a plain ndarray indexed by a Dual: NumPy turns our __index__ refusal into its own
    # IndexError; either way no number comes out
    with pytest.raises((IndexError, TypeError)):
        dualad.derivative(lambda t: np.arange(3.0)[t])(1.0)
    with pytest.raises(TypeError, match="cannot be used as an index"):
        dualad.grad(lambda z: z[z[0]])(np.array([0.0, 1.0]))


def test_asarray_with_float_dtype_refuses():
    def f(z):
        return np.asarray(z, dtype=float).sum()

    with pytest.raises(TypeError, match="drop its derivative"):
        dualad.grad(f)(np.ones(3))


def test_format_of_a_dual_formats_the_value():
    d = dualad.Dual(1.23456, [1.0])
    assert f"{d:.3f}" == "1.235"
    assert f"{d}" == repr(d)
