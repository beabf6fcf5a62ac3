"""Tests of the C runtime in runtime_c/: vector math accuracy and the thread pool.

The C drivers next to this file are compiled with gcc into pytest temporary
folders, with the flags every model library uses (plus -mavx2 -mfma for the
vector math where the CPU has them), and also under ASan/UBSan and TSan.
Run with -s to see the measured errors and the parallel_for overhead.
"""

import ctypes
import math
import os
import platform
import random
import shutil
import struct
import subprocess
import threading
from array import array
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "runtime_c"
HERE = Path(__file__).resolve().parent
CFLAGS = "-std=c11 -O2 -Wall -Wextra -Werror -fPIC -fvisibility=hidden -pthread".split()
ASAN = (
    "-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all".split()
)
TSAN = ["-O1", "-g", "-fsanitize=thread"]

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not found")


def _has_avx2():
    if platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx2" in flags and " fma" in flags


VMATH_FLAGS = ["-mavx2", "-mfma"] if _has_avx2() else []


def build(folder, name, sources, extra=()):
    out = Path(folder) / name
    cmd = ["gcc", *CFLAGS, *extra, f"-I{RUNTIME}", *map(str, sources), "-o", str(out), "-lm"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stderr}"
    return out


def run(exe, *args, env=None, timeout=60):
    res = subprocess.run(
        [str(exe), *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout
    )
    assert res.returncode == 0, f"{exe.name} {args}: rc={res.returncode}\n{res.stderr[-4000:]}"
    return res.stdout


# --------------------------------------------------------------------------- vmath

FLT_MAX = 3.4028234663852886e38
FLT_MIN = 2.0**-126
SUB_ULP = 2.0**-149
INF, NAN = math.inf, math.nan
WIDTHS = (4, 8, 16)


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def from_bits(b):
    return struct.unpack("<f", struct.pack("<I", b))[0]


def make_points():
    """A few thousand float32 inputs: grids, magnitudes, edge cases, random bits."""
    rng = random.Random(1234)
    # exp/log/tanh/erf thresholds, rounding ties, int32 limits, float limits
    edge = [
        float(v)
        for v in """
        0 -0 inf nan 3.4028234663852886e38 1.1754943508222875e-38 1.401298464324817e-45
        1e-40 1e-30 1e-7 0.5 1.5 2.5 3.5 0.49999997 0.50000006 8388607.5 8388608 8388609
        16777216 2147483648 1099511627776 1e10 1e30 0.625 0.62499994 1 2 3.9 4 10 20 44
        88.72 88.7228 88.73 89 100 87.3 88.7 103 103.9 104 105 1000""".split()
    ]
    pts = edge + [-x for x in edge]
    pts += [-10 + i * 0.01 for i in range(2001)]
    pts += [-110 + i * 0.5 for i in range(441)]
    pts += [s * 10 ** (k / 4) for k in range(-180, 153) for s in (1, -1)]
    pts += [1 + k * 2.0**-23 for k in range(-40, 41)]
    pts += [rng.uniform(-20, 20) for _ in range(400)]
    pts += [from_bits(rng.getrandbits(32)) for _ in range(400)]
    pts = [f32(p) if math.isfinite(p) else p for p in pts]
    pts += [0.0] * (-len(pts) % 16)
    return pts


def write_input(path, a):
    rng = random.Random(99)
    n = len(a)
    b = [a[(i * 7 + 3) % n] for i in range(n)]
    mask = [-1 if rng.random() < 0.5 else 0 for _ in range(n)]
    with open(path, "wb") as f:
        f.write(struct.pack("<i", n))
        f.write(array("f", a).tobytes())
        f.write(array("f", b).tobytes())
        f.write(array("i", mask).tobytes())
    return b, mask


def read_output(path, n):
    """{(op, width): array of floats}; width 1 is the scalar form."""
    data, out, pos = Path(path).read_bytes(), {}, 0
    while pos < len(data):
        name = data[pos : pos + 16].rstrip(b"\0").decode()
        (width,) = struct.unpack_from("<i", data, pos + 16)
        pos += 20
        out[(name, width)] = array("f", data[pos : pos + 4 * n])
        pos += 4 * n
    return out


def _vmath_run(folder, extra):
    exe = build(folder, "vmath_driver", [HERE / "vmath_driver.c"], [*VMATH_FLAGS, *extra])
    a = make_points()
    b, mask = write_input(folder / "in.bin", a)
    run(exe, folder / "in.bin", folder / "out.bin")
    return {"a": a, "b": b, "mask": mask, "out": read_output(folder / "out.bin", len(a))}


@pytest.fixture(scope="module")
def vm(tmp_path_factory):
    return _vmath_run(tmp_path_factory.mktemp("vmath"), [])


# Float64 references (Python's math), with the float32 edge semantics.


def ref_exp(x):
    return x if math.isnan(x) else INF if x > 709 else math.exp(x)


def ref_log(x):
    if math.isnan(x) or x < 0:
        return NAN
    return -INF if x == 0 else INF if x == INF else math.log(x)


def ref_sigmoid(x):
    if math.isnan(x):
        return x
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)
    return e / (1 + e)


SMOOTH = {  # op: (reference, relative tolerance, absolute tolerance)
    "exp": (ref_exp, 2e-6, None),
    "log": (ref_log, 2e-6, None),
    "tanh": (math.tanh, 2e-6, None),
    "sigmoid": (ref_sigmoid, 2e-6, None),
    "erf": (math.erf, None, 1e-6),
}


def smooth_errors(xs, outs, ref, rtol, atol):
    """(max relative error over normal results, max absolute error, failures)."""
    max_rel = max_abs = 0.0
    bad = []
    for x, y in zip(xs, outs, strict=True):
        r = ref(x)
        if math.isnan(r) or math.isnan(y):
            if not (math.isnan(r) and math.isnan(y)):
                bad.append((x, y, r))
            continue
        if abs(r) > FLT_MAX:  # overflows float32: inf, or FLT_MAX right at the edge
            if y != math.copysign(INF, r) and abs(y - r) > 2e-6 * abs(r):
                bad.append((x, y, r))
            continue
        if math.isinf(y):
            bad.append((x, y, r))
            continue
        err = abs(y - r)
        max_abs = max(max_abs, err)
        if abs(r) >= FLT_MIN:
            max_rel = max(max_rel, err / abs(r))
        if atol is not None:
            ok = err <= atol
        else:  # relative for normal results, 2 subnormal steps below them
            ok = err <= rtol * abs(r) if abs(r) >= FLT_MIN else err <= 2 * SUB_ULP
        if not ok:
            bad.append((x, y, r))
    return max_rel, max_abs, bad


@pytest.mark.parametrize("op", sorted(SMOOTH))
def test_vmath_accuracy(vm, op):
    ref, rtol, atol = SMOOTH[op]
    for width in (*WIDTHS, 1):
        max_rel, max_abs, bad = smooth_errors(vm["a"], vm["out"][(op, width)], ref, rtol, atol)
        print(f"{op:8s} W={width:2d} max_rel={max_rel:.3g} max_abs={max_abs:.3g}")
        assert not bad, f"{op} W={width}: {len(bad)} bad, e.g. (x, got, want) {bad[:5]}"


def test_vmath_erf_relative_near_zero(vm):
    """erf's odd polynomial keeps relative accuracy for small |x| too."""
    xs = [x for x in vm["a"] if 1e-30 < abs(x) <= 1]
    outs = [y for x, y in zip(vm["a"], vm["out"][("erf", 8)], strict=True) if 1e-30 < abs(x) <= 1]
    max_rel, _, bad = smooth_errors(xs, outs, math.erf, 2e-6, None)
    print(f"erf      |x|<=1 max_rel={max_rel:.3g}")
    assert not bad, bad[:5]


def test_vmath_edge_values(vm):
    a, out = vm["a"], vm["out"]
    pick = {bits(x): i for i, x in enumerate(a)}  # by bits: keeps 0.0 and -0.0 apart

    def val(op, x):
        return out[(op, 8)][pick[bits(x)]]

    assert val("exp", 89.0) == INF and val("exp", -104.0) == 0.0 and val("exp", -INF) == 0.0
    assert val("exp", INF) == INF and val("exp", 0.0) == 1.0 and val("exp", 88.72) < INF
    assert val("log", 0.0) == -INF and val("log", -0.0) == -INF and math.isnan(val("log", -1.0))
    assert val("log", INF) == INF and val("log", 1.0) == 0.0 and val("log", SUB_ULP) < -103
    assert val("tanh", 20.0) == 1.0 and val("tanh", -INF) == -1.0
    assert val("tanh", 1e-30) == f32(1e-30) and bits(val("tanh", -0.0)) == bits(-0.0)
    assert 0.0 <= val("sigmoid", -100.0) < 1e-43 and val("sigmoid", 100.0) == 1.0
    assert val("sigmoid", -INF) == 0.0 and val("sigmoid", INF) == 1.0
    assert val("erf", 10.0) == 1.0 and val("erf", -INF) == -1.0
    for op in ("tanh", "erf", "sqrt", "floor", "ceil", "round", "abs"):
        assert bits(val(op, 0.0)) == bits(0.0), op
    for op in ("tanh", "erf", "sqrt", "floor", "ceil", "round"):
        assert bits(val(op, -0.0)) == bits(-0.0), op
    i_nan = next(i for i, x in enumerate(a) if math.isnan(x))
    for op in SMOOTH:
        for width in WIDTHS:
            assert math.isnan(out[(op, width)][i_nan]), (op, width)


def ref_round_like(fn):
    """Integer rounding with C's sign of zero and pass-through of big/inf/NaN."""

    def ref(x):
        if not math.isfinite(x) or abs(x) >= 2**23:
            return x
        return math.copysign(float(fn(x)), x)

    return ref


def ref_sqrt(x):
    if math.isnan(x) or x < 0:
        return NAN
    return x if x == 0 or x == INF else f32(math.sqrt(x))


EXACT_UNARY = {
    "abs": abs,
    "floor": ref_round_like(math.floor),
    "ceil": ref_round_like(math.ceil),
    "round": ref_round_like(round),  # Python's round is half to even
    "sqrt": ref_sqrt,
}


def same_float(y, r):
    return math.isnan(y) if math.isnan(r) else bits(y) == bits(r)


@pytest.mark.parametrize("op", sorted(EXACT_UNARY))
def test_vmath_exact_unary(vm, op):
    ref = EXACT_UNARY[op]
    for width in WIDTHS:
        bad = [
            (x, y, ref(x))
            for x, y in zip(vm["a"], vm["out"][(op, width)], strict=True)
            if not same_float(y, ref(x))
        ]
        assert not bad, f"{op} W={width}: {len(bad)} bad, e.g. {bad[:5]}"


def test_vmath_max_min_select(vm):
    a, b, mask = vm["a"], vm["b"], vm["mask"]
    for width in WIDTHS:
        for op, fn in (("max", max), ("min", min)):
            for x, y, got in zip(a, b, vm["out"][(op, width)], strict=True):
                if math.isnan(x) or math.isnan(y):
                    assert math.isnan(got), (op, width, x, y, got)  # NaN propagates
                else:
                    assert got == fn(x, y), (op, width, x, y, got)
        sel = vm["out"][("select", width)]
        rows = zip(sel, a, b, mask, strict=True)
        assert all(bits(s) == bits(x if m else y) for s, x, y, m in rows)


def test_vmath_load_store_broadcast(vm):
    want = [bits(x) for x in vm["a"]]
    for width in WIDTHS:
        assert [bits(y) for y in vm["out"][("loadstore", width)]] == want
        assert [bits(y) for y in vm["out"][("broadcast", width)]] == want


def test_vmath_widths_and_scalar_agree(vm):
    """Every width runs the same code: identical bits lane by lane."""
    out = vm["out"]
    for op in {name for name, _ in out}:
        base = out[(op, 4)].tobytes()
        for width in (8, 16, 1):
            if (op, width) in out:
                assert out[(op, width)].tobytes() == base, (op, width)


def test_vmath_accuracy_with_fma_contraction(tmp_path):
    """Kernels built as gnu11 (or with -ffp-contract=fast) fuse a*b+c into FMAs:
    different bits, same accuracy bounds."""
    res = _vmath_run(tmp_path, ["-std=gnu11", "-ffp-contract=fast"])
    for op, (ref, rtol, atol) in sorted(SMOOTH.items()):
        max_rel, max_abs, bad = smooth_errors(res["a"], res["out"][(op, 8)], ref, rtol, atol)
        print(f"{op:8s} fma max_rel={max_rel:.3g} max_abs={max_abs:.3g}")
        assert not bad, f"{op}: {len(bad)} bad, e.g. {bad[:5]}"


def test_vmath_sanitized_matches(vm, tmp_path):
    """ASan/UBSan build: no report, and the same results as the -O2 build."""
    san = _vmath_run(tmp_path, ASAN)
    for key, values in vm["out"].items():
        assert san["out"][key].tobytes() == values.tobytes(), key


@pytest.mark.parametrize(
    "target",
    [[], ["-mavx2", "-mfma"], ["-mavx512f"], ["-O0"]],
    ids=["baseline", "avx2", "avx512", "O0"],
)
def test_vmath_compiles_warning_free(tmp_path, target):
    if platform.machine() not in ("x86_64", "AMD64") and any(f.startswith("-m") for f in target):
        pytest.skip("x86 target flags")
    src = HERE / "vmath_use.c"
    cmd = ["gcc", *CFLAGS, *target, f"-I{RUNTIME}", "-c", str(src), "-o", str(tmp_path / "use.o")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "warning:" not in res.stderr, res.stderr  # notes (psABI, see the header) are fine


# --------------------------------------------------------------------------- pool


@pytest.fixture(scope="module")
def pool_exe(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pool")
    return build(folder, "pool_driver", [HERE / "pool_driver.c", RUNTIME / "onnxc_runtime.c"])


def test_pool_covers_every_index_once(pool_exe):
    # 264 (threads, n, grain) combos x 100, then 2 x 10000 back-to-back small
    # tasks per thread count (1..4): a lost or doubled chunk fails.
    run(pool_exe, "cover", 1000)


def test_two_pools_from_two_threads(pool_exe):
    run(pool_exe, "pools", 5000)


def test_pool_create_destroy_churn(pool_exe):
    run(pool_exe, "churn", 500)


def test_pool_edge_cases(pool_exe):
    run(pool_exe, "misc")
    run(pool_exe, "clamp")


def _cpus():
    return max(1, min(1024, os.sysconf("SC_NPROCESSORS_ONLN")))


@pytest.mark.parametrize(
    "value,want",
    [
        (None, None),
        ("3", 3),
        ("1", 1),
        (" 2 ", 2),
        ("+4", 4),
        ("5000", 1024),
        ("99999999999999999999", 1024),
        ("0", None),
        ("-2", None),
        ("abc", None),
        ("2x", None),
        ("", None),
        ("0x10", None),
        ("1.5", None),
    ],
)
def test_default_num_threads_env(pool_exe, value, want):
    env = {k: v for k, v in os.environ.items() if k != "ONNXC_NUM_THREADS"}
    if value is not None:
        env["ONNXC_NUM_THREADS"] = value
    got = int(run(pool_exe, "env", env=env))
    assert got == (want if want is not None else _cpus())


def test_status_strings(pool_exe):
    lines = run(pool_exe, "status").splitlines()
    assert lines == [
        "unknown status",
        "ok",
        "invalid argument",
        "allocation failed",
        "runtime error",
        "device error",
        "unknown status",
    ]


def test_parallel_for_overhead(pool_exe):
    """Reported, not asserted: the machine may be loaded."""
    print("\nempty parallel_for:\n" + run(pool_exe, "bench", 100000))


def test_pool_creation_failures(tmp_path):
    """pthread_create / posix_memalign failures (injected with ld --wrap) give
    the documented status, leak nothing (ASan's leak check) and never abort."""
    wrap = ["-DWRAP_FAILURES", "-Wl,--wrap=pthread_create,--wrap=posix_memalign"]
    exe = build(
        tmp_path, "pool_fail", [HERE / "pool_driver.c", RUNTIME / "onnxc_runtime.c"], [*ASAN, *wrap]
    )
    run(exe, "failures")


def test_pool_asan_ubsan(tmp_path):
    exe = build(tmp_path, "pool_asan", [HERE / "pool_driver.c", RUNTIME / "onnxc_runtime.c"], ASAN)
    for args in (("cover", 100), ("pools", 500), ("churn", 200), ("misc",)):
        run(exe, *args)


def _tsan_works(folder):
    src = folder / "t.c"
    src.write_text(
        "#include <pthread.h>\nstatic void *f(void *p) { return p; }\n"
        "int main(void) { pthread_t t; pthread_create(&t, 0, f, 0);\n"
        "  return pthread_join(t, 0); }\n"
    )
    exe = folder / "t"
    res = subprocess.run(
        ["gcc", "-fsanitize=thread", "-pthread", str(src), "-o", str(exe)], capture_output=True
    )
    if res.returncode != 0:
        return "libtsan is not available"
    res = subprocess.run([str(exe)], capture_output=True, text=True)
    return None if res.returncode == 0 else f"TSan programs do not run here: {res.stderr[:200]}"


def test_pool_tsan(tmp_path):
    reason = _tsan_works(tmp_path)
    if reason:
        pytest.skip(reason)
    exe = build(tmp_path, "pool_tsan", [HERE / "pool_driver.c", RUNTIME / "onnxc_runtime.c"], TSAN)
    env = dict(os.environ, TSAN_OPTIONS="halt_on_error=1:exitcode=66")
    for args in (("cover", 100), ("pools", 500), ("churn", 100), ("misc",)):
        run(exe, *args, env=env, timeout=120)


# --------------------------------------------------------------------------- linking


def test_two_model_libraries_in_one_process(tmp_path):
    """Each library has its own hidden copy of the runtime; both run at once."""
    src = HERE / "model_lib.c"
    libs = []
    for name in ("model_a_run", "model_b_run"):
        lib = build(
            tmp_path,
            f"lib{name}.so",
            [src, RUNTIME / "onnxc_runtime.c"],
            ["-shared", f"-DNAME={name}"],
        )
        if shutil.which("nm"):
            syms = subprocess.run(
                ["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True, check=True
            ).stdout
            assert "onnxc_" not in syms and name in syms, syms
        libs.append(getattr(ctypes.CDLL(str(lib)), name))
    results = []
    threads = [threading.Thread(target=lambda f=f: results.append(f(2, 3000))) for f in libs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [0, 0]


# --------------------------------------------------------------------------- 16-bit floats

def test_half_conversions_match_numpy(tmp_path):
    """Widening is exact for every pattern; narrowing rounds to nearest even like numpy's
    float16 and ml_dtypes' bfloat16, with NaN, inf, overflow and subnormals."""
    import ml_dtypes
    import numpy as np
    exe = build(tmp_path, "half_driver", [HERE / "half_driver.c"])
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, 200000, dtype=np.uint64).astype(np.uint32)
    floats = np.concatenate([bits.view(np.float32), np.array(
        [0.0, -0.0, 65504.0, 65519.99, 65520.0, 1e-8, 2.0**-25, 3 * 2.0**-25, np.inf, -np.inf,
         np.nan], np.float32)])
    floats.tofile(tmp_path / "in.bin")
    run(exe, tmp_path / "in.bin", tmp_path / "out.bin")
    data = np.fromfile(tmp_path / "out.bin", np.uint8)
    widened = data[:65536 * 8].view(np.float32).reshape(-1, 2)
    patterns = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    for col, half in ((0, np.float16), (1, ml_dtypes.bfloat16)):
        want = patterns.view(half).astype(np.float32)
        np.testing.assert_array_equal(widened[:, col], want)
    narrowed = data[65536 * 8:].view(np.uint16).reshape(-1, 2)
    for col, half in ((0, np.float16), (1, ml_dtypes.bfloat16)):
        want = floats.astype(half)
        got = narrowed[:, col].view(half)
        nan = np.isnan(want.astype(np.float32))
        assert np.isnan(got[nan].astype(np.float32)).all()
        np.testing.assert_array_equal(got[~nan].view(np.uint16), want[~nan].view(np.uint16))
