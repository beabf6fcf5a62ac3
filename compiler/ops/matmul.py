"""MatMul and Gemm: an init kernel (bias or zero) and an accumulation nest (i, j, k).

Both share gemm_kernels(); Conv lowers onto it too. The accumulation loops are named i (rows),
j (columns), k (reduction), after any batch loops: the matmul schedule keys on these names.
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..loop.deferred import Deferred
from ..loop.ir import Buffer, Const, Expr, Load, Store, loops
from ..loop.symbolic import broadcast_shapes, dims_of
from ..loop.templates import template_vars
from .common import ZERO, check_broadcast, view
from .registry import register


def emit_accumulation(ctx, Y: Buffer, init, nest_fn, kind: str) -> None:
    """One kernel accumulating into Y (nest_fn(acc) builds its loops), with Y's initial value
    init(*index) as its prologue and the node's fused epilogue (if any) as its epilogue:
    templates that a register-tiled schedule applies inside the tile, so Y itself is never
    read or written there."""
    p = tuple(template_vars(Y.rank))
    out = Y
    if ctx.epilogue is not None:
        Y = ctx.temp(Y.dtype, dims_of(Y), "acc")
    prologue = Store(Y, p, init(*p) if init else Const(0.0, Y.dtype))
    epilogue = ctx.epilogue_store(out, Load(Y, p), p) if ctx.epilogue is not None else None
    ctx.emit(nest_fn(Y), kind=kind, prologue=prologue, epilogue=epilogue)


def gemm_kernels(ctx, Y: Buffer, a_load, b_load, batch: list[tuple[str, int]], m: int, n: int,
                 k: int, init=None):
    """Y[b..., i, j] = init(b..., i, j) + sum_k a_load(b..., i, k) * b_load(b..., k, j), then
    the node's fused epilogue. batch: (loop name, extent) pairs outside i, j; Y is a view of
    the node's output in that shape."""
    names = [name for name, _ in batch]

    def nest(acc):
        def accumulate(*v):
            bv, (i, j, kk) = v[:len(names)], v[len(names):]
            idx = tuple(bv) + (i, j)
            return Store(acc, idx, Load(acc, idx) + a_load(*bv, i, kk) * b_load(*bv, kk, j))
        return loops(batch + [("i", m), ("j", n), ("k", k)], accumulate)
    emit_accumulation(ctx, Y, init, nest, "matmul")


def _batch_index(vars_, shape, out_batch_rank) -> tuple[Expr, ...]:
    """Index of a (broadcast) batch prefix of an operand, from the output batch loop vars."""
    offset = out_batch_rank - len(shape)
    return tuple(ZERO if d == 1 else vars_[offset + i] for i, d in enumerate(shape))


@register("MatMul", since=1)
def MatMul(ctx, A, B):
    if A.dtype not in ("float32", "float64") and A.dtype != B.dtype:
        raise ModelError(f"MatMul: unsupported dtypes {A.dtype}, {B.dtype}")
    matmul_kernels(ctx, A, B, ctx.output(0))


def matmul_kernels(ctx, A, B, out, a_value=lambda e: e, b_value=lambda e: e) -> None:
    """out = a_value(A) @ b_value(B) with numpy's matmul broadcasting; a_value and b_value
    turn each loaded element into the value multiplied (a dequantization, say)."""
    a_shape, b_shape = ctx.shape(A), ctx.shape(B)
    a2 = a_shape if len(a_shape) > 1 else (1,) + a_shape
    b2 = b_shape if len(b_shape) > 1 else b_shape + (1,)
    m, k = a2[-2:]
    k2, n = b2[-2:]
    if k != k2:
        raise ModelError(f"MatMul: inner dimensions differ ({k} vs {k2})")
    batch_shape = tuple(broadcast_shapes(a2[:-2], b2[:-2]))
    Av, Bv = view(A, *a2), view(B, *b2)
    Y = view(out, *batch_shape + (m, n))
    rank = len(batch_shape)
    batch = [(f"b{d}", e) for d, e in enumerate(batch_shape)]
    gemm_kernels(
        ctx, Y,
        lambda *v: a_value(Load(Av, _batch_index(v[:rank], a2[:-2], rank)
                                + (v[rank], v[rank + 1]))),
        lambda *v: b_value(Load(Bv, _batch_index(v[:rank], b2[:-2], rank)
                                + (v[rank], v[rank + 1]))),
        batch, m, n, k)


def _gemm_weight(b: np.ndarray, trans_b: int, alpha: float) -> np.ndarray:
    w = b.T if trans_b else b
    return np.ascontiguousarray(w * np.float32(alpha) if alpha != 1.0 else w, dtype=b.dtype)


@register("Gemm", since=7)
def Gemm(ctx, A, B, C=None, *, alpha=1.0, beta=1.0, transA=0, transB=0):
    if len(ctx.shape(A)) != 2 or len(ctx.shape(B)) != 2:
        raise ModelError(f"node {ctx.node.name!r} (Gemm): A and B must have rank 2, got "
                         f"{list(ctx.shape(A))} and {list(ctx.shape(B))}")
    a_shape = ctx.shape(A)
    m, k = a_shape[::-1] if transA else a_shape
    b_const = ctx.const(B)
    if b_const is not None and (transB or alpha != 1.0):
        # Weights are known: transpose and scale them at compile time, not on every run (as
        # the weights are written: loop/deferred.py)
        shape = b_const.shape[::-1] if transB else b_const.shape
        B, transB, alpha = ctx.constant(Deferred(_gemm_weight, b_const, transB, alpha,
                                                 shape=shape, dtype=b_const.dtype),
                                        "weight"), 0, 1.0
    b_shape = ctx.shape(B)
    n = b_shape[0] if transB else b_shape[1]
    Y = ctx.output(0)
    scale = (lambda e: e * Const(float(alpha), Y.dtype)) if alpha != 1.0 else (lambda e: e)
    init = None
    if C is not None and beta != 0.0:
        c_shape = ctx.shape(C)
        check_broadcast(ctx, "C", c_shape, (m, n))
        def init(i, j):  # noqa: E306
            idx = tuple(ZERO if d == 1 else v for d, v in
                        zip(c_shape, (i, j)[2 - len(c_shape):]))
            c = Load(C, idx)
            return c if beta == 1.0 else c * Const(float(beta), Y.dtype)
    gemm_kernels(
        ctx, Y,
        lambda i, kk: scale(Load(A, (kk, i) if transA else (i, kk))),
        lambda kk, j: Load(B, (j, kk) if transB else (kk, j)),
        [], m, n, k, init)

