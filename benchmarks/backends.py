"""Compare onnxc's two backends (C and LLVM) on the benchmark models (batch 1, CPU).

Usage: python benchmarks/backends.py [--threads 1 2] [--models ...] [--budget S]

For every model, one process compiles it with `--backend c` and `--backend llvm` for the
host, checks both against onnxruntime, and times them alternately (one C run, one LLVM run,
repeated) at each thread count. Reported times are medians in milliseconds; the ratio is
LLVM / C (below 1: the LLVM build is faster).
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # as run.py: before numpy

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

from benchmarks.models import DEFAULT_DIR, MODEL_NAMES, ensure_models, make_feed  # noqa: E402
from benchmarks.run import ort_session, rel_error, time_alternating  # noqa: E402

BACKENDS = ("c", "llvm")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES,
                   metavar="NAME")
    p.add_argument("--models-dir", type=Path, default=DEFAULT_DIR)
    p.add_argument("--runs", type=int, default=0,
                   help="timed runs per backend (default: fit --budget seconds)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--budget", type=float, default=4.0,
                   help="seconds of timed runs per model and thread count")
    return p.parse_args(argv)


def compile_both(path: Path) -> dict:
    import onnxc

    built = {}
    for backend in BACKENDS:
        start = time.perf_counter()
        model = onnxc.compile(str(path), target="host", backend=backend)
        built[backend] = (model, time.perf_counter() - start)
    return built


def bench_model(name: str, path: Path, args) -> list[dict]:
    built = compile_both(path)
    feed = make_feed(name)
    rows = []
    for n in args.threads:
        want = ort_session(path, n).run(None, feed)
        errors = {}
        for backend, (model, _) in built.items():
            model.set_num_threads(n)
            errors[backend] = rel_error(model.run(None, feed), want)
        (c_ms, llvm_ms), runs = time_alternating(
            [lambda m=built[b][0]: m.run(None, feed) for b in BACKENDS], args)
        rows.append({"model": name, "threads": n, "c_ms": c_ms, "llvm_ms": llvm_ms,
                     "ratio": llvm_ms / c_ms, "runs": runs,
                     "c_compile_s": built["c"][1], "llvm_compile_s": built["llvm"][1],
                     "c_err": errors["c"], "llvm_err": errors["llvm"]})
        print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| model | threads | C ms | LLVM ms | ratio (LLVM/C) | C compile s | "
             "LLVM compile s | rel err C | rel err LLVM |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['threads']} | {r['c_ms']:.3f} | {r['llvm_ms']:.3f} | "
              f"{r['ratio']:.2f} | {r['c_compile_s']:.1f} | {r['llvm_compile_s']:.1f} | "
              f"{r['c_err']:.1e} | {r['llvm_err']:.1e} |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    paths = ensure_models(args.models_dir, args.models)
    rows = []
    for name in args.models:
        print(f"{name}: compiling with both backends and timing", file=sys.stderr, flush=True)
        rows += bench_model(name, paths[name], args)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
