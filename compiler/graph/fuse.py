"""fuse_epilogues: activations, GELU and residual adds after Conv/Gemm/MatMul join that node.

The fused node keeps its op type and ONNX attributes; EPILOGUE_ATTR lists what follows it:
(op type, node name, attributes, extra input names), and the extra inputs are appended to
its inputs. Its lowering applies them to each output element as it leaves the tile.
"""
from __future__ import annotations

import numpy as np

from .ir import Graph, Node

EPILOGUE_ATTR = "onnxc_epilogue"
PRODUCERS = frozenset({"Conv", "Gemm", "MatMul"})
ACTIVATIONS = frozenset({"Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid",
                         "Clip"})


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
            tuple(np.broadcast_shapes(mine.shape, theirs.shape)) == mine.shape
    except ValueError:
        return False


def _step(g: Graph, producer: Node, out: str, user: Node):
    """(op type, node name, attributes, extra inputs) when `user` can join, else None."""
    if user.domain not in ("", "ai.onnx"):
        return None
    if user.op_type in ACTIVATIONS and user.inputs[0] == out:
        attrs = _clip_bounds(g, user) if user.op_type == "Clip" else user.attrs
        return None if attrs is None else (user.op_type, user.name, attrs, ())
    if user.op_type in ("Mul", "Div") and user.inputs[0] == out and \
            _scalar_value(g, user.inputs[1]) is not None:      # a scale: attention's 1/sqrt(d)
        return (user.op_type, user.name, (("value", _scalar_value(g, user.inputs[1])),), ())
    if user.op_type == "Add" and len(user.inputs) == 2 and out in user.inputs:
        other = user.inputs[1] if user.inputs[0] == out else user.inputs[0]
        if _residual_ok(g, producer, out, other):
            return ("Add", user.name, (), (other,))
    return None


def _scalar_value(g: Graph, name: str) -> float | None:
    data = g.constants.get(name)
    if data is None or data.size != 1 or data.dtype.kind != "f":
        return None
    return float(data.reshape(()))


def _scalar(g: Graph, name: str, value: float) -> bool:
    found = _scalar_value(g, name)
    return found is not None and bool(np.isclose(found, value, rtol=1e-4))


def _other_input(node: Node, name: str) -> str | None:
    if len(node.inputs) != 2 or name not in node.inputs:
        return None
    return node.inputs[1] if node.inputs[0] == name else node.inputs[0]


def _gelu(g: Graph, out: str, users: dict, outputs: set):
    """The nodes of torch's exact GELU on `out`, 0.5 * (out * (erf(out / sqrt 2) + 1)),
    as (their names, the last one), or None."""
    def only_user(name, op):
        us = users.get(name, [])
        ok = name not in outputs and len(us) == 1 and us[0].op_type == op \
            and us[0].domain in ("", "ai.onnx")
        return us[0] if ok else None
    first = {u.op_type: u for u in users.get(out, [])}
    div, mul = first.get("Div"), first.get("Mul")
    if len(users.get(out, [])) != 2 or div is None or mul is None or div.inputs[0] != out \
            or not _scalar(g, div.inputs[1], np.sqrt(2)):
        return None
    erf = only_user(div.outputs[0], "Erf")
    add = erf and only_user(erf.outputs[0], "Add")
    if add is None or not _scalar(g, _other_input(add, erf.outputs[0]) or "", 1.0) \
            or _other_input(mul, out) != add.outputs[0] or only_user(add.outputs[0], "Mul") \
            is not mul:
        return None
    half = only_user(mul.outputs[0], "Mul")
    if half is None or not _scalar(g, _other_input(half, mul.outputs[0]) or "", 0.5):
        return None
    return [div, erf, add, mul, half], half


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
        while out not in graph_outputs:
            gelu = _gelu(g, out, users, graph_outputs)
            if gelu is not None and not any(n.name in dropped for n in gelu[0]):
                steps.append(("Gelu", gelu[1].name, (), 0))
                dropped.update(n.name for n in gelu[0])
                out, last = gelu[1].outputs[0], max(index[n.name] for n in gelu[0])
                continue
            if len(users.get(out, [])) != 1:
                break
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
