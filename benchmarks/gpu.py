"""onnxc on this machine's NVIDIA GPU against PyTorch eager (cuDNN/cuBLAS), same models.

Usage: python benchmarks/gpu.py [--batch 1 64] [--models ...] [--budget S] [--json FILE]

For each model and batch size, one process exports the model with that batch, compiles it
for the GPU (onnxc.targets.local_gpu), checks it against PyTorch on the same input, and
times the two alternately. Both sides take CUDA tensors and leave their result on the GPU
(onnxc through __cuda_array_interface__, no host copies) and each timed call ends with the
GPU idle. Medians in ms; the ratio is onnxc / PyTorch (below 1: onnxc is faster). Batch
sizes above 1 apply to the convolutional models. Without PyTorch CUDA, onnxc is timed with
host arrays alone and the ratio is left empty.

Precision is the same on both sides: float32 throughout by default (PyTorch's cuDNN TF32
switched off, which its default leaves on for convolutions), or with --tf32 TF32 tensor cores
on both (onnxc's --tf32; PyTorch's allow_tf32 for cuBLAS and cuDNN).
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

import numpy as np  # noqa: E402

from benchmarks.models import DYNAMIC_AXES, INPUT_SHAPES, MODEL_NAMES, export_bytes  # noqa: E402
from benchmarks.run import rel_error, time_alternating  # noqa: E402

BATCHED = ("cnn", "resnet18", "mobilenetv2")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, nargs="+", default=[1, 64])
    p.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES,
                   metavar="NAME")
    p.add_argument("--runs", type=int, default=0,
                   help="timed runs per side (default: fit --budget seconds)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--budget", type=float, default=2.0,
                   help="seconds of timed runs per model and batch")
    p.add_argument("--json", type=Path, help="also write the results to this file")
    p.add_argument("--tf32", action="store_true",
                   help="float32 products on TF32 tensor cores, onnxc's and PyTorch's")
    return p.parse_args(argv)


def torch_cuda():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def compile_batch(name: str, batch: int, target: str, out: Path, tf32: bool = False):
    """The model exported with a symbolic batch, compiled for this batch."""
    import onnxc
    path = out / f"{name}.onnx"
    path.write_bytes(export_bytes(name, dynamic_batch=True))
    dims = {"batch": (batch, batch)}
    if "seq" in DYNAMIC_AXES.get(name, {}).values():    # bert4's length: the benchmark's
        dims["seq"] = INPUT_SHAPES[name][1]
    return onnxc.compile(path, target=target, out_dir=out / "build", name=name, dims=dims,
                         tf32=tf32)


def bench(name: str, batch: int, target: str, torch, args) -> dict:
    shape = (batch, *INPUT_SHAPES[name][1:])
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="onnxc_gpu_") as tmp:
        compiled = compile_batch(name, batch, target, Path(tmp), args.tf32)
        (host_out,) = compiled.run(None, {"input": x})
        row = {"model": name, "batch": batch, "target": target, "tf32": args.tf32}
        if torch is None:
            (ms,), runs = time_alternating([lambda: compiled.run(None, {"input": x})], args)
            return {**row, "onnxc_ms": ms, "torch_ms": None, "ratio": None, "runs": runs,
                    "rel_err": None, "io": "host arrays"}
        from benchmarks import nets
        net = nets.build(name).cuda().eval()
        gx = torch.from_numpy(x).cuda()
        gy = torch.empty(host_out.shape, dtype=torch.float32, device="cuda")

        def run_torch():
            with torch.no_grad():
                out = net(gx)
            torch.cuda.synchronize()
            return out

        def run_onnxc():
            compiled.run(None, {"input": gx}, outputs=[gy])
        run_onnxc()
        err = rel_error([gy.cpu().numpy()], [run_torch().cpu().numpy()])
        (ours, theirs), runs = time_alternating([run_onnxc, run_torch], args)
    return {**row, "onnxc_ms": ours, "torch_ms": theirs, "ratio": ours / theirs, "runs": runs,
            "rel_err": err, "io": "CUDA tensors"}


def markdown(rows: list) -> str:
    def num(v, fmt):
        return "n/a" if v is None else format(v, fmt)
    lines = ["| model | batch | onnxc ms | PyTorch ms | ratio | rel. error | io |",
             "|---|---:|---:|---:|---:|---:|---|"]
    lines += [f"| {r['model']} | {r['batch']} | {num(r['onnxc_ms'], '.3f')} | "
              f"{num(r['torch_ms'], '.3f')} | {num(r['ratio'], '.2f')} | "
              f"{num(r['rel_err'], '.1e')} | {r['io']} |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    from onnxc.targets import local_gpu
    gpu = local_gpu()
    if gpu is None:
        print("benchmarks/gpu.py: no NVIDIA GPU with a CUDA driver here", file=sys.stderr)
        return 2
    torch = torch_cuda()
    if torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = args.tf32
    rows = [bench(name, batch, gpu.tag, torch, args) for name in args.models
            for batch in args.batch if batch == 1 or name in BATCHED]
    print(f"GPU target {gpu.tag}; PyTorch {'with CUDA' if torch else 'CUDA unavailable'}; "
          f"{'TF32' if args.tf32 else 'float32'} products; pid {os.getpid()}")
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
