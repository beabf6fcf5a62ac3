"""Building the generated C into a standalone shared library with the host C compiler."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ..errors import BuildError
from ..resources import resource_dir
from ..targets import Target

BASE_CFLAGS = ("-std=c11", "-O3", "-fPIC", "-fvisibility=hidden", "-fno-math-errno",
               "-Wall", "-Wextra")
STRICT_CFLAGS = ("-Werror",)
LINK_LIBS = ("-lm", "-lpthread")


def compiler_command(target: Target) -> list[str]:
    cc = os.environ.get("ONNXC_CC") or target.cc
    if shutil.which(cc) is None:
        raise BuildError(f"C compiler {cc!r} not found (set ONNXC_CC or install gcc)")
    return [cc]


def build_library(files: dict, name: str, out_dir: Path, target: Target,
                  strict: bool = False) -> Path:
    """Write the generated files to out_dir and link out_dir/name.so."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for fname, content in files.items():
        path = out_dir / fname
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    runtime = resource_dir("runtime_c")
    lib = out_dir / f"{name}.so"
    cmd = compiler_command(target) + list(BASE_CFLAGS) + (list(STRICT_CFLAGS) if strict else []) \
        + list(target.cflags) + ["-I", str(runtime), "-I", str(out_dir),
                                 f"-Wa,-I{out_dir}", "-shared", f"-Wl,-soname,{name}.so",
                                 "-o", str(lib), str(out_dir / f"{name}.c"),
                                 str(out_dir / f"{name}_weights.S"),
                                 str(runtime / "onnxc_runtime.c")] + list(LINK_LIBS)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"building {lib.name} failed:\n{' '.join(cmd)}\n{proc.stderr[-4000:]}")
    return lib
