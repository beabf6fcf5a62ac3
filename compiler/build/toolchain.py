"""Building the generated C into a standalone shared library: with the host C compiler, or
for another architecture with the ziglang package's clang."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import BuildError
from ..resources import resource_dir
from ..targets import Target
from .cache import runtime_object
from .prelude import prelude_flags
from .sanitize import cflags as sanitize_cflags
from .sanitize import sanitizers

BASE_CFLAGS = ("-std=c11", "-O3", "-fPIC", "-fvisibility=hidden", "-fno-math-errno",
               "-Wall", "-Wextra")
STRICT_CFLAGS = ("-Werror",)
LINK_LIBS = ("-lm", "-lpthread")
LLVM_SUFFIX = ".ll"     # a module printed by the LLVM backend
RUNTIME_SOURCES = ("onnxc_runtime.c",)
LLVM_RUNTIME_SOURCES = ("onnxc_vmath_export.c",)
CUDA_SUFFIX = ".cu"     # device code printed by the CUDA backend
CUDA_RUNTIME_SOURCES = ("onnxc_cuda.c",)
CUDA_LINK_LIBS = ("-ldl",)   # the driver is loaded at run time


def _zig_command(target: Target) -> list[str]:
    """clang, lld and the target's libc headers from the ziglang package: a cross compiler
    that pip installs. zig spells triples without the vendor and CPUs with underscores."""
    if importlib.util.find_spec("ziglang") is None:
        raise BuildError(f"target {target.tag!r} builds with the ziglang package, which is not "
                         "installed: pip install ziglang")
    arch, _, rest = target.triple.partition("-")
    system = rest.split("-", 1)[1] if rest.startswith("unknown-") else rest
    features = "".join(f"+{f}" for f in target.features if f in _ZIG_FEATURES)
    return [sys.executable, "-m", "ziglang", "cc", "-target", f"{arch}-{system}",
            f"-mcpu={target.cpu.replace('-', '_')}{features}"]


# Features zig's -mcpu takes as +name (the others are implied by the CPU).
_ZIG_FEATURES = frozenset({"neon", "crc", "dotprod", "fullfp16", "sve", "bf16", "i8mm"})


def compiler_command(target: Target) -> list[str]:
    if target.cc == "zig" and not os.environ.get("ONNXC_CC"):
        return _zig_command(target)
    cc = os.environ.get("ONNXC_CC") or target.cc
    if shutil.which(cc) is None:
        raise BuildError(f"C compiler {cc!r} not found (set ONNXC_CC or install gcc)")
    return [cc]


def _llvm_objects(files: dict, out_dir: Path, target: Target) -> list[str]:
    """The LLVM backend's modules compiled to objects (none for the C backend)."""
    modules = sorted(f for f in files if f.endswith(LLVM_SUFFIX))
    if not modules:
        return []
    from .llvm_object import compile_object
    objects = []
    for fname in modules:
        obj = out_dir / (fname[:-len(LLVM_SUFFIX)] + ".o")
        obj.write_bytes(compile_object(files[fname], target))
        objects.append(str(obj))
    return objects


def _cuda_images(files: dict, out_dir: Path, target: Target, strict: bool) -> list[str]:
    """The CUDA backend's kernels built by nvcc into the image NAME_image.S embeds; returns
    that assembly file (none for the other backends)."""
    sources = sorted(f for f in files if f.endswith(CUDA_SUFFIX))
    if not sources:
        return []
    from .nvcc import build_image
    stubs = []
    for fname in sources:
        build_image(out_dir / fname, out_dir / (fname[:-len(CUDA_SUFFIX)] + ".fatbin"), target,
                    resource_dir("runtime_c"), strict)
        stubs.append(str(out_dir / fname.replace("_kernels" + CUDA_SUFFIX, "_image.S")))
    return stubs


def build_library(files: dict, name: str, out_dir: Path, target: Target,
                  strict: bool = False, sanitize=None) -> Path:
    """Write the generated files to out_dir and link out_dir/name.so. sanitize: the
    sanitizers to build with (build/sanitize.py; None: $ONNXC_SANITIZE)."""
    kinds = sanitizers(sanitize)
    if kinds and not target.native:
        raise BuildError(f"sanitizers ({','.join(kinds)}) build for the host only, not for "
                         f"{target.tag!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    out_dir = out_dir.resolve()
    for fname, content in files.items():
        path = out_dir / fname
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content)
        else:
            content.write(path)     # the weights blob, written tensor by tensor
    runtime = resource_dir("runtime_c")
    lib = out_dir / f"{name}.so"
    command = compiler_command(target)
    flags = list(BASE_CFLAGS) + (list(STRICT_CFLAGS) if strict else []) + list(target.cflags) \
        + sanitize_cflags(kinds) + ["-I", str(runtime)]
    kernel_objects = _llvm_objects(files, out_dir, target)
    images = _cuda_images(files, out_dir, target, strict)
    # the LLVM backend's kernels call the vector math out of line
    sources = RUNTIME_SOURCES + (LLVM_RUNTIME_SOURCES if kernel_objects else ()) \
        + (CUDA_RUNTIME_SOURCES if images else ())
    runtime_objects = [str(runtime_object(command, flags, runtime / s, out_dir)) for s in sources]
    source, model_object = out_dir / f"{name}.c", out_dir / f"{name}.o"
    _run(command + flags + prelude_flags(command, flags, source, f"{name}.h", runtime)
         + ["-I", str(out_dir), "-c", str(source), "-o", str(model_object)], lib)
    # run in out_dir: the assembler finds the blobs that .incbin names there (an -Wa,-I option
    # would be split at any comma in the folder's name)
    _run(command + flags + ["-shared", f"-Wl,-soname,{name}.so", "-o",
                            str(lib), str(model_object), str(out_dir / f"{name}_weights.S")]
         + images + kernel_objects + runtime_objects + list(LINK_LIBS)
         + (list(CUDA_LINK_LIBS) if images else []), lib, cwd=out_dir)
    return lib


def _run(cmd: list[str], lib: Path, cwd: Path | None = None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        raise BuildError(f"building {lib.name} failed:\n{' '.join(cmd)}\n{proc.stderr[-4000:]}")
