"""recognize_subgraphs: what exporters spell as several nodes becomes the one op it is.

- GELU as torch exports nn.GELU(): 0.5 * (x * (erf(x / sqrt 2) + 1)).
- LayerNorm as exporters write it before opset 17: m = ReduceMean(x); d = x - m;
  y = d / sqrt(ReduceMean(d ^ 2) + eps) [* gamma] [+ beta], over the last axis.

Each becomes a node of the internal domain (INTERNAL_DOMAIN) with the semantics of the ONNX op
of that name (Gelu of opset 20, LayerNormalization of opset 17), whatever the model's opset:
one kernel instead of five to nine, and an activation that fuse_epilogues can move into the
producing MatMul's tile. Intermediate tensors must have no other reader and not be outputs.
"""
from __future__ import annotations

import numpy as np

from ..ops.registry import INTERNAL_DOMAIN
from .ir import Graph, Node


class _Matcher:
    def __init__(self, g: Graph):
        self.g = g
        self.users = g.consumers()
        self.outputs = {v.name for v in g.outputs}

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


def recognize_subgraphs(g: Graph) -> Graph:
    m = _Matcher(g)
    replaced: dict[str, Node] = {}      # name of a pattern's last node -> the new node
    dropped: set[str] = set()
    for value in [v.name for v in g.inputs] + [o for n in g.nodes for o in n.outputs]:
        for match in (m.gelu, m.layer_norm):
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
