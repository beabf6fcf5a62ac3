"""What a model declares about its tensors (value_info and graph outputs) is a claim, not a
fact: the frontend computes every type from the inputs and the ops, then holds the claims
against the result.

Policy (as onnxruntime): a declared shape that contradicts the computed one is replaced by the
computed one with a ModelWarning naming the tensor (exporters write stale shapes, e.g.
onnxmltools declares LightGBM's `label` as [1] whatever the batch); a declared element type that
contradicts the computed one is a ModelError, since the caller would read the buffer as another
type. Declared shapes never size a buffer.
"""
from __future__ import annotations

import warnings

import numpy as np
import onnx

from .. import dtypes
from ..errors import ModelError, ModelWarning
from ..graph.ir import Graph, Node, Value


def declared_values(model: onnx.ModelProto) -> dict[str, Value]:
    """The tensor types the model declares for its intermediate values and outputs."""
    from .load import _value
    found = {}
    for info in list(model.graph.value_info) + list(model.graph.output):
        v = _value(info)
        if v is not None:
            found[info.name] = v
    return found


def without_declared_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose outputs keep only their names and whose value_info is empty, so that
    shape inference computes every type instead of merging the declared ones in."""
    stripped = onnx.ModelProto()
    stripped.CopyFrom(model)
    del stripped.graph.value_info[:]
    for out in stripped.graph.output:
        out.ClearField("type")
    return stripped


def _dims_conflict(declared: tuple, computed: tuple) -> bool:
    if len(declared) != len(computed):
        return True
    # a negative declared dimension means any (exporters write -1, as onnxruntime reads it)
    return any(isinstance(d, int) and d >= 0 and isinstance(c, int) and d != c
               for d, c in zip(declared, computed))


def check_declared(graph: Graph, declared: dict[str, Value]) -> None:
    """Warn where a declared shape contradicts the computed one; refuse a contradicting
    element type. Tensors the frontend folded away or never typed are not compared."""
    for name, claim in declared.items():
        actual = graph.values.get(name)
        if actual is None:
            continue
        if claim.dtype != actual.dtype:
            raise ModelError(f"tensor {name!r} is declared {claim.dtype} but its producer makes "
                             f"{actual.dtype}")
        if _dims_conflict(claim.shape, actual.shape):
            warnings.warn(f"tensor {name!r} is declared with shape {_shape_text(claim.shape)} "
                          f"but computes to {_shape_text(actual.shape)}: using the computed "
                          "shape", ModelWarning, stacklevel=2)


def _shape_text(shape: tuple) -> str:
    from ..loop.symbolic import dim_str
    return "[" + ", ".join(d if isinstance(d, str) else dim_str(d) for d in shape) + "]"


# Ops whose output has the shape of their first input: a declared shape further down a chain
# of them is the shape of the chain's start.
_SAME_SHAPE = frozenset({"Cast", "CastLike", "Identity", "Sqrt", "Log", "Exp", "Abs", "Neg",
                         "Relu", "Sigmoid", "Tanh", "Reciprocal", "Floor", "Ceil", "Round",
                         "Sign", "Erf", "Softplus", "Not", "Cos", "Sin", "Tan", "Acos",
                         "Asin", "Atan", "Cosh", "Sinh", "Asinh", "Acosh", "Atanh", "IsNaN",
                         "IsInf", "Softsign", "HardSigmoid", "LeakyRelu", "Elu", "Selu"})


# Elementwise ops with two or more inputs: their output has the shape of an input when every
# other input is a scalar or has that same shape.
_BROADCAST_ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Mod",
                                    "Sum", "Mean", "Where", "Equal", "Less", "Greater",
                                    "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor"})


def _is_scalar(g: Graph, values: dict, name: str) -> bool:
    if name in g.constants:
        return np.shape(g.constants[name]) in ((), (1,))
    v = values.get(name)
    return v is not None and v.is_static and v.shape in ((), (1,))


def _keeps_shape(g: Graph, reader: Node, region: set, values: dict) -> bool:
    """Whether reader's output has the shape shared by the tensors in region."""
    if reader.op_type in _SAME_SHAPE:
        return reader.inputs[0] in region
    if reader.op_type not in _BROADCAST_ELEMENTWISE or len(reader.outputs) != 1:
        return False
    inputs = [i for i in reader.inputs if i]
    return any(i in region for i in inputs) and \
        all(i in region or _is_scalar(g, values, i) for i in inputs)


def _same_shape_region(g: Graph, start: str, values: dict) -> set:
    """The tensors that have start's shape through unary elementwise ops and elementwise ops
    whose other operands are scalars or in the region (a window function's Range -> Mul by
    a step -> Cos -> ... -> output)."""
    region, grown = {start}, True
    while grown:
        grown = False
        for n in g.nodes:
            if n.outputs and n.outputs[0] not in region and _keeps_shape(g, n, region, values):
                region.add(n.outputs[0])
                grown = True
    return region


def _declared_shape(g: Graph, name: str, known: dict) -> tuple | None:
    """The one static shape declared (or computed) for name or for a tensor of the same
    shape further down (_same_shape_region); None when there is none or several."""
    shapes = {known[n].shape for n in _same_shape_region(g, name, known)
              if n in known and known[n].is_static}
    return shapes.pop() if len(shapes) == 1 else None


def take_declared_shapes(g: Graph, node: Node, values: dict, declared: dict,
                         element_types: dict[str, str]) -> bool:
    """A node whose output shapes depend on values read at run time (a Reduce with axes as an
    input, Split sizes, a Range with a run-time limit) takes, for each output onnx could not
    shape, the shape declared for it or for a tensor of the same shape further down. Its
    lowering compiles that shape and checks the run's values against it. The dtype is onnx's
    inferred one (element_types: also where it gave no shape), else the one the schema ties
    to an input. False (values untouched) unless
    every output gets a shape."""
    if not node.inputs or node.inputs[0] not in values:
        return False
    known = {**declared, **{k: v for k, v in values.items() if v.is_static}}
    schema, found = schema_dtypes(g, node, values), {}
    for own in (o for o in node.outputs if o):
        if own in values and values[own].is_static:
            continue
        shape = _declared_shape(g, own, known)
        dtype = values[own].dtype if own in values else \
            element_types.get(own) or schema.get(own)
        if shape is None or dtype is None:
            return False
        found[own] = Value(own, dtype, shape)
    values.update(found)
    return True


def schema_dtypes(g: Graph, node: Node, values: dict) -> dict[str, str]:
    """Output dtypes that node's schema ties to an input's (type parameter T) or fixes to one
    type: they overrule an evaluation by onnx.reference, which gets some old versions wrong
    (Dropout-7's mask is T, not bool)."""
    try:
        schema = onnx.defs.get_schema(node.op_type, g.opsets.get(node.domain, 1), node.domain)
    except onnx.defs.SchemaError:
        return {}
    tied = {}
    for formal, name in _actuals(schema.inputs, node.inputs):
        if name and name in values:
            tied.setdefault(formal.type_str, values[name].dtype)
    only = {c.type_param_str: dtypes.from_onnx_type_string(c.allowed_type_strs[0])
            for c in schema.type_constraints if len(c.allowed_type_strs) == 1}
    found = {}
    for formal, name in _actuals(schema.outputs, node.outputs):
        dtype = tied.get(formal.type_str) or only.get(formal.type_str)
        if name and dtype:
            found[name] = dtype
    return found


def _actuals(formals, names):
    """(formal parameter, tensor name) pairs; a variadic last formal takes every remaining
    name. Heterogeneous variadics (Loop's state) tie no types."""
    pairs = []
    for i, name in enumerate(names):
        formal = formals[i] if i < len(formals) else formals[-1] if formals \
            and formals[-1].option == formals[-1].option.Variadic else None
        if formal is None:
            break
        if formal.option != formal.option.Variadic or formal.is_homogeneous:
            pairs.append((formal, name))
    return pairs


def element_types(model: onnx.ModelProto) -> dict[str, str]:
    """Every tensor's element type in an inferred model, shaped or not."""
    found = {}
    for info in list(model.graph.value_info) + list(model.graph.output):
        dtype = dtypes.from_onnx(info.type.tensor_type.elem_type) \
            if info.type.HasField("tensor_type") else None
        if dtype is not None:
            found[info.name] = dtype
    return found
