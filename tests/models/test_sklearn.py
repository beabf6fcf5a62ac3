"""scikit-learn models exported by skl2onnx (ai.onnx.ml ops): compiled by onnxc and compared
with onnxruntime on the same rows: labels equal, scores and values close."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("sklearn")
skl2onnx = pytest.importorskip("skl2onnx")

from skl2onnx.common.data_types import FloatTensorType  # noqa: E402
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

ROWS, FEATURES = 64, 5
RTOL, ATOL = 1e-4, 1e-5


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((ROWS, FEATURES)).astype(np.float32)
    signal = X @ np.array([1.5, -2.0, 0.5, 0.0, 1.0], np.float32)
    return X, {"binary": (signal > 0).astype(np.int64),
               "three": np.digitize(signal, [-1.0, 1.0]).astype(np.int64),
               "value": signal + 0.1 * rng.standard_normal(ROWS)}


def _models():
    """name -> (unfitted model, target, whether it is a classifier)."""
    forest = dict(n_estimators=5, max_depth=4, random_state=0)
    return {
        "linear_regression": (LinearRegression(), "value", False),
        "logistic_binary": (LogisticRegression(), "binary", True),
        "logistic_3class": (LogisticRegression(), "three", True),
        "random_forest_classifier": (RandomForestClassifier(**forest), "three", True),
        "random_forest_binary": (RandomForestClassifier(**forest), "binary", True),
        "random_forest_regressor": (RandomForestRegressor(**forest), "value", False),
        "scaler_logistic_pipeline": (Pipeline([("scale", StandardScaler()),
                                               ("logistic", LogisticRegression())]), "three",
                                     True),
    }


@pytest.mark.parametrize("name", list(_models()))
def test_sklearn_model(tmp_path, name):
    model, target, classifier = _models()[name]
    X, targets = _data()
    model.fit(X, targets[target])
    # classifiers: a probabilities tensor rather than skl2onnx's ZipMap (a sequence of maps)
    options = {id(model): {"zipmap": False}} if classifier else None
    onx = skl2onnx.to_onnx(model, initial_types=[("X", FloatTensorType([ROWS, FEATURES]))],
                           options=options, target_opset={"": 17, "ai.onnx.ml": 3})
    got = onnxc.compile(onx, out_dir=tmp_path).run(None, {"X": X})
    want = ort.InferenceSession(onx.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"X": X})
    assert len(got) == len(want)
    for g, w, info in zip(got, want, onx.graph.output):
        assert g.shape == w.shape and g.dtype == w.dtype, info.name
        if classifier and info.name == "label":
            np.testing.assert_array_equal(g, w, err_msg=info.name)
        else:
            np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL, err_msg=info.name)
    if classifier:    # and the labels are sklearn's own
        np.testing.assert_array_equal(got[0].reshape(-1), model.predict(X))
