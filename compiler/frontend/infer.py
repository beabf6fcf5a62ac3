"""Every tensor's type computed from the graph inputs and the ops (never from what the model
declares: frontend/declared.py), with onnx's shape inference, corrected where onnx's rule for
an old op version disagrees with what onnxruntime computes."""
from __future__ import annotations

import onnx
from onnx import helper, shape_inference

from ..errors import ModelError
from .declared import without_declared_shapes

# Pools with ceil_mode before opset 22: onnx's inference keeps a last window that starts in the
# end padding, which onnxruntime (and torch) drop; opset 22's rule is theirs.
_POOLS = frozenset({"MaxPool", "AveragePool", "LpPool"})
_POOL_RULE_OPSET = 22
# onnx's data propagation (the values of shape tensors) spends about 140 bytes per element of
# every 1-D tensor it passes through Cast, Squeeze or Unsqueeze, whatever its length: a
# float32[2147483647] input took 20 GB. Shape tensors are short; past this length it is off.
_MAX_PROPAGATED_LENGTH = 1 << 20


def infer_types(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with a type for every tensor onnx can infer; declarations play no part."""
    stripped = without_declared_shapes(model)
    # lenient: onnx's strict mode also trips on its own bugs (a function body's Constant in
    # MeanVarianceNormalization, BatchNormalization's optional training outputs); what it
    # leaves untyped, frontend/fold.py computes and the lowerings check
    inferred = _infer(stripped, strict=False)
    fixes = _pool_corrections(inferred)
    if not fixes:
        return inferred
    # a second pass from the corrected shapes, which onnx keeps over its own rule
    stripped.graph.value_info.extend(fixes)
    return _infer(stripped, strict=False)


def infer_shapes(model: onnx.ModelProto, **options) -> onnx.ModelProto:
    """onnx's inference with data propagation where it is safe (_MAX_PROPAGATED_LENGTH);
    onnx's exceptions pass through."""
    plain = shape_inference.infer_shapes(model, **options)
    if not _short_vectors_only(plain):
        return plain
    return shape_inference.infer_shapes(model, data_prop=True, **options)


def _short_vectors_only(model: onnx.ModelProto) -> bool:
    """Whether every 1-D tensor onnx shapes without data propagation is short enough for it."""
    graph = model.graph
    lengths = [v.type.tensor_type.shape.dim[0].dim_value
               for v in (*graph.input, *graph.value_info, *graph.output)
               if v.type.HasField("tensor_type") and len(v.type.tensor_type.shape.dim) == 1]
    lengths += [t.dims[0] for t in graph.initializer if len(t.dims) == 1]
    return all(n <= _MAX_PROPAGATED_LENGTH for n in lengths)


def _infer(model: onnx.ModelProto, strict: bool) -> onnx.ModelProto:
    try:
        return infer_shapes(model, check_type=True, strict_mode=strict)
    except Exception as exc:  # onnx raises InferenceError, ValidationError, RuntimeError...
        text = str(exc).strip()
        raise ModelError(f"shape inference failed: {text.splitlines()[0] if text else exc!r}"
                         ) from None


def _pool_corrections(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """value_info for each ceil_mode pool output whose opset-22 shape differs from onnx's."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset >= _POOL_RULE_OPSET:
        return []
    types = {v.name: v for v in list(model.graph.value_info) + list(model.graph.input)
             + list(model.graph.output)}
    fixes = []
    for node in model.graph.node:
        ceil = next((a.i for a in node.attribute if a.name == "ceil_mode"), 0)
        if node.op_type not in _POOLS or not ceil or node.input[0] not in types:
            continue
        out = _single_node_output(node, types[node.input[0]])
        if out is not None and node.output[0] in types and \
                out.type != types[node.output[0]].type:
            fixes.append(out)
    return fixes


def _single_node_output(node: onnx.NodeProto, x: onnx.ValueInfoProto):
    """The node's first output type under opset 22's rule (None when onnx gives none)."""
    single = onnx.NodeProto()
    single.CopyFrom(node)
    del single.output[1:]
    graph = helper.make_graph([single], "pool", [x], [helper.make_empty_tensor_value_info(
        node.output[0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("",
                                                                        _POOL_RULE_OPSET)])
    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=True)
    except Exception:  # noqa: BLE001  keep onnx's own answer
        return None
    out = inferred.graph.output[0]
    return out if out.type.tensor_type.HasField("shape") else None
