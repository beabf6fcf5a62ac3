"""The ai.onnx.ml ops (ops/ml.py, ops/ml_trees.py) against onnxruntime: linear models,
scalers and encoders, and tree ensembles generated at random over every node mode, missing
values, aggregate, base values and post transform; and the models they refuse."""
from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxc
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxc.errors import ModelError

from .harness import assert_close, check_model, rand, reference

FLOAT, DOUBLE, INT64 = TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT64
MODES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]


def ml_model(op, inputs, attrs, outputs, ml_opset=3):
    """One ai.onnx.ml node over graph inputs x0, x1, ...; outputs: (element type, shape),
    given because onnx infers no shape for several of these ops."""
    names = [f"x{i}" for i in range(len(inputs))]
    graph_inputs = [helper.make_tensor_value_info(
        n, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape)) for n, a in zip(names, inputs)]
    outs = [helper.make_tensor_value_info(f"y{i}", t, list(shape))
            for i, (t, shape) in enumerate(outputs)]
    node = helper.make_node(op, names, [o.name for o in outs], name=f"{op.lower()}_node",
                            domain="ai.onnx.ml", **attrs)
    graph = helper.make_graph([node], f"{op.lower()}_test", graph_inputs, outs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("ai.onnx.ml", ml_opset),
                                                    helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 10)
    return onnx.shape_inference.infer_shapes(model), dict(zip(names, inputs))


def check_ml(tmp_path, op, inputs, attrs, outputs, ml_opset=3, rtol=1e-4, atol=1e-5,
             use="ort"):
    model, feeds = ml_model(op, inputs, attrs, outputs, ml_opset)
    return check_model(model, feeds, tmp_path, rtol, atol, use=use)


def compile_ml(tmp_path, op, inputs, attrs, outputs, ml_opset=3):
    return onnxc.compile(ml_model(op, inputs, attrs, outputs, ml_opset)[0], out_dir=tmp_path)


X = rand(7, 4)


def scores(n_classes, rows=7):
    """A classifier's outputs: labels and scores."""
    return [(INT64, (rows,)), (FLOAT, (rows, n_classes))]


# -- linear models -----------------------------------------------------------------------------
@pytest.mark.parametrize("post", ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"])
def test_linear_classifier_multiclass(tmp_path, post):
    rng = np.random.default_rng(1)
    scale = 0.1 if post == "PROBIT" else 1.0        # probit of scores in (0, 1)
    attrs = dict(coefficients=list(rng.standard_normal(12) * scale),
                 intercepts=[0.5, 0.4, 0.6] if post == "PROBIT" else [0.1, -0.2, 0.3],
                 classlabels_ints=[3, 1, 7], post_transform=post, multi_class=1)
    check_ml(tmp_path, "LinearClassifier", [X * np.float32(scale)], attrs, scores(3),
             ml_opset=1)


@pytest.mark.parametrize("post", ["NONE", "LOGISTIC", "SOFTMAX"])
def test_linear_classifier_binary(tmp_path, post):
    # one row of coefficients: onnxruntime's second class is 1 - s (logistic(-s) for LOGISTIC)
    attrs = dict(coefficients=[0.5, -1.0, 0.25, 2.0], intercepts=[0.1],
                 classlabels_ints=[4, 9], post_transform=post)
    check_ml(tmp_path, "LinearClassifier", [X], attrs, scores(2), ml_opset=1)


@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_linear_classifier_converts_input(tmp_path, dtype):
    x = (X * 3).astype(dtype)
    attrs = dict(coefficients=list(np.arange(8, dtype=np.float32) / 7 - 0.5),
                 intercepts=[0.0, 0.5], classlabels_ints=[0, 1])
    check_ml(tmp_path, "LinearClassifier", [x], attrs, scores(2), ml_opset=1)


@pytest.mark.parametrize("targets,post", [(1, "NONE"), (1, "LOGISTIC"), (2, "NONE"),
                                          (3, "SOFTMAX"), (2, "LOGISTIC")])
def test_linear_regressor(tmp_path, targets, post):
    rng = np.random.default_rng(targets)
    attrs = dict(coefficients=list(rng.standard_normal(4 * targets)),
                 intercepts=list(rng.standard_normal(targets)), targets=targets,
                 post_transform=post)
    check_ml(tmp_path, "LinearRegressor", [X], attrs, [(FLOAT, (7, targets))], ml_opset=1)


def test_linear_regressor_one_row(tmp_path):
    check_ml(tmp_path, "LinearRegressor", [X[0]], dict(coefficients=[1.0, 2.0, 3.0, 4.0]),
             [(FLOAT, (1, 1))], ml_opset=1)


# -- per-feature transforms --------------------------------------------------------------------
@pytest.mark.parametrize("dtype,offset,scale", [
    (np.float32, [0.5, -1.0, 0.0, 2.0], [2.0, 0.5, 1.0, -1.0]),
    (np.float32, [0.25], [3.0]),
    (np.float64, [0.5, -1.0, 0.0, 2.0], [2.0, 0.5, 1.0, -1.0]),
    (np.int64, [1.0, 2.0, 3.0, 4.0], [0.5, 0.25, 2.0, 1.0])])
def test_scaler(tmp_path, dtype, offset, scale):
    x = (X * 4).astype(dtype)
    check_ml(tmp_path, "Scaler", [x], dict(offset=offset, scale=scale), [(FLOAT, x.shape)],
             ml_opset=1)


@pytest.mark.parametrize("norm", ["MAX", "L1", "L2"])
@pytest.mark.parametrize("shape", [(7, 4), (5,)])
def test_normalizer(tmp_path, norm, shape):
    x = rand(*shape)
    x[0] = 0.0                      # a zero norm leaves the row alone
    x.reshape(-1)[-1] = -3.0
    check_ml(tmp_path, "Normalizer", [x], dict(norm=norm), [(FLOAT, shape)], ml_opset=1)


def test_normalizer_integers(tmp_path):
    x = np.arange(-6, 6, dtype=np.int64).reshape(3, 4)
    check_ml(tmp_path, "Normalizer", [x], dict(norm="L2"), [(FLOAT, x.shape)], ml_opset=1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binarizer(tmp_path, dtype):
    # onnxruntime has no double Binarizer: ONNX's reference checks that one
    check_ml(tmp_path, "Binarizer", [X.astype(dtype)], dict(threshold=0.25),
             [(helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), X.shape)], ml_opset=1,
             use="ort" if dtype == np.float32 else "onnx")


@pytest.mark.parametrize("dtype,replaced", [(np.float32, np.nan), (np.float32, 0.5),
                                            (np.int64, 2)])
def test_imputer(tmp_path, dtype, replaced):
    x = np.round(X * 2) / 2
    if dtype == np.float32:
        x[x > 1.0] = np.nan
        attrs = dict(imputed_value_floats=[1.5, -2.0, 3.0, 0.25],
                     replaced_value_float=float(replaced))
    else:
        x = np.round(X * 2).astype(dtype)
        attrs = dict(imputed_value_int64s=[7], replaced_value_int64=replaced)
    check_ml(tmp_path, "Imputer", [x.astype(dtype)], attrs,
             [(helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), x.shape)], ml_opset=1)


# -- lookups -----------------------------------------------------------------------------------
@pytest.mark.parametrize("data,indices", [
    (X, np.array([3, 0, 0, 2], np.int64)),
    (np.arange(24, dtype=np.int64).reshape(2, 3, 4), np.array([[1], [3]], np.int64)),
    (np.arange(5, dtype=np.float32), np.array([4, 1], np.int64))])
def test_array_feature_extractor(tmp_path, data, indices):
    elem = helper.np_dtype_to_tensor_dtype(data.dtype)
    rows = data.shape[:-1] if data.ndim > 1 else (1,)
    check_ml(tmp_path, "ArrayFeatureExtractor", [data, indices], {},
             [(elem, rows + (indices.size,))], ml_opset=1)


@pytest.mark.parametrize("keys", [1, 2, 5, 8, 13])
def test_label_encoder_int_to_float(tmp_path, keys):
    rng = np.random.default_rng(keys)
    key_values = rng.choice(np.arange(-20, 20), keys, replace=False)
    x = rng.integers(-22, 22, (6, 5)).astype(np.int64)
    attrs = dict(keys_int64s=[int(k) for k in key_values],
                 values_floats=[float(k) / 4 for k in key_values], default_float=-7.5)
    check_ml(tmp_path, "LabelEncoder", [x], attrs, [(FLOAT, x.shape)], ml_opset=2)


def test_label_encoder_float_to_int(tmp_path):
    x = np.array([0.5, 1.0, np.nan, -2.0, 3.25, 1.0, 7.0], np.float32)
    attrs = dict(keys_floats=[1.0, 3.25, -2.0, 0.5, 1.0], values_int64s=[10, 20, 30, 40, 50])
    check_ml(tmp_path, "LabelEncoder", [x], attrs, [(INT64, x.shape)], ml_opset=2)


def test_label_encoder_tensors(tmp_path):
    x = np.array([[1, 2, 3], [4, 9, 2]], np.int64)
    attrs = dict(keys_tensor=numpy_helper.from_array(np.array([2, 4, 9], np.int64)),
                 values_tensor=numpy_helper.from_array(np.array([0.5, 1.5, 2.5], np.float64)),
                 default_tensor=numpy_helper.from_array(np.array([-1.0], np.float64)))
    check_ml(tmp_path, "LabelEncoder", [x], attrs, [(DOUBLE, x.shape)], ml_opset=4)


# -- tree ensembles ----------------------------------------------------------------------------
def random_trees(rng, n_trees, depth, modes=("BRANCH_LEQ",), missing=False, features=4):
    """Random trees as nested tuples: None for a leaf, else (mode, feature, threshold,
    missing_tracks_true, true subtree, false subtree). Thresholds are small integers (and
    halves), so that the integer-valued inputs meet BRANCH_EQ and BRANCH_NEQ both ways."""
    def grow(level):
        if level == depth or (level > 1 and rng.random() < 0.3):
            return None
        return (str(rng.choice(modes)), int(rng.integers(features)),
                float(rng.integers(-4, 5)) / 2, int(missing and rng.random() < 0.5),
                grow(level + 1), grow(level + 1))
    return [grow(0) for _ in range(n_trees)]


def v3_nodes(trees):
    """nodes_* attributes (TreeEnsembleRegressor/Classifier) of the trees, in preorder, and
    their leaves as (tree id, node id)."""
    a = {k: [] for k in ("treeids", "nodeids", "modes", "featureids", "values", "truenodeids",
                         "falsenodeids", "missing_value_tracks_true")}
    leaves = []

    def emit(t, tree):
        nid, row = len([1 for x in a["treeids"] if x == t]), len(a["treeids"])
        for k, v in zip(a, (t, nid, "LEAF", 0, 0.0, 0, 0, 0)):
            a[k].append(v)
        if tree is None:
            leaves.append((t, nid))
        else:
            mode, feature, value, miss, yes, no = tree
            a["modes"][row], a["featureids"][row] = mode, feature
            a["values"][row], a["missing_value_tracks_true"][row] = value, miss
            a["truenodeids"][row] = emit(t, yes)
            a["falsenodeids"][row] = emit(t, no)
        return nid
    for t, tree in enumerate(trees):
        emit(t, tree)
    return {f"nodes_{k}": v for k, v in a.items()}, leaves


def votes(rng, leaves, targets, prefix, dense=True, scale=1.0, positive=False):
    """Each leaf votes for every target in order (dense), or for a random subset of them."""
    v = {f"{prefix}_treeids": [], f"{prefix}_nodeids": [], f"{prefix}_ids": [],
         f"{prefix}_weights": []}
    for t, nid in leaves:
        chosen = range(targets) if dense else sorted(rng.choice(
            targets, int(rng.integers(1, targets + 1)), replace=False))
        for target in chosen:
            weight = rng.uniform(0, 1) if positive else rng.standard_normal()
            for k, x in zip(v, (t, nid, int(target), float(weight * scale))):
                v[k].append(x)
    return v


def tree_input(rng, missing=False, rows=40, dtype=np.float32):
    x = rng.integers(-5, 6, (rows, 4)) / 2
    if missing:
        x[rng.random(x.shape) < 0.15] = np.nan
    return x.astype(dtype)


@pytest.mark.parametrize("aggregate,targets,modes,missing,base,post", [
    ("SUM", 1, ["BRANCH_LEQ"], False, [0.5], "NONE"),
    ("AVERAGE", 3, MODES, True, [0.5, -1.0, 2.0], "NONE"),
    ("MIN", 2, MODES, True, [], "NONE"),
    ("MAX", 3, MODES, False, [1.0, 2.0, 3.0], "NONE"),
    ("SUM", 3, ["BRANCH_LT", "BRANCH_GTE"], False, [], "LOGISTIC"),
    ("SUM", 3, ["BRANCH_LEQ"], False, [], "SOFTMAX"),
    ("SUM", 3, ["BRANCH_GT", "BRANCH_EQ"], False, [], "SOFTMAX_ZERO"),
    ("AVERAGE", 2, ["BRANCH_LEQ"], False, [0.5, 0.5], "PROBIT"),
    ("SUM", 1, ["BRANCH_LEQ"], False, [], "LOGISTIC"),
    ("AVERAGE", 1, ["BRANCH_NEQ"], True, [0.5], "PROBIT")])
def test_tree_ensemble_regressor(tmp_path, aggregate, targets, modes, missing, base, post):
    rng = np.random.default_rng(len(modes) * 10 + targets)
    nodes, leaves = v3_nodes(random_trees(rng, 4, 5, modes, missing))
    scale = 0.1 if post == "PROBIT" else 1.0
    attrs = dict(nodes, **votes(rng, leaves, targets, "target", dense=aggregate == "SUM",
                                scale=scale), n_targets=targets, aggregate_function=aggregate,
                 post_transform=post, **(dict(base_values=base) if base else {}))
    check_ml(tmp_path, "TreeEnsembleRegressor", [tree_input(rng, missing)], attrs,
             [(FLOAT, (40, targets))], ml_opset=1)


def test_tree_ensemble_regressor_double_input(tmp_path):
    rng = np.random.default_rng(5)
    nodes, leaves = v3_nodes(random_trees(rng, 3, 4, MODES[:4]))
    attrs = dict(nodes, **votes(rng, leaves, 2, "target"), n_targets=2)
    check_ml(tmp_path, "TreeEnsembleRegressor", [tree_input(rng, dtype=np.float64)], attrs,
             [(FLOAT, (40, 2))], ml_opset=1)


def test_tree_ensemble_regressor_double_attributes(tmp_path):
    rng = np.random.default_rng(6)
    nodes, leaves = v3_nodes(random_trees(rng, 3, 4, MODES))
    v = votes(rng, leaves, 2, "target")
    attrs = dict(nodes, **v, n_targets=2, base_values_as_tensor=numpy_helper.from_array(
        np.array([0.25, -0.5])))
    for name in ("nodes_values", "target_weights"):
        attrs[f"{name}_as_tensor"] = numpy_helper.from_array(np.array(attrs.pop(name)))
    check_ml(tmp_path, "TreeEnsembleRegressor", [tree_input(rng, dtype=np.float64)], attrs,
             [(FLOAT, (40, 2))], ml_opset=3)


def classifier_attrs(rng, n_classes, modes=("BRANCH_LEQ",), missing=False, **vote_options):
    nodes, leaves = v3_nodes(random_trees(rng, 4, 5, modes, missing))
    return dict(nodes, **votes(rng, leaves, n_classes, "class", **vote_options),
                classlabels_int64s=[10 + 3 * c for c in range(n_classes)])


@pytest.mark.parametrize("post", ["NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO"])
def test_tree_ensemble_classifier_multiclass(tmp_path, post):
    rng = np.random.default_rng(11)
    attrs = dict(classifier_attrs(rng, 3, MODES, True), post_transform=post)
    check_ml(tmp_path, "TreeEnsembleClassifier", [tree_input(rng, True)], attrs, scores(3, 40),
             ml_opset=1)


@pytest.mark.parametrize("base", [[], [0.5, -0.25, 1.0, 0.0]])
def test_tree_ensemble_classifier_sparse_votes(tmp_path, base):
    # some classes get no vote in a row: onnxruntime's argmax passes over them
    rng = np.random.default_rng(12)
    attrs = dict(classifier_attrs(rng, 4, MODES[:2], dense=False),
                 **(dict(base_values=base) if base else {}))
    check_ml(tmp_path, "TreeEnsembleClassifier", [tree_input(rng)], attrs, scores(4, 40),
             ml_opset=1)


def test_tree_ensemble_classifier_class_without_votes(tmp_path):
    rng = np.random.default_rng(13)
    attrs = classifier_attrs(rng, 3, MODES[:2], scale=-1.0)
    keep = [i for i, c in enumerate(attrs["class_ids"]) if c != 1]
    for name in ("class_ids", "class_nodeids", "class_treeids", "class_weights"):
        attrs[name] = [attrs[name][i] for i in keep]
    check_ml(tmp_path, "TreeEnsembleClassifier", [tree_input(rng)], attrs, scores(3, 40),
             ml_opset=1)


@pytest.mark.parametrize("positive", [True, False])
@pytest.mark.parametrize("post", ["NONE", "LOGISTIC", "SOFTMAX"])
def test_tree_ensemble_classifier_binary(tmp_path, positive, post):
    # votes for class 0 only (random forests, boosted trees): onnxruntime's "binary case"
    rng = np.random.default_rng(14)
    attrs = dict(classifier_attrs(rng, 1, positive=positive, scale=1 if positive else 0.5),
                 classlabels_int64s=[4, 8], post_transform=post)
    check_ml(tmp_path, "TreeEnsembleClassifier", [tree_input(rng)], attrs, scores(2, 40),
             ml_opset=1)


@pytest.mark.parametrize("base", [[], [0.25], [0.5, -0.5]])
@pytest.mark.parametrize("lone", [True, False])
def test_tree_ensemble_classifier_binary_base_values(tmp_path, base, lone):
    rng = np.random.default_rng(15)
    attrs = dict(classifier_attrs(rng, 1 if lone else 2), classlabels_int64s=[0, 1],
                 **(dict(base_values=base) if base else {}))
    check_ml(tmp_path, "TreeEnsembleClassifier", [tree_input(rng)], attrs, scores(2, 40),
             ml_opset=1)


def test_tree_ensemble_classifier_two_classes_voted(tmp_path):
    # votes for both classes: onnxruntime's labels are 1 and 0, not the class labels
    rng = np.random.default_rng(16)
    attrs = dict(classifier_attrs(rng, 2), classlabels_int64s=[5, 7], post_transform="SOFTMAX")
    check_ml(tmp_path, "TreeEnsembleClassifier", [tree_input(rng)], attrs, scores(2, 40),
             ml_opset=1)


@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.int32])
def test_tree_ensemble_classifier_converts_input(tmp_path, dtype):
    rng = np.random.default_rng(17)
    attrs = classifier_attrs(rng, 3, MODES[:4])
    x = tree_input(rng, dtype=np.float64) * (2 if dtype != np.float64 else 1)
    check_ml(tmp_path, "TreeEnsembleClassifier", [x.astype(dtype)], attrs, scores(3, 40),
             ml_opset=1)


def v5_attrs(rng, trees, targets, dtype=np.float32, members=False):
    """TreeEnsemble (ai.onnx.ml 5) attributes of the trees; with members, some nodes become
    set membership nodes (mode 6) over a few small values."""
    a = {k: [] for k in ("featureids", "modes", "splits", "truenodeids", "falsenodeids",
                         "trueleafs", "falseleafs", "missing_value_tracks_true")}
    leaf_targets, leaf_weights, member_values = [], [], []

    def emit(tree):
        if tree is None:
            leaf_targets.append(int(rng.integers(targets)))
            leaf_weights.append(rng.standard_normal())
            return len(leaf_targets) - 1, 1
        mode, feature, value, miss, yes, no = tree
        code = 6 if members and rng.random() < 0.4 else MODES.index(mode)
        if code == 6:
            # onnxruntime takes integer members only
            member_values.extend(list(rng.choice([-2, -1, 1, 2], 3, replace=False))
                                 + [np.nan])
        k = len(a["modes"])
        for name, v in zip(a, (feature, code, value, 0, 0, 0, 0, miss)):
            a[name].append(v)
        a["truenodeids"][k], a["trueleafs"][k] = emit(yes)
        a["falsenodeids"][k], a["falseleafs"][k] = emit(no)
        return k, 0
    roots = [emit(tree)[0] for tree in trees]
    out = {f"nodes_{k}": v for k, v in a.items() if k not in ("modes", "splits")}
    tensor = numpy_helper.from_array
    out.update(nodes_modes=tensor(np.array(a["modes"], np.uint8)),
               nodes_splits=tensor(np.array(a["splits"], dtype)), tree_roots=roots,
               leaf_targetids=leaf_targets, leaf_weights=tensor(np.array(leaf_weights, dtype)),
               n_targets=targets)
    if member_values:
        out["membership_values"] = tensor(np.array(member_values, dtype))
    return out


@pytest.mark.parametrize("aggregate,post,dtype", [
    (1, 0, np.float32), (0, 0, np.float64), (2, 0, np.float32), (3, 0, np.float64),
    (1, 1, np.float32), (1, 2, np.float32), (1, 3, np.float32)])
def test_tree_ensemble(tmp_path, aggregate, post, dtype):
    rng = np.random.default_rng(20 + aggregate)
    trees = random_trees(rng, 4, 5, MODES, missing=True)
    attrs = dict(v5_attrs(rng, trees, 3, dtype, members=True), aggregate_function=aggregate,
                 post_transform=post)
    # integers: onnxruntime tests membership on the input converted to int
    x = np.round(tree_input(rng, True, dtype=dtype) * 2)
    outputs = [(helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), (40, 3))]
    model, feeds = ml_model("TreeEnsemble", [x], attrs, outputs, ml_opset=5)
    got = onnxc.compile(model, out_dir=tmp_path).run(None, feeds)[0]
    # onnxruntime reads post_transform 1 as LOGISTIC and 2 as SOFTMAX, the other way round
    # from the schema (1 SOFTMAX, 2 LOGISTIC): its model gets the code it reads as ours
    attrs["post_transform"] = {1: 2, 2: 1}.get(post, post)
    want = reference(ml_model("TreeEnsemble", [x], attrs, outputs, ml_opset=5)[0], feeds)[0]
    assert_close(got, want, what="TreeEnsemble")


def test_tree_ensemble_single_leaf_tree(tmp_path):
    # a tree that is one leaf: a root whose branches both name that leaf
    rng = np.random.default_rng(25)
    attrs = v5_attrs(rng, random_trees(rng, 2, 3), 2)
    n, leaf = len(attrs["nodes_featureids"]), len(attrs["leaf_targetids"])
    for name, v in (("featureids", 0), ("truenodeids", leaf), ("falsenodeids", leaf),
                    ("trueleafs", 1), ("falseleafs", 1), ("missing_value_tracks_true", 0)):
        attrs[f"nodes_{name}"].append(v)
    attrs["nodes_modes"] = numpy_helper.from_array(np.append(
        numpy_helper.to_array(attrs["nodes_modes"]), np.uint8(0)))
    attrs["nodes_splits"] = numpy_helper.from_array(np.append(
        numpy_helper.to_array(attrs["nodes_splits"]), np.float32(0)))
    attrs["leaf_targetids"].append(1)
    attrs["leaf_weights"] = numpy_helper.from_array(np.append(
        numpy_helper.to_array(attrs["leaf_weights"]), np.float32(10)))
    attrs["tree_roots"].append(n)
    check_ml(tmp_path, "TreeEnsemble", [tree_input(rng)], attrs, [(FLOAT, (40, 2))],
             ml_opset=5)


# -- refused models ----------------------------------------------------------------------------
STRING = TensorProto.STRING


def _small_tree(**changes):
    a = dict(nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[1, 0, 0],
             nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"], nodes_values=[0.5, 0.0, 0.0],
             nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0], target_treeids=[0, 0],
             target_nodeids=[1, 2], target_ids=[0, 0], target_weights=[1.0, 2.0], n_targets=1)
    return dict(a, **changes)


def _small_classifier(**changes):
    a = {k.replace("target_", "class_"): v for k, v in _small_tree().items() if k != "n_targets"}
    return dict(a, **changes)


@pytest.mark.parametrize("op,attrs,outputs,match", [
    ("LinearClassifier", dict(coefficients=[1.0] * 8, classlabels_strings=["a", "b"]),
     [(STRING, (7,)), (FLOAT, (7, 2))], "string class labels"),
    ("LinearClassifier", dict(coefficients=[1.0] * 4, classlabels_ints=[1, 2, 3]),
     scores(2), "two class labels"),
    ("LinearClassifier", dict(coefficients=[1.0] * 8, classlabels_ints=[1, 2],
                              post_transform="CUBIC"), scores(2), "post_transform"),
    ("LinearRegressor", dict(coefficients=[1.0] * 5), [(FLOAT, (7, 1))], "coefficients"),
    ("Normalizer", dict(norm="L3"), [(FLOAT, (7, 4))], "norm"),
    ("Scaler", dict(offset=[1.0, 2.0], scale=[1.0]), [(FLOAT, (7, 4))], "offset"),
    ("Imputer", dict(imputed_value_int64s=[1]), [(FLOAT, (7, 4))], "imputed"),
    ("LabelEncoder", dict(keys_strings=["a"], values_floats=[1.0]), [(FLOAT, (7, 4))],
     "string keys|cannot infer the shapes"),
    ("TreeEnsembleClassifier", _small_classifier(classlabels_strings=["a", "b"]),
     [(STRING, (7,)), (FLOAT, (7, 2))], "string class labels"),
    ("TreeEnsembleRegressor", _small_tree(nodes_featureids=[9, 0, 0]), [(FLOAT, (7, 1))],
     "feature"),
    ("TreeEnsembleRegressor", _small_tree(nodes_truenodeids=[5, 0, 0]), [(FLOAT, (7, 1))],
     "no node 5"),
    ("TreeEnsembleRegressor", _small_tree(nodes_modes=["BRANCH_LEQ", "BRANCH_LEQ", "LEAF"],
                                          nodes_falsenodeids=[2, 2, 0]),
     [(FLOAT, (7, 1))], "cycle"),
    ("TreeEnsembleRegressor", _small_tree(nodes_modes=["BRANCH_SOMETIMES", "LEAF", "LEAF"]),
     [(FLOAT, (7, 1))], "mode"),
    ("TreeEnsembleRegressor", _small_tree(base_values=[1.0, 2.0]), [(FLOAT, (7, 1))],
     "base values"),
    ("TreeEnsembleRegressor", _small_tree(target_ids=[0, 3]), [(FLOAT, (7, 1))], "target 3"),
    ("TreeEnsembleRegressor", _small_tree(aggregate_function="MEDIAN"), [(FLOAT, (7, 1))],
     "aggregate_function")])
def test_refused(tmp_path, op, attrs, outputs, match):
    with pytest.raises(ModelError, match=match):
        compile_ml(tmp_path, op, [X], attrs, outputs, ml_opset=1 if op != "LabelEncoder" else 2)


def test_tree_ensemble_half(tmp_path):
    # onnxruntime has no float16 TreeEnsemble: ONNX's reference, which sums in float16
    rng = np.random.default_rng(26)
    attrs = v5_attrs(rng, random_trees(rng, 3, 4, MODES), 2, np.float16)
    check_ml(tmp_path, "TreeEnsemble", [tree_input(rng, dtype=np.float16)], attrs,
             [(TensorProto.FLOAT16, (40, 2))], ml_opset=5, use="onnx", rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("op", ["Scaler", "Normalizer"])
def test_refused_rank3(tmp_path, op):
    x = rand(2, 3, 4)
    with pytest.raises(ModelError, match=r"expected \[N, C\]"):
        compile_ml(tmp_path, op, [x], {}, [(FLOAT, x.shape)], ml_opset=1)


def _pipeline(nodes, x, outputs):
    """nodes after a Scaler, which onnx does not type: onnx's inference types none of them."""
    graph = helper.make_graph(
        [helper.make_node("Scaler", ["x"], ["s"], domain="ai.onnx.ml", offset=[0.5],
                          scale=[2.0], name="scale")] + nodes, "pipeline",
        [helper.make_tensor_value_info("x", FLOAT, list(x.shape))],
        [helper.make_tensor_value_info(name, t, None) for name, t in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("ai.onnx.ml", 1),
                                                    helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 10)
    return model


@pytest.mark.parametrize("case", ["linear_classifier", "binarizer_relu"])
def test_nodes_after_an_untyped_ml_op_are_shaped(tmp_path, case):
    nodes, outputs = {
        "linear_classifier": ([helper.make_node(
            "LinearClassifier", ["s"], ["label", "prob"], domain="ai.onnx.ml",
            coefficients=list(np.linspace(-1, 1, 12)), intercepts=[0.1, -0.2, 0.3],
            classlabels_ints=[3, 1, 7], post_transform="SOFTMAX", name="classify")],
            [("label", INT64), ("prob", FLOAT)]),
        "binarizer_relu": ([helper.make_node("Binarizer", ["s"], ["b"], domain="ai.onnx.ml",
                                             threshold=0.3, name="binarize"),
                            helper.make_node("Relu", ["b"], ["y"], name="relu")],
                           [("y", FLOAT)]),
    }[case]
    model = _pipeline(nodes, X, outputs)
    # outputs declared with symbolic dims only: every size comes from inference
    for o in model.graph.output:
        rank = 1 if o.type.tensor_type.elem_type == INT64 else 2
        for axis in range(rank):
            o.type.tensor_type.shape.dim.add().dim_param = f"d{axis}"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_model(model, {"x": X}, tmp_path)
