"""`onnxc verify`: compile a model for a target, run it on seeded random inputs (in this
process for the host, under the target's user-mode emulator otherwise) and compare every
output with onnxruntime (or onnx.reference) run here on the same inputs."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from .backend.emit import BACKEND_HELP, BACKENDS
from .build import sanitize as san
from .build.toolchain import compiler_command
from .errors import OnnxcError
from .frontend.dims import add_dim_option, parse_dims
from .resources import resource_dir
from .targets import Target, get_target

DRIVER_SOURCE = "onnxc_npy_driver.c"
# Seconds one emulated run may take (qemu runs a large model at a few percent of native speed)
EMULATED_RUN_TIMEOUT_S = 600


class VerifyError(OnnxcError):
    """verify could not run the model (not: the model's outputs were wrong)."""


class SanitizerFinding(OnnxcError):
    """The sanitized run of the model stopped on a sanitizer's report (verify --sanitize)."""

    def __init__(self, kinds: tuple[str, ...], found: list[str], log: str):
        self.kinds, self.found, self.log = kinds, found, log
        super().__init__(f"-fsanitize={','.join(kinds)}: {found[0]}")


@dataclass(frozen=True)
class OutputError:
    name: str
    dtype: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    ok: bool


def random_inputs(model: onnx.ModelProto, seed: int,
                  dim_values: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """Seeded inputs of the model's declared types: normal floats, small integers, bools;
    a symbolic dimension takes its value from dim_values (by name, or INPUT:AXIS)."""
    from .frontend.dims import dim_symbol, is_dynamic
    rng, dim_values = np.random.default_rng(seed), dim_values or {}
    weights = {t.name for t in model.graph.initializer}
    feed = {}
    for info in model.graph.input:
        if info.name in weights:
            continue
        tensor = info.type.tensor_type
        dims = []
        for axis, d in enumerate(tensor.shape.dim):
            key = dim_symbol(info.name, axis, d)
            value = dim_values.get(key) if is_dynamic(d) else d.dim_value
            if value is None:
                raise VerifyError(f"input {info.name!r} axis {axis} is symbolic ({key}): give "
                                  f"it a value or range with --dim {key}=...")
            dims.append(value)
        dtype = helper.tensor_dtype_to_np_dtype(tensor.elem_type)
        if dtype.kind == "f":
            value = rng.standard_normal(dims)
        elif dtype.kind == "b":
            value = rng.integers(0, 2, dims)
        else:
            value = rng.integers(0, 4, dims)
        feed[info.name] = np.asarray(value).astype(dtype)
    return feed


# verify's second value for a dimension without an upper bound: odd, and past a 16-lane
# vector, so that vector loops and their tails both run
UNBOUNDED_CHECK_VALUE = 19


def dim_cases(model: onnx.ModelProto, dims: dict | None) -> list[dict[str, int]]:
    """The dimension values verify runs one library at: every range's low ends, then its
    high ends (one case for a static model or single values); a dimension without a range
    runs at 1 and UNBOUNDED_CHECK_VALUE."""
    from .frontend.dims import dim_ranges, name_dims
    ranges = dim_ranges(name_dims(model), dims)
    cases = [{r.name: r.low for r in ranges},
             {r.name: r.high if r.high is not None else max(r.low, UNBOUNDED_CHECK_VALUE)
              for r in ranges}]
    return cases[:1] if cases[0] == cases[1] else cases


def reference_outputs(model, feed: dict) -> tuple[list, str]:
    """The outputs of onnxruntime (else onnx.reference) for a model path or ModelProto;
    VerifyError where the reference refuses the model (there is nothing to compare with)."""
    try:
        import onnxruntime as ort
    except ImportError:
        from onnx.reference import ReferenceEvaluator
        source = model if isinstance(model, onnx.ModelProto) else str(model)
        return _reference_run(lambda: ReferenceEvaluator(source).run(None, feed),
                              "onnx.reference")
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    session = lambda: ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return _reference_run(lambda: session().run(None, feed), f"onnxruntime {ort.__version__}")


def _reference_run(run, reference: str) -> tuple[list, str]:
    try:
        return run(), reference
    except Exception as exc:  # noqa: BLE001 - onnxruntime's errors share no base class
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:400]
        raise VerifyError(f"{reference} cannot run the model, so there is nothing to compare "
                          f"with: {first}") from None


def _tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise VerifyError(f"{name} not found: {hint}")
    return path


def emulator_command(target: Target) -> list[str]:
    """How this machine runs the target's programs (qemu-user with the target's libc)."""
    if not target.emulator:
        raise VerifyError(f"target {target.tag!r} does not run here and names no emulator")
    hint = "install Debian's qemu-user (apt-get install qemu-user)"
    command = [_tool(target.emulator, hint)]
    if target.sysroot:
        if not Path(target.sysroot).is_dir():
            raise VerifyError(f"the target's libc is missing ({target.sysroot}): install "
                              f"libc6-{target.arch.replace('aarch64', 'arm64')}-cross")
        command += ["-L", target.sysroot]
    return command + (["-cpu", target.emulator_cpu] if target.emulator_cpu else [])


def build_driver(target: Target, work: Path, flags: list[str] | tuple = ()) -> Path:
    """The .npy driver (runtime_c/onnxc_npy_driver.c) built with the target's toolchain
    (flags: a sanitized build links the sanitizers' runtimes into it)."""
    exe = work / "onnxc_npy_driver"
    cmd = compiler_command(target) + ["-std=c11", "-O2", "-D_GNU_SOURCE", *flags, "-o", str(exe),
                                      str(resource_dir("runtime_c") / DRIVER_SOURCE), "-ldl"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise VerifyError(f"building the driver failed:\n{' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return exe


def run_emulated(lib: Path, name: str, target: Target, emulator: list[str],
                 feed: list[np.ndarray], n_outputs: int, work: Path,
                 kinds: tuple[str, ...] = ()) -> list[np.ndarray]:
    """Run lib on feed under `emulator` (emulator_command; [] runs it here) through the
    .npy driver; kinds: the sanitizers lib is built with (SanitizerFinding on a report)."""
    driver = build_driver(target, work, san.cflags(kinds))
    env = san.environment(kinds, compiler_command(target), preload=False) if kinds else None
    ins = [work / f"input{i}.npy" for i in range(len(feed))]
    outs = [work / f"output{i}.npy" for i in range(n_outputs)]
    for path, value in zip(ins, feed):
        np.save(path, np.ascontiguousarray(value))
    cmd = emulator + [str(driver), str(lib.resolve()), name,
                                      *map(str, ins), "--", *map(str, outs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=EMULATED_RUN_TIMEOUT_S,
                          env=env)
    found = san.findings(proc.stderr)
    if kinds and found:
        raise SanitizerFinding(kinds, found, proc.stderr)
    if proc.returncode != 0:
        where = target.emulator or "the .npy driver"
        raise VerifyError(f"the run under {where} failed (exit {proc.returncode}):\n"
                          f"{' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return [np.load(path) for path in outs]


def compare(names, got, want, rtol: float, atol: float) -> list[OutputError]:
    report = []
    for name, g, w in zip(names, got, want, strict=True):
        g64, w64 = np.asarray(g, np.float64), np.asarray(w, np.float64)
        diff = np.abs(g64 - w64)
        same_nan = np.isnan(g64) & np.isnan(w64)
        diff = np.where(same_nan, 0.0, diff)
        rel = diff / np.maximum(np.abs(w64), np.finfo(np.float32).tiny)
        ok = g64.shape == w64.shape and bool(np.all(diff <= atol + rtol * np.abs(w64)))
        report.append(OutputError(name, str(np.asarray(g).dtype), tuple(np.shape(g)),
                                  float(diff.max(initial=0.0)), float(rel.max(initial=0.0)),
                                  ok))
    return report


def _build(model, target: str, work: Path, backend: str | None, kinds: tuple[str, ...],
           dims: dict | None):
    """run(feed, case_dir) -> outputs, from one library built here, and how its runs are
    made: in this process for the host, in the .npy driver under the target's emulator, or in
    the driver linked with the sanitizers (case_dir holds that run's .npy files)."""
    from .driver import compile as compile_native
    from .driver import compile_to_dir
    name, tgt = "model", get_target(target)
    if tgt.native and not kinds:
        compiled = compile_native(model, target=target, out_dir=work, name=name,
                                  backend=backend, sanitize=(), dims=dims)
        return lambda feed, case_dir: compiled.run(None, feed), "in this process"
    if kinds and not tgt.native:
        raise VerifyError(f"--sanitize runs host builds only, not {target!r}")
    emulator = [] if tgt.native else emulator_command(tgt)
    lib = compile_to_dir(model, work, target=target, name=name, backend=backend,
                         sanitize=kinds, dims=dims)
    run = lambda feed, case_dir: run_emulated(lib, name, tgt, emulator, list(feed.values()),
                                              len(model.graph.output), case_dir, kinds)
    if kinds:
        return run, f"with -fsanitize={','.join(kinds)} in a process of its own"
    return run, " ".join([Path(emulator[0]).name, *emulator[1:]])


def verify(model_path, target: str = "host", seed: int = 0, rtol: float = 1e-4,
           atol: float = 1e-5, out_dir=None, backend: str | None = None,
           sanitize=None, dims: dict | None = None) -> tuple[list[OutputError], str]:
    """Compile once, run and compare at each of dim_cases (the low and the high ends of the
    --dim ranges); returns the per-output errors (one per output and case) and how the runs
    were made. sanitize: the sanitizers to build and run with (None: $ONNXC_SANITIZE); a
    report of theirs raises SanitizerFinding."""
    model = onnx.load(str(model_path))
    cases = dim_cases(model, dims)
    work = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="onnxc_verify_"))
    run, how = _build(model, target, work, backend, san.sanitizers(sanitize), dims)
    report, reference = [], ""
    for number, values in enumerate(cases):
        feed = random_inputs(model, seed, values)
        case_dir = work / f"case{number}" if len(cases) > 1 else work
        case_dir.mkdir(parents=True, exist_ok=True)
        got = run(feed, case_dir)
        want, reference = reference_outputs(model, feed)
        label = "".join(f" {k}={v}" for k, v in values.items())
        names = [o.name + (f" at{label}" if label else "") for o in model.graph.output]
        report += compare(names, got, want, rtol, atol)
    return report, f"{how}, against {reference}"


def cmd_verify(args) -> int:
    try:
        report, how = verify(args.model, args.target, args.seed, args.rtol, args.atol,
                             args.output, args.backend, args.sanitize, parse_dims(args.dim))
    except SanitizerFinding as exc:
        print(f"onnxc verify: {args.model}: the sanitized run stopped on a finding:\n"
              f"{exc.log.rstrip()}")
        print(f"onnxc verify: FAILED, {len(exc.found)} sanitizer finding(s): "
              + "; ".join(exc.found))
        return 1
    print(f"onnxc verify: {args.model} for {args.target}, seed {args.seed}, run {how}")
    for r in report:
        print(f"  {r.name} {r.dtype}{list(r.shape)}: max abs error {r.max_abs:.3g}, "
              f"max rel error {r.max_rel:.3g}  {'ok' if r.ok else 'BEYOND TOLERANCE'}")
    failed = [r.name for r in report if not r.ok]
    if failed:
        print(f"onnxc verify: {', '.join(failed)} beyond rtol {args.rtol} / atol {args.atol}")
        return 1
    print(f"onnxc verify: passed (rtol {args.rtol}, atol {args.atol})")
    return 0


def add_verify(sub) -> None:
    p = sub.add_parser("verify", help="check a build for a target against onnxruntime",
                       description="Compile MODEL for TARGET, run it on seeded random inputs "
                                   "(in this process for the host, under the target's "
                                   "emulator, e.g. qemu-aarch64, otherwise) and compare each "
                                   "output with onnxruntime run here. Exit 1 beyond tolerance.")
    p.add_argument("model", help="the .onnx file")
    p.add_argument("--target", default="host", help="target tag or triple (default: host)")
    p.add_argument("--seed", type=int, default=0, help="input seed (default: 0)")
    p.add_argument("--rtol", type=float, default=1e-4, help="relative tolerance (1e-4)")
    p.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance (1e-5)")
    p.add_argument("-o", "--output", metavar="OUT_DIR",
                   help="keep the build, driver and .npy files in OUT_DIR")
    p.add_argument("--backend", choices=BACKENDS, help=BACKEND_HELP)
    p.add_argument("--sanitize", nargs="?", const="address,undefined", metavar="KINDS",
                   help="build with the C compiler's sanitizers (address,undefined when given "
                        "alone; or thread) and run in a process of their own; a finding "
                        "fails the check with the sanitizer's report (default: "
                        "$ONNXC_SANITIZE)")
    add_dim_option(p, "; verify runs the library at every range's low and high ends")
    p.set_defaults(func=cmd_verify)
