"""Objects of the C runtime, compiled once per toolchain and flags and kept in a cache.

Every library links the same runtime sources (the thread pool, and for the LLVM backend the
out-of-line vector math); compiling them again for each model costs more than compiling a
small model. The key is everything the object depends on: the compiler's identity (its
--version text), the flags, and the bytes of the source and of every runtime header. A cache
that cannot be written is not an error: the object is then built in the output folder.
"""
from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import BuildError

CACHE_ENV = "ONNXC_CACHE_DIR"
KEY_CHARS = 20


def cache_dir() -> Path:
    """$ONNXC_CACHE_DIR, else $XDG_CACHE_HOME/onnxc, else ~/.cache/onnxc."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "onnxc"


@functools.cache
def compiler_identity(command: tuple[str, ...]) -> str:
    proc = subprocess.run([*command, "--version"], capture_output=True, text=True)
    return proc.stdout + proc.stderr


def compile_key(command: list[str], flags: list[str], name: str, text: bytes,
                headers: Path) -> str:
    """The key of compiling `text` (named `name`) with command + flags: the compiler's
    identity, the command, the text and every header of the folder it includes from."""
    digest = hashlib.sha256()
    for part in (compiler_identity(tuple(command)), "\0".join(command + flags)):
        digest.update(part.encode() + b"\0")
    digest.update(name.encode() + b"\0" + text)
    for path in sorted(headers.glob("*.h")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:KEY_CHARS]


def _compile(command: list[str], flags: list[str], source: Path, obj: Path) -> None:
    cmd = command + flags + ["-c", str(source), "-o", str(obj)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"compiling {source.name} failed:\n{' '.join(cmd)}\n"
                         f"{proc.stderr[-4000:]}")


def write_replacing(dest: Path, make: Callable[[Path], None]) -> None:
    """make(path) writes a temporary file beside dest, which is then renamed over dest: a
    reader never sees half a file, and a process that has the old dest open or mapped (a
    loaded library) keeps it. OSError where the folder cannot be written."""
    fd, partial = tempfile.mkstemp(dir=dest.parent, prefix=f"{dest.name}.", suffix=".partial")
    os.close(fd)
    try:
        make(Path(partial))
        os.replace(partial, dest)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def cached_file(name: str, make: Callable[[Path], None]) -> Path | None:
    """cache_dir()/name, made by make(path) where it is missing (write_replacing). None where
    the cache folder cannot be written, or make raises OSError."""
    cached = cache_dir() / name
    if cached.is_file():
        return cached
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_replacing(cached, make)
    except OSError:
        return None
    return cached


def runtime_object(command: list[str], flags: list[str], source: Path, fallback: Path) -> Path:
    """The object of source compiled with command + flags: from the cache, else compiled
    into it, else into fallback/."""
    key = compile_key(command, flags, source.name, source.read_bytes(), source.parent)
    name = f"{source.stem}-{key}.o"
    cached = cached_file(name, lambda obj: _compile(command, flags, source, obj))
    if cached is not None:
        return cached
    obj = fallback / f"{source.stem}.o"
    _compile(command, flags, source, obj)
    return obj
