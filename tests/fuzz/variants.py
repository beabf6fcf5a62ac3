"""Valid-ish variants of the seed models for the differential fuzzer: small changes a real
model could have (other input shapes, attribute values, element types, initializer values)
and declared output shapes or types that disagree with what the graph computes. Each variant
edits an onnx.ModelProto in place, choosing with a mutate.Chooser."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.fuzz.mutate import Chooser, random_array

RETYPES = (TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.INT32, TensorProto.INT64,
           TensorProto.INT8, TensorProto.UINT8, TensorProto.BOOL)
OUTPUT_TYPES = (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT32, TensorProto.INT64)
SMALL_FLOATS = (0.0, 0.5, 1.0, -1.0, 2.0, 1e-5, 3.0)


def _reinfer(m: onnx.ModelProto) -> None:
    """Declared output shapes recomputed by ONNX's inference (left empty where it fails)."""
    for out in m.graph.output:
        out.type.tensor_type.ClearField("shape")
    del m.graph.value_info[:]
    try:
        inferred = onnx.shape_inference.infer_shapes(m)
    except Exception:  # noqa: BLE001 - a model ONNX cannot infer keeps shapeless outputs
        return
    for out, new in zip(m.graph.output, inferred.graph.output):
        out.CopyFrom(new)


def resize_input(m: onnx.ModelProto, ch: Chooser) -> None:
    inputs = [i for i in m.graph.input if i.type.HasField("tensor_type")]
    if not inputs:
        return
    shape = ch.pick(inputs).type.tensor_type.shape
    if shape.dim and not ch.chance(0.15):
        ch.pick(shape.dim).dim_value = ch.between(1, 6)
    elif ch.chance(0.5) or not shape.dim:
        shape.dim.add().dim_value = ch.between(1, 4)
    else:
        del shape.dim[ch.below(len(shape.dim))]
    if ch.chance(0.6):
        _reinfer(m)


def wrong_output(m: onnx.ModelProto, ch: Chooser) -> None:
    out = ch.pick(m.graph.output).type.tensor_type
    what = ch.below(4)
    if what == 0 and out.shape.dim:
        d = ch.pick(out.shape.dim)
        d.dim_value = ch.pick((1, 2, 3, 4, 7)) if d.dim_value != 1 else 4
    elif what == 1:
        out.shape.dim.add().dim_value = ch.between(1, 3)
    elif what == 2 and out.shape.dim:
        del out.shape.dim[ch.below(len(out.shape.dim))]
    else:
        out.elem_type = ch.pick(OUTPUT_TYPES)


def drop_output_shape(m: onnx.ModelProto, ch: Chooser) -> None:
    """An output's dims made unknown (the rank stays: onnx.checker wants a shape)."""
    shape = ch.pick(m.graph.output).type.tensor_type.shape
    for d in shape.dim:
        d.Clear()


def small_attrs(m: onnx.ModelProto, ch: Chooser) -> None:
    attrs = [a for n in m.graph.node for a in n.attribute]
    if not attrs:
        return
    a = ch.pick(attrs)
    if a.type == onnx.AttributeProto.INT:
        a.i = ch.between(-3, 4)
    elif a.type == onnx.AttributeProto.INTS and a.name == "perm":
        perm = list(a.ints)
        for i in range(len(perm) - 1, 0, -1):
            j = ch.below(i + 1)
            perm[i], perm[j] = perm[j], perm[i]
        a.ClearField("ints")
        a.ints.extend(perm)
    elif a.type == onnx.AttributeProto.INTS and a.ints:
        a.ints[ch.below(len(a.ints))] = ch.between(-1, 4)
    elif a.type == onnx.AttributeProto.FLOAT:
        a.f = ch.pick(SMALL_FLOATS)


def _retype_tensor(t: onnx.TensorProto, dtype: int) -> None:
    value = numpy_helper.to_array(t)
    t.CopyFrom(numpy_helper.from_array(
        value.astype(helper.tensor_dtype_to_np_dtype(dtype)), t.name))


def retype(m: onnx.ModelProto, ch: Chooser) -> None:
    """Every float32 tensor of the graph (inputs, outputs, initializers) becomes another type."""
    g, dtype = m.graph, ch.pick(RETYPES)
    for info in (*g.input, *g.output, *g.value_info):
        if info.type.tensor_type.elem_type == TensorProto.FLOAT:
            info.type.tensor_type.elem_type = dtype
    for t in g.initializer:
        if t.data_type == TensorProto.FLOAT:
            _retype_tensor(t, dtype)
    for n in g.node:
        for a in n.attribute:
            if a.HasField("t") and a.t.data_type == TensorProto.FLOAT:
                _retype_tensor(a.t, dtype)


def init_values(m: onnx.ModelProto, ch: Chooser) -> None:
    """An initializer's values replaced: small integers (zeros and out-of-range indices
    included) or normal floats."""
    inits = list(m.graph.initializer)
    if not inits:
        return
    t = ch.pick(inits)
    old = numpy_helper.to_array(t)
    if old.dtype.kind in "iu":
        value = np.asarray([ch.between(-8, 8) for _ in range(old.size)]).reshape(old.shape)
    else:
        value = random_array(old.shape, old.dtype, ch)
    t.CopyFrom(numpy_helper.from_array(value.astype(old.dtype), t.name))


def init_shape(m: onnx.ModelProto, ch: Chooser) -> None:
    inits = [t for t in m.graph.initializer if t.dims]
    if not inits:
        return
    t = ch.pick(inits)
    old = numpy_helper.to_array(t)
    shape = list(old.shape)
    shape[ch.below(len(shape))] = ch.between(1, 6)
    value = random_array(shape, old.dtype, ch) if old.dtype.kind == "f" \
        else np.asarray(old.flat[0] if old.size else 1).repeat(int(np.prod(shape))).reshape(shape)
    t.CopyFrom(numpy_helper.from_array(value.astype(old.dtype), t.name))


VARIANTS = {
    "resize_input": resize_input, "wrong_output": wrong_output,
    "drop_output_shape": drop_output_shape, "small_attrs": small_attrs, "retype": retype,
    "init_values": init_values, "init_shape": init_shape,
}


def vary(model: onnx.ModelProto, ch: Chooser, max_changes: int = 2) -> tuple[onnx.ModelProto,
                                                                              list[str]]:
    """A copy of model with 1 to max_changes variants applied, and their names."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    names = [ch.pick(tuple(VARIANTS)) for _ in range(ch.between(1, max_changes))]
    for name in names:
        VARIANTS[name](m, ch)
    return m, names
