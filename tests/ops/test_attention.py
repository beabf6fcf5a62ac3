"""Attention: the MatMul-Softmax-MatMul block becomes one FusedAttention kernel (scores on its
stack, register-tiled products) with onnxruntime's numbers; near misses stay as they are."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxc.errors import ModelError
from onnxc.frontend import import_model
from onnxc.graph.patterns import MAX_SCORES_BYTES
from onnxc.loop.printer import program_str
from onnxc.lower.pipeline import compile_program
from onnxc.ops.registry import INTERNAL_DOMAIN
from onnxc.targets import get_target

from tests.ops.harness import check_model, node_model, rand

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


# -- ONNX Attention (opset 23) ------------------------------------------------------------------

def _attention_node(tmp_path, inputs, attrs, n_outputs=1, use="ort"):
    """Attention-23 against onnxruntime (onnx.reference is not consistent about mode 0)."""
    model = node_model("Attention", inputs, attrs, n_outputs=n_outputs, opset=23)
    if n_outputs == 4 and len(inputs) < 5:   # no cache: only Y and qk_matmul_output
        node, outputs = model.graph.node[0], list(model.graph.output)
        node.output[1], node.output[2] = "", ""
        del model.graph.output[:]
        model.graph.output.extend([outputs[0], outputs[3]])
    feeds = {f"x{i}": a for i, a in enumerate(inputs) if a is not None}
    check_model(model, feeds, tmp_path)


@pytest.mark.parametrize("variant", [
    dict(),                                          # 4-D, default scale
    dict(scale=0.3, is_causal=1),                    # causal from the top-left
    dict(softcap=2.0),
    dict(kv_heads=1),                                # grouped-query attention
    dict(dv=5, sq=1),                                # value size differs, one query
])
def test_onnx_attention_4d(tmp_path, variant):
    b, hq, sq, skv, d = 2, 3, variant.pop("sq", 7), 9, 8
    hk, dv = variant.pop("kv_heads", hq), variant.pop("dv", d)
    inputs = [rand(b, hq, sq, d), rand(b, hk, skv, d, seed=1), rand(b, hk, skv, dv, seed=2)]
    _attention_node(tmp_path, inputs, variant)


def test_onnx_attention_3d_with_heads_and_float_mask(tmp_path):
    inputs = [rand(2, 5, 12), rand(2, 6, 4, seed=1), rand(2, 6, 6, seed=2),
              rand(5, 6, seed=3)]
    _attention_node(tmp_path, inputs, {"q_num_heads": 3, "kv_num_heads": 1})


def test_onnx_attention_bool_mask_fully_masked_row_is_zero(tmp_path):
    mask = np.ones((4, 6), bool)
    mask[1] = False                                  # query 1 attends nothing
    mask[2, 3:] = False
    inputs = [rand(1, 2, 4, 8), rand(1, 2, 6, 8, seed=1), rand(1, 2, 6, 8, seed=2), mask]
    _attention_node(tmp_path, inputs, {})


def test_onnx_attention_past_cache_and_present_outputs(tmp_path):
    inputs = [rand(1, 2, 3, 8), rand(1, 2, 3, 8, seed=1), rand(1, 2, 3, 8, seed=2),
              rand(3, 7, seed=3), rand(1, 2, 4, 8, seed=4), rand(1, 2, 4, 8, seed=5)]
    _attention_node(tmp_path, inputs, {"is_causal": 1}, n_outputs=3)


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_onnx_attention_qk_matmul_output_modes(tmp_path, mode):
    inputs = [rand(1, 2, 3, 8), rand(1, 2, 5, 8, seed=1), rand(1, 2, 5, 8, seed=2),
              rand(3, 5, seed=3)]
    _attention_node(tmp_path, inputs, {"qk_matmul_output_mode": mode, "softcap": 1.5},
                    n_outputs=4)


def test_onnx_attention_rejects_heads_that_do_not_divide(tmp_path):
    model = node_model("Attention", [rand(1, 4, 10), rand(1, 4, 10), rand(1, 4, 10)],
                       {"q_num_heads": 3, "kv_num_heads": 3}, opset=23)
    with pytest.raises(ModelError, match="not divisible"):
        onnxc.compile(model, out_dir=tmp_path)


# -- RotaryEmbedding (opset 23) -----------------------------------------------------------------

@pytest.mark.parametrize("attrs", [{}, {"interleaved": 1}, {"rotary_embedding_dim": 4},
                                   {"interleaved": 1, "rotary_embedding_dim": 6}])
@pytest.mark.parametrize("flat", [False, True])
def test_rotary_embedding(tmp_path, attrs, flat):
    b, h, s, d = 2, 3, 5, 10
    half = attrs.get("rotary_embedding_dim", d) // 2
    x = rand(b, s, h * d) if flat else rand(b, h, s, d)
    positions = np.random.default_rng(0).integers(0, 20, (b, s)).astype(np.int64)
    inputs = [x, rand(20, half, seed=1), rand(20, half, seed=2), positions]
    attrs = dict(attrs, **({"num_heads": h} if flat else {}))
    model = node_model("RotaryEmbedding", inputs, attrs, opset=23)
    check_model(model, {f"x{i}": a for i, a in enumerate(inputs)}, tmp_path, use="reference")


def test_rotary_embedding_without_position_ids(tmp_path):
    inputs = [rand(2, 3, 4, 8), rand(2, 4, 4, seed=1), rand(2, 4, 4, seed=2)]
    model = node_model("RotaryEmbedding", inputs, {}, opset=23)
    check_model(model, {f"x{i}": a for i, a in enumerate(inputs)}, tmp_path, use="reference")


def test_rotary_embedding_rejects_an_odd_rotary_dimension(tmp_path):
    inputs = [rand(1, 2, 3, 8), rand(5, 2), rand(5, 2), np.zeros((1, 3), np.int64)]
    model = node_model("RotaryEmbedding", inputs, {"rotary_embedding_dim": 5}, opset=23)
    with pytest.raises(ModelError, match="rotary dimension"):
        onnxc.compile(model, out_dir=tmp_path)
