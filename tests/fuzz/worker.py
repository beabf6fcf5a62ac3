"""A process that runs models for the differential fuzzer, so that a crash or a hang takes it
down instead of the campaign. One JSON request a line on stdin, one JSON reply a line on stdout:

    {"engine": "onnxc" | "ort", "model": PATH, "inputs": NPZ, "outputs": NPZ, "work": DIR}
    -> {"status": "ok" | "refused" | "exception", "error": "...", "where": "..."}

"refused": the engine raised its own error (an OnnxcError for onnxc, any exception for
onnxruntime); "exception": onnxc raised something else, or an IRError (a compiler bug).
Outputs go to NPZ as out0, out1, ... with their dtypes.

    python -m tests.fuzz.worker      (onnxc builds with $ONNXC_SANITIZE, as its parent set it)
"""
from __future__ import annotations

import json
import sys
import traceback
import warnings

import numpy as np


def _where(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "/compiler/" in f.filename or "/onnxc/" in f.filename]
    if not frames:
        return "outside onnxc"
    f = frames[-1]
    return f"{f.filename.split('/compiler/')[-1].split('/onnxc/')[-1]}:{f.lineno} {f.name}"


def run_onnxc(request: dict, feed: dict) -> list:
    import onnxc
    model = onnxc.compile(request["model"], out_dir=request["work"], name="fuzz",
                          backend="c")
    return model.run(None, feed)


def run_ort(request: dict, feed: dict) -> list:
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 4
    session = ort.InferenceSession(request["model"], options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feed)


def handle(request: dict) -> dict:
    from onnxc.errors import IRError, OnnxcError
    with np.load(request["inputs"]) as data:
        feed = {k: data[k] for k in data.files}
    engine = request["engine"]
    try:
        outs = (run_onnxc if engine == "onnxc" else run_ort)(request, feed)
    except IRError as exc:      # the loop IR failed verification: a compiler bug
        return {"status": "exception", "error": f"IRError: {exc}"[:2000], "where": _where(exc)}
    except OnnxcError as exc:
        return {"status": "refused", "error": f"{type(exc).__name__}: {exc}"[:2000],
                "where": _where(exc)}
    except Exception as exc:  # noqa: BLE001 - reported to the campaign
        status = "refused" if engine == "ort" else "exception"
        return {"status": status, "error": f"{type(exc).__name__}: {exc}"[:2000],
                "where": _where(exc)}
    np.savez(request["outputs"], **{f"out{i}": np.asarray(o) for i, o in enumerate(outs)})
    return {"status": "ok"}


def main() -> int:
    warnings.simplefilter("ignore")
    for line in sys.stdin:
        reply = handle(json.loads(line))
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
