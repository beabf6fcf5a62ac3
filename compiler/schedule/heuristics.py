"""Default schedules: directives chosen from the kernel's loop nest and the target's facts."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..loop.affine import coefficient
from ..loop.ir import Allocate, For, IfThen, Kernel, Load, Seq, Store, Var, as_int, const_int
from ..loop.visit import free_vars, perfect_nest, walk
from ..targets import Target
from .directives import CacheWrite, Fuse, Pack, Parallel, Reorder, Split, Unroll, Vectorize
from .gpu import gpu_schedule
from .hints import hinted

# Below this many inner-loop iterations a kernel runs on the calling thread: waking the pool
# costs more than the work.
PARALLEL_MIN_WORK = 1 << 15
# Registers kept free in a GEMM tile for the A broadcasts and B loads.
SPARE_REGISTERS = 4
MAX_TILE_ROWS = 12
# Vectors across the register tile (its width in the vectorized dimension).
MAX_TILE_VECTORS = 2
# An innermost reduction loop this short (a convolution window's row) is unrolled around the
# tile: a loop step per 3 tile updates costs as much as the updates' loads.
MAX_UNROLLED_REDUCTION = 7
# How much better the rows must fill the vectors before the tile is vectorized along them.
FILL_MARGIN = 0.1
# A tile along rows stores each lane on its own (strided stores): with a shorter reduction
# the stores cost more than the better-filled vectors save.
MIN_REDUCTION_ROWS = 16
# Output rows of a depthwise tile: each input row loaded feeds up to kernel-height of them.
DEPTHWISE_ROWS = 4
# Output pixels of a channels-blocked depthwise tile (one vector register each).
DEPTHWISE_PIXELS = 8


def _extent(loop: For) -> int:
    """A loop's trip count: a dimension symbol's taken at its hint (hints.py)."""
    static = as_int(loop.extent)
    return static if static is not None else hinted(loop.extent)


def _static(loop: For) -> bool:
    return as_int(loop.extent) is not None


def _work(chain) -> int:
    total = 1
    for loop in chain:
        total *= _extent(loop)
    return total


def _body_work(stmt) -> int:
    """Statement executions under stmt (loops multiply, sequences add)."""
    match stmt:
        case For(body=body):
            return _extent(stmt) * _body_work(body)
        case Seq(body=body):
            return sum(_body_work(s) for s in body)
        case IfThen(then=body) | Allocate(body=body):
            return _body_work(body)
    return 1


def _carried(stmt) -> bool:
    """Some element is read at another index of a buffer the statement writes (a scan's
    previous row, say): its loops then carry a dependence and are neither split into
    vectors nor run on the pool. Reads at the written index itself (accumulators) are fine."""
    written: dict[str, set] = {}
    for n in walk(stmt):
        if isinstance(n, Store):
            written.setdefault(n.buffer.name, set()).add(n.index)
    return any(isinstance(n, Load) and n.buffer.name in written
               and n.index not in written[n.buffer.name] for n in walk(stmt))


def _writes_disjoint(loop: For) -> bool:
    """Every store under the loop depends on its variable: iterations write apart."""
    stores = [n for n in walk(loop.body) if isinstance(n, Store) and n.buffer.scope == "global"]
    return bool(stores) and all(
        any(coefficient(i, loop.var) not in (0, None) for i in s.index) for s in stores)


@dataclass(frozen=True)
class _Axis:
    """A loop as the heuristics see it once their own splits and fusions are planned."""
    name: str
    extent: int
    disjoint: bool
    static: bool = True     # the extent is a number, not a symbol's hint


def _parallel_pick(axes: list[_Axis], target: Target, work: int) -> list:
    """Parallelize the data-parallel loop with the most iterations, moved outermost; none when
    the kernel is too small to pay for waking the pool. A static loop with work for every
    thread goes before one over a dimension symbol, whose value may be 1 at run time."""
    candidates = [a for a in axes if a.disjoint and a.extent > 1]
    if work < PARALLEL_MIN_WORK or target.threads < 2 or not candidates:
        return []
    best = max(candidates, key=lambda a: (a.static and a.extent >= 2 * target.threads,
                                          a.extent))
    per_iter = max(1, work // best.extent)
    grain = max(1, PARALLEL_MIN_WORK // (4 * per_iter))
    order = [best.name] + [a.name for a in axes if a is not best]
    moves = [Reorder(tuple(order))] if axes[0] is not best else []
    return moves + [Parallel(best.name, grain)]


def _is_float32(kernel: Kernel) -> bool:
    return all(n.buffer.dtype == "float32" for n in walk(kernel.body)
               if isinstance(n, (Load, Store)))


def elementwise(kernel: Kernel, target: Target) -> tuple:
    """Fuse a dense nest into one loop, vectorize the innermost loop when its body is a plain
    store, and run the widest data-parallel loop on the thread pool."""
    chain = perfect_nest(kernel.body)
    if not chain or _carried(kernel.body):
        return ()
    lanes = target.lanes()
    store = chain[-1].body
    work = _body_work(kernel.body)
    axes = [_Axis(f.var.name, _extent(f), _writes_disjoint(f), _static(f)) for f in chain]
    directives: list = []
    # one flat loop over dense arrays (not over the interior of a padded buffer)
    dense = isinstance(store, Store) and all(
        n.index == store.index and not n.buffer.margin for n in walk(store)
        if isinstance(n, (Load, Store)))
    if dense and store.index == tuple(f.var for f in chain) and len(chain) > 1:
        name = axes[0].name
        for inner in axes[1:]:
            directives.append(Fuse(name, inner.name, f"{name}_{inner.name}"))
            name = f"{name}_{inner.name}"
        axes = [_Axis(name, _work(chain), True)]
    if not isinstance(store, Store):
        directives += _vectorize_inner_loops(store, lanes) if _is_float32(kernel) else []
    last = axes[-1]
    if isinstance(store, Store) and _is_float32(kernel) and last.extent >= lanes:
        directives += [Split(last.name, lanes, f"{last.name}_o", f"{last.name}_v"),
                       Vectorize(f"{last.name}_v")]
        axes[-1] = _Axis(f"{last.name}_o", -(-last.extent // lanes), last.disjoint,
                         last.static)
    return tuple(directives + _parallel_pick(axes, target, work))


def _straight_line(stmt) -> bool:
    return isinstance(stmt, Store) or (isinstance(stmt, Seq) and all(
        isinstance(s, Store) for s in stmt.body))


def _vectorize_inner_loops(body, lanes: int) -> list:
    """Inside a row (softmax, normalization, reductions), each inner loop over straight-line
    stores is cut into vectors; a reduction in it becomes a vector fold."""
    inner = [n for n in walk(body) if isinstance(n, For)]
    names = [n.var.name for n in inner]
    d = []
    for loop in inner:
        name = loop.var.name
        if names.count(name) == 1 and _extent(loop) >= lanes and _straight_line(loop.body):
            d += [Split(name, lanes, f"{name}_o", f"{name}_v"), Vectorize(f"{name}_v")]
    return d


@dataclass(frozen=True)
class _GemmNest:
    """Y[batch..., i, js...] += A(i, ks...) * B(ks..., js...): the loops by role. The
    innermost column loop is tiled with i; outer column loops (an output row) stay whole."""
    batch: tuple
    i: For
    js: tuple
    ks: tuple


def _index_vars(index) -> set:
    return set().union(*(free_vars(e) for e in index))


def _operand_reads(store: Store) -> dict:
    """Loop variable -> the operand buffers (every load but the accumulator's own) whose
    index it appears in."""
    acc = Load(store.buffer, store.index)
    reads: dict = {}
    for n in walk(store.value):
        if isinstance(n, Load) and n != acc:
            for v in _index_vars(n.index):
                reads.setdefault(v, set()).add(n.buffer.name)
    return reads


def _gemm_nest(chain) -> _GemmNest | None:
    """The nest by role, recognised by which loops index what (never by their names): the
    trailing loops absent from the output's index reduce; before them the column loops,
    the output loops that read the same operands as the innermost one; before those the row
    loop, which reads operands the columns do not; the loops before it are batch loops.
    (MatMul: b.., i, j, k; a convolution: n, g, i, oh, ow, c, r, s.)"""
    if not chain:
        return None
    store = _innermost_store(chain)
    if not isinstance(store, Store):
        return None
    out = _index_vars(store.index)
    outputs = [f for f in chain if f.var in out]
    if not outputs or chain[:len(outputs)] != outputs or len(outputs) == len(chain):
        return None
    reads = _operand_reads(store)
    side = reads.get(outputs[-1].var, set())
    cols = len(outputs) - 1
    while cols > 0 and reads.get(outputs[cols - 1].var, set()) == side:
        cols -= 1
    if not side or cols == 0:
        return None
    row = outputs[cols - 1]
    if not reads.get(row.var) or reads[row.var] & side:
        return None
    return _GemmNest(tuple(outputs[:cols - 1]), row, tuple(outputs[cols:]),
                     tuple(chain[len(outputs):]))


def matmul(kernel: Kernel, target: Target) -> tuple:
    """A register tile vectorized along the innermost column loop j (A broadcast), or along
    the rows i when that fills the vectors much better or the columns are not contiguous
    (A constant, so it can be packed: convolutions of small feature maps, strided ones)."""
    chain = perfect_nest(kernel.body)
    g = _gemm_nest(chain)
    if g is None:
        return elementwise(kernel, target)
    store = _innermost_store(chain)
    i, j = g.i.var.name, g.js[-1].var.name
    m, n = _extent(g.i), _extent(g.js[-1])
    lanes = target.lanes()
    plain = (Reorder(tuple(f.var.name for f in g.batch + (g.i,) + g.js[:-1] + g.ks) + (j,)),)
    if max(m, n) < lanes or not _is_float32(kernel):
        return plain
    contiguous = _contiguous_along(store, g.js[-1].var)
    blocked = _blocked(kernel)   # channels-blocked tensors: the tile must run along channels
    along_rows = m >= lanes and (blocked or _constant_along(store, g.i.var) and (
        not contiguous or n < lanes or (_fill(m, lanes) > _fill(n, lanes) + FILL_MARGIN
                                        and _work(g.ks) >= MIN_REDUCTION_ROWS)))
    if (n < lanes or not contiguous or blocked) and not along_rows:
        return plain
    d, g = _split_blocked_reduction(g, store, lanes)
    vec, other = (i, j) if along_rows else (j, i)
    vec_extent, other_extent = (m, n) if along_rows else (n, m)
    vecs = max(1, min(MAX_TILE_VECTORS, vec_extent // lanes))
    width = _tile_rows(other_extent, min(MAX_TILE_ROWS,
                                         (target.vector_registers - SPARE_REGISTERS) // vecs))
    d += [Split(vec, vecs * lanes, f"{vec}o", f"{vec}i"),
          Split(f"{vec}i", lanes, f"{vec}m", f"{vec}v"),
          Split(other, width, f"{other}o", f"{other}i")]
    tiles = {f"{j}o": -(-n // (vecs * lanes if vec == j else width)),
             f"{i}o": -(-m // (vecs * lanes if vec == i else width))}
    inner = tuple(f.var.name for f in g.ks) + (f"{other}i", f"{vec}m", f"{vec}v")
    order = _outer_loops(g, tiles, inner, _work(chain), target, store)
    d += order + [CacheWrite(store.buffer.name, order[0].loops[-len(inner) - 1]),
                  Unroll(f"{other}i"), Unroll(f"{vec}m"), Vectorize(f"{vec}v")]
    if len(g.ks) > 1 and _extent(g.ks[-1]) <= MAX_UNROLLED_REDUCTION:
        d.append(Unroll(g.ks[-1].var.name))
    i_block, j_block = (vecs * lanes, width) if along_rows else (width, vecs * lanes)
    d += _pack_constants(store, g.i.var, g.js[-1].var, i_block, j_block)
    return tuple(d + _tile_copies(store.buffer.name, len(store.index), lanes))


def _split_blocked_reduction(g: _GemmNest, store, lanes: int) -> tuple[list, _GemmNest]:
    """A channels-blocked input is read along its channels (the first reduction loop):
    split that loop at the block, so a block's position is a loop variable, not a division."""
    if not any(isinstance(x, Load) and x.buffer.block for x in walk(store.value)):
        return [], g
    first = g.ks[0].var.name
    outer_k = For(Var(f"{first}_o"), const_int(1), g.ks[0].body)
    inner_k = For(Var(f"{first}_i"), const_int(lanes), g.ks[0].body)
    return ([Split(first, lanes, f"{first}_o", f"{first}_i")],
            dataclasses.replace(g, ks=(outer_k, inner_k) + g.ks[1:]))


def _blocked(kernel: Kernel) -> bool:
    return any(isinstance(n, (Load, Store)) and n.buffer.block
               for part in kernel.parts for n in walk(part))


def _contiguous_along(store, var) -> bool:
    """Every operand read along var is read at unit stride in its last dimension only (a
    vector along var is one contiguous load)."""
    for n in walk(store.value):
        if isinstance(n, Load) and any(coefficient(e, var) not in (0, None) for e in n.index):
            if coefficient(n.index[-1], var) != 1 or any(
                    coefficient(e, var) not in (0, None) for e in n.index[:-1]):
                return False
    return True


def _fill(extent: int, lanes: int) -> float:
    """The share of vector lanes doing useful work over an axis of this extent."""
    return extent / (-(-extent // lanes) * lanes)


def _constant_along(store, var) -> bool:
    """Some constant operand is read along var (so it can be packed along it)."""
    return any(isinstance(n, Load) and n.buffer.scope == "constant"
               and any(coefficient(e, var) == 1 for e in n.index) for n in walk(store.value))


def _tile_rows(m: int, most: int) -> int:
    """Rows of the register tile: the most that fit, or a divisor of m not under half of that
    (a remainder tile runs with partial registers)."""
    if m <= most:
        return max(1, m)
    for rows in range(most, (most + 1) // 2 - 1, -1):
        if m % rows == 0:
            return rows
    return most


def _operand_bytes(store, var) -> int:
    """Bytes of the operand(s) read along var only (A for i, B for j)."""
    from .. import dtypes
    total = 0
    for n in walk(store.value):
        if isinstance(n, Load) and any(coefficient(e, var) not in (0, None) for e in n.index):
            size = 1
            for d in n.buffer.shape:
                size *= as_int(d) or 1
            total += size * dtypes.itemsize(n.buffer.dtype)
    return total


def _outer_loops(g: _GemmNest, tiles: dict, inner: tuple, work: int, target: Target,
                 store) -> list:
    """Order the tile loops so that the operand re-read by the inner tile loop fits the L2
    cache or, failing that, is the one re-read fewer times (the whole outer column loops
    go with the column tiles); run the widest batch loop, else the outermost tile or outer
    column loop with work for every thread, on the pool when the work pays for it."""
    i_tiles, j_tiles = f"{g.i.var.name}o", f"{g.js[-1].var.name}o"
    a_bytes = _operand_bytes(store, g.i.var)
    b_bytes = _operand_bytes(store, g.js[-1].var)
    l2 = target.l2_bytes
    rows = [f.var.name for f in g.js[:-1]]
    extents = dict(tiles, **{f.var.name: _extent(f) for f in g.js[:-1]})
    row_tiles = tiles[i_tiles]
    col_tiles = tiles[j_tiles] * _work(g.js[:-1])

    def traffic(outer):   # bytes streamed when `outer` is the outer tile loop
        rereads, size = (row_tiles, b_bytes) if outer == i_tiles else (col_tiles, a_bytes)
        return size * (rereads if size > l2 else 1)
    outer = min((j_tiles, i_tiles), key=lambda t: (traffic(t), t != j_tiles))
    columns = rows + [j_tiles]
    tile_order = [i_tiles] + columns if outer == i_tiles else columns + [i_tiles]
    # a loop over a dimension symbol may run once: static loops go first when wide enough
    symbolic = {f.var.name for f in (*g.batch, *g.js, g.i) if not _static(f)}
    symbolic |= {f"{f.var.name}o" for f in (g.i, g.js[-1]) if not _static(f)}
    wide_batch = [f for f in g.batch if _extent(f) >= 2 * target.threads]
    wide_batch = [f for f in wide_batch if _static(f)] or wide_batch
    order = [f.var.name for f in g.batch] + tile_order
    wide = [t for t in tile_order if extents[t] >= 2 * target.threads]
    if wide_batch and (_static(wide_batch[0]) or not [t for t in wide if t not in symbolic]):
        lead = max(wide_batch, key=_extent).var.name
        order = [lead] + [n for n in order if n != lead]
    else:   # keep the traffic order; the outermost tile loop wide enough runs on the pool
        wide = [t for t in wide if t not in symbolic] or wide
        lead = wide[0] if wide else max(tile_order, key=lambda t: extents[t])
    d = [Reorder(tuple(order) + inner)]
    extent = _extent(next(f for f in g.batch if f.var.name == lead)) \
        if lead not in extents else extents[lead]
    if work >= PARALLEL_MIN_WORK and target.threads > 1 and extent > 1:
        d.append(Parallel(lead))
    return d


def _tile_copies(out: str, rank: int, lanes: int) -> list:
    """The accumulator tile's load and store loops: rows unrolled, columns in vectors."""
    d = []
    for stage in ("in", "out"):
        last = f"{out}_{stage}{rank - 1}"
        d += [Unroll(f"{out}_{stage}{dim}") for dim in range(rank - 1)]
        d += [Split(last, lanes, f"{last}_o", f"{last}_v"), Unroll(f"{last}_o"),
              Vectorize(f"{last}_v")]
    return d


def _pack_constants(store, i_var, j_var, rows: int, width: int) -> list:
    """Constant operands are packed into tiles at compile time: weights read along j into
    panels of the tile width (each k step reads one contiguous line instead of striding
    through a matrix row), weights read along i into blocks of the tile height (the tile's
    broadcasts for one k are adjacent)."""
    packs = []
    for load in walk(store.value):
        if not isinstance(load, Load) or load.buffer.scope != "constant" or load.buffer.rank < 2:
            continue
        for var, factor in ((j_var, width), (i_var, rows)):
            dims = [d for d, e in enumerate(load.index) if coefficient(e, var) == 1]
            if len(dims) == 1 and factor > 1:
                packs.append(Pack(load.buffer.name, dims[0], factor))
                break
    return packs


def _depthwise_loops(chain) -> tuple[str, ...] | None:
    """The loop names of a depthwise convolution or pooling nest (n, c, oh, ow, kh, kw),
    recognised by what each loop indexes: two window loops reduce; the channel loop reads
    every operand (the input, and a convolution's weights); the batch and output pixel
    loops read the input alone."""
    store = _innermost_store(chain) if len(chain) == 6 else None
    if not isinstance(store, Store):
        return None
    out, reads = _index_vars(store.index), _operand_reads(store)
    operands = set().union(*reads.values()) if reads else set()
    if [f.var in out for f in chain] != [True] * 4 + [False] * 2 \
            or len(operands) not in (1, 2) or reads.get(chain[1].var) != operands:
        return None
    pixel_reads = [reads.get(chain[a].var, set()) for a in (0, 2, 3)]
    if not all(len(r) == 1 and r == pixel_reads[0] for r in pixel_reads):
        return None
    return tuple(f.var.name for f in chain)


def depthwise(kernel: Kernel, target: Target) -> tuple:
    """Loops (n, c, oh, ow, kh, kw), Y += X * W per channel: a tile of a few output rows by
    a vector of columns accumulates in registers over the unrolled window (rows share the
    input rows they load); channels run on the pool."""
    chain = perfect_nest(kernel.body)
    names = _depthwise_loops(chain)
    if names is None:
        return elementwise(kernel, target)
    n, c, oh, ow, kh, kw = names
    # a row narrower than the vector register uses a narrower vector (4 lanes at least)
    lanes = target.lanes()
    while lanes > 4 and _extent(chain[3]) < lanes:
        lanes //= 2
    out = _innermost_store(chain).buffer.name
    if _blocked(kernel):
        return _depthwise_along_channels(kernel, chain, target, out)
    parallel = [Parallel(c)] if _body_work(kernel.body) >= PARALLEL_MIN_WORK \
        and target.threads > 1 and _extent(chain[1]) > 1 else []
    if _extent(chain[3]) < lanes or not _is_float32(kernel):
        return (Reorder((c, n, oh, ow, kh, kw)),) + tuple(parallel)
    rows = max(r for r in range(1, DEPTHWISE_ROWS + 1) if _extent(chain[2]) % r == 0)
    return (Split(ow, lanes, f"{ow}o", f"{ow}v"), Split(oh, rows, f"{oh}o", f"{oh}i"),
            Reorder((c, n, f"{oh}o", f"{ow}o", f"{oh}i", kh, kw, f"{ow}v")), *parallel,
            CacheWrite(out, f"{ow}o"), Unroll(f"{oh}i"), Unroll(kh), Unroll(kw),
            Vectorize(f"{ow}v"), *_tile_copies(out, 4, lanes))


def _depthwise_along_channels(kernel: Kernel, chain, target: Target, out: str) -> tuple:
    """Channels-blocked tensors: a tile of a few output pixels by one vector of channels
    (each tap one aligned vector load, the weights packed by channel block)."""
    n, c, oh, ow, kh, kw = (f.var.name for f in chain)
    lanes = target.lanes()
    pixels = _tile_rows(_extent(chain[3]), DEPTHWISE_PIXELS)
    parallel = [Parallel(f"{c}o")] if _body_work(kernel.body) >= PARALLEL_MIN_WORK \
        and target.threads > 1 and _extent(chain[1]) > lanes else []
    weights = [x.buffer.name for x in walk(chain[-1].body) if isinstance(x, Load)
               and x.buffer.scope == "constant" and x.buffer.rank == 3]
    return (Split(c, lanes, f"{c}o", f"{c}v"), Split(ow, pixels, f"{ow}o", f"{ow}i"),
            Reorder((f"{c}o", n, oh, f"{ow}o", kh, kw, f"{ow}i", f"{c}v")), *parallel,
            CacheWrite(out, f"{ow}o"), Unroll(kh), Unroll(kw), Unroll(f"{ow}i"),
            Vectorize(f"{c}v"), *[Pack(w, 0, lanes) for w in weights[:1]],
            *_tile_copies(out, 4, lanes))


def _innermost_store(chain) -> Store:
    store = chain[-1].body
    while isinstance(store, IfThen):
        store = store.then
    return store


def attention(kernel: Kernel, target: Target) -> tuple:
    """Batch loops (heads) on the pool; inside, each product a register-tiled GEMM on the
    calling thread, and the zero fills and softmax rows vectorized along the row."""
    chain = perfect_nest(kernel.body)
    stages = chain[-1].body if chain else kernel.body
    while isinstance(stages, Allocate):
        stages = stages.body
    one_thread = dataclasses.replace(target, cores=1)
    d: list = []
    for stage in stages.body if isinstance(stages, Seq) else (stages,):
        if _gemm_nest(perfect_nest(stage)) is None:
            d += _vectorize_inner_loops(stage, target.lanes()) if _is_float32(kernel) else []
            continue
        product = dataclasses.replace(kernel, body=stage, kind="matmul", prologue=None,
                                      epilogue=None)
        d += [x for x in matmul(product, one_thread) if not isinstance(x, Parallel)]
    axes = [_Axis(f.var.name, _extent(f), True) for f in chain]
    return tuple(d + _parallel_pick(axes, target, _body_work(kernel.body)))


HEURISTICS = {"elementwise": elementwise, "matmul": matmul, "conv": matmul,
              "depthwise": depthwise, "attention": attention}


def default_schedule(kernel: Kernel, target: Target) -> tuple:
    if target.gpu:
        return gpu_schedule(kernel, target)
    return HEURISTICS.get(kernel.kind, elementwise)(kernel, target)
