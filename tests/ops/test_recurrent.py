"""RNN, GRU and LSTM (compiler/ops/recurrent.py) against onnxruntime.

onnxruntime rejects layout=1: those cases run it on the layout-0 model with transposed
inputs and outputs (and one case against onnx.reference, which ignores sequence_lens,
activations and clip)."""
from __future__ import annotations

import numpy as np
import onnx
import onnxc
import pytest
from onnx import helper, numpy_helper
from onnxc.errors import ModelError

from .harness import assert_close, reference

F32, F64, I32 = np.float32, np.float64, np.int32
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
DIRS = {"forward": 1, "reverse": 1, "bidirectional": 2}
# node inputs after X, W, R in order; LSTM also has initial_c and P
OPTIONAL = {"RNN": ("B", "sequence_lens", "initial_h"),
            "GRU": ("B", "sequence_lens", "initial_h"),
            "LSTM": ("B", "sequence_lens", "initial_h", "initial_c", "P")}
ALL_OUTPUTS = {"RNN": ("y0", "y1"), "GRU": ("y0", "y1"), "LSTM": ("y0", "y1", "y2")}


def model_of(op, inputs, attrs, outputs, opset=14, constant=()):
    """One node; inputs: name -> array or None (absent), in the op's order, those named in
    `constant` as initializers; outputs: names with "" for an absent output."""
    order = ("X", "W", "R") + OPTIONAL[op]
    names = [n if inputs.get(n) is not None else "" for n in order]
    while names and not names[-1]:
        names.pop()
    infos = [helper.make_tensor_value_info(
        n, helper.np_dtype_to_tensor_dtype(inputs[n].dtype), list(inputs[n].shape))
        for n in names if n and n not in constant]
    inits = [numpy_helper.from_array(inputs[n], n) for n in names if n in constant]
    node = helper.make_node(op, names, list(outputs), name=f"{op.lower()}_node", **attrs)
    graph = helper.make_graph([node], f"{op.lower()}_test", infos,
                              [helper.make_empty_tensor_value_info(o) for o in outputs if o],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 10)
    return onnx.shape_inference.infer_shapes(model)


def make_inputs(op, steps=4, batch=3, size=6, hidden=5, direction="forward", layout=0,
                optional=(), dtype=F32, lengths=None, seed=0):
    """Random inputs; `optional` names the optional ones to include."""
    rng = np.random.default_rng(seed)
    dirs, gates = DIRS[direction], GATES[op]

    def r(*shape, scale=0.5):
        return (rng.standard_normal(shape) * scale).astype(dtype)
    state = (dirs, batch, hidden) if layout == 0 else (batch, dirs, hidden)
    ins = {"X": r(*((steps, batch, size) if layout == 0 else (batch, steps, size)), scale=1),
           "W": r(dirs, gates * hidden, size), "R": r(dirs, gates * hidden, hidden)}
    extra = {"B": lambda: r(dirs, 2 * gates * hidden),
             "sequence_lens": lambda: np.asarray(lengths, I32),
             "initial_h": lambda: r(*state, scale=1), "initial_c": lambda: r(*state, scale=1),
             "P": lambda: r(dirs, 3 * hidden)}
    for name in optional:
        ins[name] = extra[name]()
    return ins


def run_onnxc(tmp_path, model, inputs):
    compiled = onnxc.compile(model, out_dir=tmp_path, strict=True)
    feeds = {i.name: inputs[i.name] for i in model.graph.input}
    return compiled.run(None, feeds), feeds


def check(tmp_path, op, inputs, attrs=None, outputs=None, opset=14, use="ort", rtol=1e-4,
          atol=1e-5, constant=()):
    attrs = {"hidden_size": inputs["R"].shape[-1], **(attrs or {})}
    model = model_of(op, inputs, attrs, outputs or ALL_OUTPUTS[op], opset, constant)
    got, feeds = run_onnxc(tmp_path, model, inputs)
    want = reference(model, feeds, use)
    assert len(got) == len(want) == len([o for o in model.graph.output])
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, rtol, atol, what=f"{op} output {i}")
    return got


# -- directions, optional inputs, sizes ------------------------------------------------------
@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("with_optional", [False, True])
def test_directions(tmp_path, op, direction, with_optional):
    optional = tuple(n for n in OPTIONAL[op] if n != "sequence_lens") if with_optional else ()
    check(tmp_path, op, make_inputs(op, direction=direction, optional=optional),
          {"direction": direction})


@pytest.mark.parametrize("op,name", [(op, n) for op, names in OPTIONAL.items()
                                     for n in names if n != "sequence_lens"])
def test_each_optional_input(tmp_path, op, name):
    check(tmp_path, op, make_inputs(op, direction="bidirectional", optional=(name,)),
          {"direction": "bidirectional"})


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("opset", [7, 14, 22])
def test_opsets(tmp_path, op, opset):
    check(tmp_path, op, make_inputs(op, optional=("B", "initial_h")), opset=opset)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("steps,batch,size,hidden", [(1, 1, 1, 1), (7, 1, 3, 13),
                                                     (12, 4, 33, 20)])
@pytest.mark.parametrize("constant", [(), ("W", "R", "B")])
def test_sizes(tmp_path, op, steps, batch, size, hidden, constant):
    """Constant weights are what models hold: the input projection then reads W transposed
    at compile time, in tiles."""
    inputs = make_inputs(op, steps, batch, size, hidden, "bidirectional",
                         optional=("B", "initial_h"))
    check(tmp_path, op, inputs, {"direction": "bidirectional"}, atol=3e-5, constant=constant)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("layout", [0, 1])
def test_large_constant_weights(tmp_path, op, layout):
    """Sizes where the input projection runs on the thread pool and the recurrence does not."""
    inputs = make_inputs(op, 24, 16, 96, 40, "reverse", layout, ("B",))
    model = model_of(op, inputs, {"hidden_size": 40, "direction": "reverse", "layout": layout},
                     ALL_OUTPUTS[op], constant=("W", "R", "B"))
    got, _ = run_onnxc(tmp_path, model, inputs)
    flat = to_layout0(inputs) if layout else inputs
    base = model_of(op, flat, {"hidden_size": 40, "direction": "reverse"}, ALL_OUTPUTS[op],
                    constant=("W", "R", "B"))
    want = reference(base, {"X": flat["X"]})
    if layout:
        want = [want[0].transpose(2, 0, 1, 3)] + [w.transpose(1, 0, 2) for w in want[1:]]
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, atol=5e-5, what=f"output {i}")


@pytest.mark.parametrize("lengths,masked", [([4, 4, 4], False), ([4, 1, 3], True)])
def test_constant_sequence_lens(tmp_path, lengths, masked):
    """Lengths known at compile time: full ones need no masking (the library never reads
    them), others keep it."""
    inputs = make_inputs("LSTM", 4, 3, 5, 6, "bidirectional",
                         optional=("sequence_lens", "initial_h"), lengths=lengths)
    check(tmp_path, "LSTM", inputs, {"direction": "bidirectional"},
          constant=("W", "sequence_lens"))
    sources = list(tmp_path.rglob("*.c"))     # the cuda backend's builds are in subfolders
    assert sources and all(("sequence_lens" in s.read_text()) == masked for s in sources)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_float64(tmp_path, op):
    """onnxruntime runs these in float32 only."""
    check(tmp_path, op, make_inputs(op, dtype=F64, optional=("B", "initial_h")),
          use="reference", rtol=1e-9, atol=1e-9)


# -- optional outputs ------------------------------------------------------------------------
@pytest.mark.parametrize("op,outputs", [
    ("RNN", ("y0",)), ("RNN", ("", "y1")), ("GRU", ("y0",)), ("GRU", ("", "y1")),
    ("LSTM", ("y0",)), ("LSTM", ("", "y1")), ("LSTM", ("", "", "y2")), ("LSTM", ("y0", "y1")),
    ("LSTM", ("y0", "", "y2")),
])
def test_optional_outputs(tmp_path, op, outputs):
    optional = ("B", "initial_h", "initial_c") if op == "LSTM" else ("B", "initial_h")
    check(tmp_path, op, make_inputs(op, direction="bidirectional", optional=optional),
          {"direction": "bidirectional"}, outputs)


# -- layout=1 --------------------------------------------------------------------------------
def to_layout0(inputs):
    out = dict(inputs)
    out["X"] = inputs["X"].transpose(1, 0, 2).copy()
    for name in ("initial_h", "initial_c"):
        if name in inputs:
            out[name] = inputs[name].transpose(1, 0, 2).copy()
    return out


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_layout1(tmp_path, op, direction):
    """Batch-major: the same numbers as onnxruntime on the time-major transposes."""
    optional = OPTIONAL[op]
    inputs = make_inputs(op, 5, 3, 4, 7, direction, 1, optional, lengths=[5, 2, 4])
    attrs = {"hidden_size": 7, "direction": direction}
    model = model_of(op, inputs, {**attrs, "layout": 1}, ALL_OUTPUTS[op])
    got, _ = run_onnxc(tmp_path, model, inputs)
    flat = model_of(op, to_layout0(inputs), attrs, ALL_OUTPUTS[op])
    want = reference(flat, {i.name: to_layout0(inputs)[i.name] for i in flat.graph.input})
    assert_close(got[0], want[0].transpose(2, 0, 1, 3), what="Y")
    for i in range(1, len(got)):
        assert_close(got[i], want[i].transpose(1, 0, 2), what=f"output {i}")


def test_layout1_reference(tmp_path):
    inputs = make_inputs("LSTM", 3, 2, 4, 6, "bidirectional", 1,
                         ("B", "initial_h", "initial_c", "P"))
    check(tmp_path, "LSTM", inputs, {"direction": "bidirectional", "layout": 1},
          use="reference")


# -- sequence_lens ---------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_sequence_lens(tmp_path, op, direction):
    optional = OPTIONAL[op]
    inputs = make_inputs(op, 6, 4, 3, 5, direction, optional=optional, lengths=[6, 1, 3, 5])
    got = check(tmp_path, op, inputs, {"direction": direction})
    assert not got[0][1:, :, 1].any() and got[0][:3, :, 2].all()   # zeros past the lengths


@pytest.mark.parametrize("op", ["GRU", "LSTM"])
def test_sequence_lens_zero(tmp_path, op):
    """A zero length: Y and Y_h (Y_c) are zeros for that entry, as in onnxruntime.
    (Its RNN reads before Y for a forward zero length, so RNN is left out.)"""
    inputs = make_inputs(op, 4, 3, 3, 5, "bidirectional", optional=OPTIONAL[op],
                         lengths=[4, 0, 2])
    got = check(tmp_path, op, inputs, {"direction": "bidirectional"})
    assert not got[1][:, 1].any()


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_sequence_lens_runtime_values(tmp_path, op):
    """The lengths are read at run time: one library, several length vectors."""
    inputs = make_inputs(op, 5, 3, 3, 4, "bidirectional", optional=("sequence_lens",),
                         lengths=[5, 5, 5])
    model = model_of(op, inputs, {"hidden_size": 4, "direction": "bidirectional"},
                     ALL_OUTPUTS[op])
    compiled = onnxc.compile(model, out_dir=tmp_path, strict=True)
    for lengths in ([5, 5, 5], [1, 4, 2], [3, 5, 1]):
        feeds = {"X": inputs["X"], "W": inputs["W"], "R": inputs["R"],
                 "sequence_lens": np.asarray(lengths, I32)}
        for i, (g, w) in enumerate(zip(compiled.run(None, feeds), reference(model, feeds))):
            assert_close(g, w, what=f"lengths {lengths} output {i}")


# -- activations, clip, op-specific attributes -----------------------------------------------
ONE_ARG = ["Relu", "Tanh", "Sigmoid", "Softsign", "Softplus"]
WITH_ALPHA = [("Affine", [0.7], [0.2]), ("LeakyRelu", [0.3], []), ("ThresholdedRelu", [0.2], []),
              ("ScaledTanh", [1.3], [0.6]), ("HardSigmoid", [0.3], [0.4]), ("Elu", [0.8], []),
              ("LeakyRelu", [], []), ("HardSigmoid", [], []), ("Elu", [], [])]


@pytest.mark.parametrize("name,alpha,beta", [(n, [], []) for n in ONE_ARG] + WITH_ALPHA)
def test_rnn_activations(tmp_path, name, alpha, beta):
    attrs = {"activations": [name], **({"activation_alpha": alpha} if alpha else {}),
             **({"activation_beta": beta} if beta else {})}
    check(tmp_path, "RNN", make_inputs("RNN", optional=("B", "initial_h")), attrs)


@pytest.mark.parametrize("acts,alpha,beta", [
    (["HardSigmoid", "Softsign"], [0.25], [0.45]),
    (["Sigmoid", "LeakyRelu"], [0.2], []),
    (["Softplus", "ScaledTanh", "Sigmoid", "Elu"], [1.1, 0.5], [0.9]),  # both directions
])
def test_gru_activations(tmp_path, acts, alpha, beta):
    direction = "bidirectional" if len(acts) == 4 else "forward"
    attrs = {"direction": direction, "activations": acts, "activation_alpha": alpha,
             **({"activation_beta": beta} if beta else {})}
    check(tmp_path, "GRU", make_inputs("GRU", direction=direction, optional=("B",)), attrs)


@pytest.mark.parametrize("acts,alpha,beta", [
    (["HardSigmoid", "Tanh", "Softsign"], [0.3], [0.45]),
    (["Sigmoid", "Affine", "ScaledTanh"], [0.6, 1.2], [0.1, 0.7]),
    (["Sigmoid", "Elu", "Relu", "HardSigmoid", "ThresholdedRelu", "Softplus"], [0.5, 0.2, 0.1],
     [0.6]),
])
def test_lstm_activations(tmp_path, acts, alpha, beta):
    direction = "bidirectional" if len(acts) == 6 else "forward"
    attrs = {"direction": direction, "activations": acts, "activation_alpha": alpha,
             "activation_beta": beta}
    check(tmp_path, "LSTM", make_inputs("LSTM", direction=direction, optional=("B", "P")),
          attrs)


def test_activation_names_any_case(tmp_path):
    """(onnxruntime's RNN wants the names as the spec writes them; its GRU any case.)"""
    check(tmp_path, "GRU", make_inputs("GRU", direction="bidirectional"),
          {"direction": "bidirectional",
           "activations": ["sigmoid", "RELU", "hardSigmoid", "tanh"]})


def test_rnn_default_pair_of_activations(tmp_path):
    """RNN's schema default lists two functions: a one-direction node uses the first."""
    check(tmp_path, "RNN", make_inputs("RNN"), {"activations": ["Relu", "Tanh"]})


@pytest.mark.parametrize("acts,alpha", [(["Tanh", "LeakyRelu"], [0.5]),
                                        (["Tanh", "LeakyRelu"], [0.3, 0.5])])
def test_alpha_consumed_in_order(tmp_path, acts, alpha):
    """alpha values go to the functions that take one, in order, across directions."""
    check(tmp_path, "RNN", make_inputs("RNN", direction="bidirectional"),
          {"direction": "bidirectional", "activations": acts, "activation_alpha": alpha})


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_clip(tmp_path, op):
    inputs = make_inputs(op, direction="bidirectional", optional=OPTIONAL[op],
                         lengths=[4, 2, 3])
    got = check(tmp_path, op, inputs, {"direction": "bidirectional", "clip": 0.3})
    unclipped = check(tmp_path / "plain", op, inputs, {"direction": "bidirectional"})
    assert not np.allclose(got[0], unclipped[0], atol=1e-3)     # the bound mattered


@pytest.mark.parametrize("linear_before_reset", [0, 1])
@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_gru_linear_before_reset(tmp_path, linear_before_reset, direction):
    check(tmp_path, "GRU", make_inputs("GRU", 5, 2, 4, 9, direction,
                                       optional=("B", "initial_h"), seed=3),
          {"direction": direction, "linear_before_reset": linear_before_reset})


@pytest.mark.parametrize("input_forget", [0, 1])
@pytest.mark.parametrize("with_peepholes", [False, True])
def test_lstm_peepholes_input_forget(tmp_path, input_forget, with_peepholes):
    optional = ("B", "initial_h", "initial_c") + (("P",) if with_peepholes else ())
    check(tmp_path, "LSTM", make_inputs("LSTM", 5, 2, 3, 11, "bidirectional",
                                        optional=optional, seed=4),
          {"direction": "bidirectional", "input_forget": input_forget})


def test_all_attributes_at_once(tmp_path):
    inputs = make_inputs("LSTM", 6, 3, 5, 9, "bidirectional", optional=OPTIONAL["LSTM"],
                         lengths=[6, 3, 1], seed=5)
    check(tmp_path, "LSTM", inputs, {
        "direction": "bidirectional", "clip": 0.8, "input_forget": 1,
        "activations": ["HardSigmoid", "Softsign", "Tanh", "Sigmoid", "Tanh", "Elu"],
        "activation_alpha": [0.3, 0.9], "activation_beta": [0.4]})


# -- errors ----------------------------------------------------------------------------------
def compile_fails(tmp_path, op, inputs, attrs, match):
    attrs = {"hidden_size": inputs["R"].shape[-1], **attrs}
    model = model_of(op, inputs, attrs, ALL_OUTPUTS[op])
    with pytest.raises(ModelError, match=match):
        onnxc.compile(model, out_dir=tmp_path)


def test_unknown_activation(tmp_path):
    compile_fails(tmp_path, "GRU", make_inputs("GRU"), {"activations": ["Sigmoid", "Swish"]},
                  "unknown activation 'Swish'")


def test_activation_count(tmp_path):
    compile_fails(tmp_path, "LSTM", make_inputs("LSTM"), {"activations": ["Sigmoid", "Tanh"]},
                  "2 activations, expected 3")


def test_activation_count_bidirectional(tmp_path):
    compile_fails(tmp_path, "GRU", make_inputs("GRU", direction="bidirectional"),
                  {"direction": "bidirectional", "activations": ["Sigmoid", "Tanh"]},
                  "2 activations, expected 4")


@pytest.mark.parametrize("name,shape,match", [
    ("W", (1, 15, 5), r"W of shape \(1, 15, 5\), expected \(1, 15, 6\)"),
    ("R", (1, 15, 4), "hidden_size 5 but R of shape"),
    ("B", (1, 20), r"B of shape \(1, 20\), expected \(1, 30\)"),
    ("initial_h", (1, 2, 5), r"initial_h of shape \(1, 2, 5\), expected \(1, 3, 5\)"),
    ("sequence_lens", (4,), r"sequence_lens of shape \(4,\), expected \(3,\)"),
])
def test_inconsistent_shapes(tmp_path, name, shape, match):
    inputs = make_inputs("GRU", batch=3, size=6, hidden=5, optional=("B", "initial_h"),
                         lengths=[1, 2, 3])
    inputs[name] = np.zeros(shape, I32 if name == "sequence_lens" else F32)
    compile_fails(tmp_path, "GRU", inputs, {"hidden_size": 5}, match)


def test_hidden_size_mismatch(tmp_path):
    compile_fails(tmp_path, "RNN", make_inputs("RNN", hidden=5), {"hidden_size": 6},
                  "hidden_size 6 but R")


def test_bad_layout(tmp_path):
    compile_fails(tmp_path, "LSTM", make_inputs("LSTM"), {"layout": 2}, "layout 2")


def test_bad_direction(tmp_path):
    compile_fails(tmp_path, "RNN", make_inputs("RNN"), {"direction": "sideways"}, "sideways")


def test_directions_mismatch(tmp_path):
    """W for one direction, the node bidirectional."""
    compile_fails(tmp_path, "LSTM", make_inputs("LSTM"), {"direction": "bidirectional"},
                  "W of shape")


def test_unsupported_dtype(tmp_path):
    inputs = make_inputs("GRU", dtype=np.float16)
    model = model_of("GRU", inputs, {"hidden_size": 5}, ALL_OUTPUTS["GRU"], opset=22)
    with pytest.raises(ModelError, match="dtype float16 is not supported"):
        onnxc.compile(model, out_dir=tmp_path)
