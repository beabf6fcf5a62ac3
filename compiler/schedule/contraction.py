"""GPU block tiles for contractions: a nest acc[P] = acc[P] + a * b (MatMul, Gemm, Conv,
ConvInteger lower to one) seen as a batch of GEMMs and run as a grid of blocks.

The loops P that index the accumulator split three ways: those only `a` reads are the tile's
rows (M), those only `b` reads its columns (N), the rest its batch; the other loops are the
reduction (K). A convolution is then an implicit GEMM: rows the output channels, columns the
output pixels, the reduction (input channel, kernel row, kernel column). Each block stages
`step` reduction values of its rows and columns in shared memory (zeros past the ends), then
each thread adds their products into its own registers; with two stages a step's global
loads are issued before the previous step's products. Phases are thread loops under the
block, separated by barriers: run one after another they compute exactly what the block's
threads compute at once, which is what the CPU-side check runs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ScheduleError
from ..loop.ir import (
    Allocate,
    Barrier,
    Binary,
    Buffer,
    Expr,
    Fma,
    For,
    IfThen,
    Load,
    Stmt,
    Store,
    Var,
    as_expr,
    as_int,
    cmp,
    const_int,
    seq,
)
from ..loop.simplify import simplify
from ..loop.templates import instantiate
from ..loop.visit import free_vars, perfect_nest, substitute, transform, walk
from .directives import TileContraction

THREADS = "threadIdx.x"
# The threads of a warp, which tensor-core operations take together (every NVIDIA GPU's).
WARP_LANES = 32


@dataclass(frozen=True)
class Contraction:
    """A nest as a batch of GEMMs: acc[index] = combine(acc, a * b)."""
    store: Store
    batch: tuple[For, ...]
    rows: tuple[For, ...]      # read by `a` alone
    cols: tuple[For, ...]      # read by `b` alone
    reduce: tuple[For, ...]
    a: Expr
    b: Expr

    def extent(self, part: str) -> int:
        return math.prod(as_int(loop.extent) for loop in getattr(self, part))


def _product(value: Expr, acc: Load) -> tuple[Expr, Expr] | None:
    """(x, y) when value is acc + x * y, x * y + acc or fma(x, y, acc)."""
    match value:
        case Fma(a=x, b=y, c=c) if c == acc:
            return x, y
        case Binary(op="add", a=p, b=q):
            other = q if p == acc else p if q == acc else None
            if isinstance(other, Binary) and other.op == "mul":
                return other.a, other.b
    return None


def match_contraction(nest: For, accumulated: str) -> Contraction | None:
    """The nest as a contraction into the buffer `accumulated`, or None."""
    chain = perfect_nest(nest)
    store = chain[-1].body if chain else None
    if not isinstance(store, Store) or store.buffer.name != accumulated or \
            any(as_int(loop.extent) is None or loop.kind != "serial" for loop in chain):
        return None
    operands = _product(store.value, Load(store.buffer, store.index))
    indexed = _vars_of(store.index)
    outer = [loop for loop in chain if loop.var in indexed]
    if operands is None or chain[:len(outer)] != outer or len(outer) == len(chain):
        return None
    x, y = operands
    if any(isinstance(n, Load) and n.buffer.name == accumulated
           for operand in (x, y) for n in walk(operand)):
        return None
    in_x, in_y = free_vars(x), free_vars(y)
    only_x = tuple(loop for loop in outer if loop.var in in_x and loop.var not in in_y)
    only_y = tuple(loop for loop in outer if loop.var in in_y and loop.var not in in_x)
    batch = tuple(loop for loop in outer if loop not in only_x and loop not in only_y)
    # columns: the side the innermost output loop walks (consecutive threads store next to
    # each other)
    if only_x and only_x[-1] is outer[-1]:
        x, y, only_x, only_y = y, x, only_y, only_x
    if not only_x or not only_y:
        return None
    return Contraction(store, batch, only_x, only_y, tuple(chain[len(outer):]), x, y)


def _vars_of(exprs) -> set[Var]:
    return set().union(*(free_vars(e) for e in exprs))


def _decode(fused: Expr, loops: tuple[For, ...]) -> dict[Var, Expr]:
    """Each loop's variable from the index of their fused space (the last fastest)."""
    out: dict[Var, Expr] = {}
    stride = 1
    for position in range(len(loops) - 1, -1, -1):
        loop = loops[position]
        value = Binary("floordiv", fused, const_int(stride)) if stride > 1 else fused
        if position > 0:
            value = Binary("mod", value, loop.extent)
        out[loop.var] = simplify(value)
        stride *= as_int(loop.extent)
    return out


def _all(*conds: Expr) -> Expr | None:
    present = [c for c in conds if c is not None]
    if not present:
        return None
    out = present[0]
    for c in present[1:]:
        out = Binary("and", out, c)
    return out


def _below(value: Expr, limit: int, tile: int) -> Expr | None:
    """value < limit, unless the tiles divide the limit (it always is)."""
    return None if limit % tile == 0 else cmp("lt", value, limit)


@dataclass(frozen=True)
class _Plan:
    c: Contraction
    d: TileContraction
    name: str                        # prefix of the tile's loops and buffers

    @property
    def threads(self) -> int:
        """A thread per `thread` tile, or with tensor cores a warp."""
        (bm, bn), (tm, tn) = self.d.block, self.d.thread
        return (bm // tm) * (bn // tn) * (WARP_LANES if self.d.mma else 1)

    def var(self, suffix: str) -> Var:
        return Var(f"{self.name}_{suffix}")


@dataclass(frozen=True)
class _Side:
    """One operand's view of the tile: `a` over the rows, `b` over the columns."""
    operand: Expr
    loops: tuple[For, ...]       # the tile dimension's loops (rows or columns)
    extent: int                  # their product
    width: int                   # the block tile along them
    block: Var                   # the block index along them
    shared: Buffer               # the staged values, stages x step x width


class _Tile:
    """Builds the tiled statement of one contraction (see the module's description)."""

    def __init__(self, plan: _Plan, prologue, epilogue):
        self.p, self.c, self.d = plan, plan.c, plan.d
        self.prologue, self.epilogue = prologue, epilogue
        self.m, self.n, self.k = (self.c.extent(part) for part in ("rows", "cols", "reduce"))
        self.steps = -(-self.k // self.d.step)
        (bm, bn), acc = self.d.block, self.c.store.buffer
        tm, tn = self.d.thread
        self.acc = Buffer(f"{acc.name}_tile_acc", acc.dtype,
                          (const_int(plan.threads), const_int(tm * tn)), "thread")
        self.batch_var, self.row_block, self.col_block = (plan.var(s) for s in ("z", "y", "x"))
        size = self.d.stages * self.d.step
        self.sides = {
            name: _Side(operand, loops, extent, width, block,
                        Buffer(f"{acc.name}_tile_{name}", self.staged_dtype(operand),
                               (const_int(size * width),), "shared"))
            for name, operand, loops, extent, width, block in (
                ("a", self.c.a, self.c.rows, self.m, bm, self.row_block),
                ("b", self.c.b, self.c.cols, self.n, bn, self.col_block))}

    def staged_dtype(self, operand: Expr) -> str:
        return operand.dtype

    def staged_value(self, value: Expr) -> Expr:
        """An operand's value as shared memory holds it."""
        return value

    def staged_zero(self, dtype: str) -> Expr:
        """What shared memory holds past the ends of the rows, columns or reduction."""
        return as_expr(0, dtype)

    # -- where a thread's outputs are --------------------------------------------------------
    def outputs(self, t: Var, body) -> Stmt:
        """body(register, row, col, in_range) over the thread's outputs (unrolled)."""
        (bm, bn), (tm, tn) = self.d.block, self.d.thread
        ty, tx = bm // tm, bn // tn
        i, j = Var(f"{t.name}_i"), Var(f"{t.name}_j")
        # threads side by side take neighbouring columns: their stores coalesce
        row = simplify(self.row_block * bm + Binary("floordiv", t, const_int(tx)) + i * ty)
        col = simplify(self.col_block * bn + Binary("mod", t, const_int(tx)) + j * tx)
        in_range = _all(_below(row, self.m, bm), _below(col, self.n, bn))
        inner = body(i * tn + j, row, col, in_range)
        return For(i, const_int(tm), For(j, const_int(tn), inner, "unroll"), "unroll")

    def output_index(self, row: Expr, col: Expr) -> tuple[Expr, ...]:
        mapping = {**_decode(row, self.c.rows), **_decode(col, self.c.cols),
                   **_decode(self.batch_var, self.c.batch)}
        return tuple(simplify(substitute(i, mapping)) for i in self.c.store.index)

    def start(self, t: Var) -> Stmt:
        def init(register, row, col, in_range):
            value = instantiate(self.prologue, self.output_index(row, col)).value
            store = Store(self.acc, (t, register), value)
            return IfThen(in_range, store) if in_range is not None else store
        return self.outputs(t, init)

    def finish(self, t: Var) -> Stmt:
        def out(register, row, col, in_range):
            return self.store_output(row, col, in_range, Load(self.acc, (t, register)))
        return self.outputs(t, out)

    def store_output(self, row: Expr, col: Expr, in_range: Expr | None, value: Expr) -> Stmt:
        """The output at (row, col) of the GEMM, through the kernel's epilogue."""
        index = self.output_index(row, col)
        store = simplify(instantiate(self.epilogue, index, self.c.store.buffer.name, value)) \
            if self.epilogue is not None else Store(self.c.store.buffer, index, value)
        return IfThen(in_range, store) if in_range is not None else store

    # -- staging -----------------------------------------------------------------------------
    def _element(self, side: str, e: Expr, step: Expr) -> tuple[Expr, Expr, Expr | None]:
        """(value, shared offset within a stage, in-range condition) of a thread's element e
        of the step's `side` tile (zeros past the ends of its rows/columns or reduction)."""
        s = self.sides[side]
        width = s.width
        # neighbouring threads read neighbouring addresses: walk the tile along the
        # operand's innermost (fastest in memory) axis
        last = _last_index(s.operand)
        along_k = last is not None and self.c.reduce[-1].var in free_vars(last)
        if along_k:
            kk, mm = Binary("mod", e, const_int(self.d.step)), \
                Binary("floordiv", e, const_int(self.d.step))
        else:
            mm, kk = Binary("mod", e, const_int(width)), Binary("floordiv", e, const_int(width))
        outer, k = s.block * width + mm, step * self.d.step + kk
        mapping = {**_decode(simplify(outer), s.loops), **_decode(simplify(k), self.c.reduce),
                   **_decode(self.batch_var, self.c.batch)}
        value = self.staged_value(simplify(substitute(s.operand, mapping)))
        cond = _all(_below(simplify(outer), s.extent, width), _below(simplify(k), self.k,
                                                                      self.d.step))
        return value, simplify(kk * width + mm), cond

    def per_thread(self, side: str) -> int:
        return -(-(self.sides[side].width * self.d.step) // self.p.threads)

    def _per_element(self, t: Var, body) -> Stmt:
        """body(side, e, slot) over the thread's elements of both tiles, e = slot*threads + t
        (the a tile's, then the b tile's)."""
        parts = []
        for side in ("a", "b"):
            total = self.sides[side].width * self.d.step
            slot = Var(f"{t.name}_{side}")
            e = simplify(slot * self.p.threads + t)
            inner = body(side, e, slot)
            if total % self.p.threads:
                inner = IfThen(cmp("lt", e, total), inner)
            parts.append(For(slot, const_int(self.per_thread(side)), inner, "unroll"))
        return seq(*parts)

    def _stage_offset(self, side: str, stage: Expr) -> Expr:
        return stage * (self.d.step * self.sides[side].width)

    def _staged(self, side: str, stage: Expr, *offset: Expr) -> tuple[Buffer, tuple]:
        """Where an element at the sum of `offset` within a stage sits in shared memory."""
        index = self._stage_offset(side, stage)
        for term in offset:
            index = index + term
        return self.sides[side].shared, (simplify(index),)

    def load_direct(self, t: Var, step: Expr, stage: Expr) -> Stmt:
        """The step's tiles from global into shared memory."""
        def put(side, e, slot):
            value, offset, cond = self._element(side, e, step)
            return self._guarded_store(*self._staged(side, stage, offset), value, cond)
        return self._per_element(t, put)

    def fetch(self, t: Var, step: Expr, registers: dict) -> Stmt:
        """The step's elements into the thread's registers (global loads in flight)."""
        def put(side, e, slot):
            value, _, cond = self._element(side, e, step)
            return self._guarded_store(*_register(registers[side], t, slot), value, cond)
        return self._per_element(t, put)

    def deposit(self, t: Var, step: Expr, stage: Expr, registers: dict) -> Stmt:
        """The registers fetch filled into the stage."""
        def put(side, e, slot):
            _, offset, _ = self._element(side, e, step)
            return Store(*self._staged(side, stage, offset),
                         Load(*_register(registers[side], t, slot)))
        return self._per_element(t, put)

    def _guarded_store(self, buffer: Buffer, index, value: Expr, cond: Expr | None) -> Stmt:
        store = Store(buffer, index, value)
        if cond is None:
            return store
        return IfThen(cond, store, Store(buffer, index, self.staged_zero(value.dtype)))

    def staging_registers(self, scope: str) -> dict[str, Buffer]:
        """Each operand's elements a thread carries from global to shared memory: its own
        array ("local") or its row of one per block ("thread")."""
        rows = (const_int(self.p.threads),) if scope == "thread" else ()
        return {side: Buffer(f"{s.shared.name}_next", s.shared.dtype,
                             rows + (const_int(self.per_thread(side)),), scope)
                for side, s in self.sides.items()}

    def launch(self, block: Stmt, *buffers: Buffer) -> Stmt:
        """The block's statement with its buffers (the last outermost) on a grid of column
        tiles (x), row tiles (y) and the batch (z)."""
        d = self.d
        block = allocated(block, *buffers)
        rows, cols = -(-self.m // d.block[0]), -(-self.n // d.block[1])
        out: Stmt = For(self.col_block, const_int(cols), block, "blockIdx.x")
        out = For(self.row_block, const_int(rows), out, "blockIdx.y")
        return For(self.batch_var, const_int(self.c.extent("batch")), out, "blockIdx.z")

    # -- products ----------------------------------------------------------------------------
    def products(self, t: Var, stage: Expr) -> Stmt:
        (bm, bn), (tm, tn) = self.d.block, self.d.thread
        ty, tx = bm // tm, bn // tn
        kk = Var(f"{t.name}_k")
        i, j = Var(f"{t.name}_pi"), Var(f"{t.name}_pj")
        a = Load(*self._staged("a", stage, kk * bm, Binary("floordiv", t, const_int(tx)), i * ty))
        b = Load(*self._staged("b", stage, kk * bn, Binary("mod", t, const_int(tx)), j * tx))
        register = (t, simplify(i * tn + j))
        acc_load = Load(self.acc, register)
        store = self.c.store
        value = _combine(store.value, Load(store.buffer, store.index), acc_load, self.c, a, b)
        update = Store(self.acc, register, value)
        return For(kk, const_int(self.d.step),
                   For(i, const_int(tm), For(j, const_int(tn), update, "unroll"), "unroll"))


def _last_index(operand: Expr) -> Expr | None:
    loads = [n for n in walk(operand) if isinstance(n, Load)]
    return loads[0].index[-1] if loads else None


def _register(buffer: Buffer, t: Var, slot: Expr) -> tuple[Buffer, tuple]:
    """Element `slot` of a thread's staging registers: its own array, or its row."""
    return buffer, ((t, slot) if buffer.scope == "thread" else (slot,))


def _combine(value: Expr, acc: Load, register: Load, c: Contraction, a: Expr, b: Expr) -> Expr:
    """The body's update with the tile's operands: the same operations, in the same order."""
    def swap(e):
        return a if e == c.a else b if e == c.b else register if e == acc else e
    match value:
        case Fma(a=x, b=y, c=z):
            return Fma(swap(x), swap(y), swap(z))
        case Binary(op="add", a=p, b=q):
            p, q = (Binary("mul", swap(n.a), swap(n.b)) if isinstance(n, Binary) and
                    n.op == "mul" else swap(n) for n in (p, q))
            return Binary("add", p, q)
    raise ScheduleError("tile: the update is not a sum of products")


def matched_nest(stmt: Stmt, d: TileContraction, prologue) -> tuple[Contraction, For]:
    """The contraction the directive names, and its nest."""
    nest = next((n for n in walk(stmt) if isinstance(n, For) and n.var.name == d.loop), None)
    if nest is None:
        raise ScheduleError(f"tile {d.loop!r}: loop not found")
    if prologue is None:
        raise ScheduleError(f"tile {d.loop!r}: the kernel has no accumulator template")
    c = match_contraction(nest, prologue.buffer.name)
    if c is None:
        raise ScheduleError(f"tile {d.loop!r}: not a contraction acc[..] += a * b into "
                            f"{prologue.buffer.name!r}")
    return c, nest


def tile_contraction(stmt: Stmt, d: TileContraction, prologue, epilogue) -> Stmt:
    """The primitive behind the TileContraction directive (see the module's description)."""
    c, nest = matched_nest(stmt, d, prologue)
    _check(d)
    tile = _Tile(_Plan(c, d, f"{d.loop}_tile"), prologue, epilogue)
    return replace_nest(stmt, nest, _tiled(tile))


def _check(d: TileContraction) -> None:
    (bm, bn), (tm, tn) = d.block, d.thread
    if min(bm, bn, tm, tn, d.step) < 1 or bm % tm or bn % tn:
        raise ScheduleError(f"tile {d.loop!r}: thread tile {d.thread} must divide block "
                            f"{d.block}")
    check_stages(d)


def check_stages(d: TileContraction) -> None:
    if d.stages not in (1, 2):
        raise ScheduleError(f"tile {d.loop!r}: {d.stages} stages (1 or 2)")


def allocated(stmt: Stmt, *buffers: Buffer) -> Stmt:
    """stmt with the buffers allocated around it, the last outermost."""
    for buffer in buffers:
        stmt = Allocate(buffer, stmt)
    return stmt


def replace_nest(stmt: Stmt, old: For, new: Stmt) -> Stmt:
    return transform(stmt, lambda n: new if n is old else n)


def _tiled(tile: _Tile) -> Stmt:
    """Phases: start the registers and stage step 0; every step but the last (its products,
    the next step's staging); the last step's products and the results."""
    p, d = tile.p, tile.d
    threads = const_int(p.threads)
    t_start, t_end = p.var("t0"), p.var("t2")
    first = seq(tile.start(t_start), tile.load_direct(t_start, const_int(0), const_int(0)))
    steps = _single_stage(tile, p.var("t1"), p.var("t3"), p.var("k")) if d.stages == 1 \
        else _double_stage(tile, p.var("t1"), p.var("k"))
    last = const_int((tile.steps - 1) % d.stages)
    block = seq(For(t_start, threads, first, THREADS), Barrier(), steps,
                For(t_end, threads, seq(tile.products(t_end, last), tile.finish(t_end)),
                    THREADS))
    return tile.launch(block, tile.acc, tile.sides["b"].shared, tile.sides["a"].shared)


def _single_stage(tile: _Tile, t_step: Var, t_load: Var, step: Var) -> Stmt | None:
    """Each step but the last: its products, barrier, the next step's tiles, barrier."""
    if tile.steps == 1:
        return None
    threads, nxt = const_int(tile.p.threads), simplify(Binary("add", step, const_int(1)))
    return For(step, const_int(tile.steps - 1), seq(
        For(t_step, threads, tile.products(t_step, const_int(0)), THREADS), Barrier(),
        For(t_load, threads, tile.load_direct(t_load, nxt, const_int(0)), THREADS),
        Barrier()))


def _double_stage(tile: _Tile, t_step: Var, step: Var) -> Stmt | None:
    """Each step but the last: the next step's elements into registers, this step's
    products, the registers into the other stage; one barrier."""
    if tile.steps == 1:
        return None
    registers = tile.staging_registers("local")
    nxt = simplify(Binary("add", step, const_int(1)))
    here, there = Binary("mod", step, const_int(2)), Binary("mod", nxt, const_int(2))
    work = allocated(seq(tile.fetch(t_step, nxt, registers), tile.products(t_step, here),
                         tile.deposit(t_step, nxt, there, registers)),
                     registers["b"], registers["a"])
    return For(step, const_int(tile.steps - 1),
               seq(For(t_step, const_int(tile.p.threads), work, THREADS), Barrier()))
