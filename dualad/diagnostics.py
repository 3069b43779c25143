"""Diagnostics: check derivatives against finite differences, look at the recorded graph,
find the operation where a NaN or an infinity started.

Design note
-----------
This module owns three tools and delegates the differentiation to the public transforms
and the reverse-mode tape:

* :func:`~dualad.check_grad` compares a derivative (dualad's own, or one the user
  wrote) with an independent reference: 4th-order central differences, and dualad's
  exact derivative when the user's is being checked.  It is a test oracle, so it never trusts the thing
  it checks: the differences only call ``f`` on plain float64 arrays.
* :func:`~dualad.trace` records one reverse-mode evaluation with an *observer* on the tape
  (:attr:`dualad._tape.Tape.observer`): every recorded node is reported with the name of
  the NumPy operation that made it and its value, and the observer notes the user's
  source line (the first stack frame outside dualad, NumPy and SciPy).  A backward sweep
  asked for every node's adjoint then gives the gradient arriving at each node.
* :func:`find_nonfinite` records the same way and, when the value or the gradient is not
  finite, walks the recorded graph back to the first operation that produced the NaN or
  the infinity, in its value or in its local derivative.  The transforms call it for
  ``check_finite=True``.

None of this costs anything when unused: without an observer the tape's hooks are one
test of a C integer per recorded node (see :mod:`dualad._tape`).
"""

import collections
import linecache
import math
import os
import sys

import numpy as np

from . import _tape, pytree, reverse
from ._tags import new_tag
from .forward import as_input

__all__ = ["GradientCheck", "Graph", "Node", "check_grad", "trace"]

_EPS = np.finfo(np.float64).eps
# 4th-order central differences: error h**4 f^(5) / 30 + rounding ~ eps |f| / h; the step
# eps**(1/5) balances the two (Numerical Recipes, section 5.7).
_STEP = _EPS ** 0.2
# the rounding allowance: this many times the rounding error bound of the difference
# formula, for function values each correct to one ulp
_NOISE = 10.0
_MODES = ("auto", "forward", "reverse")


# ---------------------------------------------------------------------------------------
# source locations: the first frame outside dualad, NumPy and SciPy

def _package_dirs():
    dirs = [os.path.dirname(os.path.abspath(__file__))]
    for name in ("numpy", "scipy"):
        module = sys.modules.get(name)
        if module is None:
            try:
                module = __import__(name)
            except ImportError:  # pragma: no cover - both are dependencies
                continue
        dirs.append(os.path.dirname(os.path.abspath(module.__file__)))
    return tuple(d + os.sep for d in dirs)


_INTERNAL_DIRS = _package_dirs()
_INTERNAL_FILES = {}  # co_filename -> inside dualad/NumPy/SciPy


def _is_internal(filename):
    internal = _INTERNAL_FILES.get(filename)
    if internal is None:
        if filename.startswith("<"):
            # "<rule sin.d0>": the rule table's compiled partials (dualad.rules._codegen);
            # other pseudo-files ("<stdin>", "<doctest ...>", "<string>") are user code
            internal = filename.startswith("<rule ")
        else:
            internal = os.path.abspath(filename).startswith(_INTERNAL_DIRS)
        _INTERNAL_FILES[filename] = internal
    return internal


def _short_path(filename):
    """A path relative to the working directory when it lies below it."""
    try:
        cwd = os.getcwd()
    except OSError:  # pragma: no cover - the working directory was removed
        return filename
    absolute = os.path.abspath(filename)
    if absolute.startswith(cwd + os.sep):
        return os.path.relpath(absolute, cwd)
    return filename


# ---------------------------------------------------------------------------------------
# recording with the tape's observer

# names of nodes recorded outside a NumPy dispatch, from the function that recorded them
_RECORDER_NAMES = {"_SliceVJP": "getitem", "_SumAllVJP": "sum", "_ElemVJP": "elementwise",
                   "_as_rarray": "asarray", "_to_objects": "asarray",
                   "stack_objects": "stack", "_getitem": "getitem",
                   "_setitem": "setitem"}


def _fallback_name(kind, payload):
    """A node's operation when no NumPy dispatch named it."""
    if kind == "leaf":
        return "constant"
    if kind == "element":
        return "getitem"
    if kind != "array":
        return kind
    vjp = payload[0]
    qualname = getattr(vjp, "__qualname__", None) or type(vjp).__name__
    outer = qualname.split(".<locals>")[0].split(".")[0]
    return _RECORDER_NAMES.get(outer, outer.lstrip("_") or "array")


class _Recorder:
    """The tape's observer: ``nodes[i] = (op, value, location, within)`` per node."""

    __slots__ = ("nodes",)

    def __init__(self):
        self.nodes = {}

    def __call__(self, node, op, value):
        # the location must be read now: frames move on
        frame = sys._getframe(1)
        while frame is not None:
            code = frame.f_code
            internal = _INTERNAL_FILES.get(code.co_filename)
            if internal is None:
                internal = _is_internal(code.co_filename)
            if not internal:
                break
            frame = frame.f_back
        where = None if frame is None else (code.co_filename, frame.f_lineno, code.co_name)
        stack = getattr(_tape._local, "ops", None)
        within = ()
        if stack:
            # the enclosing NumPy functions, without repeats (a nested differentiation
            # dispatches the same function once per level) and without op itself
            names = [n for k, n in enumerate(stack) if k == 0 or n != stack[k - 1]]
            if names[-1] == op:
                names.pop()
            within = tuple(names)
        self.nodes[node] = (op, value, where, within)


_UNSEEN = (None, None, None, ())


class _Recording:
    """One observed evaluation of ``fun(x, *args)`` on a fresh tape."""

    def __init__(self, fun, x, args):
        if not callable(fun):
            raise TypeError(f"expected a callable, got {type(fun).__name__}")
        x = as_input(x, "reverse")
        self.x_shape = tuple(np.shape(_tape.primal(x)))
        tape = _tape.Tape(new_tag())
        rec = _Recorder()
        tape.observer = rec
        try:
            rx, self.xnode = reverse._seed(x, tape)
            out = fun(rx, *args)
            self.value, self.onode = reverse._output(out, tape)
        finally:
            tape.observer = None
        self.tape = tape
        self.nodes = rec.nodes
        self.size = tape.size
        self._infos = {}
        self._contributions = {}

    def info(self, i):
        found = self._infos.get(i)
        if found is None:
            found = self._infos[i] = self.tape.node_info(i)
        return found

    def op(self, i):
        op = self.nodes.get(i, _UNSEEN)[0]
        if op is not None:
            return op
        kind, _, payload = self.info(i)
        if kind == "leaf" and i == self.xnode:
            return "input"
        return _fallback_name(kind, payload)

    def parents(self, i):
        return self.info(i)[1]

    def value_of(self, i):
        return self.nodes.get(i, _UNSEEN)[1]

    def location(self, i):
        return self.nodes.get(i, _UNSEEN)[2]

    def within(self, i):
        return self.nodes.get(i, _UNSEEN)[3]

    def seed(self, cotangent=None):
        """The cotangent of the output: 1.0 for a scalar, ones for an array, or given."""
        shape = tuple(np.shape(_tape.primal(self.value)))
        if cotangent is None:
            return np.float64(1.0) if shape == () else np.ones(shape)
        if isinstance(cotangent, complex) or np.iscomplexobj(cotangent):
            raise TypeError("the cotangent must be real")
        cot = np.asarray(cotangent, dtype=np.float64)
        if cot.shape != shape:
            raise ValueError(f"the cotangent must have the output's shape {shape}, got "
                             f"{cot.shape}")
        if not np.all(np.isfinite(cot)):
            raise ValueError("the cotangent must be finite")
        return cot[()] if shape == () else cot

    def adjoints(self, seed, nodes=None):
        """The adjoints of ``nodes`` (all by default) after one sweep from the output
        (None: not reached)."""
        wanted = list(range(self.size)) if nodes is None else list(nodes)
        if self.onode < 0:
            return [None] * len(wanted)
        swept = [i for i in wanted if i <= self.onode]
        with np.errstate(all="ignore"):  # non-finite adjoints are what we look for
            adj = dict(zip(swept, self.tape.backward(self.onode, seed, swept)))
        return [adj.get(i) for i in wanted]

    def contributions(self, i, adjoint):
        """``[(parent, cotangent)]`` node ``i`` sends its parents for its adjoint."""
        found = self._contributions.get(i)
        if found is not None:
            return found
        out = []
        kind, parents, payload = self.info(i)
        if adjoint is not None:
            if kind == "scalar":
                for p, d in zip(parents, payload):
                    # a zero on either side annihilates, as in the sweep
                    out.append((p, 0.0 if d == 0.0 or adjoint == 0.0 else d * adjoint))
            elif kind == "element":
                out.append((parents[0], adjoint))
            elif kind == "array":
                vjp, operands = payload
                with np.errstate(all="ignore"):
                    cots = vjp(adjoint)
                for p, c in zip(operands, cots):
                    if p >= 0 and c is not None:
                        if type(c) is _tape.Scatter:
                            c = c.cotangent
                        out.append((p, c))
        self._contributions[i] = out
        return out


def _plain(value):
    """The plain float64 value (or None) behind a value, adjoint or cotangent."""
    if value is None:
        return None
    if type(value) is _tape.Scatter:
        value = value.cotangent
    return np.asarray(_tape.primal(value), dtype=np.float64)


def _all_finite(value):
    v = _plain(value)
    return v is None or bool(np.isfinite(v).all())


# ---------------------------------------------------------------------------------------
# trace: the graph

class Node:
    """Node

    One recorded operation of a :class:`Graph` (made by :func:`~dualad.trace`).

    Attributes
    ----------
    id : int
        Its position in evaluation order (node ids are also the indices in
        ``graph.nodes``).
    op : str
        The operation: the NumPy name (``"sin"``, ``"multiply"``, ``"divide"``,
        ``"sum"``, ``"matmul"``...), ``"getitem"``/``"setitem"`` for indexing,
        ``"input"`` for ``x``, ``"constant"`` for an array made inside ``f`` (such as
        ``np.zeros_like(x)``).
    kind : str
        How the tape stores it: ``"leaf"``, ``"array"`` (an array operation),
        ``"scalar"`` (arithmetic on one element, e.g. in a Python loop) or ``"element"``
        (reading one element of an array).
    shape : tuple of int
        The shape of its value (``()`` for a number).
    parents : tuple of int
        The nodes it was computed from (constants are not nodes).
    within : tuple of str
        The NumPy functions being evaluated when it was recorded, outermost first (for
        example ``("norm",)`` for the ``sqrt`` that ``np.linalg.norm`` computes); empty
        for an operation of your own code.
    filename, lineno, function : str, int, str
        The source line of your code that performed it: the first stack frame outside
        dualad, NumPy and SciPy (None if there is none).
    value : float or ndarray
        Its value.
    grad : float or ndarray or None
        The adjoint: the derivative of the traced output with respect to this node's
        value, after the backward sweep.  None when no derivative reaches the node
        (it does not influence the output).

    Examples
    --------
    >>> g = dualad.trace(lambda x: np.sum(np.sin(x)), np.array([0.0, 1.0]))
    >>> node = g.nodes[1]
    >>> node.op, node.shape, node.parents
    ('sin', (2,), (0,))
    >>> node.grad   # d sum / d sin(x) = 1
    array([1., 1.])
    """

    __slots__ = ("filename", "function", "grad", "id", "kind", "lineno", "op", "parents",
                 "shape", "value", "within")

    def __init__(self, id, op, kind, shape, parents, within, location, value, grad):
        self.id = id
        self.op = op
        self.kind = kind
        self.shape = shape
        self.parents = parents
        self.within = within
        self.filename, self.lineno, self.function = location or (None, None, None)
        self.value = value
        self.grad = grad

    @property
    def location(self):
        """str or None: ``"file:line"`` of the source line (path relative to the working
        directory when below it)."""
        if self.filename is None:
            return None
        return f"{_short_path(self.filename)}:{self.lineno}"

    @property
    def source(self):
        """str: the text of the source line (empty if unavailable)."""
        if self.filename is None:
            return ""
        return linecache.getline(self.filename, self.lineno).strip()

    @property
    def value_norm(self):
        """float: the 2-norm of the value (its absolute value for a number)."""
        return _norm(self.value)

    @property
    def grad_norm(self):
        """float or None: the 2-norm of the adjoint; None when no gradient reaches the
        node."""
        return None if self.grad is None else _norm(self.grad)

    def __repr__(self):
        where = f" at {self.location}" if self.location else ""
        return (f"<Node {self.id}: {self.op} {self.shape} parents={list(self.parents)}"
                f"{where}>")


def _norm(value):
    v = _plain(value)
    if v is None:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sqrt(np.sum(v * v))) if v.ndim else float(abs(v))


def _fmt(x):
    if x is None:
        return "-"
    return f"{x:.3e}"


def _dot_string(text):
    """``text`` as a quoted DOT string: backslashes and quotes escaped, newlines as
    ``\\n`` escapes (DOT's centred line break)."""
    text = str(text).replace("\\", "\\\\").replace('"', '\\"')
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return f'"{text}"'


class Graph:
    """Graph

    The recorded evaluation of ``f`` at one point, made by :func:`~dualad.trace`: its
    nodes in evaluation order with their operations, shapes, source lines, values and
    the gradient arriving at each.

    Attributes
    ----------
    nodes : list of Node
        In evaluation order; ``nodes[i].id == i``.
    input : int
        The node of ``x``.
    output : int
        The node of ``f``'s value (-1 if the value does not depend on ``x``).
    value : float or ndarray
        ``f(x, *args)``.
    grad : ndarray or pytree
        The gradient of ``f`` at ``x`` (of ``sum(cotangent * f)`` for an array
        output), with the shape (or tree structure) of ``x``; equal to what
        :func:`dualad.grad` returns.

    Examples
    --------
    >>> def f(x):
    ...     y = np.sin(x) * x
    ...     return np.sum(y)
    >>> g = dualad.trace(f, np.array([1.0, 2.0]))
    >>> [node.op for node in g.nodes]
    ['input', 'sin', 'multiply', 'sum']
    >>> g.edges
    [(0, 1), (1, 2), (0, 2), (2, 3)]
    >>> g.grad
    array([1.38177329, 0.07700375])
    """

    def __init__(self, nodes, input, output, value, grad):
        self.nodes = nodes
        self.input = input
        self.output = output
        self.value = value
        self.grad = grad

    def __len__(self):
        return len(self.nodes)

    def __iter__(self):
        return iter(self.nodes)

    def __getitem__(self, i):
        return self.nodes[i]

    @property
    def edges(self):
        """list of (int, int): ``(parent, child)`` pairs, children in evaluation order."""
        return [(p, n.id) for n in self.nodes for p in n.parents]

    def __repr__(self):
        shape = self.nodes[self.input].shape if self.nodes else ()
        out = self.nodes[self.output].shape if self.output >= 0 else "constant"
        return (f"<dualad Graph: {len(self.nodes)} nodes, {len(self.edges)} edges, "
                f"input {shape}, output {out}>")

    def summary(self, max_rows=None):
        """A text table: one row per node.

        Parameters
        ----------
        max_rows : int, optional
            Show at most this many rows (the first half and the last half of the
            nodes); all by default.

        Returns
        -------
        str
            Columns: node id, operation (with the NumPy function it ran inside, if
            any), shape, parent nodes, the 2-norms of the value and of the gradient
            arriving at the node (``-``: no gradient reaches it), and the source line.

        Examples
        --------
        >>> g = dualad.trace(lambda x: np.sum(x ** 2), np.array([3.0, 4.0]))
        >>> print(g.summary())  # doctest: +ELLIPSIS
        node  op     shape  parents  |value|    |grad|     line
           0  input  (2,)   -        5.000e+00  1.000e+01  ...
           1  power  (2,)   0        1.836e+01  1.414e+00  ...
           2  sum    ()     1        2.500e+01  1.000e+00  ...
        """
        if max_rows is not None and (int(max_rows) != max_rows or max_rows < 1):
            raise ValueError(f"max_rows must be a positive integer or None, got "
                             f"{max_rows!r}")
        nodes = self.nodes
        skipped = 0
        if max_rows is not None and len(nodes) > max_rows:
            head = (max_rows + 1) // 2
            tail = max_rows - head
            skipped = len(nodes) - max_rows
            nodes = nodes[:head] + [None] + (nodes[-tail:] if tail else [])
        header = ("node", "op", "shape", "parents", "|value|", "|grad|", "line")
        rows = []
        for n in nodes:
            if n is None:
                rows.append(None)
                continue
            op = n.op if not n.within else f"{n.op} (in {'/'.join(n.within)})"
            where = ""
            if n.filename is not None:
                where = f"{os.path.basename(n.filename)}:{n.lineno} {n.function}"
            rows.append((str(n.id), op, str(n.shape),
                         ",".join(map(str, n.parents)) or "-",
                         _fmt(n.value_norm), _fmt(n.grad_norm), where))
        widths = [max([len(header[k])] + [len(r[k]) for r in rows if r is not None])
                  for k in range(len(header))]
        lines = []
        for r in [header] + rows:
            if r is None:
                lines.append(f"  ... {skipped} more nodes ...")
                continue
            cells = [r[0].rjust(widths[0])] + [r[k].ljust(widths[k])
                                               for k in range(1, len(r))]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)

    def __str__(self):
        return self.summary()

    def to_dot(self):
        """The graph in Graphviz's DOT language.

        Returns
        -------
        str
            A ``digraph``: one box per node labelled with its id, operation, shape,
            source line and gradient norm; edges from parents to children.  The input
            is an ellipse and the output has a double border; nodes whose value or
            gradient is not finite are red, nodes no gradient reaches are grey.  Render
            it with ``dot -Tsvg graph.dot -o graph.svg`` or the ``graphviz`` package.

        Examples
        --------
        >>> g = dualad.trace(lambda x: np.sum(np.exp(x)), np.array([0.0, 1.0]))
        >>> print(g.to_dot())  # doctest: +ELLIPSIS
        digraph "dualad" {
          node [shape=box, fontname="Helvetica", fontsize=10];
          n0 [label="0: input\\n(2,)\\n...\\n|grad| 2.896e+00", shape=ellipse];
          n1 [label="1: exp\\n(2,)\\n...\\n|grad| 1.414e+00"];
          n2 [label="2: sum\\n()\\n...\\n|grad| 1.000e+00", peripheries=2];
          n0 -> n1;
          n1 -> n2;
        }
        """
        lines = ['digraph "dualad" {',
                 '  node [shape=box, fontname="Helvetica", fontsize=10];']
        for n in self.nodes:
            label = [f"{n.id}: {n.op}" + (f" (in {'/'.join(n.within)})" if n.within
                                          else ""), str(n.shape)]
            if n.filename is not None:
                label.append(f"{os.path.basename(n.filename)}:{n.lineno}")
            label.append(f"|grad| {_fmt(n.grad_norm)}")
            attrs = [f"label={_dot_string(chr(10).join(label))}"]
            if n.id == self.input:
                attrs.append("shape=ellipse")
            if n.id == self.output:
                attrs.append("peripheries=2")
            vn, gn = n.value_norm, n.grad_norm
            if not (_finite_number(vn) and (gn is None or _finite_number(gn))):
                attrs.append('color="red", fontcolor="red"')
            elif gn is None:
                attrs.append('color="gray", fontcolor="gray"')
            lines.append(f"  n{n.id} [{', '.join(attrs)}];")
        for p, c in self.edges:
            lines.append(f"  n{p} -> n{c};")
        lines.append("}")
        return "\n".join(lines) + "\n"


def _finite_number(x):
    return x is not None and math.isfinite(x)


def trace(f, x, *args, cotangent=None):
    """Record one evaluation of ``f`` and return its graph, with the gradient arriving at
    every node.

    Parameters
    ----------
    f : callable
        ``f(x, *args)`` written with NumPy, as for :func:`dualad.grad`.
    x : array_like or pytree
        The point (a dict, list or tuple of arrays is flattened as by
        :func:`dualad.ravel`).
    *args
        Extra arguments passed to ``f`` unchanged.
    cotangent : array_like, optional
        For an array-valued ``f``: the weights of the backward sweep (the adjoints are
        those of ``sum(cotangent * f(x))``); ones by default.  A scalar ``f`` is swept
        from 1.0.

    Returns
    -------
    Graph
        The nodes in evaluation order, each with its operation, shape, parents, source
        line, value and adjoint (``node.grad``); ``summary()`` prints them as a table
        and ``to_dot()`` gives Graphviz DOT text.

    Raises
    ------
    TypeError
        If ``f`` is not callable, or dualad cannot differentiate it in reverse mode (the
        message names the operation).
    ValueError
        If ``cotangent`` does not have the shape of ``f``'s value.

    See Also
    --------
    check_grad, dualad.grad

    Notes
    -----
    Cost: one recorded evaluation of ``f`` and one backward sweep, plus a look at the
    Python stack for every node (for its source line), so a few microseconds per node.
    Scalar code (a loop over ``x[i]``) makes one node per arithmetic operation.

    Where a gradient *vanishes*, the adjoints drop to zero (or ``-``: nothing arrives)
    from some node on; where it *explodes* or becomes NaN, the ``|grad|`` column grows
    or turns ``inf``/``nan``.  Reading the table from the output (the last node)
    towards the input follows the backward sweep.

    Examples
    --------
    >>> def f(x):
    ...     h = np.tanh(10.0 * x)        # saturates: tiny derivative
    ...     return np.sum(h ** 2)
    >>> g = dualad.trace(f, np.array([0.05, 2.0]))
    >>> [n.op for n in g]
    ['input', 'multiply', 'tanh', 'power', 'sum']
    >>> g.nodes[1].grad          # tanh saturates at 20: its derivative rounds to 0
    array([0.72686198, 0.        ])
    >>> np.allclose(g.grad, dualad.grad(f, mode="reverse")(np.array([0.05, 2.0])))
    True
    """
    tree = pytree.is_tree(x)
    if tree:
        flat, unravel = pytree.ravel(x)
        fun = _OnTree(f, unravel)
        x = flat
    else:
        fun = f
    recording = _Recording(fun, x, args)
    seed = recording.seed(cotangent)
    adjoints = recording.adjoints(seed)
    nodes = []
    for i in range(recording.size):
        kind, parents, _ = recording.info(i)
        value = recording.value_of(i)
        grad = adjoints[i]
        if grad is not None and type(grad) is np.ndarray:
            grad = grad.copy()
        shape = () if type(value) is float else tuple(np.shape(_tape.primal(value)))
        nodes.append(Node(i, recording.op(i), kind, shape, tuple(parents),
                          recording.within(i), recording.location(i), value, grad))
    g = adjoints[recording.xnode]
    x_shape = recording.x_shape
    if g is None:
        g = np.zeros(x_shape)
    elif np.isscalar(g):
        g = np.full(x_shape, g)
    else:
        g = reverse._plain_out(g)  # (a tracer when trace runs inside a differentiation)
    if tree:
        g = unravel(g)
    value = recording.value
    if type(value) is np.ndarray and value.ndim == 0:
        value = value[()]
    return Graph(nodes, recording.xnode, recording.onode, value, g)


class _OnTree:
    """``f(unravel(v), *args)``: a function of a tree as a function of a flat vector."""

    def __init__(self, f, unravel):
        self.f = f
        self.unravel = unravel

    def __call__(self, v, *args):
        return self.f(self.unravel._unravel(v, copy=True), *args)


# ---------------------------------------------------------------------------------------
# the non-finite origin

def _first_bad(value):
    """The index of the first non-finite element, and that element."""
    v = _plain(value)
    if v.ndim == 0:
        return (), float(v)
    flat = np.flatnonzero(~np.isfinite(v))
    idx = np.unravel_index(flat[0], v.shape)
    return tuple(int(i) for i in idx), float(v[idx])


def _describe_value(x):
    if math.isnan(x):
        return "NaN"
    return "inf" if x > 0 else "-inf"


def _where(recording, i):
    loc = recording.location(i)
    if loc is None:
        return "at an unknown location"
    filename, lineno, function = loc
    text = linecache.getline(filename, lineno).strip()
    where = f"at {_short_path(filename)}:{lineno}"
    if function and function != "<module>":
        where += f" (in {function})"
    return where + (f": {text}" if text else "")


def _op_label(recording, i):
    op = recording.op(i)
    within = recording.within(i)
    return f"{op} (in {'/'.join(within)})" if within else op


def _element(value, idx, shape):
    """``value[idx]`` when value has ``shape`` (or is a number), else None."""
    v = _plain(value)
    if v is None:
        return None
    if v.ndim == 0:
        return float(v)
    if tuple(v.shape) == tuple(shape):
        return float(v[idx])
    return None


def _inputs_text(recording, i, idx, shape):
    parts = []
    for p in recording.parents(i):
        e = _element(recording.value_of(p), idx, shape)
        if e is not None:
            parts.append(repr(e))
    return ", ".join(parts)


def _value_origin(recording):
    """The first node (evaluation order) that made the output's value non-finite."""
    bad = {}

    def is_bad(i):
        if i not in bad:
            bad[i] = not _all_finite(recording.value_of(i))
        return bad[i]

    origins = []
    seen = set()
    todo = [recording.onode]
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        bad_parents = [p for p in recording.parents(i) if is_bad(p)]
        if bad_parents:
            todo.extend(bad_parents)
        else:
            origins.append(i)
    return min(origins)


def _raise_value(recording, i):
    idx, bad = _first_bad(recording.value_of(i))
    op = _op_label(recording, i)
    element = f" element {idx}" if idx != () else ""
    if op == "input":
        msg = (f"the input x has {_describe_value(bad)} at{element or ' its value'}: the "
               "value and the derivatives cannot be finite")
        raise FloatingPointError(msg)
    msg = f"{op} produced {_describe_value(bad)} {_where(recording, i)}"
    shape = np.shape(_plain(recording.value_of(i)))
    inputs = _inputs_text(recording, i, idx, shape)
    detail = []
    if element:
        detail.append(f"at{element}")
    if inputs:
        detail.append(f"from the finite input(s) {inputs}")
    else:
        detail.append("from finite traced inputs")
    raise FloatingPointError(msg + "\n  (" + ", ".join(detail) + "; the function's value "
                             "is not finite)")


def _grad_origin(recording, adjoints):
    """The first node (evaluation order) that made the input's adjoint non-finite:
    ``(node, kind)`` with kind "partial" (its local derivative turned a finite adjoint
    into a non-finite contribution) or "sum" (finite contributions summed to inf)."""
    children = collections.defaultdict(list)
    for i in range(min(recording.size, recording.onode + 1)):
        for p in recording.parents(i):
            children[p].append(i)
    origins = []
    seen = set()
    todo = [recording.xnode]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        culprits = []
        for i in children.get(p, ()):
            if adjoints[i] is None:
                continue
            for q, c in recording.contributions(i, adjoints[i]):
                if q == p and not _all_finite(c):
                    culprits.append(i)
                    break
        if not culprits:
            origins.append((p, "sum"))
            continue
        for i in culprits:
            if _all_finite(adjoints[i]):
                origins.append((i, "partial"))
            else:
                todo.append(i)
    return min(origins) if origins else None


def _raise_grad(recording, adjoints, origin):
    i, how = origin
    op = _op_label(recording, i)
    if how == "sum":
        idx, bad = _first_bad(adjoints[i])
        element = f" at element {idx}" if idx != () else ""
        raise FloatingPointError(
            f"the gradient arriving at {op} overflowed to {_describe_value(bad)}{element} "
            f"{_where(recording, i)}\n  (a sum of finite contributions is not finite)")
    for p, c in recording.contributions(i, adjoints[i]):
        if not _all_finite(c):
            break
    idx, bad = _first_bad(c)
    kind = "a NaN" if math.isnan(bad) else "an infinite"
    msg = f"{op} produced {kind} derivative {_where(recording, i)}"
    shape = np.shape(_plain(c))
    detail = []
    if idx != ():
        detail.append(f"at element {idx}")
    e = _element(recording.value_of(p), idx, shape)
    if e is not None:
        detail.append(f"where its input is {e!r}")
    raise FloatingPointError(msg + "\n  (" + ", ".join(detail) + ": a finite gradient "
                             "times this operation's local derivative gives "
                             f"{_describe_value(bad)})")


def find_nonfinite(fun, x, args=(), cotangent=None):
    """Raise ``FloatingPointError`` at the operation where a NaN or an infinity started.

    Records ``fun(x, *args)`` once in reverse mode (with the tape's observer) and sweeps
    it back once.  If the value is not finite, the error names the first operation, in
    evaluation order, whose value became NaN or infinite from finite inputs; otherwise,
    if the gradient is not finite, the first operation whose local derivative turned a
    finite gradient into a NaN or an infinity (``np.sqrt`` at 0, ``np.log`` at 0...).
    The message gives the operation, the source line in your code and the element.
    Returns normally when the value and the gradient are finite.

    This is what ``check_finite=True`` of the transforms runs before they differentiate.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args)`` written with NumPy.
    x : array_like or pytree
        The point (float64; integers are promoted); a dict, list or tuple of arrays is
        flattened as by :func:`dualad.ravel`.
    args : tuple, optional
        Extra arguments passed to ``fun`` unchanged.
    cotangent : array_like, optional
        The output weights of the backward sweep: 1.0 for a scalar output and ones
        for an array output by default (so every Jacobian row takes part).

    Returns
    -------
    None

    Raises
    ------
    FloatingPointError
        Naming the operation, ``file:line`` and the element, as described above.
    TypeError
        If ``fun`` cannot be differentiated in reverse mode (the message says why).

    See Also
    --------
    dualad.trace

    Notes
    -----
    Only a non-finite value or gradient is reported: an intermediate NaN that does not
    reach them (the unused branch of ``np.where``, an infinite partial multiplied by a
    zero cotangent) is how masked code is meant to work, and is not an error.

    Cost: one recorded evaluation, one backward sweep and a look at the Python stack
    per recorded node; a second application of a node's VJP only on the path of a
    non-finite gradient.

    Examples
    --------
    >>> from dualad.diagnostics import find_nonfinite
    >>> find_nonfinite(lambda x: np.sum(np.sqrt(x)), np.array([1.0, 4.0]))
    >>> find_nonfinite(lambda x: np.sum(np.sqrt(x)), np.array([0.0, 4.0]))
    Traceback (most recent call last):
        ...
    FloatingPointError: sqrt produced an infinite derivative at ...
    """
    if pytree.is_tree(x):
        flat, unravel = pytree.ravel(x)
        fun, x = _OnTree(fun, unravel), flat
    recording = _Recording(fun, x, args)
    if not _all_finite(recording.value):
        if recording.onode < 0:
            _, bad = _first_bad(recording.value)
            raise FloatingPointError(
                f"the function's value is {_describe_value(bad)} and does not depend on x "
                "(no recorded operation produced it)")
        _raise_value(recording, _value_origin(recording))
    if recording.onode < 0:
        return
    seed = recording.seed(cotangent)
    (g,) = recording.adjoints(seed, [recording.xnode])
    if _all_finite(g):
        return
    adjoints = recording.adjoints(seed)
    origin = _grad_origin(recording, adjoints)
    if origin is None:  # pragma: no cover - a non-finite adjoint always has a source
        raise FloatingPointError("the gradient is not finite")
    _raise_grad(recording, adjoints, origin)


# ---------------------------------------------------------------------------------------
# check_grad

Component = collections.namedtuple("Component", "index label checked reference error")
Component.__doc__ = """One derivative component of a :class:`GradientCheck`: its index in
the derivative array, a readable label, the checked and reference values and
``abs(checked - reference)``."""


def _leaf_labels(tree, path=""):
    """Labels of a pytree's leaves, depth first (as :func:`dualad.pytree.flatten`)."""
    if tree is None:
        return []
    if isinstance(tree, dict):
        out = []
        for key in tree:
            out += _leaf_labels(tree[key], f"{path}[{key!r}]")
        return out
    if isinstance(tree, (list, tuple)):
        out = []
        for k, e in enumerate(tree):
            out += _leaf_labels(e, f"{path}[{k}]")
        return out
    return [(path, tuple(np.shape(tree)))]


def _x_labels(x, tree):
    """A label per flat component of x: its index, or its leaf path and index."""
    if not tree:
        shape = np.shape(x)
        return [str(tuple(int(i) for i in idx)) for idx in np.ndindex(*shape)] \
            if shape else ["()"]
    out = []
    for path, shape in _leaf_labels(x):
        if shape == ():
            out.append(path)
        else:
            out += [f"{path}[{', '.join(map(str, idx))}]" for idx in np.ndindex(*shape)]
    return out


class GradientCheck:
    """GradientCheck

    The result of :func:`~dualad.check_grad`: a derivative compared with a reference,
    component by component.  ``bool(report)`` is ``report.passed``; ``print(report)`` shows a
    readable summary.

    Attributes
    ----------
    passed : bool
        Whether every component is within tolerance:
        ``abs(checked - reference) <= atol + rtol * abs(reference) + noise``.
    max_abs_error : float
        The largest ``abs(checked - reference)``.
    max_rel_error : float
        The largest ``abs(checked - reference) / max(abs(checked), abs(reference))``
        (0 where both are 0).
    worst : list of Component
        Up to five components, those furthest outside (or least inside) their
        tolerance first: ``(index, label, checked, reference, error)``.
    checked, reference : ndarray
        The derivative being checked and the reference, shape ``f(x).shape + x.shape``
        (``(n,)`` for a gradient, ``(m, n)`` for a Jacobian, ``(n, n)`` for a
        Hessian; a pytree ``x`` counts as its flattened vector).
    finite_differences : ndarray
        The central-difference estimate (the reference when dualad's own derivative is
        checked).
    tolerance : ndarray
        The allowed error per component, including the rounding ``noise`` of the
        differences (zero when the reference is exact).
    checked_name, reference_name : str
        What was compared.
    rtol, atol : float
        The tolerances used.
    notes : list of str
        Remarks (for example that dualad and the differences disagree as well).

    Examples
    --------
    >>> report = dualad.check_grad(lambda x: np.sum(x ** 3), np.array([1.0, 2.0]))
    >>> bool(report), report.checked
    (True, array([ 3., 12.]))
    >>> report.raise_if_failed() is report
    True
    """

    def __init__(self, checked, reference, fd, tolerance, rtol, atol, labels,
                 checked_name, reference_name, notes, what):
        self.checked = checked
        self.reference = reference
        self.finite_differences = fd
        self.tolerance = tolerance
        self.rtol = rtol
        self.atol = atol
        self.checked_name = checked_name
        self.reference_name = reference_name
        self.notes = notes
        self._what = what
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            err = np.abs(checked - reference)
            scale = np.maximum(np.abs(checked), np.abs(reference))
            rel = np.where(err == 0, 0.0, err / np.where(scale == 0, 1.0, scale))
            self.passed = bool(np.all(err <= tolerance))
            ratio = np.where(err == 0, 0.0, err / tolerance)
        ratio = np.where(np.isnan(ratio), np.inf, ratio)
        self.max_abs_error = float(np.max(err)) if err.size else 0.0
        self.max_rel_error = float(np.max(rel)) if rel.size else 0.0
        order = np.argsort(-ratio.reshape(-1), kind="stable")[:5]
        worst = []
        for k in order:
            idx = tuple(int(i) for i in np.unravel_index(k, checked.shape))
            worst.append(Component(idx, labels[k], float(checked[idx]),
                                   float(reference[idx]), float(err[idx])))
        self.worst = worst

    def __bool__(self):
        return self.passed

    def raise_if_failed(self):
        """Raise ``AssertionError`` with the report if the check failed.

        Returns
        -------
        GradientCheck
            ``self``, when it passed (so it chains).

        Raises
        ------
        AssertionError
            With the readable report as the message, for use in test suites.

        Examples
        --------
        >>> dualad.check_grad(np.sum, np.ones(3)).raise_if_failed().passed
        True
        """
        if not self.passed:
            raise AssertionError("\n" + str(self))
        return self

    def __str__(self):
        status = "passed" if self.passed else "FAILED"
        lines = [f"check_grad: {self._what}: {status}",
                 f"  {self.checked_name} vs {self.reference_name}",
                 (f"  max abs error {self.max_abs_error:.3e}, max rel error "
                  f"{self.max_rel_error:.3e} (rtol {self.rtol:g}, atol {self.atol:g})")]
        if self.worst:
            header = ("component", "checked", "reference", "abs error", "allowed")
            rows = [(c.label, f"{c.checked:.12g}", f"{c.reference:.12g}",
                     f"{c.error:.3e}", f"{float(self.tolerance[c.index]):.3e}")
                    for c in self.worst]
            widths = [max(len(header[k]), *(len(r[k]) for r in rows)) for k in range(5)]
            lines.append("  worst components:")
            for r in [header] + rows:
                lines.append("    " + "  ".join(r[k].ljust(widths[k])
                                                for k in range(5)).rstrip())
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)

    def __repr__(self):
        return str(self)


def _differences(phi, v, h):
    """4th-order central differences of ``phi`` at ``v`` along each axis with steps
    ``h``; returns ``(D, noise)``, both of shape ``phi(v).shape + (n,)``."""
    cols, noise = [], []
    for j in range(v.size):
        vals = []
        for k in (2.0, 1.0, -1.0, -2.0):
            w = v.copy()
            w[j] = v[j] + k * h[j]
            vals.append(np.asarray(phi(w), dtype=np.float64))
        with np.errstate(invalid="ignore", over="ignore"):
            cols.append((-vals[0] + 8.0 * vals[1] - 8.0 * vals[2] + vals[3])
                        / (12.0 * h[j]))
            noise.append(_NOISE * _EPS * (np.abs(vals[0]) + 8.0 * np.abs(vals[1])
                                          + 8.0 * np.abs(vals[2]) + np.abs(vals[3]))
                         / (12.0 * h[j]))
    if not cols:
        shape = np.shape(phi(v))
        return np.zeros(shape + (0,)), np.zeros(shape + (0,))
    return np.stack(cols, axis=-1), np.stack(noise, axis=-1)


def _steps(v, step):
    if step is None:
        h = _STEP * np.maximum(1.0, np.abs(v))
    else:
        try:
            h = np.broadcast_to(np.asarray(step, dtype=np.float64), v.shape).copy()
        except (TypeError, ValueError):
            raise ValueError(f"step must be a positive number or an array of x's size "
                             f"{v.size}, got {step!r}") from None
        if not np.all(np.isfinite(h) & (h > 0)):
            raise ValueError(f"step must be positive and finite, got {step!r}")
    # steps exactly representable at x: (x + h) - x, so the differences divide by the
    # step actually taken
    return (v + h) - v


def _tolerance(name, value):
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}") from None
    if not t >= 0 or not math.isfinite(t):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return t


def check_grad(f, x, *args, mode="auto", rtol=1e-6, atol=1e-8, step=None, grad=None,
               order=1):
    """Compare a derivative of ``f`` at ``x`` with a reference, component by component.

    Without ``grad``: dualad's gradient (scalar ``f``) or Jacobian (array ``f``) against
    4th-order central differences.  With ``grad``: your derivative function against
    dualad's exact one (the differences are reported as well).  Use it in your test
    suite: ``check_grad(f, x, grad=my_grad).raise_if_failed()``.

    Parameters
    ----------
    f : callable
        ``f(x, *args)`` written with NumPy, returning a scalar or an array.
    x : array_like or pytree
        The point; a dict, list or tuple of arrays is compared as its flattened vector
        (components are labelled with their path, e.g. ``['W'][0, 1]``).
    *args
        Extra arguments passed to ``f`` (and ``grad``) unchanged.
    mode : {"auto", "forward", "reverse"}, optional
        The mode of dualad's derivative.
    rtol, atol : float, optional
        Relative and absolute tolerance per component (see Notes).
    step : float or array_like, optional
        Absolute difference steps, one per component of ``x`` or one for all.  By
        default ``eps**(1/5) * max(1, |x_j|)`` (about ``7e-4`` at ``|x_j| <= 1``), which
        balances the truncation and rounding errors of the 4th-order formula.
    grad : callable, optional
        Your derivative, called as ``grad(x, *args)``: the gradient (or the Jacobian
        for an array ``f``, or the Hessian with ``order=2``) with the shape, or the
        tree structure, of dualad's.
    order : {1, 2}, optional
        1 checks the gradient or Jacobian; 2 the Hessian of a scalar ``f`` (dualad's
        Hessian against central differences of dualad's gradient).

    Returns
    -------
    GradientCheck
        ``passed``, ``max_abs_error``, ``max_rel_error``, the ``worst`` components and
        the arrays compared; ``bool(report)`` is ``passed`` and ``print(report)`` is
        readable.

    Raises
    ------
    ValueError
        For an unknown ``mode`` or ``order``, negative tolerances, bad steps, a
        Hessian check of an array-valued ``f``, or a ``grad`` result of the wrong
        shape.
    TypeError
        If ``f`` or ``grad`` is not callable, or dualad cannot differentiate ``f``.

    See Also
    --------
    trace, dualad.grad, dualad.jacobian

    Notes
    -----
    A component passes when ``abs(checked - reference) <= atol + rtol * abs(reference)
    + noise``, where ``noise`` is ten times the rounding error bound of the difference
    formula (``eps * sum_k |c_k f(x + k h)| / h``) when the reference is the central
    differences, and 0 when it is dualad's exact derivative.  The truncation error of
    the formula is ``h**4 f^(5) / 30``: about ``1e-13`` relative for smooth functions of
    unit scale.  At a kink (``abs``, ``max``, ``where``) the differences average the
    two sides while dualad follows its conventions, so the check can fail there; move
    ``x`` off the kink.  For functions of very small magnitude, lower ``atol``.

    Cost: ``4 n`` evaluations of ``f`` (of dualad's gradient for ``order=2``) for the
    differences, plus one derivative.

    Examples
    --------
    dualad's gradient of SciPy's Rosenbrock function:

    >>> from scipy.optimize import rosen
    >>> report = dualad.check_grad(rosen, np.array([1.3, 0.7, 0.8]))
    >>> report.passed, report.max_rel_error < 1e-9
    (True, True)

    A hand-written gradient that forgot the product rule:

    >>> def f(x):
    ...     return np.sum(np.sin(x) * x)
    >>> def my_grad(x):
    ...     return np.cos(x) * x
    >>> report = dualad.check_grad(f, np.array([0.5, 2.0]), grad=my_grad)
    >>> bool(report)
    False
    >>> print(report)  # doctest: +NORMALIZE_WHITESPACE
    check_grad: gradient at x of shape (2,): FAILED
      grad=my_grad vs dualad (exact, mode auto)
      max abs error 9.093e-01, max rel error 1.093e+00 (rtol 1e-06, atol 1e-08)
      worst components:
        component  checked          reference        abs error  allowed
        (1,)       -0.832293673094  0.0770037537314  9.093e-01  8.700e-08
        (0,)       0.438791280945   0.918216819549   4.794e-01  9.282e-07
    """
    from . import api  # (late: api imports this module for check_finite)

    if not callable(f):
        raise TypeError(f"check_grad expects a callable f, got {type(f).__name__}")
    if grad is not None and not callable(grad):
        raise TypeError(f"grad must be a callable grad(x, *args), got "
                        f"{type(grad).__name__}")
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    if order not in (1, 2):
        raise ValueError(f"order must be 1 (gradient or Jacobian) or 2 (Hessian), got "
                         f"{order!r}")
    rtol = _tolerance("rtol", rtol)
    atol = _tolerance("atol", atol)
    tree = pytree.is_tree(x)
    if tree:
        v, unravel = pytree.ravel(x)
        fun = _OnTree(f, unravel)
    else:
        v = as_input(x, "forward")
        if pytree.is_tree(v) or v.dtype != np.float64:  # pragma: no cover - defensive
            raise TypeError("x must be an array of numbers or a pytree of them")
        fun = f
    x_shape = tuple(v.shape)
    flat = np.array(v, dtype=np.float64).reshape(-1)

    def on_flat(w, function=fun):
        return function(w.reshape(x_shape), *args)

    value = np.asarray(on_flat(flat), dtype=np.float64)
    scalar = value.shape == ()
    if order == 2 and not scalar:
        raise ValueError(f"order=2 checks the Hessian of a scalar function; f returned "
                         f"shape {value.shape} (check its Jacobian with order=1)")
    h = _steps(flat, step)
    if order == 1:
        ad = (api.grad(on_flat, mode=mode) if scalar else api.jacobian(on_flat, mode=mode))
        phi = on_flat
        kind = "gradient" if scalar else "Jacobian"
    else:
        ad = api.jacobian(api.grad(on_flat, mode=mode), mode="forward")
        phi = api.grad(on_flat, mode=mode)
        kind = "Hessian"
    exact = np.asarray(ad(flat), dtype=np.float64).reshape(
        (value.shape if order == 1 else (flat.size,)) + (flat.size,))
    fd, noise = _differences(phi, flat, h)
    labels_x = _x_labels(x if tree else v, tree)
    out_shape = exact.shape[:-1]
    labels = []
    for idx in np.ndindex(*out_shape):
        for lx in labels_x:
            labels.append(lx if not idx else f"{tuple(int(i) for i in idx)}, {lx}")
    what = f"{kind} at x of shape {x_shape}" if not tree else \
        f"{kind} at a pytree x of {flat.size} values"
    notes = []
    if grad is None:
        checked, reference = exact, fd
        tolerance = atol + rtol * np.abs(fd) + noise
        checked_name = f"dualad (mode {mode})"
        reference_name = "central differences (4th order)"
    else:
        user = grad(x, *args)
        if tree and order == 1 and scalar:
            user = pytree.ravel(user)[0]
        user = np.asarray(user, dtype=np.float64)
        if user.size != exact.size:
            raise ValueError(f"grad returned shape {user.shape}; dualad's {kind} has shape "
                             f"{exact.shape}")
        if user.shape != exact.shape and not tree:
            natural = out_shape + x_shape
            if user.shape != natural:
                raise ValueError(f"grad returned shape {user.shape}; the {kind} has shape "
                                 f"{natural}")
        checked = user.reshape(exact.shape)
        reference = exact
        tolerance = atol + rtol * np.abs(exact) + np.zeros_like(exact)
        checked_name = f"grad={getattr(grad, '__name__', 'grad')}"
        reference_name = f"dualad (exact, mode {mode})"
        with np.errstate(invalid="ignore"):
            ad_ok = np.all(np.abs(exact - fd) <= atol + rtol * np.abs(fd) + noise)
        if not ad_ok:
            notes.append("dualad's derivative and the central differences disagree too "
                         "(a kink or a non-smooth point near x?); see "
                         "report.finite_differences")
    return GradientCheck(checked, reference, fd, tolerance, rtol, atol, labels,
                         checked_name, reference_name, notes, what)
