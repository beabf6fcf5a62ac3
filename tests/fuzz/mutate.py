"""Mutations of ONNX models for the fuzzers.

A Chooser makes every random choice: RandomChooser from a seeded random.Random (the
deterministic campaigns), BytesChooser from the fuzzer's input bytes (atheris: its mutations of
the bytes become different choices). `structural` mutations break models in every way the
protobuf allows (dims, dtypes, attributes, names, initializer data, opsets); `raw` ones mutate
the serialized bytes. A name can be set to bytes that are not UTF-8 (or hold a NUL): the model
carries a same-length marker that serialize() replaces in the bytes.
"""
from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import onnx

DIMS = (0, 1, 2, 3, 5, 7, 16, -1, -7, 2**31 - 1, 2**31, 2**32 + 1, 2**40, 2**62, 2**63 - 1)
INTS = (0, 1, -1, 2, -2, 3, 7, 100, -100, 2**31 - 1, -2**31, 2**62, -2**63)
FLOATS = (0.0, -0.0, 1.0, -1.0, 1e-30, 1e30, 3.4e38, float("inf"), float("-inf"), float("nan"))
ELEM_TYPES = tuple(range(0, 27)) + (120, 1000, -1)
OPSETS = (0, -1, 1, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
          99)
IR_VERSIONS = (0, 1, 3, 4, 7, 8, 9, 10, 11, 12, 13, 99)
OP_TYPES = ("Add", "Relu", "MatMul", "Gemm", "Conv", "Gather", "Reshape", "Transpose", "Slice",
            "Concat", "Pad", "Softmax", "ReduceSum", "Cast", "Div", "Mod", "Expand", "Tile",
            "Split", "TopK", "NoSuchOp", "")
ATTR_NAMES = ("axis", "axes", "perm", "keepdims", "to", "pads", "kernel_shape", "strides",
              "dilations", "group", "transA", "transB", "mode", "k", "value", "split", "")
BAD_NAMES = (b"\xff\xfe", b"\xc3\x28", b"a\x00b", b"\xed\xa0\x80", b"\x80", b"", b"\x00",
             b"x" * 40, b"\xf4\x90\x80\x80")
MARK = b"\x01FZ"      # markers: MARK + two digits + \x01, then padded to their bytes' length


class Chooser:
    def below(self, n: int) -> int:
        raise NotImplementedError

    def chance(self, p: float) -> bool:
        return self.below(1000) < p * 1000

    def pick(self, seq):
        return seq[self.below(len(seq))]

    def between(self, low: int, high: int) -> int:
        return low + self.below(high - low + 1)


class RandomChooser(Chooser):
    def __init__(self, seed):
        self.rng = random.Random(seed)

    def below(self, n: int) -> int:
        return self.rng.randrange(n) if n > 0 else 0


class BytesChooser(Chooser):
    """Choices read from bytes, two at a time; zeros once they run out."""

    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def below(self, n: int) -> int:
        if n <= 1:
            return 0
        chunk = self.data[self.at:self.at + 2]
        self.at += 2
        return int.from_bytes(chunk.ljust(2, b"\0"), "little") % n


class Mutant:
    """A model being mutated and the byte patches serialize() applies."""

    def __init__(self, model: onnx.ModelProto):
        self.model = onnx.ModelProto()
        self.model.CopyFrom(model)
        self.patches: list[tuple[bytes, bytes]] = []

    def bad_name(self, ch: Chooser) -> str:
        return self.name_of(ch.pick(BAD_NAMES))

    def name_of(self, raw: bytes) -> str:
        """A name whose serialized bytes become raw (padded with "_" to its marker's length,
        or the marker padded to raw's)."""
        marker = MARK + b"%02d\x01" % len(self.patches)
        raw = raw.ljust(len(marker), b"_")
        marker = marker + b"q" * (len(raw) - len(marker))
        self.patches.append((marker, raw))
        return marker.decode()

    def serialize(self) -> bytes:
        data = self.model.SerializeToString()
        for marker, raw in self.patches:
            data = data.replace(marker, raw)
        return data


def _value_infos(g: onnx.GraphProto) -> list:
    return [v for v in (*g.input, *g.output, *g.value_info) if v.type.HasField("tensor_type")]


def _tensors(g: onnx.GraphProto) -> list:
    attrs = [a.t for n in g.node for a in n.attribute if a.HasField("t")]
    return [*g.initializer, *attrs]


def mutate_dim(m: Mutant, ch: Chooser) -> None:
    infos = _value_infos(m.model.graph)
    if not infos:
        return
    shape = ch.pick(infos).type.tensor_type.shape
    what = ch.below(5)
    if what == 0 or not shape.dim:
        shape.dim.add().dim_value = ch.pick(DIMS)
    elif what == 1:
        del shape.dim[ch.below(len(shape.dim))]
    elif what == 2:
        ch.pick(shape.dim).dim_param = ch.pick(("N", "", "batch", "1"))
    else:
        ch.pick(shape.dim).dim_value = ch.pick(DIMS)


def mutate_tensor_dims(m: Mutant, ch: Chooser) -> None:
    tensors = _tensors(m.model.graph)
    if tensors:
        t = ch.pick(tensors)
        if t.dims and ch.chance(0.7):
            t.dims[ch.below(len(t.dims))] = ch.pick(DIMS)
        else:
            t.dims.append(ch.pick(DIMS))


def mutate_elem_type(m: Mutant, ch: Chooser) -> None:
    g = m.model.graph
    targets = [v.type.tensor_type for v in _value_infos(g)] + _tensors(g)
    if targets:
        target = ch.pick(targets)
        if isinstance(target, onnx.TensorProto):
            target.data_type = ch.pick(ELEM_TYPES)
        else:
            target.elem_type = ch.pick(ELEM_TYPES)


def mutate_attribute(m: Mutant, ch: Chooser) -> None:
    nodes = list(m.model.graph.node)
    if not nodes:
        return
    node = ch.pick(nodes)
    if not node.attribute or ch.chance(0.2):
        attr = node.attribute.add()
        attr.name = ch.pick(ATTR_NAMES)
        attr.type = ch.pick((onnx.AttributeProto.INT, onnx.AttributeProto.INTS,
                             onnx.AttributeProto.FLOAT, onnx.AttributeProto.STRING))
    else:
        attr = ch.pick(node.attribute)
    if ch.chance(0.1):
        node.attribute.remove(attr)
    elif attr.type == onnx.AttributeProto.INT:
        attr.i = ch.pick(INTS)
    elif attr.type == onnx.AttributeProto.INTS:
        values = list(attr.ints) or [1]
        values[ch.below(len(values))] = ch.pick(INTS)
        values = values[:ch.below(len(values) + 1)] if ch.chance(0.2) else values
        attr.ClearField("ints")
        attr.ints.extend(values + ([ch.pick(INTS)] if ch.chance(0.2) else []))
    elif attr.type == onnx.AttributeProto.FLOAT:
        attr.f = ch.pick(FLOATS)
    elif attr.type == onnx.AttributeProto.STRING:
        attr.s = m.bad_name(ch).encode() if ch.chance(0.5) else ch.pick((b"", b"constant",
                                                                         b"reflect", b"bogus"))
    else:
        attr.type = ch.below(15)     # every AttributeType, UNDEFINED included


def mutate_name(m: Mutant, ch: Chooser) -> None:
    g = m.model.graph
    infos = [*g.input, *g.output, *g.initializer]
    owner = ch.below(4)
    new = m.bad_name(ch) if ch.chance(0.7) else ch.pick(("", "x", "y", "w", "a" * 300))
    if owner == 0 and g.node:
        ch.pick(g.node).name = new
    elif owner == 1:
        g.name = new
    elif infos:
        item = ch.pick(infos)
        old, item.name = item.name, new
        for node in g.node if ch.chance(0.7) else ():       # renamed everywhere, or not
            for seq in (node.input, node.output):
                for i, n in enumerate(seq):
                    seq[i] = new if n == old else n


def mutate_initializer_data(m: Mutant, ch: Chooser) -> None:
    tensors = _tensors(m.model.graph)
    if not tensors:
        return
    t = ch.pick(tensors)
    what = ch.below(4)
    if what == 0 and t.raw_data:
        t.raw_data = t.raw_data + bytes(ch.between(1, 64)) if ch.chance(0.5) \
            else t.raw_data[:ch.below(len(t.raw_data))]
    elif what == 1:
        t.ClearField("raw_data")
        t.float_data.extend([1.0] * ch.between(0, 9))
    elif what == 2:
        t.int64_data.extend([ch.pick(INTS)] * ch.between(1, 5))
    else:
        t.data_location = onnx.TensorProto.EXTERNAL
        entry = t.external_data.add()
        entry.key, entry.value = ch.pick(("location", "offset", "length")), \
            ch.pick(("../../etc/passwd", "-1", "nofile.bin", "99999999999"))


def mutate_opset(m: Mutant, ch: Chooser) -> None:
    imports = m.model.opset_import
    if ch.chance(0.2):
        extra = imports.add()
        extra.domain, extra.version = ch.pick(("", "ai.onnx", "com.microsoft", "ai.onnx.ml")), \
            ch.pick(OPSETS)
    elif imports:
        ch.pick(imports).version = ch.pick(OPSETS)
    if ch.chance(0.2):
        m.model.ir_version = ch.pick(IR_VERSIONS)


def mutate_node(m: Mutant, ch: Chooser) -> None:
    g = m.model.graph
    if not g.node:
        return
    node = ch.pick(g.node)
    what = ch.below(6)
    if what == 0:
        node.op_type = ch.pick(OP_TYPES)
    elif what == 1 and node.input:
        del node.input[ch.below(len(node.input))]
    elif what == 2:
        node.input.append(ch.pick(("", "nowhere", *(i.name for i in g.input))))
    elif what == 3 and node.output:
        node.output[ch.below(len(node.output))] = ch.pick(
            [o.name for o in g.output] + [i.name for i in g.input] + [""])
    elif what == 4 and len(g.node) > 1:
        g.node.remove(ch.pick(g.node))
    else:
        node.domain = ch.pick(("", "ai.onnx", "com.microsoft", "bogus"))


def mutate_graph_io(m: Mutant, ch: Chooser) -> None:
    g = m.model.graph
    what = ch.below(3)
    if what == 0 and len(g.output) > 0:
        g.output.remove(ch.pick(g.output))
    elif what == 1 and g.input:
        g.input.append(ch.pick(g.input))
    elif g.node and g.node[0].output:
        out = g.output.add()
        out.name = ch.pick(g.node).output[0]


STRUCTURAL: tuple[Callable[[Mutant, Chooser], None], ...] = (
    mutate_dim, mutate_dim, mutate_tensor_dims, mutate_elem_type, mutate_attribute,
    mutate_attribute, mutate_name, mutate_initializer_data, mutate_opset, mutate_node,
    mutate_graph_io)


def structural(model: onnx.ModelProto, ch: Chooser, max_mutations: int = 3) -> bytes:
    """The serialized model after 1 to max_mutations structural mutations."""
    m = Mutant(model)
    for _ in range(ch.between(1, max_mutations)):
        ch.pick(STRUCTURAL)(m, ch)
    return m.serialize()


def raw(data: bytes, ch: Chooser, max_mutations: int = 4) -> bytes:
    """data after byte-level mutations: flips, inserts, deletions, truncation, splices."""
    buf = bytearray(data)
    for _ in range(ch.between(1, max_mutations)):
        at, what = ch.below(len(buf) + 1), ch.below(5)
        if what == 0 and buf:
            buf[min(at, len(buf) - 1)] ^= 1 << ch.below(8)
        elif what == 1:
            buf[at:at] = bytes(ch.below(256) for _ in range(ch.between(1, 8)))
        elif what == 2:
            del buf[at:at + ch.between(1, 16)]
        elif what == 3:
            del buf[at:]
        else:
            buf[at:at] = buf[ch.below(len(buf) + 1):][:ch.between(1, 32)]
    return bytes(buf)


def random_array(shape, dtype, ch_or_rng) -> np.ndarray:
    """Inputs for a run: normal floats, small integers (zeros and negatives included), bools."""
    rng = ch_or_rng if isinstance(ch_or_rng, np.random.Generator) \
        else np.random.default_rng(ch_or_rng.below(2**31))
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    low = 0 if dtype.kind == "u" else -5
    return rng.integers(low, 6, shape).astype(dtype)
