"""Checks onnx.checker leaves out, each a one-line ModelError: what onnxruntime refuses at load
(opsets newer than onnx knows, duplicate node names, a graph without outputs, initializers
whose data disagrees with their dims) and what would break the compiler's own assumptions
(names that are not UTF-8 text or hold a NUL, absurd input dimensions; a negative one is
dynamic, as onnxruntime reads it: frontend/dims.py)."""
from __future__ import annotations

import functools

import onnx

from .. import dtypes
from ..errors import ModelError

# No tensor may need more bytes than this: beyond it a buffer size or an arena offset would
# stop being an exact integer in the memory plan, and no machine could hold it anyway.
MAX_TENSOR_BYTES = 1 << 40
# Element types stored several to a byte: their data length is not an element count.
_PACKED = frozenset({*dtypes.SUB_BYTE_INTS, "float4_e2m1fn"})


def validate_model(model: onnx.ModelProto) -> None:
    _check_opsets(model)
    graph = model.graph
    if not graph.output:
        raise ModelError("the graph has no outputs")
    _check_names(graph)
    _check_node_names(graph)
    for init in graph.initializer:
        _check_initializer(init)
    for info in graph.input:
        _check_input(info)
    for info in list(graph.output) + list(graph.value_info):
        code = info.type.tensor_type.elem_type
        if info.type.HasField("tensor_type") and code not in onnx.TensorProto.DataType.values():
            raise ModelError(f"tensor {info.name!r} is declared with element type code {code}, "
                             "which ONNX does not define")


@functools.cache
def _newest_opsets() -> dict[str, int]:
    newest: dict[str, int] = {}
    for schema in onnx.defs.get_all_schemas_with_history():
        domain = schema.domain if schema.domain != "ai.onnx" else ""
        newest[domain] = max(newest.get(domain, 0), schema.since_version)
    newest[""] = max(newest.get("", 0), onnx.defs.onnx_opset_version())
    return newest


def _check_opsets(model: onnx.ModelProto) -> None:
    for entry in model.opset_import:
        domain = entry.domain if entry.domain != "ai.onnx" else ""
        newest = _newest_opsets().get(domain)
        if newest is not None and not 1 <= entry.version <= newest:
            raise ModelError(f"opset {entry.version} of domain {domain or 'ai.onnx'!r} does not "
                             f"exist (onnx {onnx.__version__} knows 1..{newest})")


def _text(value, what: str) -> str:
    """A name field as text: protobuf hands back bytes where they are not valid UTF-8."""
    if not isinstance(value, str):
        raise ModelError(f"{what} {bytes(value)!r} is not valid UTF-8")
    if "\0" in value:
        raise ModelError(f"{what} {value!r} contains a NUL character")
    return value


def _check_names(graph: onnx.GraphProto) -> None:
    """Every name the compiler prints or looks up, in this graph and its subgraphs."""
    _text(graph.name, "graph name")
    for info in list(graph.input) + list(graph.output) + list(graph.value_info):
        _text(info.name, "tensor name")
    for init in graph.initializer:
        _text(init.name, "initializer name")
    for node in graph.node:
        label = _text(node.name, "node name")
        for field in ("op_type", "domain"):
            _text(getattr(node, field), f"node {label!r}: {field}")
        for name in list(node.input) + list(node.output):
            _text(name, f"node {label!r}: tensor name")
        for attr in node.attribute:
            _text(attr.name, f"node {label!r}: attribute name")
            for sub in list(attr.graphs) + ([attr.g] if attr.HasField("g") else []):
                _check_names(sub)


def _check_node_names(graph: onnx.GraphProto) -> None:
    seen: set[str] = set()
    for node in graph.node:
        if node.name and node.name in seen:
            raise ModelError(f"two nodes are named {node.name!r}")
        seen.add(node.name)


def _check_initializer(init: onnx.TensorProto) -> None:
    dtype = dtypes.from_onnx(init.data_type)
    if dtype is None:
        raise ModelError(f"initializer {init.name!r} has an unsupported data type "
                         f"{_type_name(init.data_type)}")
    if any(d < 0 for d in init.dims):
        raise ModelError(f"initializer {init.name!r} has negative dims {list(init.dims)}")
    if init.data_location == onnx.TensorProto.EXTERNAL or dtype == "string":
        return
    count = 1
    for d in init.dims:
        count *= d
    stored = _stored_elements(init, dtype)
    if stored is not None and stored != count:
        raise ModelError(f"initializer {init.name!r} holds {stored} elements but its dims "
                         f"{list(init.dims)} need {count}")


def _stored_elements(init: onnx.TensorProto, dtype: str) -> int | None:
    """How many elements the tensor's data holds (None: a layout we do not count)."""
    if dtype in _PACKED:
        return None
    if init.HasField("raw_data"):
        size = dtypes.itemsize(dtype)
        return len(init.raw_data) // size if len(init.raw_data) % size == 0 else -1
    return len(getattr(init, onnx.helper.tensor_dtype_to_field(init.data_type)))


def _check_input(info: onnx.ValueInfoProto) -> None:
    tensor = info.type.tensor_type
    if not info.type.HasField("tensor_type"):
        return
    if dtypes.from_onnx(tensor.elem_type) is None:
        raise ModelError(f"graph input {info.name!r} has an unsupported element type "
                         f"{_type_name(tensor.elem_type)}")
    size = dtypes.itemsize(dtypes.from_onnx(tensor.elem_type))
    for d in tensor.shape.dim:
        if d.HasField("dim_value") and d.dim_value >= 0:   # a negative one is dynamic
            size *= d.dim_value
    if size > MAX_TENSOR_BYTES:
        raise ModelError(f"graph input {info.name!r} would take {size} bytes, more than the "
                         f"{MAX_TENSOR_BYTES >> 40} TiB a tensor may have")


def _type_name(code: int) -> str:
    try:
        return onnx.TensorProto.DataType.Name(code)
    except ValueError:
        return f"code {code}"


def check_tensor_sizes(values) -> None:
    """Every tensor the compiled program holds fits in MAX_TENSOR_BYTES (a Pad by 2**40, a
    ConstantOfShape of a huge shape: refused at compile time, as no run could hold them)."""
    for v in values:
        size = value_bytes(v) or least_bytes(v)
        if size > MAX_TENSOR_BYTES:
            raise ModelError(f"tensor {v.name!r} of shape {list(v.shape)} would take {size} "
                             f"bytes, more than the {MAX_TENSOR_BYTES >> 40} TiB a tensor may "
                             "have")


def least_bytes(v) -> int:
    """A tensor with symbolic dimensions: its size where every symbol is 1 (0 where the
    form does not show a least value)."""
    from ..loop.symbolic import lower_bound
    if v.dtype not in dtypes.BY_NAME or not all(isinstance(d, int) or hasattr(d, "dtype")
                                                 for d in v.shape):
        return 0
    size = dtypes.itemsize(v.dtype)
    for d in v.shape:
        low = lower_bound(d)
        size *= max(low, 0) if low is not None else 0
    return size


def value_bytes(v) -> int:
    """A static tensor's size in bytes, as an exact integer (numpy's int64 product would wrap
    for the shapes these checks exist to refuse); 0 for a symbolic or unsupported one."""
    if not v.is_static or v.dtype not in dtypes.BY_NAME:
        return 0
    size = dtypes.itemsize(v.dtype)
    for d in v.shape:
        size *= max(d, 0)
    return size
