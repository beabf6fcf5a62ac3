"""Default GPU schedules: each top-level loop nest of a kernel is one launch. A contraction
large enough to fill tiles (MatMul, Gemm, Conv) runs as block tiles staged in shared memory
(contraction.py), on the tensor cores where the operand type allows (tensorcore.py).
Otherwise the nest's outer loops whose iterations are independent are fused into one index
space and split into blocks of threads; a kernel that accumulates (a template prologue) keeps
each thread's value in a register. Loops that carry a dependence run inside each thread."""
from __future__ import annotations

from .. import dtypes
from ..loop.affine import linear_form
from ..loop.ir import Const, For, Kernel, Load, Seq, Store, as_int
from ..loop.visit import perfect_nest, walk
from ..targets import Target
from .contraction import match_contraction
from .directives import Bind, CacheWrite, Fuse, Split, TileContraction
from .tensorcore import STAGED, float32_products

# Warps per block: enough resident warps to hide memory latency, few enough that a small
# kernel still spreads over several multiprocessors.
WARPS_PER_BLOCK = 8


def _top_level(stmt) -> list:
    return [s for part in stmt.body for s in _top_level(part)] if isinstance(stmt, Seq) \
        else [stmt]


def _only_var(index_expr, var) -> bool:
    form = linear_form(index_expr)
    return form is not None and form.get(var, 0) != 0 and set(form) <= {var, None}


def _idempotent(stores: list[Store], loaded: bool) -> bool:
    """Every thread writes the same constant to the same element (a run-time fault flag)."""
    return not loaded and all(isinstance(s.value, Const) and all(isinstance(i, Const)
                                                                 for i in s.index)
                              for s in stores)


def _owned(accesses: list, loop: For) -> bool:
    """Some dimension every access indexes by the same expression of `loop`'s variable
    alone: each iteration touches its own slice of the buffer."""
    first = accesses[0].index
    return any(_only_var(first[d], loop.var) and all(a.index[d] == first[d] for a in accesses)
               for d in range(len(first)))


def _independent(loops: list[For], nest: For) -> bool:
    """Distinct iterations of `loops` (the nest's outermost) touch distinct slices of every
    global buffer the nest writes, so they may run at once, in any order."""
    stores: dict[str, list] = {}
    for n in walk(nest):
        if isinstance(n, Store) and n.buffer.scope == "global":
            stores.setdefault(n.buffer.name, []).append(n)
    for name, written in stores.items():
        loads = [n for n in walk(nest) if isinstance(n, Load) and n.buffer.name == name]
        if not _idempotent(written, bool(loads)) and \
                not all(_owned(written + loads, loop) for loop in loops):
            return False
    return bool(stores)


def _parallel_prefix(nest: For) -> list[For]:
    chain = perfect_nest(nest)
    prefix: list[For] = []
    for loop in chain:
        if as_int(loop.extent) is None or not _independent(prefix + [loop], nest):
            break
        prefix.append(loop)
    return prefix


def _launch(prefix: list[For], name: str, threads: int, accumulator: str | None) -> list:
    """Fuse the prefix into `name`, keep an accumulator per iteration, split into blocks."""
    d: list = [CacheWrite(accumulator, prefix[-1].var.name)] if accumulator else []
    current = prefix[0].var.name
    for i, loop in enumerate(prefix[1:]):
        fused = name if i == len(prefix) - 2 else f"{name}_{i}"
        d.append(Fuse(current, loop.var.name, fused))
        current = fused
    if len(prefix) == 1:
        name = current
    total = 1
    for loop in prefix:
        total *= as_int(loop.extent)
    if total <= threads:
        return d + [Bind(name, "threadIdx.x")]
    block, thread = f"{name}_block", f"{name}_thread"
    return d + [Split(name, threads, block, thread), Bind(block, "blockIdx.x"),
                Bind(thread, "threadIdx.x")]


# (Block tile, thread tile) as (rows, columns), the largest first, each with 256 threads
# (WARPS_PER_BLOCK warps): a thread reuses a staged row value for each of its columns and a
# column value for each of its rows.
TILES = (((64, 64), (4, 4)), ((32, 64), (2, 4)), ((64, 32), (4, 2)), ((32, 32), (2, 2)),
         ((16, 32), (1, 2)), ((32, 16), (2, 1)), ((16, 16), (1, 1)))
# Reduction values staged per step: 16 floats are a 64-byte row segment per tile row.
TILE_STEP = 16
TILE_STAGES = 2
# The smallest rows, columns and reduction worth a tile; below, one thread per output.
MIN_TILED = 16
# Blocks a launch may have along y and z (x: 2**31 - 1).
GRID_YZ = 65535
# Shared memory a block may declare statically (more needs the dynamic opt-in).
STATIC_SHARED_BYTES = 48 * 1024


# Tensor-core tiles: (block tile, warp tile), the largest first: 8 warps, then 4. A warp's
# tile is whole 16 x 16 fragments; 2 x 2 of them use each operand fragment loaded twice.
MMA_TILES = (((128, 64), (32, 32)), ((64, 128), (32, 32)), ((64, 64), (32, 32)),
             ((64, 32), (32, 16)), ((32, 64), (16, 32)), ((32, 32), (16, 16)),
             ((16, 64), (16, 16)), ((64, 16), (16, 16)))
# The accumulators' float32 tile a tensor-core block leaves its outputs in
MMA_OUT_ITEMSIZE = 4


def _mma_type(kernel: Kernel, c, target: Target) -> str | None:
    """The tensor cores' operand type for a float32 contraction: the 16-bit float the model
    keeps its tensors in, else TF32 where the user allowed it, if the GPU has it."""
    if not float32_products(c):
        return None
    wanted = kernel.narrow_float or ("tfloat32" if target.gpu.tf32 else None)
    return wanted if wanted in dict(target.gpu.mma_shapes) else None


def _tile(nest: For, kernel: Kernel, target: Target) -> TileContraction | None:
    """Block tiles for a contraction big enough to fill them, on the tensor cores where the
    operand type allows: the largest tile that still gives every multiprocessor a block,
    else the one that gives the most blocks."""
    accumulated = kernel.prologue.buffer.name if kernel.prologue is not None else None
    c = match_contraction(nest, accumulated) if accumulated else None
    if c is None:
        return None
    rows, cols, batch = c.extent("rows"), c.extent("cols"), c.extent("batch")
    if min(rows, cols, c.extent("reduce")) < MIN_TILED:
        return None
    mma = _mma_type(kernel, c, target)
    shape = dict(target.gpu.mma_shapes)[mma] if mma else ()
    itemsize = dtypes.itemsize(STAGED[mma]) if mma else \
        max(dtypes.itemsize(c.a.dtype), dtypes.itemsize(c.b.dtype))
    table = [t for t in MMA_TILES if t[1][0] % shape[0] == 0 and t[1][1] % shape[1] == 0
             and TILE_STEP % shape[2] == 0] if mma else TILES

    def allowed(tile) -> bool:
        (bm, bn), _ = tile
        shared = TILE_STAGES * TILE_STEP * (bm + bn) * itemsize + \
            (bm * bn * MMA_OUT_ITEMSIZE if mma else 0)
        # row tiles go to blockIdx.y and the batch to blockIdx.z
        return shared <= STATIC_SHARED_BYTES and -(-rows // bm) <= GRID_YZ and batch <= GRID_YZ

    def blocks(tile) -> int:
        (bm, bn), _ = tile
        return batch * -(-rows // bm) * -(-cols // bn)
    fits = [t for t in table if allowed(t)]
    if not fits:
        return None
    enough = [t for t in fits if blocks(t) >= target.gpu.multiprocessors]
    block, thread = enough[0] if enough else max(fits, key=blocks)
    return TileContraction(nest.var.name, block, thread, TILE_STEP, TILE_STAGES, mma or "",
                           tuple(shape))


def gpu_schedule(kernel: Kernel, target: Target) -> tuple:
    threads = min(WARPS_PER_BLOCK * target.gpu.warp_size, target.gpu.max_threads_per_block)
    names = [n.var.name for part in kernel.parts for n in walk(part) if isinstance(n, For)]
    if len(set(names)) != len(names):      # directives address loops by unique names
        return ()
    accumulated = kernel.prologue.buffer.name if kernel.prologue is not None else None
    d: list = []
    for index, stmt in enumerate(_top_level(kernel.body)):
        tile = _tile(stmt, kernel, target) if isinstance(stmt, For) else None
        if tile is not None:
            d.append(tile)
            continue
        prefix = _parallel_prefix(stmt) if isinstance(stmt, For) else []
        if not prefix:
            continue
        stores = {n.buffer.name for n in walk(stmt) if isinstance(n, Store)}
        d += _launch(prefix, f"gpu{index}", threads,
                     accumulated if accumulated in stores else None)
    return tuple(d)
