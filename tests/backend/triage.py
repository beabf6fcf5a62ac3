"""Write exclusions.py from a node-suite run: python -m tests.backend.triage RUN.xml

RUN.xml is `ONNXC_NODE_SUITE_ALL=1 pytest tests/backend -k _cpu --junitxml=RUN.xml` (the
variable turns the exclusions off). Failing cases are grouped by the reason their error
gives (the op that is missing, the dtype that is not supported, the input that must be
constant, the numbers that differ)."""
from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict

import onnx
from onnx.backend.test.case.node import collect_testcases
from onnxc import dtypes

_RULES = (   # (pattern over the error message, reason template)
    (r"unsupported op\(s\): ([^\n]*)", lambda m, c: "not implemented: " + ", ".join(
        sorted(set(re.findall(r"([\w.]+(?:-\d+)?):", m.group(1) + ":"))))),
    (r"graph input '([^']*)' has no tensor type or an unsupported dtype",
     lambda m, c: "input dtype not supported: " + ", ".join(sorted(_input_dtypes(c)))),
    (r"\((\w+)\): the (\w+) input must be a compile-time constant",
     lambda m, c: f"{m.group(1)} {m.group(2)} given at run time (needs dynamic shapes)"),
    (r"(\w+): the axes input must be a constant",
     lambda m, c: f"{m.group(1)} axes given at run time (needs dynamic shapes)"),
    (r"Cast to unsupported dtype code (\d+)", lambda m, c: "Cast to " +
     onnx.TensorProto.DataType.Name(int(m.group(1))).lower() + ": dtype not supported"),
    (r"Not equal to tolerance|Mismatched elements|not equal", lambda m, c: "wrong numbers"),
    # a run-time check refused the case's values (compiled for other ones)
    (r"invalid argument: node '[^']*' \((\w+)\): ([^\n]*)",
     lambda m, c: f"{m.group(1)} refused at run time: "
     + m.group(2).split(" = ")[0].split(":")[0][:60]),
)


# onnx.reference (which made the expected output) divides by in * scale - 1, a fraction
_FRACTIONAL_WIDTH = "align_corners over in*scale-1 (reference), not out-1 (onnxruntime, onnxc)"
# 1.9e-7 expected where the exact value is 0 (onnxc: 3e-15), above the suite's atol 1e-7
_TINY_NOISE = "expected output carries float32 noise above atol where the exact value is 0"
_COUNT_UNDECLARED = "Loop unrolled only with a known count; no output shape declares it here"
# Cases whose generic reason is explained further, while they fail for that reason.
_EXPLAINED = {
    "resize_downsample_scales_cubic_align_corners": ("wrong numbers", _FRACTIONAL_WIDTH),
    "resize_downsample_scales_linear_align_corners": ("wrong numbers", _FRACTIONAL_WIDTH),
    "dft_inverse": ("wrong numbers", _TINY_NOISE),
    "dft_inverse_opset19": ("wrong numbers", _TINY_NOISE),
    "range_float16_type_positive_delta_expanded": ("not implemented: Loop", _COUNT_UNDECLARED),
    "range_bfloat16_type_positive_delta_expanded": ("not implemented: Loop",
                                                    _COUNT_UNDECLARED),
}


def _explained(case: str, why: str) -> str:
    generic, explanation = _EXPLAINED.get(case, (None, None))
    return explanation if why == generic else why


def _input_dtypes(case) -> set[str]:
    """The inputs' types that onnxc has no row for in its dtype table."""
    found = {"sequence or optional" if not i.type.HasField("tensor_type") else
             onnx.TensorProto.DataType.Name(i.type.tensor_type.elem_type).lower()
             for i in case.model.graph.input
             if not i.type.HasField("tensor_type")
             or dtypes.from_onnx(i.type.tensor_type.elem_type) is None}
    return found


def reason(message: str, case) -> str:
    for pattern, fn in _RULES:
        m = re.search(pattern, message)
        if m:
            return fn(m, case)
    first = message.strip().splitlines()[0] if message.strip() else "error"
    return re.sub(r"^[\w.]+Error: ", "", first)[:90]


def main(path: str) -> None:
    cases = {c.name: c for c in collect_testcases()}
    groups: dict[str, list[str]] = defaultdict(list)
    for tc in ET.parse(path).getroot().iter("testcase"):
        bad = tc.find("failure") if tc.find("failure") is not None else tc.find("error")
        name = tc.get("name", "")
        if bad is not None and name.endswith("_cpu"):
            case = name[len("test_"):-len("_cpu")]
            why = reason(bad.get("message", ""), cases.get(name[:-4]))
            groups[_explained(case, why)].append(case)
    print('"""Node cases excluded from the suite run, by reason (tests/backend/triage.py wrote the')
    print('first version from a run). Every name is one exact case; a case leaves this list when')
    print('it passes."""\n')
    print("_CASES: dict[str, tuple[str, ...]] = {")
    for why, names in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        print(f"    {why!r}: (")
        for name in sorted(names):
            print(f"        {name!r},")
        print("    ),")
    print("}\n")
    print('EXCLUDED = {rf"^test_({\'|\'.join(names)})_cpu$": why for why, names in _CASES.items()}')


if __name__ == "__main__":
    main(sys.argv[1])
