"""Targets: frozen records of facts, loaded from the JSON descriptions in targets/."""
from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import OnnxcError
from .resources import resource_dir


@dataclass(frozen=True, slots=True)
class Gpu:
    """Facts of the NVIDIA GPU a target's kernels run on (the host part runs on the CPU the
    rest of the record describes)."""
    arch: str                         # what nvcc compiles for: "sm_80"
    compute_capability: int           # 80
    multiprocessors: int
    warp_size: int
    max_threads_per_block: int
    shared_bytes_per_block: int       # opt-in maximum
    registers_per_block: int
    # tensor-core MMA shapes (m, n, k) per operand type, as the warp-level wmma API takes them
    mma_shapes: tuple[tuple[str, tuple[int, int, int]], ...] = ()
    # float32 contractions may round their operands to TF32 on the tensor cores (opt-in:
    # `--tf32`, like PyTorch's allow_tf32): about 3 decimal digits per operand
    tf32: bool = False


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
    cc: str                    # C toolchain: the host's compiler driver, or "zig" (ziglang)
    cflags: tuple[str, ...] = field(default=())
    emulator: str = ""         # user-mode emulator that runs the target's code on another CPU
    emulator_cpu: str = ""     # the CPU model it emulates for this target
    sysroot: str = ""          # the target's libc for the emulator (-L)
    gpu: Gpu | None = None     # kernels run on this GPU (the host code on the CPU above)

    def lanes(self, dtype: str = "float32") -> int:
        from . import dtypes
        return max(1, self.vector_bits // (8 * dtypes.itemsize(dtype)))

    @property
    def threads(self) -> int:
        return self.cores or os.cpu_count() or 1

    @property
    def arch(self) -> str:
        return self.triple.split("-", 1)[0]

    @property
    def native(self) -> bool:
        """Whether this machine runs the target's code itself."""
        return self.arch == platform.machine()


def _target_dir() -> Path:
    return resource_dir("targets")


def available() -> dict[str, Target]:
    found = {}
    for path in sorted(_target_dir().glob("*.json")):
        data = json.loads(path.read_text())
        data["features"] = tuple(data["features"])
        data["cflags"] = tuple(data.get("cflags", ()))
        if "gpu" in data:
            gpu = dict(data["gpu"])
            gpu["mma_shapes"] = tuple((dt, tuple(s)) for dt, s in gpu["mma_shapes"].items())
            data["gpu"] = Gpu(**gpu)
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
              and t.tag != "host" and not t.gpu and set(t.features) <= feats]
    if not usable:
        raise OnnxcError("host CPU not recognized (no x86-64 AVX2 target fits)")
    best = max(usable, key=lambda t: (t.vector_bits, len(t.features)))
    return replace(best, tag="host", cflags=("-march=native",), cores=0)


# CUdevice_attribute codes (cuda.h) of the compute capability
_CC_MAJOR, _CC_MINOR = 75, 76


def local_gpu() -> Target | None:
    """The cuda record for this machine's first GPU (the newest one not newer than it: PTX
    carries the code forward), or None without a CUDA driver or a GPU."""
    import ctypes
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    count, major, minor = ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(0)
    if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0 \
            or count.value < 1 \
            or driver.cuDeviceGetAttribute(ctypes.byref(major), _CC_MAJOR, 0) != 0 \
            or driver.cuDeviceGetAttribute(ctypes.byref(minor), _CC_MINOR, 0) != 0:
        return None
    capability = 10 * major.value + minor.value
    fitting = [t for t in available().values()
               if t.gpu and t.gpu.compute_capability <= capability]
    return max(fitting, key=lambda t: (t.gpu.compute_capability, t.tag)) if fitting else None


def _from_triple(spec: str, targets: dict[str, Target]) -> Target:
    """"TRIPLE [-mcpu=CPU] [-mattr=+f,-g]": the generic record of the triple's architecture
    (or the record of that CPU), with the CPU and features overridden."""
    words = spec.split()
    arch = words[0].split("-", 1)[0]
    same_arch = [t for t in targets.values() if t.arch == arch and not t.gpu]
    if not same_arch:
        raise OnnxcError(f"no target describes architecture {arch!r} (from {spec!r})")
    base = min(same_arch, key=lambda t: (t.vector_bits, len(t.features), t.tag))
    features = list(base.features)
    for word in words[1:]:
        key, _, value = word.partition("=")
        if key == "-mcpu":
            base = next((t for t in same_arch if t.cpu == value), replace(base, cpu=value))
            features = list(base.features)
        elif key == "-mattr":
            for item in value.split(","):
                name = item.lstrip("+-")
                features = [f for f in features if f != name] + ([name] if item[0] != "-"
                                                                 else [])
        else:
            raise OnnxcError(f"target {spec!r}: unknown option {word!r} (-mcpu=, -mattr=)")
    cflags = base.cflags
    if base.cc != "zig":   # the host compiler takes the CPU and features as flags
        added = [f"-m{f}" for f in features if f not in base.features]
        removed = [f"-mno-{f}" for f in base.features if f not in features]
        cflags = (f"-march={base.cpu}", *added, *removed)
    return replace(base, tag=spec, triple=words[0], features=tuple(features), cflags=cflags)


def with_tf32(target: Target) -> Target:
    """The target with float32 contractions allowed onto TF32 tensor cores."""
    if target.gpu is None or "tfloat32" not in dict(target.gpu.mma_shapes):
        raise OnnxcError(f"--tf32: target {target.tag!r} has no TF32 tensor cores")
    return replace(target, gpu=replace(target.gpu, tf32=True))


def get_target(spec: str = "host") -> Target:
    """A target by tag ("host", "armv8", ...) or by triple with -mcpu/-mattr overrides."""
    if spec == "host":
        return host()
    targets = available()
    if spec in targets:
        return targets[spec]
    if "-" in spec.split()[0] and spec.split()[0].count("-") >= 2:
        return _from_triple(spec, targets)
    raise OnnxcError(f"unknown target {spec!r}; known: host, {', '.join(sorted(targets))}, "
                     "or a triple such as 'aarch64-linux-gnu -mcpu=cortex-a72'")
