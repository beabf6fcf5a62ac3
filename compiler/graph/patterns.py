"""recognize_subgraphs: what exporters spell as several nodes becomes the one op it is.

- GELU as torch exports nn.GELU(): 0.5 * (x * (erf(x / sqrt 2) + 1)).
- LayerNorm as exporters write it before opset 17: m = ReduceMean(x); d = x - m;
  y = d / sqrt(ReduceMean(d ^ 2) + eps) [* gamma] [+ beta], over the last axis.
- Attention as exporters write it: Softmax(MatMul(Q, KT) [* or / scalar] [+ mask]) @ V, with
  the scores of one batch entry (head) small enough to stay in the cache (MAX_SCORES_BYTES).

Each becomes a node of the internal domain (INTERNAL_DOMAIN): Gelu and LayerNormalization
with the semantics of the ONNX op of that name (Gelu of opset 20, LayerNormalization of opset
17) whatever the model's opset, and FusedAttention (ops/attention.py). One kernel instead of
three to nine, and an activation that fuse_epilogues can move into the producing MatMul's
tile. Intermediate tensors must have no other reader and not be outputs.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..loop.symbolic import broadcast_shapes
from ..ops.registry import INTERNAL_DOMAIN
from .ir import Graph, Node

# Largest score matrix of one batch entry (Sq x Skv) that attention fuses: it lives in the
# fused kernel's stack frame and, with Q, K and V panels, in a core's L2 cache.
MAX_SCORES_BYTES = 256 * 1024
_SCALE_OPS = {"Mul": lambda c: c, "Div": lambda c: 1.0 / c}


class _Matcher:
    def __init__(self, g: Graph, max_scores_bytes: int):
        self.g, self.max_scores_bytes = g, max_scores_bytes
        self.users = g.consumers()
        self.outputs = {v.name for v in g.outputs}
        self.producers = g.producer()

    def scalar(self, name: str | None, value: float | None = None) -> float | None:
        found = self.g.scalar(name)
        if found is None or value is None:
            return found
        return found if np.isclose(found, value, rtol=1e-4) else None

    def only_user(self, name: str, op: str) -> Node | None:
        us = self.users.get(name, [])
        ok = name not in self.outputs and len(us) == 1 and us[0].op_type == op \
            and us[0].domain in ("", "ai.onnx")
        return us[0] if ok else None

    @staticmethod
    def other(node: Node, name: str) -> str | None:
        if len(node.inputs) != 2 or name not in node.inputs:
            return None
        return node.inputs[1] if node.inputs[0] == name else node.inputs[0]

    def gelu(self, x: str):
        """(nodes, replacement) for GELU on x, or None."""
        first = {u.op_type: u for u in self.users.get(x, [])}
        div, mul = first.get("Div"), first.get("Mul")
        if len(self.users.get(x, [])) != 2 or div is None or mul is None \
                or div.inputs[0] != x or self.scalar(div.inputs[1], np.sqrt(2)) is None:
            return None
        erf = self.only_user(div.outputs[0], "Erf")
        add = erf and self.only_user(erf.outputs[0], "Add")
        if add is None or self.scalar(self.other(add, erf.outputs[0]), 1.0) is None \
                or self.other(mul, x) != add.outputs[0] \
                or self.only_user(add.outputs[0], "Mul") is not mul:
            return None
        half = self.only_user(mul.outputs[0], "Mul")
        if half is None or self.scalar(self.other(half, mul.outputs[0]), 0.5) is None:
            return None
        nodes = [div, erf, add, mul, half]
        return nodes, Node("Gelu", half.name, (x,), half.outputs, (), INTERNAL_DOMAIN)

    def _last_axis_mean(self, node: Node | None) -> bool:
        rank = len(self.g.values[node.inputs[0]].shape) if node else 0
        axes = node.attr("axes") if node else None
        if axes is None and node is not None and len(node.inputs) > 1:
            data = self.g.constants.get(node.inputs[1])
            axes = None if data is None else [int(a) for a in data.reshape(-1)]
        return node is not None and axes is not None and len(axes) == 1 and \
            axes[0] in (-1, rank - 1) and node.attr("keepdims", 1) == 1

    def _per_channel(self, name: str | None, x: str) -> bool:
        """A constant that varies along x's last axis only (LayerNorm's gamma or beta)."""
        data = self.g.constants.get(name or "")
        last = self.g.values[x].shape[-1]
        return data is not None and data.ndim >= 1 and data.shape[-1] in (1, last) and \
            data.size == data.shape[-1]

    def layer_norm(self, x: str):
        """(nodes, replacement) for LayerNorm on x (x read by ReduceMean and Sub), or None."""
        first = {u.op_type: u for u in self.users.get(x, [])}
        mean, sub = first.get("ReduceMean"), first.get("Sub")
        value = self.g.values[x]
        if value.dtype not in ("float32", "float64") or not value.shape \
                or len(self.users.get(x, [])) != 2 or not self._last_axis_mean(mean) \
                or sub is None or sub.inputs != (x, mean.outputs[0]) \
                or self.only_user(mean.outputs[0], "Sub") is not sub:
            return None
        d = sub.outputs[0]
        uses = {u.op_type: u for u in self.users.get(d, [])}
        pow_, div = uses.get("Pow"), uses.get("Div")
        if len(self.users.get(d, [])) != 2 or pow_ is None or div is None or d in self.outputs \
                or self.scalar(pow_.inputs[1], 2.0) is None or div.inputs[0] != d:
            return None
        var = self.only_user(pow_.outputs[0], "ReduceMean")
        add = var and self._last_axis_mean(var) and self.only_user(var.outputs[0], "Add")
        eps = add and self.scalar(self.other(add, var.outputs[0]))
        sqrt = eps is not None and add and self.only_user(add.outputs[0], "Sqrt")
        if not sqrt or div.inputs[1] != sqrt.outputs[0]:
            return None
        nodes = [mean, sub, pow_, var, add, sqrt, div]
        mul = self.only_user(div.outputs[0], "Mul")     # gamma (LayerNormalization needs one)
        gamma = mul and self.other(mul, div.outputs[0])
        if not self._per_channel(gamma, x):
            return None
        nodes, params, last = nodes + [mul], [gamma], mul
        shift = self.only_user(mul.outputs[0], "Add")   # beta, optional
        beta = shift and self.other(shift, mul.outputs[0])
        if self._per_channel(beta, x):
            nodes, params, last = nodes + [shift], params + [beta], shift
        return nodes, Node("LayerNormalization", last.name, (x, *params), last.outputs,
                           (("axis", -1), ("epsilon", eps)), INTERNAL_DOMAIN)

    def _scaled(self, s: str):
        """(nodes, scale, output) for an optional scalar Mul/Div of s."""
        for op, factor in _SCALE_OPS.items():
            node = self.only_user(s, op)
            c = node and (op == "Mul" or node.inputs[0] == s) and \
                self.scalar(self.other(node, s))
            if c:
                return [node], factor(c), node.outputs[0]
        return [], 1.0, s

    def _masked(self, s: str):
        """(nodes, mask or None, output) for an optional Add of a broadcast float tensor."""
        add = self.only_user(s, "Add")
        mask = add and self.other(add, s)
        if not mask or mask not in self.g.values or \
                self.g.values[mask].dtype != self.g.values[s].dtype:
            return [], None, s
        try:
            full = broadcast_shapes(self.g.values[mask].shape, self.g.values[s].shape)
        except ValueError:
            return [], None, s
        if tuple(full) != tuple(self.g.values[s].shape):
            return [], None, s
        return [add], mask, add.outputs[0]

    def attention(self, s: str):
        """(nodes, replacement) when s = MatMul(Q, KT) starts an attention block, or None."""
        qk = self.producers.get(s)
        value = self.g.values.get(s)
        if qk is None or qk.op_type != "MatMul" or qk.domain not in ("", "ai.onnx") or \
                value is None or value.dtype not in ("float32", "float64") or \
                len(value.shape) < 2:
            return None
        scale_nodes, scale, x = self._scaled(s) if s not in self.outputs else ([], 1.0, s)
        mask_nodes, mask, x = self._masked(x) if x not in self.outputs else ([], None, x)
        soft = self.only_user(x, "Softmax")
        rank = len(value.shape)
        axis = soft and soft.attr("axis", -1 if self.g.opsets.get("", 1) >= 13 else 1)
        pv = soft and axis in (-1, rank - 1) and self.only_user(soft.outputs[0], "MatMul")
        if not pv or pv.inputs[0] != soft.outputs[0] or s in self.outputs or \
                len(self.users.get(s, [])) != 1:
            return None
        q, kt, v = qk.inputs[0], qk.inputs[1], pv.inputs[1]
        shapes = [self.g.values[n].shape for n in (q, kt, v)]
        scores = value.shape[-2] * value.shape[-1] * dtypes.itemsize(value.dtype)
        if any(len(sh) != rank or sh[:-2] != shapes[0][:-2] for sh in shapes) or \
                not isinstance(scores, int) or scores > self.max_scores_bytes:
            return None
        nodes = [qk] + scale_nodes + mask_nodes + [soft, pv]
        inputs = (q, kt, v) + ((mask,) if mask else ())
        return nodes, Node("FusedAttention", pv.name, inputs, pv.outputs,
                           (("scale", scale),), INTERNAL_DOMAIN)


def recognize_subgraphs(g: Graph, max_scores_bytes: int = MAX_SCORES_BYTES) -> Graph:
    """max_scores_bytes: the largest score matrix attention fuses (0: none)."""
    m = _Matcher(g, max_scores_bytes)
    replaced: dict[str, Node] = {}      # name of a pattern's last node -> the new node
    dropped: set[str] = set()
    for value in [v.name for v in g.inputs] + [o for n in g.nodes for o in n.outputs if o]:
        for match in (m.gelu, m.layer_norm, m.attention):
            found = match(value)
            if found is None or any(n.name in dropped for n in found[0]):
                continue
            nodes, new = found
            dropped.update(n.name for n in nodes)
            replaced[new.name] = new
    if not replaced:
        return g
    return g.with_nodes([replaced.get(n.name, n) for n in g.nodes
                         if n.name in replaced or n.name not in dropped])
