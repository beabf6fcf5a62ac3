"""Libraries built with the C compiler's sanitizers: AddressSanitizer (out-of-bounds and
use-after-free accesses), UndefinedBehaviorSanitizer (signed overflow, shifts, misaligned or
null accesses, integer division by zero) and ThreadSanitizer (data races in the thread pool).

`ONNXC_SANITIZE=address,undefined` (or `sanitize=` of onnxc.compile / compile_to_dir) adds
-fsanitize= to every compile and to the link of the library: the generated C, the runtime
objects and the precompiled prelude (both cached by their flags, so they are built once per
setting). UBSan does not recover: the first finding ends the process with its report.

ASan and TSan keep their runtime in a shared library that must be the first one the process
loads: a library built with them can only be loaded into a process started with that runtime
preloaded (LD_PRELOAD, environment() below) or into a program linked with -fsanitize=.
`onnxc verify --sanitize` runs the model in its own process (the .npy driver, linked with the
sanitizers), and onnxc.compile refuses to load such a library into a process without the runtime
(check_loadable) instead of letting the sanitizer abort it.
"""
from __future__ import annotations

import functools
import os
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

from ..errors import BuildError, OnnxcError

SANITIZE_ENV = "ONNXC_SANITIZE"
KINDS = ("address", "undefined", "thread")
# Kinds that cannot share one build (ASan and TSan both own the process's memory map).
EXCLUSIVE = frozenset({"address", "thread"})
# Kinds whose runtime must come first in the process: library file, as gcc names it.
PRELOADED = {"address": "libasan.so", "thread": "libtsan.so"}
# Preloaded after them: the C++ runtime, whose exceptions their interceptors must find at start
# (without it, the first exception a C++ extension such as onnx's checker throws stops ASan).
COMPANIONS = ("libstdc++.so.6",)
# The run-time options each kind is given where onnxc starts the process. Python and the
# .npy driver leak on purpose at exit: leak checking is off (its own test frees everything).
RUN_OPTIONS = {
    "address": ("ASAN_OPTIONS", "detect_leaks=0:halt_on_error=1:abort_on_error=0"),
    "undefined": ("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1"),
    "thread": ("TSAN_OPTIONS", "halt_on_error=1:second_deadlock_stack=1"),
}
# The first line of a report of each sanitizer.
FINDING = re.compile(r"^(?:=+\d+=+)?\s*(ERROR: AddressSanitizer.*|ERROR: LeakSanitizer.*|"
                     r"WARNING: ThreadSanitizer.*|.*runtime error: .*)$", re.MULTILINE)


def sanitizers(requested: str | Iterable[str] | None = None) -> tuple[str, ...]:
    """The sanitizer kinds of a build, sorted: `requested` (a comma-separated string or names),
    else $ONNXC_SANITIZE; () for none. BuildError for an unknown or incompatible kind."""
    if requested is None:
        requested = os.environ.get(SANITIZE_ENV, "")
    names = requested.split(",") if isinstance(requested, str) else list(requested)
    kinds = tuple(sorted({n.strip() for n in names if n.strip()}))
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise BuildError(f"unknown sanitizer {', '.join(unknown)} (in {SANITIZE_ENV} or "
                         f"sanitize=): expected some of {', '.join(KINDS)}")
    if EXCLUSIVE <= set(kinds):
        raise BuildError("the address and thread sanitizers cannot be combined in one build")
    return kinds


def cflags(kinds: tuple[str, ...]) -> list[str]:
    """Compile and link flags of a sanitized build; [] for none. -O1 (after the build's -O3):
    gcc takes about half the time of -O3 on instrumented code, and the generated C's explicit
    vector code is checked either way."""
    if not kinds:
        return []
    return [f"-fsanitize={','.join(kinds)}", "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer", "-g", "-O1"]


@functools.cache
def _runtime_file(command: tuple[str, ...], library: str) -> str:
    proc = subprocess.run([*command, f"-print-file-name={library}"], capture_output=True,
                          text=True)
    path = os.path.normpath(proc.stdout.strip())
    if proc.returncode != 0 or not os.path.isabs(path) or not os.path.exists(path):
        raise BuildError(f"{' '.join(command)} has no {library} (install the compiler's "
                         "sanitizer runtime, e.g. Debian's gcc package)")
    return path


def preloads(kinds: tuple[str, ...], command: list[str]) -> list[str]:
    """The runtime libraries a process must preload to load a library built with kinds."""
    names = [PRELOADED[k] for k in kinds if k in PRELOADED]
    return [_runtime_file(tuple(command), n) for n in names + list(COMPANIONS if names else [])]


def environment(kinds: tuple[str, ...], command: list[str],
                base: dict[str, str] | None = None, preload: bool = True) -> dict[str, str]:
    """An environment for a process that loads libraries built with kinds: the runtimes
    preloaded (unless the program is itself linked with them), each sanitizer's options
    (options already set in `base` are kept, after ours) and $ONNXC_SANITIZE, so that what it
    compiles is sanitized too."""
    env = dict(os.environ if base is None else base)
    preload = preloads(kinds, command) if preload else []
    if preload:
        env["LD_PRELOAD"] = " ".join(preload + env.get("LD_PRELOAD", "").split())
    for kind in kinds:
        var, value = RUN_OPTIONS[kind]
        env[var] = ":".join(filter(None, [value, env.get(var, "")]))
    env[SANITIZE_ENV] = ",".join(kinds)
    return env


def loaded_runtimes() -> set[str]:
    """The sanitizer kinds whose runtime this process has loaded."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return set()
    return {k for k, lib in PRELOADED.items() if f"/{lib.removesuffix('.so')}.so" in maps}


def check_loadable(kinds: tuple[str, ...]) -> None:
    """OnnxcError where this process cannot load a library built with kinds (its sanitizer
    runtime was not preloaded): the sanitizer would abort the process instead."""
    missing = [k for k in kinds if k in PRELOADED and k not in loaded_runtimes()]
    if missing:
        libs = " ".join(f"$(gcc -print-file-name={PRELOADED[k]})" for k in missing)
        raise OnnxcError(
            f"a library built with -fsanitize={','.join(kinds)} loads only into a process "
            f"started with the {', '.join(missing)} sanitizer runtime: run it as "
            f"LD_PRELOAD=\"{libs}\" python ..., or check a model with `onnxc verify "
            "--sanitize`, which runs it in a process of its own")


def findings(log: str) -> list[str]:
    """The first line of every sanitizer report in a process's output."""
    return [m.group(1).strip() for m in FINDING.finditer(log)]
