"""Elementwise ops (numpy broadcasting). Plain ones are table rows, not functions."""
from __future__ import annotations

import math

import ml_dtypes

from .. import dtypes
from ..errors import ModelError
from ..loop.ir import (
    Binary,
    Bitcast,
    Cast,
    Const,
    Load,
    Select,
    Store,
    Unary,
    cmp,
)
from ..loop.symbolic import dims_of
from .common import load_broadcast, nest, view
from .registry import INTERNAL_DOMAIN, register
from .shape import fail


def _c(x, value):
    return Const(float(value) if dtypes.dtype(x.dtype).is_float else int(value), x.dtype)


def emit_elementwise(ctx, fn, *inputs, out=None, kind="elementwise"):
    """out[i...] = fn(*inputs broadcast to out's shape)."""
    out = out or ctx.output(0)
    body = nest(dims_of(out),
                lambda *v: Store(out, tuple(v), fn(*(load_broadcast(b, v) for b in inputs))))
    ctx.emit(body, kind=kind)


# -- one-input ops: op type -> (first ONNX version, expression builder) ---------------------
_UNARY = {
    "Neg": (6, lambda x: Unary("neg", x)),
    "Abs": (6, lambda x: Unary("abs", x)),
    "Sqrt": (6, lambda x: Unary("sqrt", x)),
    "Exp": (6, lambda x: Unary("exp", x)),
    "Log": (6, lambda x: Unary("log", x)),
    "Tanh": (6, lambda x: Unary("tanh", x)),
    "Erf": (9, lambda x: Unary("erf", x)),
    "Sigmoid": (6, lambda x: Unary("sigmoid", x)),
    "Floor": (6, lambda x: Unary("floor", x)),
    "Ceil": (6, lambda x: Unary("ceil", x)),
    "Round": (11, lambda x: Unary("round", x)),
    "Reciprocal": (6, lambda x: Unary("reciprocal", x)),
    "Sin": (7, lambda x: Unary("sin", x)),
    "Cos": (7, lambda x: Unary("cos", x)),
    "Not": (1, lambda x: Unary("not", x)),
    **{op: (7 if fn in ("tan", "asin", "acos", "atan") else 9,
            lambda x, fn=fn: Unary(fn, x))
       for op, fn in (("Tan", "tan"), ("Asin", "asin"), ("Acos", "acos"), ("Atan", "atan"),
                      ("Sinh", "sinh"), ("Cosh", "cosh"), ("Asinh", "asinh"),
                      ("Acosh", "acosh"), ("Atanh", "atanh"))},
    "Softplus": (1, lambda x: Unary("log", Unary("exp", x) + _c(x, 1))),
    "Relu": (6, lambda x: Binary("max", x, _c(x, 0))),
    "Softsign": (1, lambda x: x / (Unary("abs", x) + _c(x, 1))),
}

# -- two-input ops with numpy broadcasting ---------------------------------------------------
_BINARY = {
    "Add": (7, lambda a, b: a + b),
    "Sub": (7, lambda a, b: a - b),
    "Mul": (7, lambda a, b: a * b),
    "Pow": (7, lambda a, b: Binary("pow", a, Cast(a.dtype, b) if b.dtype != a.dtype else b)),
    "Equal": (7, lambda a, b: cmp("eq", a, b)),
    "Less": (7, lambda a, b: cmp("lt", a, b)),
    "Greater": (7, lambda a, b: cmp("gt", a, b)),
    "LessOrEqual": (12, lambda a, b: cmp("le", a, b)),
    "GreaterOrEqual": (12, lambda a, b: cmp("ge", a, b)),
    "And": (7, lambda a, b: Binary("and", a, b)),
    "Or": (7, lambda a, b: Binary("or", a, b)),
    "Xor": (7, lambda a, b: Binary("xor", a, b)),
}


def _unary_lowering(expr_fn):
    def lower(ctx, X):
        emit_elementwise(ctx, expr_fn, X)
    return lower


def _binary_lowering(expr_fn):
    def lower(ctx, A, B):
        emit_elementwise(ctx, expr_fn, A, B)
    return lower


for _op, (_since, _fn) in _UNARY.items():
    register(_op, since=_since)(_unary_lowering(_fn))
for _op, (_since, _fn) in _BINARY.items():
    register(_op, since=_since)(_binary_lowering(_fn))


def _variadic(op):
    def lower(ctx, *inputs):
        def fold(*xs):
            acc = xs[0]
            for x in xs[1:]:
                acc = Binary(op, acc, x)
            return acc
        emit_elementwise(ctx, fold, *inputs)
    return lower


register("Max", since=8)(_variadic("max"))
register("Min", since=8)(_variadic("min"))
register("Sum", since=8)(_variadic("add"))


@register("Mean", since=8)
def Mean(ctx, *inputs):
    emit_elementwise(ctx, lambda *xs: _sum(xs) / _c(xs[0], len(xs)), *inputs)


def _sum(xs):
    acc = xs[0]
    for x in xs[1:]:
        acc = acc + x
    return acc


@register("LeakyRelu", since=6)
def LeakyRelu(ctx, X, *, alpha=0.01):
    emit_elementwise(ctx, lambda x: Select(cmp("lt", x, 0.0), x * _c(x, alpha), x), X)


@register("Elu", since=6)
def Elu(ctx, X, *, alpha=1.0):
    emit_elementwise(ctx, lambda x: Select(cmp("lt", x, 0.0),
                                           (Unary("exp", x) - _c(x, 1)) * _c(x, alpha), x), X)


@register("PRelu", since=7)
def PRelu(ctx, X, slope):
    emit_elementwise(ctx, lambda x, a: Select(cmp("lt", x, _c(x, 0)), x * a, x), X, slope)


@register("Sign", since=9)
def Sign(ctx, X):
    emit_elementwise(ctx, lambda x: Select(cmp("gt", x, _c(x, 0)), _c(x, 1), Select(
        cmp("lt", x, _c(x, 0)), _c(x, -1), _c(x, 0))), X)


@register("Shrink", since=9)
def Shrink(ctx, X, *, bias=0.0, lambd=0.5):
    emit_elementwise(ctx, lambda x: Select(cmp("lt", x, _c(x, -lambd)), x + _c(x, bias), Select(
        cmp("gt", x, _c(x, lambd)), x - _c(x, bias), _c(x, 0))), X)


@register("Mish", since=18)
def Mish(ctx, X):
    emit_elementwise(ctx, lambda x: x * Unary("tanh", Unary("log", Unary("exp", x) + _c(x, 1))),
                     X)


@register("Selu", since=6)
def Selu(ctx, X, *, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875):
    emit_elementwise(ctx, lambda x: _c(x, gamma) * Select(
        cmp("le", x, 0.0), (Unary("exp", x) - _c(x, 1)) * _c(x, alpha), x), X)


@register("Celu", since=12)
def Celu(ctx, X, *, alpha=1.0):
    emit_elementwise(ctx, lambda x: Binary("max", x, _c(x, 0)) + Binary("min", _c(x, 0), (
        Unary("exp", x * _c(x, 1 / alpha)) - _c(x, 1)) * _c(x, alpha)), X)


@register("ThresholdedRelu", since=10)
def ThresholdedRelu(ctx, X, *, alpha=1.0):
    emit_elementwise(ctx, lambda x: Select(cmp("gt", x, _c(x, alpha)), x, _c(x, 0)), X)


@register("Swish", since=24)
def Swish(ctx, X, *, alpha=1.0):
    emit_elementwise(ctx, lambda x: x * Unary("sigmoid", x * _c(x, alpha)), X)


@register("SwiGLU", since=28)
def SwiGLU(ctx, A, B, *, alpha=1.0):
    emit_elementwise(ctx, lambda a, b: a * Unary("sigmoid", a * _c(a, alpha)) * b, A, B)


# -- division: C's integer / and % trap (SIGFPE on x86) on a zero divisor and on INT_MIN / -1;
# floats keep IEEE's inf and nan ---------------------------------------------------------------
def _int_divisor(ctx, B):
    """The divisor as the kernel uses it, b -> an expression that never traps. A zero is an
    error as in onnxruntime: at compile time in a constant, else a check kernel fails the
    run, and the kernel divides by 1 there. A signed -1 is replaced by 1 as well, where the
    caller gives the quotient itself (INT_MIN / -1 wraps to INT_MIN; any x % -1 is 0 = x % 1).
    None when no guard is needed (floats, or a constant without 0 or -1)."""
    if dtypes.dtype(B.dtype).is_float:
        return None
    values = ctx.const(B)
    if values is not None and (values == 0).any():
        raise fail(ctx, "integer division by zero (a zero in the constant divisor)")
    if values is None:
        flat = view(B, math.prod(ctx.shape(B)))
        ctx.check_each(flat.shape, lambda i: cmp("ne", Load(flat, (i,)), 0),
                       "integer division by zero")
    signed = dtypes.dtype(B.dtype).is_signed
    if values is not None and not (signed and (values == -1).any()):
        return None
    return lambda b: Select(Binary("or", cmp("eq", b, 0), cmp("eq", b, -1)) if signed
                            else cmp("eq", b, 0), _c(b, 1), b)


def _negated(x):
    """-x, wrapping as two's complement (-INT_MIN is INT_MIN; C leaves it undefined)."""
    unsigned = f"u{x.dtype}"
    return Cast(x.dtype, Binary("sub", Const(0, unsigned), Cast(unsigned, x)))


@register("Div", since=7)
def Div(ctx, A, B):
    guard = _int_divisor(ctx, B)
    if guard is None:
        return emit_elementwise(ctx, lambda a, b: Binary("div", a, b), A, B)
    signed = dtypes.dtype(B.dtype).is_signed

    def quotient(a, b):
        q = Binary("div", a, guard(b))
        return Select(cmp("eq", b, -1), _negated(a), q) if signed else q
    emit_elementwise(ctx, quotient, A, B)


@register("Mod", since=10)
def Mod(ctx, A, B, *, fmod=0):
    """fmod=1: the remainder has the dividend's sign (C fmod); fmod=0: the divisor's sign,
    as Python's %."""
    guard = _int_divisor(ctx, B) or (lambda b: b)

    def floored(a, b):
        r = Binary("fmod", a, b)
        zero = _c(a, 0)
        wrong_sign = Binary("and", cmp("ne", r, zero),
                            Binary("xor", cmp("lt", r, zero), cmp("lt", b, zero)))
        return Select(wrong_sign, r + b, r)
    # unsigned: the two signs agree (and a `< 0` test would be a -Wextra warning)
    truncated = fmod or not dtypes.dtype(A.dtype).is_signed
    rem = (lambda a, b: Binary("fmod", a, b)) if truncated else floored
    emit_elementwise(ctx, lambda a, b: rem(a, guard(b)), A, B)


@register("IsInf", since=10)
def IsInf(ctx, X, *, detect_negative=1, detect_positive=1):
    def fn(x):
        pos, neg = cmp("eq", x, _c(x, math.inf)), cmp("eq", x, _c(x, -math.inf))
        if detect_negative and detect_positive:
            return Binary("or", pos, neg)
        return pos if detect_positive else neg if detect_negative else Binary("and", pos, neg)
    emit_elementwise(ctx, fn, X)


@register("IsNaN", since=9)
def IsNaN(ctx, X):
    emit_elementwise(ctx, lambda x: cmp("ne", x, x), X)


@register("HardSigmoid", since=6)
def HardSigmoid(ctx, X, *, alpha=0.2, beta=0.5):
    emit_elementwise(ctx, lambda x: _clamp01(x * _c(x, alpha) + _c(x, beta)), X)


def _clamp01(e):
    return Binary("max", Binary("min", e, _c(e, 1)), _c(e, 0))


@register("HardSwish", since=14)
def HardSwish(ctx, X):
    emit_elementwise(ctx, lambda x: x * _clamp01(x * _c(x, 1 / 6) + _c(x, 0.5)), X)


def gelu_expr(x, approximate: str = "none"):
    """GELU of x: exact (erf) or the tanh approximation."""
    if approximate == "tanh":
        k = math.sqrt(2 / math.pi)
        return _c(x, 0.5) * x * (_c(x, 1) + Unary(
            "tanh", _c(x, k) * (x + _c(x, 0.044715) * x * x * x)))
    if approximate == "none":
        return _c(x, 0.5) * x * (_c(x, 1) + Unary("erf", x * _c(x, 1 / math.sqrt(2))))
    raise ModelError(f"Gelu: unknown approximate={approximate!r}")


@register("Gelu", since=20)
@register("Gelu", domain=INTERNAL_DOMAIN)
def Gelu(ctx, X, *, approximate="none"):
    emit_elementwise(ctx, lambda x: gelu_expr(x, approximate), X)


@register("Clip", since=11)
def Clip(ctx, X, lo=None, hi=None):
    bounds = [b for b in (lo, hi) if b is not None]

    def fn(x, *bs):
        it = iter(bs)
        if lo is not None:
            x = Binary("max", x, next(it))
        if hi is not None:
            x = Binary("min", x, next(it))
        return x
    emit_elementwise(ctx, fn, X, *bounds)


@register("Clip", since=6, until=6)
def Clip_6(ctx, X, *, min=-3.4028234663852886e38, max=3.4028234663852886e38):  # noqa: A002
    emit_elementwise(ctx, lambda x: Binary("min", Binary("max", x, _c(x, min)), _c(x, max)), X)


@register("Where", since=9)
def Where(ctx, cond, X, Y):
    emit_elementwise(ctx, lambda c, x, y: Select(c, x, y), cond, X, Y)


@register("Cast", since=6)
def Cast_(ctx, X, *, to, saturate=1, round_mode="up"):
    _cast_to(ctx, X, dtypes.from_onnx(to), to, saturate, round_mode)


@register("CastLike", since=15)
def CastLike(ctx, X, like, *, saturate=1, round_mode="up"):
    _cast_to(ctx, X, like.dtype, like.dtype, saturate, round_mode)


def _cast_to(ctx, X, target: str | None, to, saturate: int, round_mode: str) -> None:
    if target is None:
        raise ModelError(f"Cast to unsupported dtype code {to}")
    if round_mode not in _E8M0_ROUNDING:
        raise ModelError(f"Cast round_mode {round_mode!r} is not one of {list(_E8M0_ROUNDING)}")
    if target == "bool":
        emit_elementwise(ctx, lambda x: cmp("ne", x, 0), X)
    elif target == "float8_e8m0fnu":
        emit_elementwise(ctx, lambda x: to_e8m0(x, saturate, round_mode), X)
    else:
        emit_elementwise(ctx, lambda x: cast_saturating(x, target, saturate), X)


# -- the low-precision floats: the IR's Cast converts as ml_dtypes does (no saturation, ties to
# even); ONNX's saturate and round_mode attributes are spelled here around it ------------------
FLOAT8 = ("float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz")


def cast_saturating(x, target: str, saturate: int = 1):
    """Cast x to target; to a float8 type with saturate=1, values beyond the largest finite
    value (infinities too) clamp to it first. NaN fails both comparisons, so it stays NaN."""
    if target in dtypes.SUB_BYTE_INTS and dtypes.dtype(x.dtype).is_float:
        wide = x if x.dtype in ("float32", "float64") else Cast("float32", x)
        return Cast(target, Cast("int32", Unary("round", wide)))
    if target not in FLOAT8 or not saturate:
        return Cast(target, x)
    if x.dtype not in ("float32", "float64"):
        x = Cast("float32", x)
    top = float(ml_dtypes.finfo(dtypes.dtype(target).numpy).max)
    hi, lo = Const(top, x.dtype), Const(-top, x.dtype)
    return Cast(target, Select(cmp("gt", x, hi), hi, Select(cmp("lt", x, lo), lo, x)))


def _u32(value: int) -> Const:
    return Const(value, "uint32")


# guard bit, bits below it, and whether the exponent field is non-zero -> round up (ONNX's
# numpy_helper.to_float8e8m0, which the node suite's expected outputs come from)
_E8M0_ROUNDING = {
    "up": lambda guard, rest, e: Binary("or", cmp("ne", guard, 0), cmp("ne", rest, 0)),
    "nearest": lambda guard, rest, e: Binary("and", cmp("ne", guard, 0), Binary(
        "or", cmp("ne", rest, 0), cmp("ne", e, 0))),
    "down": lambda guard, rest, e: Const(False, "bool"),
}


def to_e8m0(x, saturate: int, round_mode: str):
    """The exponent field of float32 x (its sign ignored), rounded by round_mode on the
    mantissa; saturate keeps the largest exponent from rounding up into NaN (0xff)."""
    bits = Bitcast("uint32", x if x.dtype == "float32" else Cast("float32", x))
    e = Binary("bitand", Binary("shr", bits, _u32(23)), _u32(0xff))
    guard = Binary("bitand", bits, _u32(0x400000))
    up = _E8M0_ROUNDING[round_mode](guard, Binary("bitand", bits, _u32(0x3fffff)), e)
    if saturate:
        up = Binary("and", up, cmp("ne", e, 0xfe))
    code = Select(cmp("eq", e, 0xff), _u32(0xff), e + Select(up, _u32(1), _u32(0)))
    return Bitcast("float8_e8m0fnu", Cast("uint8", code))
