"""Control flow inlined into the graph before anything else sees it: If, Scan and Loop.

An AOT compiler knows every trip count and shape, so a subgraph needs no function of its
own: If evaluates both branches (they are side-effect free) and selects each output with a
Where on the condition; Scan is unrolled, one renamed copy of the body per step, slices of
the scan inputs going in and the per-step outputs concatenated. Loop is unrolled the same way
when its iteration count is known: a constant trip count, or the declared length of a scan
output; a RunCheck then fails the run unless the trip count and the conditions computed in
the run give exactly that count. What cannot be inlined this way (branches of different
shapes, an empty scan, a Loop of unknown count) is left in place and reported as
unsupported, with node names, like any other op.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import ModelError
from ..ops.registry import INTERNAL_DOMAIN
from .external import tensor_array
from .infer import infer_shapes


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


# Longest loop unrolled: past it the graph would grow without bound.
MAX_UNROLLED_STEPS = 1024


def _constants(graph: onnx.GraphProto) -> dict:
    found = {t.name: tensor_array(t) for t in graph.initializer}
    for node in graph.node:
        value = _attr(node, "value")
        if node.op_type == "Constant" and isinstance(value, onnx.TensorProto):
            found[node.output[0]] = tensor_array(value)
    return found


def _loop_steps(node: onnx.NodeProto, shapes: dict, constants: dict) -> int | None:
    """A Loop's iteration count: its constant trip count when the condition cannot end it
    sooner, else the declared length of its first scan output."""
    trip, cond = (list(node.input) + ["", ""])[:2]
    states = len(node.input) - 2
    if not trip and not cond:      # runs until the body fails: not a loop to compile
        return None
    if trip in constants and not cond:
        return int(constants[trip].reshape(-1)[0])
    scans = node.output[states:]
    shape = shapes.get(scans[0]) if scans else None
    return shape[0] if shape and isinstance(shape[0], int) else None


def _scalar_node(value, name: str) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value))


class _LoopCheck:
    """The condition under which the real loop runs exactly `steps` iterations, as nodes."""

    def __init__(self, base: str, steps: int):
        self.base, self.steps, self.nodes, self.terms = base, steps, [], []

    def _scalar(self, name: str) -> str:
        shape = f"{self.base}/scalar_shape"
        if not any(shape in n.output for n in self.nodes):
            self.nodes.append(_scalar_node(np.zeros(0, np.int64), shape))
        self.nodes.append(helper.make_node("Reshape", [name, shape], [f"{name}/as_scalar"]))
        return f"{name}/as_scalar"

    def _bool(self, name: str) -> str:
        self.nodes.append(helper.make_node("Cast", [self._scalar(name)], [f"{name}/as_bool"],
                                           to=onnx.TensorProto.BOOL))
        return f"{name}/as_bool"

    def _apply(self, op: str, inputs: list[str], out: str) -> str:
        self.nodes.append(helper.make_node(op, inputs, [f"{self.base}/check/{out}"]))
        return f"{self.base}/check/{out}"

    def add(self, trip: str, conds: list[str]) -> None:
        """conds: the condition before each step and after the last (empty: no condition)."""
        count = f"{self.base}/check/steps"
        self.nodes.append(_scalar_node(np.array(self.steps, np.int64), count))
        stops = []
        if trip:
            trip_scalar = self._scalar(trip)
            short = self._apply("Less", [trip_scalar, count], "too_few")
            self.terms.append(self._apply("Not", [short], "enough"))
            stops.append(self._apply("Equal", [trip_scalar, count], "trip_ends"))
        if conds:
            self.terms += [self._bool(c) for c in conds[:-1]]
            stops.append(self._apply("Not", [self._bool(conds[-1])], "cond_ends"))
        self.terms.append(stops[0] if len(stops) == 1 else self._apply("Or", stops, "ends"))
        self.ok = self.terms[0]
        for k, term in enumerate(self.terms[1:]):
            self.ok = self._apply("And", [self.ok, term], f"all{k}")

    def node(self, value: str, out: str) -> onnx.NodeProto:
        return helper.make_node(
            "RunCheck", [value, self.ok], [out], domain=INTERNAL_DOMAIN, name=f"{self.base}/check",
            message=f"the trip count and conditions do not give the {self.steps} iterations "
                    "compiled")


def _inline_loop(node: onnx.NodeProto, index: int, steps: int,
                 opset: int) -> list[onnx.NodeProto]:
    body = inline_graph(_attr(node, "body"), opset)
    trip, cond = (list(node.input) + ["", ""])[:2]
    states = len(node.input) - 2
    base = node.name or f"Loop_{index}"
    nodes, per_step = [], [[] for _ in range(len(body.output) - 1 - states)]
    carried, conds = list(node.input[2:]), [cond] if cond else []
    for t in range(steps):
        rename = _Renamer(body, f"{base}/step{t}/")
        names = [i.name for i in body.input]
        nodes.append(_scalar_node(np.array(t, np.int64), rename(names[0])))
        nodes.append(helper.make_node("Identity", [conds[-1]], [rename(names[1])]) if conds
                     else _scalar_node(np.array(True), rename(names[1])))
        nodes += [helper.make_node("Identity", [v], [rename(n)])
                  for n, v in zip(names[2:], carried)]
        nodes += _copy_nodes(body, rename)
        if cond:
            conds.append(rename(body.output[0].name))
        carried = [rename(o.name) for o in body.output[1:1 + states]]
        for k, o in enumerate(body.output[1 + states:]):
            per_step[k].append(rename(o.name))
    check = _LoopCheck(base, steps)
    check.add(trip, conds)
    nodes += check.nodes
    finals = list(node.output[:states]) + list(node.output[states:])
    values = carried + [None] * len(per_step)
    checked = next(i for i, o in enumerate(finals) if o)
    for k, out in enumerate(node.output[states:]):
        expanded = [f"{p}/unsqueezed" for p in per_step[k]]
        for p, e in zip(per_step[k], expanded):
            nodes += _unsqueeze(p, e, 0, opset)
        values[states + k] = f"{out}/unchecked" if states + k == checked else out
        nodes.append(helper.make_node("Concat", expanded, [values[states + k]], axis=0))
    for i, (out, value) in enumerate(zip(finals, values)):
        if i == checked:
            nodes.append(check.node(value, out))
        elif i < states and out:
            nodes.append(helper.make_node("Identity", [value], [out]))
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
    """The graph with every If of same-shaped branches, every Scan (opset 9 on: Scan-8 has a
    batch axis and sequence lengths) and every Loop of known length, replaced by plain
    nodes."""
    shapes, constants = _static_shapes(graph), _constants(graph)
    nodes = []
    for i, node in enumerate(graph.node):
        standard = node.domain in ("", "ai.onnx")
        steps = _scan_steps(node, shapes) if opset >= 9 and standard and \
            node.op_type == "Scan" else None
        loop_steps = _loop_steps(node, shapes, constants) if standard and \
            node.op_type == "Loop" else None
        if node.op_type == "If" and standard and _same_static_outputs(node):
            nodes += _inline_if(node, i, opset)
        elif steps:
            nodes += _inline_scan(node, i, steps, opset)
        elif loop_steps and loop_steps <= MAX_UNROLLED_STEPS:
            nodes += _inline_loop(node, i, loop_steps, opset)
        else:
            nodes.append(node)
    out = onnx.GraphProto()
    out.CopyFrom(graph)
    out.ClearField("node")
    out.node.extend(nodes)
    return out


def inline_control_flow(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of the model with If, Scan and Loop inlined (the model itself when it has
    none)."""
    if not any(n.op_type in ("If", "Scan", "Loop") for n in model.graph.node):
        return model
    try:
        inferred = infer_shapes(model)
    except Exception as exc:   # onnx raises several types
        raise ModelError(f"shape inference failed: {str(exc).splitlines()[0]}") from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    out.graph.CopyFrom(inline_graph(inferred.graph, opset))
    if any(n.domain == INTERNAL_DOMAIN for n in out.graph.node) and \
            INTERNAL_DOMAIN not in {o.domain for o in out.opset_import}:
        out.opset_import.append(helper.make_opsetid(INTERNAL_DOMAIN, 1))
    return out
