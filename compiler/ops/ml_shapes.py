"""Output shapes of the ai.onnx.ml ops that onnx's inference leaves untyped (their exporters'
declared shapes are often stale: onnxmltools declares LightGBM's label [1] for any batch).
Each is registered with its op as `shape=` (frontend/fold.py reads it)."""
from __future__ import annotations

from ..errors import ModelError

_F = "float32"


def _rows(x) -> int:
    """Rows of an [N, F] input; a 1-D input is one row."""
    return x.shape[0] if len(x.shape) >= 2 else 1


def tree_regressor_shape(ins, consts, attrs):
    targets = attrs.get("n_targets") or (max(attrs.get("target_ids") or (0,)) + 1)
    return [(_F, (_rows(ins[0]), int(targets)))]


def tree_classifier_shape(ins, consts, attrs):
    if attrs.get("classlabels_strings"):
        raise ModelError("TreeEnsembleClassifier: string class labels (classlabels_strings) "
                         "are not compiled; only classlabels_int64s")
    n, classes = _rows(ins[0]), len(attrs.get("classlabels_int64s") or ())
    return [("int64", (n,)), (_F, (n, classes))]


def linear_regressor_shape(ins, consts, attrs):
    return [(_F, (_rows(ins[0]), int(attrs.get("targets", 1))))]


def same_shape_float(ins, consts, attrs):
    """Scaler, Normalizer: the input's shape in float32."""
    return [(_F, tuple(ins[0].shape))]


def same_shape_and_type(ins, consts, attrs):
    """Imputer: the input's shape and type."""
    return [(ins[0].dtype, tuple(ins[0].shape))]


def linear_classifier_shape(ins, consts, attrs):
    """Labels [N]; scores [N, T] for T rows of coefficients, or [N, 2] for one row (a binary
    classifier scores both classes, as onnxruntime). onnx types string labels, which onnxc
    does not compile: say so."""
    if attrs.get("classlabels_strings"):
        raise ModelError("LinearClassifier: string class labels (classlabels_strings) are not "
                         "compiled; only classlabels_ints")
    x = ins[0]
    features = x.shape[-1] if x.shape else 1
    rows = len(attrs.get("coefficients") or ()) // max(features, 1)
    n = _rows(x)
    return [("int64", (n,)), (_F, (n, rows if rows > 1 else 2))]


def array_feature_extractor_shape(ins, consts, attrs):
    """The last axis gathered by the indices; 1-D data is one row (as onnxruntime)."""
    data, indices = ins
    count = 1
    for d in indices.shape:
        count *= d
    rows = tuple(data.shape[:-1]) if len(data.shape) > 1 else (1,)
    return [(data.dtype, rows + (count,))]
