"""block_channels: tensors between convolutions stored channels-blocked (NCHWc).

In NCHW a depthwise convolution vectorizes along the pixels of a row: rows narrower than a
vector (7x7 and 14x14 maps) and strided windows waste lanes. With the channels stored in
blocks of the vector width innermost, it vectorizes along channels instead (every load one
aligned vector), and convolutions tile along output channels with whole vector stores
(their outputs) and adjacent broadcasts (their inputs). A tensor is blocked
when it is an arena temporary of shape [N, C, H, W] with C a multiple of the block, seen as
[N, C, H, W] or as a convolution's [N, 1, C, H, W], and every kernel that touches it is a
depthwise convolution or max pool, a single-group convolution with at least a block of
output channels, or a border fill of its padding.
"""
from __future__ import annotations

import dataclasses

from ..loop.ir import (
    Buffer,
    Const,
    For,
    Kernel,
    Load,
    Program,
    Store,
    as_int,
)
from ..loop.symbolic import dim_sum, dims_of
from ..loop.visit import buffer_accesses, transform_kernel, walk
from ..targets import Target

# Ops whose kernels can read and write channels-blocked tensors (a 2-D float MaxPool is a
# depthwise nest of maxima).
BLOCKED_OPS = ("Conv", "MaxPool")


def _block_dim(buf: Buffer, shape) -> int | None:
    """Which dimension of this view of a [N, C, H, W] tensor holds the channels (a view
    with margins: of its padded storage)."""
    margin = buf.margin or ((0, 0),) * buf.rank
    view = tuple(dim_sum(d, a + b) for d, (a, b) in zip(dims_of(buf), margin))
    if view == shape:
        return 1
    if len(view) == 5 and view[1] == 1 and view[:1] + view[2:] == shape:
        return 2
    return None


def _loop_extent(k: Kernel, name: str) -> int | None:
    return next((as_int(n.extent) for n in walk(k.body) if isinstance(n, For)
                 and n.var.name == name), None)


def _kernel_fits(k: Kernel, name: str, factor: int) -> bool:
    """k works on the blocked layout: a depthwise nest (convolution or max pool), a
    one-group convolution with a block of output channels (its tile then runs along them),
    or a border fill."""
    if k.op_type not in BLOCKED_OPS:
        return False
    if k.kind == "depthwise":
        return True
    if k.kind == "conv":
        return _loop_extent(k, "g") == 1 and (_loop_extent(k, "i") or 0) >= factor
    return all(isinstance(n, Store) and isinstance(n.value, Const)
               for n in buffer_accesses(k, name))


def _eligible(buf: Buffer, aliased: set[str], users: list, factor: int) -> bool:
    shape = dims_of(buf)
    # the channels (and the plane) a number; the batch may be a dimension symbol
    if len(shape) != 4 or not all(isinstance(d, int) for d in shape[1:]) or \
            shape[1] % factor or buf.name in aliased or buf.dtype != "float32":
        return False
    return any(k.kind in ("depthwise", "conv") for k in users) and all(
        _kernel_fits(k, buf.name, factor) and all(
            _block_dim(n.buffer, shape) is not None for n in buffer_accesses(k, buf.name))
        for k in users)


def block_channels(prog: Program, target: Target) -> Program:
    factor = target.lanes()
    if factor < 2:
        return prog
    users: dict[str, list[Kernel]] = {}
    for k in prog.kernels:
        for name in {n.buffer.name for part in k.parts for n in walk(part)
                     if isinstance(n, (Load, Store))}:
            users.setdefault(name, []).append(k)
    aliased = {b.name for pair in prog.aliases for b in pair}
    shapes = {b.name: dims_of(b) for b in prog.temps
              if _eligible(b, aliased, users.get(b.name, []), factor)}

    def block(n):
        if isinstance(n, (Load, Store)) and n.buffer.name in shapes:
            dim = _block_dim(n.buffer, shapes[n.buffer.name])
            return dataclasses.replace(n, buffer=dataclasses.replace(n.buffer,
                                                                     block=(dim, factor)))
        return n
    touched = {k.name for name in shapes for k in users[name]}
    kernels = [transform_kernel(k, block) if k.name in touched else k for k in prog.kernels]
    return dataclasses.replace(prog, kernels=tuple(kernels))
