"""The frontend for models with symbolic input dimensions: every tensor's shape as
expressions over the symbols, and shape subgraphs folded into symbolic values.

Each dimension symbol becomes an int64 Var (symbol_vars). One walk over the nodes, in order:
- a node whose inputs are all known values is evaluated at compile time: with onnx.reference
  when they are numbers (fold.py), with symbolic arithmetic when some are expressions (Shape of
  a symbolic tensor, then Gather, Concat, Mul...: SYMBOLIC_EVAL below). What cannot be
  evaluated so stays a node; a symbolic value it reads is stored by a kernel at run time.
- every other node gets its output shapes from a symbolic rule (symshape.py) where the op has
  one, else from onnx's inference of the node alone, each expression handed to onnx as a
  dim_param (onnx copies those wherever the op's shape rule does).
- an op whose output size the data decides (NonZero: it registers a `bound`) gets a new
  run-time symbol on each such axis (run_time_var): the nodes after it are shaped over it like
  over any input symbol, and the program reads its value once the op has run.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, shape_inference

from .. import dtypes
from ..errors import ModelError, NeedsStaticDims
from ..graph.ir import Graph, Node, Value
from ..loop.ir import Expr, Var
from ..loop.symbolic import canon, dim_str, is_symbolic_array, run_time_var
from ..names import c_identifier
from ..ops.registry import lookup
from .fold import _fold_node, _opset_imports, node_proto
from .symrules import SYMBOLIC_SHAPES
from .symshape import SYMBOLIC_EVAL


def symbol_vars(names: list[str]) -> dict[str, Var]:
    """Symbol name -> its Var: a C identifier, distinct for each symbol."""
    return {name: Var(f"dim{i}_{c_identifier(name)}") for i, name in enumerate(names)}


def graph_symbols(g: Graph, symbols: dict[str, Var]) -> Graph:
    """The graph with each named symbolic dimension as its Var; a dimension onnx named itself
    (unk__N) or left unnamed becomes '?', which infer_symbolic computes."""
    def convert(v: Value) -> Value:
        if v.is_static:
            return v
        shape = tuple(d if isinstance(d, int) else symbols.get(d, "?") for d in v.shape)
        return Value(v.name, v.dtype, shape, v.runtime_axes)
    values = {k: convert(v) for k, v in g.values.items()}
    inputs = tuple(values[v.name] for v in g.inputs)
    for v in inputs:
        if "?" in v.shape:
            raise ModelError(f"input {v.name!r}: dimension without a symbol")
    outputs = tuple(values.get(v.name, v) for v in g.outputs)
    return Graph(g.name, inputs, outputs, g.nodes, values, g.constants, g.opsets)


def _known(v: Value | None) -> bool:
    return v is not None and all(isinstance(d, (int, Expr)) for d in v.shape)


def _shape_value(g: Graph, node: Node, values: dict) -> np.ndarray | None:
    """Shape or Size of a tensor whose shape holds symbols, as an object array."""
    v = values.get(node.inputs[0])
    if not _known(v) or v.is_static:
        return None
    dims = list(v.shape)
    if node.op_type == "Size":
        from ..loop.symbolic import product
        return np.array(product(dims), dtype=object)
    rank = len(dims)
    start, end = node.attr("start", 0), node.attr("end", rank)
    return np.array([canon(d) for d in dims[slice(start, end)]], dtype=object)


def _evaluate(g: Graph, node: Node, constants: dict, values: dict) -> list | None:
    """The node's outputs at compile time, or None when it runs in a kernel."""
    if node.op_type in ("Shape", "Size") and not node.domain:
        folded = _shape_value(g, node, values)
        if folded is not None:
            return [folded]
    ins = [constants.get(i) if i else None for i in node.inputs]
    if any(i and i not in constants for i in node.inputs):
        return None
    if any(is_symbolic_array(a) for a in ins if a is not None):
        rule = SYMBOLIC_EVAL.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        return rule(node, ins) if rule else None
    return _fold_node(g.with_nodes(g.nodes, constants, values), node, constants)


def _as_constant(name: str, arr) -> tuple[np.ndarray, Value]:
    arr = np.asarray(arr) if not isinstance(arr, np.ndarray) else arr
    if is_symbolic_array(arr):
        arr = np.vectorize(canon, otypes=[object])(arr) if arr.size else arr
        if not is_symbolic_array(arr):
            arr = arr.astype(np.int64)
    dt = "int64" if arr.dtype == object else dtypes.from_numpy(arr.dtype)
    if dt not in dtypes.BY_NAME:
        raise ModelError(f"tensor {name!r}: a constant of unsupported dtype {dt}")
    return arr, Value(name, dt, tuple(arr.shape))


def infer_symbolic(g: Graph) -> Graph:
    """Fold what compile time knows and give every tensor a symbolic shape."""
    constants = dict(g.constants)
    values = dict(g.values)
    kept: list[Node] = []
    run_time: list[Var] = []
    for node in g.nodes:
        results = _evaluate(g, node, constants, values)
        if results is not None:
            for name, arr in zip((o for o in node.outputs if o), results):
                constants[name], values[name] = _as_constant(name, arr)
            continue
        kept.append(node)
        if all(not o or (o in values and values[o].is_static) for o in node.outputs) and \
                all(not i or (i in values and values[i].is_static) for i in node.inputs):
            continue    # a static part of the model: onnx's inference of the graph holds
        if not _data_sized_node(g, node, values, run_time):
            _shape_node(g, node, values, constants)
    outputs = tuple(values.get(o.name, o) for o in g.outputs)
    return Graph(g.name, g.inputs, outputs, tuple(kept), values, constants, g.opsets)


def _data_sized_node(g: Graph, node: Node, values: dict, run_time: list) -> bool:
    """Outputs of an op that registers a bound: the bound's shape with a new run-time
    symbol on every axis the data decides (appended to run_time). False for other ops."""
    domain = node.domain if node.domain != "ai.onnx" else ""
    entry = lookup(node.op_type, domain, g.opsets.get(domain, 1))
    if entry is None or entry.bound is None:
        return False
    ins = [values.get(i) if i else None for i in node.inputs]
    if any(i and not _known(v) for i, v in zip(node.inputs, ins)):
        raise NeedsStaticDims(f"cannot infer the shapes of node {node.name!r} "
                              f"({node.op_type}): an input has no known shape")
    for name, (dtype, shape, axes) in zip(node.outputs, entry.bound(ins, node.attr_dict)):
        if not name:
            continue
        shape = [canon(d) for d in shape]
        for axis in axes:
            shape[axis] = run_time_var(len(run_time), name, axis)
            run_time.append(shape[axis])
        values[name] = Value(name, dtype, tuple(shape), tuple(axes))
    return True


def _shape_node(g: Graph, node: Node, values: dict, constants: dict) -> None:
    ins = [values.get(i) if i else None for i in node.inputs]
    for i, v in zip(node.inputs, ins):
        if i and not _known(v):
            raise NeedsStaticDims(f"cannot infer the shapes of node {node.name!r} "
                                  f"({node.op_type}): input {i!r} has no known shape")
    consts = [constants.get(i) if i else None for i in node.inputs]
    rule = SYMBOLIC_SHAPES.get(node.op_type) if node.domain in ("", "ai.onnx") else None
    shapes = rule(node, ins, consts) if rule else None
    if shapes is None:
        shapes = _onnx_node_shapes(g, node, ins, consts)
    for name, typed in zip(node.outputs, shapes):
        if name and typed is not None:      # an omitted optional output has no type
            dtype, shape = typed
            values[name] = Value(name, dtype, tuple(canon(d) for d in shape))


def _onnx_node_shapes(g: Graph, node: Node, ins: list, consts: list) -> list:
    """onnx's inference of one node, each symbolic dimension passed as a dim_param."""
    exprs: dict[str, Expr] = {}

    def info(v: Value):
        dims = []
        for d in v.shape:
            if isinstance(d, Expr):
                exprs.setdefault(f"s{len(exprs)}", d)
                key = next(k for k, e in exprs.items() if e == d)
                dims.append(key)
            else:
                dims.append(d)
        return helper.make_tensor_value_info(v.name, dtypes.dtype(v.dtype).onnx_code, dims).type

    domain = node.domain if node.domain != "ai.onnx" else ""
    types = {v.name: info(v) for v in ins if v is not None}
    data = {i: onnx.numpy_helper.from_array(np.asarray(c), i) for i, c in zip(node.inputs, consts)
            if c is not None and not is_symbolic_array(c) and np.asarray(c).size <= 1 << 16}
    try:
        schema = onnx.defs.get_schema(node.op_type, g.opsets.get(domain, 1), domain)
        found = shape_inference.infer_node_outputs(schema, node_proto(node), types, data,
                                                   opset_imports=_opset_imports(g))
    except Exception as exc:  # noqa: BLE001  onnx raises many types
        raise _unshaped(node, ins, str(exc).splitlines()[0] if str(exc) else "") from None
    out = []
    for name in node.outputs:
        if not name:
            out.append(None)
            continue
        tp = found.get(name)
        if tp is None or not tp.tensor_type.HasField("shape"):
            raise _unshaped(node, ins)
        shape = []
        for d in tp.tensor_type.shape.dim:
            if d.HasField("dim_value"):
                shape.append(d.dim_value)
            elif d.dim_param in exprs:
                shape.append(exprs[d.dim_param])
            else:
                raise _unshaped(node, ins)
        out.append((dtypes.from_onnx(tp.tensor_type.elem_type), shape))
    return out


def _unshaped(node: Node, ins: list, why: str = "") -> ModelError:
    shapes = ", ".join(f"[{', '.join(dim_str(d) for d in v.shape)}]" for v in ins
                       if v is not None)
    return NeedsStaticDims(f"cannot infer the shapes of node {node.name!r} ({node.op_type}) for "
                      f"symbolic input shapes {shapes}" + (f": {why}" if why else "") +
                      "; bind the dimensions with --dim")
