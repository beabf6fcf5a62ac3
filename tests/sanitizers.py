"""Running a pytest selection with every library built and run under the sanitizers.

    python -m tests.sanitizers [PATHS...] [--kinds address,undefined] [--sample N] [-n WORKERS]

A pytest of its own (so that the sanitizer runtime is preloaded before Python starts: see
compiler/build/sanitize.py) runs PATHS (default: tests/ops) on the C backend with
ONNXC_SANITIZE set, so every onnxc.compile builds with -fsanitize= and -fno-sanitize-recover.
A finding ends the worker that ran its test (pytest-xdist reports the test as crashed and
starts another worker); every report is written to LOG_DIR/<sanitizer>.<pid> and printed at
the end, with the tests that failed. --sample N runs the tests whose id hashes to 0 mod N (a
fixed subset; the full tier's check uses SAMPLE_EVERY). Exit status: pytest's, or 1 where a
report was written while the tests passed.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from onnxc.build.sanitize import KINDS, RUN_OPTIONS, environment, findings

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_KINDS = ("address", "undefined")
# The full tier runs one op test in SAMPLE_EVERY under ASan+UBSan: all of them take about
# twice the plain op tests' time, more than the CI budget leaves (README, "Tests").
SAMPLE_EVERY = 10
FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


@dataclass(frozen=True)
class SanitizedRun:
    returncode: int
    output: str
    reports: dict[str, str]     # log file name -> its text
    failed: list[str]           # test ids pytest reported failed or crashed

    def findings(self) -> list[str]:
        return [line for text in self.reports.values() for line in findings(text)] \
            or [f"{name}: {text.splitlines()[0] if text else ''}"
                for name, text in self.reports.items()]


def sanitized_env(kinds: tuple[str, ...], log_dir: Path) -> dict[str, str]:
    """The environment of the inner pytest: runtimes preloaded, reports to log_dir, the C
    backend only, the default tier's selection, and no trace of an outer pytest-xdist run."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env = environment(kinds, ["gcc"], base)
    for kind in kinds:
        var, _ = RUN_OPTIONS[kind]
        env[var] += f":log_path={log_dir / kind}"
    env.update(ONNXC_TEST_BACKENDS="c", ONNXC_TEST_TIER="default")
    return env


def select(paths: list[str], every: int, env: dict[str, str]) -> list[str]:
    """The test ids of paths whose crc32 is 0 mod every (all where every <= 1)."""
    if every <= 1:
        return paths
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "no:cacheprovider", *paths], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    return [i for i in ids if zlib.crc32(i.encode()) % every == 0]


def run(paths: list[str], kinds: tuple[str, ...] = DEFAULT_KINDS, every: int = 1,
        workers: int | str = "auto", log_dir: Path | None = None,
        timeout: float | None = None) -> SanitizedRun:
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="onnxc_sanitize_"))
    log_dir.mkdir(parents=True, exist_ok=True)
    env = sanitized_env(kinds, log_dir)
    tests = select(paths, every, env)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listing:
        listing.write("\n".join(tests))
    cmd = [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider",
           "-n", str(workers), "--max-worker-restart=1000", f"@{listing.name}"]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)
    finally:
        os.unlink(listing.name)
    output = proc.stdout + proc.stderr
    reports = {p.name: p.read_text(errors="replace") for p in sorted(log_dir.iterdir())}
    return SanitizedRun(proc.returncode, output, reports, FAILED.findall(output))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=["tests/ops"])
    parser.add_argument("--kinds", default=",".join(DEFAULT_KINDS),
                        help=f"comma-separated, of {', '.join(KINDS)}")
    parser.add_argument("--sample", type=int, default=1, metavar="N",
                        help="run one test in N (by a hash of its id; default: all)")
    parser.add_argument("-n", "--workers", default="auto")
    parser.add_argument("--log-dir", type=Path)
    args = parser.parse_args(argv)
    result = run(args.paths, tuple(args.kinds.split(",")), args.sample, args.workers,
                 args.log_dir)
    print(result.output[-20000:])
    for name, text in result.reports.items():
        print(f"==== {name}\n{text}")
    print(f"sanitizer reports: {len(result.reports)}; failed tests: {len(result.failed)}")
    for line in result.findings():
        print(f"  {line}")
    return result.returncode or (1 if result.reports else 0)


if __name__ == "__main__":
    sys.exit(main())
