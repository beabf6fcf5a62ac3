"""ONNX -> Graph: load, check, resolve opsets, infer every shape, fold constants."""
from __future__ import annotations

import os

import numpy as np
import onnx
from google.protobuf.message import EncodeError
from onnx import helper

from .. import dtypes
from ..errors import ModelError
from ..graph.fuse import fuse_epilogues
from ..graph.ir import Graph, Node, Value
from ..graph.passes import eliminate_dead_nodes, fold_batchnorm
from ..graph.patterns import MAX_SCORES_BYTES, recognize_subgraphs
from ..ops.registry import INTERNAL_DOMAIN, lookup
from .control import inline_control_flow
from .declared import check_declared, declared_values, element_types
from .dims import symbolic_dims
from .external import external_tensors, for_checker, locate, read_model, tensor_array
from .fold import fold_constants, infer_missing_shapes
from .functions import expand_functions
from .infer import infer_types
from .symbolic import graph_symbols, infer_symbolic, symbol_vars
from .validate import check_tensor_sizes, validate_model
from .wire import SCAN_BYTES


def load_model(model_or_path, validate: bool = True) -> onnx.ModelProto:
    """Read and check a model; every failure is a one-line ModelError. A file's weights stay
    in their files (frontend/external.py), so that a model over protobuf's 2 GiB limit loads
    and its weights are never copied whole."""
    if isinstance(model_or_path, onnx.ModelProto):
        model = model_or_path
        checked = for_checker(model)
    else:
        path = os.fspath(model_or_path)
        if not os.path.isfile(path):
            raise ModelError(f"{path}: no such file")
        # onnx's checker parses a file whole: one that holds its weights is checked as read
        model = read_model(path)
        checked = path if os.path.getsize(path) < SCAN_BYTES else for_checker(model)
    for tensor in external_tensors(model.graph):
        locate(tensor)      # every file, offset and length checked before any work
    checked = _with_shapes_for_checker(model, checked)
    try:
        onnx.checker.check_model(checked)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid model"
        raise ModelError(f"model fails onnx.checker: {first}") from None
    except (ValueError, EncodeError):    # only a model in memory is serialized to check
        raise ModelError("the model is over protobuf's 2 GiB limit: save it with its weights "
                         "as external data (onnx.save_model(..., save_as_external_data=True)) "
                         "and compile the file") from None
    if validate:    # a user's model; not the frontend's own output loaded again
        validate_model(model)
    return inline_control_flow(expand_functions(model))


def _with_shapes_for_checker(model: onnx.ModelProto, checked):
    """onnx's checker refuses a tensor type without a shape, which onnxruntime runs (the
    shapes are computed anyway; a missing declaration claims nothing): the checker reads a
    copy in which each such type has an empty one."""
    graph = model.graph
    missing = [i for i, v in enumerate((*graph.input, *graph.output, *graph.value_info))
               if v.type.HasField("tensor_type") and not v.type.tensor_type.HasField("shape")]
    if not missing:
        return checked
    copy = onnx.ModelProto()
    copy.CopyFrom(for_checker(model))
    infos = (*copy.graph.input, *copy.graph.output, *copy.graph.value_info)
    for i in missing:
        infos[i].type.tensor_type.shape.SetInParent()
    return copy


def _attr_value(attr: onnx.AttributeProto):
    value = helper.get_attribute_value(attr)
    if isinstance(value, onnx.TensorProto):
        return tensor_array(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return tuple(v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value)
    return value


def _value(info: onnx.ValueInfoProto) -> Value | None:
    t = info.type.tensor_type
    if not info.type.HasField("tensor_type") or not t.HasField("shape"):
        return None
    dt = dtypes.from_onnx(t.elem_type)
    if dt is None:
        return None
    shape = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                  for d in t.shape.dim)
    return Value(info.name, dt, shape)


def _unique_node_names(nodes) -> list[str]:
    seen: set[str] = set()
    names = []
    for i, n in enumerate(nodes):
        name = n.name or f"{n.op_type}_{i}"
        while name in seen:
            name = f"{name}_{i}"
        seen.add(name)
        names.append(name)
    return names


def _to_graph(model: onnx.ModelProto) -> Graph:
    g = model.graph
    constants = {t.name: tensor_array(t) for t in g.initializer}
    values = {}
    for info in list(g.value_info) + list(g.input) + list(g.output):
        v = _value(info)
        if v is not None:
            values[info.name] = v
    for name, arr in constants.items():
        values[name] = Value(name, dtypes.from_numpy(arr.dtype), tuple(arr.shape))
    inputs = tuple(values.get(i.name) or _missing_type(i.name)
                   for i in g.input if i.name not in constants)
    outputs = tuple(values.get(o.name) or Value(o.name, "float32", ()) for o in g.output)
    names = _unique_node_names(g.node)
    nodes = tuple(Node(n.op_type, name, tuple(n.input), tuple(n.output),
                       tuple((a.name, _attr_value(a)) for a in n.attribute), n.domain)
                  for n, name in zip(g.node, names))
    opsets = {(o.domain if o.domain != "ai.onnx" else ""): o.version for o in model.opset_import}
    return Graph(g.name or "model", inputs, outputs, nodes, values, constants, opsets)


def _missing_type(name: str):
    raise ModelError(f"graph input {name!r} has no tensor type or an unsupported dtype")


def import_model(model_or_path, max_scores_bytes: int = MAX_SCORES_BYTES) -> Graph:
    """The frontend: a checked model becomes a Graph with every shape known and constants
    folded (Constant nodes and initializers alike), dead nodes dropped and BN folded.
    max_scores_bytes: the largest attention score matrix fused into one kernel."""
    # plan() loaded and validated the user's model: this is its expanded form
    model = load_model(model_or_path, validate=False)
    declared = declared_values(model)
    inferred = infer_types(model)
    graph = _to_graph(inferred)
    if all(v.is_static for v in graph.inputs) and not _reads_data_sized(graph):
        graph = fold_constants(graph)
        graph = infer_missing_shapes(graph, declared, element_types(inferred))
        check_tensor_sizes(graph.values.values())
    else:
        graph = infer_symbolic(graph_symbols(graph, symbol_vars(symbolic_dims(model))))
        check_tensor_sizes(graph.values.values())
    check_declared(graph, declared)
    graph = eliminate_dead_nodes(graph)
    return fuse_epilogues(recognize_subgraphs(fold_batchnorm(graph), max_scores_bytes))


def _reads_data_sized(g: Graph) -> bool:
    """Whether a node reads a tensor whose size the data decides (NonZero's): the symbolic
    frontend shapes what follows over a run-time symbol."""
    sized = set()
    for node in g.nodes:
        domain = node.domain if node.domain != "ai.onnx" else ""
        if any(i in sized for i in node.inputs):
            return True
        entry = lookup(node.op_type, domain, g.opsets.get(domain, 1))
        if entry is not None and entry.bound is not None and domain != INTERNAL_DOMAIN:
            sized.update(o for o in node.outputs if o)
    return False


def constant_array(g: Graph, name: str) -> np.ndarray | None:
    return g.constants.get(name)
