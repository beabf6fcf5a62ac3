"""Applying a schedule (a tuple of directives) to a kernel."""
from __future__ import annotations

import dataclasses

from ..loop.ir import Kernel
from . import primitives as P
from .contraction import tile_contraction
from .directives import (
    Bind,
    CacheWrite,
    Fuse,
    Parallel,
    Reorder,
    Split,
    TileContraction,
    Unroll,
    Vectorize,
)
from .tensorcore import tile_with_mma

_APPLY = {
    Split: lambda s, d: P.split(s, d.loop, d.factor, d.outer, d.inner),
    Reorder: lambda s, d: P.reorder(s, d.loops),
    Fuse: lambda s, d: P.fuse(s, d.outer, d.inner, d.name),
    Vectorize: lambda s, d: P.annotate(s, d.loop, "vectorize"),
    Unroll: lambda s, d: P.annotate(s, d.loop, "unroll"),
    Parallel: lambda s, d: P.annotate(s, d.loop, "parallel", d.grain),
    Bind: lambda s, d: P.bind(s, d.loop, d.axis),
    CacheWrite: lambda s, d: P.cache_write(s, d.buffer, d.at),
}


def apply_schedule(kernel: Kernel, directives) -> Kernel:
    body, prologue, epilogue = kernel.body, kernel.prologue, kernel.epilogue
    for d in directives:
        if isinstance(d, CacheWrite) and prologue is not None and \
                prologue.buffer.name == d.buffer:
            body = P.cache_write(body, d.buffer, d.at, prologue, epilogue)
            prologue = epilogue = None       # the tile copies now do their work
        elif isinstance(d, TileContraction):
            tile = tile_with_mma if d.mma else tile_contraction
            body = tile(body, d, prologue, epilogue)
            prologue = epilogue = None       # each thread starts and finishes its outputs
        else:
            body = _APPLY[type(d)](body, d)
    if body is kernel.body:
        return kernel
    return dataclasses.replace(kernel, body=body, prologue=prologue, epilogue=epilogue)
