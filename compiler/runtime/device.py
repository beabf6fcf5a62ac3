"""GPU arrays a CUDA model reads and writes in place: objects with __cuda_array_interface__
(CuPy, Numba, PyTorch) or DLPack (__dlpack__ with a CUDA device). Nothing here touches the
GPU: it reads where the data is and checks that its layout is the dense row-major one the
library takes."""
from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

# DLPack's device types (dlpack.h DLDeviceType) that hold CUDA device memory
DLPACK_CUDA = 2
DLPACK_CUDA_MANAGED = 13
# DLPack's type codes (DLDataTypeCode) -> numpy kind
DLPACK_KINDS = {0: "i", 1: "u", 2: "f", 6: "b"}


@dataclass(frozen=True)
class DeviceArray:
    """Where a GPU array's data is, and what it holds. `keep` holds what must stay alive
    while the pointer is used (the array, or its DLPack capsule)."""
    pointer: int
    shape: tuple[int, ...]
    dtype: np.dtype
    keep: object = None


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", _DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


def is_device_array(value) -> bool:
    if isinstance(value, np.ndarray):
        return False
    if hasattr(value, "__cuda_array_interface__"):
        return True
    device = getattr(value, "__dlpack_device__", None)
    return device is not None and device()[0] in (DLPACK_CUDA, DLPACK_CUDA_MANAGED)


def _dense(shape, strides, itemsize: int) -> bool:
    """Strides (in elements, or None) of a C-contiguous array of this shape."""
    if strides is None:
        return True
    expected = itemsize
    for dim, stride in reversed(list(zip(shape, strides))):
        if dim > 1 and stride != expected:
            return False
        expected *= dim
    return True


def from_cuda_array_interface(value, what: str) -> DeviceArray:
    info = value.__cuda_array_interface__
    dtype = np.dtype(info["typestr"])
    shape = tuple(int(d) for d in info["shape"])
    if not _dense(shape, info.get("strides"), dtype.itemsize):
        raise ValueError(f"{what}: a GPU array must be C-contiguous (strides "
                         f"{info.get('strides')})")
    return DeviceArray(int(info["data"][0] or 0), shape, dtype, value)


def from_dlpack(value, what: str) -> DeviceArray:
    """The DLPack tensor's data pointer; the capsule (kept alive with the array) releases
    the producer's tensor when it is collected, as the protocol asks of an unused one."""
    capsule = value.__dlpack__()
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    tensor = _DLTensor.from_address(get(capsule, b"dltensor"))
    kind, bits = DLPACK_KINDS.get(tensor.dtype.code), tensor.dtype.bits
    if kind is None or tensor.dtype.lanes != 1:
        raise ValueError(f"{what}: DLPack type code {tensor.dtype.code} ({bits} bits, "
                         f"{tensor.dtype.lanes} lanes) has no numpy dtype")
    dtype = np.dtype(bool) if kind == "b" else np.dtype(f"{kind}{bits // 8}")
    shape = tuple(tensor.shape[i] for i in range(tensor.ndim))
    strides = None if not tensor.strides else \
        tuple(tensor.strides[i] * dtype.itemsize for i in range(tensor.ndim))
    if not _dense(shape, strides, dtype.itemsize):
        raise ValueError(f"{what}: a GPU array must be C-contiguous")
    return DeviceArray((tensor.data or 0) + tensor.byte_offset, shape, dtype, (value, capsule))


def device_array(value, what: str) -> DeviceArray:
    if hasattr(value, "__cuda_array_interface__"):
        return from_cuda_array_interface(value, what)
    return from_dlpack(value, what)
