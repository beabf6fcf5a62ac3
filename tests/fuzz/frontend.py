"""Fuzzing the frontend and the lowering: input bytes -> ONNX model bytes -> onnxc.driver.plan
and `onnxc info`. The property: a model is planned (or described) or refused with an
OnnxcError; IRError (the loop IR failed verification: a compiler bug) and every other exception
are failures, and so is an input that takes more than TIMEOUT_S.

    python -m tests.fuzz.frontend --seconds 120 --seed 0 --out DIR   (deterministic mutations)
    python -m tests.fuzz.frontend --atheris [--out DIR] [libFuzzer flags, e.g. -max_total_time=60]
    python -m tests.fuzz.frontend --corpus      (the regression corpus's frontend cases, as JSON)

Both run TestOneInput: its first byte picks how the rest becomes a model (the bytes as they
are, a structure-aware mutation of a seed model driven by the bytes, or both); the
deterministic campaign feeds it bytes from a seeded random.Random and mutates the seeds' bytes
itself. Failures are deduplicated by exception type and the innermost onnxc frame, and each
first input is written to DIR (atheris also writes its crash-* files)."""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import re
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests.fuzz import mutate
from tests.fuzz.seeds import seeds

TIMEOUT_S = 20.0
MEMORY_LIMIT = 6 << 30      # bytes of address space for a campaign's process
MODES = ("raw", "structural", "structural+raw")


class Hang(BaseException):   # not an Exception: onnxc's `except Exception` cannot swallow it
    pass


@dataclass(frozen=True)
class Failure:
    stage: str          # "plan" or "info"
    kind: str           # exception type name, "IRError" or "hang"
    where: str          # innermost frame in onnxc: file:line function
    message: str

    @property
    def signature(self) -> str:
        return f"{self.stage} {self.kind} at {self.where}"


def _innermost_onnxc_frame(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "/compiler/" in f.filename or "/onnxc/" in f.filename]
    if not frames:
        return "outside onnxc"
    f = frames[-1]
    tail = f.filename.split("/compiler/")[-1].split("/onnxc/")[-1]
    return f"{tail}:{f.lineno} {f.name}"


def _info(path: Path) -> None:
    from onnxc.cli import main
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        main(["info", str(path)])     # OnnxcError is its exit status 2; the rest escapes


def _plan(path: Path) -> None:
    from onnxc.driver import plan
    plan(path, name="fuzz")


def _on_alarm(signum, frame):
    raise Hang


def check_frontend(data: bytes, work: Path, timeout_s: float = TIMEOUT_S,
                   must_refuse: bool = False) -> Failure | None:
    """None where plan and info each succeed or raise an OnnxcError other than IRError
    (with must_refuse: plan must raise it)."""
    return checked(data, work, timeout_s, must_refuse)[1]


def checked(data: bytes, work: Path, timeout_s: float = TIMEOUT_S,
            must_refuse: bool = False) -> tuple[str, Failure | None]:
    """check_frontend's failure, after what plan did: "planned", "refused" or "failure"."""
    from onnxc.errors import IRError, OnnxcError
    path = work / "fuzz.onnx"
    path.write_bytes(data)
    planned = "planned"
    for stage, run in (("plan", _plan), ("info", _info)):
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
        try:
            run(path)
            if must_refuse and stage == "plan":
                return "failure", Failure(stage, "accepted", "", "planned a model it must refuse")
        except Hang as exc:
            return "failure", Failure(stage, "hang", _innermost_onnxc_frame(exc),
                                      f"over {timeout_s} s")
        except IRError as exc:      # the kernel's op names the lowering that built it
            op = re.sub(r"^k_|_\d+$", "", str(exc).split(":")[0])
            return "failure", Failure(stage, "IRError", f"{_innermost_onnxc_frame(exc)} ({op})",
                                      str(exc)[:500])
        except OnnxcError:
            planned = "refused" if stage == "plan" else planned
        except Exception as exc:  # noqa: BLE001 - the property under test
            return "failure", Failure(stage, type(exc).__name__, _innermost_onnxc_frame(exc),
                                      str(exc)[:500])
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    return planned, None


_SEEDS: list[bytes] = []


def seed_bytes() -> list[bytes]:
    if not _SEEDS:
        _SEEDS.extend(m.SerializeToString() for m in seeds().values())
    return _SEEDS


def input_model(data: bytes) -> bytes:
    """The model bytes that fuzzer input stands for (its first byte picks the mode)."""
    if not data:
        return b""
    mode, rest = MODES[data[0] % len(MODES)], data[1:]
    if mode == "raw":
        return rest
    import onnx
    ch = mutate.BytesChooser(rest)
    model = onnx.load_from_string(ch.pick(seed_bytes()))
    out = mutate.structural(model, ch)
    return mutate.raw(out, ch) if mode == "structural+raw" else out


class FuzzFailure(Exception):
    pass


_WORK: list[Path] = []


def TestOneInput(data: bytes) -> None:  # noqa: N802 - atheris' name
    if not _WORK:
        _WORK.append(Path(tempfile.mkdtemp(prefix="onnxc_fuzz_")))
    failure = check_frontend(input_model(data), _WORK[0])
    if failure is not None:
        raise FuzzFailure(f"{failure.signature}: {failure.message}")


def campaign_input(ch: mutate.Chooser) -> bytes:
    """A fuzzer input for TestOneInput's modes; raw mode mutates a seed's bytes here."""
    mode = ch.below(len(MODES))
    if mode == 0:
        return bytes([0]) + mutate.raw(ch.pick(seed_bytes()), ch)
    return bytes([mode]) + bytes(ch.below(256) for _ in range(ch.between(8, 64)))


def campaign(seconds: float, seed: int, out: Path | None, log=print) -> dict:
    """The deterministic campaign: counts by outcome and the first input of each failure."""
    ch, work = mutate.RandomChooser(seed), Path(tempfile.mkdtemp(prefix="onnxc_fuzz_"))
    counts: Counter = Counter()
    failures: dict[str, tuple[Failure, bytes]] = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        model = input_model(campaign_input(ch))
        outcome, failure = checked(model, work)
        counts[outcome if failure is None else f"failure: {failure.kind}"] += 1
        if failure is not None and failure.signature not in failures:
            failures[failure.signature] = (failure, model)
            log(f"new failure: {failure.signature}: {failure.message[:200]}")
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha1(failure.signature.encode()).hexdigest()[:12]
                (out / f"frontend-{digest}.onnx").write_bytes(model)
    return {"counts": counts, "failures": failures}


def check_corpus() -> dict[str, str | None]:
    """The corpus's frontend cases (tests/fuzz/corpus/cases.py) checked: name -> None, or
    the failure's signature and message."""
    from tests.fuzz.corpus.cases import CASES
    work = Path(tempfile.mkdtemp(prefix="onnxc_corpus_"))
    results = {}
    for name, case in CASES.items():
        if case.kind in ("frontend", "refuse"):
            failure = check_frontend(case.build(), work, must_refuse=case.kind == "refuse")
            results[name] = failure and f"{failure.signature}: {failure.message[:300]}"
    return results


def _limit_memory() -> None:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _run_atheris(argv: list[str], out: Path | None) -> None:
    import atheris
    with atheris.instrument_imports():
        import onnxc.cli  # noqa: F401
        import onnxc.driver  # noqa: F401
    corpus = out / "atheris-corpus" if out else Path(tempfile.mkdtemp(prefix="onnxc_corpus_"))
    corpus.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(seed_bytes()):
        (corpus / f"seed{i}").write_bytes(bytes([0]) + data)
    atheris.Setup([sys.argv[0], *argv, str(corpus)], TestOneInput)
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write each distinct failure's model here")
    parser.add_argument("--atheris", action="store_true",
                        help="coverage-guided with atheris (pip install atheris)")
    parser.add_argument("--corpus", action="store_true",
                        help="check the regression corpus's frontend cases; print JSON")
    args, rest = parser.parse_known_args(argv)
    _limit_memory()
    warnings.simplefilter("ignore")
    if args.corpus:
        print(json.dumps(check_corpus()))
        return 0
    if args.atheris:
        _run_atheris(rest, args.out)
        return 0
    result = campaign(args.seconds, args.seed, args.out)
    total = sum(result["counts"].values())
    print(f"\n{total} inputs in {args.seconds:.0f} s (seed {args.seed})")
    for outcome, n in result["counts"].most_common():
        print(f"  {outcome:<32} {n}")
    print(f"{len(result['failures'])} distinct failures")
    for sig, (failure, _) in result["failures"].items():
        print(f"  {sig}: {failure.message[:160]}")
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
