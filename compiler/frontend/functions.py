"""Ops that onnxc has no lowering for but ONNX defines as a function of other ops (LinearAttention,
CausalConvWithState, ...): the node is replaced by the function's body, as onnxruntime does
for function ops. The body is the one ONNX gives for the model's opset (a context-dependent
one is built for the node's input types), its names prefixed with the node's, attribute
references bound to the node's attributes or the schema's defaults. Ops with a lowering are
never expanded: the lowering is the faster and checked path.
"""
from __future__ import annotations

import onnx
from onnx import helper

from ..ops.registry import lookup
from .infer import infer_shapes

_MAX_DEPTH = 4   # a body may hold function ops of its own


def _function(schema, node: onnx.NodeProto, opset: int, types: dict) -> onnx.FunctionProto | None:
    plain = [v for v in schema.function_opset_versions if v <= opset]
    contextual = [v for v in schema.context_dependent_function_opset_versions if v <= opset]
    body = onnx.FunctionProto()
    if plain and (not contextual or max(plain) >= max(contextual)):
        body.ParseFromString(schema.get_function_with_opset_version(max(plain)))
        return body
    if contextual:
        if any(i and i not in types for i in node.input):
            return None
        input_types = [types[i].SerializeToString() if i else onnx.TypeProto().SerializeToString()
                       for i in node.input]
        body.ParseFromString(schema.get_context_dependent_function_with_opset_version(
            max(contextual), node.SerializeToString(), input_types))
        return body
    return None


def _rename_graph(graph: onnx.GraphProto, rename) -> None:
    """Inside a subgraph, names it does not define itself come from the body: rename them."""
    local = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    for n in graph.node:
        local.update(n.output)
    for n in graph.node:
        n.input[:] = [i if not i or i in local else rename(i) for i in n.input]
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                _rename_graph(a.g, lambda x, outer=local: x if x in outer else rename(x))


def _expand(node: onnx.NodeProto, body: onnx.FunctionProto, schema, prefix: str) -> list:
    names = dict(zip(body.input, node.input))
    names.update((f, a) for f, a in zip(body.output, node.output) if a)

    def rename(name: str) -> str:
        return names.get(name, name and prefix + name)
    given = {a.name: a for a in node.attribute}
    for name, attr in schema.attributes.items():
        if name not in given and attr.default_value.name:
            given[name] = attr.default_value
    nodes = []
    for inner in body.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(inner)
        copy.name = prefix + (inner.name or inner.op_type)
        copy.input[:] = [rename(i) for i in inner.input]
        copy.output[:] = [rename(o) for o in inner.output]
        del copy.attribute[:]
        for a in inner.attribute:
            if a.ref_attr_name:
                if a.ref_attr_name in given:
                    bound = onnx.AttributeProto()
                    bound.CopyFrom(given[a.ref_attr_name])
                    bound.name = a.name
                    copy.attribute.append(bound)
                continue
            copy.attribute.append(a)
            if a.type == onnx.AttributeProto.GRAPH:
                _rename_graph(copy.attribute[-1].g, rename)
        nodes.append(copy)
    return nodes


def _known(node: onnx.NodeProto, opsets: dict) -> bool:
    """onnxc can compile this node: a lowering, control flow, or a function of its own."""
    domain = node.domain if node.domain != "ai.onnx" else ""
    opset = opsets.get(domain, 1)
    if lookup(node.op_type, domain, opset) is not None or node.op_type in ("If", "Scan"):
        return True
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, domain)
    except onnx.defs.SchemaError:
        return False
    return schema.has_function or schema.has_context_dependent_function


def _types(model: onnx.ModelProto) -> dict:
    try:
        graph = infer_shapes(model).graph
    except Exception:   # onnx raises several types; types are then only the declared ones
        graph = model.graph
    types = {v.name: v.type for v in list(graph.input) + list(graph.value_info) +
             list(graph.output)}
    for t in graph.initializer:
        types[t.name] = helper.make_tensor_type_proto(t.data_type, list(t.dims))
    return types


def expand_functions(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of the model with every unlowered function op replaced by its body (the model
    itself when there is none)."""
    opsets = {(o.domain if o.domain != "ai.onnx" else ""): o.version for o in model.opset_import}
    for depth in range(_MAX_DEPTH):
        types, changed, nodes = None, False, []
        for i, node in enumerate(model.graph.node):
            domain = node.domain if node.domain != "ai.onnx" else ""
            opset = opsets.get(domain, 1)
            try:
                schema = onnx.defs.get_schema(node.op_type, opset, domain)
            except onnx.defs.SchemaError:
                schema = None
            if schema is None or lookup(node.op_type, domain, opset) is not None or not (
                    schema.has_function or schema.has_context_dependent_function):
                nodes.append(node)
                continue
            types = types if types is not None else _types(model)
            body = _function(schema, node, opset, types)
            if body is None:
                nodes.append(node)
                continue
            prefix = f"{node.name or node.op_type + str(i)}/fn{depth}/"
            expanded = _expand(node, body, schema, prefix)
            if not all(_known(n, opsets) for n in expanded):
                nodes.append(node)   # reported as the op the user wrote, not its body's
                continue
            nodes += expanded
            changed = True
        if not changed:
            return model
        expanded = onnx.ModelProto()
        expanded.CopyFrom(model)
        del expanded.graph.node[:]
        expanded.graph.node.extend(nodes)
        model = expanded
    return model
