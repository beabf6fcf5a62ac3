"""Turning model-supplied names into safe C identifiers, comments and string literals."""
from __future__ import annotations

import re

_NOT_IDENT = re.compile(r"[^A-Za-z0-9_]")
MAX_IDENT = 40


def c_identifier(name: str, prefix: str = "") -> str:
    """A C identifier made of [A-Za-z0-9_] only; never empty, never starting with a digit."""
    ident = _NOT_IDENT.sub("_", name)[:MAX_IDENT].strip("_") or "t"
    ident = prefix + ident
    return ident if not ident[0].isdigit() else "_" + ident


def c_comment(text: str) -> str:
    """Text safe inside /* ... */: printable ASCII only, no comment terminator."""
    clean = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
    return clean.replace("*/", "*_/").replace("/*", "/_*")


def c_string(text: str) -> str:
    """A C string literal for any text (UTF-8 bytes, non-printables as octal escapes)."""
    out = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\?':
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


class NameTable:
    """Hands out unique identifiers, deterministically, in request order. An identifier that
    would start with reserved_prefix (the library's NAME_, whose namespace the generated API
    and tables use) is prefixed with its own first letter: k_run becomes kk_run in library k.
    Since a library name never ends in '_', that identifier cannot start with NAME_ again."""

    def __init__(self, reserved=(), reserved_prefix: str = ""):
        self.used: set[str] = set(reserved)
        self.reserved_prefix = reserved_prefix

    def unique(self, name: str, prefix: str = "") -> str:
        base = c_identifier(name, prefix)
        if self.reserved_prefix and base.startswith(self.reserved_prefix):
            base = base[0] + base
        ident, n = base, 1
        while ident in self.used:
            ident = f"{base}_{n}"
            n += 1
        self.used.add(ident)
        return ident


# Library names whose API (NAME_create, NAME_destroy, NAME_run, NAME_init, ...: every NAME_
# identifier the templates define) would define or redeclare a C library or POSIX function:
# pthread_create, timer_create, sem_destroy, mtx_init, ... The families are POSIX's and C11's
# reserved prefixes; the rest come from the symbols glibc and musl export
# (tests/unit/test_names.py recomputes them from this machine's libc against the templates).
LIBC_CLASHES = frozenset({
    # POSIX / C11 families that grow new functions
    "aio", "clock", "cnd", "mq", "mtx", "posix", "pthread", "sched", "sem", "shm", "thrd",
    "timer", "tss",
    # glibc and musl exports NAME_<suffix> for one of our suffixes
    "argz", "authdes", "authdes_pk", "authnone", "authunix", "clnt", "clntraw", "clnttcp",
    "clntudp", "clntunix", "epoll", "fanotify", "fts", "fts64", "gnu_get_libc", "iconv",
    "inet6_opt", "inet6_option", "inet6_rth", "inotify", "memfd", "pidfd",
    "posix_spawn_file_actions", "posix_spawnattr", "pthread_attr", "pthread_barrier",
    "pthread_barrierattr", "pthread_cond", "pthread_condattr", "pthread_key", "pthread_mutex",
    "pthread_mutexattr", "pthread_rwlock", "pthread_rwlockattr", "pthread_spin", "svc",
    "svcfd", "svcraw", "svctcp", "svcudp", "svcunix", "svcunixfd", "timerfd", "xdrmem",
    "xdrrec", "xdrstdio",
    # the CUDA runtime and driver (cuda targets link them)
    "cu", "cuda", "cudart", "nvrtc",
})


def library_name_problem(name: str) -> str | None:
    """Why name cannot name a library, None when it can."""
    if c_identifier(name) != name:
        return f"{name!r} is not a C identifier"
    if name == "onnxc" or name.startswith("onnxc_"):
        return f"{name!r} collides with the onnxc runtime's symbols"
    if name in LIBC_CLASHES or any(name.startswith(f"{family}_") for family in _FAMILIES):
        return f"{name!r} would define C library functions ({name}_create, {name}_init, ...)"
    return None


_FAMILIES = ("pthread", "posix", "sem", "timer", "mq", "aio", "shm", "sched", "clock")
