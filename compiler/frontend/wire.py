"""A large .onnx file read without its weights: a scan of protobuf's wire format finds each
large initializer's raw_data in the file, and the model is parsed without those bytes, each
such tensor pointing at them as external data in the model file itself (frontend/external.py
then maps them). protobuf would need the file's bytes and their parsed copy at once: twice
the weights."""
from __future__ import annotations

import mmap
import os

import onnx

MODEL_GRAPH, GRAPH_INITIALIZER = 7, 5
TENSOR_RAW_DATA, TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION = 9, 13, 14
LENGTH_DELIMITED = 2
# raw_data this large stays in the file (and files smaller than this are parsed whole).
SCAN_BYTES = 1 << 20
_FIXED = {1: 8, 5: 4}     # wire type -> bytes of a fixed-width value


def _varint(buf, pos: int) -> tuple[int, int]:
    value = shift = 0
    while shift < 64:
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return value, pos
        shift += 7
    raise ValueError("varint too long")


def _fields(buf, start: int, end: int):
    """(field number, wire type, field start, value start, field end) of each field."""
    pos = start
    while pos < end:
        key, value = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            stop = _varint(buf, value)[1]
        elif wire == LENGTH_DELIMITED:
            size, value = _varint(buf, value)
            stop = value + size
        elif wire in _FIXED:
            stop = value + _FIXED[wire]
        else:
            raise ValueError(f"wire type {wire}")
        if stop > end:
            raise ValueError("field past the end of its message")
        yield number, wire, pos, value, stop
        pos = stop


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _delimited(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | LENGTH_DELIMITED) + _encode_varint(len(payload)) + payload


def _entry(key: str, value: str) -> bytes:
    """One StringStringEntryProto of a tensor's external_data."""
    return _delimited(TENSOR_EXTERNAL_DATA, _delimited(1, key.encode()) +
                      _delimited(2, value.encode()))


def _tensor(buf, start: int, end: int, location: str) -> bytes | None:
    """An initializer's bytes with a large raw_data replaced by a reference to it in the
    file; None where its raw_data (if any) is small."""
    kept, found = [], None
    for number, wire, field, value, stop in _fields(buf, start, end):
        if number == TENSOR_RAW_DATA and wire == LENGTH_DELIMITED and stop - value >= SCAN_BYTES:
            found = (value, stop - value)
        else:
            kept.append(buf[field:stop])
    if found is None:
        return None
    offset, length = found
    external = _entry("location", location) + _entry("offset", str(offset)) + \
        _entry("length", str(length)) + _encode_varint(TENSOR_DATA_LOCATION << 3) + b"\x01"
    return b"".join(kept) + external


def _graph(buf, start: int, end: int, location: str) -> tuple[bytes, int]:
    """The graph's bytes with its large initializers left in the file; and how many."""
    parts, moved = [], 0
    for number, wire, field, value, stop in _fields(buf, start, end):
        tensor = _tensor(buf, value, stop, location) \
            if number == GRAPH_INITIALIZER and wire == LENGTH_DELIMITED else None
        if tensor is None:
            parts.append(buf[field:stop])
        else:
            parts.append(_delimited(GRAPH_INITIALIZER, tensor))
            moved += 1
    return b"".join(parts), moved


def read_without_weights(path: str) -> onnx.ModelProto | None:
    """The model at path with each large initializer's raw_data as external data in the file
    itself (location: its name); None where the file has none or its scan fails (onnx's own
    parser then reads it, and reports what is wrong)."""
    if os.path.getsize(path) < SCAN_BYTES:
        return None
    location = os.path.basename(path)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        try:
            parts, moved = [], 0
            for number, wire, field, value, stop in _fields(buf, 0, len(buf)):
                if number == MODEL_GRAPH and wire == LENGTH_DELIMITED:
                    graph, count = _graph(buf, value, stop, location)
                    parts.append(_delimited(MODEL_GRAPH, graph))
                    moved += count
                else:
                    parts.append(buf[field:stop])
        except (ValueError, IndexError):
            return None
    if not moved:
        return None
    try:
        return onnx.ModelProto.FromString(b"".join(parts))
    except Exception:   # noqa: BLE001 - protobuf's own parser then reports it
        return None
