"""Compile an ONNX model with onnxc and run it from Python, like an onnxruntime session.

    python examples/python/run.py [model.onnx] [--threads N]

Without a model it uses the demo model bundled with onnxc. The compiled library is kept in
./out/ (out/<name>.so, .h, -config.cmake) and reloaded with onnxc.load() to show both paths.
"""
import argparse
from pathlib import Path

import numpy as np
import onnxc
from onnxc.cli import DEMO_MODEL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=str(DEMO_MODEL))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("-o", "--output", default="out")
    args = parser.parse_args()

    # Compile (for this machine's CPU) and load: out/<name>.so, <name>.h, <name>-config.cmake.
    model = onnxc.compile(args.model, target="host", out_dir=args.output,
                          num_threads=args.threads)
    print(f"compiled {args.model} -> {model.path} ({model.get_num_threads()} threads, "
          f"workspace {model.workspace_size} bytes)")
    for arg in model.get_inputs():
        print(f"  input  {arg.name}: {arg.type} {arg.shape}")
    for arg in model.get_outputs():
        print(f"  output {arg.name}: {arg.type} {arg.shape}")

    # The same call as onnxruntime.InferenceSession.run(output_names, input_feed).
    rng = np.random.default_rng(0)
    feed = {a.name: rng.standard_normal(a.shape).astype(a.dtype) for a in model.get_inputs()}
    outputs = model.run(None, feed)
    for arg, value in zip(model.get_outputs(), outputs, strict=True):
        print(f"{arg.name} =\n{value}")

    # A library compiled earlier loads without the compiler: onnxc.load(path_to_so).
    again = onnxc.load(Path(model.path))
    first = model.get_outputs()[0].name
    (value,) = again.run([first], feed)
    assert np.array_equal(value, outputs[0])

    try:
        import onnxruntime as ort
    except ImportError:
        return
    sess = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    want = sess.run(None, feed)
    err = max(float(np.max(np.abs(g - w))) for g, w in zip(outputs, want, strict=True))
    print(f"max abs difference from onnxruntime {ort.__version__}: {err:.3g}")


if __name__ == "__main__":
    main()
