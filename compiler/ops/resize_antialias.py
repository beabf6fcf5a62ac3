"""Antialiased Resize taps for downsampling (scale < 1), at compile time.

The interpolation kernel is stretched by 1 / scale, so each output pixel averages over every
input pixel under it: linear becomes a triangle of half-width 1 / scale, cubic a cubic of
support 2 / scale, both normalized to sum 1. The window and its coefficients follow onnx's
reference (onnxruntime agrees with it to float32 rounding): the coefficients are a function of
the coordinate's fraction (1, not 0, at whole coordinates), the window the n input indices
nearest the coordinate, clamped to the edges.
"""
from __future__ import annotations

import numpy as np


def _linear(ratio, scale: float):
    start = int(np.floor(-1 / scale) + 1)
    offsets = np.arange(start, 2 - start)            # footprint 2 - 2 * start
    args = (offsets[None, :] - ratio[:, None]) * scale
    return np.clip(1 - np.abs(args), 0, 1)


def _cubic(ratio, scale: float, a: float):
    start = int(np.floor(-2 / scale) + 1)
    x = np.abs(scale * (np.arange(start, 2 - start)[None, :] - ratio[:, None]))
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def antialias_taps(x, n_in: int, scale: float, mode: str, cubic_a: float,
                   exclude_outside: bool) -> tuple[list, list]:
    """Per tap an input-index table and a float32 weight table, for coordinates x."""
    x = np.asarray(x, np.float64)
    whole = np.floor(x)
    ratio = np.where(x == whole, 1.0, x - whole)
    coeffs = _linear(ratio, scale) if mode == "linear" else _cubic(ratio, scale, cubic_a)
    coeffs = coeffs / coeffs.sum(axis=1, keepdims=True)
    n = coeffs.shape[1]
    pad = int(np.ceil(n / 2))
    padded = x + pad
    p = np.floor(padded).astype(np.int64)
    frac = padded - p
    if n % 2 == 0:     # window centres at half-integers; a tie goes to the smaller one
        offset = np.where(frac == 0, -(n // 2), -(n // 2) + 1)
    else:
        offset = np.where(frac <= 0.5, -((n - 1) // 2), -((n - 1) // 2) + 1)
    index = (p + offset)[:, None] + np.arange(n)[None, :] - pad
    if exclude_outside:
        coeffs = np.where((index < 0) | (index >= n_in), 0.0, coeffs)
        total = coeffs.sum(axis=1, keepdims=True)
        coeffs = coeffs / np.where(total == 0, 1.0, total)
    index = np.clip(index, 0, n_in - 1)
    return ([index[:, k] for k in range(n)],
            [coeffs[:, k].astype(np.float32) for k in range(n)])
