"""Attention: the MatMul-Softmax-MatMul block becomes one FusedAttention kernel (scores on its
stack, register-tiled products) with onnxruntime's numbers; near misses stay as they are."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxc.frontend import import_model
from onnxc.graph.patterns import MAX_SCORES_BYTES
from onnxc.loop.printer import program_str
from onnxc.lower.pipeline import compile_program
from onnxc.ops.registry import INTERNAL_DOMAIN
from onnxc.targets import get_target

from tests.ops.harness import check_model, rand

F = TensorProto.FLOAT


def attention_model(batch=(2, 3), sq=13, skv=19, d=7, dv=5, scale=("Div", 2.5), mask=None,
                    softmax_axis=-1, scores_output=False, opset=17):
    """q [*batch, sq, d], kt [*batch, d, skv], v [*batch, skv, dv] (+ mask) -> y."""
    vi = helper.make_tensor_value_info
    nodes, inits, x = [helper.make_node("MatMul", ["q", "kt"], ["s"])], [], "s"
    inputs = [vi("q", F, [*batch, sq, d]), vi("kt", F, [*batch, d, skv]),
              vi("v", F, [*batch, skv, dv])]
    if scale:
        inits.append(numpy_helper.from_array(np.array(scale[1], np.float32), "c"))
        operands = [x, "c"] if scale[0] == "Div" else ["c", x]
        nodes.append(helper.make_node(scale[0], operands, ["scaled"]))
        x = "scaled"
    if mask is not None:
        inputs.append(vi("m", F, list(mask)))
        nodes.append(helper.make_node("Add", ["m", x], ["masked"]))
        x = "masked"
    nodes += [helper.make_node("Softmax", [x], ["p"], axis=softmax_axis),
              helper.make_node("MatMul", ["p", "v"], ["y"])]
    outputs = [vi("y", F, [*batch, sq, dv])]
    if scores_output:
        outputs.append(vi("s", F, [*batch, sq, skv]))
    graph = helper.make_graph(nodes, "attention", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _feeds(model):
    return {i.name: rand(*[d.dim_value for d in i.type.tensor_type.shape.dim], seed=n)
            for n, i in enumerate(model.graph.input)}


def _ops(model):
    return [(n.op_type, n.domain) for n in import_model(model).nodes]


@pytest.mark.parametrize("variant", [
    dict(),                                                   # 4-D heads, odd sizes, Div scale
    dict(mask=(13, 19)),                                      # additive mask, broadcast
    dict(mask=(2, 1, 1, 19), scale=("Mul", 0.3)),             # per-batch key mask, c * s
    dict(scale=None, batch=()),                               # plain 2-D, no scale
    dict(batch=(3,), sq=40, skv=33, d=16, dv=24),             # 3-D, tiles with remainders
    dict(batch=(1, 2), sq=64, skv=64, d=32, dv=32, opset=12),  # Softmax-1 on the last axis
])
def test_attention_block_is_one_kernel(tmp_path, variant):
    model = attention_model(**variant)
    assert _ops(model) == [("FusedAttention", INTERNAL_DOMAIN)]
    check_model(model, _feeds(model), tmp_path)


@pytest.mark.parametrize("variant", [
    dict(softmax_axis=-2),                 # normalized over queries, not keys
    dict(scores_output=True),              # the scores are also a model output
    dict(batch=(1,), sq=300, skv=300),     # scores too large for the cache block
])
def test_attention_near_misses_stay(tmp_path, variant):
    model = attention_model(**variant)
    assert ("Softmax", "") in _ops(model)
    check_model(model, _feeds(model), tmp_path)


def test_size_limit_matches_the_largest_fused_block():
    assert 300 * 300 * 4 > MAX_SCORES_BYTES >= 128 * 128 * 4


def test_attention_products_are_register_tiles_and_heads_run_in_parallel():
    model = attention_model(batch=(1, 4), sq=64, skv=64, d=32, dv=32)
    text = program_str(compile_program(model, get_target("x86_64"))[1])
    assert "# parallel" in text and "fma(" in text
    # both products accumulate in register tiles: the scores block and the output
    assert "scores_qio_acc" in text or "scores_qjo_acc" in text
    assert text.count("register") >= 2
