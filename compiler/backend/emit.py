"""Program -> the files of a C build: model.c, model.h, weights blob and its .S, CMake config."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
from dataclasses import dataclass

import jinja2
import numpy as np

from .. import __version__, dtypes
from ..errors import OnnxcError
from ..frontend.dims import DimRange
from ..loop.ir import Program, static_shape
from ..names import c_comment, c_string
from ..resources import resource_dir
from ..targets import Target
from .c import c_type, print_kernel
from .intrinsics import headers

WEIGHT_ALIGNMENT = 64
BACKENDS = ("c", "llvm")
BACKEND_HELP = ("code generator: c (C through the target's C compiler) or llvm (LLVM IR through "
                "llvmlite); default: $ONNXC_BACKEND, else c")


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(resource_dir("templates"))),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              autoescape=False)


def _weights(progs: list[Program]) -> tuple[bytes, list[dict[str, int]]]:
    """One blob for every specialization: a constant they share (same dtype and bytes, as
    weights are) is stored once. Returns the blob and each program's name -> offset."""
    blob = bytearray()
    stored: dict[tuple[str, str], int] = {}
    per_program = []
    for prog in progs:
        offsets = {}
        for const in prog.constants:
            data = np.ascontiguousarray(const.data, dtype=dtypes.dtype(const.buffer.dtype).numpy)
            key = (const.buffer.dtype, hashlib.sha256(data.tobytes()).hexdigest())
            if key not in stored:
                blob.extend(b"\0" * (-len(blob) % WEIGHT_ALIGNMENT))
                stored[key] = len(blob)
                blob.extend(data.tobytes())
            offsets[const.buffer.name] = stored[key]
        per_program.append(offsets)
    return bytes(blob), per_program


def _declared_shapes(progs: list[Program], io: str) -> list[list[int]]:
    """Each tensor's shape with -1 on the axes whose extent differs between specializations
    or is decided by the data."""
    first = getattr(progs[0], f"{io}s")
    shapes = [list(static_shape(b)) for b in first]
    runtime = {(out, axis) for p in progs for out, axis, _ in p.extents}
    for shape, b in zip(shapes, first):
        shape[:] = [-1 if (b.name, a) in runtime else d for a, d in enumerate(shape)]
    for prog in progs[1:]:
        for shape, b in zip(shapes, getattr(prog, f"{io}s")):
            shape[:] = [d if d == e else -1 for d, e in zip(shape, static_shape(b))]
    return shapes


def _output_axes(specs: list[Specialization]) -> list[list[int]]:
    """Per output axis: the symbolic dimension whose value it equals in every
    specialization (where one does and the axis varies), else -1."""
    progs = [s.program for s in specs]
    axes = []
    for shape in _declared_shapes(progs, "output"):
        row = []
        for a, d in enumerate(shape):
            extents = [static_shape(p.outputs[len(axes)])[a] for p in progs]
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


def _bindings(prog: Program, weight_offsets: dict[str, int], name: str) -> list[str]:
    lines = []
    for i, b in enumerate(prog.inputs):
        lines.append(f"const {c_type(b.dtype)} *{b.name} = (const {c_type(b.dtype)} *)inputs[{i}];")
    owned = dict(prog.output_offsets)   # outputs sized at run time: in the arena
    for i, b in enumerate(prog.outputs):
        where = f"(arena + {owned[b.name]})" if b.name in owned else f"outputs[{i}]"
        lines.append(f"{c_type(b.dtype)} *{b.name} = ({c_type(b.dtype)} *){where};")
    for j, (_, _, ext) in enumerate(prog.extents):
        lines.append(f"int64_t *{ext.name} = ctx->extents + {j};")
    for j, (flag, _) in enumerate(prog.faults):
        lines.append(f"int64_t *{flag.name} = ctx->faults + {j};")
    for c in prog.constants:
        t = c_type(c.buffer.dtype)
        lines.append(f"const {t} *{c.buffer.name} = (const {t} *)({name}_weights_blob + "
                     f"{weight_offsets[c.buffer.name]});")
    for temp, offset in prog.offsets:
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
    """The program compiled for one combination of the symbolic dimensions' values."""
    values: tuple[int, ...]
    program: Program


def _variant(spec: Specialization, index: int, offsets: dict[str, int], name: str,
             target: Target, dims: list[DimRange], kernel_printer) -> tuple[list[dict], dict]:
    """One specialization's kernels (renamed apart from the others') and its run function."""
    prog = spec.program
    prefix = f"s{index}_" if dims else ""
    kernels = [kernel_printer(dataclasses.replace(k, name=prefix + k.name), target.features)
               for k in prog.kernels]
    used = {a for k in kernels for a in k["args"]}
    label = ", ".join(f"{d.name}={v}" for d, v in zip(dims, spec.values)) or "static shapes"
    return kernels, {
        "suffix": f"_s{index}" if dims else "", "label": c_comment(label),
        "calls": [f"{k['name']}({', '.join(['pool'] + k['args'])});" for k in kernels],
        "bindings": _unused_marks(prog, used, _bindings(prog, offsets, name)),
        "shapes": {io: [", ".join(map(str, static_shape(b))) or "0"
                        for b in getattr(prog, f"{io}s")] for io in ("input", "output")},
        "extents": _extent_rows(prog),
        "faults": [c_string(message) for _, message in prog.faults],
        "output_offsets": ", ".join(str(dict(prog.output_offsets).get(b.name, -1))
                                    for b in prog.outputs) or "0",
    }


def _extent_rows(prog: Program) -> str:
    """{output index, axis, index in ctx->extents} per run-time extent, C initializer rows."""
    index = {b.name: i for i, b in enumerate(prog.outputs)}
    rows = [f"{{ {index[out]}, {axis}, {j} }}" for j, (out, axis, _) in enumerate(prog.extents)]
    return ", ".join(rows + ["{ -1, -1, -1 }"])


def _kernel_printer(backend: str, name: str, target: Target, files: dict):
    """print_kernel for C; for LLVM, a printer that defines each kernel in one module (stored
    in files as NAME_kernels.ll once printed) and gives the C skeleton its prototype."""
    if backend == "c":
        return print_kernel
    if backend != "llvm":
        raise OnnxcError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    from ..build.llvm_object import data_layout
    from .llvm import emit_kernel, kernel_module
    module = kernel_module(f"{name}_kernels", target.triple, data_layout(target))
    files[f"{name}_kernels.ll"] = module
    return functools.partial(emit_kernel, module)


def emit_c(specs: list[Specialization], target: Target, name: str, model_bytes: bytes,
           options: str, dims: list[DimRange] = (), input_axes: list[list[int]] = (),
           backend: str = "c") -> dict:
    """File name -> contents (str or bytes). input_axes[i][a]: the index in dims of input i's
    axis a, or -1 where it is static. The C backend prints the kernels into NAME.c; the LLVM
    backend into NAME_kernels.ll, which NAME.c declares."""
    progs = [s.program for s in specs]
    blob, offsets = _weights(progs)
    kernels, variants, files = [], [], {}
    printer = _kernel_printer(backend, name, target, files)
    for index, (spec, offs) in enumerate(zip(specs, offsets)):
        ks, variant = _variant(spec, index, offs, name, target, list(dims), printer)
        kernels += ks
        variants.append(variant)
    dim_names = [d.name for d in dims]
    ctx = {
        "name": name, "version": __version__, "target": target.tag, "options": c_comment(options),
        "model_hash": "sha256:" + hashlib.sha256(model_bytes).hexdigest(),
        "model_comment": c_comment(progs[0].name),
        # kernels printed as C inline the vector math; the LLVM module's call it out of line
        "isa_headers": headers(target.features) if backend == "c" else [],
        "runtime_headers": ["onnxc_runtime.h"] + (["onnxc_vmath.h"] if backend == "c" else []),
        "kernels": kernels, "variants": variants,
        "num_extents": max(1, max(len(p.extents) for p in progs)),
        "num_faults": max(1, max(len(p.faults) for p in progs)),
        "runtime_owned": ", ".join("1" if b.name in dict(progs[0].output_offsets) else "0"
                                   for b in progs[0].outputs) or "0",
        "arena_size": max(p.arena_size for p in progs),
        "dims": [{"c_name": c_string(d.name), "label": c_comment(d.name), "low": d.low,
                  "high": d.high} for d in dims],
        "tensors": {"input": _tensor_rows(progs, "input", dim_names, list(input_axes)),
                    "output": _tensor_rows(progs, "output", dim_names, _output_axes(specs))},
    }
    env = _env()
    return {
        **{fname: str(module) for fname, module in files.items()},
        f"{name}.c": env.get_template("model.c.j2").render(ctx),
        f"{name}.h": env.get_template("model.h.j2").render(ctx),
        f"{name}_weights.S": env.get_template("weights.S.j2").render(ctx),
        f"{name}.weights.bin": blob,
        f"{name}-config.cmake": env.get_template("config.cmake.j2").render(ctx),
    }
