"""The node suite's sample again, each case's leading axis made symbolic: the generic program
(no --dim) must give the suite's expected outputs from the same inputs, or refuse the model
with a ModelError (a static-only lowering, a shape read from the data); never a wrong number
or an internal error. In the full tier."""
from __future__ import annotations

import copy

import numpy as np
import onnx
import onnxc
import pytest
from onnxc.errors import InternalError, ModelError

from .test_node_suite import NODE_CASES, NODE_SAMPLE

SYMBOL = "N"
SHAPE_LIKE = (onnx.TensorProto.INT64, onnx.TensorProto.INT32)


def symbolic_leading_axis(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """The model with axis 0 of every graph input that has the first input's extent there
    named SYMBOL (1-d int inputs, shapes and axes, keep theirs); None where nothing varies."""
    model = copy.deepcopy(model)
    inputs = [i for i in model.graph.input
              if i.name not in {t.name for t in model.graph.initializer}]
    if not inputs or not inputs[0].type.tensor_type.shape.dim:
        return None
    extent = inputs[0].type.tensor_type.shape.dim[0].dim_value
    if extent <= 1:
        return None
    for i in inputs:
        t = i.type.tensor_type
        dims = t.shape.dim
        if dims and dims[0].dim_value == extent and (len(dims) > 1 or
                                                      t.elem_type not in SHAPE_LIKE):
            dims[0].ClearField("dim_value")
            dims[0].dim_param = SYMBOL
    for o in model.graph.output:
        o.type.tensor_type.ClearField("shape")
    return model


CASES = sorted((c for c in NODE_CASES if f"{c.name}_cpu" in NODE_SAMPLE and c.data_sets
                and symbolic_leading_axis(c.model) is not None), key=lambda c: c.name)


def _close(got, want, case) -> bool:
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return False
    if want.dtype.kind in "fc":
        return np.allclose(got.astype(np.float64), want.astype(np.float64), rtol=case.rtol,
                           atol=case.atol, equal_nan=True)
    return np.array_equal(got, want)


@pytest.mark.full
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_generic_program_gives_the_expected_outputs(tmp_path, case):
    model = symbolic_leading_axis(case.model)
    try:
        lib = onnxc.compile(model, out_dir=tmp_path)
    except InternalError:
        raise
    except ModelError as exc:
        pytest.skip(f"refused: {str(exc).splitlines()[0][:120]}")
    inputs, outputs = case.data_sets[0]
    if any(np.asarray(a).dtype == object for a in inputs):
        pytest.skip("inputs of an exotic dtype the wrapper takes as ml_dtypes arrays")
    names = [i.name for i in model.graph.input
             if i.name not in {t.name for t in model.graph.initializer}]
    got = lib.run(None, dict(zip(names, inputs)))
    assert all(_close(g, w, case) for g, w in zip(got, outputs)), case.name
