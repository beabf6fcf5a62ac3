"""TfIdfVectorizer: counts of pool n-grams (with skips) in each row of integer tokens.

The pool, its n-gram lengths (ngram_counts) and output columns (ngram_indexes) are attributes,
so they become, per n-gram length n in [min_gram_length, max_gram_length], constant tables:
the pool's n-grams, their output columns and what a hit adds. The kernel walks, as
onnxruntime does, every step d = 1 + skip (skip in [0, max_skip_count]), every start s, every
length n: tokens s, s + d, ..., s + (n - 1) * d are compared with each pool n-gram of length n.
1-grams are counted at d = 1 only (skips do not multiply them). A hit on the n-gram of id i
(its position among the pool's n-grams) does, in its column ngram_indexes[i]:
TF: += 1; TFIDF: += weights[i] (1 without weights); IDF: = weights[i] (1 without weights).
The weights follow the n-gram ids as the ONNX spec words it and onnxruntime computes
(onnx.reference reads them by output column instead; the two agree when ngram_indexes is
the identity). Only integer pools (pool_int64s) and int32/int64 tokens are supported; a pool
listing an n-gram twice is refused, as onnxruntime does.
"""
from __future__ import annotations

import numpy as np

from ..loop.ir import Binary, Cast, Const, IfThen, Load, Store, cmp, const_int, loops, seq
from .common import view
from .registry import register
from .shape import fail

_MODES = ("TF", "IDF", "TFIDF")


def _columns(ctx, ngram_indexes) -> int:
    """The output width: max(ngram_indexes) + 1."""
    if not ngram_indexes:
        raise fail(ctx, "ngram_indexes is empty")
    if min(ngram_indexes) < 0:
        raise fail(ctx, f"ngram_indexes holds a negative column {min(ngram_indexes)}")
    return max(ngram_indexes) + 1


def _pool_tables(ctx, pool, ngram_counts, ngram_indexes, lo: int, hi: int):
    """{n: {n-gram tuple: its id (its position among the pool's n-grams)}} for the pool's
    n-grams of length n in [lo, hi]."""
    starts = [int(c) for c in ngram_counts] + [len(pool)]
    if any(b < a for a, b in zip(starts, starts[1:])) or (starts and starts[0] < 0):
        raise fail(ctx, f"ngram_counts {list(ngram_counts)} must be increasing offsets into "
                        f"the pool of {len(pool)} items")
    tables, gram_id = {}, 0
    for i in range(len(ngram_counts)):
        n, items = i + 1, pool[starts[i]:starts[i + 1]]
        if len(items) % n:
            raise fail(ctx, f"{len(items)} pool items for {n}-grams is not a multiple of {n}")
        k = len(items) // n
        if gram_id + k > len(ngram_indexes):
            raise fail(ctx, f"ngram_indexes has {len(ngram_indexes)} entries for more pool "
                            "n-grams")
        if lo <= n <= hi and k:
            table = tables.setdefault(n, {})
            for g in range(k):
                gram = tuple(items[g * n:(g + 1) * n])
                if gram in table:
                    raise fail(ctx, f"the pool lists the {n}-gram {list(gram)} twice")
                table[gram] = gram_id + g
        gram_id += k
    return tables


def _update(mode: str, Y, where, value):
    """What one hit does to its output element: TF and TFIDF add (1 or the n-gram's weight),
    IDF sets it (to 1 or the n-gram's weight)."""
    if mode == "IDF":
        return Store(Y, where, value)
    return Store(Y, where, Load(Y, where) + value)


def _match(X, grams, b, s, step, k, n: int):
    """Tokens s, s + step, ..., s + (n - 1) * step of row b equal pool n-gram k."""
    match = None
    for j in range(n):
        token = Load(X, (b, s + step * const_int(j)))
        token = token if token.dtype == "int64" else Cast("int64", token)
        eq = cmp("eq", token, Load(grams, (k, const_int(j))))
        match = eq if match is None else Binary("and", match, eq)
    return match


def _grams_at(ctx, X, Y, n: int, table: dict, attrs, b, d, s):
    """The hits of pool n-grams at start s with step d + 1 (1-grams only at d = 0)."""
    _, width = ctx.shape(X)
    mode, ngram_indexes, weights = attrs
    ids = list(table.values())
    grams = ctx.constant(np.array(list(table), np.int64).reshape(len(table), n), f"grams{n}")
    cols = ctx.constant(np.array([ngram_indexes[i] for i in ids], np.int64), f"cols{n}")
    values = ctx.constant(np.array([1.0 if weights is None else weights[i] for i in ids],
                                   np.float32), f"values{n}")
    step = d + const_int(1)

    def hit(k):
        return IfThen(_match(X, grams, b, s, step, k, n),
                      _update(mode, Y, (b, Load(cols, (k,))), Load(values, (k,))))
    inside = (cmp("eq", d, 0) if n == 1 else
              cmp("lt", s + step * const_int(n - 1), width))
    return IfThen(inside, loops([(f"k{n}", len(table))], hit))


def _check(ctx, X, mode, pool_int64s, pool_strings, weights, ngram_indexes):
    if pool_strings:
        raise fail(ctx, "pool_strings (string tokens) is not supported; only pool_int64s")
    if pool_int64s is None:
        raise fail(ctx, "one of pool_int64s or pool_strings is required")
    if X.dtype not in ("int32", "int64"):
        raise fail(ctx, f"tokens of dtype {X.dtype} are not supported (int32 or int64)")
    if mode not in _MODES:
        raise fail(ctx, f"unknown mode {mode!r}, expected one of {', '.join(_MODES)}")
    if weights is not None and len(weights) != len(ngram_indexes):
        raise fail(ctx, f"{len(weights)} weights for {len(ngram_indexes)} ngram_indexes")


@register("TfIdfVectorizer", since=9)
def TfIdfVectorizer(ctx, X, *, max_gram_length, min_gram_length, max_skip_count, mode,
                    ngram_counts, ngram_indexes, pool_int64s=None, pool_strings=None,
                    weights=None):
    columns = _columns(ctx, list(ngram_indexes))
    weights = list(weights) if weights is not None and len(weights) else None
    _check(ctx, X, mode, pool_int64s, pool_strings, weights, ngram_indexes)
    shape = ctx.shape(X)
    if len(shape) > 2:
        raise fail(ctx, f"input of shape {list(shape)}, expected [C] or [B, C]")
    rows, width = (1, *shape)[-2:] if shape else (1, 1)
    out = ctx.shape(ctx.output(0))
    if tuple(out) != ((rows, columns) if len(shape) == 2 else (columns,)):
        raise fail(ctx, f"output of shape {list(out)} for input {list(shape)} and "
                        f"{columns} columns")
    if not 1 <= min_gram_length <= max_gram_length or max_skip_count < 0:
        raise fail(ctx, f"gram lengths [{min_gram_length}, {max_gram_length}] and "
                        f"max_skip_count {max_skip_count} are out of range")
    Y, tokens = view(ctx.output(0), rows, columns), view(X, rows, width)
    tables = _pool_tables(ctx, [int(v) for v in pool_int64s], list(ngram_counts),
                          list(ngram_indexes), min_gram_length, max_gram_length)
    zero = loops([("b", rows), ("i", columns)],
                 lambda b, i: Store(Y, (b, i), Const(0.0, "float32")))
    if not tables or not width:
        ctx.emit(zero, kind="generic")
        return
    skips = max_skip_count + 1 if max(tables) > 1 else 1
    attrs = (mode, list(ngram_indexes), weights)
    count = loops([("b", rows), ("d", skips), ("s", width)], lambda b, d, s: seq(
        *[_grams_at(ctx, tokens, Y, n, table, attrs, b, d, s)
          for n, table in sorted(tables.items())]))
    ctx.emit(seq(zero, count), kind="generic")
