"""GEMM micro benchmark: onnxc's 256x1024 @ 1024x1024 MatMul against this CPU's measured FMA
peak (one thread), and against onnxruntime in the same process.

    python benchmarks/gemm_peak.py [--m 256 --k 1024 --n 1024] [--runs 50]

The peak is measured by a C loop of independent vector FMAs on the host's widest vectors
(compiled with -march=native): FLOP/s = 2 x lanes x FMAs / seconds.
"""
from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

PEAK_C = r"""
#include <stdio.h>
#include <time.h>
typedef float vf __attribute__((vector_size(VBYTES)));
int main(void) {
  enum { CHAINS = 12, ITERS = 50000000 };
  vf acc[CHAINS], a, b;
  for (int i = 0; i < (int)(sizeof a / sizeof(float)); i++) { a[i] = 1.0f + 1e-7f; b[i] = 1e-7f; }
  for (int c = 0; c < CHAINS; c++) acc[c] = b * (float)c;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long it = 0; it < ITERS; it++)
    for (int c = 0; c < CHAINS; c++) acc[c] = acc[c] * a + b;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  float sink = 0;
  for (int c = 0; c < CHAINS; c++) sink += acc[c][0];
  double s = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
  printf("%f %f\n", 2.0 * (sizeof a / sizeof(float)) * CHAINS * (double)ITERS / s / 1e9, sink);
  return 0;
}
"""


def measure_peak(vector_bits: int) -> float:
    """GFLOP/s of one core running independent FMAs on vector_bits-wide registers."""
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp) / "peak.c", Path(tmp) / "peak"
        src.write_text(PEAK_C)
        subprocess.run(["cc", "-O3", "-march=native", "-ffp-contract=fast",
                        f"-DVBYTES={vector_bits // 8}", str(src), "-o", str(exe)], check=True)
        return max(float(subprocess.run([str(exe)], capture_output=True, text=True,
                                        check=True).stdout.split()[0]) for _ in range(3))


def gemm_model(m: int, k: int, n: int) -> onnx.ModelProto:
    w = np.random.default_rng(0).standard_normal((k, n)).astype(np.float32)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "gemm",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])],
                          [numpy_helper.from_array(w, "w")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def main() -> None:
    import onnxc
    from onnxc.bench import _alternate, _ort_session
    from onnxc.targets import get_target
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=256)
    parser.add_argument("--k", type=int, default=1024)
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    bits = get_target("host").vector_bits
    peak = measure_peak(bits)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gemm.onnx"
        onnx.save(gemm_model(args.m, args.k, args.n), path)
        model = onnxc.compile(path, out_dir=Path(tmp) / "out", num_threads=1)
        session = _ort_session(path, 1)
        x = np.random.default_rng(1).standard_normal((args.m, args.k)).astype(np.float32)
        ours, theirs = _alternate([lambda: model.run(None, {"x": x}),
                                   lambda: session.run(None, {"x": x})], args.runs)
    flops = 2 * args.m * args.k * args.n
    print(f"measured FMA peak, one core, {bits}-bit vectors: {peak:.1f} GFLOP/s")
    for name, ms in (("onnxc", ours), ("onnxruntime", theirs)):
        gf = flops / ms / 1e6
        print(f"{name:12s} {args.m}x{args.k} @ {args.k}x{args.n}: {ms:.3f} ms  {gf:.1f} GFLOP/s"
              f"  {100 * gf / peak:.0f}% of peak")


if __name__ == "__main__":
    main()
