"""Window functions: HannWindow, HammingWindow, BlackmanWindow.

w[n] = sum_k a_k cos(2 pi k n / N), N = size (periodic) or size - 1 (symmetric). The values
depend on the size alone, so they are computed at compile time (in float64, as the
reference does) and stored; a size read at run time must be the declared length (a check).
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from .registry import register
from .runtime_values import check_equal
from .shape import const_input, emit_constant, fail

# window -> cosine coefficients a_0, a_1, ... (signs included), as the ONNX spec defines them
_COEFFICIENTS = {
    "HannWindow": (0.5, -0.5),
    "HammingWindow": (25 / 46, -(1 - 25 / 46)),
    "BlackmanWindow": (0.42, -0.5, 0.08),
}


def _window(op: str, size: int, periodic: int) -> np.ndarray:
    n = np.arange(size, dtype=np.float64)
    denominator = size if periodic else size - 1
    if denominator <= 0:     # a symmetric window of one sample divides by 0: onnx.reference
        return np.ones(size)  # (and onnxruntime) give 1
    return sum(a * np.cos(2 * np.pi * k * n / denominator)
               for k, a in enumerate(_COEFFICIENTS[op]))


def _lowering(op: str):
    def lower(ctx, size, *, periodic=1, output_datatype=1):
        out = ctx.output(0)
        (length,) = ctx.shape(out)
        if ctx.const(size) is None:      # the declared length is compiled
            check_equal(ctx, size, [length], "the size input")
        else:
            given = int(np.asarray(const_input(ctx, size, "size")).reshape(-1)[0])
            if given != length:
                raise fail(ctx, f"size {given}, declared output of {length}")
        values = _window(op, length, periodic)
        emit_constant(ctx, values.astype(dtypes.dtype(out.dtype).numpy), out)
    lower.__name__ = op
    return lower


for _op in _COEFFICIENTS:
    register(_op, since=17)(_lowering(_op))
