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
    """Hands out unique identifiers, deterministically, in request order."""

    def __init__(self, reserved=()):
        self.used: set[str] = set(reserved)

    def unique(self, name: str, prefix: str = "") -> str:
        base = c_identifier(name, prefix)
        ident, n = base, 1
        while ident in self.used:
            ident = f"{base}_{n}"
            n += 1
        self.used.add(ident)
        return ident
