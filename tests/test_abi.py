"""The compiled library's C ABI (docs/abi.md): dependencies, exported names, two models in one
process, concurrent contexts, ONNXC_NUM_THREADS, status codes from C, and hostile tensor names."""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import onnx
import onnxc
import pytest
from onnx import TensorProto, helper, numpy_helper

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("nm") is None,
                                reason="needs gcc and binutils (nm, readelf)")

ALLOWED_NEEDED = re.compile(r"(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|ld-linux[-\w.]*\.so\.\d)")
# Undefined weak symbols that every gcc-built shared object carries (crt files); never required.
CRT_WEAK = {"_ITM_deregisterTMCloneTable", "_ITM_registerTMCloneTable", "__gmon_start__",
            "__cxa_finalize"}


def mlp_weights(seed: int, sizes: tuple[int, ...]):
    rng = np.random.default_rng(seed)
    pairs = zip(sizes[:-1], sizes[1:], strict=True)
    return [((rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32),
             rng.standard_normal(b).astype(np.float32)) for a, b in pairs]


def mlp_model(seed: int, batch: int, sizes: tuple[int, ...], graph_name="mlp") -> onnx.ModelProto:
    """Gemm -> Relu -> Gemm -> ... : the hidden activations need workspace."""
    nodes, inits, prev = [], [], "x"
    weights = mlp_weights(seed, sizes)
    for i, (w, b) in enumerate(weights):
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
        last = i == len(weights) - 1
        out = "y" if last else f"h{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"B{i}"], [out], name=f"fc{i}"))
        if not last:
            nodes.append(helper.make_node("Relu", [out], [f"r{i}"], name=f"relu{i}"))
            prev = f"r{i}"
    graph = helper.make_graph(
        nodes, graph_name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, sizes[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, sizes[-1]])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def mlp_reference(seed: int, sizes, x: np.ndarray) -> np.ndarray:
    h = x.astype(np.float64)
    weights = mlp_weights(seed, sizes)
    for i, (w, b) in enumerate(weights):
        h = h @ w + b
        if i < len(weights) - 1:
            h = np.maximum(h, 0)
    return h


SIZES_A, SIZES_B = (5, 7, 4), (5, 9, 4)


@pytest.fixture(scope="module")
def libs(tmp_path_factory):
    """Two small models with different C names (and weights), compiled with -Werror."""
    out = tmp_path_factory.mktemp("abi")
    a = onnxc.compile(mlp_model(1, 3, SIZES_A), out_dir=out / "a", name="abi_a", strict=True)
    b = onnxc.compile(mlp_model(2, 3, SIZES_B), out_dir=out / "b", name="abi_b", strict=True)
    return a, b


def sin_input(shape) -> np.ndarray:
    return np.sin(np.arange(int(np.prod(shape)), dtype=np.float64)).astype(np.float32) \
        .reshape(shape)


def tool(*cmd) -> str:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# ---- dependencies and exported names ---------------------------------------------------------

def test_needed_libraries_are_only_libc_libm_pthread(libs):
    dynamic = tool("readelf", "-d", libs[0].path)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
    assert needed, dynamic
    assert all(ALLOWED_NEEDED.fullmatch(n) for n in needed), needed


def test_undefined_symbols_come_from_libc_or_libm(libs):
    system_libs = [ctypes.CDLL(n) for n in ("libc.so.6", "libm.so.6")]
    unresolved = []
    for line in tool("nm", "-D", "--undefined-only", libs[0].path).splitlines():
        kind, symbol = line.split()[-2:]
        name, _, version = symbol.partition("@")
        if kind.lower() == "w" and name in CRT_WEAK:
            continue
        if version and not version.lstrip("@").startswith("GLIBC_"):
            unresolved.append(symbol)
        elif not any(hasattr(lib, name) for lib in system_libs):
            unresolved.append(symbol)
    assert not unresolved, f"symbols from outside libc/libm/libpthread: {unresolved}"


@pytest.mark.parametrize("which", [0, 1])
def test_exported_symbols_carry_the_model_name(libs, which):
    lib = libs[which]
    exported = [line.split()[-1] for line in
                tool("nm", "-D", "--defined-only", lib.path).splitlines() if line.strip()]
    assert f"{lib.name}_run" in exported and f"{lib.name}_create_with_workspace" in exported
    strays = [s for s in exported if not s.startswith(f"{lib.name}_")]
    assert not strays, f"exported symbols without the {lib.name}_ prefix: {strays}"
    header = (Path(lib.path).parent / f"{lib.name}.h").read_text()
    undocumented = [s for s in exported if not re.search(rf"[ *]{s}\(", header)]
    assert not undocumented, f"exported but not in {lib.name}.h: {undocumented}"


# ---- two models, two contexts, threads --------------------------------------------------------

def test_two_models_in_one_process(libs):
    a, b = libs
    x = sin_input((3, 5))
    for _ in range(3):  # interleaved
        np.testing.assert_allclose(a.run(None, {"x": x})[0], mlp_reference(1, SIZES_A, x),
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(b.run(None, {"x": x})[0], mlp_reference(2, SIZES_B, x),
                                   rtol=1e-5, atol=1e-5)


def test_two_contexts_run_concurrently(tmp_path):
    sizes = (96, 128, 64)
    first = onnxc.compile(mlp_model(3, 17, sizes), out_dir=tmp_path, name="concurrent")
    second = onnxc.load(first.path)  # same library, its own context
    first.set_num_threads(2)
    second.set_num_threads(1)
    inputs = [np.random.default_rng(s).standard_normal((17, 96)).astype(np.float32)
              for s in range(4)]
    expected = [mlp_reference(3, sizes, x) for x in inputs]
    failures, start = [], threading.Barrier(2)

    def worker(model, offset):
        start.wait()
        for i in range(60):
            k = (i + offset) % len(inputs)
            got = model.run(None, {"x": inputs[k]})[0]
            if not np.allclose(got, expected[k], rtol=1e-4, atol=1e-4):
                failures.append((offset, i))

    threads = [threading.Thread(target=worker, args=(m, off))
               for m, off in ((first, 0), (second, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


@pytest.mark.parametrize("value, expected", [("3", 3), ("1", 1), (" 2", 2), ("junk", None),
                                             ("0", None)])
def test_onnxc_num_threads_env(libs, value, expected):
    script = ("import os, sys, onnxc; m = onnxc.load(sys.argv[1]); "
              "print(m.get_num_threads(), os.sysconf('SC_NPROCESSORS_ONLN'))")
    env = {**os.environ, "ONNXC_NUM_THREADS": value}
    proc = subprocess.run([sys.executable, "-c", script, str(libs[0].path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got, cores = map(int, proc.stdout.split())
    assert got == (expected if expected is not None else cores)


# ---- status codes, seen from C -----------------------------------------------------------------

C_PROGRAM = r"""
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "abi_a.h"
#include "abi_b.h"

static int failures = 0;
#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "line %d: CHECK(%s) failed\n", __LINE__, #cond); ++failures; } } while (0)

static void fill(float *x, int n) { for (int i = 0; i < n; ++i) x[i] = (float)sin(i); }

int main(void) {
  float x[15], y[12], y2[12], yb[12];
  fill(x, 15);
  const void *in[] = { x };
  void *out[] = { y };
  abi_a_context *ctx = NULL;

  CHECK(abi_a_create(NULL) == ONNXC_ERR_ARGUMENT);
  CHECK(abi_a_create(&ctx) == ONNXC_OK && ctx != NULL);
  CHECK(strcmp(abi_a_last_error(ctx), "") == 0);
  CHECK(abi_a_run(NULL, in, out) == ONNXC_ERR_ARGUMENT);
  CHECK(abi_a_run(ctx, NULL, out) == ONNXC_ERR_ARGUMENT);
  CHECK(strlen(abi_a_last_error(ctx)) > 0);
  printf("# NULL inputs: %s\n", abi_a_last_error(ctx));
  CHECK(abi_a_run(ctx, in, NULL) == ONNXC_ERR_ARGUMENT && strlen(abi_a_last_error(ctx)) > 0);
  const void *null_in[] = { NULL };
  CHECK(abi_a_run(ctx, null_in, out) == ONNXC_ERR_ARGUMENT);
  void *null_out[] = { NULL };
  CHECK(abi_a_run(ctx, in, null_out) == ONNXC_ERR_ARGUMENT);

  CHECK(abi_a_set_num_threads(ctx, 0) == ONNXC_ERR_ARGUMENT);
  CHECK(strlen(abi_a_last_error(ctx)) > 0);
  printf("# zero threads: %s\n", abi_a_last_error(ctx));
  CHECK(abi_a_set_num_threads(ctx, -3) == ONNXC_ERR_ARGUMENT);
  CHECK(abi_a_set_num_threads(NULL, 1) == ONNXC_ERR_ARGUMENT);
  CHECK(abi_a_set_num_threads(ctx, 3) == ONNXC_OK && abi_a_get_num_threads(ctx) == 3);
  CHECK(abi_a_set_num_threads(ctx, 1) == ONNXC_OK && abi_a_get_num_threads(ctx) == 1);
  CHECK(abi_a_run(ctx, in, out) == ONNXC_OK);
  CHECK(strcmp(abi_a_last_error(ctx), "") == 0);

  for (int s = 0; s <= 3; ++s)
    CHECK(abi_a_status_string(s) != NULL && strlen(abi_a_status_string(s)) > 0);
  CHECK(abi_a_status_string(12345) != NULL);
  CHECK(abi_a_num_inputs() == 1 && abi_a_num_outputs() == 1);
  CHECK(strcmp(abi_a_input_name(0), "x") == 0 && strcmp(abi_a_output_name(0), "y") == 0);
  CHECK(abi_a_input_name(1) == NULL && abi_a_input_name(-1) == NULL);
  CHECK(abi_a_output_name(1) == NULL);
  CHECK(abi_a_input_dtype(0) == 1 && abi_a_input_dtype(1) == -1 && abi_a_output_dtype(-1) == -1);
  CHECK(abi_a_input_rank(0) == 2 && abi_a_output_rank(2) == -1);
  CHECK(abi_a_input_shape(0)[0] == 3 && abi_a_input_shape(0)[1] == 5);
  CHECK(abi_a_output_shape(0)[1] == 4 && abi_a_output_shape(1) == NULL);

  /* User workspace: too small, misaligned, NULL, then right. */
  size_t ws = abi_a_workspace_size();
  CHECK(ws > 0);
  size_t padded = (ws + 64 + 63) / 64 * 64;
  unsigned char *mem = aligned_alloc(64, padded);
  CHECK(mem != NULL);
  abi_a_context *user = (abi_a_context *)1;
  CHECK(abi_a_create_with_workspace(&user, mem, ws - 1) == ONNXC_ERR_ARGUMENT && user == NULL);
  CHECK(abi_a_create_with_workspace(&user, mem + 1, ws) == ONNXC_ERR_ARGUMENT && user == NULL);
  CHECK(abi_a_create_with_workspace(&user, mem + 32, ws) == ONNXC_ERR_ARGUMENT);
  CHECK(abi_a_create_with_workspace(&user, NULL, ws) == ONNXC_ERR_ARGUMENT);
  CHECK(abi_a_create_with_workspace(NULL, mem, ws) == ONNXC_ERR_ARGUMENT);
  CHECK(abi_a_create_with_workspace(&user, mem, ws) == ONNXC_OK && user != NULL);
  memset(mem, 0xAB, ws);  /* the run must not depend on the workspace's old contents */
  CHECK(abi_a_set_num_threads(user, 1) == ONNXC_OK);
  void *out2[] = { y2 };
  CHECK(abi_a_run(user, in, out2) == ONNXC_OK);
  CHECK(memcmp(y, y2, sizeof y) == 0);
  abi_a_destroy(user);
  free(mem);

  /* A second model linked into the same program. */
  abi_b_context *bctx = NULL;
  void *outb[] = { yb };
  CHECK(abi_b_create(&bctx) == ONNXC_OK);
  CHECK(abi_b_run(bctx, in, outb) == ONNXC_OK);
  abi_b_destroy(bctx);

  abi_a_destroy(ctx);
  abi_a_destroy(NULL);
  abi_b_destroy(NULL);
  for (int i = 0; i < 12; ++i) printf("%.9g %.9g\n", (double)y[i], (double)yb[i]);
  printf("# failures %d\n", failures);
  return failures != 0;
}
"""

CFLAGS = ["-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def build_c(tmp_path, source: str, libs, name="prog") -> Path:
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    exe = tmp_path / name
    cmd = ["gcc", *CFLAGS, str(src), "-o", str(exe)]
    for lib in libs:
        folder = str(Path(lib.path).parent)
        cmd += ["-I", folder, "-L", folder, f"-Wl,-rpath,{folder}", f"-l:{Path(lib.path).name}"]
    proc = subprocess.run(cmd + ["-lm"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
    return exe


def test_status_codes_from_c(libs, tmp_path):
    exe = build_c(tmp_path, C_PROGRAM, libs)
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    values = np.array([[float(v) for v in line.split()] for line in proc.stdout.splitlines()
                       if not line.startswith("#")])
    x = sin_input((3, 5))
    np.testing.assert_allclose(values[:, 0], mlp_reference(1, SIZES_A, x).ravel(), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(values[:, 1], mlp_reference(2, SIZES_B, x).ravel(), rtol=1e-5,
                               atol=1e-5)


# ---- hostile names -----------------------------------------------------------------------------

EVIL_INPUT = 'x"); system("rm -rf /"); /*'
EVIL_OUTPUT = "y */ #define int \\\n\"\t\x01 ü"
EVIL_NODE = "*/ evil\n#include <stdlib.h>\nint main(void) { abort(); } /*"


def evil_model() -> onnx.ModelProto:
    nodes = [helper.make_node("Relu", [EVIL_INPUT], ["mid ?? */"], name=EVIL_NODE),
             helper.make_node("Add", ["mid ?? */", EVIL_INPUT], [EVIL_OUTPUT], name="\\"),
             helper.make_node("Neg", [EVIL_INPUT], ["\\n\" */ //"], name="??/")]
    graph = helper.make_graph(
        nodes, 'evil"graph*/\n',
        [helper.make_tensor_value_info(EVIL_INPUT, TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info(EVIL_OUTPUT, TensorProto.FLOAT, [2, 3]),
         helper.make_tensor_value_info("\\n\" */ //", TensorProto.FLOAT, [2, 3])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_hostile_names_cannot_inject_c(tmp_path):
    model = onnxc.compile(evil_model(), out_dir=tmp_path, strict=True)  # -Werror
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", model.name)
    assert [a.name for a in model.get_inputs()] == [EVIL_INPUT]
    assert [a.name for a in model.get_outputs()] == [EVIL_OUTPUT, "\\n\" */ //"]
    x = sin_input((2, 3))
    y, neg = model.run(None, {EVIL_INPUT: x})
    np.testing.assert_allclose(y, np.maximum(x, 0) + x, rtol=1e-6)
    np.testing.assert_array_equal(neg, -x)
    (only,) = model.run([EVIL_OUTPUT], {EVIL_INPUT: x})
    np.testing.assert_array_equal(only, y)
    # The header's comments must survive a strict compile too.
    include = (f'#include "{model.name}.h"\n'
               f"int main(void) {{ return {model.name}_num_inputs() != 1; }}\n")
    exe = build_c(tmp_path, include, [model], name="include_evil")
    assert subprocess.run([str(exe)], timeout=60).returncode == 0
