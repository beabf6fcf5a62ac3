"""compile(): the whole pipeline from a model to a loaded library."""
from __future__ import annotations

import os
import platform
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path

import onnx

from .backend.emit import Specialization, emit_c
from .build.library_cache import cache_folder, cached_build, library_key, model_digest
from .build.sanitize import check_loadable, sanitizers
from .build.toolchain import build_library, compiler_command
from .errors import ModelError, NeedsStaticDims, OnnxcError, typed_errors
from .frontend.dims import DimRange, dim_ranges, name_dims, specializations, specialize
from .frontend.external import digest_model
from .frontend.load import load_model
from .lower.from_graph import find_unsupported
from .lower.pipeline import compile_program
from .names import c_identifier, library_name_problem
from .runtime.loader import CompiledModel
from .schedule.directives import from_json
from .targets import Target, get_target, with_tf32


def _model_and_name(model_or_path, name: str | None):
    if isinstance(model_or_path, onnx.ModelProto):
        # a graph's name is any text: one that cannot name a library gives "model"
        derived = c_identifier(model_or_path.graph.name or "model")
        return model_or_path, name or (derived if not library_name_problem(derived) else "model")
    path = Path(os.fspath(model_or_path))
    return path, name or c_identifier(path.stem)


def check_supported(model: onnx.ModelProto) -> None:
    """Fail before any work when ops are missing: every op type, with its node names."""
    from .errors import UnsupportedOps
    opsets = {(o.domain if o.domain != "ai.onnx" else ""): o.version for o in model.opset_import}
    missing = find_unsupported(model.graph.node, opsets)
    if missing:
        raise UnsupportedOps(missing)


def _dumper(dump_ir: str | None, label: str):
    def dump(stage: str, text: str) -> None:
        if dump_ir in ("all", stage, f"after-{stage}"):
            print(f"# IR after {stage}{label}\n{text}\n")
    return dump if dump_ir else None


def _compile(model, tgt, schedules, dump_ir, name, bindings: dict, bounds: dict):
    label = "".join(f" {k}={v}" for k, v in bindings.items()) or (" generic" if bounds else "")
    try:
        _, prog = compile_program(specialize(model, bindings), tgt, schedules,
                                  _dumper(dump_ir, label), library=name, bounds=bounds)
    except NeedsStaticDims:
        raise
    except ModelError as exc:
        if not bindings:
            raise
        raise ModelError(f"with{label}: {exc}") from None
    return prog


def _specializations(model, tgt, schedules, dims, dump_ir, name):
    """The final Programs: one generic program over the symbolic dimensions (bounded by
    the --dim ranges), and beside it a static one where every dimension is bound to one
    value. Where a node compiles for static shapes only, every combination of the ranges'
    values is compiled instead (at most MAX_SPECIALIZATIONS)."""
    ranges = dim_ranges(model, dims)
    if not ranges:
        return [], [Specialization((), _compile(model, tgt, schedules, dump_ir, name, {}, {}))]
    if tgt.gpu:
        return _static_only(model, tgt, schedules, dims, dump_ir, name,
                            "GPU kernels are compiled for static shapes")
    pinned = all(r.low == r.high for r in ranges)
    bounds = {r.name: (r.low, r.high, r.hint) for r in ranges}
    try:
        generic = _compile(model, tgt, schedules, dump_ir, name, {},
                           {k: (1, None, None) for k in bounds} if pinned else bounds)
    except NeedsStaticDims as exc:
        return _static_only(model, tgt, schedules, dims, dump_ir, name, str(exc))
    specs = [Specialization(None, generic)]
    if pinned:
        values = tuple(r.low for r in ranges)
        specs.insert(0, Specialization(values, _compile(
            model, tgt, schedules, dump_ir, name, dict(zip(bounds, values)), {})))
        ranges = [DimRange(r.name, 1, None) for r in ranges]
    return ranges, specs


def _static_only(model, tgt, schedules, dims, dump_ir, name, why: str):
    """One static program per combination of the --dim values."""
    try:
        ranges, combos = specializations(model, dims)
    except ModelError as exc:
        raise ModelError(f"{why}; {exc}") from None
    specs = []
    for values in combos:
        bindings = dict(zip((r.name for r in ranges), values))
        specs.append(Specialization(values, _compile(model, tgt, schedules, dump_ir, name,
                                                     bindings, {})))
    return ranges, specs


def _input_axes(model, prog, ranges) -> list[list[int]]:
    """For each program input, per axis: the index of its symbolic dimension, or -1."""
    index = {r.name: i for i, r in enumerate(ranges)}
    declared = {i.name: i.type.tensor_type.shape.dim for i in model.graph.input}
    return [[index.get(d.dim_param, -1) if not d.HasField("dim_value") else -1
             for d in declared[n]] if n in declared else [-1] * b.rank
            for n, b in zip(prog.input_names, prog.inputs)]


@dataclass(frozen=True)
class Plan:
    """A model compiled down to its final Programs for one target, before any backend prints
    them: build() gives libraries from it, one per backend, without compiling it again."""
    model: onnx.ModelProto
    name: str
    target: Target
    ranges: list
    specs: list[Specialization]
    options: str
    model_hash: str     # sha256 of the model's file (or protobuf) and external data


@typed_errors
def plan(model_or_path, target: str = "host", name: str | None = None,
         schedule_file: str | None = None, dump_ir: str | None = None,
         dims: dict[str, tuple[int, int]] | None = None, tf32: bool = False) -> Plan:
    """The pipeline up to the final loop IR. dims binds each symbolic input dimension to a
    range (low, high) of values; tf32 lets a GPU target's float32 contractions round their
    operands to TF32 on the tensor cores."""
    source, name = _model_and_name(model_or_path, name)
    problem = library_name_problem(name)
    if problem:
        raise ModelError(f"library name {problem}: choose another with --name")
    model = name_dims(load_model(source))
    check_supported(model)
    tgt = with_tf32(get_target(target)) if tf32 else get_target(target)
    schedules = from_json(Path(schedule_file).read_text()) if schedule_file else None
    ranges, specs = _specializations(model, tgt, schedules, dims, dump_ir, name)
    options = f"target={target} name={name}" + (f" schedule={Path(schedule_file).name}"
                                                if schedule_file else "")
    options += "".join(f" dim={r.name}={r.low}..{r.high if r.high is not None else ''}"
                       + (f"@{r.hint}" if r.hint is not None else "") for r in ranges)
    options += " tf32" if tf32 else ""
    return Plan(model, name, tgt, ranges, specs, options, digest_model(source))


@typed_errors
def build(compiled: Plan, out_dir, backend: str | None = None, strict: bool = False,
          sanitize=None) -> Path:
    """Print the plan with a backend ("c", "llvm" or "cuda"; default: "cuda" for a cuda
    target, else $ONNXC_BACKEND, else "c") and build out_dir/<name>.so (+ .h, CMake config)."""
    tgt, model = compiled.target, compiled.model
    backend = backend or ("cuda" if tgt.gpu else os.environ.get("ONNXC_BACKEND") or "c")
    options = compiled.options + (f" backend={backend}" if backend != "c" else "")
    files = emit_c(compiled.specs, tgt, compiled.name, compiled.model_hash, options,
                   compiled.ranges, _input_axes(model, compiled.specs[0].program,
                                                compiled.ranges), backend)
    return build_library(files, compiled.name, Path(out_dir), tgt, strict=strict,
                         sanitize=sanitize)


def compile_to_dir(model_or_path, out_dir, target: str = "host", name: str | None = None,
                   schedule_file: str | None = None, dump_ir: str | None = None,
                   strict: bool = False, dims: dict[str, tuple[int, int]] | None = None,
                   backend: str | None = None, tf32: bool = False, sanitize=None) -> Path:
    """Compile to out_dir/<name>.so (+ .h, CMake config); returns the library path: plan()
    then build(), or a copy from $ONNXC_LIBRARY_CACHE of the same build's output. sanitize:
    "address,undefined" or "thread" (build/sanitize.py; None: $ONNXC_SANITIZE)."""
    kinds = sanitizers(sanitize)

    def build_in(out: Path) -> Path:
        return build(plan(model_or_path, target, name, schedule_file, dump_ir, dims, tf32), out,
                     backend, strict, kinds)
    options = dict(schedule_file=schedule_file, strict=strict, dims=sorted((dims or {}).items()),
                   tf32=tf32, sanitize=kinds)
    key, library = build_key(model_or_path, target, name, backend, options) \
        if cache_folder() and dump_ir is None else (None, "")
    return cached_build(key, out_dir, library, build_in)


def build_key(model_or_path, target: str, name: str | None, backend: str | None,
              options: dict) -> tuple[str | None, str]:
    """The library cache's key for a build, and the library's file name: key None where the
    build's inputs cannot all be hashed (an unreadable file, no compiler).
    options["schedule_file"], a path, is hashed by its contents."""
    digest, schedule = model_digest(model_or_path), options.get("schedule_file")
    if digest is None:
        return None, ""
    try:
        tgt = get_target(target)
        toolchain = compiler_command(tgt)
        _, name = _model_and_name(model_or_path, name)
        schedule = Path(schedule).read_text() if schedule else None
    except (OnnxcError, OSError, UnicodeDecodeError):
        return None, ""
    backend = backend or ("cuda" if tgt.gpu else os.environ.get("ONNXC_BACKEND") or "c")
    options = dict(options, schedule_file=schedule, target=repr(tgt), name=name, backend=backend)
    return library_key(bytes.fromhex(digest), options, toolchain, backend == "cuda"), \
        f"{name}.so"


def compile(model_or_path, target: str = "host", out_dir=None, name: str | None = None,  # noqa: A001
            num_threads: int | None = None, **options) -> CompiledModel:
    """Compile a model (path or ModelProto) and load it. Without out_dir the build goes to a
    fresh temporary folder."""
    tgt = get_target(target)
    if not tgt.native:
        raise OnnxcError(f"target {target!r} runs {tgt.arch} code, which this {platform.machine()} "
                         "machine cannot load: build it with compile_to_dir (or `onnxc MODEL "
                         "--target ...`) and check it with `onnxc verify`")
    check_loadable(sanitizers(options.get("sanitize")))
    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="onnxc_"))
    try:
        lib = compile_to_dir(model_or_path, out, target=target, name=name, **options)
        model = CompiledModel(lib)
    except BaseException:
        if not out_dir:
            shutil.rmtree(out, ignore_errors=True)
        raise
    if not out_dir:   # the loaded library stays mapped; its folder goes with the model
        weakref.finalize(model, shutil.rmtree, out, ignore_errors=True)
    if num_threads is not None:
        model.set_num_threads(num_threads)
    return model
