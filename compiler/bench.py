"""`onnxc bench MODEL`: onnxc against onnxruntime in one process, alternating, same threads."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

from .backend.emit import BACKEND_HELP, BACKENDS
from .errors import OnnxcError
from .frontend import import_model, load_model
from .frontend.dims import add_dim_option, parse_dims

WARMUP_RUNS = 5


def count_flops(model_path, dim_values: dict[str, int] | None = None) -> int:
    """2 x multiply-adds of Conv, Gemm and MatMul nodes (what GFLOP/s figures count), with
    the symbolic dimensions at dim_values."""
    model = model_path
    if dim_values:
        from .frontend.dims import name_dims, specialize
        model = specialize(name_dims(load_model(model_path)), dim_values)
    g = import_model(model)
    total = 0
    for node in g.nodes:
        out = g.values[node.outputs[0]].shape
        if node.op_type == "Conv":
            w = g.values[node.inputs[1]].shape
            total += 2 * int(np.prod(out)) * int(np.prod(w[1:]))
        elif node.op_type in ("Gemm", "MatMul"):
            a = g.values[node.inputs[0]].shape
            k = a[0] if node.op_type == "Gemm" and node.attr("transA", 0) else a[-1]
            total += 2 * int(np.prod(out)) * int(k)
    return total


def _ort_session(path: Path, threads: int):
    try:
        import onnxruntime as ort
    except ImportError:
        raise OnnxcError("onnxc bench needs onnxruntime (pip install onnxruntime)") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    # workers stop spinning when a run returns, as onnxc's do: fair when runs alternate
    opts.add_session_config_entry("session.force_spinning_stop", "1")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _alternate(fns, runs: int) -> list[float]:
    """Median milliseconds of each function, timed one after another `runs` times."""
    times = [[] for _ in fns]
    for _ in range(WARMUP_RUNS):
        for fn in fns:
            fn()
    for _ in range(runs):
        for t, fn in zip(times, fns):
            start = time.perf_counter()
            fn()
            t.append(time.perf_counter() - start)
    return [float(np.median(t)) * 1e3 for t in times]


def bench(model_path, threads=(1, 2), runs: int = 100, target: str = "host",
          backend: str | None = None, dims: dict | None = None) -> list[dict]:
    """One row per thread count and dimension case (verify.dim_cases: the --dim ranges' low
    and high ends), all from one library."""
    from . import driver
    from .verify import dim_cases, random_inputs
    path = Path(model_path)
    proto = onnx.load(str(path), load_external_data=False)
    cases = dim_cases(proto, dims)
    with tempfile.TemporaryDirectory(prefix="onnxc_bench_") as tmp:
        start = time.perf_counter()
        model = driver.compile(path, target=target, out_dir=tmp, backend=backend, dims=dims)
        compile_s = time.perf_counter() - start
        rows = []
        for values in cases:
            feed, flops = random_inputs(proto, 0, values), count_flops(path, values)
            for n in threads:
                model.set_num_threads(n)
                session = _ort_session(path, n)
                got, want = model.run(None, feed), session.run(None, feed)
                err = max(float(np.abs(g - w).max() / max(np.abs(w).max(), 1e-30))
                          for g, w in zip(got, want))
                ours, theirs = _alternate([lambda f=feed: model.run(None, f),
                                           lambda s=session, f=feed: s.run(None, f)], runs)
                rows.append({"threads": n, "onnxc_ms": ours, "ort_ms": theirs,
                             "ratio": ours / theirs, "rel_err": err, "compile_s": compile_s,
                             "gflops": flops / ours / 1e6 if flops else 0.0,
                             "dims": " ".join(f"{k}={v}" for k, v in values.items())})
    return rows


def format_table(name: str, rows: list[dict]) -> str:
    lines = ["| model | threads | onnxc ms | onnxruntime ms | ratio | GFLOP/s | rel err |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {' '.join(filter(None, (name, r.get('dims'))))} | {r['threads']} | "
              f"{r['onnxc_ms']:.3f} | {r['ort_ms']:.3f} | "
              f"{r['ratio']:.2f} | {r['gflops']:.1f} | {r['rel_err']:.1e} |" for r in rows]
    return "\n".join(lines)


def cmd_bench(args) -> int:
    rows = bench(args.model, tuple(args.threads), args.runs, args.target, args.backend,
                 parse_dims(args.dim))
    print(f"compiled in {rows[0]['compile_s']:.2f} s; medians of {args.runs} alternating runs")
    print(format_table(Path(args.model).stem, rows))
    return 0


def add_bench(sub, positive_int) -> None:
    p = sub.add_parser("bench", help="time onnxc against onnxruntime on a model",
                       description="Compile MODEL for the host, check it against onnxruntime, "
                                   "then time both in this process, alternating, at each thread "
                                   "count; prints medians, the ratio onnxc/onnxruntime and "
                                   "GFLOP/s (Conv/Gemm/MatMul multiply-adds x 2).")
    p.add_argument("model", help="the .onnx file")
    p.add_argument("--threads", type=positive_int, nargs="+", default=[1, 2],
                   help="thread counts (default: 1 2)")
    p.add_argument("--runs", type=positive_int, default=100, help="timed runs (default: 100)")
    p.add_argument("--target", default="host", help="target tag (default: host)")
    p.add_argument("--backend", choices=BACKENDS, help=BACKEND_HELP)
    add_dim_option(p, "; bench times the library at every range's low and high ends")
    p.set_defaults(func=cmd_bench)
