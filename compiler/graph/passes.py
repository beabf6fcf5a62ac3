"""Graph passes: pure functions Graph -> Graph."""
from __future__ import annotations

import numpy as np

from .ir import Graph, Node, Value


def eliminate_dead_nodes(g: Graph) -> Graph:
    """Drop nodes whose outputs no graph output needs, and constants nobody reads."""
    live = {v.name for v in g.outputs}
    kept: list[Node] = []
    for node in reversed(g.nodes):
        if any(o in live for o in node.outputs):
            kept.append(node)
            live.update(i for i in node.inputs if i)
    if len(kept) == len(g.nodes) and all(k in live for k in g.constants):
        return g
    constants = {k: v for k, v in g.constants.items() if k in live}
    return g.with_nodes(reversed(kept), constants)


def _bn_scale_shift(g: Graph, bn: Node):
    scale, bias, mean, var = (g.constants.get(n) for n in bn.inputs[1:5])
    if any(t is None for t in (scale, bias, mean, var)):
        return None
    eps = bn.attr("epsilon", 1e-5)
    inv = scale.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
    return inv, bias.astype(np.float64) - mean.astype(np.float64) * inv


def _fold_into(g: Graph, producer: Node, bn: Node, constants: dict) -> Node | None:
    """Rewrite Conv/Gemm `producer` so that it computes bn(producer(x))."""
    factors = _bn_scale_shift(g, bn)
    weight = g.constants.get(producer.inputs[1])
    if factors is None or weight is None or weight.dtype != np.float32:
        return None
    inv, shift = factors
    bias_name = producer.inputs[2] if len(producer.inputs) > 2 and producer.inputs[2] else None
    bias = g.constants.get(bias_name) if bias_name else np.zeros(len(inv), np.float32)
    if bias is None:
        return None
    if producer.op_type == "Conv":
        w = weight * inv.reshape((-1,) + (1,) * (weight.ndim - 1))
    elif producer.attr("transB", 0):
        w = weight * inv[:, None]
    else:
        w = weight * inv[None, :]
    if producer.op_type == "Gemm" and (producer.attr("alpha", 1.0) != 1.0
                                       or producer.attr("beta", 1.0) != 1.0):
        return None
    w_name, b_name = f"{producer.name}/bn_folded_W", f"{producer.name}/bn_folded_B"
    constants[w_name] = w.astype(np.float32)
    constants[b_name] = (bias.astype(np.float64) * inv + shift).astype(np.float32)
    return Node(producer.op_type, producer.name, (producer.inputs[0], w_name, b_name),
                bn.outputs[:1], producer.attrs, producer.domain)


def fold_batchnorm(g: Graph) -> Graph:
    """Conv -> BatchNormalization (and Gemm -> BN over features) become one Conv/Gemm."""
    users = g.consumers()
    graph_outputs = {v.name for v in g.outputs}
    constants = dict(g.constants)
    replaced: dict[str, Node] = {}     # producer name -> fused node
    dropped: set[str] = set()
    producer_of = g.producer()
    for bn in g.nodes:
        if bn.op_type != "BatchNormalization" or len(bn.outputs) > 1 and any(bn.outputs[1:]):
            continue
        prod = producer_of.get(bn.inputs[0])
        if prod is None or prod.op_type not in ("Conv", "Gemm") or prod.name in replaced:
            continue
        if len(users.get(prod.outputs[0], [])) != 1 or prod.outputs[0] in graph_outputs:
            continue
        if prod.op_type == "Gemm" and g.values[prod.outputs[0]].shape[-1] != \
                len(g.constants.get(bn.inputs[1], ())):
            continue
        fused = _fold_into(g, prod, bn, constants)
        if fused is not None:
            replaced[prod.name] = fused
            dropped.add(bn.name)
    if not replaced:
        return g
    nodes = [replaced.get(n.name, n) for n in g.nodes if n.name not in dropped]
    values = dict(g.values)
    for name, arr in constants.items():
        if name not in values:
            values[name] = Value(name, str(arr.dtype), tuple(arr.shape))
    return eliminate_dead_nodes(g.with_nodes(nodes, constants, values))
