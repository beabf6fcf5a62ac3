"""Applying a schedule (a tuple of directives) to a kernel."""
from __future__ import annotations

import dataclasses

from ..loop.ir import Kernel
from . import primitives as P
from .directives import CacheWrite, Fuse, Parallel, Reorder, Split, Unroll, Vectorize

_APPLY = {
    Split: lambda s, d: P.split(s, d.loop, d.factor, d.outer, d.inner),
    Reorder: lambda s, d: P.reorder(s, d.loops),
    Fuse: lambda s, d: P.fuse(s, d.outer, d.inner, d.name),
    Vectorize: lambda s, d: P.annotate(s, d.loop, "vectorize"),
    Unroll: lambda s, d: P.annotate(s, d.loop, "unroll"),
    Parallel: lambda s, d: P.annotate(s, d.loop, "parallel", d.grain),
    CacheWrite: lambda s, d: P.cache_write(s, d.buffer, d.at),
}


def apply_schedule(kernel: Kernel, directives) -> Kernel:
    body = kernel.body
    for d in directives:
        body = _APPLY[type(d)](body, d)
    return kernel if body is kernel.body else dataclasses.replace(kernel, body=body)
