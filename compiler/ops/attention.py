"""FusedAttention (internal domain): Y = Softmax(Q @ KT * scale [+ mask]) @ V in one kernel.

graph/patterns.py makes it from the MatMul-Softmax-MatMul block that exporters write. Inputs:
Q [..., Sq, D], KT [..., D, Skv] (keys already transposed, as exporters compute them),
V [..., Skv, Dv] with equal batch dimensions, and an optional float mask broadcast to
[..., Sq, Skv]. Per batch entry (head) the kernel computes the scores into a block on its own
stack, normalizes them there and multiplies them by V: the scores never reach the arena.

The stages are named loop nests that the "attention" schedule tiles like GEMMs (loops
qi/qj/qd and vi/ve/vj, roles in schedule/heuristics.GEMM_ROLES) or vectorizes along the row.
"""
from __future__ import annotations

import dataclasses

from .. import dtypes
from ..errors import ModelError
from ..loop.ir import Allocate, Binary, Buffer, Const, Load, Store, Unary, loops, seq
from .common import broadcast_index
from .registry import INTERNAL_DOMAIN, register

# The scores block of one batch entry lives on the stack of the thread that runs it.
MAX_STACK_SCORES_BYTES = 1 << 20


def _local(ctx, hint: str, dtype: str, *shape) -> Buffer:
    buf = ctx.builder.new_buffer(f"{ctx.node.name}_{hint}", dtype, shape, "l_")
    return dataclasses.replace(buf, scope="local")


def _check(ctx, Q, KT, V, mask) -> tuple[int, int, int, int]:
    q, kt, v = ctx.shape(Q), ctx.shape(KT), ctx.shape(V)
    if not (len(q) == len(kt) == len(v) >= 2) or not (q[:-2] == kt[:-2] == v[:-2]) or \
            q[-1] != kt[-2] or kt[-1] != v[-2]:
        raise ModelError(f"FusedAttention: shapes {q}, {kt}, {v} do not chain")
    if not dtypes.dtype(Q.dtype).is_float or len({Q.dtype, KT.dtype, V.dtype}) != 1:
        raise ModelError(f"FusedAttention: dtypes {Q.dtype}, {KT.dtype}, {V.dtype}")
    (sq, d), (skv, dv) = q[-2:], v[-2:]
    if sq * skv * dtypes.itemsize(Q.dtype) > MAX_STACK_SCORES_BYTES:
        raise ModelError(f"FusedAttention: a {sq}x{skv} score block does not fit the stack")
    if mask is not None and len(ctx.shape(mask)) > len(q):
        raise ModelError(f"FusedAttention: mask of shape {ctx.shape(mask)} has too many axes")
    return sq, d, skv, dv


@register("FusedAttention", domain=INTERNAL_DOMAIN)
def FusedAttention(ctx, Q, KT, V, mask=None, *, scale=1.0):
    sq, d, skv, dv = _check(ctx, Q, KT, V, mask)
    Y, dt = ctx.output(0), Q.dtype
    batch = [(f"b{i}", e) for i, e in enumerate(ctx.shape(Q)[:-2])]
    S = _local(ctx, "scores", dt, sq, skv)
    top, total = _local(ctx, "rowmax", dt, sq), _local(ctx, "rowsum", dt, sq)
    zero = Const(0.0, dt)

    def stages(*b):
        def logit(i, j):   # the softmax input: scaled scores plus the mask
            x = Load(S, (i, j)) * Const(float(scale), dt) if scale != 1.0 else Load(S, (i, j))
            if mask is None:
                return x
            return x + Load(mask, broadcast_index(b + (i, j), ctx.shape(mask)))

        def row(i):
            m, s = Load(top, (i,)), Load(total, (i,))
            return seq(
                Store(top, (i,), logit(i, Const(0, "int64"))),
                loops([("sj_max", skv)], lambda j: Store(top, (i,), Binary("max", m,
                                                                            logit(i, j)))),
                Store(total, (i,), zero),
                loops([("sj_exp", skv)], lambda j: seq(
                    Store(S, (i, j), Unary("exp", logit(i, j) - m)),
                    Store(total, (i,), s + Load(S, (i, j))))),
                Store(total, (i,), Unary("reciprocal", s)),
                loops([("sj", skv)], lambda j: Store(S, (i, j), Load(S, (i, j)) * s)))

        scores = loops([("qi", sq), ("qj", skv), ("qd", d)], lambda i, j, k: Store(
            S, (i, j), Load(S, (i, j)) + Load(Q, b + (i, k)) * Load(KT, b + (k, j))))
        out = loops([("vi", sq), ("ve", dv), ("vj", skv)], lambda i, e, j: Store(
            Y, b + (i, e), Load(Y, b + (i, e)) + Load(S, (i, j)) * Load(V, b + (j, e))))
        body = seq(loops([("zi", sq), ("zj", skv)], lambda i, j: Store(S, (i, j), zero)),
                   scores,
                   loops([("si", sq)], row),
                   loops([("oi", sq), ("oe", dv)], lambda i, e: Store(Y, b + (i, e), zero)),
                   out)
        return Allocate(S, Allocate(top, Allocate(total, body)))
    ctx.emit(loops(batch, stages) if batch else stages(), kind="attention")
