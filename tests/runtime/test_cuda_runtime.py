"""Tests of the CUDA runtime in runtime_c/onnxc_cuda.c, all without a GPU.

- It compiles warning-free with the model libraries' flags, needs no CUDA header and
  links nothing from CUDA.
- Each driver symbol it resolves with dlsym is the one the toolkit's cuda.h maps the API
  to (cuMemAlloc -> cuMemAlloc_v2), and each function-pointer type matches cuda.h's
  declaration and cudaTypedefs.h's PFN_ type (skipped without the toolkit headers).
- cuda_driver.c, linked with the runtime, runs with no driver at all, and with
  fake_libcuda.c as libcuda.so.1: a test double over host memory that checks symbol
  resolution, error messages and bookkeeping (context current on the calling thread,
  everything released), not GPU execution. Also under ASan/UBSan.
"""

import ctypes
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "runtime_c"
HERE = Path(__file__).resolve().parent
SOURCE = RUNTIME / "onnxc_cuda.c"
DRIVER_H = RUNTIME / "onnxc_cuda_driver.h"
CUDA_INCLUDE = Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")) / "include"
CFLAGS = "-std=c11 -O2 -Wall -Wextra -Werror -fPIC -fvisibility=hidden -pthread".split()
ASAN = (
    "-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all".split()
)

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not found")
needs_toolkit = pytest.mark.skipif(
    not (CUDA_INCLUDE / "cuda.h").is_file() or not (CUDA_INCLUDE / "cudaTypedefs.h").is_file(),
    reason=f"no cuda.h / cudaTypedefs.h in {CUDA_INCLUDE}",
)

# The toolkit's function-pointer type for each symbol we resolve. The PFN_ names carry the
# CUDA version that introduced the ABI, not the symbol's suffix, so they are listed here.
PFN = {
    "cuGetErrorName": "PFN_cuGetErrorName_v6000",
    "cuGetErrorString": "PFN_cuGetErrorString_v6000",
    "cuInit": "PFN_cuInit_v2000",
    "cuDeviceGetCount": "PFN_cuDeviceGetCount_v2000",
    "cuDeviceGet": "PFN_cuDeviceGet_v2000",
    "cuDevicePrimaryCtxRetain": "PFN_cuDevicePrimaryCtxRetain_v7000",
    "cuDevicePrimaryCtxRelease_v2": "PFN_cuDevicePrimaryCtxRelease_v11000",
    "cuCtxSetCurrent": "PFN_cuCtxSetCurrent_v4000",
    "cuModuleLoadData": "PFN_cuModuleLoadData_v2000",
    "cuModuleUnload": "PFN_cuModuleUnload_v2000",
    "cuModuleGetFunction": "PFN_cuModuleGetFunction_v2000",
    "cuStreamCreate": "PFN_cuStreamCreate_v2000",
    "cuStreamDestroy_v2": "PFN_cuStreamDestroy_v4000",
    "cuStreamSynchronize": "PFN_cuStreamSynchronize_v2000",
    "cuMemAlloc_v2": "PFN_cuMemAlloc_v3020",
    "cuMemFree_v2": "PFN_cuMemFree_v3020",
    "cuMemcpyHtoDAsync_v2": "PFN_cuMemcpyHtoDAsync_v3020",
    "cuMemcpyDtoHAsync_v2": "PFN_cuMemcpyDtoHAsync_v3020",
    "cuMemcpyDtoDAsync_v2": "PFN_cuMemcpyDtoDAsync_v3020",
    "cuMemsetD8Async": "PFN_cuMemsetD8Async_v3020",
    "cuLaunchKernel": "PFN_cuLaunchKernel_v4000",
}


def table_symbols():
    """The symbol names in onnxc_cuda.c's dlsym table (ONNXC_CU_SYM(name) entries)."""
    names = re.findall(r"ONNXC_CU_SYM\((cu\w+)\)", SOURCE.read_text())
    assert len(names) == len(set(names)) and len(names) >= 20, names
    return names


def gcc(args, cwd=None):
    return subprocess.run(["gcc", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def compile_ok(args):
    res = gcc(args)
    assert res.returncode == 0, f"gcc {' '.join(map(str, args))}\n{res.stderr}"
    assert "warning:" not in res.stderr, res.stderr
    return res


# --------------------------------------------------------------------------- building


@pytest.mark.parametrize(
    "extra",
    [[], ["-pedantic"], ["-O0"], ["-O3", "-fno-math-errno"],
     ["-std=c17", "-pedantic", "-Wconversion", "-Wshadow"]],
    ids=["default", "pedantic", "O0", "model-flags", "strict"],
)
def test_compiles_warning_free(tmp_path, extra):
    compile_ok([*CFLAGS, *extra, f"-I{RUNTIME}", "-c", SOURCE, "-o", tmp_path / "cuda.o"])


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not found")
def test_header_is_cxx_clean(tmp_path):
    src = tmp_path / "use.cc"
    src.write_text('#include "onnxc_cuda.h"\n'
                   "int f(onnxc_cuda *c) { return onnxc_cuda_synchronize(c); }\n")
    cmd = ["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{RUNTIME}",
           "-fsyntax-only", str(src)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_needs_no_cuda_header_or_library(tmp_path):
    """No CUDA include (gcc does not search the toolkit by default anyway), and a shared
    library of both runtime files depends on libc only and exports nothing."""
    for path in (SOURCE, DRIVER_H, RUNTIME / "onnxc_cuda.h"):
        assert not re.search(r"#\s*include\s*[<\"]cuda", path.read_text()), path
    lib = tmp_path / "libmodel.so"
    compile_ok([*CFLAGS, "-shared", f"-I{RUNTIME}", SOURCE, RUNTIME / "onnxc_runtime.c",
                "-o", lib, "-ldl", "-lm"])
    if shutil.which("readelf"):
        dynamic = subprocess.run(["readelf", "-d", lib], capture_output=True, text=True).stdout
        needed = re.findall(r"\(NEEDED\).*\[(.+)\]", dynamic)
        assert all(re.match(r"lib(c|m|dl|pthread)\.so", n) for n in needed), needed
    if shutil.which("nm"):
        syms = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True,
                              text=True, check=True).stdout
        assert "onnxc_" not in syms and " cu" not in syms, syms


# --------------------------------------------------------------------------- against cuda.h


def test_table_covers_every_slot():
    """Every member of onnxc_cu_api is resolved (a slot left NULL would crash when called),
    and only dlsym's loop over the table resolves symbols."""
    members = re.findall(r"ONNXC_CU_MEMBER\((cu\w+)\)", DRIVER_H.read_text())
    assert sorted(members) == sorted(table_symbols())
    text = SOURCE.read_text()
    assert len(re.findall(r"\bdlsym\s*\(", text)) == 1
    assert not re.search(r"\bdlsym\s*\([^;]*\"", text)
    assert set(PFN) == set(table_symbols())


@needs_toolkit
def test_symbols_are_what_cuda_h_maps_to(tmp_path):
    """Run each API name (the symbol without its _vN suffix) through cuda.h's macros with
    the preprocessor: it must come out as the symbol we dlsym, and cuda.h must declare a
    function of that name. Using the preprocessor follows cuda.h's conditional blocks
    and __CUDA_API_PTSZ wrappers exactly, where parsing #define lines would not."""
    names = table_symbols()
    probe = tmp_path / "probe.c"
    lines = [f"ONNXC_PROBE_{i} = {re.sub(r'_v[0-9]+$', '', n)} ;" for i, n in enumerate(names)]
    probe.write_text("#include <cuda.h>\n" + "\n".join(lines) + "\n")
    res = gcc(["-E", "-P", f"-I{CUDA_INCLUDE}", probe])
    assert res.returncode == 0, res.stderr
    mapped = dict(re.findall(r"ONNXC_PROBE_(\d+) = (\w+) ;", res.stdout))
    assert len(mapped) == len(names), res.stdout[-2000:]
    wrong = {n: mapped[str(i)] for i, n in enumerate(names) if mapped[str(i)] != n}
    assert not wrong, f"dlsym name -> cuda.h's symbol: {wrong}"
    for n in names:
        assert re.search(rf"\bCUresult\s+{n}\s*\(", res.stdout), f"cuda.h declares no {n}"
    # Not vacuous: these APIs have versioned symbols in every CUDA since 3.2 / 11.
    assert {"cuMemAlloc_v2", "cuMemcpyHtoDAsync_v2", "cuDevicePrimaryCtxRelease_v2"} <= set(names)


def _same_types_tu(pairs, toolkit_types=True):
    head = "#include <cuda.h>\n#include <cudaTypedefs.h>\n#include <limits.h>\n"
    if toolkit_types:
        head += "#define ONNXC_CUDA_TOOLKIT_TYPES\n"
    head += (
        '#include "onnxc_cuda_driver.h"\n'
        "#define SLOT(sym) __typeof__(((onnxc_cu_api *)0)->sym)\n"
        "#define SAME(a, b) _Static_assert(__builtin_types_compatible_p(a, b), #a \" != \" #b);\n"
    )
    return head + "".join(f"SAME({a}, {b})\n" for a, b in pairs)


def _compile_tu(folder, text):
    src = folder / "types.c"
    src.write_text(text)
    return gcc(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{CUDA_INCLUDE}",
                f"-I{RUNTIME}", "-fsyntax-only", src])


@needs_toolkit
def test_signatures_match_cuda_h(tmp_path):
    """With cuda.h's CUresult (the only type onnxc_cuda_driver.h spells differently), each
    slot's type is the PFN_ type of cudaTypedefs.h and the type of cuda.h's declaration."""
    pairs = []
    for sym in table_symbols():
        pairs += [(f"SLOT({sym})", PFN[sym]), (f"SLOT({sym})", f"__typeof__(&{sym})")]
    res = _compile_tu(tmp_path, _same_types_tu(pairs))
    assert res.returncode == 0, res.stderr
    # The check can fail: a wrong pairing does not compile.
    bad = _compile_tu(tmp_path, _same_types_tu([("SLOT(cuMemAlloc_v2)", "PFN_cuMemFree_v3020")]))
    assert bad.returncode != 0 and "static assertion failed" in bad.stderr, bad.stderr


@needs_toolkit
def test_own_types_match_cuda_h(tmp_path):
    """Without cuda.h (as model libraries build), the handles, CUdevice and CUdeviceptr are
    the same types as cuda.h's; CUresult is an int of the enum's size, holding every
    CUDA_ERROR_ value."""
    pairs = [("onnxc_cu_device", "CUdevice"), ("onnxc_cu_deviceptr", "CUdeviceptr"),
             ("onnxc_cu_context", "CUcontext"), ("onnxc_cu_module", "CUmodule"),
             ("onnxc_cu_function", "CUfunction"), ("onnxc_cu_stream", "CUstream"),
             ("onnxc_cu_result", "int")]
    text = _same_types_tu(pairs, toolkit_types=False) + (
        "_Static_assert(sizeof(onnxc_cu_result) == sizeof(CUresult), \"size\");\n"
        "_Static_assert(_Alignof(onnxc_cu_result) == _Alignof(CUresult), \"alignment\");\n"
        "_Static_assert(ONNXC_CU_SUCCESS == CUDA_SUCCESS, \"success\");\n"
        "_Static_assert(ONNXC_CU_STREAM_DEFAULT == CU_STREAM_DEFAULT, \"flag\");\n"
    )
    res = _compile_tu(tmp_path, text)
    assert res.returncode == 0, res.stderr
    codes = re.findall(r"\bCUDA_ERROR_\w+\s*=\s*(\d+)", (CUDA_INCLUDE / "cuda.h").read_text())
    assert codes and max(map(int, codes)) < 2**31


# --------------------------------------------------------------------------- driver program


def build_driver(folder, name, extra=()):
    out = Path(folder) / name
    sources = [HERE / "cuda_driver.c", SOURCE, RUNTIME / "onnxc_runtime.c"]
    compile_ok([*CFLAGS, "-pedantic", *extra, f"-I{RUNTIME}", *sources, "-o", out, "-ldl", "-lm"])
    return out


@pytest.fixture(scope="module")
def drivers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cuda_driver")
    return {"plain": build_driver(folder, "plain"), "asan": build_driver(folder, "asan", ASAN)}


@pytest.fixture(scope="module")
def fake_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fake_cuda")
    exported = [f for f in CFLAGS if f != "-fvisibility=hidden"]  # it is the driver's API
    compile_ok([*exported, "-pedantic", "-shared", "-Wl,-soname,libcuda.so.1",
                HERE / "fake_libcuda.c", "-o", folder / "libcuda.so.1"])
    return folder


def clean_env(fake=None, **extra):
    env = {k: v for k, v in os.environ.items()
           if k != "ONNXC_CUDA_DEVICE" and not k.startswith("FAKE_CUDA")}
    if fake is not None:  # searched before the system's libcuda.so.1, if there is one
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (str(fake), os.environ.get("LD_LIBRARY_PATH")) if p)
    env.update(extra)
    return env


def run_driver(exe, *args, env):
    res = subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0, f"{exe.name} {args}: rc={res.returncode}\n{res.stdout}{res.stderr}"
    return res.stdout


def parse(out):
    """key=value lines, plus the fake's counters under "fake" (a dict)."""
    fields = {}
    for line in out.splitlines():
        if line.startswith("fake: "):
            fields["fake"] = dict(kv.split("=", 1) for kv in line[6:].split())
        elif "=" in line:
            key, value = line.split("=", 1)
            fields[key] = value
    return fields


RELEASED = {"allocs": "0", "ctx_refs": "0", "modules": "0", "streams": "0", "legacy": "0"}


def assert_released(fields):
    fake = fields["fake"]
    assert {k: fake[k] for k in RELEASED} == RELEASED, fake


def _driver_installed():
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


@pytest.mark.parametrize("kind", ["plain", "asan"])
def test_no_driver(drivers, kind):
    if _driver_installed():
        pytest.skip("a CUDA driver (libcuda.so.1) is installed here")
    fields = parse(run_driver(drivers[kind], "create", "image", "kfill", env=clean_env()))
    assert fields["status"] == "4" and fields["out_null"] == "1", fields
    assert fields["message"].startswith("CUDA driver not found (libcuda.so.1"), fields


@pytest.mark.parametrize("kind", ["plain", "asan"])
def test_null_arguments(drivers, kind):
    assert "args ok" in run_driver(drivers[kind], "args", env=clean_env())


@pytest.mark.parametrize("kind", ["plain", "asan"])
@pytest.mark.parametrize("mode", ["roundtrip", "thread"])
def test_fake_roundtrip(drivers, fake_dir, kind, mode):
    """alloc, upload, copy, memset, two launches, download; "thread" runs them on a thread
    other than the creating one, which only works if every call makes the context current."""
    fields = parse(run_driver(drivers[kind], mode, env=clean_env(fake_dir)))
    assert fields.get("a") == ",".join(["15"] + ["0"] * 15), fields
    assert fields.get("b") == ",".join(["8"] + [str(i) for i in range(1, 16)]), fields
    assert fields["last_error"] == ""
    fake = fields["fake"]
    assert fake["launches"] == "2" and fake["last_launch"] == "kother:2,2,1/4,1,1/128", fake
    assert fake["stream_flags"] == "0", fake  # CU_STREAM_DEFAULT
    assert_released(fields)


@pytest.mark.parametrize("kind", ["plain", "asan"])
def test_fake_live_object_arguments(drivers, fake_dir, kind):
    fields = parse(run_driver(drivers[kind], "live", env=clean_env(fake_dir)))
    assert fields["alloc_error"] == (
        "cuMemAlloc(2199023255552 bytes) failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)")
    assert_released(fields)


CREATE_ERRORS = [  # (kernel names, environment, status, message)
    (["kfill", "kmissing"], {}, "0", ""),
    (["kfill", "missing"], {},
     "4", 'cuModuleGetFunction("missing") failed: CUDA_ERROR_NOT_FOUND (named symbol not found)'),
    ([], {"FAKE_CUDA_NO_DEVICE": "1"},
     "4", "cuInit failed: CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)"),
    ([], {"ONNXC_CUDA_DEVICE": "7"}, "4", "device 7 not found (1 devices)"),
    ([], {"ONNXC_CUDA_DEVICE": "2", "FAKE_CUDA_DEVICES": "2"},
     "4", "device 2 not found (2 devices)"),
    ([], {"ONNXC_CUDA_DEVICE": " 1 ", "FAKE_CUDA_DEVICES": "2"}, "0", ""),
    ([], {"ONNXC_CUDA_DEVICE": "-1"}, "4", 'ONNXC_CUDA_DEVICE="-1" is not a device index'),
    ([], {"ONNXC_CUDA_DEVICE": "gpu1"}, "4", 'ONNXC_CUDA_DEVICE="gpu1" is not a device index'),
    ([], {"ONNXC_CUDA_DEVICE": ""}, "0", ""),
    ([], {"FAKE_CUDA_DEVICES": "0"}, "4", "device 0 not found (0 devices)"),
    ([], {"FAKE_CUDA_FAIL": "cuDevicePrimaryCtxRetain:2"},
     "4", "cuDevicePrimaryCtxRetain failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)"),
    ([], {"FAKE_CUDA_FAIL": "cuCtxSetCurrent:201"},
     "4", "cuCtxSetCurrent failed: CUDA_ERROR_INVALID_CONTEXT (invalid device context)"),
    (["kfill"], {"FAKE_CUDA_FAIL": "cuStreamCreate:2"},
     "4", "cuStreamCreate failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)"),
    ([], {"FAKE_CUDA_FAIL": "cuDeviceGetCount:12345"},
     "4", "cuDeviceGetCount failed: CUresult 12345"),  # a code the driver cannot name
]


@pytest.mark.parametrize("names,env,status,message", CREATE_ERRORS)
def test_fake_create(drivers, fake_dir, names, env, status, message):
    """Failures name the step and the driver's error; whatever create had acquired is
    released again (context, module, stream)."""
    fields = parse(run_driver(drivers["plain"], "create", "image", *names,
                              env=clean_env(fake_dir, **env)))
    assert (fields["status"], fields["message"]) == (status, message), fields
    assert fields["out_null"] == ("1" if status != "0" else "0")
    assert_released(fields)
    if "ONNXC_CUDA_DEVICE" in env and status == "0":
        assert fields["fake"]["ordinal"] == (env["ONNXC_CUDA_DEVICE"].strip() or "0")


def test_fake_bad_image(drivers, fake_dir):
    fields = parse(run_driver(drivers["asan"], "create", "bad image", env=clean_env(fake_dir)))
    assert fields["message"] == (
        "cuModuleLoadData failed: CUDA_ERROR_INVALID_IMAGE (device kernel image is invalid)")
    assert_released(fields)


STEP_FAILURES = [  # (symbol made to fail, driver step line, message start)
    ("cuMemAlloc_v2", "alloc", "cuMemAlloc(64 bytes) failed"),
    ("cuMemcpyHtoDAsync_v2", "upload", "cuMemcpyHtoDAsync failed"),
    ("cuMemcpyDtoDAsync_v2", "copy", "cuMemcpyDtoDAsync failed"),
    ("cuMemsetD8Async", "memset", "cuMemsetD8Async failed"),
    ("cuLaunchKernel", "launch", 'cuLaunchKernel("kfill") failed'),
    ("cuStreamSynchronize", "synchronize", "cuStreamSynchronize failed"),
    ("cuMemcpyDtoHAsync_v2", "download", "cuMemcpyDtoHAsync failed"),
]


@pytest.mark.parametrize("symbol,step,start", STEP_FAILURES, ids=[s[0] for s in STEP_FAILURES])
def test_fake_step_failures(drivers, fake_dir, symbol, step, start):
    """A failing driver call gives ONNXC_ERR_DEVICE (4) and its message, kept by last_error;
    the program still frees and destroys everything."""
    out = run_driver(drivers["plain"], "roundtrip",
                     env=clean_env(fake_dir, FAKE_CUDA_FAIL=f"{symbol}:2"))
    want = f"{step} 4 {start}: CUDA_ERROR_OUT_OF_MEMORY (out of memory)"
    assert want in out.splitlines(), out
    fields = parse(out)
    assert fields["last_error"] == want.split(" ", 2)[2]
    assert_released(fields)
