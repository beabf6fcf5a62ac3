"""Tensor-core block tiles: a contraction's block tile (contraction.py) whose products run as
warp-level MMAs on the tensor cores.

A block is warps (threadIdx.y) of 32 lanes (threadIdx.x). Staging is the CUDA-core tile's,
each value rounded to the MMA's operand type on its way into shared memory: float16 or
bfloat16 (to nearest even), or TF32 (float32 with 10 mantissa bits, to nearest, ties away from
zero: what cvt.rna.tf32.f32 does). Each warp owns a `thread` tile of outputs, held as m x n
fragments of float32 accumulators that start at zero; for each k values of a step it loads
each operand fragment it needs once, for a row or a column of them. After the last step the
warps store them into a shared tile of the block's outputs; from there each lane adds an
output's starting value (the kernel's prologue) and stores it through the epilogue. Each Mma
statement carries the scalar loops it computes: the interpreter and the CPU printers run
those, so the CPU-side check covers every index of the tile the GPU's calls are given.
"""
from __future__ import annotations

from ..errors import ScheduleError
from ..loop.ir import (
    Barrier,
    Binary,
    Buffer,
    Cast,
    Const,
    Expr,
    For,
    Load,
    Mma,
    Stmt,
    Store,
    Unary,
    Var,
    const_int,
    seq,
)
from ..loop.simplify import simplify
from ..loop.templates import instantiate
from ..loop.visit import substitute
from .contraction import (
    WARP_LANES,
    Contraction,
    _all,
    _below,
    _Plan,
    _Tile,
    allocated,
    check_stages,
    matched_nest,
    replace_nest,
)
from .directives import TileContraction

WARPS, LANES = "threadIdx.y", "threadIdx.x"

# The type shared memory holds each operand type in (TF32 values are float32 bit patterns).
STAGED = {"tfloat32": "float32", "float16": "float16", "bfloat16": "bfloat16"}


def round_tf32(x: Expr) -> Expr:
    """x (float32) rounded to TF32 (runtime_c/onnxc_scalar.h: onnxc_round_tf32)."""
    return Unary("round_tf32", x)


class _MmaTile(_Tile):
    """The tile's pieces for tensor cores (the staging is _Tile's)."""

    def __init__(self, plan: _Plan, prologue, epilogue):
        super().__init__(plan, prologue, epilogue)
        d = self.d
        (bm, bn), (wm, wn) = d.block, d.thread
        self.m_mma, self.n_mma, self.k_mma = d.mma_shape
        self.warps_x = bn // wn
        self.frags = (wm // self.m_mma, wn // self.n_mma)
        warps = (bm // wm) * self.warps_x
        acc = self.c.store.buffer.name
        (fm, fn), (m, n, k) = self.frags, d.mma_shape
        self.fragment, self.a_frag, self.b_frag = (
            Buffer(f"{acc}_tile_{name}", "float32",
                   (const_int(warps), const_int(count), const_int(size)), "fragment")
            for name, count, size in (("frag", fm * fn, m * n), ("fa", fm, m * k),
                                      ("fb", fn, k * n)))
        self.out = Buffer(f"{acc}_tile_out", "float32", (const_int(bm * bn),), "shared")
        self.warp, self.lane = plan.var("w"), plan.var("l")

    def staged_dtype(self, operand: Expr) -> str:
        return STAGED[self.d.mma]

    def staged_value(self, value: Expr) -> Expr:
        if self.d.mma == "tfloat32":
            return round_tf32(value)
        if isinstance(value, Cast) and value.a.dtype == self.d.mma:
            return value.a            # already of that type (a model input, widened)
        return Cast(self.d.mma, value)

    def staged_zero(self, dtype: str) -> Expr:
        zero = Const(0.0, "float32")
        return zero if self.d.mma == "tfloat32" else self.staged_value(zero)   # TF32 has 0

    # -- phases ------------------------------------------------------------------------------
    def per_warp(self, *stmts: Stmt | None) -> Stmt:
        return For(self.warp, const_int(self.p.threads // WARP_LANES), seq(*stmts), WARPS)

    def per_lane(self, staging) -> Stmt:
        """staging(t), a thread's part with t its index in the block, for each lane."""
        t = self.p.var("t")
        body = substitute(staging(t), {t: simplify(self.warp * WARP_LANES + self.lane)})
        return For(self.lane, const_int(WARP_LANES), body, LANES)

    def warp_row(self, i: Expr) -> Expr:
        """Where the warp's fragment row i starts among the block tile's rows."""
        warp_y = Binary("floordiv", self.warp, const_int(self.warps_x))
        return simplify(warp_y * self.d.thread[0] + i * self.m_mma)

    def warp_col(self, j: Expr) -> Expr:
        warp_x = Binary("mod", self.warp, const_int(self.warps_x))
        return simplify(warp_x * self.d.thread[1] + j * self.n_mma)

    def each_fragment(self, body) -> Stmt:
        """body(slot, row, col) over the warp's accumulator fragments; row and col: where the
        fragment starts in the block's tile."""
        fm, fn = self.frags
        i, j = self.p.var("fi"), self.p.var("fj")
        inner = body(simplify(i * fn + j), self.warp_row(i), self.warp_col(j))
        return For(i, const_int(fm), For(j, const_int(fn), inner, "unroll"), "unroll")

    def _frag(self, slot: Expr, e: Expr, fragment: Buffer | None = None) -> tuple[Buffer, tuple]:
        return fragment or self.fragment, (self.warp, slot, e)

    def fill(self) -> Stmt:
        def zero(slot, row, col):
            e = self.p.var("e")
            body = For(e, const_int(self.m_mma * self.n_mma),
                       Store(*self._frag(slot, e), Const(0.0, "float32")))
            return self._mma("fill", self.fragment, slot, (), (), (), body)
        return self.each_fragment(zero)

    def products(self, stage: Expr) -> Stmt:
        """The stage's products into the warp's accumulators, k values a step: each operand
        fragment is loaded once and serves its row (or column) of accumulators."""
        (bm, bn), step = self.d.block, self.p.var("s")
        (fm, fn), k = self.frags, self.k_mma
        i, j = self.p.var("fi"), self.p.var("fj")
        a_at = simplify(self._stage_offset("a", stage) + step * (k * bm) + self.warp_row(i))
        b_at = simplify(self._stage_offset("b", stage) + step * (k * bn) + self.warp_col(j))
        loads = seq(
            For(i, const_int(fm), self._load("load_a", self.a_frag, i, (self.m_mma, k), "a",
                                             a_at, bm, "col_major"), "unroll"),
            For(j, const_int(fn), self._load("load_b", self.b_frag, j, (k, self.n_mma), "b",
                                             b_at, bn, "row_major"), "unroll"))
        products = For(i, const_int(fm), For(j, const_int(fn), self._product(i, j), "unroll"),
                       "unroll")
        return For(step, const_int(self.d.step // k), seq(loads, products), "unroll")

    def _load(self, op: str, fragment: Buffer, slot: Var, shape: tuple[int, int], side: str,
              at: Expr, ld: int, layout: str) -> Mma:
        """An operand fragment (rows x cols) from the staged tile: element (r, c) at
        at + r * ld + c (row_major) or at + c * ld + r (col_major)."""
        r, c = self.p.var("r"), self.p.var("c")
        offset = r * ld + c if layout == "row_major" else c * ld + r
        source = self.sides[side].shared
        value = self._widened(Load(source, (simplify(at + offset),)))
        body = For(r, const_int(shape[0]), For(c, const_int(shape[1]), Store(
            *self._frag(slot, simplify(r * shape[1] + c), fragment), value)))
        return self._mma(op, fragment, slot, (source,), (at, const_int(ld)), (layout,), body)

    def _product(self, i: Var, j: Var) -> Mma:
        """Accumulator (i, j) += operand fragment a[i] @ b[j]."""
        (m, n, k), slot = self.d.mma_shape, simplify(i * self.frags[1] + j)
        r, c, q = (self.p.var(name) for name in ("r", "c", "q"))
        acc = self._frag(slot, simplify(r * n + c))
        value = Load(*self._frag(i, simplify(r * k + q), self.a_frag)) * \
            Load(*self._frag(j, simplify(q * n + c), self.b_frag))
        body = For(r, const_int(m), For(c, const_int(n), For(
            q, const_int(k), Store(*acc, Load(*acc) + value))))
        return self._mma("mma", self.fragment, slot, (self.a_frag, self.b_frag), (i, j), (),
                         body)

    def store(self) -> Stmt:
        """The warp's fragments into the block's output tile (row-major)."""
        bn = self.d.block[1]

        def put(slot, row, col):
            at = simplify(row * bn + col)
            i, j = self.p.var("i"), self.p.var("j")
            body = For(i, const_int(self.m_mma), For(j, const_int(self.n_mma), Store(
                self.out, (simplify(at + i * bn + j),),
                Load(*self._frag(slot, simplify(i * self.n_mma + j))))))
            return self._mma("store", self.fragment, slot, (self.out,), (at, const_int(bn)),
                             ("row_major",), body)
        return self.each_fragment(put)

    def results(self, t: Var) -> Stmt:
        """Thread t's outputs: their starting value plus the products, through the
        epilogue; neighbouring threads take neighbouring columns."""
        (bm, bn), threads = self.d.block, self.p.threads
        slot = Var(f"{t.name}_o")
        e = simplify(slot * threads + t)
        row = simplify(self.row_block * bm + Binary("floordiv", e, const_int(bn)))
        col = simplify(self.col_block * bn + Binary("mod", e, const_int(bn)))
        start = instantiate(self.prologue, self.output_index(row, col)).value
        store = self.store_output(row, col, _all(_below(row, self.m, bm),
                                                 _below(col, self.n, bn)),
                                  Binary("add", start, Load(self.out, (e,))))
        return For(slot, const_int(-(-(bm * bn) // threads)), store, "unroll")

    def _widened(self, value: Load) -> Expr:
        return value if value.dtype == "float32" else Cast("float32", value)

    def _mma(self, op, fragment, slot, sources, operands, layouts, body) -> Mma:
        return Mma(op, fragment, slot, self.d.mma_shape, self.d.mma, tuple(sources),
                   tuple(operands), tuple(layouts), body)


def float32_products(c: Contraction) -> bool:
    """Whether the contraction adds float32 products into float32: what the tensor cores
    take here (16-bit operands are widened before scheduling)."""
    return {c.a.dtype, c.b.dtype, c.store.buffer.dtype} == {"float32"}


def tile_with_mma(stmt: Stmt, d: TileContraction, prologue, epilogue) -> Stmt:
    """The TileContraction directive with `mma` set (see the module's description)."""
    c, nest = matched_nest(stmt, d, prologue)
    _check(d, c)
    return replace_nest(stmt, nest, _tiled(_MmaTile(_Plan(c, d, f"{d.loop}_tile"), prologue,
                                                     epilogue)))


def _check(d: TileContraction, c) -> None:
    (bm, bn), (wm, wn) = d.block, d.thread
    if d.mma not in STAGED or len(d.mma_shape) != 3:
        raise ScheduleError(f"tile {d.loop!r}: tensor-core type {d.mma!r} with shape "
                            f"{d.mma_shape} (one of {', '.join(STAGED)}, and (m, n, k))")
    m, n, k = d.mma_shape
    if min(bm, bn, wm, wn, d.step, m, n, k) < 1 or bm % wm or bn % wn or wm % m or wn % n \
            or d.step % k:
        raise ScheduleError(f"tile {d.loop!r}: warp tile {d.thread} must divide block "
                            f"{d.block} and be made of {m} x {n} MMAs; step {d.step} of "
                            f"{k}-value MMAs")
    check_stages(d)
    if not float32_products(c):
        raise ScheduleError(f"tile {d.loop!r}: tensor cores here take float32 products into "
                            f"float32 (not {c.a.dtype} x {c.b.dtype})")


def _tiled(tile: _MmaTile) -> Stmt:
    """Phases: zero the fragments and stage step 0; each step but the last (its products,
    the next step's staging); the last step's products into the output tile; the results."""
    p, d = tile.p, tile.d
    first = tile.per_warp(tile.fill(), tile.per_lane(
        lambda t: tile.load_direct(t, const_int(0), const_int(0))))
    last = const_int((tile.steps - 1) % d.stages)
    block = seq(first, Barrier(), _steps(tile, p.var("k")),
                tile.per_warp(tile.products(last), tile.store()), Barrier(),
                tile.per_warp(tile.per_lane(tile.results)))
    return tile.launch(block, tile.b_frag, tile.a_frag, tile.fragment, tile.out,
                       tile.sides["b"].shared, tile.sides["a"].shared)


def _steps(tile: _MmaTile, step: Var) -> Stmt | None:
    """Each step but the last. Two stages: the next step's elements into the lanes'
    registers, this step's products, the registers into the other stage, one barrier. One:
    the products, a barrier, the next step's staging, a barrier."""
    if tile.steps == 1:
        return None
    nxt = simplify(Binary("add", step, const_int(1)))
    if tile.d.stages == 1:
        work = seq(tile.per_warp(tile.products(const_int(0))), Barrier(), tile.per_warp(
            tile.per_lane(lambda t: tile.load_direct(t, nxt, const_int(0)))), Barrier())
        return For(step, const_int(tile.steps - 1), work)
    registers = tile.staging_registers("thread")
    here, there = Binary("mod", step, const_int(2)), Binary("mod", nxt, const_int(2))
    work = allocated(seq(tile.per_warp(
        tile.per_lane(lambda t: tile.fetch(t, nxt, registers)), tile.products(here),
        tile.per_lane(lambda t: tile.deposit(t, nxt, there, registers))), Barrier()),
        registers["b"], registers["a"])
    return For(step, const_int(tile.steps - 1), work)
