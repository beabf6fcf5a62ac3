"""Sampling at computed positions: GridSample, AffineGrid and Col2Im (RoiAlign: ops/roi.py).

GridSample reads its sampling positions from run-time data. Per output position the kernel
turns the grid values into, per spatial axis, a few taps (an input index and a weight) kept in
small kernel-local arrays; then, for every channel, it sums the taps' weighted pixels. Every
tap index is clamped into its axis before it is loaded, and a tap outside the input (zeros
padding) gets weight 0 instead of a guard, so the sum stays straight-line code. Float
coordinates are clamped (NaN included) to a few pixels around the input before they become
integers: a float-to-int conversion out of range is undefined in C. Cubic sampling pads its
taps, not its coordinate, as torch and onnxruntime do (onnx's reference clamps a border
coordinate first, which differs near the border).
"""
from __future__ import annotations

import dataclasses
import math

from ..loop.ir import (
    Allocate,
    Binary,
    Buffer,
    Cast,
    Const,
    IfThen,
    Load,
    Select,
    Store,
    Unary,
    cmp,
    const_int,
    loops,
    seq,
)
from .common import view
from .registry import register
from .runtime_values import all_of, check_equal, values_of
from .shape import const_input, fail, int_list, scalar_const

_MODES = {"linear": "linear", "bilinear": "linear", "nearest": "nearest", "cubic": "cubic",
          "bicubic": "cubic"}
_PADDINGS = ("zeros", "border", "reflection")
_TAP_OFFSETS = {"nearest": (0,), "linear": (0, 1), "cubic": (-1, 0, 1, 2)}
CUBIC_A = -0.75    # GridSample's cubic convolution constant (no attribute sets it)
# How far past the input a coordinate may stay before its conversion to int: every tap of a
# farther one lies outside the input too.
MARGIN = 4


def local(ctx, hint: str, dtype: str, *shape) -> Buffer:
    """A small kernel-local array (one per thread running the loop that allocates it)."""
    buf = ctx.builder.new_buffer(f"{ctx.node.name}_{hint}", dtype, shape, "l_")
    return dataclasses.replace(buf, scope="local")


def compute_dtype(dtype: str) -> str:
    """Coordinates and weights compute in float64 for double data, float32 otherwise."""
    return "float64" if dtype == "float64" else "float32"


def as_dtype(dtype: str, e):
    return e if e.dtype == dtype else Cast(dtype, e)


def spatial_names(rank: int) -> list[str]:
    return {1: ["w"], 2: ["h", "w"], 3: ["d", "h", "w"]}.get(rank) or \
        [f"s{d}" for d in range(rank)]


def clamp_float(x, lo: float, hi: float):
    """x limited to [lo, hi] by comparisons, so that NaN becomes lo (max/min pass NaN on)."""
    x = Select(cmp("ge", x, lo), x, Const(float(lo), x.dtype))
    return Select(cmp("le", x, hi), x, Const(float(hi), x.dtype))


def clamp_index(i, n: int):
    return Binary("max", Binary("min", i, const_int(n - 1)), const_int(0))


def _reflect(x, lo: float, hi: float):
    """x mirrored into [lo, hi] about the border it crossed, as many times as it takes (as
    onnxruntime's GsReflect), written as a triangle wave of period 2 (hi - lo)."""
    dt, span = x.dtype, hi - lo
    if span <= 0:                       # align_corners over one pixel: a single position
        return Const(float(lo), dt)
    t = x + (-lo) if lo < 0 else x - lo
    phase = t - Unary("floor", t / (2.0 * span)) * (2.0 * span)     # in [0, 2 span)
    mirrored = Const(float(hi), dt) - Unary("abs", phase - span)
    inside = Binary("and", cmp("ge", x, lo), cmp("le", x, hi))
    return Select(inside, x, mirrored)       # exact where no reflection is needed


def _cubic_weights(f):
    """Keys' cubic convolution weights of the taps at -1, 0, 1, 2 for a fraction f in [0, 1)."""
    a = CUBIC_A
    far = lambda d: ((d * a - 5 * a) * d + 8 * a) * d - 4 * a          # noqa: E731
    near = lambda d: ((d * (a + 2) - (a + 3)) * d) * d + 1.0           # noqa: E731
    return [far(f + 1.0), near(f), near(1.0 - f), far(2.0 - f)]


@dataclasses.dataclass(frozen=True)
class Sampler:
    mode: str
    padding: str
    align: bool

    def bounds(self, size: int) -> tuple[float, float]:
        return (0.0, size - 1.0) if self.align else (-0.5, size - 0.5)

    def position(self, g, size: int):
        """Grid value g in [-1, 1] -> coordinate along an axis of `size` pixels (as
        onnxruntime's GsDenormalize; nearest rounds it half to even)."""
        if self.align:
            x = (g + 1.0) / 2.0 * float(size - 1)
        else:
            x = ((g + 1.0) * float(size) - 1.0) / 2.0
        return Unary("round", x) if self.mode == "nearest" else x

    def outside(self, x, size: int):
        """The padding rule for a coordinate past the borders. Cubic sampling leaves the
        coordinate alone and pads each tap (as torch and onnxruntime; onnx's reference pads
        the coordinate first); under reflection it only moves by whole periods of the mirror,
        which keeps every tap's reflection and brings the coordinate near the input."""
        lo, hi = self.bounds(size)
        if self.mode == "cubic":
            if self.padding != "reflection" or hi <= lo:
                return x
            period = 2.0 * (hi - lo)
            return x - Unary("floor", (x - lo) / period) * period
        if self.padding == "border":       # clamped to the pixel centres, as the reference
            return Select(cmp("lt", x, lo), Const(0.0, x.dtype),
                          Select(cmp("gt", x, hi), Const(size - 1.0, x.dtype), x))
        if self.padding == "reflection":
            return _reflect(x, lo, hi)
        return x

    def limits(self, size: int) -> tuple[float, float]:
        """Where a coordinate may lie after `outside` without changing the taps' values."""
        lo, hi = self.bounds(size)
        if self.mode == "cubic" and self.padding == "reflection" and hi > lo:
            return lo - 1.0, lo + 2.0 * (hi - lo) + 1.0
        return -MARGIN, size - 1.0 + MARGIN

    def taps(self, p, frac):
        """(index, weight or None) of each tap at coordinate p, of fraction frac."""
        if self.mode == "nearest":
            return [(Cast("int64", p), None)]
        i0 = Cast("int64", Unary("floor", p))
        weights = [1.0 - frac, frac] if self.mode == "linear" else _cubic_weights(frac)
        return [(i0 + k, w) for k, w in zip(_TAP_OFFSETS[self.mode], weights, strict=True)]

    def valid(self, i, size: int):
        """Where a tap of raw index i has weight: inside the input (zeros padding)."""
        if self.padding == "zeros":
            return Binary("and", cmp("ge", i, 0), cmp("lt", i, size))
        return None

    def index_steps(self, size: int, cdt: str) -> list:
        """Successive rewrites of a raw tap index into the input's index range."""
        steps = [lambda i: clamp_index(i, size)]
        if self.padding == "reflection":
            lo, hi = self.bounds(size)
            steps.insert(0, lambda i: Cast("int64", _reflect(Cast(cdt, i), lo, hi)))
        return steps


def axis_taps(s: Sampler, g, size: int, d: int, pos, idx, wt, cdt: str) -> list:
    """Fills pos[d, :] with the coordinate of grid value g and its fraction, idx[d, t] and
    wt[d, t] with the in-range index and the weight of each tap t along input axis d. Each
    step is its own store: a rewrite reads its input once from the local, not as a copy of
    the whole expression before it."""
    at_pos, at_frac = (const_int(d), const_int(0)), (const_int(d), const_int(1))
    p = Load(pos, at_pos)
    stmts = [Store(pos, at_pos, s.position(g, size)),
             Store(pos, at_pos, s.outside(p, size)),
             Store(pos, at_pos, clamp_float(p, *s.limits(size)))]
    if s.mode != "nearest":
        stmts.append(Store(pos, at_frac, p - Unary("floor", p)))
    for t, (i, w) in enumerate(s.taps(p, Load(pos, at_frac))):
        at = (const_int(d), const_int(t))
        raw = Load(idx, at)
        stmts.append(Store(idx, at, i))
        if wt is not None:
            weight = Const(1.0, cdt) if w is None else w
            valid = s.valid(raw, size)
            stmts.append(Store(wt, at, weight if valid is None else
                               Select(valid, weight, Const(0.0, cdt))))
        stmts += [Store(idx, at, step(raw)) for step in s.index_steps(size, cdt)]
    return stmts


def interpolate(X, idx, wt, lead, taps: int, rank: int, adt: str, d: int = 0, at=()):
    """sum over t of wt[d, t] * (the same over the next axes) at X[lead, idx[d, t], ...]:
    axis by axis, as the reference interpolates."""
    if d == rank:
        return as_dtype(adt, Load(X, tuple(lead) + tuple(at)))
    total = None
    for t in range(taps):
        here = (const_int(d), const_int(t))
        value = interpolate(X, idx, wt, lead, taps, rank, adt, d + 1, at + (Load(idx, here),))
        if wt is not None:
            value = as_dtype(adt, Load(wt, here)) * value
        total = value if total is None else total + value
    return total


def _grid_sample(ctx, X, grid, s: Sampler) -> None:
    xs, gs, out = ctx.shape(X), ctx.shape(grid), ctx.output(0)
    rank = len(xs) - 2
    if rank < 1 or len(gs) != len(xs) or gs[-1] != rank or gs[0] != xs[0]:
        raise fail(ctx, f"grid of shape {gs} does not fit input {xs}")
    if ctx.shape(out) != (xs[0], xs[1], *gs[1:-1]):
        raise fail(ctx, f"output shape {ctx.shape(out)}, expected {(*xs[:2], *gs[1:-1])}")
    sizes, taps = xs[2:], len(_TAP_OFFSETS[s.mode])
    if 0 in sizes and 0 not in ctx.shape(out):
        raise fail(ctx, f"sampling an empty input of shape {xs}")
    cdt, adt = compute_dtype(grid.dtype), compute_dtype(X.dtype)
    pos = local(ctx, "pos", cdt, rank, 2)
    idx = local(ctx, "idx", "int64", rank, taps)
    wt = local(ctx, "wt", cdt, rank, taps) if s.mode != "nearest" or s.padding == "zeros" \
        else None

    def at_position(n, *o):
        # The taps depend on the position only: computed once, used by every channel.
        stmts = [stmt for d in range(rank) for stmt in axis_taps(
            s, as_dtype(cdt, Load(grid, (n, *o, const_int(rank - 1 - d)))), sizes[d], d,
            pos, idx, wt, cdt)]
        per_channel = loops([("c", xs[1])], lambda c: Store(out, (n, c, *o), as_dtype(
            out.dtype, interpolate(X, idx, wt, (n, c), taps, rank, adt))))
        body = seq(*stmts, per_channel)
        for buf in (pos, idx) + ((wt,) if wt is not None else ()):
            body = Allocate(buf, body)
        return body
    names = [f"o{name}" for name in spatial_names(rank)]
    ctx.emit(loops([("n", xs[0])] + list(zip(names, gs[1:-1])), at_position), kind="gather")


def _grid_sample_op(spellings: tuple[str, ...]):
    def lower(ctx, X, grid, mode, padding_mode, align_corners):
        if mode not in spellings:
            raise fail(ctx, f"unsupported mode {mode!r} (expected one of {', '.join(spellings)})")
        if padding_mode not in _PADDINGS:
            raise fail(ctx, f"unsupported padding_mode {padding_mode!r} (expected one of "
                            f"{', '.join(_PADDINGS)})")
        if not (X.dtype.startswith(("float", "bfloat")) and grid.dtype.startswith(
                ("float", "bfloat"))):
            raise fail(ctx, f"input {X.dtype} and grid {grid.dtype}: float types expected")
        _grid_sample(ctx, X, grid, Sampler(_MODES[mode], padding_mode, bool(align_corners)))
    return lower


_grid_sample_16 = _grid_sample_op(("bilinear", "nearest", "bicubic"))
_grid_sample_20 = _grid_sample_op(("linear", "nearest", "cubic"))


@register("GridSample", since=20)
def GridSample(ctx, X, grid, *, mode="linear", padding_mode="zeros", align_corners=0):
    _grid_sample_20(ctx, X, grid, mode, padding_mode, align_corners)


@register("GridSample", since=16, until=19)
def GridSample_16(ctx, X, grid, *, mode="bilinear", padding_mode="zeros", align_corners=0):
    _grid_sample_16(ctx, X, grid, mode, padding_mode, align_corners)


# -- AffineGrid --------------------------------------------------------------------------------
def _base_coordinate(v, n: int, align: bool):
    """The normalized coordinate, in [-1, 1], of pixel v of an axis of n (as torch: 0 for
    an axis of one pixel, where onnxruntime and the reference disagree)."""
    if n <= 1:
        return Const(0.0, "float64")
    step = 2.0 / (n - 1) if align else 2.0 / n
    start = -1.0 if align else -1.0 + step / 2
    return Cast("float64", v) * step + start


def _declared_size(ctx, size) -> list[int]:
    """AffineGrid's size [N, C, (D,) H, W] from the declared grid [N, (D,) H, W, k]; C
    shapes nothing, so the run's check skips it."""
    grid = ctx.shape(ctx.output(0))
    dims = [grid[0], 0, *grid[1:-1]]
    values = values_of(ctx, size)
    if len(values) != len(dims):
        raise fail(ctx, f"size of {len(values)} values for a declared grid {list(grid)}")
    ctx.check(all_of(cmp("eq", v, d) for i, (v, d) in enumerate(zip(values, dims)) if i != 1),
              f"the size input differs from the declared grid {list(grid)}")
    return dims


@register("AffineGrid", since=20)
def AffineGrid(ctx, theta, size, *, align_corners=0):
    """grid[n, (d,) h, w, k] = theta[n, k] . (x_w, y_h, (z_d,) 1), computed in float64 as
    the reference does."""
    if ctx.const(size) is None:   # read at run time: the declared grid's extents
        dims = _declared_size(ctx, size)
    else:
        dims = int_list(const_input(ctx, size, "size"))
    rank, ts, out = len(dims) - 2, ctx.shape(theta), ctx.output(0)
    if rank not in (2, 3) or ts != (dims[0], rank, rank + 1):
        raise fail(ctx, f"theta of shape {ts} and size {dims}: expected [N, 2, 3] with "
                        "[N, C, H, W] or [N, 3, 4] with [N, C, D, H, W]")
    spatial = dims[2:]
    if ctx.shape(out) != (dims[0], *spatial, rank):
        raise fail(ctx, f"output shape {ctx.shape(out)}, expected {(dims[0], *spatial, rank)}")

    def body(n, *v):
        o, k = v[:-1], v[-1]
        coefficient = lambda j: Cast("float64", Load(theta, (n, k, const_int(j))))  # noqa: E731
        total = None
        for j in range(rank):          # component j multiplies the (rank - 1 - j)-th axis
            axis = rank - 1 - j
            term = coefficient(j) * _base_coordinate(o[axis], spatial[axis], bool(align_corners))
            total = term if total is None else total + term
        return Store(out, (n, *o, k), as_dtype(out.dtype, total + coefficient(rank)))
    names = [(name, e) for name, e in zip(spatial_names(rank), spatial, strict=True)]
    ctx.emit(loops([("n", dims[0])] + names + [("k", rank)], body), kind="elementwise")


# -- Col2Im ------------------------------------------------------------------------------------
def _col2im_attrs(ctx, rank: int, dilations, pads, strides):
    dilations = list(dilations) if dilations else [1] * rank
    pads = list(pads) if pads else [0] * (2 * rank)
    strides = list(strides) if strides else [1] * rank
    if len(dilations) != rank or len(strides) != rank or len(pads) != 2 * rank:
        raise fail(ctx, f"dilations, strides and pads must have {rank}, {rank} and "
                        f"{2 * rank} values")
    if min(dilations) < 1 or min(strides) < 1 or min(pads) < 0:
        raise fail(ctx, "dilations and strides must be positive and pads non-negative")
    return dilations, pads, strides


def _factorizations(total: int, parts: int):
    """Every tuple of `parts` positive ints whose product is total."""
    if parts == 1:
        yield (total,)
        return
    for first in range(1, total + 1):
        if total % first == 0:
            for rest in _factorizations(total // first, parts - 1):
                yield (first, *rest)


def _declared_col2im(ctx, data, image_shape, block_shape, dilations, pads, strides):
    """image_shape and block_shape read at run time: the image is the declared output's,
    the block the one factorization of the input's block size that gives its block count
    (checked in the run)."""
    out, ds = ctx.shape(ctx.output(0)), ctx.shape(data)
    image, rank = list(out[2:]), len(out) - 2
    if len(ds) != 3 or rank < 1 or not out[1] or ds[1] % out[1]:
        raise fail(ctx, f"input {list(ds)} does not fit the declared output {list(out)}")
    dil, pad, stride = _col2im_attrs(ctx, rank, dilations, pads, strides)

    def count(block):
        return _product((image[d] + pad[d] + pad[rank + d] - dil[d] * (block[d] - 1) - 1)
                        // stride[d] + 1 for d in range(rank))
    options = [b for b in _factorizations(ds[1] // out[1], rank) if count(b) == ds[2]]
    if len(options) != 1:
        raise fail(ctx, f"block_shape read at run time: {len(options)} block shapes fit the "
                        f"input {list(ds)} and the declared output {list(out)}")
    check_equal(ctx, image_shape, image, "the image_shape input")
    check_equal(ctx, block_shape, list(options[0]), "the block_shape input")
    return image, list(options[0])


@register("Col2Im", since=18)
def Col2Im(ctx, data, image_shape, block_shape, *, dilations=None, pads=None, strides=None):
    """Each output pixel gathers the block elements that land on it, in block order:
    out[n, c, p] = sum over k with p = l * stride - pad + k * dilation of
    data[n, c * K + flat(k), flat(l)]."""
    if ctx.const(image_shape) is None or ctx.const(block_shape) is None:
        image, block = _declared_col2im(ctx, data, image_shape, block_shape, dilations, pads,
                                        strides)
    else:
        image = int_list(const_input(ctx, image_shape, "image_shape"))
        block = int_list(const_input(ctx, block_shape, "block_shape"))
    rank, ds, out = len(image), ctx.shape(data), ctx.output(0)
    if len(block) != rank or rank < 1 or min(block) < 1:
        raise fail(ctx, f"block_shape {block} does not fit image_shape {image}")
    dil, pads, strides = _col2im_attrs(ctx, rank, dilations, pads, strides)
    blocks = [(image[d] + pads[d] + pads[rank + d] - dil[d] * (block[d] - 1) - 1) // strides[d]
              + 1 for d in range(rank)]
    kernel = _product(block)
    if len(ds) != 3 or ds[1] % kernel or ds[2] != _product(blocks) or min(blocks) < 1:
        raise fail(ctx, f"input of shape {ds} does not hold {kernel}-element blocks at "
                        f"{blocks} positions")
    if ctx.shape(out) != (ds[0], ds[1] // kernel, *image):
        raise fail(ctx, f"output shape {ctx.shape(out)}, expected {(ds[0], ds[1] // kernel)}"
                        f" + {tuple(image)}")
    cols = view(data, ds[0], ds[1] // kernel, *block, *blocks)   # the same elements
    names = spatial_names(rank)
    zero = scalar_const(out.dtype, 0)

    def pixel(n, c, *p):
        def tap(*k):
            at = [p[d] + (pads[d] - k[d] * dil[d]) for d in range(rank)]
            ok = [cond for d in range(rank) for cond in _block_conditions(
                at[d], strides[d], blocks[d])]
            total = Binary("add", Load(out, (n, c, *p)), Load(cols, (n, c, *k, *(
                a // strides[d] if strides[d] > 1 else a for d, a in enumerate(at)))))
            return IfThen(_all(ok), Store(out, (n, c, *p), total))
        return seq(Store(out, (n, c, *p), zero),
                   loops([(f"k{name}", b) for name, b in zip(names, block, strict=True)], tap))
    ctx.emit(loops([("n", ds[0]), ("c", ds[1] // kernel)] + list(zip(names, image)), pixel),
             kind="reduce")


def _block_conditions(at, stride: int, blocks: int) -> list:
    """at = l * stride for a block position l in [0, blocks)."""
    conds = [cmp("ge", at, 0), cmp("le", at, (blocks - 1) * stride)]
    return conds + ([cmp("eq", at % const_int(stride), 0)] if stride > 1 else [])


def _all(conds):
    result = conds[0]
    for cond in conds[1:]:
        result = Binary("and", result, cond)
    return result


def _product(values) -> int:
    return int(math.prod(values))
