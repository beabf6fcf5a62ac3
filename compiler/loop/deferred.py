"""Constant data computed when it is read: a pass that transforms a weight (packing it into
tiles, widening it to float32) gives a Deferred instead of the new array, and the backend
computes each one while writing the weights blob, so that the transformed copies of a model's
weights never all exist at once (nor beside their memory-mapped originals)."""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import numpy as np


class Deferred:
    """fn(*args) as an array, computed on each read (np.asarray); args are arrays, other
    Deferreds (computed first) or plain values. shape and dtype are the result's."""
    __slots__ = ("fn", "args", "shape", "dtype")

    def __init__(self, fn: Callable[..., np.ndarray], *args, shape: tuple[int, ...], dtype):
        self.fn, self.args = fn, args
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        value = self.fn(*(np.asarray(a) if isinstance(a, Deferred) else a for a in self.args))
        return value if dtype is None else value.astype(dtype, copy=False)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def sources(self) -> Iterator[np.ndarray]:
        """The arrays it is computed from."""
        for a in self.args:
            if isinstance(a, Deferred):
                yield from a.sources()
            elif isinstance(a, np.ndarray):
                yield a

    def digest(self) -> bytes:
        """A hash of what it computes (its function, plain arguments and arrays' bytes), to
        tell equal constants apart without computing them."""
        h = hashlib.sha256(f"{self.fn.__module__}.{self.fn.__qualname__}".encode())
        for a in self.args:
            h.update(data_digest(a) if isinstance(a, (Deferred, np.ndarray)) else
                     repr(a).encode())
        return h.digest()


def data_digest(data) -> bytes:
    """sha256 of a constant's bytes, or of a Deferred's recipe."""
    if isinstance(data, Deferred):
        return data.digest()
    array = np.ascontiguousarray(data)
    return hashlib.sha256(memoryview(array.reshape(-1).view(np.uint8))).digest()
