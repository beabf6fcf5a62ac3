"""What an op lowering sees: its node, its buffers, and ways to add kernels and buffers."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .. import dtypes
from ..graph.ir import Graph, Node
from ..loop.deferred import Deferred
from ..loop.ir import Buffer, Constant, Kernel, Load, RuntimeDim, Stmt, Store, shape_of
from ..loop.symbolic import dims_of
from ..names import NameTable, c_identifier


@dataclass
class ProgramBuilder:
    """Mutable collector used while lowering a graph; frozen into a Program at the end."""
    graph: Graph
    names: NameTable = field(default_factory=NameTable)
    buffers: dict[str, Buffer] = field(default_factory=dict)    # tensor name -> buffer
    constants: list[Constant] = field(default_factory=list)
    const_data: dict[str, np.ndarray] = field(default_factory=dict)   # buffer name -> data
    temps: list[Buffer] = field(default_factory=list)
    kernels: list[Kernel] = field(default_factory=list)
    aliases: list[tuple[Buffer, Buffer]] = field(default_factory=list)
    extents: list[tuple[str, int, Buffer]] = field(default_factory=list)
    faults: list[tuple[Buffer, str]] = field(default_factory=list)
    runtime_dims: list[RuntimeDim] = field(default_factory=list)

    def new_buffer(self, hint: str, dtype: str, shape, prefix: str) -> Buffer:
        return Buffer(self.names.unique(hint, prefix), dtype, shape_of(*shape))

    def add_constant(self, hint: str, array: np.ndarray | Deferred) -> Buffer:
        if not isinstance(array, Deferred):     # computed when the weights are written
            array = np.asarray(array, order="C")   # keeps 0-d arrays 0-d
        buf = dataclasses.replace(
            self.new_buffer(hint, dtypes.from_numpy(array.dtype), array.shape, "c_"),
            scope="constant")
        self.constants.append(Constant(buf, array))
        self.const_data[buf.name] = array
        return buf

    def add_temp(self, hint: str, dtype: str, shape) -> Buffer:
        buf = self.new_buffer(hint, dtype, shape, "t_")
        self.temps.append(buf)
        return buf


class OpContext:
    def __init__(self, builder: ProgramBuilder, node: Node, outputs: list[Buffer],
                 epilogue=None, epilogue_inputs=()):
        self.builder = builder
        self.node = node
        self.outputs = outputs
        self._kernel_count = 0
        self.epilogue = epilogue               # fused steps (graph/fuse.py), or None
        self.epilogue_inputs = list(epilogue_inputs)
        self.epilogue_used = False

    def output(self, i: int = 0) -> Buffer:
        return self.outputs[i]

    def shape(self, buf: Buffer) -> tuple[int, ...]:
        return dims_of(buf)

    def const(self, buf: Buffer | None) -> np.ndarray | None:
        """The value of a constant input buffer, None when it is computed at run time."""
        return None if buf is None else self.builder.const_data.get(buf.name)

    def constant(self, array: np.ndarray, hint: str = "const") -> Buffer:
        return self.builder.add_constant(f"{self.node.name}_{hint}", array)

    def runtime_extent(self, out: Buffer, axis: int) -> Buffer:
        """The int64[1] buffer in which a kernel stores the extent of out's axis, an axis
        whose size the data decides (out's shape holds its bound)."""
        ext = self.builder.new_buffer(f"{out.name}_extent{axis}", "int64", (1,), "ext_")
        self.builder.extents.append((out.name, axis, ext))
        return ext

    def fault(self, message: str) -> Buffer:
        """An int64[1] flag that a kernel sets (nonzero) when a tensor value read at run time
        breaks what the program was compiled for: the run then fails with this message."""
        flag = self.builder.new_buffer(f"{self.node.name}_fault", "int64", (1,), "flt_")
        self.builder.faults.append(
            (flag, f"node {self.node.name!r} ({self.node.op_type}): {message}"))
        return flag

    def check(self, ok, message: str) -> None:
        """A kernel that fails the run with `message` unless the condition `ok` holds."""
        from ..loop.ir import Const, IfThen, Store, Unary
        flag = self.fault(message)
        self.emit(IfThen(Unary("not", ok), Store(flag, (Const(0, "int64"),), Const(1, "int64"))),
                  stage="check")

    def check_each(self, shape, ok, message: str) -> None:
        """A kernel over `shape` that fails the run with `message` unless ok(*index) holds at
        every index (each element of a tensor read at run time: indices, divisors). The
        kernels after it still run: they must stay safe on the values it rejects."""
        from ..loop.ir import Const, IfThen, Store, Unary
        from .common import ZERO, nest
        flag = self.fault(message)
        self.emit(nest(shape, lambda *v: IfThen(Unary("not", ok(*v)),
                                                Store(flag, (ZERO,), Const(1, "int64")))),
                  stage="check")

    def temp(self, dtype: str, shape, hint: str = "tmp") -> Buffer:
        return self.builder.add_temp(f"{self.node.name}_{hint}", dtype, shape)

    def emit(self, body: Stmt, kind: str = "generic", stage: str = "", prologue=None,
             epilogue=None) -> None:
        self._kernel_count += 1
        suffix = f"_{stage}" if stage else ""
        name = self.builder.names.unique(c_identifier(self.node.name) + suffix, "k_")
        self.builder.kernels.append(Kernel(name, self.node.name, self.node.op_type, body, kind,
                                           prologue, epilogue))

    def epilogue_store(self, out: Buffer, value, index) -> Store:
        """out[index] = the fused epilogue applied to value; index runs over out's shape
        (a view of the node's output in its natural element order)."""
        from .common import broadcast_index, view
        from .epilogue import epilogue_expr
        out_shape = dims_of(self.output(0))
        loads = []
        for buf in self.epilogue_inputs:
            shape = dims_of(buf)
            if shape == out_shape:      # same elements, same order: read it in out's view
                loads.append(Load(view(buf, *out.shape), tuple(index)))
            else:                       # a broadcast operand: out's view is the output's shape
                loads.append(Load(buf, broadcast_index(tuple(index), shape)))
        self.epilogue_used = True
        return Store(out, tuple(index), epilogue_expr(self.epilogue, value, loads))

    def alias(self, view: Buffer, storage: Buffer) -> None:
        """`view` is `storage` with another shape (Reshape and friends): no kernel, no copy.
        A model output owns its memory (the caller's), so it gets a copy instead."""
        if view.name.startswith("out_"):
            from .common import copy_body
            self.emit(copy_body(view, storage), kind="elementwise")
            return
        roots = {v.name: s for v, s in self.builder.aliases}
        storage = roots.get(storage.name, storage)
        if view in self.builder.temps:
            self.builder.temps.remove(view)
        self.builder.aliases.append((view, storage))
