"""Benchmark networks exported by torch with a symbolic batch: one library, every batch."""
from __future__ import annotations

import numpy as np
import onnx
import onnxc
import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("torch", reason="the models are exported with torch")

from benchmarks.models import INPUT_NAME, INPUT_SHAPES, export_bytes  # noqa: E402

BATCHES = (1, 8)   # the range compiled
TOLERANCE = {"mlp": 1e-4, "cnn": 1e-4, "bert4": 1e-3}   # max |onnxc - ort| / max |ort|


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def exported(request, tmp_path_factory):
    name = request.param
    model = onnx.load_from_string(export_bytes(name, dynamic_batch=True))
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param == "batch", "torch should have written a symbolic batch"
    lib = onnxc.compile(model, out_dir=tmp_path_factory.mktemp(name), dims={"batch": BATCHES})
    return name, model, lib


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_every_batch_matches_onnxruntime(exported, batch):
    name, model, lib = exported
    shape = (batch,) + INPUT_SHAPES[name][1:]
    feed = {INPUT_NAME: np.random.default_rng(batch).standard_normal(shape, dtype=np.float32)}
    (want,) = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"]).run(None, feed)
    (got,) = lib.run(None, feed)
    assert got.shape == want.shape and np.isfinite(got).all()
    assert np.abs(got - want).max() <= TOLERANCE[name] * np.abs(want).max()
