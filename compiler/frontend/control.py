"""Control flow inlined into the graph before anything else sees it: If and Scan.

An AOT compiler knows every trip count and shape, so a subgraph needs no function of its
own: If evaluates both branches (they are side-effect free) and selects each output with a
Where on the condition; Scan is unrolled, one renamed copy of the body per step, slices of
the scan inputs going in and the per-step outputs concatenated. What cannot be inlined this
way (branches of different shapes, an empty scan, Loop) is left in place and reported as
unsupported, with node names, like any other op.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import ModelError


class _Renamer:
    """Names produced inside a subgraph get a prefix; names from the outer scope stay."""

    def __init__(self, graph: onnx.GraphProto, prefix: str):
        self.prefix = prefix
        self.local = {t.name for t in graph.initializer} | {i.name for i in graph.input}
        for node in graph.node:
            self.local.update(o for o in node.output if o)

    def __call__(self, name: str) -> str:
        return f"{self.prefix}{name}" if name in self.local else name


def _copy_nodes(graph: onnx.GraphProto, rename: _Renamer) -> list[onnx.NodeProto]:
    nodes = [helper.make_node("Constant", [], [rename(t.name)], value=t,
                              name=rename(t.name) + "_init") for t in graph.initializer]
    for node in graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = rename(node.name or f"{node.op_type}_{len(nodes)}")
        copy.ClearField("input")
        copy.ClearField("output")
        copy.input.extend(rename(i) if i else "" for i in node.input)
        copy.output.extend(rename(o) if o else "" for o in node.output)
        nodes.append(copy)
    return nodes


def _attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _same_static_outputs(node: onnx.NodeProto) -> bool:
    """Both branches declare the same static shapes: a Where then selects, never broadcasts."""
    def shapes(key):
        out = []
        for o in _attr(node, key).output:
            t = o.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
            out.append(dims if t.HasField("shape") and None not in dims else None)
        return out
    then, other = shapes("then_branch"), shapes("else_branch")
    return None not in then and then == other


def _inline_if(node: onnx.NodeProto, index: int, opset: int) -> list[onnx.NodeProto]:
    """Both branches, then out_i = Where(cond as a scalar, then_i, else_i)."""
    base = node.name or f"If_{index}"
    nodes, picked = [], []
    for key in ("then_branch", "else_branch"):
        branch = inline_graph(_attr(node, key), opset)
        rename = _Renamer(branch, f"{base}/{key}/")
        nodes += _copy_nodes(branch, rename)
        picked.append([rename(o.name) for o in branch.output])
    scalar = f"{base}/cond_scalar"
    nodes += [helper.make_node("Constant", [], [f"{base}/scalar_shape"],
                               value=numpy_helper.from_array(np.zeros(0, np.int64))),
              helper.make_node("Reshape", [node.input[0], f"{base}/scalar_shape"], [scalar])]
    for out, then_out, else_out in zip(node.output, *picked):
        nodes.append(helper.make_node("Where", [scalar, then_out, else_out], [out],
                                      name=f"{base}/select_{out}"))
    return nodes


def _scan_steps(node, shapes) -> int | None:
    """The scan length, from the first scan input's static shape (None when unknown)."""
    count = _attr(node, "num_scan_inputs")
    states = len(node.input) - count
    axes = list(_attr(node, "scan_input_axes", [0] * count))
    shape = shapes.get(node.input[states])
    if shape is None:
        return None
    axis = axes[0] + len(shape) if axes[0] < 0 else axes[0]
    return shape[axis] if isinstance(shape[axis], int) else None


def _unsqueeze(name: str, out: str, axis: int, opset: int) -> list[onnx.NodeProto]:
    """Unsqueeze at one axis: an input from opset 13 on, an attribute before."""
    if opset < 13:
        return [helper.make_node("Unsqueeze", [name], [out], axes=[axis])]
    axes = f"{out}/axes"
    return [helper.make_node("Constant", [], [axes],
                             value=numpy_helper.from_array(np.array([axis], np.int64))),
            helper.make_node("Unsqueeze", [name, axes], [out])]


def _inline_scan(node: onnx.NodeProto, index: int, steps: int,
                 opset: int) -> list[onnx.NodeProto]:
    body = inline_graph(_attr(node, "body"), opset)
    count = _attr(node, "num_scan_inputs")
    states = len(node.input) - count
    in_axes = list(_attr(node, "scan_input_axes", [0] * count))
    in_dirs = list(_attr(node, "scan_input_directions", [0] * count))
    n_outs = len(body.output) - states
    out_axes = list(_attr(node, "scan_output_axes", [0] * n_outs))
    out_dirs = list(_attr(node, "scan_output_directions", [0] * n_outs))
    base = node.name or f"Scan_{index}"
    nodes, carried, per_step = [], list(node.input[:states]), [[] for _ in range(n_outs)]
    for t in range(steps):
        rename = _Renamer(body, f"{base}/step{t}/")
        for name, value in zip((i.name for i in body.input[:states]), carried):
            nodes.append(helper.make_node("Identity", [value], [rename(name)]))
        for j, (inp, axis, rev) in enumerate(zip(body.input[states:], in_axes, in_dirs)):
            at = f"{base}/step{t}/index{j}"
            nodes += [helper.make_node("Constant", [], [at], value=numpy_helper.from_array(
                          np.array(steps - 1 - t if rev else t, np.int64))),
                      helper.make_node("Gather", [node.input[states + j], at],
                                       [rename(inp.name)], axis=axis)]
        nodes += _copy_nodes(body, rename)
        carried = [rename(o.name) for o in body.output[:states]]
        for k, o in enumerate(body.output[states:]):
            per_step[k].append(rename(o.name))
    for out, value in zip(node.output[:states], carried):
        nodes.append(helper.make_node("Identity", [value], [out]))
    for k, out in enumerate(node.output[states:]):
        parts = per_step[k][::-1] if out_dirs[k] else per_step[k]
        expanded = [f"{p}/unsqueezed" for p in parts]
        for p, e in zip(parts, expanded):
            nodes += _unsqueeze(p, e, out_axes[k], opset)
        nodes.append(helper.make_node("Concat", expanded, [out], axis=out_axes[k]))
    return nodes


def _static_shapes(graph: onnx.GraphProto) -> dict:
    shapes = {}
    for info in list(graph.input) + list(graph.value_info) + list(graph.output):
        t = info.type.tensor_type
        if t.HasField("shape"):
            shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None
                                 for d in t.shape.dim]
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def inline_graph(graph: onnx.GraphProto, opset: int) -> onnx.GraphProto:
    """The graph with every If of same-shaped branches, and every Scan (opset 9 on: Scan-8
    has a batch axis and sequence lengths) of known length, replaced by plain nodes."""
    shapes = _static_shapes(graph)
    nodes = []
    for i, node in enumerate(graph.node):
        standard = node.domain in ("", "ai.onnx")
        steps = _scan_steps(node, shapes) if opset >= 9 and standard and \
            node.op_type == "Scan" else None
        if node.op_type == "If" and standard and _same_static_outputs(node):
            nodes += _inline_if(node, i, opset)
        elif steps:
            nodes += _inline_scan(node, i, steps, opset)
        else:
            nodes.append(node)
    out = onnx.GraphProto()
    out.CopyFrom(graph)
    out.ClearField("node")
    out.node.extend(nodes)
    return out


def inline_control_flow(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of the model with If and Scan inlined (the model itself when it has none)."""
    if not any(n.op_type in ("If", "Scan") for n in model.graph.node):
        return model
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:   # onnx raises several types
        raise ModelError(f"shape inference failed: {str(exc).splitlines()[0]}") from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    out.graph.CopyFrom(inline_graph(inferred.graph, opset))
    return out
