"""Per-op numeric checks: one-node models compiled by onnxc, compared with onnxruntime."""
from __future__ import annotations

import numpy as np
import onnx
import onnxc
from onnx import helper, numpy_helper

RTOL, ATOL = 1e-4, 1e-5


def node_model(op_type, inputs, attrs=None, constant=(), n_outputs=1, opset=17,
               domain="", output_dtypes=None):
    """A model of one node. inputs: list of arrays (None for an omitted optional input);
    indices in `constant` become initializers, the rest graph inputs named x0, x1, ..."""
    names, graph_inputs, inits = [], [], []
    for i, arr in enumerate(inputs):
        if arr is None:
            names.append("")
            continue
        name = f"x{i}"
        names.append(name)
        arr = np.asarray(arr)
        if i in constant:
            inits.append(numpy_helper.from_array(arr, name))
        else:
            graph_inputs.append(helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(arr.dtype), list(arr.shape)))
    outs = [f"y{i}" for i in range(n_outputs)]
    node = helper.make_node(op_type, names, outs, name=f"{op_type.lower()}_node", domain=domain,
                            **(attrs or {}))
    out_infos = [helper.make_empty_tensor_value_info(o) for o in outs]
    graph = helper.make_graph([node], f"{op_type.lower()}_test", graph_inputs, out_infos, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 10)
    return onnx.shape_inference.infer_shapes(model)


def feeds_of(model, inputs, constant=()):
    return {f"x{i}": np.asarray(a) for i, a in enumerate(inputs)
            if a is not None and i not in constant}


def reference(model, feeds, use="ort"):
    if use == "ort":
        import onnxruntime as ort
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return sess.run(None, feeds)
    from onnx.reference import ReferenceEvaluator
    return ReferenceEvaluator(model).run(None, feeds)


def assert_close(actual, expected, rtol=RTOL, atol=ATOL, what=""):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    if actual.dtype.name == "bfloat16":       # ml_dtypes' type: numpy sees no float kind
        actual, expected = actual.astype(np.float32), expected.astype(np.float32)
    if actual.dtype.kind == "f":
        assert not np.isnan(actual[~np.isnan(expected)]).any(), f"{what}: unexpected NaN"
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=what)


def check_model(model, feeds, tmp_path, rtol=RTOL, atol=ATOL, use="ort", target="host"):
    """Compile with -Werror, run, compare every output with the reference."""
    compiled = onnxc.compile(model, target=target, out_dir=tmp_path, strict=True)
    got = compiled.run(None, feeds)
    want = reference(model, feeds, use)
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, rtol, atol, what=f"output {i}")
    return got


def check_node(tmp_path, op_type, inputs, attrs=None, constant=(), n_outputs=1, opset=17,
               rtol=RTOL, atol=ATOL, use="ort"):
    model = node_model(op_type, inputs, attrs, constant, n_outputs, opset)
    return check_model(model, feeds_of(model, inputs, constant), tmp_path, rtol, atol, use)


def rand(*shape, seed=0, dtype=np.float32, low=None, high=None):
    rng = np.random.default_rng(seed + 7 * len(shape) + sum(shape))
    if low is not None:
        return rng.uniform(low, high, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)
