"""Program -> the files of a C build: model.c, model.h, weights blob and its .S, CMake config."""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import jinja2
import numpy as np

from .. import __version__, dtypes
from ..errors import BuildError, ModelError, OnnxcError
from ..frontend.dims import DimRange
from ..loop.ir import Program
from ..loop.symbolic import as_dim_expr, dims_of, evaluate
from ..loop.visit import substitute
from ..names import c_comment, c_string
from ..resources import resource_dir
from ..targets import Target
from .c import c_type, kernel_params, kernel_symbols, print_kernel
from .generic import plan_lines, shape_rows, symbol_index, symbol_locals, temp_bindings
from .intrinsics import headers
from .weights import AARCH64_IMAGE_BYTES, WeightsBlob, layout_weights

# The skeleton each backend's library is laid out by, and the runtime headers it includes.
SKELETONS = {"c": "model.c.j2", "llvm": "model.c.j2", "cuda": "model_cuda.c.j2"}
RUNTIME_HEADERS = {"c": ["onnxc_vmath.h"], "llvm": [], "cuda": ["onnxc_cuda.h"]}
BACKENDS = ("c", "llvm", "cuda")
BACKEND_HELP = ("code generator: c (C through the target's C compiler), llvm (LLVM IR through "
                "llvmlite) or cuda (CUDA C through nvcc, for the cuda targets); default: cuda "
                "for a cuda target, else $ONNXC_BACKEND, else c. c with a cuda target runs the "
                "GPU program's loops one after another on the CPU (a check without a GPU)")


@functools.cache
def _env() -> jinja2.Environment:
    """One environment per process: it caches the templates it compiles (a new one compiled
    them all again, about 0.15 s of every build)."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(resource_dir("templates"))),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              autoescape=False)


def _declared_shapes(progs: list[Program], io: str) -> list[list[int]]:
    """Each tensor's shape with -1 on the axes whose extent differs between programs, is an
    expression over the symbols, or is decided by the data."""
    first = getattr(progs[0], f"{io}s")
    runtime = {(out, axis) for p in progs for out, axis, _ in p.extents}
    shapes = [[d if isinstance(d, int) and (b.name, a) not in runtime else -1
               for a, d in enumerate(dims_of(b))] for b in first]
    for prog in progs[1:]:
        for shape, b in zip(shapes, getattr(prog, f"{io}s")):
            shape[:] = [d if d == e else -1 for d, e in zip(shape, dims_of(b))]
    return shapes


def _output_axes(specs: list[Specialization]) -> list[list[int]]:
    """Per output axis: the symbolic dimension whose value it equals in every
    specialization (where one does and the axis varies), else -1."""
    progs = [s.program for s in specs]
    generic = next((s.program for s in specs if s.values is None), None)
    if generic is not None:
        return [[symbol_index(generic, d) for d in dims_of(b)] for b in generic.outputs]
    axes = []
    for shape in _declared_shapes(progs, "output"):
        row = []
        for a, d in enumerate(shape):
            extents = [dims_of(p.outputs[len(axes)])[a] for p in progs]
            row.append(next((k for k in range(len(specs[0].values)) if d < 0 and
                             extents == [s.values[k] for s in specs]), -1))
        axes.append(row)
    return axes


def _tensor_rows(progs: list[Program], io: str, dim_names: list[str],
                 axes: list[list[int]]) -> list[dict]:
    """The tables of one side (inputs or outputs); axes[i][a]: symbol index or -1."""
    rows = []
    names = getattr(progs[0], f"{io}_names")
    for i, (buf, onnx_name, shape) in enumerate(zip(getattr(progs[0], f"{io}s"), names,
                                                    _declared_shapes(progs, io))):
        symbols = axes[i] if i < len(axes) else [-1] * len(shape)
        shown = [dim_names[s] if s >= 0 else ("?" if d < 0 else str(d))
                 for d, s in zip(shape, symbols)]
        rows.append({"c_name": c_string(onnx_name), "dtype_code": dtypes.dtype(buf.dtype).onnx_code,
                     "rank": len(shape), "shape_list": ", ".join(map(str, shape)) or "0",
                     "symbols": ", ".join(map(str, symbols)) or "0",
                     "comment": c_comment(f"{onnx_name}: {buf.dtype}[{', '.join(shown)}]")})
    return rows


def _bindings(prog: Program, weight_offsets: dict[str, int], places: dict[str, str]
              ) -> list[str]:
    """The run function's pointers to each buffer. places: the C expressions of the weights
    blob, the extents and the faults arrays (host memory, or the GPU's)."""
    lines = []
    for i, b in enumerate(prog.inputs):
        lines.append(f"const {c_type(b.dtype)} *{b.name} = (const {c_type(b.dtype)} *)inputs[{i}];")
    owned = dict(prog.output_offsets)   # outputs sized at run time: in the arena
    if prog.symbols:     # at the offsets the generic plan computed, after its temporaries'
        owned = {out: f"ctx->offsets[{len(prog.offsets) + j}]"
                 for j, (out, _) in enumerate(prog.output_offsets)}
    for i, b in enumerate(prog.outputs):
        where = f"(arena + {owned[b.name]})" if b.name in owned else f"outputs[{i}]"
        lines.append(f"{c_type(b.dtype)} *{b.name} = ({c_type(b.dtype)} *){where};")
    for j, (_, _, ext) in enumerate(prog.extents):
        lines.append(f"int64_t *{ext.name} = {places['extents']} + {j};")
    for j, (flag, _) in enumerate(prog.faults):
        lines.append(f"int64_t *{flag.name} = {places['faults']} + {j};")
    for c in prog.constants:
        t = c_type(c.buffer.dtype)
        lines.append(f"const {t} *{c.buffer.name} = (const {t} *)({places['weights']} + "
                     f"{weight_offsets[c.buffer.name]});")
    if prog.symbols:
        lines += symbol_locals(prog, "ctx->dims") + temp_bindings(prog, c_type)
    for temp, offset in prog.offsets if not prog.symbols else ():
        t = c_type(next(b.dtype for b in prog.temps if b.name == temp))
        lines.append(f"{t} *{temp} = ({t} *)(arena + {offset});")
    readonly = {b.name for b in prog.inputs} | {c.buffer.name for c in prog.constants}
    for view, storage in prog.aliases:
        t = c_type(view.dtype)
        qual = "const " if storage.name in readonly else ""
        lines.append(f"{qual}{t} *{view.name} = ({qual}{t} *){storage.name};")
    return lines


def _unused_marks(prog: Program, used: set[str], lines: list[str]) -> list[str]:
    """(void) for bound pointers no kernel reads, so -Wunused stays quiet."""
    bound = [b.name for b in prog.inputs] + [b.name for b in prog.outputs] + \
        [c.buffer.name for c in prog.constants] + [t for t, _ in prog.offsets] + \
        [v.name for v, _ in prog.aliases] + [e.name for _, _, e in prog.extents] + \
        [f.name for f, _ in prog.faults]
    return lines + [f"(void){n};" for n in bound if n not in used]


@dataclass(frozen=True)
class Specialization:
    """The program compiled for one combination of the symbolic dimensions' values, or
    (values None) the generic program, whose shapes are expressions over them."""
    values: tuple[int, ...] | None
    program: Program


def _bounded_shape(prog: Program, b) -> tuple[int, ...]:
    """A static program's shape of b, with each extent the data decides at its bound (the
    run reports the extent itself)."""
    bounds = {d.var: as_dim_expr(d.bound) for d in prog.runtime_dims}
    return tuple(evaluate(substitute(as_dim_expr(d), bounds), {}) if not isinstance(d, int)
                 else d for d in dims_of(b))


def _io_bytes(prog: Program, io: str) -> str:
    if prog.symbols:
        return "0"
    return ", ".join(str(int(np.prod(_bounded_shape(prog, b), dtype=np.int64))
                         * dtypes.itemsize(b.dtype))
                     for b in getattr(prog, f"{io}s")) or "0"


def _places(name: str, on_gpu: bool, num_extents: int, blob: WeightsBlob) -> dict[str, str]:
    if not on_gpu:
        weights = f"{name}_weights_address" if blob.large else f"{name}_weights_blob"
        return {"weights": weights, "extents": "ctx->extents", "faults": "ctx->faults"}
    return {"weights": "ctx->device_weights", "extents": "ctx->device_flags",
            "faults": f"ctx->device_flags + {num_extents}"}


def _variant(spec: Specialization, index: int, offsets: dict[str, int], places: dict,
             target: Target, dims: list[DimRange], kernel_printer) -> tuple[list[dict], dict]:
    """One specialization's kernels (renamed apart from the others') and its run function."""
    prog = spec.program
    prefix = f"s{index}_" if dims else ""
    kernels = [kernel_printer(dataclasses.replace(k, name=prefix + k.name), target.features)
               if k.code_of is None else _shared_call(k, prefix) for k in prog.kernels]
    used = {a for k in kernels for a in k["args"]}
    reads = _run_time_reads(prog)
    label = "every value of the symbolic dimensions" if spec.values is None else \
        ", ".join(f"{d.name}={v}" for d, v in zip(dims, spec.values)) or "static shapes"
    static = spec.values is not None
    return kernels, {
        "suffix": f"_s{index}" if dims else "", "label": c_comment(label),
        "dim_values": (", ".join(map(str, spec.values)) or "0") if static else None,
        "calls": [line for i, k in enumerate(kernels) for line in
                  [k.get("call") or f"{k['name']}({', '.join(['pool'] + k['args'])});"]
                  + reads.get(i, [])],
        "bindings": _unused_marks(prog, used, _bindings(prog, offsets, places)),
        "input_bytes": _io_bytes(prog, "input"), "output_bytes": _io_bytes(prog, "output"),
        "shapes": {io: [", ".join(map(str, _bounded_shape(prog, b))) or "0"
                        for b in getattr(prog, f"{io}s")] if static else
                   ["0" for _ in getattr(prog, f"{io}s")] for io in ("input", "output")},
        "extents": _extent_rows(prog),
        "faults": [c_string(message) for _, message in prog.faults],
        # the generic program's are in its plan (generic.output_slots)
        "output_offsets": ", ".join(str(dict(prog.output_offsets).get(b.name, -1))
                                    if static else "-1" for b in prog.outputs) or "0",
    }


def _shared_call(k, prefix: str) -> dict:
    """A kernel that runs an earlier kernel's function (code_of) with its own buffers."""
    args = [b.name for b, _ in kernel_params(k)] + [v.name for v in kernel_symbols(k)]
    node = f"{c_comment(k.op_type)} node \"{c_comment(k.node)}\""
    note = f"/* {c_comment(prefix + k.name)} ({node}) runs {c_comment(prefix + k.code_of)} */"
    return {"name": prefix + k.name, "tasks": [], "function": note, "args": args,
            "call": f"{prefix}{k.code_of}({', '.join(['pool'] + args)});"}


def _run_time_reads(prog: Program) -> dict[int, list[str]]:
    """Kernel index -> the C lines that read, once it has run, each extent the data decides
    that it stores (RuntimeDim): the kernels after it take the value as an argument."""
    reads: dict[int, list[str]] = {}
    for d in prog.runtime_dims:
        writers = [i for i, k in enumerate(prog.kernels)
                   if any(b.name == d.source.name and w for b, w in kernel_params(k))]
        if not writers:
            raise BuildError(f"no kernel stores the run-time extent {d.var.name}")
        reads.setdefault(writers[-1], []).extend(
            [f"const int64_t {d.var.name} = {d.source.name}[0];", f"(void){d.var.name};"])
    return reads


def _extent_rows(prog: Program) -> str:
    """{output index, axis, index in ctx->extents} per run-time extent, C initializer rows."""
    index = {b.name: i for i, b in enumerate(prog.outputs)}
    rows = [f"{{ {index[out]}, {axis}, {j} }}" for j, (out, axis, _) in enumerate(prog.extents)]
    return ", ".join(rows + ["{ -1, -1, -1 }"])


def _kernel_printer(backend: str, name: str, target: Target, files: dict):
    """print_kernel for C; for LLVM, a printer that defines each kernel in one module (stored
    in files as NAME_kernels.ll once printed) and gives the C skeleton its prototype."""
    if backend not in BACKENDS:
        raise OnnxcError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    if (backend == "cuda") != bool(target.gpu) and backend != "c":
        raise OnnxcError(f"backend {backend!r} cannot print for target {target.tag!r}: "
                         + ("the cuda targets take backend cuda (or c, to run the GPU "
                            "program on the CPU)" if target.gpu else
                            "backend cuda needs a cuda target (cuda, cuda-sm80, ...)"))
    if backend == "c":
        return print_kernel
    if backend == "cuda":
        from .cuda import CudaModule
        from .cuda import emit_kernel as emit_cuda_kernel
        module = CudaModule(name, target)
        files[f"{name}_kernels.cu"] = module
        return functools.partial(emit_cuda_kernel, module)
    from ..build.llvm_object import data_layout
    from .llvm import emit_kernel, kernel_module
    module = kernel_module(f"{name}_kernels", target.triple, data_layout(target))
    files[f"{name}_kernels.ll"] = module
    return functools.partial(emit_kernel, module)


def _max_bytes(progs: list[Program], io: str) -> list[int]:
    """Per input (or output): its largest size in bytes over the specializations."""
    sizes = [[int(x) for x in _io_bytes(p, io).split(", ")] for p in progs]
    return [max(col) for col in zip(*sizes)] if getattr(progs[0], f"{io}s") else []


def _cuda_context(files: dict, progs: list[Program], blob: WeightsBlob, name: str) -> dict:
    """What the CUDA skeleton adds: the kernels' entry names, buffer sizes for the GPU."""
    module = files.get(f"{name}_kernels.cu")
    owned = any(p.output_offsets for p in progs)
    return {"cuda_entries": module.entries if module else [], "weight_bytes": blob.size,
            "input_max_bytes": _max_bytes(progs, "input"),
            "output_max_bytes": _max_bytes(progs, "output"),
            "host_arena_bytes": max(p.arena_size for p in progs) if owned else 0}


def _generic_context(specs: list[Specialization]) -> dict | None:
    """The generic program's plan and shapes, and its index among the variants."""
    index = next((i for i, s in enumerate(specs) if s.values is None), None)
    if index is None:
        return None
    prog = specs[index].program
    slots = {out: len(prog.offsets) + j for j, (out, _) in enumerate(prog.output_offsets)}
    return {"index": index, "num_offsets": len(prog.offsets) + len(slots) + 1,
            "plan": plan_lines(prog),
            "output_slots": ", ".join(str(slots.get(b.name, -1)) for b in prog.outputs) or "0",
            "locals": symbol_locals(prog, "dims"),
            "shapes": {io: shape_rows(prog, io) for io in ("input", "output")}}


def emit_c(specs: list[Specialization], target: Target, name: str, model_hash: str,
           options: str, dims: list[DimRange] = (), input_axes: list[list[int]] = (),
           backend: str = "c") -> dict:
    """File name -> contents (str, bytes, or the WeightsBlob that build_library writes
    tensor by tensor). input_axes[i][a]: the index in dims of input i's
    axis a, or -1 where it is static. The C backend prints the kernels into NAME.c; the LLVM
    backend into NAME_kernels.ll and the CUDA backend into NAME_kernels.cu, which NAME.c
    declares or launches."""
    progs = [s.program for s in specs]
    sized = sorted({d.var.name for p in progs for d in p.runtime_dims})
    if backend == "cuda" and sized:
        raise ModelError("GPU kernels are launched for sizes known before the run: a tensor "
                         "whose size the data decides (NonZero's, Unique's...) can only be a "
                         f"model output on a cuda target, and this model reads {len(sized)}")
    blob, offsets = layout_weights(progs)
    if target.arch == "aarch64" and blob.size > AARCH64_IMAGE_BYTES:
        raise BuildError(f"{blob.size / 2**30:.1f} GiB of weights: an aarch64 library holds "
                         f"at most {AARCH64_IMAGE_BYTES / 2**30:.1f} GiB (its code reaches "
                         "+-4 GiB of data)")
    kernels, variants, files = [], [], {}
    printer = _kernel_printer(backend, name, target, files)
    num_extents = max(1, max(len(p.extents) for p in progs))
    places = _places(name, backend == "cuda", num_extents, blob)
    for index, (spec, offs) in enumerate(zip(specs, offsets)):
        ks, variant = _variant(spec, index, offs, places, target, list(dims), printer)
        kernels += ks
        variants.append(variant)
    dim_names = [d.name for d in dims]
    ctx = {
        "name": name, "version": __version__, "target": target.tag, "options": c_comment(options),
        "model_hash": "sha256:" + model_hash,
        "weights_address": blob.large,
        "large_data_section": blob.large and target.arch == "x86_64",
        "model_comment": c_comment(progs[0].name),
        # kernels printed as C inline the vector math; the LLVM module's call it out of line
        "isa_headers": headers(target.features) if backend == "c" else [],
        "runtime_headers": ["onnxc_runtime.h"] + RUNTIME_HEADERS[backend],
        "device_code": "ONNXC_DEVICE_CUDA" if backend == "cuda" else "ONNXC_DEVICE_CPU",
        "kernels": kernels, "variants": variants, "num_extents": num_extents,
        "num_faults": max(1, max(len(p.faults) for p in progs)),
        "runtime_owned": ", ".join("1" if b.name in dict(progs[0].output_offsets) else "0"
                                   for b in progs[0].outputs) or "0",
        "arena_size": max(p.arena_size if isinstance(p.arena_size, int) else 0 for p in progs),
        "generic": _generic_context(specs),
        "dims": [{"c_name": c_string(d.name), "label": c_comment(d.name), "low": d.low,
                  "high": d.high if d.high is not None else "INT64_MAX"} for d in dims],
        "tensors": {"input": _tensor_rows(progs, "input", dim_names, list(input_axes)),
                    "output": _tensor_rows(progs, "output", dim_names, _output_axes(specs))},
        **_cuda_context(files, progs, blob, name),
    }
    env = _env()
    return {
        **{fname: str(module) for fname, module in files.items()},
        f"{name}.c": env.get_template(SKELETONS[backend]).render(ctx),
        f"{name}.h": env.get_template("model.h.j2").render(ctx),
        f"{name}_weights.S": env.get_template("weights.S.j2").render(ctx),
        **({f"{name}_image.S": env.get_template("image.S.j2").render(ctx)}
           if backend == "cuda" else {}),
        f"{name}.weights.bin": blob,
        f"{name}-config.cmake": env.get_template("config.cmake.j2").render(ctx),
    }
