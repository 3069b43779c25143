"""First-order optimizers (SGD, Adam, AdamW) on pytrees, and a mini-batch training loop.

Design note
-----------
This module owns the *training loop* side of dualad: the update rules people use to fit
models by stochastic gradient descent, and :func:`fit`, which drives them over shuffled
mini-batches.  It differentiates nothing itself: gradients come from
:func:`dualad.value_and_grad` (one recorded evaluation gives the loss and its gradient),
and parameter trees are flattened with :func:`dualad.ravel`.

State convention (one, everywhere): **the optimizer object holds its state**.
``new_params = opt.step(params, grads)`` returns new parameters and never writes into
the caller's arrays; the moment estimates and the step counter live in the optimizer
(:attr:`Optimizer.state`, cleared by :meth:`Optimizer.reset`).  Internally each step
flattens ``params`` and ``grads`` into one float64 vector each, so an update is a few
vectorised NumPy operations whatever the number of leaves, and the state is kept as flat
vectors laid out like ``dualad.ravel(params)[0]``.

The update formulas are the ones of PyTorch's ``torch.optim`` (SGD with dampening 0, Adam
of Kingma & Ba 2015 with bias correction, AdamW of Loshchilov & Hutter 2019 with
decoupled weight decay), written out in each class's Notes, so results can be compared
across libraries.
"""

import math
import numbers
import sys
import time

import numpy as np

from . import pytree
from .api import value_and_grad

__all__ = ["SGD", "Adam", "AdamW", "History", "Optimizer", "fit"]

_F64 = np.dtype(np.float64)


# -- validation helpers ------------------------------------------------------------------

def _real(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} "
                        f"{value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _positive(name, value):
    value = _real(name, value)
    if value <= 0.0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def _non_negative(name, value):
    value = _real(name, value)
    if value < 0.0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _unit(name, value):
    value = _real(name, value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return value


def _check_lr(lr):
    if callable(lr):
        return lr
    return _positive("lr", lr)


def _fmt(value):
    return repr(value) if not callable(value) else getattr(value, "__name__", repr(value))


# -- gradients shaped like params ---------------------------------------------------------

_GRADS_HINT = ("grads must have the structure and shapes of params (pass the gradient "
               "dualad.grad or dualad.value_and_grad returns for these params)")


def _leaf_shape(treedef):
    return () if treedef.kind == "scalar" else tuple(treedef.meta)


def _match(ref, obj, path, out):
    """Append the leaves of ``obj`` to ``out`` in the order of the treedef ``ref``."""
    kind = ref.kind
    where = path or " (the root)"
    if kind in ("array", "scalar"):
        if obj is None or isinstance(obj, (dict, list, tuple)):
            raise ValueError(f"grads{where} is a {type(obj).__name__} where params{path} "
                             f"is an array of shape {_leaf_shape(ref)}; " + _GRADS_HINT)
        shape = np.shape(obj)
        if shape != _leaf_shape(ref):
            raise ValueError(f"grads{where} has shape {shape} but params{path} has shape "
                             f"{_leaf_shape(ref)}; " + _GRADS_HINT)
        out.append(obj)
    elif kind == "none":
        if obj is not None:
            raise ValueError(f"grads{where} is a {type(obj).__name__} where params{path} "
                             "is None; " + _GRADS_HINT)
    elif kind == "dict":
        keys = ref.meta[1]
        if not isinstance(obj, dict):
            raise ValueError(f"grads{where} is a {type(obj).__name__} where params{path} "
                             "is a dict; " + _GRADS_HINT)
        missing = [k for k in keys if k not in obj]
        extra = [k for k in obj if k not in set(keys)]
        if missing or extra:
            raise ValueError(f"grads{where} has keys {list(obj)} but params{path} has keys "
                             f"{list(keys)}; " + _GRADS_HINT)
        for key, child in zip(keys, ref.children):
            _match(child, obj[key], f"{path}[{key!r}]", out)
    else:  # list, tuple, named tuple
        if not isinstance(obj, (list, tuple)):
            raise ValueError(f"grads{where} is a {type(obj).__name__} where params{path} "
                             f"is a {kind}; " + _GRADS_HINT)
        if len(obj) != len(ref.children):
            raise ValueError(f"grads{where} has {len(obj)} entries but params{path} has "
                             f"{len(ref.children)}; " + _GRADS_HINT)
        for i, (child, item) in enumerate(zip(ref.children, obj)):
            _match(child, item, f"{path}[{i}]", out)


def _flat_grads(treedef, grads):
    """``grads`` as one float64 vector laid out like the params of ``treedef``."""
    try:
        leaves, gdef = pytree.flatten(grads)
    except TypeError as exc:
        raise TypeError(f"grads: {exc}") from None
    if gdef != treedef:  # e.g. dict keys in another order, or a wrong shape: match by path
        leaves = []
        _match(treedef, grads, "", leaves)
    if not leaves:
        return np.zeros(0)
    return np.concatenate([np.asarray(leaf, dtype=np.float64).reshape(-1)
                           for leaf in leaves])


# -- optimizers --------------------------------------------------------------------------

class Optimizer:
    """Optimizer(lr)

    Base class of the optimizers: the step protocol and the state they hold.

    An optimizer updates a pytree of parameters (a dict, list or tuple of float64 arrays
    and numbers, nested as deep as you like, or a single array) from a gradient of the
    same structure.  It *holds its state*: ``params = opt.step(params, grads)`` returns
    new parameters (the caller's arrays are never modified) and advances the step
    counter and the moment estimates kept in the optimizer.  Use one optimizer object
    per set of parameters; :meth:`reset` starts afresh.

    To write another optimizer, subclass it: name the state vectors in the class
    attribute ``_buffers`` (each starts as zeros shaped like the flat parameters and is
    kept as ``self._<name>``), and implement ``_update(p, g, lr, t)``, which updates in
    place the flat float64 parameters ``p`` (a private copy) and the buffers, from the
    flat gradient ``g``, the learning rate ``lr`` and the step number ``t``.

    Parameters
    ----------
    lr : float or callable
        The learning rate, > 0; or a schedule ``lr(t)`` called with the 1-based number
        ``t`` of the step being taken and returning a positive float.

    Attributes
    ----------
    lr : float or callable
        The learning rate or schedule (may be reassigned between steps).

    Raises
    ------
    ValueError
        For a learning rate that is not > 0 and finite.
    TypeError
        For a learning rate that is not a number or a callable.

    See Also
    --------
    SGD, Adam, AdamW, fit

    Notes
    -----
    Optimizers pickle together with their state, so a training run can be
    checkpointed and resumed (a schedule given as a lambda does not pickle; use a
    module-level function).

    Examples
    --------
    A learning-rate schedule is any function of the step number:

    >>> from dualad.optim import SGD
    >>> opt = SGD(lr=lambda t: 0.5 / t)
    >>> x = np.array([1.0, -2.0])
    >>> x = opt.step(x, 2 * x)      # t = 1: lr = 0.5, x - 0.5 * 2x = 0
    >>> x
    array([0., 0.])
    >>> opt.state["step"]
    1
    """

    _buffers = ()

    def __init__(self, lr):
        self.lr = _check_lr(lr)
        self.reset()

    def reset(self):
        """Forget the state: the next :meth:`step` is step 1 again.

        Returns
        -------
        None

        Examples
        --------
        >>> from dualad.optim import Adam
        >>> opt = Adam(lr=0.1)
        >>> _ = opt.step(np.ones(2), np.ones(2))
        >>> opt.state["step"]
        1
        >>> opt.reset()
        >>> opt.state
        {'step': 0}
        """
        self._t = 0
        self._unravel = None
        self._array_shape = None  # params were one float64 array of this shape
        self._work = None  # scratch vectors of an update (not state)
        self._lr_checked = None  # (lr, its validated float): lr checked once, not per step
        for name in self._buffers:
            setattr(self, "_" + name, None)

    @property
    def state(self):
        """The optimizer's state: ``{"step": t, <buffer name>: tree, ...}``.

        ``step`` is the number of steps taken since construction or :meth:`reset`.  The
        buffers (``"velocity"`` for :class:`SGD` with momentum, ``"m"`` and ``"v"`` for
        :class:`Adam` and :class:`AdamW`) are copies, with the structure of the
        parameters; they are absent before the first step.

        Examples
        --------
        >>> from dualad.optim import SGD
        >>> opt = SGD(lr=0.1, momentum=0.9)
        >>> _ = opt.step({"w": np.array([1.0, 2.0])}, {"w": np.array([0.5, -1.0])})
        >>> opt.state
        {'step': 1, 'velocity': {'w': array([ 0.5, -1. ])}}
        """
        out = {"step": self._t}
        if self._unravel is not None:
            for name in self._buffers:
                buf = getattr(self, "_" + name, None)
                if buf is not None:
                    out[name] = self._unravel(buf)
        return out

    def _lr_at(self, t):
        lr = self.lr
        if not callable(lr):
            checked = self._lr_checked
            if checked is not None and checked[0] is lr:
                return checked[1]  # (the same object as at the previous step)
            value = _positive("lr", lr)
            self._lr_checked = (lr, value)
            return value
        value = lr(t)
        try:
            return _positive(f"the learning-rate schedule's value lr({t})", value)
        except TypeError as exc:
            raise TypeError(f"{exc} (lr is a schedule: it must return a float)") from None

    def step(self, params, grads):
        """One update: the new parameters from the current ones and their gradient.

        Parameters
        ----------
        params : pytree
            The parameters: an array, or a dict/list/tuple (nested) of arrays and
            numbers.  Not modified.
        grads : pytree
            The gradient of the loss with respect to ``params``, with the same structure
            and leaf shapes (as :func:`dualad.grad` returns it; dict keys may come in
            any order).

        Returns
        -------
        pytree
            The updated parameters, a new tree of the same structure: float64 arrays of
            the leaves' shapes, ``numpy.float64`` where a leaf was a number.

        Raises
        ------
        ValueError
            If ``grads`` does not have the structure or shapes of ``params`` (the first
            differing leaf is named), if ``params`` has another structure than at the
            previous step (call :meth:`reset` to start on new parameters), or if the
            learning rate is not positive.
        TypeError
            If a leaf is not a number or a numeric array, or is complex.

        Examples
        --------
        >>> from dualad.optim import SGD
        >>> params = {"w": np.array([1.0, 2.0]), "b": 0.5}
        >>> grads = {"w": np.array([0.5, -1.0]), "b": 1.0}
        >>> SGD(lr=0.1).step(params, grads)
        {'w': array([0.95, 2.1 ]), 'b': np.float64(0.4)}
        >>> params["w"]                 # the caller's arrays are untouched
        array([1., 2.])
        """
        if (type(params) is np.ndarray and type(grads) is np.ndarray
                and self._array_shape == params.shape and grads.shape == params.shape
                and params.dtype == _F64 and grads.dtype == _F64):
            # one float64 array, as at the previous step (fit's loop): no tree to walk
            if params.ndim == 1:
                return self._step_flat(params.copy(), grads)
            return self._step_flat(params.reshape(-1).copy(), grads.reshape(-1)
                                   ).reshape(params.shape)
        p, unravel = pytree.ravel(params)
        if self._unravel is not None and unravel.treedef != self._unravel.treedef:
            raise ValueError(
                f"params have the structure {unravel.treedef} but the optimizer's state "
                f"was built for {self._unravel.treedef}; pass the params the previous "
                "step returned, or call reset() to start on new parameters")
        g = _flat_grads(unravel.treedef, grads)
        if self._unravel is None:
            for name in self._buffers:
                setattr(self, "_" + name, np.zeros_like(p))
        self._step_flat(p, g)
        self._unravel = unravel
        self._array_shape = params.shape if type(params) is np.ndarray and \
            params.dtype == np.float64 else None
        # p is a private copy that nothing else references: its slices can be the leaves
        return unravel._unravel(p, copy=False)

    def _step_flat(self, p, g):
        """Advance the step counter and update the flat private copy ``p`` in place."""
        t = self._t + 1
        lr = self._lr_at(t)
        self._update(p, g, lr, t)
        self._t = t
        return p

    def _update(self, p, g, lr, t):
        raise NotImplementedError(f"{type(self).__name__} does not implement _update(p, "
                                  "g, lr, t), the update of the flat parameters")

    def __repr__(self):
        args = ", ".join(f"{k}={_fmt(v)}" for k, v in self._hyper().items())
        return f"{type(self).__name__}({args})"

    def _hyper(self):
        return {"lr": self.lr}


class SGD(Optimizer):
    """SGD(lr, momentum=0.0, nesterov=False, weight_decay=0.0)

    Stochastic gradient descent, with optional (Nesterov) momentum and L2 weight decay.

    Parameters
    ----------
    lr : float or callable
        Learning rate ``η`` (> 0), or a schedule ``lr(t)`` of the 1-based step number.
    momentum : float, optional
        Momentum factor ``μ`` in [0, 1).  0 (the default) is plain gradient descent.
    nesterov : bool, optional
        Use Nesterov's momentum (needs ``momentum > 0``).
    weight_decay : float, optional
        L2 penalty ``λ`` >= 0, added to the gradient as ``λ θ``.

    Attributes
    ----------
    lr, momentum, nesterov, weight_decay
        The hyper-parameters.
    state : dict
        ``{"step": t, "velocity": tree}`` (``velocity`` only with momentum, after the
        first step).

    Raises
    ------
    ValueError
        For ``lr`` not > 0, ``momentum`` outside [0, 1), ``weight_decay`` < 0, or
        ``nesterov=True`` with ``momentum=0``.
    TypeError
        For a hyper-parameter that is not a number (``nesterov``: not a bool).

    See Also
    --------
    Adam, AdamW, fit

    Notes
    -----
    With gradient ``g_t`` at step ``t`` and parameters ``θ``, velocity ``b`` (``b_0 =
    0``)::

        g   = g_t + λ θ_{t-1}
        b_t = μ b_{t-1} + g                       (momentum > 0)
        d   = g + μ b_t   (nesterov)   or   b_t   (momentum)   or   g   (momentum = 0)
        θ_t = θ_{t-1} - η d

    This is PyTorch's ``torch.optim.SGD`` with ``dampening=0``.

    Examples
    --------
    Minimise ``f(x) = |x - 3|² / 2``, whose gradient is ``x - 3``:

    >>> from dualad.optim import SGD
    >>> opt = SGD(lr=0.2, momentum=0.5, nesterov=True)
    >>> x = np.zeros(2)
    >>> for _ in range(100):
    ...     x = opt.step(x, x - 3.0)
    >>> np.round(x, 6)
    array([3., 3.])
    """

    def __init__(self, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        self.momentum = _unit("momentum", momentum)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0 (e.g. momentum=0.9); "
                             "with momentum=0 it is plain SGD")
        self.nesterov = bool(nesterov)
        self.weight_decay = _non_negative("weight_decay", weight_decay)
        super().__init__(lr)

    @property
    def _buffers(self):
        return ("velocity",) if self.momentum else ()

    def _hyper(self):
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}

    def _update(self, p, g, lr, t):
        if self.weight_decay:
            g = g + self.weight_decay * p
        mu = self.momentum
        if mu:
            b = getattr(self, "_velocity", None)
            if b is None:  # momentum switched on after the first step
                b = self._velocity = np.zeros_like(p)
            b *= mu
            b += g
            if self.nesterov:
                g = g + mu * b
            else:
                g = b
        p -= lr * g


class Adam(Optimizer):
    """Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

    Adam: gradient steps scaled by running estimates of the gradient's first and second
    moments, with bias correction, and optional L2 weight decay (coupled).

    Parameters
    ----------
    lr : float or callable, optional
        Learning rate ``η`` (> 0), or a schedule ``lr(t)`` of the 1-based step number.
    betas : tuple of two floats, optional
        Decay rates ``(β1, β2)`` of the moment estimates, each in [0, 1).
    eps : float, optional
        ``ε`` > 0 added to the denominator.
    weight_decay : float, optional
        L2 penalty ``λ`` >= 0, added to the gradient as ``λ θ`` (so it is scaled by the
        adaptive step; see :class:`AdamW` for the decoupled form).

    Attributes
    ----------
    lr, betas, eps, weight_decay
        The hyper-parameters.
    state : dict
        ``{"step": t, "m": tree, "v": tree}``: the moment estimates (after step 1).

    Raises
    ------
    ValueError
        For ``lr`` or ``eps`` not > 0, a beta outside [0, 1), or ``weight_decay`` < 0.
    TypeError
        For a hyper-parameter that is not a number, or ``betas`` not a pair.

    See Also
    --------
    AdamW, SGD, fit

    Notes
    -----
    With gradient ``g_t`` at step ``t = 1, 2, ...`` and ``m_0 = v_0 = 0``::

        g   = g_t + λ θ_{t-1}
        m_t = β1 m_{t-1} + (1 - β1) g
        v_t = β2 v_{t-1} + (1 - β2) g²
        θ_t = θ_{t-1} - η (m_t / (1 - β1^t)) / (sqrt(v_t / (1 - β2^t)) + ε)

    (Kingma & Ba, "Adam: a method for stochastic optimization", ICLR 2015; the same as
    PyTorch's ``torch.optim.Adam``.)  The first step moves every parameter with a
    nonzero gradient by about ``η``, whatever the gradient's scale.

    Examples
    --------
    >>> from dualad.optim import Adam
    >>> def loss(p):
    ...     return np.sum((p["w"] - 1.0) ** 2) + p["b"] ** 2
    >>> grad = dualad.grad(loss, mode="reverse")
    >>> params = {"w": np.zeros(3), "b": 2.0}
    >>> opt = Adam(lr=0.1)
    >>> for _ in range(300):
    ...     params = opt.step(params, grad(params))
    >>> np.round(params["w"], 4), bool(abs(params["b"]) < 1e-4)
    (array([1., 1., 1.]), True)
    """

    _buffers = ("m", "v")

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
        self.betas = (_unit("betas[0]", b1), _unit("betas[1]", b2))
        self.eps = _positive("eps", eps)
        self.weight_decay = _non_negative("weight_decay", weight_decay)
        super().__init__(lr)

    def _hyper(self):
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps,
                "weight_decay": self.weight_decay}

    def _decay(self, p, g, lr):
        # coupled L2: the penalty's gradient joins g and goes through the moments
        return g + self.weight_decay * p if self.weight_decay else g

    def _update(self, p, g, lr, t):
        g = self._decay(p, g, lr)
        b1, b2 = self.betas
        m, v = self._m, self._v
        # the formulas of the Notes, operation for operation, in two scratch vectors
        # kept between steps: no allocation per step (a training loop takes thousands)
        work = self._work
        if work is None or work[0].shape != p.shape:
            work = self._work = (np.empty_like(p), np.empty_like(p))
        s, q = work
        m *= b1
        np.multiply(g, 1.0 - b1, out=s)  # (1 - b1) g
        m += s
        v *= b2
        np.multiply(g, g, out=s)
        s *= 1.0 - b2                    # (1 - b2) g^2
        v += s
        np.divide(v, 1.0 - b2 ** t, out=s)
        np.sqrt(s, out=s)
        s += self.eps                    # the denominator
        np.multiply(m, lr / (1.0 - b1 ** t), out=q)
        q /= s
        p -= q


class AdamW(Adam):
    """AdamW(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)

    Adam with decoupled weight decay: the parameters shrink by ``η λ θ`` each step,
    outside the adaptive scaling.

    Parameters
    ----------
    lr : float or callable, optional
        Learning rate ``η`` (> 0), or a schedule ``lr(t)`` of the 1-based step number.
    betas : tuple of two floats, optional
        Decay rates ``(β1, β2)`` of the moment estimates, each in [0, 1).
    eps : float, optional
        ``ε`` > 0 added to the denominator.
    weight_decay : float, optional
        Decoupled decay rate ``λ`` >= 0 (default 0.01, PyTorch's).

    Attributes
    ----------
    lr, betas, eps, weight_decay
        The hyper-parameters.
    state : dict
        ``{"step": t, "m": tree, "v": tree}``.

    Raises
    ------
    ValueError
        For ``lr`` or ``eps`` not > 0, a beta outside [0, 1), or ``weight_decay`` < 0.
    TypeError
        For a hyper-parameter that is not a number, or ``betas`` not a pair.

    See Also
    --------
    Adam, SGD

    Notes
    -----
    As :class:`Adam` with ``λ = 0`` in the gradient, after first decaying the
    parameters (Loshchilov & Hutter, "Decoupled weight decay regularization", ICLR
    2019; PyTorch's ``torch.optim.AdamW``)::

        θ' = θ_{t-1} (1 - η λ)
        θ_t = θ' - η (m_t / (1 - β1^t)) / (sqrt(v_t / (1 - β2^t)) + ε)

    With Adam's coupled L2 penalty, weights with large gradient variance are barely
    regularised (the penalty is divided by ``sqrt(v)``); the decoupled decay acts on
    every weight at the same rate.

    Examples
    --------
    With a zero gradient only the decay acts: ``θ (1 - η λ)``.

    >>> from dualad.optim import AdamW
    >>> opt = AdamW(lr=0.1, weight_decay=0.5)
    >>> opt.step(np.array([2.0, -4.0]), np.zeros(2))
    array([ 1.9, -3.8])
    """

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _decay(self, p, g, lr):
        if self.weight_decay:
            p *= 1.0 - lr * self.weight_decay
        return g


# -- training loop ------------------------------------------------------------------------

class History:
    """History()

    What :func:`fit` records, epoch by epoch.

    Attributes
    ----------
    loss : list of float
        The training loss of each epoch: the mean of the mini-batch losses, weighted by
        batch size, each computed at the parameters before that batch's step (the value
        the gradient pass gives for free).
    val_loss : list of float
        The loss on ``validation_data`` at the end of each epoch (empty without
        validation data).
    monitor : str
        ``"val_loss"`` with validation data, else ``"loss"``: the loss that early
        stopping and ``best_epoch`` follow.
    best_epoch : int or None
        Index (0-based) of the epoch with the lowest monitored loss.
    best_loss : float
        That lowest monitored loss (``inf`` before the first epoch).
    stop_reason : {None, "patience", "callback"}
        Why training stopped before ``epochs``; ``None`` if it ran them all.
    epochs : int
        The number of epochs run (``len(loss)``).

    See Also
    --------
    fit

    Examples
    --------
    >>> from dualad.optim import History
    >>> h = History()
    >>> h.loss += [0.9, 0.5, 0.6]
    >>> h.epochs
    3
    >>> h.as_dict()["loss"]
    [0.9, 0.5, 0.6]
    """

    def __init__(self):
        self.loss = []
        self.val_loss = []
        self.monitor = "loss"
        self.best_epoch = None
        self.best_loss = math.inf
        self.stop_reason = None

    @property
    def epochs(self):
        return len(self.loss)

    def as_dict(self):
        """The history as a plain dict (e.g. for ``json`` or ``pandas.DataFrame``).

        Returns
        -------
        dict
            Keys ``loss``, ``val_loss``, ``monitor``, ``best_epoch``, ``best_loss``,
            ``stop_reason``, ``epochs``.

        Examples
        --------
        >>> from dualad.optim import History
        >>> sorted(History().as_dict())
        ['best_epoch', 'best_loss', 'epochs', 'loss', 'monitor', 'stop_reason', 'val_loss']
        """
        return {"loss": list(self.loss), "val_loss": list(self.val_loss),
                "monitor": self.monitor, "best_epoch": self.best_epoch,
                "best_loss": self.best_loss, "stop_reason": self.stop_reason,
                "epochs": self.epochs}

    def __repr__(self):
        parts = [f"epochs={self.epochs}"]
        if self.loss:
            parts.append(f"loss={self.loss[-1]:.6g}")
        if self.val_loss:
            parts.append(f"val_loss={self.val_loss[-1]:.6g}")
        if self.best_epoch is not None:
            parts.append(f"best_epoch={self.best_epoch}")
        if self.stop_reason is not None:
            parts.append(f"stop_reason={self.stop_reason!r}")
        return "History(" + ", ".join(parts) + ")"


def _as_data(data, name):
    if isinstance(data, np.ndarray):
        data = (data,)
    if not isinstance(data, (tuple, list)) or not data:
        raise TypeError(f"{name} must be a tuple of arrays sharing their first axis "
                        f"(e.g. (X, y)), got {type(data).__name__}")
    arrays = tuple(np.asarray(a) for a in data)
    for i, a in enumerate(arrays):
        if a.ndim == 0:
            raise ValueError(f"{name}[{i}] is a scalar; every array of {name} needs a "
                             "first (sample) axis")
    n = len(arrays[0])
    lengths = [len(a) for a in arrays]
    if any(k != n for k in lengths):
        raise ValueError(f"the arrays of {name} must share their first axis (one row "
                         f"per sample); their lengths are {lengths}")
    if n == 0:
        raise ValueError(f"{name} has no samples")
    return arrays, n


def _positive_int(name, value, allow_none=False, minimum=1):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


class _TextBar:
    """A minimal progress bar on a text stream (used when tqdm is not installed)."""

    def __init__(self, total, stream, width=30):
        self.total = total
        self.stream = stream
        self.width = width
        self.n = 0
        self.postfix = ""
        self._last = -math.inf

    def update(self, k=1):
        self.n += k
        now = time.monotonic()
        if now - self._last >= 0.1 or self.n >= self.total:  # redraw at most 10 times/s
            self._last = now
            self._draw()

    def set_postfix_str(self, text):
        self.postfix = text
        self._draw()

    def _draw(self):
        frac = self.n / self.total if self.total else 1.0
        done = round(self.width * frac)
        bar = "#" * done + "-" * (self.width - done)
        self.stream.write(f"\rfit [{bar}] {100 * frac:3.0f}% {self.postfix}")
        self.stream.flush()

    def close(self):
        self._draw()
        self.stream.write("\n")
        self.stream.flush()


def _progress_bar(progress, total):
    if progress is None:
        progress = bool(getattr(sys.stderr, "isatty", lambda: False)())
    if not progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return _TextBar(total, sys.stderr)
    return tqdm(total=total, desc="fit", unit="batch", file=sys.stderr, leave=True)


def fit(loss, params, data, optimizer, *, epochs=10, batch_size=32, shuffle=True,
        seed=None, validation_data=None, callback=None, patience=None, min_delta=0.0,
        restore_best=True, drop_last=False, progress=None, mode="reverse"):
    """Train ``params`` by mini-batch gradient steps on ``loss``.

    Each epoch splits the samples of ``data`` into mini-batches (shuffled), and for each
    batch computes the loss and its gradient in one pass
    (:func:`dualad.value_and_grad`) and takes one ``optimizer.step``.

    Parameters
    ----------
    loss : callable
        ``loss(params, *batch)`` returning a scalar, written with NumPy; ``batch`` holds
        the rows of each array of ``data`` for one mini-batch.
    params : pytree
        Initial parameters: an array, or a dict/list/tuple of arrays and numbers.  Not
        modified.
    data : tuple of array_like
        The training arrays, e.g. ``(X, y)``, sharing their first axis (one row per
        sample).  A single array is taken as ``(array,)``.
    optimizer : Optimizer
        E.g. ``Adam(lr=1e-2)``.  Its state carries over between calls to ``fit``
        (call ``optimizer.reset()`` to start afresh).
    epochs : int, optional
        Number of passes over the data (>= 1).
    batch_size : int or None, optional
        Samples per mini-batch; ``None`` means the whole data set (full-batch
        gradient descent).  When it does not divide the number of samples the last
        batch of an epoch is smaller (see ``drop_last``).
    shuffle : bool, optional
        Visit the samples in a new random order each epoch.
    seed : int, numpy.random.Generator or None, optional
        Seed of the shuffling: each epoch uses ``rng.permutation(n)`` with ``rng =
        numpy.random.default_rng(seed)``, so equal seeds give equal runs.
    validation_data : tuple of array_like, optional
        Arrays like ``data`` on which ``loss(params, *validation_data)`` is evaluated
        (in one call, no gradient) at the end of each epoch.
    callback : callable, optional
        ``callback(epoch, params, history)`` called after each epoch (``epoch`` is its
        0-based index, ``history`` the :class:`History` so far).  Returning a true
        value (e.g. ``True``) stops training; ``None`` continues.
    patience : int or None, optional
        Early stopping: stop when the monitored loss (the validation loss if
        ``validation_data`` is given, else the training loss) has not improved on its
        best by more than ``min_delta`` for ``patience`` consecutive epochs.  ``None``
        (default) disables it.
    min_delta : float, optional
        The smallest decrease that counts as an improvement (>= 0).
    restore_best : bool, optional
        With ``patience`` set, return the parameters of the best epoch rather than the
        last ones.
    drop_last : bool, optional
        Skip the last, smaller batch of each epoch.
    progress : bool or None, optional
        Show a progress bar on standard error: with ``tqdm`` if it is installed,
        otherwise a simple text bar.  ``None`` (default) shows it only when standard
        error is a terminal.
    mode : {"reverse", "forward", "auto"}, optional
        Differentiation mode for the gradients (reverse suits many parameters).

    Returns
    -------
    params : pytree
        The trained parameters, with the structure of ``params``.
    history : History
        The per-epoch training (and validation) losses, the best epoch and why training
        stopped.

    Raises
    ------
    FloatingPointError
        If a mini-batch loss is NaN or infinite (the epoch and batch are named; lower
        the learning rate or check the data).
    ValueError
        For arrays of ``data`` of different lengths, no samples, or bad ``epochs``,
        ``batch_size``, ``patience`` or ``min_delta`` values; and from
        ``optimizer.step`` or :func:`dualad.value_and_grad` (a non-scalar loss).
    TypeError
        For a ``loss`` or ``callback`` that is not callable, or an optimizer without a
        ``step`` method.

    See Also
    --------
    SGD, Adam, AdamW, History, dualad.value_and_grad

    Notes
    -----
    One step costs one recorded evaluation of ``loss`` on the batch and one backward
    sweep (reverse mode), plus the optimizer's few vectorised operations on the
    flattened parameters.  When the data fit in memory and the model is small, a
    full-batch quasi-Newton method is often faster and needs no learning rate: see the
    user guide's training chapter.

    Examples
    --------
    Fit a line ``y = 2x - 1`` by least squares:

    >>> from dualad.optim import Adam, fit
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(-1, 1, size=200)
    >>> y = 2 * x - 1
    >>> def loss(p, x, y):
    ...     return np.mean((p["a"] * x + p["b"] - y) ** 2)
    >>> params, history = fit(loss, {"a": 0.0, "b": 0.0}, (x, y), Adam(lr=0.05),
    ...                       epochs=30, batch_size=20, seed=0)
    >>> round(float(params["a"]), 3), round(float(params["b"]), 3)
    (2.0, -1.0)
    >>> history.epochs, history.loss[-1] < 1e-6
    (30, True)
    """
    if not callable(loss):
        raise TypeError(f"loss must be a callable loss(params, *batch), got {loss!r}")
    if not callable(getattr(optimizer, "step", None)):
        raise TypeError("optimizer must have a step(params, grads) method, e.g. "
                        f"dualad.optim.Adam(lr=1e-3); got {optimizer!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable(epoch, params, history), got "
                        f"{callback!r}")
    arrays, n = _as_data(data, "data")
    val = None if validation_data is None else _as_data(validation_data,
                                                        "validation_data")[0]
    epochs = _positive_int("epochs", epochs)
    batch_size = _positive_int("batch_size", batch_size, allow_none=True)
    bs = n if batch_size is None else min(batch_size, n)
    if drop_last and batch_size is not None and batch_size > n:
        raise ValueError(f"batch_size={batch_size} is larger than the {n} samples and "
                         "drop_last=True would drop every batch")
    patience = _positive_int("patience", patience, allow_none=True, minimum=0)
    min_delta = _non_negative("min_delta", min_delta)
    pytree.ravel(params)  # validates the leaves up front (TypeError naming the path)

    n_batches = n // bs if drop_last else -(-n // bs)
    rng = np.random.default_rng(seed) if shuffle else None
    f_and_g = value_and_grad(loss, mode=mode)
    history = History()
    history.monitor = "loss" if val is None else "val_loss"
    best_params = params
    since_best = 0
    bar = _progress_bar(progress, epochs * n_batches)
    try:
        for epoch in range(epochs):
            order = rng.permutation(n) if shuffle else None
            total = 0.0
            seen = 0
            for b in range(n_batches):
                start, stop = b * bs, min((b + 1) * bs, n)
                if shuffle:
                    idx = order[start:stop]
                    batch = [a[idx] for a in arrays]
                else:
                    batch = [a[start:stop] for a in arrays]
                value, grads = f_and_g(params, *batch)
                value = float(value)
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"the loss is {value} at epoch {epoch}, batch {b} (0-based): "
                        "training diverged or the data hold non-finite values; lower "
                        "the learning rate or check the data")
                params = optimizer.step(params, grads)
                total += value * (stop - start)
                seen += stop - start
                if bar is not None:
                    bar.update(1)
            history.loss.append(total / seen)
            if val is not None:
                history.val_loss.append(float(loss(params, *val)))
            monitored = (history.val_loss if val is not None else history.loss)[-1]
            # NaN compares False, so it never counts as an improvement
            improved = not math.isnan(monitored) and (
                history.best_epoch is None or monitored < history.best_loss - min_delta)
            if improved:
                history.best_loss = monitored
                history.best_epoch = epoch
                best_params = params
                since_best = 0
            else:
                since_best += 1
            if bar is not None:
                text = f"epoch {epoch + 1}/{epochs} loss {history.loss[-1]:.4g}"
                if val is not None:
                    text += f" val_loss {history.val_loss[-1]:.4g}"
                bar.set_postfix_str(text)
            if callback is not None and callback(epoch, params, history):
                history.stop_reason = "callback"
                break
            if patience is not None and not improved and since_best >= patience:
                history.stop_reason = "patience"
                break
    finally:
        if bar is not None:
            bar.close()
    if patience is not None and restore_best and history.best_epoch is not None:
        params = best_params
    return params, history
