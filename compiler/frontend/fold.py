"""Constant folding and shape inference where onnx's own inference stops."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference, version_converter
from onnx.reference import ReferenceEvaluator

from .. import dtypes
from ..errors import ModelError
from ..graph.ir import Graph, Node, Value
from ..ops.registry import lookup
from .declared import schema_dtypes, take_declared_shapes
from .infer import infer_shapes
from .validate import value_bytes

# Ops never folded: values that are not a function of the inputs (random), and ops whose
# onnx.reference ignores attributes or inputs (the recurrent ones drop sequence_lens,
# activations, clip and input_forget), which the compiled kernel honours.
_UNFOLDABLE = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike",
                         "RandomUniformLike", "Multinomial", "Bernoulli", "RNN", "GRU", "LSTM"})
_MAX_FOLDED_ELEMENTS = 1 << 22   # don't embed a huge tensor that a kernel could compute
_MAX_EVALUATED_BYTES = 1 << 30   # inputs of a node run on zeros to learn its output shapes
_TYPED_ONLY_BYTES = 1 << 20     # to_model gives larger constants as typed inputs
# Inputs whose values (not just shapes) decide the output shape; None: the data itself does.
_SHAPE_INPUTS = {"Reshape": (1,), "Expand": (1,), "Slice": (1, 2, 3, 4), "Tile": (1,),
                 "Pad": (1, 2, 3), "ConstantOfShape": (0,), "Range": (0, 1, 2),
                 "Resize": (1, 2, 3), "Upsample": (1,), "Squeeze": (1,), "Unsqueeze": (1,),
                 "Split": (1,), "TopK": (1,), "OneHot": (1,), "Compress": None,
                 "Unique": None, "AffineGrid": (1,), "Col2Im": (1, 2),
                 "CenterCropPad": (1,), "MaxUnpool": (2,), "DFT": (1, 2), "STFT": (1, 3),
                 "BlackmanWindow": (0,), "HannWindow": (0,), "HammingWindow": (0,),
                 "MelWeightMatrix": (0, 1),
                 **{f"Reduce{r}": (1,) for r in ("Sum", "Mean", "Max", "Min", "Prod", "L1", "L2",
                                                 "LogSum", "LogSumExp", "SumSquare")}}


def _onnx_attrs(node: Node) -> dict:
    attrs = {}
    for k, v in node.attrs:
        if isinstance(v, np.ndarray):
            v = numpy_helper.from_array(v)
        if isinstance(v, tuple) and not v:
            continue
        attrs[k] = v
    return attrs


def node_proto(node: Node) -> onnx.NodeProto:
    return helper.make_node(node.op_type, list(node.inputs), list(node.outputs),
                            name=node.name, domain=node.domain or None, **_onnx_attrs(node))


def _value_info(v: Value) -> onnx.ValueInfoProto:
    shape = [d if isinstance(d, int) else None for d in v.shape]
    return helper.make_tensor_value_info(v.name, dtypes.dtype(v.dtype).onnx_code, shape)


def _opset_imports(g: Graph):
    return [helper.make_opsetid(domain, version) for domain, version in g.opsets.items()]


def evaluate_node(g: Graph, node: Node, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run one node with onnx.reference (the folding evaluator)."""
    inputs = [helper.make_tensor_value_info(n, dtypes.dtype(dtypes.from_numpy(a.dtype)).onnx_code,
                                            list(a.shape)) for n, a in feeds.items()]
    outputs = [helper.make_empty_tensor_value_info(o) for o in node.outputs if o]
    graph = helper.make_graph([node_proto(node)], "fold", inputs, outputs)
    model = helper.make_model(graph, opset_imports=_opset_imports(g))
    model.ir_version = onnx.IR_VERSION
    try:
        return ReferenceEvaluator(model).run(None, feeds)
    except Exception:
        # onnx.reference lacks or mishandles some old versions (Reshape-4, Concat-1's default
        # axis, Tile-1's axis input): the node converted to the current opset means the same
        newest = onnx.defs.onnx_opset_version()
        if g.opsets.get("", newest) >= newest or node.domain not in ("", "ai.onnx"):
            raise
        try:
            converted = version_converter.convert_version(model, newest)
        except Exception:  # noqa: BLE001  no conversion: the first failure says more
            converted = None
        if converted is None:
            raise
        return ReferenceEvaluator(converted).run(None, feeds)


def _shape_of(g: Graph, node: Node) -> np.ndarray | None:
    v = g.values.get(node.inputs[0])
    if v is None or not v.is_static:
        return None
    if node.op_type == "Size":
        return np.array(int(np.prod(v.shape, dtype=np.int64)), np.int64)
    rank = len(v.shape)
    start, end = node.attr("start", 0), node.attr("end", rank)
    return np.array(v.shape[slice(start, end)], np.int64)


def _casts_to_sub_byte_int(g: Graph, node: Node) -> bool:
    """A Cast to a 4- or 2-bit integer: onnx.reference converts through ml_dtypes, which
    truncates (and, by version, wraps or zeroes out-of-range values) where ONNX rounds to even
    and keeps the low bits; the kernel follows ONNX."""
    out = g.values.get(node.outputs[0]) if node.outputs else None
    return node.op_type in ("Cast", "CastLike") and out is not None \
        and out.dtype in dtypes.SUB_BYTE_INTS


def _divides_by_zero(node: Node, constants: dict) -> bool:
    """An integer Div or Mod by a constant holding a zero: onnx.reference would fold it to
    garbage; its lowering refuses it, naming the node, as onnxruntime does at load."""
    if node.op_type not in ("Div", "Mod") or node.domain or len(node.inputs) < 2:
        return False
    divisor = constants.get(node.inputs[1])
    return divisor is not None and np.asarray(divisor).dtype.kind in "iu" and \
        bool((np.asarray(divisor) == 0).any())


def _elements(v: Value | None) -> int:
    return int(np.prod(v.shape, dtype=np.float64)) if v is not None and v.is_static else 0


def _fold_node(g: Graph, node: Node, constants: dict) -> list[np.ndarray] | None:
    if node.op_type in ("Shape", "Size") and not node.domain:
        folded = _shape_of(g, node)
        return None if folded is None else [folded]
    if node.op_type in _UNFOLDABLE or node.domain not in ("", "ai.onnx") \
            or _casts_to_sub_byte_int(g, node) or _divides_by_zero(node, constants):
        return None
    if not all(i == "" or i in constants for i in node.inputs):
        return None
    if any(_elements(g.values.get(o)) > _MAX_FOLDED_ELEMENTS for o in node.outputs if o):
        return None    # known too large before evaluating: a kernel computes it
    feeds = {i: constants[i] for i in node.inputs if i}
    try:
        results = evaluate_node(g, node, feeds)
    except Exception as exc:
        raise ModelError(f"node {node.name!r} ({node.op_type}) fails on its constant "
                         f"inputs: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                         ) from None
    if any(np.asarray(r).size > _MAX_FOLDED_ELEMENTS for r in results):
        return None
    return [np.asarray(r) for r in results]


def fold_constants(g: Graph) -> Graph:
    """Evaluate every node whose inputs are all constant (Constant nodes included)."""
    constants = dict(g.constants)
    values = dict(g.values)
    kept: list[Node] = []
    for node in g.nodes:
        results = _fold_node(g.with_nodes(g.nodes, constants, values), node, constants)
        if results is None:
            kept.append(node)
            continue
        for name, arr in zip((o for o in node.outputs if o), results):
            dt = dtypes.from_numpy(arr.dtype)
            if dt not in dtypes.BY_NAME:
                raise ModelError(f"node {node.name!r} makes a constant of unsupported dtype {dt}")
            constants[name] = arr
            values[name] = Value(name, dt, tuple(arr.shape))
    return g.with_nodes(kept, constants, values)


def to_model(g: Graph) -> onnx.ModelProto:
    """The graph back as ONNX (constants as initializers), for onnx's inference. Large
    constants (weights) become typed inputs: inference reads only small ones' values, and
    a copy of every weight in a protobuf would double the model's memory."""
    large = [k for k, a in g.constants.items() if a.nbytes > _TYPED_ONLY_BYTES]
    inits = [numpy_helper.from_array(np.asarray(a), name) for name, a in g.constants.items()
             if name not in large]
    known = [_value_info(v) for k, v in g.values.items()
             if k not in g.constants and k not in {i.name for i in g.inputs}]
    graph = helper.make_graph([node_proto(n) for n in g.nodes], g.name,
                              [_value_info(v) for v in g.inputs] +
                              [_value_info(Value(k, dtypes.from_numpy(g.constants[k].dtype),
                                                 tuple(g.constants[k].shape))) for k in large],
                              [_value_info(v) if v.name in g.values else
                               helper.make_empty_tensor_value_info(v.name) for v in g.outputs],
                              inits, value_info=known)
    model = helper.make_model(graph, opset_imports=_opset_imports(g))
    model.ir_version = onnx.IR_VERSION
    return model


def _static_values(model: onnx.ModelProto) -> dict[str, Value]:
    from .load import _value
    found = {}
    for info in list(model.graph.value_info) + list(model.graph.output):
        v = _value(info)
        if v is not None and v.is_static:
            found[v.name] = v
    return found


def infer_missing_shapes(g: Graph, declared: dict[str, Value] | None = None,
                         element_types: dict[str, str] | None = None) -> Graph:
    """Re-run onnx's inference on the folded graph; where it still stops, run the node on
    zeros of its known input types (shapes of our static ops do not depend on values).
    declared: the model's own claims, consulted only where a lowering checks them at run
    time (take_declared_shapes); element_types: the dtypes onnx inferred for tensors it could
    not shape."""
    values = dict(g.values)
    declared = declared or {}
    try:
        inferred = infer_shapes(to_model(g))
        values.update(_static_values(inferred))
    except Exception:  # onnx's inference is best effort here; our fallback follows
        pass
    for node in g.nodes:
        _check_no_runtime_sizes(node, values)
        if _bound_outputs(g, node, values):
            continue
        if all(o == "" or (o in values and values[o].is_static) for o in node.outputs):
            continue
        if _registered_shapes(g, node, values) or _node_inferred_shapes(g, node, values):
            continue
        if _reads_shape_at_run_time(g, node):
            # the lowering compiles the declared shape and checks the run's values against it
            if take_declared_shapes(g, node, values, declared, element_types or {}):
                continue
            _check_shape_inputs_constant(g, node)
        ins = [values.get(i) for i in node.inputs if i]
        # only the standard ops' reference implementations are run: others may not terminate
        # (a tree with a cycle) and are slow in Python; they register a shape rule instead
        if any(v is None or not v.is_static for v in ins) or node.domain not in ("", "ai.onnx"):
            raise ModelError(f"cannot infer the shapes of node {node.name!r} ({node.op_type})")
        _check_evaluation_size(node, [values[i] for i in node.inputs if i])
        feeds = {i: g.constants[i] if i in g.constants else
                 np.zeros(values[i].shape, dtypes.dtype(values[i].dtype).numpy)
                 for i in node.inputs if i}
        try:
            results = evaluate_node(g, node, feeds)
        except Exception as exc:   # onnx.reference raises many types
            raise ModelError(f"cannot infer the shapes of node {node.name!r} ({node.op_type}): "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                             ) from None
        schema = schema_dtypes(g, node, values)
        for name, arr in zip((o for o in node.outputs if o), results):
            arr = np.asarray(arr)
            values[name] = Value(name, schema.get(name) or dtypes.from_numpy(arr.dtype),
                                 tuple(arr.shape))
    outputs = tuple(values.get(o.name, o) for o in g.outputs)
    return Graph(g.name, g.inputs, outputs, g.nodes, values, g.constants, g.opsets)


def _check_evaluation_size(node: Node, inputs: list[Value]) -> None:
    """Shapes onnx cannot infer come from running the node on zeros: not on more memory
    than _MAX_EVALUATED_BYTES."""
    size = sum(value_bytes(v) for v in inputs)
    if size > _MAX_EVALUATED_BYTES:
        raise ModelError(f"cannot infer the shapes of node {node.name!r} ({node.op_type}): onnx "
                         f"does not, and running it would take {size} bytes of zeros")


def _registered_shapes(g: Graph, node: Node, values: dict) -> bool:
    """Outputs typed by the op's own registered shape rule, where it has one."""
    domain = node.domain if node.domain != "ai.onnx" else ""
    entry = lookup(node.op_type, domain, g.opsets.get(domain, 1))
    ins = [values.get(i) if i else None for i in node.inputs]
    if entry is None or entry.shape is None or any(
            i and (v is None or not v.is_static) for i, v in zip(node.inputs, ins)):
        return False
    consts = [g.constants.get(i) if i else None for i in node.inputs]
    shapes = entry.shape(ins, consts, node.attr_dict)
    if shapes is None:      # the rule has nothing to add
        return False
    for name, (dtype, shape) in zip(node.outputs, shapes):
        if name:
            values[name] = Value(name, dtype, tuple(shape))
    return True


def _node_inferred_shapes(g: Graph, node: Node, values: dict) -> bool:
    """Outputs typed by onnx's inference of this one node, now that its inputs are typed
    (onnx stops at the first node it cannot type: an ML op such as Scaler leaves every node
    after it untyped, though each of them has an inference rule)."""
    domain = node.domain if node.domain != "ai.onnx" else ""
    ins = [i for i in node.inputs if i]
    if any(i not in values or not values[i].is_static for i in ins):
        return False
    try:
        schema = onnx.defs.get_schema(node.op_type, g.opsets.get(domain, 1), domain)
        types = {i: _value_info(values[i]).type for i in ins}
        data = {i: numpy_helper.from_array(np.asarray(g.constants[i]), i) for i in ins
                if i in g.constants and g.constants[i].nbytes <= _TYPED_ONLY_BYTES}
        found = shape_inference.infer_node_outputs(schema, node_proto(node), types, data,
                                                   opset_imports=_opset_imports(g))
    except Exception:  # best effort, as the whole-graph inference; the fallbacks follow
        return False
    from .load import _value
    typed = {}
    for name, tp in found.items():
        v = _value(helper.make_value_info(name, tp))
        if v is None or not v.is_static:
            return False
        typed[name] = v
    if any(o and o not in typed for o in node.outputs):
        return False
    values.update(typed)
    return True


def _bound_outputs(g: Graph, node: Node, values: dict) -> bool:
    """Outputs sized by the data (NonZero) get their registered upper bound and the axes
    decided at run time. False for every other op."""
    domain = node.domain if node.domain != "ai.onnx" else ""
    entry = lookup(node.op_type, domain, g.opsets.get(domain, 1))
    if entry is None or entry.bound is None:
        return False
    ins = [values.get(i) if i else None for i in node.inputs]
    if any(i and (v is None or not v.is_static) for i, v in zip(node.inputs, ins)):
        raise ModelError(f"cannot infer the shapes of node {node.name!r} ({node.op_type})")
    for name, (dtype, shape, axes) in zip(node.outputs, entry.bound(ins, node.attr_dict)):
        if name:
            values[name] = Value(name, dtype, tuple(shape), tuple(axes))
    return True


def _check_no_runtime_sizes(node: Node, values: dict) -> None:
    for i in node.inputs:
        if i and i in values and values[i].runtime_axes:
            raise ModelError(f"node {node.name!r} ({node.op_type}) reads {i!r}, whose size "
                             "the data decides at run time: such a tensor can only be a model "
                             "output for now")


def _reads_shape_at_run_time(g: Graph, node: Node) -> bool:
    """Whether an input that sets node's output shape (or the data itself) arrives with the
    run rather than at compile time."""
    if node.op_type not in _SHAPE_INPUTS or node.domain not in ("", "ai.onnx"):
        return False
    which = _SHAPE_INPUTS[node.op_type]
    return which is None or any(i < len(node.inputs) and node.inputs[i]
                                and node.inputs[i] not in g.constants for i in which)


def _check_shape_inputs_constant(g: Graph, node: Node) -> None:
    if node.op_type not in _SHAPE_INPUTS:
        return
    which = _SHAPE_INPUTS[node.op_type]
    if which is None:
        raise ModelError(f"node {node.name!r} ({node.op_type}): its output shape depends on "
                         "the input data, which static compilation does not support yet")
    for i in which:
        if i < len(node.inputs) and node.inputs[i] and node.inputs[i] not in g.constants:
            raise ModelError(f"node {node.name!r} ({node.op_type}): input {i} "
                             f"({node.inputs[i]!r}) sets the output shape and must be a "
                             "compile-time constant")
