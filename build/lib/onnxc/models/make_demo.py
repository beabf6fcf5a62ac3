"""Writes demo.onnx, the small model behind `onnxc demo`: deterministic, seeded, opset 17.

    python compiler/models/make_demo.py [--variant conv|mlp] [-o PATH]

conv (the default, bundled): input 1x1x8x8 -> Conv 4x3x3 pad 1 -> Relu -> MaxPool 2 ->
Flatten -> Gemm 64->10 -> Softmax -> probs 1x10.
mlp: input 1x1x8x8 -> Reshape 1x64 -> Gemm 64->16 -> Relu -> Gemm 16->10 -> Softmax.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
SEED = 20240501
OPSET = 17
IR_VERSION = 8  # readable by every onnxruntime the tests accept


def _weight(rng, name: str, *shape: int, fan_in: int) -> onnx.TensorProto:
    data = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
    return numpy_helper.from_array(data, name)


def _conv_graph(rng) -> tuple[list, list]:
    inits = [_weight(rng, "conv.weight", 4, 1, 3, 3, fan_in=9),
             _weight(rng, "conv.bias", 4, fan_in=9),
             _weight(rng, "fc.weight", 10, 64, fan_in=64),
             _weight(rng, "fc.bias", 10, fan_in=64)]
    nodes = [
        helper.make_node("Conv", ["input", "conv.weight", "conv.bias"], ["conv_out"],
                         name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv_out"], ["relu_out"], name="relu"),
        helper.make_node("MaxPool", ["relu_out"], ["pool_out"], name="pool",
                         kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["pool_out"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="fc",
                         transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=-1),
    ]
    return nodes, inits


def _mlp_graph(rng) -> tuple[list, list]:
    inits = [numpy_helper.from_array(np.array([1, 64], np.int64), "flat_shape"),
             _weight(rng, "fc1.weight", 16, 64, fan_in=64),
             _weight(rng, "fc1.bias", 16, fan_in=64),
             _weight(rng, "fc2.weight", 10, 16, fan_in=16),
             _weight(rng, "fc2.bias", 10, fan_in=16)]
    nodes = [
        helper.make_node("Reshape", ["input", "flat_shape"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc1.weight", "fc1.bias"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["h_relu"], name="relu"),
        helper.make_node("Gemm", ["h_relu", "fc2.weight", "fc2.bias"], ["logits"], name="fc2",
                         transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=-1),
    ]
    return nodes, inits


VARIANTS = {"conv": _conv_graph, "mlp": _mlp_graph}


def make_demo(variant: str = "conv") -> onnx.ModelProto:
    nodes, inits = VARIANTS[variant](np.random.default_rng(SEED))
    graph = helper.make_graph(
        nodes, "onnxc_demo",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="onnxc make_demo", ir_version=IR_VERSION)
    onnx.checker.check_model(model, full_check=True)
    return model


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="conv")
    parser.add_argument("-o", "--output", default=str(HERE / "demo.onnx"))
    args = parser.parse_args(argv)
    onnx.save(make_demo(args.variant), args.output)
    print(f"wrote {args.output} ({Path(args.output).stat().st_size} bytes)")


if __name__ == "__main__":
    main()
