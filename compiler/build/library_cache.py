"""Built libraries kept by a content hash of everything that went into them, so that the same
model compiled again with the same options is copied instead of built. Opt-in:
$ONNXC_LIBRARY_CACHE names the folder (the test suite sets it, so that one run never compiles
one model twice).

The key is every input of a build: the model's bytes, the options, the resolved target record,
the onnxc sources (Python, templates, C runtime, target descriptions), the C compiler's and
nvcc's identities, the environment variables the toolchain reads and this CPU's flags (the host
target builds with -march=native). A model whose tensors live in external files is keyed by
their bytes too, read in chunks. An entry is a folder written under a temporary name and
renamed into place, so a reader never sees half an entry; a folder that cannot be written only
costs the cache, never the build. The warnings a build gave are stored with it and given again
by every copy (as ccache replays a compiler's messages): a cached build says what a build says.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

from .. import errors
from ..errors import OnnxcError
from ..frontend.external import digest_model
from .cache import compiler_identity, write_replacing

CACHE_ENV = "ONNXC_LIBRARY_CACHE"
KEY_CHARS = 32
PACKAGE_DIR = Path(__file__).resolve().parents[1]
DATA_DIRS = ("templates", "targets", "runtime_c")
# The environment the toolchain reads at build time.
TOOLCHAIN_ENV = ("ONNXC_CC", "ONNXC_NVCC", "CUDA_HOME", "PATH", "ONNXC_SANITIZE")
WARNINGS_FILE = ".onnxc-warnings.json"    # in an entry, never copied out


def cache_folder() -> Path | None:
    folder = os.environ.get(CACHE_ENV)
    return Path(folder) if folder else None


@functools.cache
def source_digest() -> str:
    """One hash of the onnxc package's files (as installed, or in a checkout)."""
    digest = hashlib.sha256()
    roots = [PACKAGE_DIR] + [PACKAGE_DIR.parent / d for d in DATA_DIRS
                             if not (PACKAGE_DIR / d).is_dir()]
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@functools.cache
def _cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    return next((line for line in text.splitlines() if line.startswith(("flags", "Features"))),
                "")


@functools.cache
def _nvcc_identity() -> str:
    from .nvcc import find_nvcc
    try:
        return compiler_identity((find_nvcc(),))
    except OnnxcError as exc:       # no nvcc: the build itself says so
        return str(exc)


def model_digest(model_or_path) -> str | None:
    """The sha256 of a model and of its external data, streamed from their files; None where
    they cannot be read (the build then reports why)."""
    try:
        return digest_model(model_or_path)
    except Exception:           # noqa: BLE001 - unreadable: not cached, the loader reports
        return None


def library_key(model_data: bytes, options: dict, toolchain: list[str], uses_nvcc: bool) -> str:
    """The hash of one build's inputs. options: every argument of the build as plain values
    (reprs are hashed), toolchain: the C compiler command."""
    digest = hashlib.sha256()
    parts = [source_digest(), repr(sorted(options.items())), compiler_identity(tuple(toolchain)),
             " ".join(toolchain), _nvcc_identity() if uses_nvcc else "", _cpu_flags(),
             platform.machine(), *(f"{k}={os.environ.get(k, '')}" for k in TOOLCHAIN_ENV)]
    for part in parts:
        digest.update(part.encode() + b"\0")
    digest.update(hashlib.sha256(model_data).digest())
    return digest.hexdigest()[:KEY_CHARS]


def _snapshot(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()} \
        if folder.is_dir() else {}


def cached_build(key: str | None, out_dir, library: str, build: Callable[[Path], Path]) -> Path:
    """out_dir/library copied from the cache entry `key` with the rest of what its build wrote,
    else build(out_dir), whose new files are then stored under `key`. A None key, or no cache
    folder, builds."""
    folder, out_dir = cache_folder(), Path(out_dir)
    if key is None or folder is None:
        return build(out_dir)
    entry = folder / key
    if (entry / library).is_file():
        _install(entry, out_dir)
        _replay_warnings(entry)
        return out_dir / library
    before = _snapshot(out_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lib = build(out_dir)
    for w in caught:        # given on as they came, under the caller's own filters
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    written = [p for p, stamp in _snapshot(out_dir).items() if before.get(p) != stamp]
    if not (entry / library).is_file():     # a concurrent build may have stored it meanwhile
        shutil.rmtree(entry, ignore_errors=True)    # an entry damaged by hand is replaced
        _store(entry, out_dir, written, caught)
    return lib


def _replay_warnings(entry: Path) -> None:
    try:
        stored = json.loads((entry / WARNINGS_FILE).read_text())
    except (OSError, ValueError):
        return          # an entry without warnings
    for w in stored:
        category = getattr(errors, w.get("category", ""), None)
        if not (isinstance(category, type) and issubclass(category, Warning)):
            category = UserWarning
        warnings.warn_explicit(str(w.get("message", "")), category,
                               str(w.get("filename", "")), int(w.get("lineno", 0)))


def _install(entry: Path, out_dir: Path) -> None:
    """Copy an entry's files into out_dir, each renamed over its old copy (write_replacing): a
    library of that name already loaded from out_dir keeps its own file."""
    for path in entry.rglob("*"):
        if path.is_file() and path.name != WARNINGS_FILE:
            dest = out_dir / path.relative_to(entry)
            dest.parent.mkdir(parents=True, exist_ok=True)
            write_replacing(dest, lambda partial, src=path: shutil.copy2(src, partial))


def _store(entry: Path, built: Path, files: list[Path], caught: list) -> None:
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}."))
    except OSError:
        return
    try:
        for path in files:
            dest = partial / path.relative_to(built)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
        if caught:
            (partial / WARNINGS_FILE).write_text(json.dumps(
                [dict(category=w.category.__name__, message=str(w.message), filename=w.filename,
                      lineno=w.lineno) for w in caught]))
        os.rename(partial, entry)
    except OSError:
        pass            # another process stored the same key first, or the disk is full
    finally:
        shutil.rmtree(partial, ignore_errors=True)
