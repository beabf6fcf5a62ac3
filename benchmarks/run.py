"""Compare onnxc against onnxruntime on the benchmark models (batch 1, CPU).

Usage: python benchmarks/run.py [--threads 1 2] [--models ...] [--runs N] [--warmup N]
                                [--dynamic] [--json FILE]

For every model and thread count, one process compiles the model with
`onnxc.compile(path, target="host")`, opens an onnxruntime session with the same
number of intra-op threads (one inter-op thread, sequential execution), checks that the
outputs agree, and times both runtimes alternately (one onnxc run, one onnxruntime run,
repeated) after a warm-up. Reported times are medians in milliseconds.
"""

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

# numpy's OpenBLAS threads spin after each numpy call and would take the second core
# from whichever runtime runs next: set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

# Running as a script puts benchmarks/ on sys.path; the package needs its parent.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

from benchmarks.flops import count_flops  # noqa: E402
from benchmarks.models import DEFAULT_DIR, MODEL_NAMES, ensure_models, make_feed  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument(
        "--models",
        nargs="+",
        default=list(MODEL_NAMES),
        choices=MODEL_NAMES,
        metavar="NAME",
    )
    p.add_argument(
        "--models-dir",
        type=Path,
        default=DEFAULT_DIR,
        help="where the .onnx files live (missing ones are generated)",
    )
    p.add_argument(
        "--runs",
        type=int,
        default=0,
        help="timed runs per runtime (default: fit --budget seconds)",
    )
    p.add_argument(
        "--budget",
        type=float,
        default=2.0,
        help="seconds of timing per model and thread count when --runs=0",
    )
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument(
        "--tol",
        type=float,
        default=1e-3,
        help="max relative error before a result counts as a failure",
    )
    p.add_argument(
        "--ort-spin",
        choices=sorted(ORT_SPIN),
        default="stop",
        help="onnxruntime worker spinning: 'stop' (default) spins within a "
        "run only, 'on' also between runs, 'off' never",
    )
    p.add_argument(
        "--ort-only",
        action="store_true",
        help="time onnxruntime alone (no onnxc), e.g. for a baseline",
    )
    p.add_argument(
        "--dynamic",
        action="store_true",
        help="also compile each model exported with a symbolic batch (bert4: and sequence) "
        "with no flags, and time that generic library at the benchmark shape beside the "
        "static one and onnxruntime",
    )
    p.add_argument("--json", type=Path, help="also write the results to this file")
    return p.parse_args(argv)


# Idle onnxruntime workers that keep spinning after a run steal the cores from the
# onnxc run that follows (measured: 2-3x slower at 2 threads on 2 cores), so by default
# they stop spinning when a run returns but still spin within it.
ORT_SPIN = {
    "on": {},
    "stop": {"session.force_spinning_stop": "1"},
    "off": {"session.intra_op.allow_spinning": "0"},
}


def ort_session(path, threads: int, spin: str = "stop") -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    for key, value in ORT_SPIN[spin].items():
        opts.add_session_config_entry(key, value)
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def compile_onnxc(path):
    """Compile with onnxc; return (compiled model, seconds)."""
    import onnxc

    start = time.perf_counter()
    model = onnxc.compile(str(path), target="host")
    return model, time.perf_counter() - start


def rel_error(got: list, want: list) -> float:
    """max|a-b| / max|b| over all outputs (inf if shapes, counts or NaNs differ)."""
    if len(got) != len(want):
        return float("inf")
    err, scale = 0.0, 0.0
    for a, b in zip(got, want):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            return float("inf")
        diff = np.abs(a - b)
        if np.isnan(diff).any() and not np.array_equal(a, b, equal_nan=True):
            return float("inf")
        err = max(err, float(np.nanmax(diff, initial=0.0)))
        scale = max(scale, float(np.max(np.abs(b), initial=0.0)))
    return err / scale if scale else err


def time_alternating(calls: list, args) -> tuple:
    """Median ms of each call, timed round-robin; returns (medians, runs)."""
    runs, warmup = args.runs, args.warmup
    start = time.perf_counter()
    for _ in range(max(warmup, 1)):
        for call in calls:
            call()
    if runs <= 0:
        per_round = (time.perf_counter() - start) / max(warmup, 1)
        runs = int(min(max(args.budget / per_round, 20), 2000))
    samples = [[] for _ in calls]
    gc.disable()
    try:
        for _ in range(runs):
            for call, times in zip(calls, samples):
                t0 = time.perf_counter()
                call()
                times.append(time.perf_counter() - t0)
    finally:
        gc.enable()
    return [statistics.median(t) * 1e3 for t in samples], runs


def check_onnxc(compiled, sess, feed, threads: int) -> float:
    """Set onnxc's thread count, check its inputs and return its relative error."""
    compiled.set_num_threads(threads)
    names = [i.name for i in compiled.get_inputs()]
    if names != [i.name for i in sess.get_inputs()]:
        raise ValueError(f"input names differ: onnxc {names}")
    return rel_error(compiled.run(None, feed), sess.run(None, feed))


def bench(name: str, path, compiled, threads: int, args, generic=None) -> dict:
    """Check and time one model at one thread count (onnxruntime only if no onnxc); with
    generic, the dynamic model's library too, in the same alternation."""
    feed = make_feed(name)
    sess = ort_session(path, threads, spin=args.ort_spin)
    calls = [lambda: sess.run(None, feed)]
    if compiled is None:
        (ort_ms,), runs = time_alternating(calls, args)
        return {"ort_ms": ort_ms, "runs": runs}
    err = check_onnxc(compiled, sess, feed, threads)
    extra = {}
    if generic is not None:
        extra["generic_rel_err"] = check_onnxc(generic, sess, feed, threads)
        calls.append(lambda: generic.run(None, feed))
    times, runs = time_alternating([lambda: compiled.run(None, feed), *calls], args)
    onnxc_ms, ort_ms = times[:2]
    if generic is not None:
        extra.update(generic_ms=times[2], generic_vs_static=times[2] / onnxc_ms,
                     generic_vs_ort=times[2] / ort_ms)
    return {
        "onnxc_ms": onnxc_ms,
        "ort_ms": ort_ms,
        "ratio": onnxc_ms / ort_ms,
        "rel_err": err,
        "runs": runs,
        **extra,
    }


def compile_generic(name: str, models_dir: Path):
    """The model exported with symbolic dimensions, compiled with no flags; (model, s)."""
    import onnxc

    from benchmarks.models import export_bytes

    path = models_dir / f"{name}_dynamic.onnx"
    if not path.exists():
        path.write_bytes(export_bytes(name, dynamic_batch=True))
    start = time.perf_counter()
    model = onnxc.compile(str(path), target="host")
    return model, time.perf_counter() - start


def bench_model(name: str, path, args) -> list:
    base = {"model": name, "flops": count_flops(path)}
    compiled = None
    if not args.ort_only:
        try:
            compiled, base["compile_s"] = compile_onnxc(path)
        except Exception as exc:  # noqa: BLE001 - report any failure in the table
            return [
                {**base, "threads": n, "error": f"compile: {exc!r}"}
                for n in args.threads
            ]
    generic = None
    if args.dynamic and compiled is not None:
        try:
            generic, base["generic_compile_s"] = compile_generic(name, args.models_dir)
        except Exception as exc:  # noqa: BLE001 - report any failure in the table
            base["generic_error"] = f"compile: {exc!r}"
    rows = []
    for n in args.threads:
        row = {**base, "threads": n}
        try:
            row.update(bench(name, path, compiled, n, args, generic))
        except Exception as exc:  # noqa: BLE001 - report any failure in the table
            row["error"] = f"run: {exc!r}"
        print(f"  {name} x{n}: {row}", file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def failed(row: dict, tol: float) -> bool:
    return "error" in row or not row.get("rel_err", 0.0) <= tol


def fmt_row(r: dict, tol: float) -> str:
    if "error" in r:
        return f"| {r['model']} | {r['threads']} | error: {r['error'][:80]} | | | | | |"
    ms = [r.get(k) for k in ("onnxc_ms", "ort_ms")]
    cells = [f"{t:.3f}" if t else "-" for t in ms]
    cells.append(f"{r['ratio']:.2f}" if "ratio" in r else "-")
    cells.append(f"{r['rel_err']:.1e}" if "rel_err" in r else "-")
    cells[-1] += " FAIL" if failed(r, tol) else ""
    cells += [f"{r['flops'] / (t * 1e6):.1f}" if t else "-" for t in ms]
    return f"| {r['model']} | {r['threads']} | " + " | ".join(cells) + " |"


def markdown(rows: list, tol: float) -> str:
    head = (
        "| model | threads | onnxc ms | ort ms | ratio (onnxc/ort) | rel err | "
        "onnxc GFLOP/s | ort GFLOP/s |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    return "\n".join([head, *(fmt_row(r, tol) for r in rows)])


def environment(args) -> dict:
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "onnxruntime": ort.__version__,
        "ort_spin": args.ort_spin,
    }


def dynamic_markdown(rows: list) -> str:
    """The generic (dynamic-shape) library beside the static one, at the benchmark shape."""
    head = (
        "| model | threads | static ms | generic ms | ort ms | generic / static | "
        "generic / ort | compile static s | compile generic s |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in rows:
        if "generic_ms" not in r:
            why = r.get("generic_error") or r.get("error", "")
            lines.append(f"| {r['model']} | {r['threads']} | error: {why[:80]} | | | | | | |")
            continue
        lines.append(
            f"| {r['model']} | {r['threads']} | {r['onnxc_ms']:.3f} | {r['generic_ms']:.3f} | "
            f"{r['ort_ms']:.3f} | {r['generic_vs_static']:.2f} | {r['generic_vs_ort']:.2f} | "
            f"{r['compile_s']:.1f} | {r['generic_compile_s']:.1f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    paths = ensure_models(args.models_dir, args.models)
    rows = []
    for name in args.models:
        print(f"{name}: compiling and timing", file=sys.stderr, flush=True)
        rows += bench_model(name, paths[name], args)
    print(markdown(rows, args.tol))
    if args.dynamic:
        print("\n" + dynamic_markdown(rows))
    if args.json:
        args.json.write_text(
            json.dumps({"environment": environment(args), "results": rows}, indent=2)
            + "\n"
        )
    return 1 if any(failed(r, args.tol) for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
