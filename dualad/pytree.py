"""Pytrees: nested dicts, lists and tuples of arrays, flattened to one float64 vector.

Design note
-----------
This module owns the containers that :func:`dualad.grad` and
:func:`dualad.value_and_grad` accept in place of a single array (a model's parameters as
``{"W1": ..., "b1": ...}``, a tuple ``(w, b)``...).  It knows nothing about derivatives:
the transforms *ravel* the tree into one float64 vector, differentiate ``fun`` composed
with :class:`Unravel` (which rebuilds the tree from slices and reshapes of the traced
vector, so every leaf is an ordinary traced value and all existing rules apply), and
unravel the gradient.  The engines therefore only ever see one flat array.  The same
:func:`ravel` serves SciPy, whose optimizers want a flat ``x``.

Conventions (documented in :func:`ravel`):

* containers are ``dict`` (and its subclasses, e.g. ``OrderedDict``), ``list``,
  ``tuple`` (and named tuples) and ``None`` (an empty subtree);
* dict keys keep their insertion order; nothing is sorted;
* leaves are ndarrays (any shape, 0-d included), numbers, and dualad's traced values;
  integers and booleans are promoted to float64; complex values and other objects raise
  ``TypeError`` naming the leaf's path;
* a ``list``/``tuple`` *at the top* of a differentiation input is a container only if
  it holds an ndarray, a traced array, a dict or ``None`` somewhere; a (nested) list of
  plain numbers stays array_like, as it always was (``grad(f)([1.0, 2.0])`` returns an
  ndarray).  Inside a container, every list or tuple is a container;
* unravelling gives float64 arrays of the original shapes (0-d arrays stay 0-d arrays)
  and ``numpy.float64`` scalars (a ``float`` subclass) where the leaf was a number.
"""

import math

import numpy as np

from . import _tape
from ._array import DualArray, is_tracer
from .forward import as_input

__all__ = ["ravel", "flatten", "is_tree", "Unravel", "TreeDef"]

_COMPLEX = ("complex values are not supported in a pytree: dualad differentiates real "
            "float64 functions. Split the leaf into real and imaginary parts")

# leaf kinds
_ARRAY = "array"    # an ndarray (or array tracer): rebuilt with its shape
_SCALAR = "scalar"  # a number (or scalar tracer): rebuilt as a scalar


def _is_array_leaf(x):
    """An ndarray or a traced array (any shape); traced numbers are scalar leaves."""
    return (isinstance(x, np.ndarray) or type(x) is DualArray
            or type(x) is _tape.RArray)


def is_tree(x):
    """Whether ``x`` is a container the transforms flatten (see :func:`ravel`).

    Dicts always are.  A list or tuple is one when an ndarray, a traced array, a dict or
    ``None`` occurs in it at any depth; a nested list of numbers is array_like.

    Parameters
    ----------
    x : object
        A differentiation input.

    Returns
    -------
    bool

    Examples
    --------
    >>> import numpy as np
    >>> from dualad.pytree import is_tree
    >>> is_tree([1.0, 2.0]), is_tree([np.zeros(2), np.zeros(3)]), is_tree({"a": 1.0})
    (False, True, True)
    """
    if isinstance(x, dict):
        return True
    if isinstance(x, (list, tuple)):
        return any(e is None or isinstance(e, dict) or _is_array_leaf(e) or is_tree(e)
                   for e in x)
    return False


class TreeDef:
    """TreeDef(kind, meta, children)

    The structure of a pytree without its leaves (internal; made by :func:`flatten`).

    Parameters
    ----------
    kind : str
        ``"dict"``, ``"list"``, ``"tuple"``, ``"namedtuple"``, ``"none"``, or a leaf kind
        ``"array"``/``"scalar"``.
    meta : object
        The dict type and keys, the named tuple type, or a leaf's shape.
    children : tuple of TreeDef
        The subtrees (empty for a leaf).

    Examples
    --------
    >>> import numpy as np
    >>> from dualad.pytree import flatten
    >>> leaves, treedef = flatten({"a": np.zeros(2), "b": (1.0, None)})
    >>> treedef
    TreeDef({'a': array(2,), 'b': (scalar, None)})
    >>> treedef.num_leaves
    2
    """

    __slots__ = ("kind", "meta", "children", "num_leaves")

    def __init__(self, kind, meta, children):
        self.kind = kind
        self.meta = meta
        self.children = tuple(children)
        leaf = kind in (_ARRAY, _SCALAR)
        self.num_leaves = 1 if leaf else sum(c.num_leaves for c in self.children)

    def __eq__(self, other):
        return (type(other) is TreeDef and self.kind == other.kind
                and self.meta == other.meta and self.children == other.children)

    def __hash__(self):
        return hash((self.kind, self.children))

    def __reduce__(self):
        return TreeDef, (self.kind, self.meta, self.children)

    def __repr__(self):
        return f"TreeDef({self._str()})"

    def _str(self):
        k = self.kind
        if k == _ARRAY:
            return "array(" + ",".join(str(d) for d in self.meta) + ("," if len(
                self.meta) == 1 else "") + ")"
        if k == _SCALAR:
            return "scalar"
        if k == "none":
            return "None"
        inner = [c._str() for c in self.children]
        if k == "dict":
            items = ", ".join(f"{key!r}: {s}" for key, s in zip(self.meta[1], inner))
            name = "" if self.meta[0] is dict else self.meta[0].__name__
            return f"{name}{{{items}}}"
        if k == "list":
            return "[" + ", ".join(inner) + "]"
        if k == "tuple":
            return "(" + ", ".join(inner) + ("," if len(inner) == 1 else "") + ")"
        return f"{self.meta.__name__}(" + ", ".join(inner) + ")"

    def unflatten(self, leaves):
        """The tree with this structure holding ``leaves`` (in :func:`flatten` order)."""
        leaves = list(leaves)
        if len(leaves) != self.num_leaves:
            raise ValueError(f"this tree has {self.num_leaves} leaves, got {len(leaves)}")
        return self._build(iter(leaves))

    def _build(self, it):
        k = self.kind
        if k == _ARRAY or k == _SCALAR:
            return next(it)
        if k == "none":
            return None
        children = [c._build(it) for c in self.children]
        if k == "dict":
            cls, keys = self.meta
            if cls is dict:
                return dict(zip(keys, children))
            try:  # OrderedDict and friends take the pairs
                return cls(zip(keys, children))
            except TypeError:  # e.g. defaultdict: its first argument is the factory
                return dict(zip(keys, children))
        if k == "list":
            return children
        if k == "tuple":
            return tuple(children)
        return self.meta(*children)


def _leaf_kind(x, path):
    if isinstance(x, (complex, np.complexfloating)) or (
            isinstance(x, np.ndarray) and np.iscomplexobj(x)):
        raise TypeError(_COMPLEX + f" (the leaf at {path or 'the root'})")
    if _is_array_leaf(x):
        if isinstance(x, np.ndarray) and x.dtype == object:
            return _ARRAY, tuple(x.shape)
        if isinstance(x, np.ndarray) and x.dtype.kind not in "biuf":
            raise TypeError(f"the pytree leaf at {path or 'the root'} is an array of dtype "
                            f"{x.dtype}; leaves must be numeric arrays or numbers")
        return _ARRAY, tuple(x.shape)
    if is_tracer(x) or isinstance(x, (float, int, np.number, np.bool_)):
        return _SCALAR, ()
    raise TypeError(f"the pytree leaf at {path or 'the root'} is a "
                    f"{type(x).__name__}; leaves must be arrays or numbers, and the "
                    "containers dicts, lists, tuples or None")


def _flatten(x, leaves, path):
    if x is None:
        return TreeDef("none", None, ())
    if isinstance(x, dict):
        keys = tuple(x.keys())
        children = [_flatten(x[key], leaves, f"{path}[{key!r}]") for key in keys]
        return TreeDef("dict", (type(x), keys), children)
    if isinstance(x, (list, tuple)):
        children = [_flatten(e, leaves, f"{path}[{i}]") for i, e in enumerate(x)]
        if isinstance(x, list):
            return TreeDef("list", None, children)
        if hasattr(type(x), "_fields"):
            return TreeDef("namedtuple", type(x), children)
        return TreeDef("tuple", None, children)
    kind, shape = _leaf_kind(x, path)
    leaves.append(x)
    return TreeDef(kind, shape, ())


def flatten(tree):
    """The leaves of a pytree, in order, and its structure.

    Parameters
    ----------
    tree : dict, list, tuple, ndarray or number
        A (nested) container of arrays and numbers; a bare array or number is a tree
        with one leaf.

    Returns
    -------
    leaves : list
        The leaves, depth first, dict keys in insertion order.
    treedef : TreeDef
        The structure; ``treedef.unflatten(leaves)`` rebuilds the tree.

    Raises
    ------
    TypeError
        For a leaf that is not an array or a number (its path is named), or complex.

    Examples
    --------
    >>> import numpy as np
    >>> from dualad.pytree import flatten
    >>> leaves, treedef = flatten([np.ones(2), {"c": 3.0}])
    >>> leaves
    [array([1., 1.]), 3.0]
    >>> treedef.unflatten([np.zeros(2), 4.0])
    [array([0., 0.]), {'c': 4.0}]
    """
    leaves = []
    treedef = _flatten(tree, leaves, "")
    return leaves, treedef


def _flat_part(leaf):
    """One leaf as a 1-D float64 piece (a traced piece for a traced leaf)."""
    if is_tracer(leaf):
        return np.reshape(leaf, (-1,))
    if isinstance(leaf, np.ndarray) and leaf.dtype == object:
        return np.reshape(as_input(leaf), (-1,))  # an object array of traced numbers
    return np.asarray(leaf, dtype=np.float64).reshape(-1)


class Unravel:
    """Unravel(treedef)

    ``unravel(vec)`` rebuilds a pytree from a flat vector; returned by :func:`ravel`.

    Calling it with a plain vector gives float64 arrays (fresh copies: they never share
    memory with ``vec``) and ``numpy.float64`` scalars; with a traced vector (inside a
    differentiation) the leaves are traced slices and reshapes of it.  Unravel objects
    compare equal when their tree structures are equal, and pickle.

    Parameters
    ----------
    treedef : TreeDef
        The structure (from :func:`flatten`).

    Attributes
    ----------
    treedef : TreeDef
        The structure.
    size : int
        The length of the flat vector.

    Examples
    --------
    >>> import numpy as np
    >>> import dualad
    >>> flat, unravel = dualad.ravel({"w": np.ones((2, 2)), "b": 0.5})
    >>> unravel.size
    5
    >>> unravel(np.arange(5.0))
    {'w': array([[0., 1.],
           [2., 3.]]), 'b': np.float64(4.0)}
    """

    __slots__ = ("treedef", "size", "_slots")

    def __init__(self, treedef):
        self.treedef = treedef
        slots = []
        start = 0
        for leaf in _leaf_defs(treedef):
            if leaf.kind == _SCALAR:
                slots.append((start, start + 1, None))
                start += 1
            else:
                n = math.prod(leaf.meta)
                slots.append((start, start + n, leaf.meta))
                start += n
        self._slots = tuple(slots)
        self.size = start

    def __eq__(self, other):
        return type(other) is Unravel and self.treedef == other.treedef

    def __hash__(self):
        return hash(self.treedef)

    def __reduce__(self):
        return Unravel, (self.treedef,)

    def __repr__(self):
        return f"<dualad unravel: {self.size} values -> {self.treedef._str()}>"

    def __call__(self, vec):
        return self._unravel(vec, copy=True)

    def _unravel(self, vec, copy):
        traced = is_tracer(vec)
        if not traced:
            if isinstance(vec, complex) or np.iscomplexobj(vec):
                raise TypeError(_COMPLEX)
            vec = np.asarray(vec, dtype=np.float64)
        shape = tuple(vec.shape)
        if shape != (self.size,):
            raise ValueError(f"unravel expects a vector of shape ({self.size},), got "
                             f"shape {shape}")
        leaves = []
        for start, stop, leaf_shape in self._slots:
            if leaf_shape is None:
                leaves.append(vec[start])
            elif traced:
                leaf = np.reshape(vec[start:stop], leaf_shape)
                if copy and type(leaf) is _tape.RArray:
                    leaf.view = ()  # a copy as far as writes go (as for plain leaves)
                leaves.append(leaf)
            else:
                piece = vec[start:stop].reshape(leaf_shape)
                leaves.append(piece.copy() if copy else piece)
        return self.treedef._build(iter(leaves))


def _leaf_defs(treedef):
    if treedef.kind in (_ARRAY, _SCALAR):
        yield treedef
        return
    for c in treedef.children:
        yield from _leaf_defs(c)


def ravel(tree):
    """Flatten a pytree of arrays into one float64 vector, and the inverse.

    Parameters
    ----------
    tree : dict, list, tuple, ndarray or number
        A (nested) container of arrays and numbers, e.g. a model's parameters
        ``{"W": W, "b": b}``.  Containers are ``dict`` (and subclasses such as
        ``OrderedDict``), ``list``, ``tuple`` (named tuples too) and ``None`` (an empty
        subtree); leaves are ndarrays of any shape and numbers.  Integer and boolean
        leaves are promoted to float64.

    Returns
    -------
    flat : ndarray, shape (n,)
        The leaves' values, each raveled in C order and concatenated depth first, dict
        keys in insertion order (they are not sorted).  Always a new float64 array.
    unravel : Unravel
        ``unravel(vec)`` rebuilds the tree from any vector of shape ``(n,)``: the same
        containers and keys in the same order, each array leaf a float64 array of its
        original shape (a 0-d array stays a 0-d array), each number leaf a
        ``numpy.float64`` scalar (a ``float``).  Picklable.

    Raises
    ------
    TypeError
        For a leaf that is not an array or a number (its path in the tree is named),
        or complex leaves.
    ValueError
        From ``unravel`` for a vector of the wrong shape.

    See Also
    --------
    grad, value_and_grad

    Notes
    -----
    This is what :func:`grad` and :func:`value_and_grad` do with a tree ``x``: ravel it,
    differentiate ``fun(unravel(v), *args)`` with respect to the flat ``v`` (inside the
    differentiation ``unravel`` builds the leaves from slices of the traced ``v``), and
    unravel the gradient.  ``ravel`` also works on trees of traced values (nested
    differentiation); ``flat`` is then a traced vector.

    A list or tuple passed as ``x`` to :func:`grad` is a tree only when it holds an
    ndarray, a dict or ``None`` somewhere; a list of numbers is treated as array_like,
    as NumPy would.

    Examples
    --------
    SciPy optimizers want a flat ``x``; ``ravel`` converts a parameter dict both ways:

    >>> import numpy as np
    >>> import dualad
    >>> params = {"W": np.array([[1.0, 2.0], [3.0, 4.0]]), "b": np.array([0.5, -0.5])}
    >>> flat, unravel = dualad.ravel(params)
    >>> flat
    array([ 1. ,  2. ,  3. ,  4. ,  0.5, -0.5])
    >>> unravel(2 * flat)
    {'W': array([[2., 4.],
           [6., 8.]]), 'b': array([ 1., -1.])}

    With ``scipy.optimize.minimize`` and a gradient over the same tree:

    >>> from scipy.optimize import minimize
    >>> def loss(p):
    ...     return np.sum((p["W"] @ np.ones(2) + p["b"] - 1.0) ** 2)
    >>> g = dualad.grad(loss, mode="reverse")
    >>> res = minimize(lambda v: loss(unravel(v)), flat, method="BFGS",
    ...                jac=lambda v: dualad.ravel(g(unravel(v)))[0])
    >>> bool(res.success), round(float(res.fun), 12)
    (True, 0.0)
    """
    leaves, treedef = flatten(tree)
    unravel = Unravel(treedef)
    if not leaves:
        return np.zeros(0), unravel
    parts = [_flat_part(leaf) for leaf in leaves]
    if any(is_tracer(p) for p in parts):
        flat = np.concatenate(parts) if len(parts) > 1 else np.reshape(parts[0], (-1,))
    else:
        flat = np.concatenate(parts) if len(parts) > 1 else parts[0].copy()
    return flat, unravel
