"""Program -> the files of a C build: model.c, model.h, weights blob and its .S, CMake config."""
from __future__ import annotations

import hashlib

import jinja2
import numpy as np

from .. import __version__, dtypes
from ..loop.ir import Program, static_shape
from ..names import c_comment, c_string
from ..resources import resource_dir
from ..targets import Target
from .c import c_type, print_kernel
from .intrinsics import headers

WEIGHT_ALIGNMENT = 64


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(resource_dir("templates"))),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              autoescape=False)


def _weights(prog: Program) -> tuple[bytes, dict[str, int]]:
    blob = bytearray()
    offsets = {}
    for const in prog.constants:
        blob.extend(b"\0" * (-len(blob) % WEIGHT_ALIGNMENT))
        offsets[const.buffer.name] = len(blob)
        data = np.ascontiguousarray(const.data, dtype=dtypes.dtype(const.buffer.dtype).numpy)
        blob.extend(data.tobytes())
    return bytes(blob), offsets


def _tensor_rows(buffers, names) -> list[dict]:
    rows = []
    for buf, onnx_name in zip(buffers, names):
        shape = static_shape(buf)
        rows.append({"c_name": c_string(onnx_name), "dtype_code": dtypes.dtype(buf.dtype).onnx_code,
                     "rank": len(shape), "shape_list": ", ".join(map(str, shape)) or "0",
                     "comment": c_comment(f"{onnx_name}: {buf.dtype}{list(shape)}")})
    return rows


def _bindings(prog: Program, weight_offsets: dict[str, int], name: str) -> list[str]:
    lines = []
    for i, b in enumerate(prog.inputs):
        lines.append(f"const {c_type(b.dtype)} *{b.name} = (const {c_type(b.dtype)} *)inputs[{i}];")
    for i, b in enumerate(prog.outputs):
        lines.append(f"{c_type(b.dtype)} *{b.name} = ({c_type(b.dtype)} *)outputs[{i}];")
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
        [v.name for v, _ in prog.aliases]
    return lines + [f"(void){n};" for n in bound if n not in used]


def emit_c(prog: Program, target: Target, name: str, model_bytes: bytes, options: str) -> dict:
    """File name -> contents (str or bytes)."""
    kernels = [print_kernel(k, target.features) for k in prog.kernels]
    calls = [f"{k['name']}({', '.join(['pool'] + k['args'])});" for k in kernels]
    used = {a for k in kernels for a in k["args"]}
    blob, offsets = _weights(prog)
    ctx = {
        "name": name, "version": __version__, "target": target.tag, "options": c_comment(options),
        "model_hash": "sha256:" + hashlib.sha256(model_bytes).hexdigest(),
        "model_comment": c_comment(prog.name), "isa_headers": headers(target.features),
        "kernels": kernels, "calls": calls, "arena_size": prog.arena_size,
        "bindings": _unused_marks(prog, used, _bindings(prog, offsets, name)),
        "tensors": {"input": _tensor_rows(prog.inputs, prog.input_names),
                    "output": _tensor_rows(prog.outputs, prog.output_names)},
    }
    env = _env()
    return {
        f"{name}.c": env.get_template("model.c.j2").render(ctx),
        f"{name}.h": env.get_template("model.h.j2").render(ctx),
        f"{name}_weights.S": env.get_template("weights.S.j2").render(ctx),
        f"{name}.weights.bin": blob,
        f"{name}-config.cmake": env.get_template("config.cmake.j2").render(ctx),
    }
