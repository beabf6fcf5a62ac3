"""One table: ONNX dtype <-> numpy <-> C type (and the ONNX enum code used by the ABI)."""
from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np
from onnx import TensorProto


@dataclass(frozen=True, slots=True)
class DType:
    name: str          # our name, also numpy's
    onnx_code: int     # TensorProto.DataType
    c_type: str
    numpy: type
    is_float: bool
    is_signed: bool = True
    # storage-only types: kernels compute in this type, converting at loads and stores
    # (runtime_c/onnxc_vmath.h spells each conversion)
    compute: str | None = None


_ROWS = (
    DType("float32", TensorProto.FLOAT, "float", np.float32, True),
    DType("float64", TensorProto.DOUBLE, "double", np.float64, True),
    DType("float16", TensorProto.FLOAT16, "uint16_t", np.float16, True, compute="float32"),
    DType("bfloat16", TensorProto.BFLOAT16, "uint16_t", ml_dtypes.bfloat16, True,
          compute="float32"),
    # 8-, 4- and 2-bit storage types, one element per byte as ml_dtypes stores them (the sub-byte
    # integers hold their two's-complement code in the low bits)
    *(DType(name, getattr(TensorProto, onnx_name), "uint8_t", getattr(ml_dtypes, name), True,
            compute="float32") for name, onnx_name in (
        ("float8_e4m3fn", "FLOAT8E4M3FN"), ("float8_e4m3fnuz", "FLOAT8E4M3FNUZ"),
        ("float8_e5m2", "FLOAT8E5M2"), ("float8_e5m2fnuz", "FLOAT8E5M2FNUZ"),
        ("float8_e8m0fnu", "FLOAT8E8M0"), ("float4_e2m1fn", "FLOAT4E2M1"))),
    DType("int4", TensorProto.INT4, "uint8_t", ml_dtypes.int4, False, compute="int8"),
    DType("int2", TensorProto.INT2, "uint8_t", ml_dtypes.int2, False, compute="int8"),
    DType("uint4", TensorProto.UINT4, "uint8_t", ml_dtypes.uint4, False, False, compute="uint8"),
    DType("uint2", TensorProto.UINT2, "uint8_t", ml_dtypes.uint2, False, False, compute="uint8"),
    DType("int8", TensorProto.INT8, "int8_t", np.int8, False),
    DType("int16", TensorProto.INT16, "int16_t", np.int16, False),
    DType("int32", TensorProto.INT32, "int32_t", np.int32, False),
    DType("int64", TensorProto.INT64, "int64_t", np.int64, False),
    DType("uint8", TensorProto.UINT8, "uint8_t", np.uint8, False, False),
    DType("uint16", TensorProto.UINT16, "uint16_t", np.uint16, False, False),
    DType("uint32", TensorProto.UINT32, "uint32_t", np.uint32, False, False),
    DType("uint64", TensorProto.UINT64, "uint64_t", np.uint64, False, False),
    DType("bool", TensorProto.BOOL, "bool", np.bool_, False, False),
)

BY_NAME = {row.name: row for row in _ROWS}
BY_ONNX = {row.onnx_code: row for row in _ROWS}


# ONNX's 4- and 2-bit integers (docs/technical/int4.md, int2.md): a float converts by rounding to
# the nearest integer, ties to even, then keeping the low bits like any integer narrowing.
SUB_BYTE_INTS = ("int4", "uint4", "int2", "uint2")


def dtype(name: str) -> DType:
    return BY_NAME[name]


def llvm_type(name: str) -> str:
    """The LLVM type that stores one element (bool: a byte, as C's bool; the storage-only
    floats: their bits as an integer, as their C type)."""
    return {"float32": "float", "float64": "double"}.get(name, f"i{8 * itemsize(name)}")


def from_onnx(code: int) -> str | None:
    """Our dtype name for an ONNX element type, None when unsupported."""
    row = BY_ONNX.get(code)
    return row.name if row else None


def from_numpy(np_dtype) -> str:
    return np.dtype(np_dtype).name


def itemsize(name: str) -> int:
    return np.dtype(BY_NAME[name].numpy).itemsize


def onnx_type_string(name: str) -> str:
    """onnxruntime-style type string, e.g. 'tensor(float)'."""
    code = BY_NAME[name].onnx_code
    return f"tensor({TensorProto.DataType.Name(code).lower()})"


def from_onnx_type_string(text: str) -> str | None:
    """Our dtype name for a schema's type string ('tensor(float)'), None for any other kind
    (sequences, maps) or an unsupported element type."""
    if not (text.startswith("tensor(") and text.endswith(")")):
        return None
    code = TensorProto.DataType.Value(text[len("tensor("):-1].upper()) \
        if text[len("tensor("):-1].upper() in TensorProto.DataType.keys() else None
    return from_onnx(code) if code is not None else None
