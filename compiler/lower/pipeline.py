"""The one place that lists the compiler's passes in order (and dumps IR after each)."""
from __future__ import annotations

import dataclasses
from typing import Callable

from ..frontend import import_model
from ..graph.ir import Graph
from ..graph.patterns import MAX_SCORES_BYTES
from ..loop.ir import Constant, Program, Symbol, static_shape
from ..loop.printer import program_str
from ..loop.simplify import simplify
from ..loop.templates import materialize_templates
from ..loop.verify import verify_program
from ..loop.visit import buffers_of
from ..schedule.apply import apply_schedule
from ..schedule.directives import Pack
from ..schedule.heuristics import default_schedule
from ..schedule.hints import symbol_hints
from ..schedule.pack import deferred_pack, pack_loads
from ..targets import Target
from .from_graph import lower_graph
from .halfwidth import widen_half_floats
from .layout import block_channels
from .loops import (
    flatten_buffers,
    partition_loops,
    remove_unit_loops,
    shrink_guarded_loops,
    unroll_loops,
)
from .memory import plan_memory
from .padding import pad_in_place
from .share import share_identical_kernels
from .vectorize import promote_registers, vector_accumulators, vectorize_loops


def _per_kernel(fn: Callable) -> Callable[[Program, Target], Program]:
    def run(prog: Program, target: Target) -> Program:
        kernels = tuple(dataclasses.replace(k, body=fn(k.body, target)) for k in prog.kernels)
        return dataclasses.replace(prog, kernels=kernels)
    run.__name__ = fn.__name__
    return run


def schedule_kernels(prog: Program, target: Target, schedules=None) -> Program:
    """Apply the user's schedule for a kernel where one is given, else the default one.
    Pack directives also relay the constant's data (packed when the weights are written);
    constants left unread are dropped."""
    schedules = schedules or {}
    data = {c.buffer.name: c for c in prog.constants}
    kernels = []
    # an extent the data decides is scheduled at the default hint, as an unbounded symbol
    symbols = prog.symbols + tuple(Symbol(d.var, 0) for d in prog.runtime_dims)
    for k in prog.kernels:
        with symbol_hints(symbols):
            directives = schedules[k.name] if k.name in schedules else \
                default_schedule(k, target)
        k = apply_schedule(k, [d for d in directives if not isinstance(d, Pack)])
        for d in (d for d in directives if isinstance(d, Pack)):
            body, old, new = pack_loads(k.body, d.buffer, d.dim, d.factor)
            packed = deferred_pack(data[old.name].data, static_shape(old), d.dim, d.factor)
            data.setdefault(new.name, Constant(new, packed))
            k = dataclasses.replace(k, body=body)
        kernels.append(k)
    used = {name for k in kernels for part in k.parts for name in buffers_of(part)}
    constants = tuple(c for name, c in data.items() if name in used)
    return dataclasses.replace(prog, kernels=tuple(kernels), constants=constants)


def _vector_widths(target: Target) -> tuple[int, ...]:
    return tuple(w for w in (4, 8, 16) if w <= target.lanes())


# Stage name (for --dump-ir=after-NAME) -> pass. Order is the compilation order.
def materialize_kernel_templates(prog: Program, target: Target) -> Program:
    kernels = tuple(materialize_templates(k) for k in prog.kernels)
    return dataclasses.replace(prog, kernels=kernels)


LOOP_PASSES = (
    ("widen-half", lambda p, t: widen_half_floats(p)),
    ("pad-in-place", lambda p, t: pad_in_place(p)),
    ("block-channels", block_channels),
    ("schedule", schedule_kernels),
    ("templates", materialize_kernel_templates),
    ("partition", _per_kernel(lambda s, t: partition_loops(s))),
    ("unit-loops", _per_kernel(lambda s, t: remove_unit_loops(s))),
    ("flatten", _per_kernel(lambda s, t: flatten_buffers(s))),
    ("unroll", _per_kernel(lambda s, t: unroll_loops(s))),
    ("shrink", _per_kernel(lambda s, t: shrink_guarded_loops(s))),
    ("vectorize", _per_kernel(lambda s, t: vectorize_loops(s, _vector_widths(t)))),
    ("accumulators", _per_kernel(lambda s, t: vector_accumulators(s))),
    ("simplify", _per_kernel(lambda s, t: simplify(s))),
    ("registers", _per_kernel(lambda s, t: promote_registers(s))),
    ("memory", lambda p, t: plan_memory(p)),
    ("share", lambda p, t: share_identical_kernels(p, bool(t.gpu))),
)
STAGES = ("frontend", "lower") + tuple(name for name, _ in LOOP_PASSES)


def fused_scores_bytes(target: Target) -> int:
    """How large an attention score matrix may be fused into one kernel: on a CPU, what a
    core's cache holds; on a GPU none, whose schedule would run each fused head on one
    thread where the unfused products and softmax spread over thousands."""
    return 0 if target.gpu else MAX_SCORES_BYTES


def compile_program(model, target: Target, schedules=None, dump: Callable | None = None,
                    library: str = "", bounds: dict | None = None) -> tuple[Graph, Program]:
    """ONNX model -> final Program. dump(stage, text) sees the IR after every stage; library:
    the library's name, whose NAME_ identifiers the program's own names keep clear of;
    bounds: symbol name -> (low, high or None) for the model's symbolic dimensions."""
    graph = import_model(model, fused_scores_bytes(target))
    if dump:
        dump("frontend", _graph_str(graph))
    prog = lower_graph(graph, library, program_symbols(model, bounds or {}))
    if dump:
        dump("lower", program_str(prog))
    verify_program(prog)
    for name, fn in LOOP_PASSES:
        prog = fn(prog, target, schedules) if name == "schedule" else fn(prog, target)
        verify_program(prog)
        if dump:
            dump(name, program_str(prog))
    return graph, prog


def program_symbols(model, bounds: dict) -> tuple:
    """A Symbol per symbolic input dimension of the model, in its order; bounds: name ->
    (low, high or None[, hint])."""
    from ..frontend.dims import symbolic_dims
    from ..frontend.load import load_model
    from ..frontend.symbolic import symbol_vars
    names = symbolic_dims(load_model(model, validate=False) if not hasattr(model, "graph")
                          else model)
    return tuple(Symbol(var, *bounds.get(name, (1, None))) for name, var in
                 symbol_vars(names).items())


def _graph_str(g: Graph) -> str:
    lines = [f"graph {g.name}"]
    lines += [f"  input {v.name}: {v.dtype}{list(v.shape)}" for v in g.inputs]
    lines += [f"  output {v.name}: {v.dtype}{list(v.shape)}" for v in g.outputs]
    lines += [f"  {n.op_type} {n.name!r}: {list(n.inputs)} -> {list(n.outputs)}" for n in g.nodes]
    return "\n".join(lines)
