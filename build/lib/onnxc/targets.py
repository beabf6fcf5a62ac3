"""Targets: frozen records of facts, loaded from the JSON descriptions in targets/."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import OnnxcError
from .resources import resource_dir


@dataclass(frozen=True, slots=True)
class Target:
    tag: str
    triple: str
    cpu: str
    features: tuple[str, ...]
    vector_bits: int           # SIMD register width
    vector_registers: int
    cores: int                 # 0: ask the machine at run time
    l1_bytes: int
    l2_bytes: int
    cc: str                    # C compiler driver
    cflags: tuple[str, ...] = field(default=())

    def lanes(self, dtype: str = "float32") -> int:
        from . import dtypes
        return max(1, self.vector_bits // (8 * dtypes.itemsize(dtype)))

    @property
    def threads(self) -> int:
        return self.cores or os.cpu_count() or 1


def _target_dir() -> Path:
    return resource_dir("targets")


def available() -> dict[str, Target]:
    found = {}
    for path in sorted(_target_dir().glob("*.json")):
        data = json.loads(path.read_text())
        data["features"] = tuple(data["features"])
        data["cflags"] = tuple(data.get("cflags", ()))
        found[data["tag"]] = Target(**data)
    return found


def _host_features() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def host() -> Target:
    """The best description this machine's CPU satisfies, compiled for `-march=native`."""
    targets = available()
    feats = _host_features()
    usable = [t for t in targets.values() if t.triple.startswith("x86_64")
              and t.tag != "host" and set(t.features) <= feats]
    if not usable:
        raise OnnxcError("host CPU not recognized (no x86-64 AVX2 target fits)")
    best = max(usable, key=lambda t: (t.vector_bits, len(t.features)))
    return replace(best, tag="host", cflags=("-march=native",), cores=0)


def get_target(spec: str = "host") -> Target:
    if spec == "host":
        return host()
    targets = available()
    if spec not in targets:
        raise OnnxcError(f"unknown target {spec!r}; known: host, {', '.join(sorted(targets))}")
    return targets[spec]
