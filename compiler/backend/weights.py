"""The weights blob that NAME_weights.S embeds: every program's constants laid out once
(identical ones shared), then written tensor by tensor into NAME.weights.bin, so that the
blob never exists in memory as a whole."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import dtypes
from ..frontend.external import release_pages
from ..loop.deferred import Deferred, data_digest
from ..loop.ir import Program

WEIGHT_ALIGNMENT = 64
# From this size on, code reads the blob's address from a pointer (NAME_weights_address)
# instead of a 32-bit PC-relative offset (which reaches +-2 GiB on x86-64, +-4 GiB with
# aarch64's ADRP), and on x86-64 the blob goes in a large-data section (.lrodata) that the
# linker places after all the other sections, so that they stay within reach of each other.
LARGE_BLOB_BYTES = 1 << 30
# aarch64's small code model reaches +-4 GiB: a larger image cannot link.
AARCH64_IMAGE_BYTES = (4 << 30) - (64 << 20)


def _stored(data, dtype: str) -> np.ndarray:
    """The constant as the blob stores it: computed where it is Deferred, else the array
    itself where it is C-ordered (a memory map or the lowering's array)."""
    return np.ascontiguousarray(data, dtype=dtypes.dtype(dtype).numpy)


def _release(data) -> None:
    for source in data.sources() if isinstance(data, Deferred) else [data]:
        release_pages(source)


def _raw(array: np.ndarray) -> memoryview:
    return memoryview(array.reshape(-1).view(np.uint8))


@dataclass(frozen=True)
class WeightsBlob:
    """The blob's layout: (offset, dtype, data) per stored tensor, and its size."""
    tensors: tuple[tuple[int, str, np.ndarray | Deferred], ...]
    size: int

    def write(self, path: Path) -> None:
        """Write the blob tensor by tensor (a gap of alignment reads as zeros); a memory-mapped
        weight's pages are let go once written."""
        with open(path, "wb") as f:
            for offset, dtype, data in self.tensors:
                f.seek(offset)
                f.write(_raw(_stored(data, dtype)))
                _release(data)
            f.truncate(self.size)

    def tobytes(self) -> bytes:
        blob = bytearray(self.size)
        for offset, dtype, data in self.tensors:
            raw = _raw(_stored(data, dtype))
            blob[offset:offset + len(raw)] = raw
        return bytes(blob)

    @property
    def large(self) -> bool:
        return self.size >= LARGE_BLOB_BYTES


def layout_weights(progs: list[Program]) -> tuple[WeightsBlob, list[dict[str, int]]]:
    """One blob for every specialization: a constant they share (same dtype and bytes, as
    weights are) is stored once. Returns the blob and each program's name -> offset."""
    tensors, size = [], 0
    stored: dict[tuple[str, str], int] = {}
    per_program = []
    for prog in progs:
        offsets = {}
        for const in prog.constants:
            dtype, data = const.buffer.dtype, const.data
            key = (dtype, data_digest(data if isinstance(data, Deferred) else
                                      _stored(data, dtype)))
            _release(data)
            if key not in stored:
                size += -size % WEIGHT_ALIGNMENT
                stored[key] = size
                tensors.append((size, dtype, data))
                size += int(np.prod(data.shape, dtype=np.int64)) * dtypes.itemsize(dtype)
            offsets[const.buffer.name] = stored[key]
        per_program.append(offsets)
    return WeightsBlob(tuple(tensors), size), per_program
