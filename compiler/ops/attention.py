"""FusedAttention (internal domain): Y = Softmax(Q @ KT * scale [+ mask]) @ V in one kernel.

graph/patterns.py makes it from the MatMul-Softmax-MatMul block that exporters write. Inputs:
Q [..., Sq, D], KT [..., D, Skv] (keys already transposed, as exporters compute them),
V [..., Skv, Dv] with equal batch dimensions, and an optional float mask broadcast to
[..., Sq, Skv]. Per batch entry (head) the kernel computes the scores into a block on its own
stack, normalizes them there and multiplies them by V: the scores never reach the arena.

The stages are loop nests that the "attention" schedule tiles like GEMMs (the two products,
recognised by which loops index which operands: schedule/heuristics._gemm_nest) or vectorizes
along the row.
"""
from __future__ import annotations

import dataclasses
import math

from .. import dtypes
from ..errors import ModelError
from ..loop.ir import (
    Allocate,
    Binary,
    Buffer,
    Cast,
    Const,
    Load,
    Select,
    Store,
    Unary,
    cmp,
    loops,
    seq,
)
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


# -- ONNX Attention (opset 23+) -----------------------------------------------------------------
# One kernel over the query rows (batch, head, query): logits for the row, bias, softmax with
# the fully-masked-row guard, then P @ V, following onnx.reference's op_attention. Key and value
# caches (past_*) are concatenated into present_* first.

NEG_INF = float("-inf")


class _Heads:
    """Q, K, V seen as [batch, heads, sequence, head size], whatever their layout (3-D
    inputs are [batch, sequence, heads * head size])."""

    def __init__(self, ctx, X, heads: int | None):
        shape = ctx.shape(X)
        self.X, self.flat = X, len(shape) == 3
        if self.flat:
            if not heads or shape[2] % heads:
                raise ModelError(f"Attention: hidden size {shape[2]} is not divisible by "
                                 f"{heads} heads (q_num_heads / kv_num_heads)")
            self.batch, self.seq, self.heads, self.size = shape[0], shape[1], heads, \
                shape[2] // heads
        elif len(shape) == 4:
            self.batch, self.heads, self.seq, self.size = shape
        else:
            raise ModelError(f"Attention: inputs must be 3-D or 4-D, not {shape}")

    def index(self, b, h, s, d):
        return (b, s, h * self.size + d) if self.flat else (b, h, s, d)

    def load(self, b, h, s, d):
        return Load(self.X, self.index(b, h, s, d))


def _cache(ctx, new: _Heads, past, out, hint: str):
    """(reader(b, h, j, d), length) of past ++ new along the sequence; written to out (the
    present_* output, else a temp) when there is a past or out is requested."""
    plen = ctx.shape(past)[2] if past is not None else 0
    if past is None and out is None:
        return new.load, new.seq
    total = plen + new.seq
    dst = out if out is not None else ctx.temp(new.X.dtype, (new.batch, new.heads, total,
                                                             new.size), hint)

    def copy(b, h, j, d):
        if past is None:
            return Store(dst, (b, h, j, d), new.load(b, h, j, d))
        # both arms are evaluated: each index is kept inside its tensor
        old = Load(past, (b, h, Binary("min", j, _int(plen - 1)), d))
        fresh = new.load(b, h, Binary("max", j - plen, _int(0)), d)
        return Store(dst, (b, h, j, d), Select(cmp("lt", j, _int(plen)), old, fresh))
    ctx.emit(loops([("b", new.batch), ("h", new.heads), ("j", total), ("d", new.size)], copy),
             kind="elementwise", stage=hint)
    return (lambda b, h, j, d: Load(dst, (b, h, j, d))), total


def _int(value: int) -> Const:
    return Const(int(value), "int64")


class _Bias:
    """The additive bias of logit (b, h, i, j): attention mask (bool: attend or -inf; float:
    added, padded with -inf past its last column), causal and sliding-window frontiers
    aligned to the end of the cache, and the per-batch padding of nonpad_kv_seqlen."""

    def __init__(self, ctx, dt, mask, nonpad, causal, window, offset):
        self.ctx, self.dt, self.mask, self.nonpad = ctx, dt, mask, nonpad
        self.causal, self.window, self.offset = causal, window, offset

    def _neg(self, allowed, value=None):
        return Select(allowed, value if value is not None else Const(0.0, self.dt),
                      Const(NEG_INF, self.dt))

    def _mask(self, b, h, i, j):
        shape = self.ctx.shape(self.mask)
        width = shape[-1]
        idx = broadcast_index((b, h, i, Binary("min", j, _int(width - 1))), shape)
        value = Load(self.mask, idx)
        inside = cmp("lt", j, _int(width))
        if self.mask.dtype == "bool":
            return self._neg(Binary("and", inside, value))
        return self._neg(inside, value)

    def __call__(self, b, h, i, j):
        terms = []
        if self.mask is not None:
            terms.append(self._mask(b, h, i, j))
        offset = self.offset(b)
        if self.causal:
            terms.append(self._neg(cmp("le", j, i + offset)))
        left, right = self.window
        diff = i + offset - j
        if left >= 0:
            terms.append(self._neg(cmp("le", diff, _int(left))))
        if right >= 0:
            terms.append(self._neg(cmp("le", -diff, _int(right))))
        if self.nonpad is not None:
            terms.append(self._neg(cmp("lt", j, Cast("int64", Load(self.nonpad, (b,))))))
        total = Const(0.0, self.dt)
        for t in terms:
            total = total + t
        return total


_QK_OUTPUT_MODES = (0, 1, 2, 3)   # after QK (and softcap), after softcap, with bias, softmax


@register("Attention", since=23)
def Attention(ctx, Q, K, V, attn_mask=None, past_key=None, past_value=None,
              nonpad_kv_seqlen=None, *, is_causal=0, kv_num_heads=0, q_num_heads=0,
              qk_matmul_output_mode=0, scale=None, softcap=0.0, softmax_precision=None,
              left_window_size=-1, right_window_size=-1):
    if qk_matmul_output_mode not in _QK_OUTPUT_MODES:
        raise ModelError(f"Attention: qk_matmul_output_mode {qk_matmul_output_mode}")
    if not dtypes.dtype(Q.dtype).is_float:
        raise ModelError(f"Attention: dtype {Q.dtype} is not supported")
    q, k, v = (_Heads(ctx, X, n) for X, n in ((Q, q_num_heads), (K, kv_num_heads),
                                               (V, kv_num_heads)))
    if q.heads % k.heads or k.heads != v.heads or q.size != k.size:
        raise ModelError(f"Attention: {q.heads} query heads of size {q.size} do not match "
                         f"{k.heads} key heads of size {k.size}, {v.heads} value heads")
    outs = [ctx.outputs[n] if n < len(ctx.outputs) else None for n in range(4)]
    key, total = _cache(ctx, k, past_key, outs[1], "present_key")
    value, _ = _cache(ctx, v, past_value, outs[2], "present_value")
    plen = ctx.shape(past_key)[2] if past_key is not None else 0
    if nonpad_kv_seqlen is not None and past_key is None:
        def offset(b):
            return Cast("int64", Load(nonpad_kv_seqlen, (b,))) - _int(q.seq)
    else:
        def offset(b):
            return _int(plen)
    dt = Q.dtype
    bias = _Bias(ctx, dt, attn_mask, nonpad_kv_seqlen, is_causal,
                 (left_window_size, right_window_size), offset)
    root = math.sqrt(scale if scale is not None else 1 / math.sqrt(q.size))
    rows = _AttentionRows(ctx, q, key, value, total, bias, dt, root, softcap, outs,
                          qk_matmul_output_mode, q.heads // k.heads)
    ctx.emit(loops([("b", q.batch), ("h", q.heads), ("i", q.seq)], rows.body), kind="reduce")


class _AttentionRows:
    """The statements of one query row (b, h, i)."""

    def __init__(self, ctx, q, key, value, total, bias, dt, root, softcap, outs, mode, group):
        self.ctx, self.q, self.key, self.value, self.total = ctx, q, key, value, total
        self.bias, self.dt, self.root, self.softcap = bias, dt, root, softcap
        self.outs, self.mode, self.group = outs, mode, group

    def body(self, b, h, i):
        c = lambda x: Const(float(x), self.dt)  # noqa: E731
        ctx, q, T = self.ctx, self.q, self.total
        hk = h // _int(self.group) if self.group > 1 else h
        s, bias = _local(ctx, "logits", self.dt, T), _local(ctx, "bias", self.dt, T)
        cells = {n: _local(ctx, n, self.dt, 1) for n in ("top", "bias_top", "total")}
        get = {n: Load(buf, (_int(0),)) for n, buf in cells.items()}

        def put(n, value):
            return Store(cells[n], (_int(0),), value)

        def logit(j, d):
            return Load(s, (j,)) + (q.load(b, h, i, d) * c(self.root)) * (
                self.key(b, hk, j, d) * c(self.root))
        capped = (lambda x: Unary("tanh", x * c(1 / self.softcap)) * c(self.softcap)) \
            if self.softcap and self.softcap > 0 else (lambda x: x)
        qk_out = self.outs[3]
        keep = (lambda stage, j, x: Store(qk_out, (b, h, i, j), x)
                if qk_out is not None and self.mode in stage else None)
        zero_row = cmp("eq", get["bias_top"], c(NEG_INF))
        safe_top = Select(cmp("eq", get["top"], c(NEG_INF)), c(0.0), get["top"])
        stmts = [
            loops([("j_qk", T)], lambda j: seq(
                Store(s, (j,), c(0.0)),
                loops([("d_qk", q.size)], lambda d: Store(s, (j,), logit(j, d))),
                keep((0,), j, Load(s, (j,))),
                Store(s, (j,), capped(Load(s, (j,)))),
                keep((1,), j, Load(s, (j,))),
                Store(bias, (j,), self.bias(b, h, i, j)),
                Store(s, (j,), Load(s, (j,)) + Load(bias, (j,))),
                keep((2,), j, Load(s, (j,))))),
            put("top", c(NEG_INF)), put("bias_top", c(NEG_INF)),
            loops([("j_max", T)], lambda j: seq(
                put("top", Binary("max", get["top"], Load(s, (j,)))),
                put("bias_top", Binary("max", get["bias_top"], Load(bias, (j,)))))),
            put("total", c(0.0)),
            loops([("j_exp", T)], lambda j: seq(
                Store(s, (j,), Unary("exp", Load(s, (j,)) - safe_top)),
                put("total", get["total"] + Load(s, (j,))))),
            put("total", Select(cmp("eq", get["total"], c(0.0)), c(1.0), get["total"])),
            loops([("j_p", T)], lambda j: seq(
                Store(s, (j,), Select(zero_row, c(0.0), Load(s, (j,)) / get["total"])),
                keep((3,), j, Load(s, (j,))))),
        ]
        return Allocate(s, Allocate(bias, _allocate(cells.values(), seq(
            *stmts, self._output(b, h, i, hk, s)))))

    def _output(self, b, h, i, hk, p):
        Y, q = self.outs[0], self.q
        dv = self.ctx.shape(Y)[-1] // (q.heads if q.flat else 1)
        index = (lambda e: (b, i, h * _int(dv) + e)) if q.flat else (lambda e: (b, h, i, e))
        return loops([("e", dv)], lambda e: seq(
            Store(Y, index(e), Const(0.0, self.dt)),
            loops([("j_pv", self.total)], lambda j: Store(
                Y, index(e), Load(Y, index(e)) + Load(p, (j,)) * self.value(b, hk, j, e)))))


def _allocate(buffers, body):
    for buf in buffers:
        body = Allocate(buf, body)
    return body


# -- RotaryEmbedding (opset 23) -----------------------------------------------------------------
@register("RotaryEmbedding", since=23)
def RotaryEmbedding(ctx, X, cos_cache, sin_cache, position_ids=None, *, interleaved=0,
                    num_heads=0, rotary_embedding_dim=0):
    """The first `rotary_embedding_dim` features of each head rotated in pairs (halves, or
    neighbours when interleaved) by the cached angle of the token's position; the rest kept."""
    heads = _Heads(ctx, X, num_heads) if len(ctx.shape(X)) == 3 else _Heads(ctx, X, None)
    rot = rotary_embedding_dim or heads.size
    half = rot // 2
    if rot % 2 or rot > heads.size or ctx.shape(cos_cache)[-1] != half:
        raise ModelError(f"RotaryEmbedding: rotary dimension {rot} with head size "
                         f"{heads.size} and caches of shape {ctx.shape(cos_cache)}")
    out = _Heads(ctx, ctx.output(0), heads.heads if heads.flat else None)

    def angle(cache, b, s, i):
        if position_ids is None:
            return Load(cache, (b, s, i))
        return Load(cache, (Cast("int64", Load(position_ids, (b, s))), i))

    def element(b, h, s, d):
        inside = cmp("lt", d, _int(rot))
        pair = Binary("min", d, _int(rot - 1))          # keeps the loads in bounds
        if interleaved:
            i, first = pair // _int(2), cmp("eq", pair % _int(2), _int(0))
            x1, x2 = heads.load(b, h, s, i * _int(2)), heads.load(b, h, s, i * _int(2) + _int(1))
        else:
            i, first = pair % _int(half), cmp("lt", pair, _int(half))
            x1, x2 = heads.load(b, h, s, i), heads.load(b, h, s, i + _int(half))
        cos, sin = angle(cos_cache, b, s, i), angle(sin_cache, b, s, i)
        rotated = Select(first, cos * x1 - sin * x2, sin * x1 + cos * x2)
        return Store(out.X, out.index(b, h, s, d), Select(inside, rotated,
                                                          heads.load(b, h, s, d)))
    ctx.emit(loops([("b", heads.batch), ("h", heads.heads), ("s", heads.seq),
                    ("d", heads.size)], element), kind="elementwise")
