"""NonMaxSuppression: greedy selection of boxes per batch and class.

For each (batch, class): the candidates are the boxes scoring above score_threshold (all of
them without one); repeatedly the best remaining candidate (highest score, lowest index on a
tie) leaves the pool and is kept unless its IoU with a box already kept for this class
exceeds iou_threshold, until max_output_boxes_per_class boxes are kept. This is onnxruntime's
and onnx.reference's order. The output [selected, 3] (batch, class, box) is sized by the data:
its upper bound is one row per (batch, class, box), the kernel stores the row count
(ctx.runtime_extent). Thresholds and the box limit are read at run time.
"""
from __future__ import annotations

import dataclasses

from ..loop.ir import (
    Allocate,
    Binary,
    Cast,
    Const,
    IfThen,
    Load,
    Select,
    Store,
    cmp,
    const_int,
    loops,
    seq,
)
from ..loop.symbolic import at_least_one, dims_of, product
from .common import ZERO, view
from .registry import register
from .shape import fail

ONE = const_int(1)


def _bound(inputs, attrs):
    boxes, scores = inputs[0], inputs[1]
    return [("int64", (scores.shape[0] * scores.shape[1] * boxes.shape[1], 3), (0,))]


def _scalar(buf, dtype: str, default):
    """The first value of an optional input, else the default (as ONNX: an absent or empty
    input)."""
    if buf is None:
        return Const(default, dtype)
    count = product(dims_of(buf))
    if not isinstance(count, int):    # whether it holds a value is known at run time only
        raise TypeError("a scalar input of symbolic size")
    return Cast(dtype, Load(view(buf, 1), (ZERO,))) if count else Const(default, dtype)


def _extent(box, center: int):
    """(x_min, x_max, y_min, y_max) of a box given by its four coordinates."""
    a, b, c, d = box
    if center:   # [x_center, y_center, width, height]
        return a - c * 0.5, a + c * 0.5, b - d * 0.5, b + d * 0.5
    return (Binary("min", b, d), Binary("max", b, d), Binary("min", a, c), Binary("max", a, c))


def _overlaps(box1, box2, center: int, threshold):
    """IoU(box1, box2) > threshold, false for boxes that do not intersect or have no area."""
    x1, X1, y1, Y1 = _extent(box1, center)
    x2, X2, y2, Y2 = _extent(box2, center)
    width = Binary("min", X1, X2) - Binary("max", x1, x2)
    height = Binary("min", Y1, Y2) - Binary("max", y1, y2)
    inter = width * height
    area1, area2 = (X1 - x1) * (Y1 - y1), (X2 - x2) * (Y2 - y2)
    union = area1 + area2 - inter
    valid = [cmp("gt", width, 0.0), cmp("gt", height, 0.0), cmp("gt", area1, 0.0),
             cmp("gt", area2, 0.0), cmp("gt", union, 0.0)]
    test = cmp("gt", inter / Select(valid[-1], union, Const(1.0, union.dtype)), threshold)
    for v in valid:
        test = Binary("and", v, test)
    return test


@dataclasses.dataclass(frozen=True)
class _Scratch:
    alive: object    # int64[N]: 1 while box n is a candidate
    kept: object     # int64[N]: the boxes kept for this class, in order
    counts: object   # int64[4]: kept for this class, rows written, best index, suppressed
    best: object     # float32[1]: the best score seen in a scan


def _local(ctx, hint, dtype, size):
    buf = ctx.builder.new_buffer(f"{ctx.node.name}_{hint}", dtype, (size,), "l_")
    return dataclasses.replace(buf, scope="local")


@register("NonMaxSuppression", since=10, bound=_bound)
def NonMaxSuppression(ctx, boxes, scores, max_output_boxes_per_class=None, iou_threshold=None,
                      score_threshold=None, *, center_point_box=0):
    (batches, n, four), (sb, classes, sn) = ctx.shape(boxes), ctx.shape(scores)
    if four != 4 or sb != batches or sn != n:
        raise fail(ctx, f"boxes {ctx.shape(boxes)} and scores {ctx.shape(scores)} must be "
                        "[B, N, 4] and [B, C, N]")
    if center_point_box not in (0, 1):
        raise fail(ctx, f"center_point_box must be 0 or 1, got {center_point_box}")
    Y = ctx.output(0)
    # per-box scratch: on the stack for a static box count, in the arena for a symbolic one
    per_box = (lambda hint: _local(ctx, hint, "int64", max(n, 1))) if isinstance(n, int) else \
        (lambda hint: ctx.temp("int64", (at_least_one(n),), hint))
    s = _Scratch(per_box("alive"), per_box("kept"),
                 _local(ctx, "counts", "int64", 4), _local(ctx, "best", scores.dtype, 1))
    limit = _scalar(max_output_boxes_per_class, "int64", 0)
    iou = _scalar(iou_threshold, scores.dtype, 0.0)
    floor = _scalar(score_threshold, scores.dtype, 0.0)    # refuses a symbolic size first
    has_floor = score_threshold is not None and product(dims_of(score_threshold)) != 0
    rows, extent = view(Y, product(dims_of(Y))), ctx.runtime_extent(Y, 0)

    def count(i):
        return Load(s.counts, (const_int(i),))

    def put(i, value):
        return Store(s.counts, (const_int(i),), value)

    def per_class(b, c):
        score = lambda j: Load(scores, (b, c, j))  # noqa: E731
        box = lambda j: [Load(boxes, (b, j, const_int(k))) for k in range(4)]  # noqa: E731
        start = loops([("j0", n)], lambda j: Store(s.alive, (j,), Cast(
            "int64", cmp("gt", score(j), floor)) if has_floor else ONE))

        def scan(j):   # the best live candidate: strict > keeps the lowest index on a tie
            better = Binary("or", cmp("lt", count(2), 0), cmp("gt", score(j), Load(s.best,
                                                                                  (ZERO,))))
            live = cmp("ne", Load(s.alive, (j,)), 0)
            return IfThen(Binary("and", live, better),
                          seq(put(2, j), Store(s.best, (ZERO,), score(j))))

        def against(k):
            other = Load(s.kept, (k,))
            hit = _overlaps(box(count(2)), [Load(boxes, (b, other, const_int(q)))
                                            for q in range(4)], center_point_box, iou)
            return IfThen(Binary("and", cmp("lt", k, count(0)), hit), put(3, ONE))

        keep = seq(Store(s.kept, (count(0),), count(2)), put(0, count(0) + ONE),
                   *[Store(rows, (count(1) * const_int(3) + const_int(q),), v)
                     for q, v in enumerate((b, c, count(2)))],
                   put(1, count(1) + ONE))
        take = seq(Store(s.alive, (count(2),), ZERO), put(3, ZERO),
                   loops([("k", n)], against), IfThen(cmp("eq", count(3), 0), keep))
        step = seq(put(2, const_int(-1)), loops([("j", n)], scan),
                   IfThen(Binary("and", cmp("ge", count(2), 0), cmp("lt", count(0), limit)),
                          take))
        return seq(start, put(0, ZERO), loops([("t", n)], lambda _: step))

    body = seq(put(1, ZERO), loops([("b", batches), ("c", classes)], per_class),
               Store(extent, (ZERO,), count(1)))
    for buf in (s.best, s.counts, s.kept, s.alive):
        body = Allocate(buf, body) if buf.scope == "local" else body
    ctx.emit(body, kind="generic")
