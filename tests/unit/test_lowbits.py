"""The 8-, 4- and 2-bit storage types (float8 e4m3fn/e4m3fnuz/e5m2/e5m2fnuz/e8m0, float4 e2m1,
int4/uint4/int2/uint2): one element per byte at the model's edges, computed in float32 (or
int8/uint8) inside. Each C converter is checked through compiled models: every code in the
decode direction, and tens of thousands of float32 values (ties, subnormals, NaN, infinities,
values just past the largest) in the encode direction, bit for bit against ml_dtypes and the
ONNX reference (saturate, round_mode)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import ml_dtypes
import numpy as np
import onnxc
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from tests.backend.spec_values import SUB_BYTE, wrapped

FLOATS = {"float8_e4m3fn": TensorProto.FLOAT8E4M3FN, "float8_e4m3fnuz": TensorProto.FLOAT8E4M3FNUZ,
          "float8_e5m2": TensorProto.FLOAT8E5M2, "float8_e5m2fnuz": TensorProto.FLOAT8E5M2FNUZ,
          "float4_e2m1fn": TensorProto.FLOAT4E2M1}
INTS = {"int4": (TensorProto.INT4, TensorProto.INT8),
        "uint4": (TensorProto.UINT4, TensorProto.UINT8),
        "int2": (TensorProto.INT2, TensorProto.INT8),
        "uint2": (TensorProto.UINT2, TensorProto.UINT8)}
RUNTIME_C = Path(__file__).resolve().parents[2] / "runtime_c"
CODES = {"float4_e2m1fn": 16, "int4": 16, "uint4": 16, "int2": 4, "uint2": 4}


def _node_model(op, inputs, out_type, attrs=None, opset=25):
    """One node over 1-D inputs [(name, onnx type, size)]; output 'y' of out_type."""
    vi = helper.make_tensor_value_info
    size = inputs[0][2]
    node = helper.make_node(op, [n for n, _, _ in inputs], ["y"], **(attrs or {}))
    graph = helper.make_graph([node], op.lower(), [vi(n, t, [s]) for n, t, s in inputs],
                              [vi("y", out_type, [size])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _run(model, **feed):
    return onnxc.compile(model, strict=True).run(None, feed)[0]


def _cast(x, to, **attrs):
    name = x.dtype.name
    model = _node_model("Cast", [("x", helper.np_dtype_to_tensor_dtype(x.dtype), x.size)], to,
                        dict(to=to, **attrs))
    assert name  # the input's dtype drove the graph input's type
    return _run(model, x=x)


def _codes(name: str) -> np.ndarray:
    return np.arange(CODES.get(name, 256), dtype=np.uint8).view(getattr(ml_dtypes, name))


def _same_bits(got: np.ndarray, want: np.ndarray):
    assert got.dtype == want.dtype
    bad = np.flatnonzero(got.view(np.uint8) != want.view(np.uint8))
    assert bad.size == 0, f"{bad.size} differ, e.g. {got[bad[:5]]} vs {want[bad[:5]]}"


def _probe_floats(name: str) -> np.ndarray:
    """Every finite value of the format, the ties between neighbours and the floats either
    side of them, values past the largest, float32 subnormals, specials and random bits."""
    values = np.unique(np.abs(_codes(name).astype(np.float64)))
    values = values[np.isfinite(values)]
    top = values[-1]
    ties = (values[:-1] + values[1:]) / 2
    above = np.concatenate([ties, [top * 1.0625, top * 1.125, top * 1.25, top * 2, 1e38]])
    wide = np.concatenate([values, above]).astype(np.float32)
    near = np.concatenate([wide, np.nextafter(wide, np.float32(np.inf)),
                           np.nextafter(wide, np.float32(0))])
    specials = np.array([0, 1e-45, 1e-40, 1.1754944e-38, np.inf, np.nan], np.float32)
    rand = np.random.default_rng(7).integers(0, 2**32, 20000, dtype=np.uint64)
    mags = np.concatenate([near, specials, rand.astype(np.uint32).view(np.float32)])
    return np.concatenate([mags, -mags])


def _nan_agnostic(arr: np.ndarray) -> np.ndarray:
    """The codes with every NaN of a format written as its canonical NaN, sign kept."""
    f = arr.astype(np.float32)
    canon = np.where(np.signbit(f), -np.float32(np.nan), np.float32(np.nan)).astype(arr.dtype)
    return np.where(np.isnan(f), canon, arr)


@pytest.mark.parametrize("name", [*FLOATS, "float8_e8m0fnu"])
def test_float_decode_every_code(name):
    codes = _codes(name)
    got, want = _cast(codes, TensorProto.FLOAT), codes.astype(np.float32)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    finite = ~np.isnan(want)
    _same_bits(got[finite], want[finite])       # -0.0 included


@pytest.mark.parametrize("name", FLOATS)
def test_float_encode_as_ml_dtypes(name):
    """saturate=0 is the plain conversion: overflow to inf or NaN as the format has them."""
    x = _probe_floats(name)
    got = _cast(x, FLOATS[name], saturate=0)
    _same_bits(_nan_agnostic(got), _nan_agnostic(x.astype(getattr(ml_dtypes, name))))


@pytest.mark.parametrize("name", [n for n in FLOATS if n.startswith("float8")])
@pytest.mark.parametrize("saturate", [0, 1])
def test_float8_cast_matches_onnx_reference(name, saturate):
    x = _probe_floats(name)
    model = _node_model("Cast", [("x", TensorProto.FLOAT, x.size)], FLOATS[name],
                        dict(to=FLOATS[name], saturate=saturate))
    want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    got = _run(model, x=x)
    _same_bits(_nan_agnostic(got), _nan_agnostic(want))
    top = ml_dtypes.finfo(getattr(ml_dtypes, name)).max
    beyond = got[np.isinf(x)].astype(np.float32)
    assert np.all(np.abs(beyond) == top) if saturate else not np.any(np.isfinite(beyond))


@pytest.mark.parametrize("round_mode", ["up", "nearest", "down"])
@pytest.mark.parametrize("saturate", [0, 1])
def test_e8m0_cast_matches_onnx(round_mode, saturate):
    x = np.abs(_probe_floats("float8_e5m2"))
    x = np.concatenate([x, np.float32(2.0) ** np.arange(-149, 128, dtype=np.float32) * 1.5])
    got = _cast(x, TensorProto.FLOAT8E8M0, saturate=saturate, round_mode=round_mode)
    _same_bits(got, numpy_helper.to_float8e8m0(x, bool(saturate), round_mode))


_ENCODE_MAIN = """#include <stdio.h>
#include "onnxc_vmath.h"
int main(void) {
  float f;
  while (fread(&f, sizeof f, 1, stdin) == 1) putchar(onnxc_f32_to_f8e8m0(f));
  return 0;
}
"""


def test_e8m0_runtime_encoder(tmp_path):
    """No ONNX op but Cast (spelled in the IR by round_mode) computes an e8m0 value, so the
    runtime's plain float -> e8m0 conversion is driven directly from C. It is ONNX's Cast to
    FLOAT8E8M0 with round_mode "nearest" and saturate 0: the values of onnx's reference
    (ties up; below the smallest code to that code; past the largest to NaN), and NaN for zero
    and negative values (the spec's table: zero is NaN without saturation; negative values are
    unspecified). The expected codes come from onnx's own rule, not from ml_dtypes, whose
    conversion of the subnormal range changed between versions."""
    (tmp_path / "enc.c").write_text(_ENCODE_MAIN)
    exe = tmp_path / "enc"
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{RUNTIME_C}",
                    str(tmp_path / "enc.c"), "-o", str(exe), "-lm"], check=True)
    x = _probe_floats("float8_e5m2")
    x = np.concatenate([x, np.float32(2.0) ** np.arange(-149, 128, dtype=np.float32) * 1.5])
    out = subprocess.run([str(exe)], input=x.tobytes(), capture_output=True, check=True).stdout
    got = np.frombuffer(out, np.uint8)
    nearest = numpy_helper.to_float8e8m0(x, saturate=False, round_mode="nearest")
    want = np.where(x > 0, nearest.view(np.uint8), np.uint8(0xFF))
    want = np.where(np.isnan(x), np.uint8(0xFF), want)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{bad.size} differ, e.g. {x[bad[:5]]}: {got[bad[:5]]} vs {want[bad[:5]]}"


@pytest.mark.parametrize("name", INTS)
def test_int_decode_every_code(name):
    code, wide = INTS[name]
    codes = _codes(name)
    assert np.array_equal(_cast(codes, wide), codes.astype(np.int32))
    assert np.array_equal(_cast(codes, TensorProto.FLOAT), codes.astype(np.float32))


@pytest.mark.parametrize("name", INTS)
def test_int_encode_wraps(name):
    """Integers keep their low bits (ONNX: out of range, discard the higher bits). Floats
    round to the nearest integer, ties to even, then keep the low bits the same way (ONNX's
    docs/technical/int4.md and int2.md). The expected values are computed here, not by
    ml_dtypes, which truncates instead of rounding and has both wrapped (0.5) and zeroed (0.7)
    values out of range."""
    code, _ = INTS[name]
    bits, signed = SUB_BYTE[name.upper()]
    ints = np.arange(-300, 300, dtype=np.int32)
    assert np.array_equal(_cast(ints, code).astype(np.int64), wrapped(ints, bits, signed))
    floats = np.concatenate([ints[::7].astype(np.float32),
                             np.linspace(-20, 20, 161, dtype=np.float32),
                             np.arange(-9.5, 10, 0.5, dtype=np.float32)])    # ties
    got = _cast(floats, code)
    assert got.dtype == getattr(ml_dtypes, name)
    assert np.array_equal(got.astype(np.int64), wrapped(np.rint(floats), bits, signed))


@pytest.mark.parametrize("name", ["int4", "uint4", "int2", "uint2", "float8_e4m3fn",
                                  "float4_e2m1fn"])
def test_quantize_dequantize_round_trip(name):
    """QuantizeLinear saturates (integers round half to even first); DequantizeLinear widens."""
    t = INTS[name][0] if name in INTS else FLOATS[name]
    x = np.linspace(-40, 40, 321, dtype=np.float32)
    scale, zero = np.array(0.5, np.float32), np.array(1 if "uint" in name else 0)
    zero = zero.astype(getattr(ml_dtypes, name))
    vi = helper.make_tensor_value_info
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    graph = helper.make_graph(nodes, "qdq", [vi("x", TensorProto.FLOAT, [x.size]),
                                             vi("s", TensorProto.FLOAT, []), vi("z", t, [])],
                              [vi("y", TensorProto.FLOAT, [x.size]), vi("q", t, [x.size])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)])
    feed = {"x": x, "s": scale, "z": zero}
    want = ReferenceEvaluator(model).run(None, feed)
    got = onnxc.compile(model, strict=True).run(None, feed)
    _same_bits(got[1], want[1])
    assert np.array_equal(got[0], want[0])


def test_float8_model_edges():
    """float8 in, float8 out, float32 arithmetic between: each result rounded once, products
    past 448 give NaN (saturate=0) or 448 (saturate=1); a Transpose keeps every code."""
    rng = np.random.default_rng(3)
    t, f8 = TensorProto.FLOAT8E4M3FN, ml_dtypes.float8_e4m3fn
    a, b = (rng.normal(0, 30, (16, 16)).astype(f8) for _ in range(2))
    a[0] = _codes("float8_e4m3fn")[:16]
    vi = helper.make_tensor_value_info
    nodes = [helper.make_node("Cast", ["a"], ["fa"], to=TensorProto.FLOAT),
             helper.make_node("Cast", ["b"], ["fb"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["fa", "fb"], ["p"]),
             helper.make_node("Cast", ["p"], ["y"], to=t, saturate=0),
             helper.make_node("Cast", ["p"], ["s"], to=t),
             helper.make_node("Transpose", ["a"], ["at"])]
    graph = helper.make_graph(nodes, "f8", [vi("a", t, [16, 16]), vi("b", t, [16, 16])],
                              [vi(n, t, [16, 16]) for n in ("y", "s", "at")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)])
    got = onnxc.compile(model, strict=True).run(None, {"a": a, "b": b})
    want = ReferenceEvaluator(model).run(None, {"a": a, "b": b})
    for g, w in zip(got, want):
        _same_bits(_nan_agnostic(g.ravel()), _nan_agnostic(w.ravel()))
    assert np.isnan(got[0].astype(np.float32)).any()
    assert (got[1].astype(np.float32) == 448).any()
