"""Dynamic models compiled with no flags: one generic library serves every shape, and
matches onnxruntime at three different shapes (tests/models/dynamic_corpus.py)."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest

from tests.models.dynamic_corpus import BUILDERS, TORCH_BUILDERS, feed_for

ort = pytest.importorskip("onnxruntime")
ALL = {**BUILDERS, **TORCH_BUILDERS}


# the torch exports take half a minute to build: the full tier runs them
@pytest.fixture(scope="module", params=[
    pytest.param(name, marks=pytest.mark.full) if name in TORCH_BUILDERS else name
    for name in sorted(ALL)])
def corpus_model(request):
    if request.param in TORCH_BUILDERS:
        pytest.importorskip("torch", reason="exported by torch")
    return request.param, *ALL[request.param]()


@pytest.mark.parametrize("backend", ["c", "llvm"])
def test_one_library_matches_onnxruntime_at_three_shapes(corpus_model, backend, tmp_path,
                                                         monkeypatch):
    name, model, cases = corpus_model
    lib = onnxc.compile(model, out_dir=tmp_path, backend=backend)
    # the library alone serves every shape: no compiler is reachable for the runs
    monkeypatch.setenv("PATH", "")
    monkeypatch.setenv("CC", "/nonexistent/cc")
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    for k, shapes in enumerate(cases):
        feed = feed_for(ALL[name], shapes, k)
        for got, want in zip(lib.run(None, feed), session.run(None, feed)):
            assert got.shape == want.shape, (name, shapes)
            assert got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=str(shapes))


def test_symbols_shown_as_onnxruntime_shows_them(tmp_path):
    model, _ = BUILDERS["concat_batch"]()
    lib = onnxc.compile(model, out_dir=tmp_path)
    assert [i.shape for i in lib.get_inputs()] == [["batch", "src", 8], ["batch", "tgt", 8]]
    assert lib.dims == {name: (1, 2**63 - 1) for name in ("batch", "src", "tgt")}
    # an axis that is an expression over the symbols (src + tgt) has no single name
    assert lib.get_outputs()[0].shape == ["batch", None, 4]


def test_unnamed_dimensions_get_input_axis_names(tmp_path):
    model, _ = BUILDERS["paddle_style"]()
    lib = onnxc.compile(model, out_dir=tmp_path)
    assert lib.get_inputs()[0].shape == ["x:0", 4, "x:2"]


def test_a_range_bounds_the_generic_program(tmp_path):
    model, _ = BUILDERS["sklearn_style"]()
    lib = onnxc.compile(model, out_dir=tmp_path, dims={"X:0": (1, 16)})
    x = np.ones((16, 6), np.float32)
    assert lib.run(None, {"X": x})[0].shape == (16, 3)
    with pytest.raises(Exception, match="outside the compiled range 1..16"):
        lib.run(None, {"X": np.ones((17, 6), np.float32)})


def test_inputs_that_disagree_on_a_symbol_are_refused(tmp_path):
    model, _ = BUILDERS["concat_batch"]()
    lib = onnxc.compile(model, out_dir=tmp_path)
    with pytest.raises(ValueError, match="dimension 'batch' is 2"):
        lib.run(None, {"a": np.ones((2, 3, 8), np.float32), "b": np.ones((3, 3, 8), np.float32)})


def test_a_negative_input_dimension_is_dynamic(tmp_path):
    from onnx import TensorProto, helper
    model = helper.make_model(helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "neg",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, 3])]),
        opset_imports=[helper.make_opsetid("", 17)])
    lib = onnxc.compile(model, out_dir=tmp_path)
    for rows in (1, 4):
        x = np.linspace(-1, 1, rows * 3, dtype=np.float32).reshape(rows, 3)
        np.testing.assert_array_equal(lib.run(None, {"x": x})[0], np.maximum(x, 0))


def test_a_hint_tunes_the_schedule_for_a_value(tmp_path):
    """--dim NAME=LOW..HIGH@HINT: schedules are chosen for HINT; every value still runs."""
    from onnxc.frontend.dims import parse_dim
    assert parse_dim("seq=1..512@128").hint == 128
    with pytest.raises(onnxc.ModelError, match="LOW <= HINT <= HIGH"):
        parse_dim("seq=1..8@9")
    model, cases = BUILDERS["sklearn_style"]()
    lib = onnxc.compile(model, out_dir=tmp_path, dims={"X:0": (1, 64, 16)})
    assert lib.dims == {"X:0": (1, 64)}
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    for rows in (1, 17, 64):
        feed = {"X": np.random.default_rng(rows).standard_normal((rows, 6)).astype(np.float32)}
        for got, want in zip(lib.run(None, feed), session.run(None, feed)):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_a_huge_tensor_over_symbols_is_refused_at_compile_time(tmp_path):
    """[batch, 2**39] float32 takes 2 TiB at batch 1 already: no run could hold it."""
    from onnx import TensorProto, helper, numpy_helper
    model = helper.make_model(helper.make_graph(
        [helper.make_node("Expand", ["x", "shape"], ["y"])], "huge",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([1, 2**39], np.int64), "shape")]),
        opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(onnxc.ModelError, match="TiB"):
        onnxc.compile(model, out_dir=tmp_path)
