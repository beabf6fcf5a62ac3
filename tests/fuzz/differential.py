"""The differential fuzzer: variants of the seed models (tests/fuzz/variants.py) compiled by
onnxc (C backend) and run on random inputs, compared with onnxruntime. Each engine runs in a
worker process of its own (tests/fuzz/worker.py), so a crash or a hang is an outcome.

    python -m tests.fuzz.differential --seconds 180 --seed 0 --out DIR [--sanitize]

Outcomes: ok, both-refuse, onnxc-refuses-ort-accepts, ort-refuses-onnxc-accepts,
mismatch-shape (shape or dtype), mismatch-value (float32/64 beyond rtol 1e-4, atol 1e-5;
float16 1e-2; integers and bools exact), crash (the onnxc worker died: a signal, a sanitizer
report), hang (no answer in --timeout seconds) and exception (onnxc raised something other
than an OnnxcError). Every model of an outcome other than ok and both-refuse is written to
DIR/<outcome>/<n>/ (model.onnx, inputs.npz, report.json), and the distinct failures (by
outcome, op types and error location) are listed at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from tests.fuzz import mutate, variants
from tests.fuzz.seeds import seeds

ROOT = Path(__file__).resolve().parents[2]
OUTCOMES = ("ok", "both-refuse", "onnxc-refuses-ort-accepts", "ort-refuses-onnxc-accepts",
            "mismatch-shape", "mismatch-value", "crash", "hang", "exception")
FAILING = frozenset(OUTCOMES) - {"ok", "both-refuse"}
# Outcomes that are onnxc bugs for sure (the others may be a legitimate refusal).
BUGS = frozenset({"mismatch-shape", "mismatch-value", "crash", "hang", "exception"})
TOLERANCE = {"float32": (1e-4, 1e-5), "float64": (1e-4, 1e-5), "float16": (1e-2, 1e-2)}
RESTART_EVERY = 200     # requests: a worker keeps every library it loaded


class Worker:
    """A tests/fuzz/worker.py process, restarted after a crash or a hang."""

    def __init__(self, env: dict[str, str] | None = None):
        self.env, self.proc, self.served = env, None, 0
        self.log = tempfile.NamedTemporaryFile(prefix="onnxc_fuzz_worker_", suffix=".log")

    def _start(self) -> None:
        self.log.seek(0)
        self.log.truncate()
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz.worker"], cwd=ROOT,
                                     env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        self.served = 0

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def request(self, req: dict, timeout: float) -> dict:
        if self.proc is None or self.served >= RESTART_EVERY:
            self.stop()
            self._start()
        self.served += 1
        self.log.seek(0)
        self.log.truncate()
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else None
        if line:
            return json.loads(line)
        status = "hang" if line is None else "crash"
        code = None
        if status == "crash":
            try:
                code = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.stop()
        from onnxc.build.sanitize import findings
        log = Path(self.log.name).read_text(errors="replace")
        return {"status": status, "error": "\n".join([*findings(log), log[-4000:]]),
                "returncode": code}


def environment(sanitize: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("ONNXC_LIBRARY_CACHE",) and not k.startswith("PYTEST_")}
    env["ONNXC_NUM_THREADS"] = env.get("ONNXC_NUM_THREADS", "2")
    if sanitize:
        from onnxc.build.sanitize import environment as sanitized
        env = sanitized(("address", "undefined"), ["gcc"], env)
    return env


def feed_of(model: onnx.ModelProto, ch: mutate.Chooser) -> dict[str, np.ndarray] | None:
    """Random inputs of the declared types; None where a dim is not a small positive value."""
    weights = {t.name for t in model.graph.initializer}
    feed = {}
    for info in model.graph.input:
        if info.name in weights:
            continue
        t = info.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
        if any(d < 1 or d > 64 for d in dims) or not t.HasField("shape"):
            return None
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)
        feed[info.name] = mutate.random_array(dims, dtype, ch)
    return feed


def compare(got: list[np.ndarray], want: list[np.ndarray]) -> tuple[str, str]:
    """("ok" | "mismatch-shape" | "mismatch-value", what differs)."""
    if len(got) != len(want):
        return "mismatch-shape", f"{len(got)} outputs, onnxruntime {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        if g.shape != w.shape or g.dtype != w.dtype:
            return "mismatch-shape", f"output {i}: {g.dtype}{list(g.shape)}, onnxruntime " \
                                     f"{w.dtype}{list(w.shape)}"
        if g.dtype.kind == "f":
            rtol, atol = TOLERANCE.get(g.dtype.name, (1e-4, 1e-5))
            if not np.allclose(g, w, rtol=rtol, atol=atol, equal_nan=True):
                err = np.nanmax(np.abs(g.astype(np.float64) - w.astype(np.float64)))
                return "mismatch-value", f"output {i}: max abs error {err:.3g}"
        elif not np.array_equal(g, w):
            return "mismatch-value", f"output {i}: {int(np.sum(g != w))} elements differ"
    return "ok", ""


def classify(onnxc: dict, ort: dict, got_path: Path, want_path: Path) -> tuple[str, str]:
    status = onnxc["status"]
    if status in ("crash", "hang", "exception"):
        return status, onnxc.get("error", "")
    if status == "refused":
        return ("both-refuse" if ort["status"] != "ok" else "onnxc-refuses-ort-accepts"), \
            onnxc["error"]
    if ort["status"] != "ok":
        return "ort-refuses-onnxc-accepts", ort.get("error", "")
    with np.load(got_path) as g, np.load(want_path) as w:
        return compare([g[k] for k in sorted(g.files, key=lambda k: int(k[3:]))],
                       [w[k] for k in sorted(w.files, key=lambda k: int(k[3:]))])


@dataclass
class Campaign:
    counts: Counter = field(default_factory=Counter)
    distinct: dict = field(default_factory=dict)    # signature -> (folder, detail)
    failing: int = 0


def _signature(outcome: str, model: onnx.ModelProto, onnxc: dict, detail: str) -> str:
    ops = ",".join(sorted({n.op_type for n in model.graph.node}))
    where = onnxc.get("where") or (detail.strip().splitlines() or [""])[0][:80]
    if outcome in ("crash", "hang"):
        where = f"exit {onnxc.get('returncode')}"
    if outcome in ("mismatch-shape", "mismatch-value"):
        where = ""
    return f"{outcome} [{ops}] {where}".rstrip()


def _save(out: Path, outcome: str, n: int, case: Path, report: dict) -> Path:
    folder = out / outcome / f"{n:04d}"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("model.onnx", "inputs.npz"):
        shutil.copy(case / name, folder / name)
    (folder / "report.json").write_text(json.dumps(report, indent=1, default=str))
    return folder


def one_case(workers: dict, model: onnx.ModelProto, feed: dict, case: Path,
             timeout: float) -> tuple[str, str, dict]:
    case.mkdir(parents=True, exist_ok=True)
    onnx.save(model, case / "model.onnx")
    np.savez(case / "inputs.npz", **feed)
    replies = {}
    for engine in ("ort", "onnxc"):
        work = case / f"{engine}-build"
        work.mkdir(exist_ok=True)
        replies[engine] = workers[engine].request(
            {"engine": engine, "model": str(case / "model.onnx"),
             "inputs": str(case / "inputs.npz"), "outputs": str(case / f"{engine}.npz"),
             "work": str(work)}, timeout)
    outcome, detail = classify(replies["onnxc"], replies["ort"], case / "onnxc.npz",
                               case / "ort.npz")
    return outcome, detail, replies


def campaign(seconds: float, seed: int, out: Path | None, timeout: float = 60.0,
             sanitize: bool = False, log=print) -> Campaign:
    ch, result = mutate.RandomChooser(seed), Campaign()
    models = seeds()
    names = sorted(models)
    env = environment(sanitize)
    workers = {"onnxc": Worker(env), "ort": Worker(environment(False))}
    scratch = Path(tempfile.mkdtemp(prefix="onnxc_diff_"))
    end, n = time.monotonic() + seconds, 0
    try:
        while time.monotonic() < end:
            name = ch.pick(names)
            model, changes = variants.vary(models[name], ch)
            feed = feed_of(model, ch)
            if feed is None:
                result.counts["skipped (no feed)"] += 1
                continue
            n += 1
            case = scratch / f"{n:05d}"
            outcome, detail, replies = one_case(workers, model, feed, case, timeout)
            result.counts[outcome] += 1
            if outcome in FAILING:
                result.failing += 1
                report = {"seed_model": name, "changes": changes, "outcome": outcome,
                          "detail": detail, "replies": replies}
                folder = _save(out, outcome, n, case, report) if out else case
                sig = _signature(outcome, model, replies["onnxc"], detail)
                if sig not in result.distinct:
                    result.distinct[sig] = (folder, f"{name} {changes}: {detail[:300]}")
                    log(f"new: {sig}\n     {name} {changes}: {detail[:300]}")
            shutil.rmtree(case, ignore_errors=True)
    finally:
        for w in workers.values():
            w.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return result


def report(result: Campaign) -> str:
    lines = ["outcome                         count"]
    for outcome in OUTCOMES + tuple(k for k in result.counts if k not in OUTCOMES):
        lines.append(f"  {outcome:<30} {result.counts.get(outcome, 0)}")
    lines.append(f"{len(result.distinct)} distinct failures:")
    for sig, (folder, detail) in sorted(result.distinct.items()):
        lines.append(f"  {sig}\n      {folder}\n      {detail[:240]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds one engine may take on one model")
    parser.add_argument("--out", type=Path, help="write every failing model here")
    parser.add_argument("--sanitize", action="store_true",
                        help="build and run onnxc's libraries with ASan+UBSan")
    args = parser.parse_args(argv)
    result = campaign(args.seconds, args.seed, args.out, args.timeout, args.sanitize)
    print(report(result))
    return 1 if any(result.counts.get(o) for o in BUGS) else 0


if __name__ == "__main__":
    sys.exit(main())
