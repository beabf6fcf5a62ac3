"""Generate the onnxc benchmark models (ONNX, opset 17, batch 1) with torch.

Usage: python benchmarks/models.py [--out DIR] [names...]

Only generation needs torch (`pip install torch==2.13.0`); `ensure_models`,
`MODEL_NAMES`, `INPUT_SHAPES` and `make_feed` work without it once the files exist.
"""

import argparse
import collections
import io
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx

MODEL_NAMES = ("mlp", "cnn", "resnet18", "mobilenetv2", "bert4", "gemm")
INPUT_SHAPES = {
    "mlp": (1, 784),
    "cnn": (1, 1, 28, 28),
    "resnet18": (1, 3, 224, 224),
    "mobilenetv2": (1, 3, 224, 224),
    "bert4": (1, 128, 256),
    "gemm": (256, 1024),
}
INPUT_NAME, OUTPUT_NAME = "input", "output"
# The axes a dynamic export leaves symbolic (export_bytes(dynamic_batch=True)): the batch,
# and the sequence too for the transformer.
DYNAMIC_AXES = {"bert4": {0: "batch", 1: "seq"}}
OPSET = 17
DEFAULT_DIR = Path(__file__).resolve().parent / "models"


def input_shapes() -> dict:
    """Input shape of every benchmark model, by name."""
    return dict(INPUT_SHAPES)


def make_feed(name: str, seed: int = 0) -> dict:
    """A seeded standard-normal float32 feed {"input": array} for model `name`."""
    rng = np.random.default_rng(seed)
    return {INPUT_NAME: rng.standard_normal(INPUT_SHAPES[name], dtype=np.float32)}


def export_bytes(name: str, dynamic_batch: bool = False) -> bytes:
    """Export model `name` to ONNX and return the serialized bytes; with dynamic_batch the
    input's and output's first axis is the symbolic dimension "batch", as torch writes it
    for models served at several batch sizes (and bert4's second "seq": DYNAMIC_AXES)."""
    import torch

    from benchmarks import nets

    model = nets.build(name)
    example = torch.from_numpy(make_feed(name)[INPUT_NAME])
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            buf,
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            do_constant_folding=True,
            export_params=True,
            keep_initializers_as_inputs=False,
            # PRESERVE (with the model in eval mode) keeps BatchNormalization nodes;
            # the default EVAL mode would fold them into the convolutions.
            training=torch.onnx.TrainingMode.PRESERVE,
            dynamic_axes={INPUT_NAME: DYNAMIC_AXES.get(name, {0: "batch"}),
                          OUTPUT_NAME: DYNAMIC_AXES.get(name, {0: "batch"})}
            if dynamic_batch else None,
        )
    return buf.getvalue()


def generate(name: str, out_dir: Path) -> Path:
    """Export model `name` into out_dir/<name>.onnx and return the path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.onnx"
    # a file of its own, then renamed: never a partial file that ensure_models would trust,
    # even with two test processes generating the same model
    fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".onnx.tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(export_bytes(name))
    os.replace(tmp, path)
    return path


def ensure_models(out_dir=DEFAULT_DIR, names=None) -> dict:
    """Generate the missing models among `names`; return {name: path}."""
    out_dir = Path(out_dir)
    paths = {}
    for name in names or MODEL_NAMES:
        if name not in INPUT_SHAPES:
            raise ValueError(f"unknown model {name!r}; choose from {MODEL_NAMES}")
        path = out_dir / f"{name}.onnx"
        paths[name] = path if path.exists() else generate(name, out_dir)
    return paths


def op_histogram(model: onnx.ModelProto) -> dict:
    counts = collections.Counter(node.op_type for node in model.graph.node)
    return dict(counts.most_common())


def num_params(model: onnx.ModelProto) -> int:
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer)


def run_torch(name: str) -> np.ndarray:
    import torch

    from benchmarks import nets

    with torch.no_grad():
        x = torch.from_numpy(make_feed(name)[INPUT_NAME])
        return nets.build(name)(x).numpy()


def run_ort(path: Path, name: str) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run([OUTPUT_NAME], make_feed(name))[0]


def check(name: str, path: Path) -> dict:
    """Validate a generated model and run it once with onnxruntime."""
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == [INPUT_NAME], name
    assert [o.name for o in model.graph.output] == [OUTPUT_NAME], name
    out, ref = run_ort(path, name), run_torch(name)
    return {
        "torch_rel_err": float(np.abs(out - ref).max() / np.abs(ref).max()),
        "ops": op_histogram(model),
        "params": num_params(model),
        "bytes": path.stat().st_size,
        "output_shape": out.shape,
        "output_absmax": float(np.abs(out).max()),
    }


def report(name: str, path: Path) -> bool:
    info = check(name, path)
    deterministic = export_bytes(name) == path.read_bytes()
    ops = ", ".join(f"{op} {n}" for op, n in info["ops"].items())
    print(
        f"{name}: {info['params']:,} params, {info['bytes']:,} bytes, "
        f"output {info['output_shape']} (max |y| {info['output_absmax']:.3g}, "
        f"ort vs torch rel err {info['torch_rel_err']:.1e}), "
        f"deterministic export: {'yes' if deterministic else 'NO'}"
    )
    print(f"  ops: {ops}")
    return deterministic


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR, help="output dir")
    parser.add_argument(
        "names",
        nargs="*",
        metavar="name",
        help=f"models to generate (default: all of {MODEL_NAMES})",
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(MODEL_NAMES))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {MODEL_NAMES}")
    ok = True
    for name in args.names or MODEL_NAMES:
        ok &= report(name, generate(name, args.out))
    return 0 if ok else 1


# Running as a script puts benchmarks/ on sys.path; `benchmarks.nets` needs its parent.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

if __name__ == "__main__":
    sys.exit(main())
