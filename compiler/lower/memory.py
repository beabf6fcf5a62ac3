"""plan_memory: a static arena; temporaries whose lifetimes do not overlap share bytes."""
from __future__ import annotations

import dataclasses

import numpy as np

from .. import dtypes
from ..loop.ir import Program, static_shape
from ..loop.visit import buffers_of

ALIGNMENT = 64   # bytes: a cache line, and enough for any vector load


def _nbytes(buf) -> int:
    size = int(np.prod(static_shape(buf), dtype=np.int64)) * dtypes.itemsize(buf.dtype)
    return max(ALIGNMENT, -(-size // ALIGNMENT) * ALIGNMENT)


def lifetimes(prog: Program) -> dict[str, tuple[int, int]]:
    """Temp name -> (first kernel, last kernel) that touches it or a view of it."""
    root = {view.name: storage.name for view, storage in prog.aliases}
    temps = {b.name for b in prog.temps}
    spans: dict[str, tuple[int, int]] = {}
    for i, k in enumerate(prog.kernels):
        for name in buffers_of(k.body):
            name = root.get(name, name)
            if name in temps:
                first, _ = spans.get(name, (i, i))
                spans[name] = (first, i)
    return spans


def plan_memory(prog: Program) -> Program:
    spans = lifetimes(prog)
    sizes = {b.name: _nbytes(b) for b in prog.temps}
    placed: list[tuple[int, int, int, int]] = []   # offset, size, first, last
    offsets: list[tuple[str, int]] = []
    for name in sorted(spans, key=lambda n: (spans[n][0], n)):
        first, last = spans[name]
        busy = sorted((o, s) for o, s, f, l_ in placed if not (l_ < first or last < f))
        offset = 0
        for o, s in busy:
            if offset + sizes[name] <= o:
                break
            offset = max(offset, o + s)
        placed.append((offset, sizes[name], first, last))
        offsets.append((name, offset))
    arena = max((o + s for o, s, _, _ in placed), default=0)
    # outputs sized at run time live after the temporaries: the caller reads them after the
    # run, so nothing may reuse their bytes
    out_offsets = []
    for name in dict.fromkeys(out for out, _, _ in prog.extents):
        out_offsets.append((name, arena))
        arena += _nbytes(next(b for b in prog.outputs if b.name == name))
    return dataclasses.replace(prog, offsets=tuple(offsets), arena_size=arena,
                               output_offsets=tuple(out_offsets))
