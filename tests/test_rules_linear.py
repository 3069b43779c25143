"""Forward-mode rules of NumPy's structural, linear and reduction functions.

Oracles:

* ``fd_jacobian`` (4th-order central differences, rtol ``RTOL_FD``/atol ``ATOL_FD``) for
  every function of the issue's list at random points, through ``dualad.jacobian`` with
  chunk sizes 1, 3 and the default (the three must also agree with each other);
* for the linear ops, the matrix of the op built from plain-NumPy images of the basis
  vectors: a linear op applied to ``e_i`` involves no rounding, so the equality is exact;
* closed forms where finite differences cannot decide (ties of max/min, kinks, 0);
* reverse mode: every case's reverse-mode Jacobian equals the forward-mode one, and the
  closed forms hold in both modes (``MODES``).  The reverse rules' own table is
  ``test_reverse_rules.py``.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import dualad
from conftest import ATOL_FD, RTOL_FD, fd_jacobian

CHUNKS = [1, 3, None]
MODES = ["forward", "reverse"]


# -- points --------------------------------------------------------------------------------

def _point(kind, shape, rng):
    """A test point of the given shape; ``kind`` keeps it away from kinks where needed."""
    n = int(np.prod(shape)) if shape else 1
    if kind == "normal":
        x = rng.standard_normal(n)
    elif kind == "positive":
        x = rng.uniform(0.5, 2.0, n)
    elif kind == "distinct":
        # well separated values (no ties for sort/max/min within FD steps), both signs
        x = (rng.permutation(n) - n / 2.0 + 0.3) * 0.37 + rng.uniform(-0.05, 0.05, n)
    elif kind == "zeros":
        # one zero and, further on, two zeros: every reduction slice sees both cases
        x = rng.uniform(0.5, 1.5, n) * rng.choice([-1.0, 1.0], n)
        x[n // 3] = 0.0
        if n >= 4:
            x[n - 1] = 0.0
            x[n - 2] = 0.0
    elif kind == "away":
        # |x| in [0.7, 1.7]: away from clip bounds at +-0.5 and from 0 (abs kinks)
        x = rng.uniform(0.7, 1.7, n) * rng.choice([-1.0, 1.0], n)
        x[: n // 2] *= 0.25  # and some strictly inside the clip bounds
    else:
        raise ValueError(kind)
    return x.reshape(shape)


class Case:
    """A function of x written with plain NumPy, its input shape and point kind."""

    def __init__(self, name, f, shape, kind="normal", linear=False):
        self.name, self.f, self.shape, self.kind, self.linear = name, f, shape, kind, linear

    def param(self):
        return pytest.param(self, id=self.name)


def _axes_for(nd):
    if nd == 0:
        return [None]
    if nd == 1:
        return [None, 0, -1]
    if nd == 2:
        return [None, 0, -1, (0, -1)]
    return [None, 0, -1, (0, -1), (0, 1)]


SHAPES = [(), (5,), (3, 4), (2, 3, 4)]


def _sname(shape):
    return "x".join(map(str, shape)) or "0d"


def _reduction_cases():
    out = []
    reductions = {
        "sum": (np.sum, "normal", True), "mean": (np.mean, "normal", True),
        "prod": (np.prod, "normal", False), "var": (np.var, "normal", False),
        "std": (np.std, "normal", False), "max": (np.max, "distinct", False),
        "min": (np.min, "distinct", False), "amax": (np.amax, "distinct", False),
        "amin": (np.amin, "distinct", False),
    }
    for name, (fn, kind, linear) in reductions.items():
        for shape in SHAPES:
            for axis in _axes_for(len(shape)):
                for keepdims in (False, True):
                    if name == "std" and shape == ():
                        continue  # std of one value is 0, sqrt kink: checked separately
                    out.append(Case(
                        f"{name}-{_sname(shape)}-axis{axis}-keep{keepdims}",
                        lambda x, fn=fn, axis=axis, keepdims=keepdims:
                            fn(x, axis=axis, keepdims=keepdims),
                        shape, kind, linear))
    for shape in [(6,), (3, 4), (2, 3, 4)]:
        for axis in _axes_for(len(shape)):
            out.append(Case(f"prod-zeros-{_sname(shape)}-axis{axis}",
                            lambda x, axis=axis: np.prod(x, axis=axis), shape, "zeros"))
    for ddof in (1, 2):
        out.append(Case(f"var-ddof{ddof}", lambda x, d=ddof: np.var(x, ddof=d), (6,)))
        out.append(Case(f"std-ddof{ddof}-axis0",
                        lambda x, d=ddof: np.std(x, axis=0, ddof=d), (4, 3)))
    out.append(Case("std-1d-keep", lambda x: np.std(x, axis=-1, keepdims=True), (3, 5)))
    # methods
    out.append(Case("method-sum", lambda x: x.sum(axis=1), (3, 4), linear=True))
    out.append(Case("method-mean", lambda x: x.mean(axis=0, keepdims=True), (3, 4),
                    linear=True))
    out.append(Case("method-prod", lambda x: x.prod(axis=-1), (3, 4)))
    out.append(Case("method-max", lambda x: x.max(axis=0), (3, 4), "distinct"))
    out.append(Case("method-min", lambda x: x.min(), (3, 4), "distinct"))
    out.append(Case("method-var", lambda x: x.var(axis=1, ddof=1), (3, 4)))
    out.append(Case("method-std", lambda x: x.std(), (3, 4)))
    return out


def _cumulative_cases():
    out = []
    for shape in SHAPES:
        axes = [None] if shape == () else [None, 0, -1]
        for axis in axes:
            out.append(Case(f"cumsum-{_sname(shape)}-axis{axis}",
                            lambda x, axis=axis: np.cumsum(x, axis=axis), shape,
                            linear=True))
            out.append(Case(f"cumprod-{_sname(shape)}-axis{axis}",
                            lambda x, axis=axis: np.cumprod(x, axis=axis), shape))
            if shape != ():
                out.append(Case(f"cumprod-zeros-{_sname(shape)}-axis{axis}",
                                lambda x, axis=axis: np.cumprod(x, axis=axis), shape,
                                "zeros"))
    out.append(Case("cumsum-method", lambda x: x.cumsum(axis=1), (3, 4), linear=True))
    out.append(Case("cumprod-method", lambda x: x.cumprod(), (3, 4)))
    return out


# constants for the products (fixed, independent of the point)
_C = np.random.default_rng(7)


def _const(*shape):
    return _C.standard_normal(shape)


CONSTS = {s: _const(*s) for s in [(), (3,), (4,), (3, 4), (2, 3), (4, 2), (2, 3, 4),
                                  (2, 4, 2), (2, 2, 3), (5,), (3, 3), (2, 4), (4, 3),
                                  (3, 4, 2), (4, 5)]}


def _bilinear_cases():
    """Products traced on the left, the right, or both sides (x split in two)."""
    out = []

    def add(name, op, sa, sb, linear_sides=True):
        a0, b0 = CONSTS[sa] if sa in CONSTS else _const(*sa), \
            CONSTS[sb] if sb in CONSTS else _const(*sb)
        na = int(np.prod(sa)) if sa else 1
        nb = int(np.prod(sb)) if sb else 1
        out.append(Case(f"{name}-left-{_sname(sa)}-{_sname(sb)}",
                        lambda x: op(x, b0), sa, linear=linear_sides))
        out.append(Case(f"{name}-right-{_sname(sa)}-{_sname(sb)}",
                        lambda x: op(a0, x), sb, linear=linear_sides))
        out.append(Case(f"{name}-both-{_sname(sa)}-{_sname(sb)}",
                        lambda x: op(np.reshape(x[:na], sa), np.reshape(x[na:], sb)),
                        (na + nb,)))

    for sa, sb in [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)),
                   ((2, 2, 3), (2, 3, 4)), ((2, 3), (2, 3, 4)), ((2, 2, 3), (3,)),
                   ((3,), (2, 3, 4)), ((2, 2, 3), (3, 4)), ((1, 2, 3), (2, 3, 4))]:
        add("matmul", np.matmul, sa, sb)
        add("matmul-op", lambda a, b: a @ b, sa, sb)
    for sa, sb in [((), (3,)), ((3,), ()), ((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)),
                   ((2, 3), (3, 4)), ((2, 2, 3), (3, 4)), ((2, 3), (2, 3, 4)),
                   ((2, 2, 3), (2, 3, 4))]:
        add("dot", np.dot, sa, sb)
    add("dot-method", lambda a, b: a.dot(b) if hasattr(a, "dot") else np.dot(a, b),
        (2, 3), (3, 4))
    for sa, sb in [((3,), (3,)), ((2, 3), (2, 3))]:
        add("vdot", np.vdot, sa, sb)
    for sa, sb in [((), (3,)), ((3,), (3,)), ((2, 3), (3,)), ((2, 3), (4, 3)),
                   ((2, 2, 3), (4, 3)), ((3,), (2, 4, 3))]:
        add("inner", np.inner, sa, sb)
    for sa, sb in [((3,), (4,)), ((2, 3), (4,)), ((), (3,))]:
        add("outer", np.outer, sa, sb)
    add("multiply-outer", np.multiply.outer, (3,), (2, 2))
    for axes, sa, sb in [(2, (2, 3, 4), (3, 4)), (1, (2, 3), (3, 4)), (0, (3,), (2, 2)),
                         (([1, 0], [0, 1]), (2, 3, 4), (3, 2)),
                         (([0], [1]), (3, 4), (2, 3)),
                         ((-1, 0), (2, 3), (3, 4))]:
        add(f"tensordot{str(axes).replace(' ', '')}",
            lambda a, b, axes=axes: np.tensordot(a, b, axes), sa, sb)
    for spec, sa, sb in [("ij,jk->ik", (2, 3), (3, 4)), ("ij,jk", (2, 3), (3, 4)),
                         ("i,i", (3,), (3,)), ("i,i->", (3,), (3,)),
                         ("i,j->ij", (3,), (4,)), ("i,j", (3,), (4,)),
                         ("bij,bjk->bik", (2, 2, 3), (2, 3, 4)),
                         ("...ij,...jk->...ik", (2, 2, 3), (2, 3, 4)),
                         ("...ij,jk", (2, 2, 3), (3, 4)),
                         ("ij,ij->i", (2, 3), (2, 3)), ("ji,jk->ki", (3, 2), (3, 4))]:
        add(f"einsum[{spec}]", lambda a, b, spec=spec: np.einsum(spec, a, b), sa, sb)
    return out


def _unary_einsum_cases():
    out = []
    for spec, shape in [("ii->", (3, 3)), ("ii", (3, 3)), ("ii->i", (3, 3)),
                        ("ij->ji", (3, 4)), ("ij", (3, 4)), ("ji", (3, 4)),
                        ("ijk->", (2, 3, 4)), ("ijk->kj", (2, 3, 4)),
                        ("...i->...", (2, 3, 4)), ("i...->...", (2, 3, 4)),
                        ("...", (2, 3)), ("i->", (5,))]:
        out.append(Case(f"einsum[{spec}]", lambda x, spec=spec: np.einsum(spec, x), shape,
                        linear=True))
    c34, c45 = CONSTS[(3, 4)], CONSTS[(4, 5)]
    out.append(Case("einsum[ij,jk,kl->il]-middle",
                    lambda x: np.einsum("ij,jk,kl->il", c34, x, c45), (4, 4), linear=True))
    out.append(Case("einsum[ij,jk,kl->il]-all",
                    lambda x: np.einsum("ij,jk,kl->il", x[:12].reshape(3, 4),
                                        x[12:28].reshape(4, 4), x[28:].reshape(4, 2)),
                    (36,)))
    out.append(Case("einsum[i,i,i->]-same-operand-thrice",
                    lambda x: np.einsum("i,i,i->", x, x, x), (4,)))
    out.append(Case("einsum[ij,ij]-same-operand",
                    lambda x: np.einsum("ij,ij", x, x), (2, 3)))
    out.append(Case("einsum-optimize", lambda x: np.einsum("ij,jk,kl->il", c34, x, c45,
                                                           optimize=True), (4, 4),
                    linear=True))
    return out


def _structural_cases():
    c = CONSTS
    L = True
    cases = [
        # trace, diag, diagonal, triu, tril
        ("trace-2d", lambda x: np.trace(x), (3, 4), L),
        ("trace-offset", lambda x: np.trace(x, offset=1), (3, 4), L),
        ("trace-offset-neg", lambda x: np.trace(x, -1), (4, 3), L),
        ("trace-3d-axes", lambda x: np.trace(x, 0, 1, 2), (2, 3, 4), L),
        ("trace-3d-negaxes", lambda x: np.trace(x, 0, -1, 0), (2, 3, 2), L),
        ("trace-method", lambda x: x.trace(), (3, 3), L),
        ("diag-1d", lambda x: np.diag(x), (4,), L),
        ("diag-1d-k1", lambda x: np.diag(x, 1), (3,), L),
        ("diag-1d-k-2", lambda x: np.diag(x, k=-2), (3,), L),
        ("diag-2d", lambda x: np.diag(x), (3, 4), L),
        ("diag-2d-k1", lambda x: np.diag(x, 1), (3, 4), L),
        ("diag-2d-k-1", lambda x: np.diag(x, -1), (3, 4), L),
        ("diagonal-2d", lambda x: np.diagonal(x), (3, 4), L),
        ("diagonal-offset", lambda x: np.diagonal(x, 1), (3, 4), L),
        ("diagonal-3d", lambda x: np.diagonal(x, 0, 1, 2), (2, 3, 4), L),
        ("diagonal-3d-neg", lambda x: np.diagonal(x, -1, -1, 0), (3, 2, 4), L),
        ("diagonal-method", lambda x: x.diagonal(), (3, 3), L),
        ("triu-2d", lambda x: np.triu(x), (3, 4), L),
        ("triu-k1", lambda x: np.triu(x, 1), (4, 3), L),
        ("triu-3d", lambda x: np.triu(x, -1), (2, 3, 3), L),
        ("triu-1d", lambda x: np.triu(x), (3,), L),
        ("tril-2d", lambda x: np.tril(x), (3, 4), L),
        ("tril-k-1", lambda x: np.tril(x, -1), (4, 3), L),
        ("tril-3d", lambda x: np.tril(x, 1), (2, 3, 3), L),
        ("tril-1d", lambda x: np.tril(x), (3,), L),
        # shapes
        ("reshape-tuple", lambda x: np.reshape(x, (4, 3)), (3, 4), L),
        ("reshape-neg", lambda x: np.reshape(x, (2, -1)), (2, 3, 4), L),
        ("reshape-0d", lambda x: np.reshape(x, (1, 1)), (), L),
        ("reshape-to-0d", lambda x: np.reshape(x, ()), (1,), L),
        ("reshape-F", lambda x: np.reshape(x, (4, 3), order="F"), (3, 4), L),
        ("reshape-int", lambda x: np.reshape(x, 12), (3, 4), L),
        ("reshape-method-tuple", lambda x: x.reshape((2, 6)), (3, 4), L),
        ("reshape-method-args", lambda x: x.reshape(6, 2), (3, 4), L),
        ("ravel", lambda x: np.ravel(x), (2, 3, 4), L),
        ("ravel-F", lambda x: np.ravel(x, order="F"), (3, 4), L),
        ("ravel-0d", lambda x: np.ravel(x), (), L),
        ("ravel-method", lambda x: x.ravel(), (3, 4), L),
        ("flatten-method", lambda x: x.flatten(), (3, 4), L),
        # layout-dependent orders follow the layout of the values, as in NumPy
        ("ravel-K-transposed", lambda x: np.ravel(x.T, order="K"), (3, 4), L),
        ("ravel-A-transposed", lambda x: np.ravel(x.T, order="A"), (3, 4), L),
        ("ravel-K-strided", lambda x: np.ravel(np.swapaxes(x, 0, 2)[::-1, :, ::2],
                                               order="K"), (2, 3, 4), L),
        ("ravel-K-contiguous", lambda x: np.ravel(x, order="K"), (3, 4), L),
        ("reshape-A-transposed", lambda x: np.reshape(x.T, (2, 6), order="A"), (3, 4), L),
        ("flatten-K-transposed", lambda x: x.T.flatten("K"), (3, 4), L),
        ("transpose", lambda x: np.transpose(x), (2, 3, 4), L),
        ("transpose-axes", lambda x: np.transpose(x, (1, 2, 0)), (2, 3, 4), L),
        ("transpose-negaxes", lambda x: np.transpose(x, (-1, 0, 1)), (2, 3, 4), L),
        ("transpose-1d", lambda x: np.transpose(x), (4,), L),
        ("transpose-method", lambda x: x.transpose(1, 0, 2), (2, 3, 4), L),
        ("transpose-T", lambda x: x.T, (3, 4), L),
        ("swapaxes", lambda x: np.swapaxes(x, 0, 2), (2, 3, 4), L),
        ("swapaxes-neg", lambda x: np.swapaxes(x, -1, 0), (3, 4), L),
        ("moveaxis", lambda x: np.moveaxis(x, 0, -1), (2, 3, 4), L),
        ("moveaxis-tuple", lambda x: np.moveaxis(x, (0, 1), (2, 0)), (2, 3, 4), L),
        ("expand_dims-0", lambda x: np.expand_dims(x, 0), (3, 4), L),
        ("expand_dims-neg", lambda x: np.expand_dims(x, -1), (3, 4), L),
        ("expand_dims-tuple", lambda x: np.expand_dims(x, (0, 2)), (3, 4), L),
        ("expand_dims-0d", lambda x: np.expand_dims(x, 0), (), L),
        ("squeeze", lambda x: np.squeeze(x), (1, 3, 1), L),
        ("squeeze-axis", lambda x: np.squeeze(x, axis=0), (1, 3, 1), L),
        ("squeeze-negaxis", lambda x: np.squeeze(x, axis=-1), (3, 1), L),
        ("squeeze-to-0d", lambda x: np.squeeze(x), (1, 1), L),
        ("atleast_2d", lambda x: np.atleast_2d(x), (3,), L),
        ("broadcast_to", lambda x: np.broadcast_to(x, (2, 3)), (3,), L),
        # joining
        ("concatenate-0", lambda x: np.concatenate([x, 2 * x[:1]]), (3, 4), L),
        ("concatenate-1", lambda x: np.concatenate([x, x[:, ::-1]], axis=1), (3, 4), L),
        ("concatenate-neg", lambda x: np.concatenate((x[:, :1], x), axis=-1), (3, 4), L),
        ("concatenate-None", lambda x: np.concatenate([x, x[0]], axis=None), (3, 4), L),
        ("concatenate-const", lambda x: np.concatenate([c[(3,)], x, [1.0]]), (4,), False),
        ("concatenate-3d", lambda x: np.concatenate([x, x], axis=1), (2, 3, 4), L),
        ("stack-0", lambda x: np.stack([x, -x]), (3, 4), L),
        ("stack-1", lambda x: np.stack([x, 3 * x, x[::-1]], axis=1), (4,), L),
        ("stack-neg", lambda x: np.stack([x, x.T.T], axis=-1), (3, 4), L),
        ("stack-const", lambda x: np.stack([c[(4,)], x]), (4,), False),
        ("stack-0d", lambda x: np.stack([x[0], x[1] * x[2], x[2]]), (3,), False),
        ("hstack-1d", lambda x: np.hstack([x, x[::2]]), (5,), L),
        ("hstack-2d", lambda x: np.hstack([x, x[:, :1]]), (3, 4), L),
        ("hstack-scalars", lambda x: np.hstack([x[0], x[1], 2.0]), (3,), False),
        ("vstack-1d", lambda x: np.vstack([x, x[::-1]]), (4,), L),
        ("vstack-2d", lambda x: np.vstack([x, x[:1]]), (3, 4), L),
        ("vstack-const", lambda x: np.vstack([x, c[(4,)]]), (4,), False),
        ("column_stack-1d", lambda x: np.column_stack([x, 2 * x]), (4,), L),
        ("column_stack-mixed", lambda x: np.column_stack([x[:, 0], x]), (3, 4), L),
        ("column_stack-const", lambda x: np.column_stack([c[(3,)], x]), (3,), False),
        # products with a list operand holding tracers
        ("dot-list-operand", lambda x: np.dot([x[0], x[1]], x.reshape(2, 2)), (4,), False),
        ("matmul-list-operand", lambda x: np.matmul([x[0], x[3]], x.reshape(2, 2)), (4,),
         False),
        ("tensordot-list-operand", lambda x: np.tensordot([x[0], 1.0], x.reshape(2, 2), 1),
         (4,), False),
        ("inner-list-operand", lambda x: np.inner(x.reshape(2, 2), [x[1], 1.0]), (4,),
         False),
        ("einsum-list-operand", lambda x: np.einsum("i,ij->j", [x[2], 1.0],
                                                    x.reshape(2, 2)), (4,), False),
        # selection
        ("where-both", lambda x: np.where(x > 0, x, 2 * x), (3, 4), False),
        ("where-const-branch", lambda x: np.where(x > 0, x, 0.0), (3, 4), False),
        ("where-const-first", lambda x: np.where(x > 0, 1.0, x ** 2), (5,), False),
        ("where-broadcast", lambda x: np.where(np.array([True, False, True, False]), x,
                                               x[0]), (3, 4), L),
        ("where-array-const", lambda x: np.where(x < 0, c[(3, 4)], x), (3, 4), False),
        ("take-None", lambda x: np.take(x, [0, 5, 5, 11]), (3, 4), L),
        ("take-0", lambda x: np.take(x, [2, 0, 2], axis=0), (3, 4), L),
        ("take-neg", lambda x: np.take(x, [[1, 3], [0, 0]], axis=-1), (3, 4), L),
        ("take-scalar", lambda x: np.take(x, 2), (5,), L),
        ("take-wrap", lambda x: np.take(x, [6, -1], mode="wrap"), (5,), L),
        ("take-clip", lambda x: np.take(x, [7, 0], axis=1, mode="clip"), (3, 4), L),
        ("take-method", lambda x: x.take([1, 1], axis=0), (3, 4), L),
        ("take_along_axis", lambda x: np.take_along_axis(x, np.array([[0], [2], [1]]), 1),
         (3, 4), L),
        ("repeat-None", lambda x: np.repeat(x, 2), (3, 4), L),
        ("repeat-0", lambda x: np.repeat(x, 3, axis=0), (3, 4), L),
        ("repeat-array", lambda x: np.repeat(x, [1, 0, 2, 3], axis=-1), (3, 4), L),
        ("repeat-0d", lambda x: np.repeat(x, 3), (), L),
        ("repeat-method", lambda x: x.repeat(2, axis=1), (3, 4), L),
        ("tile-int", lambda x: np.tile(x, 2), (3, 4), L),
        ("tile-tuple", lambda x: np.tile(x, (2, 1)), (3, 4), L),
        ("tile-longer", lambda x: np.tile(x, (2, 1, 3)), (3,), L),
        ("tile-0d", lambda x: np.tile(x, (2, 2)), (), L),
        ("flip-None", lambda x: np.flip(x), (2, 3, 4), L),
        ("flip-0", lambda x: np.flip(x, 0), (3, 4), L),
        ("flip-tuple", lambda x: np.flip(x, (0, -1)), (2, 3, 4), L),
        ("fliplr", lambda x: np.fliplr(x), (3, 4), L),
        ("flipud", lambda x: np.flipud(x), (3, 4), L),
        ("roll-None", lambda x: np.roll(x, 5), (3, 4), L),
        ("roll-0", lambda x: np.roll(x, -1, axis=0), (3, 4), L),
        ("roll-neg", lambda x: np.roll(x, 2, axis=-1), (2, 3, 4), L),
        ("roll-tuple", lambda x: np.roll(x, (1, 2), axis=(0, 2)), (2, 3, 4), L),
        ("roll-1d", lambda x: np.roll(x, 1), (5,), L),
        ("sort-default", lambda x: np.sort(x), (3, 4), False),
        ("sort-0", lambda x: np.sort(x, axis=0), (3, 4), False),
        ("sort-None", lambda x: np.sort(x, axis=None), (3, 4), False),
        ("sort-1d", lambda x: np.sort(x), (6,), False),
        ("sort-3d", lambda x: np.sort(x, axis=1), (2, 3, 4), False),
        ("sort-stable", lambda x: np.sort(x, kind="stable"), (6,), False),
        ("diff-1d", lambda x: np.diff(x), (5,), L),
        ("diff-n2", lambda x: np.diff(x, n=2), (5,), L),
        ("diff-axis0", lambda x: np.diff(x, axis=0), (3, 4), L),
        ("diff-3d", lambda x: np.diff(x, axis=1), (2, 3, 4), L),
        ("diff-n0", lambda x: np.diff(x, n=0), (4,), L),
        ("diff-prepend", lambda x: np.diff(x, prepend=0.0), (5,), L),
        ("diff-append", lambda x: np.diff(x, append=c[(3,)].reshape(3, 1)), (3, 4), False),
        ("diff-prepend-append", lambda x: np.diff(x, prepend=1.5, append=-2.0), (5,),
         False),
        ("diff-prepend-axis0", lambda x: np.diff(x, axis=0, prepend=0.0), (3, 4), L),
        ("diff-traced-prepend", lambda x: np.diff(x[1:], prepend=x[:1] ** 2), (5,), False),
        ("diff-traced-append-n2", lambda x: np.diff(x[:-1], n=2, append=x[-1:] * 3),
         (6,), L),
        # copies
        ("copy", lambda x: np.copy(x), (3, 4), L),
        ("copy-method", lambda x: x.copy(), (3, 4), L),
        ("astype", lambda x: x.astype(float), (3, 4), L),
    ]
    kinds = {"where-both": "away", "where-const-branch": "away",
             "where-const-first": "away", "where-array-const": "away"}
    out = []
    for name, f, shape, lin in cases:
        kind = "distinct" if name.startswith("sort") else \
            kinds.get(name, "normal")
        out.append(Case(name, f, shape, kind, lin))
    return out


def _clip_cases():
    lo, hi = -0.5, 0.5
    c34 = CONSTS[(3, 4)]
    return [
        Case("clip-scalars", lambda x: np.clip(x, lo, hi), (3, 4), "away"),
        Case("clip-min-only", lambda x: np.clip(x, lo, None), (6,), "away"),
        Case("clip-max-only", lambda x: np.clip(x, None, hi), (6,), "away"),
        Case("clip-kw", lambda x: np.clip(x, min=lo, max=hi), (6,), "away"),
        Case("clip-arrays", lambda x: np.clip(x, np.full((3, 4), lo),
                                              np.full(4, hi)), (3, 4), "away"),
        Case("clip-0d", lambda x: np.clip(x, lo, hi), (), "away"),
        Case("clip-method", lambda x: x.clip(lo, hi), (3, 4), "away"),
        Case("clip-traced-bounds", lambda x: np.clip(c34, x[0] - 1.0, x[1] + 1.0), (2,),
             "away"),
    ]


def _norm_cases():
    n = np.linalg.norm
    return [
        Case("norm-2-default", lambda x: n(x), (5,)),
        Case("norm-ord2", lambda x: n(x, 2), (5,)),
        Case("norm-ord1", lambda x: n(x, 1), (5,), "away"),
        Case("norm-inf", lambda x: n(x, np.inf), (5,), "distinct"),
        Case("norm-neginf", lambda x: n(x, -np.inf), (5,), "away"),
        Case("norm-ord3", lambda x: n(x, 3), (5,), "away"),
        Case("norm-ord1.5", lambda x: n(x, 1.5), (5,), "away"),
        Case("norm-ord-half", lambda x: n(x, 0.5), (5,), "away"),
        Case("norm-ord-neg1", lambda x: n(x, -1), (4,), "away"),
        Case("norm-fro-default", lambda x: n(x), (3, 4)),
        Case("norm-fro", lambda x: n(x, "fro"), (3, 4)),
        Case("norm-3d", lambda x: n(x), (2, 3, 4)),
        Case("norm-axis0", lambda x: n(x, axis=0), (3, 4)),
        Case("norm-axis-1-ord1", lambda x: n(x, 1, axis=-1), (3, 4), "away"),
        Case("norm-axis1-inf-keep", lambda x: n(x, np.inf, axis=1, keepdims=True), (3, 4),
             "distinct"),
        Case("norm-axes-fro", lambda x: n(x, axis=(0, 1)), (3, 4)),
        Case("norm-axes-fro-3d", lambda x: n(x, "fro", axis=(1, 2)), (2, 3, 4)),
        Case("norm-keepdims", lambda x: n(x, keepdims=True), (3, 4)),
        Case("norm-0d", lambda x: n(x), (), "away"),
    ]


def _polyval_cases():
    p0 = np.array([0.5, -1.0, 2.0, 0.25])
    x0 = np.array([[0.3, -1.2, 2.0], [0.0, 1.0, -0.5]])
    return [
        Case("polyval-traced-p", lambda p: np.polyval(p, x0), (4,), linear=True),
        Case("polyval-traced-p-scalar-x", lambda p: np.polyval(p, 1.7), (4,), linear=True),
        Case("polyval-traced-x", lambda x: np.polyval(p0, x), (2, 3)),
        Case("polyval-traced-x-0d", lambda x: np.polyval(p0, x), ()),
        Case("polyval-traced-both", lambda z: np.polyval(z[:4], z[4:]), (7,)),
        Case("polyval-constant-poly", lambda x: np.polyval([3.0], x), (3,)),
        Case("polyval-list-p", lambda z: np.polyval([z[0], 2.0, z[1]], z[2]), (3,)),
    ]


CASES = (_reduction_cases() + _cumulative_cases() + _bilinear_cases()
         + _unary_einsum_cases() + _structural_cases() + _clip_cases() + _norm_cases()
         + _polyval_cases())
LINEAR = [c for c in CASES if c.linear]


@pytest.mark.parametrize("chunk", CHUNKS, ids=lambda c: f"chunk{c}")
@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_jacobian_matches_finite_differences(case, chunk, rng):
    x = _point(case.kind, case.shape, rng)
    jac = dualad.jacobian(case.f, chunk=chunk)(x)
    expected = fd_jacobian(case.f, x)
    assert np.asarray(jac).dtype == np.float64, case.name
    assert np.shape(jac) == expected.shape, \
        f"{case.name}: {np.shape(jac)} != {expected.shape}"
    assert_allclose(jac, expected, rtol=RTOL_FD, atol=ATOL_FD,
                    err_msg=f"{case.name}, chunk={chunk}, x={x!r}")
    if chunk is not None:
        # chunking only regroups the lanes: the same numbers as a single sweep
        assert_allclose(jac, dualad.jacobian(case.f)(x), rtol=1e-13, atol=1e-15,
                        err_msg=f"{case.name}: chunk={chunk} differs from the default")


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_value_matches_numpy(case, rng):
    x = _point(case.kind, case.shape, rng)
    value, tangent = dualad.jvp(case.f, x, np.ones_like(x))
    expected = np.asarray(case.f(x), dtype=float)
    assert np.shape(value) == expected.shape, case.name
    assert np.shape(tangent) == expected.shape, case.name
    assert_allclose(value, expected, rtol=1e-12, atol=1e-14, err_msg=case.name)


# Known gaps outside dualad/rules (see test_reverse_rules.py): RArray lacks these ndarray
# methods.
def _reverse_param(case):
    return pytest.param(case, id=case.name)


@pytest.mark.parametrize("case", [_reverse_param(c) for c in CASES])
def test_reverse_jacobian_matches_forward(case, rng):
    x = _point(case.kind, case.shape, rng)
    before = x.copy()
    rev = dualad.jacobian(case.f, mode="reverse")(x)
    fwd = dualad.jacobian(case.f, mode="forward")(x)
    assert_array_equal(x, before, err_msg=f"{case.name}: reverse mode modified x")
    assert np.shape(rev) == np.shape(fwd), \
        f"{case.name}: {np.shape(rev)} != {np.shape(fwd)}"
    assert_allclose(rev, fwd, rtol=1e-12, atol=1e-14,
                    err_msg=f"{case.name}: reverse != forward at x={x!r}")


def _basis_matrix(f, shape):
    """The matrix of a linear f from its plain-NumPy images of the basis vectors."""
    cols = []
    for idx in np.ndindex(*shape) if shape else [()]:
        e = np.zeros(shape)
        e[idx] = 1.0
        cols.append(np.asarray(f(e), dtype=float))
    out = np.stack(cols, axis=-1)
    return out.reshape(out.shape[:-1] + shape)


@pytest.mark.parametrize("case", [c.param() for c in LINEAR])
def test_linear_rule_is_the_op_itself(case, rng):
    """For a linear op the Jacobian is exactly the op's matrix (no rounding on e_i)."""
    x = _point(case.kind, case.shape, rng)
    jac = dualad.jacobian(case.f)(x)
    assert_array_equal(jac, _basis_matrix(case.f, case.shape),
                       err_msg=f"{case.name}: Jacobian != matrix of the op")


@pytest.mark.parametrize("case", [c.param() for c in LINEAR])
def test_linear_rule_adjoint_identity(case, rng):
    """<u, J v> through jvp equals <J^T u, v> with J^T from the op's matrix."""
    x = _point(case.kind, case.shape, rng)
    v = rng.standard_normal(case.shape)
    _, jv = dualad.jvp(case.f, x, v)
    m = _basis_matrix(case.f, case.shape)
    u = rng.standard_normal(m.shape[:m.ndim - len(case.shape)])
    out_axes = u.ndim
    jtu = np.tensordot(u, m, axes=(list(range(out_axes)), list(range(out_axes))))
    assert_allclose(np.sum(u * jv), np.sum(jtu * v), rtol=1e-12, atol=1e-12,
                    err_msg=case.name)


# -- closed forms: ties, zeros, kinks ------------------------------------------------------

@pytest.mark.parametrize("fn", [np.max, np.amax, lambda x: x.max(),
                                lambda x: np.maximum.reduce(x)],
                         ids=["max", "amax", "method", "maximum.reduce-1d"])
@pytest.mark.parametrize("mode", MODES)
def test_max_ties_split_evenly(fn, mode):
    x = np.array([1.0, 3.0, 3.0, 2.0])
    assert_allclose(dualad.grad(fn, mode=mode)(x), [0.0, 0.5, 0.5, 0.0], rtol=0, atol=1e-15,
                    err_msg="max with a two-way tie")
    x = np.array([3.0, 3.0, -1.0, 3.0])
    assert_allclose(dualad.grad(fn, mode=mode)(x), [1 / 3, 1 / 3, 0.0, 1 / 3], rtol=1e-15,
                    atol=1e-15, err_msg="max with a three-way tie")


@pytest.mark.parametrize("fn", [np.min, np.amin, lambda x: x.min()],
                         ids=["min", "amin", "method"])
@pytest.mark.parametrize("mode", MODES)
def test_min_ties_split_evenly(fn, mode):
    x = np.array([1.0, -3.0, 2.0, -3.0])
    assert_allclose(dualad.grad(fn, mode=mode)(x), [0.0, 0.5, 0.0, 0.5], rtol=0, atol=1e-15,
                    err_msg="min with a two-way tie")


@pytest.mark.parametrize("fn,axis", [(np.max, 0), (np.min, -1), (np.amax, 1),
                                     (np.amin, (0, 1))])
@pytest.mark.parametrize("mode", MODES)
def test_extreme_ties_with_axis(fn, axis, mode):
    x = np.array([[1.0, 2.0, 2.0], [1.0, 0.0, 2.0]])
    jac = dualad.jacobian(lambda z: fn(z, axis=axis, keepdims=True), mode=mode)(x)
    best = fn(x, axis=axis, keepdims=True)
    mask = (x == best).astype(float)
    w = mask / mask.sum(axis=axis, keepdims=True)
    # d out[o] / d x[j] = w[j] when x[j] belongs to slice o (o: j with reduced axes at 0)
    reduced = {a % x.ndim for a in np.atleast_1d(axis)}
    expected = np.zeros(best.shape + x.shape)
    for j in np.ndindex(*x.shape):
        o = tuple(0 if ax in reduced else j[ax] for ax in range(x.ndim))
        expected[o + j] = w[j]
    assert_allclose(jac, expected, rtol=1e-15, atol=1e-15,
                    err_msg=f"{getattr(fn, '__name__', fn)} ties along axis {axis}")


@pytest.mark.parametrize("x,expected", [
    ([2.0, 0.0, 3.0], [0.0, 6.0, 0.0]),
    ([2.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
    ([0.0], [1.0]),
    ([5.0, -2.0, 0.5], [-1.0, 2.5, -10.0]),
])
@pytest.mark.parametrize("mode", MODES)
def test_prod_gradient_with_zeros_closed_form(x, expected, mode):
    assert_allclose(dualad.grad(np.prod, mode=mode)(np.array(x)), expected, rtol=1e-15,
                    atol=0, err_msg=f"prod at {x}")


@pytest.mark.parametrize("mode", MODES)
def test_cumprod_with_zeros_closed_form(mode):
    x = np.array([2.0, 0.0, 3.0, 4.0])
    # y = [x0, x0 x1, x0 x1 x2, x0 x1 x2 x3]
    expected = np.array([[1, 0, 0, 0],
                         [0, 2, 0, 0],
                         [0, 6, 0, 0],
                         [0, 24, 0, 0]], dtype=float)
    assert_allclose(dualad.jacobian(np.cumprod, mode=mode)(x), expected, rtol=0, atol=0,
                    err_msg="cumprod with a zero")


@pytest.mark.parametrize("ord_,shape", [(None, (3,)), (2, (3,)), (1, (3,)), (np.inf, (3,)),
                                        (3, (3,)), (1.5, (3,)), (None, (2, 3)),
                                        ("fro", (2, 3)), (None, (2, 2, 2))])
@pytest.mark.parametrize("mode", MODES)
def test_norm_gradient_at_zero_is_zero(ord_, shape, mode):
    g = dualad.grad(lambda x: np.linalg.norm(x, ord_), mode=mode)(np.zeros(shape))
    assert np.all(np.isfinite(g)), f"norm ord={ord_}: gradient at 0 is {g}"
    assert_array_equal(g, np.zeros(shape), err_msg=f"norm ord={ord_} at 0")


@pytest.mark.parametrize("mode", MODES)
def test_norm_gradient_is_unit_vector(mode):
    x = np.array([3.0, -4.0])
    assert_allclose(dualad.grad(np.linalg.norm, mode=mode)(x), [0.6, -0.8], rtol=1e-15,
                    atol=0, err_msg="d|x|/dx = x/|x|")


@pytest.mark.parametrize("mode", MODES)
def test_clip_derivative_at_and_beyond_bounds(mode):
    x = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    jac = dualad.jacobian(lambda z: np.clip(z, -1.0, 1.0), mode=mode)(x)
    # inside (bounds included) the derivative follows x; outside it is 0
    assert_array_equal(np.diag(jac), [0.0, 1.0, 1.0, 1.0, 0.0], err_msg="clip")


@pytest.mark.parametrize("mode", MODES)
def test_sort_gradient_is_permutation(mode):
    x = np.array([3.0, 1.0, 2.0])
    assert_array_equal(dualad.jacobian(np.sort, mode=mode)(x),
                       [[0, 1, 0], [0, 0, 1], [1, 0, 0]], err_msg="sort")


@pytest.mark.parametrize("mode", MODES)
def test_std_of_constant_has_finite_gradient(mode):
    """std at a point with zero spread: the minimum-norm subgradient 0, no NaN."""
    g = dualad.grad(np.std, mode=mode)(np.full(3, 2.0))
    assert np.all(np.isfinite(g)), f"std gradient at constant input: {g}"
    assert_array_equal(g, np.zeros(3), err_msg=f"std at constant input ({mode})")


@pytest.mark.parametrize("mode", MODES)
def test_polyval_closed_form(mode):
    p = np.array([1.0, -2.0, 3.0])  # x^2 - 2x + 3
    d = dualad.derivative(lambda t: np.polyval(p, t))(1.5)
    assert_allclose(d, 2 * 1.5 - 2, rtol=1e-15, atol=0, err_msg="polyval derivative")
    d = dualad.grad(lambda t: np.polyval(p, t[0]), mode=mode)(np.array([1.5]))
    assert_allclose(d, [2 * 1.5 - 2], rtol=1e-15, atol=0, err_msg="polyval derivative")
    g = dualad.grad(lambda q: np.polyval(q, 2.0), mode=mode)(p)
    assert_array_equal(g, [4.0, 2.0, 1.0], err_msg="polyval d/dp")


# -- allocate then fill --------------------------------------------------------------------

@pytest.mark.parametrize("alloc", [np.zeros_like, np.ones_like, np.empty_like,
                                   lambda x: np.full_like(x, 7.0)],
                         ids=["zeros_like", "ones_like", "empty_like", "full_like"])
@pytest.mark.parametrize("mode", MODES)
def test_like_allocation_then_fill(alloc, mode, rng):
    def f(x):
        y = alloc(x)
        y[0] = x[1] ** 2
        y[1] = x[0] * x[2]
        y[2] = np.sin(x[0])
        y[3] = x[3]
        return y

    x = rng.standard_normal(4)
    jac = dualad.jacobian(f, mode=mode)(x)
    assert_allclose(jac, fd_jacobian(f, x), rtol=RTOL_FD, atol=ATOL_FD,
                    err_msg=f"allocate-then-fill ({mode})")


@pytest.mark.parametrize("alloc,fill", [(np.zeros_like, 0.0), (np.ones_like, 1.0),
                                        (lambda x: np.full_like(x, 2.5), 2.5)],
                         ids=["zeros_like", "ones_like", "full_like"])
def test_like_allocation_is_constant(alloc, fill, rng):
    x = rng.standard_normal((2, 3))
    value, tangent = dualad.jvp(alloc, x, np.ones_like(x))
    assert_array_equal(value, np.full((2, 3), fill), err_msg="like value")
    assert_array_equal(tangent, np.zeros((2, 3)), err_msg="like tangent")


LIKE_OTHER_DTYPE = {
    "zeros_like-bool": (lambda x: np.zeros_like(x, dtype=bool), True),
    "ones_like-int": (lambda x: np.ones_like(x, dtype=int), True),
    "empty_like-int64": (lambda x: np.empty_like(x, dtype=np.int64), False),
    "full_like-int": (lambda x: np.full_like(x, 3, dtype=int), True),
    "zeros_like-float32-shape": (lambda x: np.zeros_like(x, dtype=np.float32, shape=(2, 3)),
                                 True),
}


@pytest.mark.parametrize("name", list(LIKE_OTHER_DTYPE))
def test_like_with_other_dtype_is_a_plain_constant(name):
    """A mask or counter allocated from x is a plain array of the requested dtype."""
    alloc, filled = LIKE_OTHER_DTYPE[name]
    seen = []

    def f(x):
        seen.append(alloc(x))
        return x * 2.0

    x = np.arange(4.0).reshape(2, 2)
    dualad.jacobian(f)(x)
    expected = alloc(x)
    assert type(seen[0]) is np.ndarray, f"{name}: {type(seen[0])}"
    assert seen[0].dtype == expected.dtype and seen[0].shape == expected.shape, name
    if filled:
        assert_array_equal(seen[0], expected, err_msg=name)


def test_like_returns_dualarray():
    seen = []

    def f(x):
        for fn in (np.zeros_like, np.ones_like, np.empty_like):
            seen.append(type(fn(x)))
        seen.append(type(np.full_like(x, 1.0)))
        return x

    dualad.jacobian(f)(np.ones(3))
    assert seen == [dualad.DualArray] * 4, seen


@pytest.mark.parametrize("mode", MODES)
def test_like_partial_fill_2d(mode, rng):
    def f(x):
        y = np.zeros_like(x)
        y[0, :] = x[1, :] * x[0, :]
        y[:, 2] += x[:, 0]
        return y

    x = rng.standard_normal((2, 3))
    assert_allclose(dualad.jacobian(f, mode=mode)(x), fd_jacobian(f, x), rtol=RTOL_FD,
                    atol=ATOL_FD, err_msg=f"2-d zeros_like fill ({mode})")


# -- the rules nest: forward-over-forward second derivatives -------------------------------

def _fill(x):
    y = np.zeros_like(x)
    y[0] = x[1] ** 2
    y[1:] += x[:-1] * x[0]
    return np.sum(y ** 2)


SECOND_ORDER = {
    "prod": (lambda x: np.prod(x), (4,)),
    "prod-axis": (lambda x: np.sum(np.prod(x, axis=0) ** 2), (3, 2)),
    "prod-with-zero": (lambda x: np.prod(x * np.array([1.0, 0.0, 1.0, 1.0])), (4,)),
    "var": (lambda x: np.var(x, axis=0).sum(), (3, 2)),
    "std": (lambda x: np.std(x, ddof=1), (5,)),
    "cumprod": (lambda x: np.sum(np.cumprod(x)), (4,)),
    "cumprod-with-zero": (
        lambda x: np.sum(np.cumprod(np.concatenate([x[:2], [0.0], x[2:]]))), (4,)),
    "norm": (lambda x: np.linalg.norm(x), (4,)),
    "norm-3": (lambda x: np.linalg.norm(x, 3), (4,)),
    "norm-inf": (lambda x: np.linalg.norm(x, np.inf) ** 2, (4,)),
    "polyval": (lambda x: np.polyval(x[:3], x[3]), (4,)),
    "max": (lambda x: np.max(x) ** 2, (4,)),
    "sort": (lambda x: np.sum(np.sort(x) ** 3 * np.arange(4.0)), (4,)),
    "einsum": (lambda x: np.einsum("ij,jk->", x.reshape(2, 2), x.reshape(2, 2)), (4,)),
    "matmul": (lambda x: np.sum((x.reshape(2, 2) @ x.reshape(2, 2)) ** 2), (4,)),
    "matmul-batched": (
        lambda x: np.sum((x[:8].reshape(2, 2, 2) @ x[8:].reshape(2, 1)) ** 2), (10,)),
    "dot": (lambda x: np.dot(x, x) ** 2, (4,)),
    "tensordot": (lambda x: np.sum(np.tensordot(x.reshape(2, 2), x.reshape(2, 2), 1) ** 2),
                  (4,)),
    "outer": (lambda x: np.sum(np.outer(x, x) ** 2), (4,)),
    "inner": (lambda x: np.inner(x, x) ** 2, (4,)),
    "where": (lambda x: np.sum(np.where(x > 0, x ** 3, x ** 2)), (4,)),
    "clip": (lambda x: np.sum(np.clip(x, -0.5, 0.5) ** 2 + x ** 3), (4,)),
    "trace": (lambda x: np.trace(x.reshape(2, 2) @ x.reshape(2, 2)), (4,)),
    "diff": (lambda x: np.sum(np.diff(x ** 2, prepend=x[0] ** 3) ** 2), (4,)),
    "fill": (_fill, (4,)),
}


@pytest.mark.parametrize("inner", MODES, ids=lambda m: f"forward-over-{m}")
@pytest.mark.parametrize("name", list(SECOND_ORDER))
def test_rules_nest_for_second_derivatives(name, inner, rng):
    """jacobian(grad(f)): the rules' own NumPy calls are differentiated again."""
    f, shape = SECOND_ORDER[name]
    x = rng.uniform(0.6, 1.4, shape) * rng.choice([-1.0, 1.0], shape)
    grad = dualad.grad(f, mode=inner)
    hess = dualad.jacobian(grad)(x)
    assert_allclose(hess, fd_jacobian(grad, x), rtol=RTOL_FD, atol=ATOL_FD,
                    err_msg=f"Hessian of {name} (forward over {inner})")
    flat = hess.reshape(x.size, x.size)
    assert_allclose(flat, flat.T, rtol=1e-12, atol=1e-12, err_msg=f"{name}: symmetry")
