"""The `onnxc` command: compile a model, describe it (info), or run the bundled demo.

    onnxc model.onnx [--target T] [-o OUT] [--name NAME] [--schedule FILE] [--dump-ir STAGE]
    onnxc info model.onnx
    onnxc demo

Every error onnxc raises on purpose is reported as `onnxc: error: ...` with exit code 2, never a
traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from . import __version__
from .backend.emit import BACKEND_HELP, BACKENDS
from .bench import add_bench
from .errors import OnnxcError, UnsupportedOps, typed_errors
from .frontend.dims import add_dim_option, parse_dims
from .verify import add_verify, reference_outputs

COMMANDS = ("compile", "info", "demo", "bench", "verify")
DEMO_MODEL = Path(__file__).resolve().parent / "models" / "demo.onnx"
DEMO_TOLERANCE = 1e-4
EXIT_ERROR = 2


class CliError(OnnxcError):
    """A usage problem found by the CLI itself (bad schedule file, unknown dump stage)."""


# ---- compile ----------------------------------------------------------------------------------

def _pipeline_stages() -> tuple[str, ...]:
    from .lower.pipeline import STAGES
    return STAGES


def _stage_names() -> list[str]:
    stages = _pipeline_stages()
    return ["all", *stages, *(f"after-{s}" for s in stages)]


def _target_names() -> list[str]:
    from .targets import available
    try:
        return ["host", *sorted(available())]
    except OnnxcError:
        return ["host"]


def _check_schedule(path: str | None) -> None:
    """Parse the schedule file here so that a bad file is a one-line error."""
    if path is None:
        return
    from .schedule.directives import from_json
    try:
        from_json(Path(path).read_text())
    except OSError as exc:
        raise CliError(f"{path}: cannot read schedule ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise CliError(f"{path}: not a valid schedule file ({type(exc).__name__}: {exc})") \
            from None


def cmd_compile(args) -> int:
    from .driver import compile_to_dir
    if args.dump_ir is not None and args.dump_ir not in _stage_names():
        raise CliError(f"--dump-ir {args.dump_ir!r}: unknown stage; one of "
                       f"{', '.join(_stage_names())}")
    _check_schedule(args.schedule)
    out = Path(args.output)
    lib = compile_to_dir(args.model, out, target=args.target, name=args.name,
                         schedule_file=args.schedule, dump_ir=args.dump_ir,
                         dims=parse_dims(args.dim), backend=args.backend, tf32=args.tf32)
    name = lib.stem
    print(f"onnxc: compiled {args.model} for target {args.target} into {out}/")
    for fname, what in ((f"{name}.so", "shared library"), (f"{name}.h", "C header"),
                        (f"{name}-config.cmake", f"CMake package (target onnxc::{name})")):
        print(f"  {out / fname}  ({what})")
    return 0


# ---- info -------------------------------------------------------------------------------------

def _type_str(type_proto) -> str:
    import onnx
    if not type_proto.HasField("tensor_type"):
        return type_proto.WhichOneof("value") or "unknown"
    t = type_proto.tensor_type
    known = t.elem_type in onnx.TensorProto.DataType.values()
    dtype = onnx.TensorProto.DataType.Name(t.elem_type).lower() if known \
        else f"type{t.elem_type}"
    if not t.HasField("shape"):
        return f"{dtype}[?]"
    dims = [str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
            for d in t.shape.dim]
    return f"{dtype}[{', '.join(dims)}]"


def _inferred(model):
    import onnx
    try:
        return onnx.shape_inference.infer_shapes(model)
    except Exception:  # shapes are a nicety here; the raw graph still describes the model
        return model


def _op_label(node) -> str:
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"


def _info_lines(model, missing: dict) -> list[str]:
    g = _inferred(model).graph
    consts = {t.name for t in g.initializer}
    outputs = {o.name: o for o in g.output}
    producer = f", producer {model.producer_name} {model.producer_version}".rstrip() \
        if model.producer_name else ""
    lines = [f"model: {g.name or '(unnamed)'} (ir_version {model.ir_version}{producer})"]
    lines.append("opsets: " + ", ".join(f"{o.domain or 'ai.onnx'} {o.version}"
                                        for o in model.opset_import))
    lines.append("inputs:")
    lines += [f"  {i.name}: {_type_str(i.type)}" for i in g.input if i.name not in consts]
    lines.append("outputs:")
    lines += [f"  {o.name}: {_type_str(outputs[o.name].type)}" for o in g.output]
    params = sum(int(np.prod(t.dims)) for t in g.initializer)
    lines.append(f"weights: {len(g.initializer)} initializers, {params} elements")
    hist = Counter(_op_label(n) for n in g.node)
    lines.append(f"ops: {len(g.node)} nodes, {len(hist)} op types")
    lines += [f"  {op:<24} {count}" for op, count in sorted(hist.items(),
                                                            key=lambda kv: (-kv[1], kv[0]))]
    if missing:
        lines.append(str(UnsupportedOps(missing)))
    else:
        lines.append("unsupported ops: none")
    return lines


@typed_errors
def cmd_info(args) -> int:
    from .frontend.dims import name_dims
    from .frontend.load import load_model
    from .lower.from_graph import find_unsupported
    model = name_dims(load_model(args.model))     # unnamed dims as --dim names them
    opsets = {(o.domain if o.domain != "ai.onnx" else ""): o.version for o in model.opset_import}
    missing = find_unsupported(model.graph.node, opsets)
    print("\n".join(_info_lines(model, missing)))
    return EXIT_ERROR if missing else 0


# ---- demo -------------------------------------------------------------------------------------

def _median_ms(fn, runs: int) -> float:
    fn()  # warm-up: page in weights, start the pool
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def _run_demo(args, out_dir: Path) -> int:
    from . import driver
    if not DEMO_MODEL.is_file():
        raise CliError(f"the bundled demo model is missing ({DEMO_MODEL})")
    start = time.perf_counter()
    model = driver.compile(DEMO_MODEL, target=args.target, out_dir=out_dir, name="demo",
                           num_threads=args.threads, backend=args.backend)
    kept = f" -> {model.path}" if args.output else " (into a temporary folder: -o keeps it)"
    print(f"compiled {DEMO_MODEL.name} for {args.target} in {time.perf_counter() - start:.2f} s"
          + kept)
    rng = np.random.default_rng(args.seed)
    feed = {a.name: rng.standard_normal(a.shape).astype(a.dtype) for a in model.get_inputs()}
    got = model.run(None, feed)
    want, ref_name = reference_outputs(DEMO_MODEL, feed)
    np.set_printoptions(precision=6, suppress=True)
    err = 0.0
    for arg, g, w in zip(model.get_outputs(), got, want, strict=True):
        print(f"output {arg.name} {arg.dtype}{arg.shape}:\n{g}")
        err = max(err, float(np.max(np.abs(g.astype(np.float64) - w))) if g.size else 0.0)
    ms = _median_ms(lambda: model.run(None, feed), args.runs)
    print(f"max abs error vs {ref_name}: {err:.3g}")
    print(f"median run time: {ms:.4g} ms over {args.runs} runs "
          f"({model.get_num_threads()} thread(s))")
    if not err <= DEMO_TOLERANCE:  # also catches NaN
        print(f"onnxc: error: demo output differs from the reference by {err:.3g} "
              f"(> {DEMO_TOLERANCE})", file=sys.stderr)
        return 1
    return 0


def cmd_demo(args) -> int:
    if args.output:
        return _run_demo(args, Path(args.output))
    with tempfile.TemporaryDirectory(prefix="onnxc_demo_") as tmp:
        return _run_demo(args, Path(tmp))


# ---- argument parsing -------------------------------------------------------------------------

def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _add_compile(sub) -> None:
    p = sub.add_parser("compile", help="compile a model (also: onnxc MODEL ...)",
                       description="Compile an ONNX model into OUT/NAME.so, OUT/NAME.h and "
                                   "OUT/NAME-config.cmake.")
    p.add_argument("model", help="the .onnx file")
    p.add_argument("--target", default="host",
                   help=f"target tag, one of {', '.join(_target_names())}, or a triple "
                        "with overrides, e.g. 'aarch64-linux-gnu -mcpu=cortex-a72 -mattr=+sve' "
                        "(default: host)")
    p.add_argument("-o", "--output", default="out", metavar="OUT_DIR",
                   help="output folder (default: out)")
    p.add_argument("--backend", choices=BACKENDS, help=BACKEND_HELP)
    p.add_argument("--name", help="C name of the library and its symbols (default: the model "
                                  "file's stem, sanitized)")
    p.add_argument("--schedule", metavar="FILE.json",
                   help="schedule directives per kernel (JSON), replacing the default ones")
    p.add_argument("--dump-ir", metavar="STAGE",
                   help=f"print the IR after STAGE (or after-STAGE), or after every stage "
                        f"with 'all'; stages: {', '.join(_pipeline_stages())}")
    add_dim_option(p)
    p.add_argument("--tf32", action="store_true",
                   help="GPU targets: run float32 MatMul, Gemm and Conv on the tensor cores "
                        "with operands rounded to TF32 (10 mantissa bits; faster, about 1e-3 "
                        "relative error)")
    p.set_defaults(func=cmd_compile)


def _add_info(sub) -> None:
    p = sub.add_parser("info", help="describe a model and list the ops onnxc cannot compile",
                       description="Print a model's inputs, outputs, opsets and op histogram, "
                                   "and every unsupported op with its node names (exit 2 if "
                                   "there are any).")
    p.add_argument("model", help="the .onnx file")
    p.set_defaults(func=cmd_info)


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="compile and run the bundled demo model",
                       description="Compile the bundled demo model (a small conv net), run it on "
                                   "a seeded random input, compare with onnxruntime (or "
                                   "onnx.reference) and time it. Exit 1 if the max abs error "
                                   f"exceeds {DEMO_TOLERANCE}.")
    p.add_argument("--target", default="host", help="target tag (default: host)")
    p.add_argument("--runs", type=_positive_int, default=100, help="timed runs (default: 100)")
    p.add_argument("--backend", choices=BACKENDS, help=BACKEND_HELP)
    p.add_argument("--threads", type=_positive_int, help="thread count (default: "
                   "ONNXC_NUM_THREADS, else all cores)")
    p.add_argument("--seed", type=int, default=0, help="input seed (default: 0)")
    p.add_argument("-o", "--output", metavar="OUT_DIR",
                   help="keep the build in OUT_DIR (default: a temporary folder)")
    p.set_defaults(func=cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onnxc",
        description="Ahead-of-time compiler from ONNX models to standalone C libraries. "
                    "`onnxc MODEL.onnx [options]` is short for `onnxc compile MODEL.onnx`.")
    parser.add_argument("--version", action="version", version=f"onnxc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_compile(sub)
    _add_info(sub)
    _add_demo(sub)
    add_bench(sub, _positive_int)
    add_verify(sub)
    return parser


def _normalize(argv: list[str]) -> list[str]:
    """`onnxc MODEL ...` means `onnxc compile MODEL ...`."""
    if argv and argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version"):
        return ["compile", *argv]
    return argv


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    warnings.showwarning = _show_warning
    parser = build_parser()
    try:
        args = parser.parse_args(_normalize(argv))
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_ERROR
        return args.func(args)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    except OnnxcError as exc:
        print(f"onnxc: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # `onnxc ... | head`: stop quietly, like other Unix tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # e.g. the output folder cannot be written
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"onnxc: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("onnxc: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  a compiler bug: still one line, and how to see more
        if os.environ.get("ONNXC_DEBUG"):
            raise
        print(f"onnxc: internal error: {type(exc).__name__}: {str(exc)[:300]} (a bug in onnxc: "
              "please report it with the model; ONNXC_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return EXIT_ERROR


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings about the model as one line each, like errors."""
    print(f"onnxc: warning: {message}", file=file or sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
