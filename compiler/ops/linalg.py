"""Linear algebra: Einsum and Det.

Einsum is one accumulation kernel: a loop per output label, then a loop per summed label,
adding the product of the operands (each loaded at its labels' loop variables) into the
output, which the kernel's prologue sets to zero. A label repeated within one operand loads
that operand's diagonal; the ellipsis stands for the same (numpy-broadcast) axes in every
term, right-aligned as numpy aligns them.

Det runs an LU decomposition with partial pivoting on a copy of each matrix on the stack of
the thread that computes it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import reduce

from .. import dtypes
from ..errors import ModelError
from ..loop.ir import (
    Allocate,
    Buffer,
    IfThen,
    Load,
    Store,
    Unary,
    cmp,
    const_int,
    loops,
    seq,
)
from .common import ZERO
from .matmul import emit_accumulation
from .registry import register
from .shape import fail, scalar_const

ELLIPSIS = "..."


# -- Einsum ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EinsumSpec:
    """An equation resolved against its operands' shapes. Labels are the equation's letters,
    and "0", "1", ... for the axes the ellipsis stands for (outermost first)."""
    terms: tuple[tuple[str, ...], ...]   # per operand, the label of each of its axes
    output: tuple[str, ...]
    sizes: dict                          # label -> extent (operands of extent 1 broadcast)

    @property
    def summed(self) -> tuple[str, ...]:
        """The labels not in the output, in the order they first appear."""
        seen = dict.fromkeys(label for term in self.terms for label in term)
        return tuple(label for label in seen if label not in self.output)


def _split_term(text: str, what: str) -> tuple[str, str, bool]:
    """A term's letters before and after its ellipsis, and whether it has one."""
    head, dots, tail = text.partition(ELLIPSIS)
    if not all(c.isascii() and c.isalpha() for c in head + tail):
        raise ModelError(f"Einsum: {what} {text!r} holds a character other than letters and "
                         "one '...'")
    return head, tail, bool(dots)


def _ellipsis_labels(count: int, total: int) -> list[str]:
    """The last `count` of the `total` ellipsis labels (numpy aligns them to the right)."""
    return [str(i) for i in range(total - count, total)]


def _input_terms(texts, shapes) -> tuple[list[list[str]], int]:
    """Each operand's labels, and how many axes the ellipsis stands for."""
    split = [_split_term(t, f"term {i}") for i, t in enumerate(texts)]
    extra = []
    for i, ((head, tail, dots), shape) in enumerate(zip(split, shapes)):
        count = len(shape) - len(head) - len(tail)
        if count < 0 or (count and not dots):
            raise ModelError(f"Einsum: term {texts[i]!r} does not fit operand {i} of rank "
                             f"{len(shape)}")
        extra.append(count)
    total = max(extra, default=0)
    return [list(head) + _ellipsis_labels(count, total) + list(tail)
            for (head, tail, _), count in zip(split, extra)], total


def _output_term(text: str | None, terms, total: int) -> list[str]:
    letters = [label for term in terms for label in term if label.isalpha()]
    if text is None:   # implicit: the ellipsis axes, then the letters used once, sorted
        return _ellipsis_labels(total, total) + sorted(c for c in set(letters)
                                                       if letters.count(c) == 1)
    head, tail, dots = _split_term(text, "output")
    if total and not dots:
        raise ModelError("Einsum: the operands have ellipsis axes but the output has no '...'")
    out = list(head) + _ellipsis_labels(total, total) + list(tail)
    for c in head + tail:
        if c not in letters:
            raise ModelError(f"Einsum: output label {c!r} is in no input term")
        if (head + tail).count(c) > 1:
            raise ModelError(f"Einsum: output label {c!r} is repeated")
    return out


def parse_equation(equation: str, shapes) -> EinsumSpec:
    """Resolve `equation` (spaces allowed) for operands of the given shapes."""
    text = equation.replace(" ", "")
    lhs, arrow, rhs = text.partition("->")
    texts = lhs.split(",")
    if len(texts) != len(shapes):
        raise ModelError(f"Einsum: equation {equation!r} has {len(texts)} terms for "
                         f"{len(shapes)} operands")
    terms, total = _input_terms(texts, shapes)
    output = _output_term(rhs if arrow else None, terms, total)
    sizes: dict[str, int] = {}
    for i, (term, shape) in enumerate(zip(terms, shapes)):
        for label, extent in zip(term, shape):
            known = sizes.setdefault(label, extent)
            if known != extent and 1 not in (known, extent):
                raise ModelError(f"Einsum: label {label!r} has extent {known} and {extent} "
                                 f"(operand {i})")
            sizes[label] = extent if known == 1 else known   # 1 broadcasts, even to 0
    return EinsumSpec(tuple(map(tuple, terms)), tuple(output), sizes)


def _loop_name(label: str) -> str:
    return label if label.isalpha() else f"e{label}"


@register("Einsum", since=12)
def Einsum(ctx, *inputs, equation):
    if isinstance(equation, bytes):
        equation = equation.decode()
    shapes = [ctx.shape(x) for x in inputs]
    try:
        spec = parse_equation(equation, shapes)
    except ModelError as exc:
        raise fail(ctx, str(exc).removeprefix("Einsum: ")) from None
    if len({x.dtype for x in inputs}) != 1 or inputs[0].dtype == "bool":
        raise fail(ctx, f"operands of dtypes {[x.dtype for x in inputs]}")
    out_shape = tuple(spec.sizes[label] for label in spec.output)
    Y = ctx.output(0)
    if Y.dtype != inputs[0].dtype or ctx.shape(Y) != out_shape:
        raise fail(ctx, f"equation gives {inputs[0].dtype}{list(out_shape)}, inferred "
                        f"{Y.dtype}{list(ctx.shape(Y))}")
    labels = spec.output + spec.summed

    def nest(acc):
        def accumulate(*v):
            at = dict(zip(labels, v))
            product = reduce(lambda a, b: a * b, [Load(x, tuple(
                ZERO if extent == 1 and spec.sizes[label] > 1 else at[label]
                for label, extent in zip(term, shape)))
                for x, term, shape in zip(inputs, spec.terms, shapes)])
            index = tuple(v[:len(spec.output)])
            return Store(acc, index, Load(acc, index) + product)
        return loops([(_loop_name(label), spec.sizes[label]) for label in labels], accumulate)
    emit_accumulation(ctx, Y, lambda *p: scalar_const(Y.dtype, 0), nest, "einsum")


# -- Det ---------------------------------------------------------------------------------------
# The copy of one matrix lives on the stack of the thread that decomposes it.
MAX_STACK_MATRIX_BYTES = 1 << 20


def _local(ctx, hint: str, dtype: str, *shape) -> Buffer:
    buf = ctx.builder.new_buffer(f"{ctx.node.name}_{hint}", dtype, shape, "l_")
    return dataclasses.replace(buf, scope="local")


@dataclass(frozen=True)
class _LU:
    """The scratch of one decomposition: the matrix A, the determinant so far, the pivot
    row and its magnitude, and two scalars (a swapped element, a row's factor)."""
    A: Buffer
    det: Buffer
    pivot: Buffer
    best: Buffer
    held: Buffer
    factor: Buffer
    m: int

    def scalar(self, buf: Buffer):
        return Load(buf, (ZERO,))

    def put(self, buf: Buffer, value) -> Store:
        return Store(buf, (ZERO,), value)

    def allocate(self, body):
        for buf in (self.factor, self.held, self.best, self.pivot, self.det, self.A):
            body = Allocate(buf, body)
        return body


def _find_pivot(s: _LU, c):
    """pivot = the row r >= c with the largest |A[r, c]| (the first of equal ones)."""
    def magnitude(r):
        return Unary("abs", Load(s.A, (r, c)))

    def visit(i):
        r = c + const_int(1) + i
        return IfThen(cmp("gt", magnitude(r), s.scalar(s.best)),
                      seq(s.put(s.best, magnitude(r)), s.put(s.pivot, r)))
    return seq(s.put(s.pivot, c), s.put(s.best, magnitude(c)),
               loops([("pr", const_int(s.m - 1) - c)], visit))


def _swap_rows(s: _LU, c):
    """Rows c and pivot trade their columns from c on (the ones still used); a swap flips
    the determinant's sign."""
    p = s.scalar(s.pivot)

    def swap(i):
        j = c + i
        return seq(s.put(s.held, Load(s.A, (c, j))), Store(s.A, (c, j), Load(s.A, (p, j))),
                   Store(s.A, (p, j), s.scalar(s.held)))
    return IfThen(cmp("ne", p, c), seq(loops([("sj", const_int(s.m) - c)], swap),
                                       s.put(s.det, -s.scalar(s.det))))


def _eliminate(s: _LU, c):
    """Subtract multiples of row c from the rows below it, zeroing column c there. A zero
    pivot (a singular matrix: the determinant is already 0) is skipped, never divided by."""
    pivot = Load(s.A, (c, c))
    rest = const_int(s.m - 1) - c

    def row(i):
        r = c + const_int(1) + i
        update = loops([("ej", rest)], lambda j: Store(
            s.A, (r, c + const_int(1) + j),
            Load(s.A, (r, c + const_int(1) + j))
            - s.scalar(s.factor) * Load(s.A, (c, c + const_int(1) + j))))
        return seq(s.put(s.factor, Load(s.A, (r, c)) / pivot), update)
    zero = scalar_const(s.A.dtype, 0)
    return IfThen(cmp("ne", pivot, zero), loops([("er", rest)], row))


def _determinant(s: _LU, X, Y, b):
    """Y[b] = det(X[b]): the product of U's diagonal, with the sign of the row swaps."""
    def column(c):
        return seq(_find_pivot(s, c), _swap_rows(s, c),
                   s.put(s.det, s.scalar(s.det) * Load(s.A, (c, c))), _eliminate(s, c))
    copy = loops([("mr", s.m), ("mc", s.m)],
                 lambda r, c: Store(s.A, (r, c), Load(X, b + (r, c))))
    return s.allocate(seq(copy, s.put(s.det, scalar_const(s.A.dtype, 1)),
                          loops([("col", s.m)], column), Store(Y, b, s.scalar(s.det))))


@register("Det", since=11)
def Det(ctx, X):
    shape = ctx.shape(X)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise fail(ctx, f"input of shape {shape}, expected [..., M, M]")
    dt = X.dtype
    if not dtypes.dtype(dt).is_float:
        raise fail(ctx, f"dtype {dt} is not supported (a float type is)")
    m, batch = shape[-1], shape[:-2]
    if m * m * dtypes.itemsize(dt) > MAX_STACK_MATRIX_BYTES:
        raise fail(ctx, f"a {m}x{m} matrix does not fit the stack")
    if ctx.shape(ctx.output(0)) != batch:
        raise fail(ctx, f"output of shape {ctx.shape(ctx.output(0))}, expected {batch}")
    Y = ctx.output(0)
    s = _LU(_local(ctx, "lu", dt, m, m), _local(ctx, "det", dt, 1),
            _local(ctx, "pivot", "int64", 1), _local(ctx, "best", dt, 1),
            _local(ctx, "held", dt, 1), _local(ctx, "factor", dt, 1), m)
    body = loops([(f"b{d}", e) for d, e in enumerate(batch)],
                 lambda *b: _determinant(s, X, Y, tuple(b)))
    ctx.emit(body, kind="det")
