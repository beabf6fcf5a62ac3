"""Tensors whose data lives outside the model's protobuf (ONNX external data): located,
checked, then read as read-only views of their files' memory maps. A model is loaded without its
external data, so that no step holds a second copy of its weights, and a model over
protobuf's 2 GiB limit loads at all (its protobuf alone is small)."""
from __future__ import annotations

import hashlib
import mmap
import os
import weakref
from dataclasses import dataclass

import numpy as np
import onnx
from numpy.lib.array_utils import byte_bounds
from onnx import TensorProto, numpy_helper

from .. import dtypes
from ..errors import ModelError
from .wire import read_without_weights

# onnx's key (external_data_helper.ExternalDataInfo) for the folder that `location` is
# relative to: stamped on every external tensor of a model loaded from a file, so that the
# protobuf locates its data wherever it is passed (copies and specializations included).
BASEPATH = "basepath"
# External tensors this small are read into the protobuf: onnx's shape inference reads small
# constants (a Reshape's shape) from there, and their copy costs nothing.
INLINE_BYTES = 1 << 16
_CHUNK = 1 << 24
# Element widths of the types stored several to a byte (numpy holds one a byte: no memory map).
_PACKED_BITS = {"int4": 4, "uint4": 4, "float4_e2m1fn": 4, "int2": 2, "uint2": 2}


def model_tensors(graph: onnx.GraphProto):
    """Every tensor of a graph and of its subgraphs: initializers and attribute values."""
    yield from graph.initializer
    yield from (s.values for s in graph.sparse_initializer)
    for node in graph.node:
        for attr in node.attribute:
            yield from ([attr.t] if attr.HasField("t") else [])
            yield from attr.tensors
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from model_tensors(sub)


def external_tensors(graph: onnx.GraphProto) -> list[TensorProto]:
    return [t for t in model_tensors(graph) if t.data_location == TensorProto.EXTERNAL]


@dataclass(frozen=True)
class Extent:
    """Where a tensor's bytes are: a file, an offset and a length, all checked."""
    path: str
    offset: int
    length: int


def _fail(t: TensorProto, location: str, problem: str):
    raise ModelError(f"tensor {t.name!r}: external data {location!r} {problem}")


def _dtype(t: TensorProto) -> str:
    name = dtypes.from_onnx(t.data_type)
    if name is None or name == "string":
        raise ModelError(f"tensor {t.name!r}: external data of an unsupported type "
                         f"({TensorProto.DataType.Name(t.data_type)})")
    return name


def data_bytes(t: TensorProto) -> int:
    """The bytes the tensor's dims and type call for (ONNX packs sub-byte types)."""
    name, count = _dtype(t), int(np.prod(t.dims, dtype=np.int64))
    bits = _PACKED_BITS.get(name, 8 * np.dtype(dtypes.dtype(name).numpy).itemsize)
    return -(-count * bits // 8)


def _inside(folder: str, location: str) -> str | None:
    """The real path of location under folder, None where it leads out of the folder."""
    if not location or os.path.isabs(location):
        return None
    root = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(root, location))
    return path if os.path.commonpath([root, path]) == root else None


def _number(t: TensorProto, location: str, info: dict, key: str, default: int | None) -> int:
    text = info.get(key)
    if text is None and default is not None:
        return default
    try:
        value = int(text)
    except (TypeError, ValueError):
        _fail(t, location, f"has {key} {text!r}, not a number")
    if value < 0:
        _fail(t, location, f"has a negative {key} ({value})")
    return value


def locate(t: TensorProto) -> Extent:
    """Where an external tensor's bytes are. A ModelError where its location leaves the model's
    folder, its file is missing, or its offset and length do not fit the file and the dims."""
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location", "")
    path = _inside(info.get(BASEPATH) or os.getcwd(), location)
    if path is None:
        _fail(t, location, "is not a relative path inside the model's folder")
    if not os.path.isfile(path):
        _fail(t, location, "is not a file")
    size, offset = os.path.getsize(path), _number(t, location, info, "offset", 0)
    want = data_bytes(t)
    length = _number(t, location, info, "length", want)
    if length != want:
        _fail(t, location, f"has length {length}, but its dims {list(t.dims)} call for {want}")
    if offset + length > size:
        _fail(t, location, f"ends at byte {offset + length}, past the end of the file ({size})")
    return Extent(path, offset, length)


def read_bytes(extent: Extent) -> bytes:
    with open(extent.path, "rb") as f:
        f.seek(extent.offset)
        return f.read(extent.length)


def tensor_array(t: TensorProto) -> np.ndarray:
    """The tensor as an array: external data as a read-only view of its file's memory map,
    unless its type is stored several to a byte (then read and unpacked by onnx)."""
    if t.data_location != TensorProto.EXTERNAL:
        return numpy_helper.to_array(t)
    extent, name = locate(t), _dtype(t)
    dtype, shape = dtypes.dtype(name).numpy, tuple(t.dims)
    if name in _PACKED_BITS:
        inline = TensorProto()
        inline.CopyFrom(t)
        _inline(inline, read_bytes(extent))
        return numpy_helper.to_array(inline)
    if not extent.length:
        return np.zeros(shape, dtype)
    count = extent.length // np.dtype(dtype).itemsize
    return np.frombuffer(_file_map(extent.path), dtype, count, extent.offset).reshape(shape)


# One read-only map per file, shared by its tensors (a map holds a file descriptor: a map per
# tensor could run out of them); keyed by the file's identity, so a rewritten file is mapped
# anew, and dropped when no array uses it.
_MAPS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _file_map(path: str) -> mmap.mmap:
    info = os.stat(path)
    key = (path, info.st_ino, info.st_size, info.st_mtime_ns)
    mapped = _MAPS.get(key)
    if mapped is None:
        with open(path, "rb") as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        _MAPS[key] = mapped
    return mapped


def file_mapping(array: np.ndarray) -> mmap.mmap | None:
    """The file map an array is a view of (tensor_array), None for an array of its own."""
    base = array
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    return base if isinstance(base, mmap.mmap) else None


def _inline(t: TensorProto, data: bytes) -> None:
    del t.external_data[:]
    t.data_location = TensorProto.DEFAULT
    t.raw_data = data


def release_pages(array: np.ndarray) -> None:
    """Drop the pages of a file-mapped array from this process (they stay in the page
    cache): reading every weight once must not leave them all counted in its memory."""
    mapped = file_mapping(array) if isinstance(array, np.ndarray) else None
    if mapped is None or not hasattr(mmap, "MADV_DONTNEED") or not array.nbytes:
        return
    low, high = byte_bounds(array)
    start = low - np.frombuffer(mapped, np.uint8).ctypes.data
    begin = start - start % mmap.PAGESIZE
    mapped.madvise(mmap.MADV_DONTNEED, begin, start + (high - low) - begin)


def read_model(path: str, inline_small: bool = True) -> onnx.ModelProto:
    """The model at path without its weights: its external data, and its own large
    initializers (frontend/wire.py), stay in their files (stamped: stamp_external)."""
    model = read_without_weights(path)
    if model is None:
        try:
            model = onnx.load(path, load_external_data=False)
        except Exception as exc:  # protobuf raises several unrelated types
            raise ModelError(f"{path}: not a valid ONNX file ({type(exc).__name__})") from None
    return stamp_external(model, os.path.dirname(os.path.abspath(path)), inline_small)


def stamp_external(model: onnx.ModelProto, folder: str, inline_small: bool = True
                   ) -> onnx.ModelProto:
    """Each external tensor of a model read from `folder` says so (BASEPATH, replacing any
    the file gave); the small ones are read in (inline_small)."""
    for t in external_tensors(model.graph):
        kept = [(e.key, e.value) for e in t.external_data if e.key != BASEPATH]
        del t.external_data[:]
        for key, value in kept + [(BASEPATH, folder)]:
            t.external_data.add(key=key, value=value)
        if inline_small and data_bytes(t) <= INLINE_BYTES:
            _inline(t, read_bytes(locate(t)))
    return model


def _stamped(t: TensorProto) -> bool:
    return any(e.key == BASEPATH for e in t.external_data)


def for_checker(model: onnx.ModelProto) -> onnx.ModelProto:
    """What onnx's checker reads of a model whose external data this module locates: a copy in
    which each such tensor is empty (the checker would look for its file from the working
    folder; locate checks it instead)."""
    if not any(_stamped(t) for t in external_tensors(model.graph)):
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for t in external_tensors(copy.graph):
        if _stamped(t):
            del t.external_data[:], t.dims[:]
            t.data_location = TensorProto.DEFAULT
            t.dims.append(0)
    return copy


def digest_model(source) -> str:
    """sha256 of a model given as a path (its file) or in memory (its protobuf), then of
    each external tensor's bytes outside that file, all streamed."""
    h, path = hashlib.sha256(), None
    if isinstance(source, onnx.ModelProto):
        model = source
        h.update(model.SerializeToString(deterministic=True))
    else:
        path = os.path.realpath(source)
        model = read_model(path, inline_small=False)
        _stream(h, Extent(path, 0, os.path.getsize(path)))
    for t in external_tensors(model.graph):
        extent = locate(t)
        if extent.path != path:
            _stream(h, extent)
    return h.hexdigest()


def _stream(h, extent: Extent) -> None:
    with open(extent.path, "rb") as f:
        f.seek(extent.offset)
        left = extent.length
        while left:
            chunk = f.read(min(left, _CHUNK))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
