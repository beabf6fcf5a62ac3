"""The six benchmark models: compiled, run on random inputs, compared with onnxruntime."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("torch", reason="the benchmark models are exported with torch")

from benchmarks.models import ensure_models, make_feed  # noqa: E402

# max |onnxc - ort| / max |ort| allowed, per the issue
TOLERANCE = {"mlp": 1e-4, "cnn": 1e-4, "gemm": 1e-4, "resnet18": 1e-3, "mobilenetv2": 1e-3,
             "bert4": 1e-3}


@pytest.fixture(scope="module")
def model_paths():
    return ensure_models()


@pytest.mark.parametrize("name", list(TOLERANCE))
def test_model_matches_onnxruntime(name, model_paths, tmp_path):
    path = model_paths[name]
    compiled = onnxc.compile(path, out_dir=tmp_path, strict=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for seed in (0, 1):
        feed = make_feed(name, seed=seed)
        got = compiled.run(None, feed)
        want = session.run(None, feed)
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == w.dtype
            assert np.isfinite(g).all()
            err = np.abs(g - w).max() / np.abs(w).max()
            assert err <= TOLERANCE[name], f"{name}: relative error {err:.2e}"
