"""Graph -> naive loop-IR Program: every node lowered by its registered function."""
from __future__ import annotations

from collections import defaultdict

from ..errors import ModelError, NeedsStaticDims, UnsupportedOps
from ..graph.fuse import EPILOGUE_ATTR
from ..graph.ir import Graph, Node
from ..loop.ir import Buffer, Load, Program, RuntimeDim, Store, Var, const_int, seq
from ..loop.symbolic import as_dim_expr, dims_of, symbols_of
from ..names import NameTable
from ..ops.common import copy_body, nest, view
from ..ops.context import OpContext, ProgramBuilder
from ..ops.registry import lookup


def _opset(graph: Graph, node: Node) -> int:
    domain = node.domain if node.domain != "ai.onnx" else ""
    return graph.opsets.get(domain, 1)


def find_unsupported(nodes, opsets) -> dict[str, list[str]]:
    """Every op type (with its version when only that is missing) that has no lowering."""
    missing: dict[str, list[str]] = defaultdict(list)
    for node in nodes:
        domain = node.domain if node.domain != "ai.onnx" else ""
        if lookup(node.op_type, domain, opsets.get(domain, 1)) is None:
            label = node.op_type if not domain else f"{domain}.{node.op_type}"
            missing[label].append(node.name or "(unnamed)")
    return dict(missing)


def _call(entry, ctx: OpContext, node: Node, inputs, outputs) -> None:
    try:
        entry.fn(ctx, *inputs, **node.attr_dict)
    except (TypeError, ValueError) as exc:
        symbols = _symbols_of(inputs + outputs)
        if symbols:
            raise NeedsStaticDims(
                f"node {node.name!r} ({node.op_type}) is compiled for static shapes only, and "
                f"its shapes hold the dimension(s) {', '.join(s.name for s in symbols)}: bind "
                "them with --dim", [s.name for s in symbols]) from exc
        if isinstance(exc, TypeError) and "argument" in str(exc):
            raise ModelError(f"node {node.name!r} ({node.op_type}): unsupported attribute or "
                             f"input ({exc})") from None
        raise


def _symbols_of(buffers) -> list:
    found = {v for b in buffers if b is not None for d in b.shape for v in symbols_of(d)}
    return sorted(found, key=lambda v: v.name)


class _Lowering:
    def __init__(self, graph: Graph, library: str = "", symbols: tuple = ()):
        self.graph = graph
        self.symbols = tuple(symbols)
        self.b = ProgramBuilder(graph, NameTable(reserved_prefix=f"{library}_" if library else ""))
        self.outputs = {v.name for v in graph.outputs}

    def buffer_for_output(self, name: str):
        v = self.graph.values[name]
        prefix = "out_" if name in self.outputs else "t_"
        buf = self.b.new_buffer(name, v.dtype, v.shape, prefix)
        if prefix == "t_":
            self.b.temps.append(buf)
        self.b.buffers[name] = buf
        return buf

    def input_buffer(self, name: str):
        if not name:
            return None
        if name not in self.b.buffers:
            if name not in self.graph.constants:
                raise ModelError(f"tensor {name!r} is used but never produced")
            value = self.graph.constants[name]
            self.b.buffers[name] = self._symbolic_value(name, value) \
                if value.dtype == object else self.b.add_constant(name, value)
        return self.b.buffers[name]

    def _symbolic_value(self, name: str, value):
        """A value folded to expressions over the dimension symbols (a Shape's): a kernel
        stores it at run time, for the ops that read it as data."""
        buf = self.b.add_temp(name, "int64", value.shape)
        flat = view(buf, value.size)
        body = seq(*(Store(flat, (const_int(i),), as_dim_expr(d))
                     for i, d in enumerate(value.reshape(-1).tolist())))
        ctx = OpContext(self.b, Node("Shape", f"value_{name}", (), ()), [buf])
        ctx.emit(body, kind="elementwise")
        self.b.const_data[buf.name] = value     # what lowerings read of it at compile time
        return buf

    def _bound_storage(self, node: Node, entry) -> dict[str, Buffer]:
        """Output name -> a temporary at its upper bound, for each output whose extents the
        data decides and the symbolic frontend named by run-time symbols."""
        values = [self.graph.values.get(o) if o else None for o in node.outputs]
        if entry.bound is None or not any(v is not None and _run_time_axes(v) for v in values):
            return {}
        ins = [self.graph.values.get(i) if i else None for i in node.inputs]
        storage = {}
        for name, (dtype, shape, _) in zip(node.outputs, entry.bound(ins, node.attr_dict)):
            if name:
                storage[name] = self.b.add_temp(f"{name}_storage", dtype, shape)
        return storage

    def _view_bound_storage(self, storage: dict[str, Buffer]) -> None:
        """The producer stored each run-time extent and wrote its output densely for it at
        the start of its storage: the tensor is a view of that storage in its own shape,
        and each extent a RuntimeDim whose value the run reads after the producer."""
        for name, buf in storage.items():
            value = self.graph.values[name]
            for record in [e for e in self.b.extents if e[0] == buf.name]:
                self.b.extents.remove(record)
                _, axis, ext = record
                self.b.temps.append(ext)
                self.b.runtime_dims.append(RuntimeDim(value.shape[axis], dims_of(buf)[axis], ext))
            missing = [a for a in _run_time_axes(value) if not any(
                d.var == value.shape[a] for d in self.b.runtime_dims)]
            if missing:
                raise AssertionError(f"{name!r}: the lowering stored no extent of axes {missing}")
            view = self.b.new_buffer(name, value.dtype, value.shape, "t_")
            self.b.aliases.append((view, buf))
            self.b.buffers[name] = view

    def lower_node(self, node: Node) -> None:
        entry = lookup(node.op_type, node.domain, _opset(self.graph, node))
        fused = node.attr(EPILOGUE_ATTR)
        own = fused[0] if fused else len(node.inputs)
        inputs = [self.input_buffer(i) for i in node.inputs]
        storage = self._bound_storage(node, entry)
        outputs = [storage.get(o) or self.buffer_for_output(o) if o else None
                   for o in node.outputs]
        plain = Node(node.op_type, node.name, node.inputs[:own], node.outputs,
                     tuple(a for a in node.attrs if a[0] != EPILOGUE_ATTR), node.domain)
        ctx = OpContext(self.b, plain, outputs, fused[1] if fused else None, inputs[own:])
        _call(entry, ctx, plain, inputs[:own], outputs)
        self._view_bound_storage(storage)
        if fused and not ctx.epilogue_used:
            # the lowering wrote the plain result: apply the fused steps in place
            out = outputs[0]
            ctx.emit(nest(dims_of(out), lambda *v: ctx.epilogue_store(
                out, Load(out, tuple(v)), v)), kind="elementwise", stage="epilogue")

    def finish_outputs(self, out_bufs) -> None:
        """Outputs that are views, inputs or constants get a copy kernel into their buffer."""
        views = {view.name: storage for view, storage in self.b.aliases}
        for v, out in zip(self.graph.outputs, out_bufs):
            src = self.b.buffers[v.name]
            if src is not out:
                ctx = OpContext(self.b, Node("Identity", f"output_{v.name}", (), ()), [out])
                ctx.emit(copy_body(out, src), kind="elementwise")
            elif out.name in views:
                raise AssertionError("an output buffer must never be a view")

    def run(self) -> Program:
        b = self.b
        inputs = []
        for v in self.graph.inputs:
            buf = b.new_buffer(v.name, v.dtype, v.shape, "in_")
            b.buffers[v.name] = buf
            inputs.append(buf)
        for node in self.graph.nodes:
            self.lower_node(node)
        out_bufs = []
        for v in self.graph.outputs:
            buf = b.buffers.get(v.name)
            # an output listed twice gets a second buffer (and a copy): each is the caller's
            if buf is None or not buf.name.startswith("out_") or buf in out_bufs \
                    or v.name in self.graph.constants:
                buf = b.new_buffer(v.name, v.dtype, v.shape, "out_")
                b.buffers.setdefault(v.name, self.input_buffer(v.name))
            out_bufs.append(buf)
        self.finish_outputs(out_bufs)
        self._store_output_extents(out_bufs)
        return Program(self.graph.name, tuple(inputs), tuple(out_bufs), tuple(b.constants),
                       tuple(b.temps), tuple(b.kernels), tuple(b.aliases),
                       input_names=tuple(v.name for v in self.graph.inputs),
                       output_names=tuple(v.name for v in self.graph.outputs),
                       extents=self._output_extents(out_bufs), faults=tuple(b.faults),
                       symbols=self.symbols, runtime_dims=tuple(b.runtime_dims))

    def _store_output_extents(self, out_bufs) -> None:
        """A model output whose shape names run-time symbols lives in the context (as
        NonZero's own output does): a kernel stores each such axis's extent for the caller."""
        run_time = {d.var for d in self.b.runtime_dims}
        for out in out_bufs:
            for axis, d in enumerate(dims_of(out)):
                if run_time & set(symbols_of(d)):
                    ext = self.b.new_buffer(f"{out.name}_extent{axis}", "int64", (1,), "ext_")
                    self.b.extents.append((out.name, axis, ext))
                    ctx = OpContext(self.b, Node("Shape", f"extent_{out.name}", (), ()), [ext])
                    ctx.emit(Store(ext, (const_int(0),), as_dim_expr(d)), kind="elementwise")

    def _output_extents(self, out_bufs) -> tuple:
        """The run-time extents, each on a model output's own buffer (the frontend refuses
        any other reader, so the producer wrote the output buffer itself)."""
        names = {b.name for b in out_bufs}
        for out, _, _ in self.b.extents:
            if out not in names:
                raise ModelError(f"{out!r}: a tensor sized at run time must be a model "
                                 "output, written once")
        return tuple(self.b.extents)


def _run_time_axes(v) -> list[int]:
    """The axes of v that hold a run-time symbol (the symbolic frontend's NonZero count)."""
    return [a for a in v.runtime_axes if isinstance(v.shape[a], Var)]


def lower_graph(graph: Graph, library: str = "", symbols: tuple = ()) -> Program:
    """library: the library's name; no buffer or kernel identifier starts with NAME_.
    symbols: a Symbol for each dimension symbol the graph's shapes name."""
    missing = find_unsupported(graph.nodes, graph.opsets)
    if missing:
        raise UnsupportedOps(missing)
    return _Lowering(graph, library, symbols).run()
