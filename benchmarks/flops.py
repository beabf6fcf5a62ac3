"""Count the FLOPs of an ONNX graph from its (inferred) static shapes.

Conv, ConvTranspose, MatMul and Gemm count 2 FLOPs per multiply-accumulate; other
operators (bias adds, activations, normalizations, pooling) are not counted.
"""

import math
import sys

import onnx


def _shapes(model: onnx.ModelProto) -> dict:
    """Map every tensor name with a fully static shape to that shape."""
    graph = model.graph
    shapes = {t.name: tuple(t.dims) for t in graph.initializer}
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        dims = vi.type.tensor_type.shape.dim
        if vi.type.tensor_type.HasField("shape") and all(
            d.HasField("dim_value") for d in dims
        ):
            shapes[vi.name] = tuple(d.dim_value for d in dims)
    return shapes


def _attr(node: onnx.NodeProto, name: str, default=0):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _conv_macs(node, shape) -> int:
    # Each output element of Conv sums over (C_in / group) * prod(kernel) products;
    # ConvTranspose scatters each input element into C_out / group * prod(kernel).
    weight = shape(node.input[1])
    elements = shape(node.output[0] if node.op_type == "Conv" else node.input[0])
    return math.prod(elements) * math.prod(weight[1:])


def _matmul_macs(node, shape) -> int:
    a, out = shape(node.input[0]), shape(node.output[0])
    return math.prod(out) * a[-1]


def _gemm_macs(node, shape) -> int:
    a, out = shape(node.input[0]), shape(node.output[0])
    k = a[0] if _attr(node, "transA") else a[1]
    return math.prod(out) * k


_MACS = {
    "Conv": _conv_macs,
    "ConvTranspose": _conv_macs,
    "MatMul": _matmul_macs,
    "Gemm": _gemm_macs,
}


def count_flops(model_path) -> int:
    """FLOPs (2 * MACs of Conv/ConvTranspose/MatMul/Gemm) of one inference."""
    model = onnx.shape_inference.infer_shapes(
        onnx.load(str(model_path)), strict_mode=True
    )
    shapes = _shapes(model)

    def shape(name: str) -> tuple:
        if name not in shapes:
            raise ValueError(f"{model_path}: no static shape for tensor {name!r}")
        return shapes[name]

    return sum(
        2 * _MACS[n.op_type](n, shape) for n in model.graph.node if n.op_type in _MACS
    )


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(f"{path}: {count_flops(path) / 1e9:.4f} GFLOP")
