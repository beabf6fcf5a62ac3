"""DFT: the discrete Fourier transform along one axis, as a direct sum per output frequency.

A signal is [..., 1] (real) or [..., 2] (real, imaginary); the output is [..., 2], or [..., 1]
for the inverse of a one-sided spectrum (numpy's irfft). O(N^2) per line: exact to float
rounding, with angles reduced modulo N before scaling so large k * n stay precise. An `axis`
given at run time (opset 20) selects one of the nests built for every possible axis.
"""
from __future__ import annotations

import dataclasses
import math

from ..loop.ir import (
    Allocate,
    Binary,
    Cast,
    Const,
    IfThen,
    Load,
    Select,
    Store,
    Unary,
    cmp,
    loops,
    seq,
)
from .registry import register
from .shape import const_input, fail, int_list, normalize_axis

_I = "int64"
WIDE = "float64"


def _int(v: int) -> Const:
    return Const(int(v), _I)


class _Line:
    """The signal along `axis` at the other output indices `v` (the last one dropped)."""

    def __init__(self, ctx, X, axis: int, v):
        self.X, self.axis, self.v = X, axis, list(v)
        self.length, self.complex = ctx.shape(X)[axis], ctx.shape(X)[-1] == 2

    def part(self, n, c: int):
        """Component c (0 real, 1 imaginary) of sample n; 0 past the signal's end."""
        if c == 1 and not self.complex:
            return Const(0.0, WIDE)
        idx = list(self.v)
        idx[self.axis] = Binary("min", n, _int(self.length - 1))
        value = Cast(WIDE, Load(self.X, tuple(idx) + (_int(c),)))
        return Binary("mul", value, Cast(WIDE, cmp("lt", n, _int(self.length))))


def _nest(ctx, X, axis: int, n_fft: int, inverse: bool, half_input: bool):
    """The loops writing Y for one axis. Sums run in float64 (a float32 sum of N twiddled
    terms leaves errors far above onnx's tolerance where the exact result is 0)."""
    Y, dt = ctx.output(0), WIDE
    out = ctx.shape(Y)
    sign = 1.0 if inverse else -1.0
    norm = Const(1.0 / n_fft if inverse else 1.0, dt)
    step = Const(2 * math.pi / n_fft, dt)

    def body(*v):
        k, line = v[axis], _Line(ctx, X, axis, v)

        def term(n):
            theta = step * Cast(dt, (k * n) % _int(n_fft))
            cos, sin = Unary("cos", theta), Unary("sin", theta) * Const(sign, dt)
            if half_input:   # Hermitian: Y[n] = conj(H[N - n]) past the middle
                mirror = cmp("gt", n, _int(n_fft // 2))
                at = Select(mirror, _int(n_fft) - n, n)
                re, im = line.part(at, 0), line.part(at, 1)
                im = Select(mirror, -im, im)
            else:
                re, im = line.part(n, 0), line.part(n, 1)
            # (re + i im) * (cos + i sin) with sin carrying the direction's sign
            return re * cos - im * sin, im * cos + re * sin
        parts = 1 if half_input else 2
        sums = ctx.builder.new_buffer(f"{ctx.node.name}_sums", dt, (2,), "l_")
        sums = dataclasses.replace(sums, scope="local")
        cells = [(_int(c),) for c in range(parts)]
        acc = loops([("n", n_fft)], lambda n: seq(*[
            Store(sums, c, Load(sums, c) + t) for c, t in zip(cells, term(n)[:parts])]))
        return Allocate(sums, seq(
            *[Store(sums, c, Const(0.0, dt)) for c in cells], acc,
            *[Store(Y, tuple(v) + c, Cast(Y.dtype, Load(sums, c) * norm)) for c in cells]))
    return loops([(f"i{d}", e) for d, e in enumerate(out[:-1])], body)


def _dft(ctx, X, dft_length, axis_choices, inverse: int, onesided: int) -> None:
    shape = ctx.shape(X)
    if shape[-1] not in (1, 2) or len(shape) < 3:
        raise fail(ctx, f"input of shape {shape}: the last axis must hold 1 or 2 components")
    given = const_input(ctx, dft_length, "dft_length")
    nests = []
    for axis, guard in axis_choices:
        if not 0 < axis < len(shape) - 1:
            raise fail(ctx, f"axis {axis} is not a signal axis of {shape}")
        n_fft = int_list(given)[0] if given is not None else \
            2 * (shape[axis] - 1) if inverse and onesided else shape[axis]
        nest = _nest(ctx, X, axis, n_fft, bool(inverse), bool(inverse and onesided))
        nests.append(nest if guard is None else IfThen(guard, nest))
    ctx.emit(seq(*nests), kind="generic")


@register("DFT", since=20)
def DFT(ctx, X, dft_length=None, axis=None, *, inverse=0, onesided=0):
    rank = len(ctx.shape(X))
    value = const_input(ctx, axis, "axis") if axis is not None and ctx.const(axis) is not None \
        else None
    if axis is None or value is not None:
        fixed = -2 if axis is None else int_list(value)[0]
        _dft(ctx, X, dft_length, [(normalize_axis(ctx, fixed, rank), None)], inverse, onesided)
        return
    # the axis is data: one guarded nest per signal axis (either sign)
    given = Cast(_I, Load(axis, ()))
    choices = [(d, Binary("or", cmp("eq", given, _int(d)), cmp("eq", given, _int(d - rank))))
               for d in range(1, rank - 1)]
    _dft(ctx, X, dft_length, choices, inverse, onesided)


@register("DFT", since=17, until=19)
def DFT_17(ctx, X, dft_length=None, *, axis=1, inverse=0, onesided=0):
    _dft(ctx, X, dft_length, [(normalize_axis(ctx, axis, len(ctx.shape(X))), None)], inverse,
         onesided)
