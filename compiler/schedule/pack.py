"""Pack: compile-time relayout of a constant operand into tiles (panel-major)."""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import ScheduleError
from ..loop.affine import from_linear, linear_form
from ..loop.deferred import Deferred
from ..loop.ir import Buffer, For, Load, Stmt, as_int, const_int, static_shape
from ..loop.visit import transform, walk


def packed_buffer(buf: Buffer, dim: int, factor: int) -> Buffer:
    """Layout [tile, other dims..., position in tile]: one tile's elements for consecutive
    values of the other dimensions are one contiguous run."""
    shape = list(static_shape(buf))
    tiles = -(-shape[dim] // factor)
    rest = shape[:dim] + shape[dim + 1:]
    return Buffer(f"{buf.name}_p{dim}x{factor}", buf.dtype,
                  tuple(map(const_int, [tiles] + rest + [factor])), buf.scope)


def pack_array(data: np.ndarray, dim: int, factor: int) -> np.ndarray:
    pad = [(0, 0)] * data.ndim
    pad[dim] = (0, -data.shape[dim] % factor)
    padded = np.pad(data, pad) if pad[dim][1] else data     # one copy (below) where it fits
    shape = padded.shape[:dim] + (padded.shape[dim] // factor, factor) + padded.shape[dim + 1:]
    tiled = np.moveaxis(padded.reshape(shape), dim, 0)      # tile first
    return np.ascontiguousarray(np.moveaxis(tiled, dim + 1, -1))   # position in tile last


def _pack_view(data: np.ndarray, shape: tuple[int, ...], dim: int, factor: int) -> np.ndarray:
    return pack_array(np.asarray(data).reshape(shape), dim, factor)


def deferred_pack(data, shape: tuple[int, ...], dim: int, factor: int) -> Deferred:
    """pack_array of data seen with `shape` (the kernel's view), computed when the weights
    are written (loop/deferred.py)."""
    rest = shape[:dim] + shape[dim + 1:]
    packed = (-(-shape[dim] // factor),) + rest + (factor,)
    return Deferred(_pack_view, data, tuple(shape), dim, factor, shape=packed, dtype=data.dtype)


def _split_index(expr, factor: int, extents: dict, name: str):
    form = linear_form(expr)
    if form is None or any(c < 0 for c in form.values()):
        raise ScheduleError(f"pack {name!r}: index {expr} is not a non-negative affine form")
    outer = {v: c // factor for v, c in form.items() if c % factor == 0}
    inner = {v: c for v, c in form.items() if c % factor}
    if any(v is not None and extents.get(v) is None for v in inner):
        raise ScheduleError(f"pack {name!r}: in-tile index depends on an unbounded variable")
    top = sum(c * (extents[v] - 1) if v is not None else c for v, c in inner.items())
    if top >= factor:
        raise ScheduleError(f"pack {name!r}: in-tile index can reach {top} >= {factor}")
    return from_linear(outer), from_linear(inner)


def pack_loads(stmt: Stmt, buffer: str, dim: int, factor: int) -> tuple[Stmt, Buffer, Buffer]:
    """Rewrite loads of `buffer` to its packed layout; returns (stmt, old, new buffer)."""
    loads = [n for n in walk(stmt) if isinstance(n, Load) and n.buffer.name == buffer]
    if not loads or loads[0].buffer.scope != "constant":
        raise ScheduleError(f"pack: {buffer!r} is not a constant read by this kernel")
    old = loads[0].buffer
    new = packed_buffer(old, dim, factor)
    extents = {n.var: as_int(n.extent) for n in walk(stmt) if isinstance(n, For)}

    def rewrite(n):
        if isinstance(n, Load) and n.buffer.name == buffer:
            tile, within = _split_index(n.index[dim], factor, extents, buffer)
            index = (tile,) + n.index[:dim] + n.index[dim + 1:] + (within,)
            return dataclasses.replace(n, buffer=new, index=index)
        return n
    return transform(stmt, rewrite), old, new
