"""A precompiled header of a generated file's prelude (its leading #include lines: libc, the
ISA intrinsics, the runtime headers), for gcc. Parsing those headers is about half of what gcc
spends on a small model; the precompiled form is kept in the cache and reused by every model
built with the same compiler, flags and runtime headers.

The file is compiled with `-include PRELUDE.h`: gcc reads PRELUDE.h.gch instead of the text
when it is valid for these flags, and the text (the same lines) otherwise, so the object is the
one the plain compile gives (the generated file's own #include lines are then no-ops).
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from .cache import cached_file, compile_key, compiler_identity

INCLUDE = "#include "


def prelude(source_text: str, own_header: str) -> str:
    """The leading #include lines of a generated file, up to its own header (blank lines and
    the opening comment skipped); "" where code comes first, which could change them."""
    lines = []
    for line in source_text.splitlines():
        if line.startswith(INCLUDE):
            if line == f'{INCLUDE}"{own_header}"':
                break
            lines.append(line)
        elif lines and line.strip():
            break
        elif line.strip() and not line.lstrip().startswith(("/*", "*")):
            return ""
    return "".join(line + "\n" for line in lines)


def _is_gcc(command: list[str]) -> bool:
    identity = compiler_identity(tuple(command))
    return "Free Software Foundation" in identity and "clang" not in identity


def prelude_flags(command: list[str], flags: list[str], source: Path, own_header: str,
                  include: Path) -> list[str]:
    """["-include", PRELUDE.h] with its precompiled form in the cache, or [] (not gcc, no
    prelude, no writable cache, or the header does not precompile)."""
    text = prelude(source.read_text(), own_header)
    if not text or not _is_gcc(command):
        return []
    name = f"onnxc_prelude-{compile_key(command, flags, 'prelude', text.encode(), include)}.h"
    header = cached_file(name, lambda path: path.write_text(text))

    def precompile(gch: Path) -> None:
        cmd = command + flags + ["-x", "c-header", str(header), "-o", str(gch)]
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            raise OSError("the prelude does not precompile")
    gch = header and cached_file(name + ".gch", precompile)
    return ["-include", str(header)] if gch else []
