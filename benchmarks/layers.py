"""Per-layer comparison: every distinct Conv/Gemm/MatMul of a model, alone, onnxc vs onnxruntime.

Usage: python benchmarks/layers.py MODEL.onnx [--threads 1] [--runs 50] [--ops Conv Gemm MatMul]

Each distinct layer (same op, attributes, input shapes and weights shape) becomes a one-node
model with the original weights; both runtimes time it alternately in this process. The table
says where a model's time goes and which layer shapes lose to onnxruntime: `count` is how many
times the layer occurs, `share` its part of onnxc's summed layer time.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # see run.py

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import helper, shape_inference  # noqa: E402

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

from onnxc import driver  # noqa: E402
from onnxc.bench import _alternate, _ort_session  # noqa: E402


def _shapes(model: onnx.ModelProto) -> dict:
    inferred = shape_inference.infer_shapes(model)
    g = inferred.graph
    out = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        out[vi.name] = tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)
    for init in g.initializer:
        out[init.name] = tuple(init.dims)
    return out


def _flops(node, shapes) -> int:
    out = shapes[node.output[0]]
    if node.op_type == "Conv":
        return 2 * int(np.prod(out)) * int(np.prod(shapes[node.input[1]][1:]))
    return 2 * int(np.prod(out)) * int(shapes[node.input[0]][-1])


def layer_models(model: onnx.ModelProto, ops) -> list[tuple[str, int, int, onnx.ModelProto]]:
    """(description, count, flops, one-node model) per distinct layer, in model order."""
    shapes = _shapes(model)
    inits = {i.name: i for i in model.graph.initializer}
    found: dict = {}
    for node in model.graph.node:
        if node.op_type not in ops:
            continue
        attrs = tuple(sorted((a.name, str(helper.get_attribute_value(a))) for a in node.attribute))
        key = (node.op_type, attrs, tuple(shapes.get(i, ()) for i in node.input))
        if key in found:
            found[key][1] += 1
            continue
        x = node.input[0]
        # every input without a stored value (both operands of an attention MatMul) is fed
        graph = helper.make_graph(
            [helper.make_node(node.op_type, list(node.input), ["y"], **{
                a.name: helper.get_attribute_value(a) for a in node.attribute})],
            "layer",
            [helper.make_tensor_value_info(i, onnx.TensorProto.FLOAT, shapes[i])
             for i in node.input if i and i not in inits],
            [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT,
                                           shapes[node.output[0]])],
            [inits[i] for i in node.input[1:] if i in inits])
        one = helper.make_model(graph, opset_imports=model.opset_import)
        desc = f"{node.op_type} {shapes[x]}->{shapes[node.output[0]]} " + " ".join(
            f"{k}={v}" for k, v in attrs if k in ("strides", "group", "kernel_shape"))
        found[key] = [desc, 1, _flops(node, shapes), one]
    return [tuple(v) for v in found.values()]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--ops", nargs="+", default=["Conv", "Gemm", "MatMul"])
    args = p.parse_args(argv)
    layers = layer_models(onnx.load(args.model), set(args.ops))
    rows = []
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="onnxc_layers_") as tmp:
        for n, (desc, count, flops, one) in enumerate(layers):
            path = Path(tmp) / f"layer{n}.onnx"
            onnx.save(one, path)
            compiled = driver.compile(path, target="host", out_dir=Path(tmp) / f"out{n}")
            compiled.set_num_threads(args.threads)
            session = _ort_session(path, args.threads)
            feed = {x.name: rng.standard_normal(tuple(
                d.dim_value for d in x.type.tensor_type.shape.dim)).astype(np.float32)
                for x in one.graph.input}
            ours, theirs = _alternate([lambda c=compiled, f=feed: c.run(None, f),
                                       lambda s=session, f=feed: s.run(None, f)], args.runs)
            rows.append((desc, count, flops, ours, theirs))
    total = sum(r[1] * r[3] for r in rows)
    print(f"{'layer':<70} {'n':>2} {'onnxc ms':>9} {'ort ms':>8} {'ratio':>6} "
          f"{'GFLOP/s':>8} {'share':>6}")
    for desc, count, flops, ours, theirs in rows:
        print(f"{desc:<70} {count:>2} {ours:9.3f} {theirs:8.3f} {ours / theirs:6.2f} "
              f"{flops / ours / 1e6:8.1f} {count * ours / total:6.1%}")
    ort_total = sum(r[1] * r[4] for r in rows)
    print(f"summed layer time: onnxc {total:.3f} ms, onnxruntime {ort_total:.3f} ms "
          f"(ratio {total / ort_total:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
