"""pad_in_place: producers write straight into the bordered buffer their consumer reads.

A padded Conv or MaxPool copies its input X (N, C, H, W) into the interior of a larger
buffer Xp whose border other kernels fill (ops/conv.py pad_input). When X is an arena
temporary that every kernel reads and writes through views ending in its (H, W) plane, each
such access can address Xp's interior instead: the copy disappears, and every consumer of X
(the padded one, a residual add, a strided 1x1 convolution) reads the same values from Xp.
"""
from __future__ import annotations

import dataclasses

from ..loop.affine import linear_form
from ..loop.ir import Buffer, For, Kernel, Load, Program, Store
from ..loop.symbolic import canon, dims_of
from ..loop.visit import buffer_accesses, transform_kernel


def _interior_copy(k: Kernel) -> tuple[Buffer, Buffer, tuple[int, int]] | None:
    """(X, Xp, (top, left)) when kernel k is exactly Xp[n, c, h + top, w + left] = X[n, c, h, w]
    over X's whole (N, C, H, W) shape."""
    chain, stmt = [], k.body
    while isinstance(stmt, For):
        chain.append(stmt)
        stmt = stmt.body
    if len(chain) != 4 or k.prologue or k.epilogue or not isinstance(stmt, Store) \
            or not isinstance(stmt.value, Load):
        return None
    src, dst, vs = stmt.value.buffer, stmt.buffer, [f.var for f in chain]
    # the planes' extents numbers (margins are numbers); the batch may be a symbol
    if stmt.value.index != tuple(vs) or src.rank != 4 or dst.rank != 4 or \
            not all(isinstance(d, int) for d in dims_of(src)[1:] + dims_of(dst)[1:]) or \
            dims_of(src) != tuple(canon(f.extent) for f in chain) or \
            dims_of(src)[:2] != dims_of(dst)[:2]:
        return None
    offsets = []
    for d, v in enumerate(vs):
        form = linear_form(stmt.index[d])
        if form is None or set(form) - {v, None} or form.get(v) != 1:
            return None
        offsets.append(form.get(None, 0))
    if offsets[:2] != [0, 0]:
        return None
    return src, dst, (offsets[2], offsets[3])


def _eligible(prog: Program, aliased: set[str], kernels, src: Buffer) -> bool:
    """An arena temporary, never aliased, accessed only through views ending in (H, W)."""
    if src not in prog.temps or src.name in aliased:
        return False
    plane = dims_of(src)[-2:]
    return all(isinstance(d, int) for d in plane) and all(
        dims_of(n.buffer)[-2:] == plane for k in kernels for n in buffer_accesses(k, src.name))


def _redirect(node, src: Buffer, dst: Buffer, top: int, left: int):
    """An access to (a view of) src as the same element of dst's interior: same index, a
    buffer with dst's storage and margins around the (H, W) plane."""
    if not isinstance(node, (Load, Store)) or node.buffer.name != src.name:
        return node
    h, w = dims_of(src)[-2:]
    hp, wp = dims_of(dst)[-2:]
    margin = ((0, 0),) * (node.buffer.rank - 2) + ((top, hp - h - top), (left, wp - w - left))
    return dataclasses.replace(node, buffer=dataclasses.replace(
        node.buffer, name=dst.name, margin=margin))


def pad_in_place(prog: Program) -> Program:
    """A second padded copy of the same X stays a copy (from the first one's interior)."""
    kernels, temps = list(prog.kernels), list(prog.temps)
    aliased = {b.name for pair in prog.aliases for b in pair}
    for name in [k.name for k in prog.kernels]:
        copy = next((k for k in kernels if k.name == name), None)
        found = _interior_copy(copy) if copy is not None else None
        if found is None or not _eligible(prog, aliased, kernels, found[0]):
            continue
        src, dst, (top, left) = found
        kernels.remove(copy)
        temps.remove(src)

        def redirect(n, src=src, dst=dst, top=top, left=left):
            return _redirect(n, src, dst, top, left)
        kernels = [transform_kernel(k, redirect) for k in kernels]
    return dataclasses.replace(prog, kernels=tuple(kernels), temps=tuple(temps))
