"""Compile a model whose weights are larger than protobuf's 2 GiB limit, and report the peak
memory of the compiler against the weights' size.

    python benchmarks/large_model.py [--gb 2.5] [--layers 10] [--inline] [--keep DIR]

Builds, in a temporary folder, a chain of `layers` square float32 layers (MatMul and
Gemm(transB=1) + bias, each followed by Relu) holding about `--gb` GB of weights, with the
weights in one external data file written tensor by tensor (--inline: inside the .onnx file,
below 2 GiB only). Then compiles it with `/usr/bin/time -v onnxc model.onnx -o out/` (without
the library cache), runs the library on a random input, compares the result with numpy, and
prints the compiler's peak resident set size over the weights' size (the target is 1.5 at
most) and the compile time.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DATA_FILE = "model.weights"
ALIGNMENT = 4096


def _external(name: str, array: np.ndarray, out, offset: int) -> TensorProto:
    """A tensor whose data is written to `out` at `offset`."""
    out.seek(offset)
    array.tofile(out)
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=array.shape,
                         data_location=TensorProto.EXTERNAL)
    for key, value in (("location", DATA_FILE), ("offset", str(offset)),
                       ("length", str(array.nbytes))):
        tensor.external_data.add(key=key, value=value)
    return tensor


def _weights(rng, k: int, i: int) -> tuple[np.ndarray, np.ndarray | None]:
    w = rng.standard_normal((k, k), dtype=np.float32)
    w *= np.float32(1.0 / np.sqrt(k / 2))   # keeps the activations' scale through Relu
    bias = rng.standard_normal(k, dtype=np.float32) * np.float32(0.1) if i % 2 else None
    return w, bias


def _layer(i: int, x: str, has_bias: bool) -> list[onnx.NodeProto]:
    if has_bias:
        op = helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [f"h{i}"], name=f"gemm{i}",
                              transB=1)
    else:
        op = helper.make_node("MatMul", [x, f"w{i}"], [f"h{i}"], name=f"matmul{i}")
    return [op, helper.make_node("Relu", [f"h{i}"], [f"y{i}"], name=f"relu{i}")]


def build_model(folder: Path, gb: float, layers: int, inline: bool, seed: int = 0
                ) -> tuple[Path, int, int]:
    """model.onnx (and its data file) in folder; returns the path, K and the weights' bytes."""
    k = int(np.sqrt(gb * 1e9 / layers / 4)) // 16 * 16
    rng = np.random.default_rng(seed)
    nodes, inits, offset, total = [], [], 0, 0
    with open(folder / DATA_FILE, "wb") as out:
        for i in range(layers):
            w, bias = _weights(rng, k, i)
            if inline:
                inits.append(numpy_helper.from_array(w, f"w{i}"))
            else:
                inits.append(_external(f"w{i}", w, out, offset))
                offset += -(-w.nbytes // ALIGNMENT) * ALIGNMENT
            if bias is not None:
                inits.append(numpy_helper.from_array(bias, f"b{i}"))
            total += w.nbytes + (bias.nbytes if bias is not None else 0)
            nodes += _layer(i, f"y{i - 1}" if i else "x", bias is not None)
    graph = helper.make_graph(nodes, "large", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, k])], [helper.make_tensor_value_info(
            f"y{layers - 1}", TensorProto.FLOAT, [1, k])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = folder / "model.onnx"
    onnx.save_model(model, path)
    return path, k, total


def reference(path: Path, x: np.ndarray) -> np.ndarray:
    """The chain in numpy, weights read one at a time (float64 accumulation)."""
    model = onnx.load(path, load_external_data=False)
    inits = {t.name: t for t in model.graph.initializer}
    h = x.astype(np.float64)
    for node in model.graph.node:
        if node.op_type == "Relu":
            h = np.maximum(h, 0)
            continue
        w = _array(inits[node.input[1]], path.parent).astype(np.float64)
        h = h @ (w.T if node.op_type == "Gemm" else w)
        if node.op_type == "Gemm":
            h = h + _array(inits[node.input[2]], path.parent)
    return h


def _array(tensor: TensorProto, folder: Path) -> np.ndarray:
    if tensor.data_location != TensorProto.EXTERNAL:
        return numpy_helper.to_array(tensor)
    info = {e.key: e.value for e in tensor.external_data}
    return np.fromfile(folder / info["location"], np.float32, count=int(info["length"]) // 4,
                       offset=int(info["offset"])).reshape(tuple(tensor.dims))


def compile_measured(path: Path, out: Path) -> tuple[int, float, str]:
    """Peak RSS (bytes) and wall time of `onnxc path -o out` under /usr/bin/time -v."""
    onnxc = Path(sys.executable).with_name("onnxc")
    env = {k: v for k, v in os.environ.items() if k != "ONNXC_LIBRARY_CACHE"}
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", str(onnxc), str(path), "-o", str(out)],
                          capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    if proc.returncode != 0 or peak is None:
        sys.exit(f"onnxc failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr[-3000:]}")
    return int(peak.group(1)) * 1024, seconds, proc.stderr


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=2.5, help="weights, in GB (1e9 bytes)")
    ap.add_argument("--layers", type=int, default=10)
    ap.add_argument("--inline", action="store_true", help="weights inside the .onnx file")
    ap.add_argument("--keep", help="build in this folder and keep it (default: a temp folder)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="onnxc_large_") as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        path, k, total = build_model(folder, args.gb, args.layers, args.inline)
        print(f"model: {args.layers} layers of {k}x{k} float32, weights {total / 1e9:.3f} GB "
              f"({'inline' if args.inline else 'external data'}), built in "
              f"{time.perf_counter() - start:.1f} s")
        peak, seconds, _ = compile_measured(path, folder / "out")
        lib = folder / "out" / "model.so"
        print(f"compile: {seconds:.1f} s, peak RSS {peak / 1e9:.3f} GB = "
              f"{peak / total:.2f} x weights; library {lib.stat().st_size / 1e9:.3f} GB")
        import onnxc
        x = np.random.default_rng(1).standard_normal((1, k), dtype=np.float32)
        got = onnxc.load(lib).run(None, {"x": x})[0]
        want = reference(path, x)
        err = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
        print(f"run: max|onnxc - numpy| / max|numpy| = {err:.2e}")
        return 0 if err < 1e-4 and peak <= 1.5 * total else 1


if __name__ == "__main__":
    sys.exit(main())
