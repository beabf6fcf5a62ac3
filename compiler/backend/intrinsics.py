"""One table of how IR operations are spelled in C, scalar and vector, with per-ISA entries.

Keys are (op, dtype, lanes); lanes 1 is scalar. A value is a format string over the operands
{0}, {1}, {2}, or the name of a function applied to them. Per-ISA rows override the portable
ones when the target has the feature. The LLVM backend reads the same rows (llvm_spell): the
libm names, the fused forms per ISA, and the onnxc helpers, which it calls out of line
(runtime_c/onnxc_vmath_export.c) so that both backends compute the same bits.
"""
from __future__ import annotations

from .. import dtypes

_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "/", "mod": "%",
          "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!=",
          "and": "&&", "or": "||", "xor": "!="}
# Integer bit operations; {t} is the operand's C type: C computes small ints as int, the cast
# brings a shifted or inverted value back to its own width.
_BITWISE = {"bitand": "({0} & {1})", "bitor": "({0} | {1})", "bitxor": "({0} ^ {1})",
            "shl": "(({t})({0} << {1}))", "shr": "({0} >> {1})", "bitnot": "(({t})~{0})"}

# Conversions between the storage types and their compute types (runtime_c/onnxc_vmath.h).
FLOAT_STORAGE = {"float16": "f16", "bfloat16": "bf16", "float8_e4m3fn": "f8e4m3fn",
                  "float8_e4m3fnuz": "f8e4m3fnuz", "float8_e5m2": "f8e5m2",
                  "float8_e5m2fnuz": "f8e5m2fnuz", "float8_e8m0fnu": "f8e8m0",
                  "float4_e2m1fn": "f4e2m1"}
# a sub-byte integer keeps its two's-complement code in the low bits of its byte
_INT_STORAGE = {("int4", "int8"): "onnxc_i4_to_i8({0})", ("int2", "int8"): "onnxc_i2_to_i8({0})",
                ("uint4", "uint8"): "((uint8_t)({0} & 0xf))",
                ("uint2", "uint8"): "((uint8_t)({0} & 0x3))",
                ("int8", "int4"): "((uint8_t)({0} & 0xf))",
                ("int8", "int2"): "((uint8_t)({0} & 0x3))",
                ("uint8", "uint4"): "((uint8_t)({0} & 0xf))",
                ("uint8", "uint2"): "((uint8_t)({0} & 0x3))"}
CONVERSIONS = {**{(t, "float32"): f"onnxc_{c}_to_f32({{0}})" for t, c in FLOAT_STORAGE.items()},
               **{("float32", t): f"onnxc_f32_to_{c}({{0}})" for t, c in FLOAT_STORAGE.items()},
               **_INT_STORAGE}

# libm functions of one argument whose C name is the op's name (f-suffixed for float32)
_TRIG = ("tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh")
_LIBM_F32 = {"sqrt": "sqrtf", "exp": "expf", "log": "logf", "tanh": "tanhf", "erf": "erff",
             "floor": "floorf", "ceil": "ceilf", "round": "nearbyintf", "sin": "sinf",
             "cos": "cosf", "abs": "fabsf", "max": "onnxc_max_f", "min": "onnxc_min_f",
             "pow": "powf", "fma": "fmaf", "sigmoid": "onnxc_sigmoid_f", "fmod": "fmodf",
             "round_tf32": "onnxc_round_tf32",
             **{f: f + "f" for f in _TRIG}}
_LIBM_F64 = {"sqrt": "sqrt", "exp": "exp", "log": "log", "tanh": "tanh", "erf": "erf",
             "floor": "floor", "ceil": "ceil", "round": "nearbyint", "sin": "sin", "cos": "cos",
             "abs": "fabs", "max": "fmax", "min": "fmin", "pow": "pow", "fma": "fma",
             "sigmoid": "onnxc_sigmoid_d", "fmod": "fmod", **{f: f for f in _TRIG}}
_INT = {"abs": "(({0}) < 0 ? -({0}) : ({0}))", "max": "(({0}) > ({1}) ? ({0}) : ({1}))",
        "min": "(({0}) < ({1}) ? ({0}) : ({1}))", "pow": "onnxc_ipow({0}, {1})",
        "fma": "(({0}) * ({1}) + ({2}))", "fmod": "(({0}) % ({1}))"}

VECTOR_FUNCS = ("exp", "log", "tanh", "erf", "sigmoid", "sqrt", "abs", "max", "min", "floor",
                "ceil", "round")

# (feature, op, lanes) -> intrinsic; operands in IR order (a, b, c for fma = a * b + c).
ISA_ROWS = {
    ("fma", "fma", 4): "_mm_fmadd_ps({0}, {1}, {2})",
    ("fma", "fma", 8): "_mm256_fmadd_ps({0}, {1}, {2})",
    ("avx512f", "fma", 16): "_mm512_fmadd_ps({0}, {1}, {2})",
    ("neon", "fma", 4): "vfmaq_f32({2}, {0}, {1})",
}
ISA_HEADERS = {"fma": "immintrin.h", "avx512f": "immintrin.h", "neon": "arm_neon.h"}


def vector_type(dtype: str, lanes: int) -> str:
    suffix = {"float32": "f", "bool": "i", "int32": "i"}[dtype]
    return f"onnxc_v{lanes}{suffix}"


def spell(op: str, dtype: str, lanes: int, features=()) -> str:
    """The C spelling (format string) of op on operands of dtype x lanes."""
    if lanes > 1:
        for feature in features:
            row = ISA_ROWS.get((feature, op, lanes))
            if row:
                return row
        if op in _INFIX:
            return "({0} " + _INFIX[op] + " {1})"
        if op == "neg":
            return "(-{0})"
        if op == "fma":
            return "({0} * {1} + {2})"
        if op == "select":
            return f"onnxc_select_v{lanes}f({{0}}, {{1}}, {{2}})"
        if op in VECTOR_FUNCS:
            return f"onnxc_{op}_v{lanes}f" + "({0}" + (", {1})" if op in ("max", "min") else ")")
        raise KeyError(f"no vector form for {op}")
    if op in _INFIX:
        return "({0} " + _INFIX[op] + " {1})"
    if op == "neg":
        return "(-{0})"
    if op in _BITWISE:
        return _BITWISE[op].replace("{t}", dtypes.dtype(dtype).c_type)
    if op == "not":
        return "(!{0})"
    if op == "reciprocal":
        return "(1.0f / {0})" if dtype == "float32" else "(1.0 / {0})"
    table = _LIBM_F32 if dtype == "float32" else _LIBM_F64 if dtype == "float64" else _INT
    fn = table[op]
    if "{" in fn:
        return fn
    arity = {"max": 2, "min": 2, "pow": 2, "fmod": 2, "fma": 3}.get(op, 1)
    return fn + "(" + ", ".join(f"{{{i}}}" for i in range(arity)) + ")"


def headers(features) -> list[str]:
    return sorted({ISA_HEADERS[f] for f in features if f in ISA_HEADERS})


# Exact operations LLVM has as intrinsics (same bits as the C spellings: IEEE square root,
# sign clearing, rounding in the default mode); "round" is C's nearbyint, half to even.
LLVM_INTRINSICS = {"sqrt": "llvm.sqrt", "abs": "llvm.fabs", "floor": "llvm.floor",
                   "ceil": "llvm.ceil", "round": "llvm.nearbyint", "fma": "llvm.fma"}
# C's fmax/fmin (float64 max/min: NaN loses) are LLVM's maxnum/minnum
_LLVM_NUM = {"max": "llvm.maxnum", "min": "llvm.minnum"}
EXPORT_PREFIX = "onnxc_x_"   # onnxc_vmath_export.c's out-of-line copies of onnxc_* helpers


def llvm_spell(op: str, dtype: str, lanes: int, features=()) -> tuple[str, str]:
    """How the LLVM backend computes op on float operands of dtype x lanes, as (kind, name):
    ("intrinsic", llvm.*), ("call", a libm or exported helper function taking and returning
    scalars), ("vector_call", an exported helper over float[lanes] through pointers),
    ("nan_rule", "") for max/min where a NaN operand wins, ("unfused", "") for a * b + c in
    two roundings. It follows spell(): the same op gets the same semantics in both backends."""
    if lanes > 1:
        if op == "fma":
            fused = any((f, op, lanes) in ISA_ROWS for f in features)
            return ("intrinsic", LLVM_INTRINSICS[op]) if fused else ("unfused", "")
        if op in ("max", "min"):
            return "nan_rule", ""
        if op in LLVM_INTRINSICS:
            return "intrinsic", LLVM_INTRINSICS[op]
        if op in VECTOR_FUNCS:
            return "vector_call", f"{EXPORT_PREFIX}{op}_v{lanes}f"
        raise KeyError(f"no vector form for {op}")
    table = _LIBM_F32 if dtype == "float32" else _LIBM_F64
    if op in LLVM_INTRINSICS:
        return "intrinsic", LLVM_INTRINSICS[op]
    if op in _LLVM_NUM:
        return ("nan_rule", "") if table[op].startswith("onnxc_") else ("intrinsic", _LLVM_NUM[op])
    name = table[op]
    return "call", EXPORT_PREFIX + name[len("onnxc_"):] if name.startswith("onnxc_") else name
