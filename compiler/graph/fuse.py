"""fuse_epilogues: activations, scales and residual adds after Conv/Gemm/MatMul join that node.

The fused node keeps its op type and ONNX attributes; EPILOGUE_ATTR lists what follows it:
(op type, node name, attributes, extra input names), and the extra inputs are appended to
its inputs. Its lowering applies them to each output element as it leaves the tile.
"""
from __future__ import annotations

import numpy as np

from ..loop.symbolic import broadcast_shapes
from ..ops.registry import INTERNAL_DOMAIN
from .ir import Graph, Node

EPILOGUE_ATTR = "onnxc_epilogue"
PRODUCERS = frozenset({"Conv", "Gemm", "MatMul"})
ACTIVATIONS = frozenset({"Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid",
                         "Clip", "Gelu"})


def _clip_bounds(g: Graph, node: Node):
    """Clip's bounds as attributes, or None when one is computed at run time."""
    if len(node.inputs) == 1:
        return (("min", node.attr("min", -np.inf)), ("max", node.attr("max", np.inf)))
    bounds = []
    for key, name in zip(("min", "max"), node.inputs[1:3]):
        if name and name not in g.constants:
            return None
        value = float(g.constants[name]) if name else (-np.inf if key == "min" else np.inf)
        bounds.append((key, value))
    return tuple(bounds)


def _residual_ok(g: Graph, producer: Node, out: str, other: str) -> bool:
    mine, theirs = g.values.get(out), g.values.get(other)
    if mine is None or theirs is None or mine.dtype != theirs.dtype or other == out:
        return False
    if theirs.shape == mine.shape:
        return True
    # a broadcast operand (a bias row) only where the output is the GEMM's own layout
    try:
        return producer.op_type != "Conv" and \
            broadcast_shapes(mine.shape, theirs.shape) == tuple(mine.shape)
    except ValueError:
        return False


def _step(g: Graph, producer: Node, out: str, user: Node):
    """(op type, node name, attributes, extra inputs) when `user` can join, else None."""
    if user.domain not in ("", "ai.onnx", INTERNAL_DOMAIN):
        return None
    if user.op_type in ACTIVATIONS and user.inputs[0] == out:
        attrs = _clip_bounds(g, user) if user.op_type == "Clip" else user.attrs
        return None if attrs is None else (user.op_type, user.name, attrs, ())
    if user.op_type in ("Mul", "Div") and user.inputs[0] == out and \
            g.scalar(user.inputs[1]) is not None:      # a scale: attention's 1/sqrt(d)
        return (user.op_type, user.name, (("value", g.scalar(user.inputs[1])),), ())
    if user.op_type == "Add" and len(user.inputs) == 2 and out in user.inputs:
        other = user.inputs[1] if user.inputs[0] == out else user.inputs[0]
        if _residual_ok(g, producer, out, other):
            return ("Add", user.name, (), (other,))
    return None


def fuse_epilogues(g: Graph) -> Graph:
    users = g.consumers()
    graph_outputs = {v.name for v in g.outputs}
    index = {n.name: i for i, n in enumerate(g.nodes)}
    placed: dict[int, Node] = {}   # position of a chain's last node -> the fused node
    dropped: set[str] = set()
    for producer in g.nodes:
        if producer.op_type not in PRODUCERS or producer.domain not in ("", "ai.onnx"):
            continue
        out, steps, extra = producer.outputs[0], [], []
        while out not in graph_outputs and len(users.get(out, [])) == 1:
            user = users[out][0]
            step = None if user.name in dropped else _step(g, producer, out, user)
            if step is None:
                break
            steps.append(step[:3] + (len(step[3]),))
            extra += step[3]
            dropped.add(user.name)
            out, last = user.outputs[0], index[user.name]
        if steps:
            fused = Node(producer.op_type, producer.name, producer.inputs + tuple(extra),
                         (out,) + producer.outputs[1:],
                         producer.attrs + ((EPILOGUE_ATTR, (len(producer.inputs),
                                                            tuple(steps))),),
                         producer.domain)
            # at the chain's end: a residual may be computed after the producer
            placed[last] = fused
            dropped.add(producer.name)
    if not placed:
        return g
    nodes = [placed.get(i, n) for i, n in enumerate(g.nodes)]
    return g.with_nodes([n for i, n in enumerate(nodes) if i in placed or n.name not in dropped])
