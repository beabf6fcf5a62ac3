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
    compute: str | None = None


_ROWS = (
    DType("float32", TensorProto.FLOAT, "float", np.float32, True),
    DType("float64", TensorProto.DOUBLE, "double", np.float64, True),
    DType("float16", TensorProto.FLOAT16, "uint16_t", np.float16, True, compute="float32"),
    DType("bfloat16", TensorProto.BFLOAT16, "uint16_t", ml_dtypes.bfloat16, True,
          compute="float32"),
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


def dtype(name: str) -> DType:
    return BY_NAME[name]


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
