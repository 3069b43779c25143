"""Benchmark problems shared by the asv suite and ``compare.py``.

Every problem is written once, in plain array code, against an array
namespace ``xp`` that defaults to NumPy. dualad differentiates the NumPy
version as it is; the peers get the same expression with ``xp`` set to
``jax.numpy``, ``autograd.numpy`` or ``torch``, so every tool differentiates
the same arithmetic. Each problem also carries its hand-written derivatives,
which are the reference ("oracle") answers and the hand-coded baseline.

Nothing here imports anything but NumPy, so this module is cheap for asv to
import during benchmark discovery and safe for ``compare.py`` to import after
it has set the threading environment variables.
"""

import numpy as np

__all__ = [
    "CURVE_M",
    "G_X",
    "MLP_BATCH",
    "MLP_SIZES",
    "P0",
    "P_TRUE",
    "curve_fit_data",
    "g",
    "g_prime",
    "g_second",
    "mlp_data",
    "mlp_grad",
    "mlp_loss",
    "mlp_num_params",
    "residual",
    "residual_jacobian",
    "rosen",
    "rosen_direction",
    "rosen_point",
    "rosen_start",
    "vecfun",
    "vecfun_jacobian",
    "vecfun_jvp",
    "vecfun_point",
    "vecfun_vjp",
]

# ---------------------------------------------------------------------------
# T1: a scalar function of a scalar
# ---------------------------------------------------------------------------

#: The point at which the scalar derivative of `g` is benchmarked.
G_X = 0.7


def g(x, xp=np):
    """Scalar test function ``sin(x) exp(x) / (1 + x**2) + x**3``.

    Parameters
    ----------
    x : float or scalar of the namespace ``xp``
        Point of evaluation.
    xp : module, optional
        Array namespace providing ``sin`` and ``exp`` (NumPy by default).

    Returns
    -------
    float or scalar of ``xp``
        ``g(x)``.
    """
    return xp.sin(x) * xp.exp(x) / (1 + x**2) + x**3


def g_prime(x):
    """Hand-written first derivative of `g`.

    Parameters
    ----------
    x : float
        Point of evaluation.

    Returns
    -------
    float
        ``g'(x)``.

    Notes
    -----
    With ``u = e^x sin x`` and ``v = 1 + x^2``: ``u' = e^x (sin x + cos x)``,
    ``v' = 2x`` and ``(u/v)' = (u' v - u v') / v^2``.
    """
    s, c, e = np.sin(x), np.cos(x), np.exp(x)
    v = 1.0 + x * x
    return (e * (s + c) * v - e * s * 2.0 * x) / (v * v) + 3.0 * x * x


def g_second(x):
    """Hand-written second derivative of `g`.

    Parameters
    ----------
    x : float
        Point of evaluation.

    Returns
    -------
    float
        ``g''(x)``.

    Notes
    -----
    With `g_prime`'s ``u, v``: ``u'' = 2 e^x cos x``, ``v'' = 2`` and
    ``(u/v)'' = (u'' v - u v'') / v^2 - 2 v' (u' v - u v') / v^3``.
    """
    s, c, e = np.sin(x), np.cos(x), np.exp(x)
    u, du, d2u = e * s, e * (s + c), 2.0 * e * c
    v, dv, d2v = 1.0 + x * x, 2.0 * x, 2.0
    return ((d2u * v - u * d2v) / v**2
            - 2.0 * dv * (du * v - u * dv) / v**3
            + 6.0 * x)


# ---------------------------------------------------------------------------
# T5/T8: curve-fit residual, 1000 observations, 4 parameters
# ---------------------------------------------------------------------------

#: Number of observations in the curve fit.
CURVE_M = 1000
#: Parameters that generated the data: two amplitudes, a decay, a frequency.
P_TRUE = np.array([2.0, 0.3, 0.5, 2.0])
#: Starting point of the fit; also the point where Jacobians are benchmarked.
P0 = np.array([1.5, 0.5, 0.8, 1.9])


def curve_fit_data(m=CURVE_M, seed=20240607):
    """Sample points and noisy observations for the curve fit.

    Parameters
    ----------
    m : int, optional
        Number of observations.
    seed : int, optional
        Seed of the NumPy generator that draws the noise.

    Returns
    -------
    t : ndarray, shape (m,)
        ``np.linspace(0, 10, m)``.
    y : ndarray, shape (m,)
        The model at `P_TRUE` plus Gaussian noise of standard deviation 0.05.
    """
    t = np.linspace(0.0, 10.0, m)
    rng = np.random.default_rng(seed)
    y = residual(P_TRUE, t, np.zeros(m)) + 0.05 * rng.standard_normal(m)
    return t, y


def residual(p, t, y, xp=np):
    """Curve-fit residual ``p0 exp(-p1 t) + p2 sin(p3 t) - y``.

    Parameters
    ----------
    p : array, shape (4,)
        Parameters.
    t, y : array, shape (m,)
        Sample points and observations.
    xp : module, optional
        Array namespace providing ``exp`` and ``sin`` (NumPy by default).

    Returns
    -------
    array, shape (m,)
        The residual vector.
    """
    return p[0] * xp.exp(-p[1] * t) + p[2] * xp.sin(p[3] * t) - y


def residual_jacobian(p, t, y):
    """Hand-written Jacobian of `residual` with respect to ``p``.

    Parameters
    ----------
    p : ndarray, shape (4,)
        Parameters.
    t, y : ndarray, shape (m,)
        Sample points and observations (``y`` does not enter the Jacobian).

    Returns
    -------
    ndarray, shape (m, 4)
        ``J[i, j] = d r_i / d p_j``.
    """
    decay = np.exp(-p[1] * t)
    phase = p[3] * t
    jac = np.empty((t.shape[0], 4))
    jac[:, 0] = decay
    jac[:, 1] = -p[0] * t * decay
    jac[:, 2] = np.sin(phase)
    jac[:, 3] = p[2] * t * np.cos(phase)
    return jac


# ---------------------------------------------------------------------------
# T2/T3/T4/T7: Rosenbrock
# ---------------------------------------------------------------------------


def rosen(x, xp=np):
    """Rosenbrock function written against an array namespace.

    The same expression as `scipy.optimize.rosen`, without SciPy's input
    coercion, so it can be handed to JAX, autograd and PyTorch.

    Parameters
    ----------
    x : array, shape (n,)
        Point of evaluation, ``n >= 2``.
    xp : module, optional
        Array namespace providing ``sum`` (NumPy by default).

    Returns
    -------
    scalar
        ``sum(100 (x[1:] - x[:-1]**2)**2 + (1 - x[:-1])**2)``.
    """
    return xp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosen_point(n):
    """Deterministic, non-special evaluation point for Rosenbrock benchmarks.

    Parameters
    ----------
    n : int
        Dimension.

    Returns
    -------
    ndarray, shape (n,)
        ``1 + 0.5 sin(1..n)``, away from the minimum and from symmetric points.
    """
    return 1.0 + 0.5 * np.sin(np.arange(1.0, n + 1.0))


def rosen_direction(n):
    """Direction for Hessian-vector products.

    Parameters
    ----------
    n : int
        Dimension.

    Returns
    -------
    ndarray, shape (n,)
        ``cos(0..n-1)``.
    """
    return np.cos(np.arange(float(n)))


def rosen_start(n):
    """Starting point for the optimisation benchmarks.

    Parameters
    ----------
    n : int
        Dimension.

    Returns
    -------
    ndarray, shape (n,)
        A deterministic point in ``[0, 0.5]``; L-BFGS-B, trust-exact and
        Newton-CG all reach the global minimum ``x = 1`` from it.
    """
    return 0.25 + 0.25 * np.sin(np.arange(float(n)))


# ---------------------------------------------------------------------------
# Jacobian sizes and chunks: a small dense vector function R^n -> R^n
# ---------------------------------------------------------------------------


def vecfun(x, xp=np):
    """Vector function with a dense Jacobian: ``sin(x) |x|^2 + exp(x[::-1])``.

    Parameters
    ----------
    x : array, shape (n,)
        Point of evaluation, any ``n >= 1``.
    xp : module, optional
        Array namespace (NumPy by default).

    Returns
    -------
    array, shape (n,)
        Function value.
    """
    return xp.sin(x) * xp.sum(x * x) + xp.exp(x[::-1])


def vecfun_jacobian(x):
    """Hand-written Jacobian of `vecfun`.

    Parameters
    ----------
    x : ndarray, shape (n,)
        Point of evaluation.

    Returns
    -------
    ndarray, shape (n, n)
        ``J[i, j] = d f_i / d x_j``.
    """
    n = x.shape[0]
    jac = 2.0 * np.outer(np.sin(x), x)
    jac[np.diag_indices(n)] += np.cos(x) * np.dot(x, x)
    rev = np.arange(n)[::-1]
    jac[np.arange(n), rev] += np.exp(x[rev])
    return jac


def vecfun_jvp(x, v):
    """Hand-written Jacobian-vector product of `vecfun`, without forming ``J``.

    Parameters
    ----------
    x : ndarray, shape (n,)
        Point of evaluation.
    v : ndarray, shape (n,)
        Direction.

    Returns
    -------
    ndarray, shape (n,)
        ``J(x) @ v = 2 sin(x) (x . v) + cos(x) |x|^2 v + exp(x[::-1]) v[::-1]``.
    """
    return (2.0 * np.sin(x) * np.dot(x, v) + np.cos(x) * np.dot(x, x) * v
            + np.exp(x[::-1]) * v[::-1])


def vecfun_vjp(x, u):
    """Hand-written vector-Jacobian product of `vecfun`, without forming ``J``.

    Parameters
    ----------
    x : ndarray, shape (n,)
        Point of evaluation.
    u : ndarray, shape (n,)
        Cotangent (weights of the outputs).

    Returns
    -------
    ndarray, shape (n,)
        ``u @ J(x) = 2 x (u . sin x) + u cos(x) |x|^2 + u[::-1] exp(x)``.
    """
    return (2.0 * x * np.dot(u, np.sin(x)) + u * np.cos(x) * np.dot(x, x)
            + u[::-1] * np.exp(x))


def vecfun_point(n):
    """Deterministic evaluation point for `vecfun`.

    Parameters
    ----------
    n : int
        Dimension.

    Returns
    -------
    ndarray, shape (n,)
        ``linspace(-1, 1, n) / sqrt(n)`` (``[0.3]`` when ``n == 1``).
    """
    if n == 1:
        return np.array([0.3])
    return np.linspace(-1.0, 1.0, n) / np.sqrt(n)


# ---------------------------------------------------------------------------
# T6: 784-500-10 multilayer perceptron, ReLU, mean squared error
# ---------------------------------------------------------------------------

#: Layer widths of the perceptron.
MLP_SIZES = (784, 500, 10)
#: Batch size.
MLP_BATCH = 64


def mlp_num_params(sizes=MLP_SIZES):
    """Number of weights and biases of the perceptron.

    Parameters
    ----------
    sizes : tuple of int, optional
        Layer widths ``(d_in, d_hidden, d_out)``.

    Returns
    -------
    int
        ``d_in d_hidden + d_hidden + d_hidden d_out + d_out``.
    """
    d_in, d_hid, d_out = sizes
    return d_in * d_hid + d_hid + d_hid * d_out + d_out


def _split(theta, sizes):
    # Views into the flat parameter vector; slicing and reshape only, so any
    # array library (and dualad's tracers) can follow it.
    d_in, d_hid, d_out = sizes
    i = 0
    w1 = theta[i:i + d_in * d_hid].reshape(d_in, d_hid)
    i += d_in * d_hid
    b1 = theta[i:i + d_hid]
    i += d_hid
    w2 = theta[i:i + d_hid * d_out].reshape(d_hid, d_out)
    i += d_hid * d_out
    b2 = theta[i:i + d_out]
    return w1, b1, w2, b2


def _relu(z, xp):
    # PyTorch spells it torch.relu (torch.maximum wants two tensors); NumPy,
    # jax.numpy and autograd.numpy have no relu but accept maximum(z, 0.0).
    relu = getattr(xp, "relu", None)
    return relu(z) if relu is not None else xp.maximum(z, 0.0)


def mlp_data(sizes=MLP_SIZES, batch=MLP_BATCH, seed=7):
    """Parameters and one batch of data for the perceptron.

    Parameters
    ----------
    sizes : tuple of int, optional
        Layer widths.
    batch : int, optional
        Batch size.
    seed : int, optional
        Seed of the NumPy generator.

    Returns
    -------
    theta : ndarray, shape (p,)
        Flat parameters (He-scaled normal weights, small biases).
    x : ndarray, shape (batch, d_in)
        Inputs.
    y : ndarray, shape (batch, d_out)
        Targets.
    """
    d_in, d_hid, d_out = sizes
    rng = np.random.default_rng(seed)
    parts = [
        rng.standard_normal(d_in * d_hid) * np.sqrt(2.0 / d_in),
        0.01 * rng.standard_normal(d_hid),
        rng.standard_normal(d_hid * d_out) * np.sqrt(2.0 / d_hid),
        0.01 * rng.standard_normal(d_out),
    ]
    theta = np.concatenate(parts)
    x = rng.standard_normal((batch, d_in))
    y = rng.standard_normal((batch, d_out))
    return theta, x, y


def mlp_loss(theta, x, y, xp=np, sizes=MLP_SIZES):
    """Mean squared error of a one-hidden-layer ReLU perceptron.

    Parameters
    ----------
    theta : array, shape (p,)
        Flat parameters ``[W1.ravel(), b1, W2.ravel(), b2]``.
    x : array, shape (batch, d_in)
        Inputs.
    y : array, shape (batch, d_out)
        Targets.
    xp : module, optional
        Array namespace (NumPy by default).
    sizes : tuple of int, optional
        Layer widths.

    Returns
    -------
    scalar
        ``mean((relu(x W1 + b1) W2 + b2 - y)**2)``.
    """
    w1, b1, w2, b2 = _split(theta, sizes)
    hidden = _relu(x @ w1 + b1, xp)
    out = hidden @ w2 + b2
    return xp.mean((out - y) ** 2)


def mlp_grad(theta, x, y, sizes=MLP_SIZES):
    """Hand-written backpropagation for `mlp_loss`.

    Parameters
    ----------
    theta : ndarray, shape (p,)
        Flat parameters.
    x : ndarray, shape (batch, d_in)
        Inputs.
    y : ndarray, shape (batch, d_out)
        Targets.
    sizes : tuple of int, optional
        Layer widths.

    Returns
    -------
    ndarray, shape (p,)
        Gradient of the loss, laid out like ``theta``.
    """
    w1, b1, w2, b2 = _split(theta, sizes)
    pre = x @ w1 + b1
    hidden = np.maximum(pre, 0.0)
    out = hidden @ w2 + b2
    d_out = 2.0 * (out - y) / out.size
    d_hidden = (d_out @ w2.T) * (pre > 0.0)
    return np.concatenate([
        (x.T @ d_hidden).ravel(),
        d_hidden.sum(axis=0),
        (hidden.T @ d_out).ravel(),
        d_out.sum(axis=0),
    ])
