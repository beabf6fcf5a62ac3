"""A representative per-op subset built for armv8 and run under qemu against onnxruntime,
and the NEON vector FMA the convolution and GEMM kernels must use."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import onnx
import pytest
from onnxc.driver import compile_to_dir
from onnxc.verify import verify

from tests.ops.harness import node_model, rand

from .conftest import TARGET

pytest.importorskip("onnxruntime")

CASES = [   # op, inputs, attributes, constant inputs: odd sizes that do not fill a vector
    ("Conv", [rand(1, 3, 11, 9), rand(5, 3, 3, 3, seed=1), rand(5, seed=2)],
     {"pads": [1, 0, 1, 2], "strides": [2, 1]}, (1, 2)),
    ("Conv", [rand(1, 6, 8, 7), rand(6, 1, 3, 3, seed=1)], {"group": 6, "pads": [1, 1, 1, 1]},
     (1,)),
    ("Conv", [rand(1, 4, 9, 10), rand(6, 2, 2, 3, seed=1)],
     {"group": 2, "dilations": [2, 1]}, (1,)),
    ("MatMul", [rand(13, 37), rand(37, 19, seed=1)], {}, (1,)),
    ("Gemm", [rand(7, 33), rand(21, 33, seed=1), rand(21, seed=2)], {"transB": 1}, (1, 2)),
    ("Softmax", [rand(3, 5, 17)], {"axis": -1}, ()),
    ("MaxPool", [rand(1, 3, 9, 11)], {"kernel_shape": [3, 3], "strides": [2, 2]}, ()),
    ("AveragePool", [rand(1, 2, 7, 7)], {"kernel_shape": [2, 2], "pads": [1, 1, 0, 0]}, ()),
    ("Add", [rand(2, 3, 5), rand(3, 1, seed=1)], {}, ()),
    ("Erf", [rand(4, 13)], {}, ()),
    ("Sigmoid", [rand(33)], {}, ()),
    ("ReduceMean", [rand(3, 7, 5), np.array([1], np.int64)], {"keepdims": 0}, (1,)),
    ("Transpose", [rand(2, 3, 5, 7)], {"perm": [0, 3, 1, 2]}, ()),
    ("LayerNormalization", [rand(2, 5, 19), rand(19, seed=1), rand(19, seed=2)],
     {"axis": -1}, (1, 2)),
    ("Resize", [rand(1, 2, 3, 5), np.array([], np.float32), np.array([1, 1, 2, 1.5], np.float32)],
     {"mode": "linear"}, (1, 2)),
]


@pytest.mark.parametrize("op, inputs, attrs, constant", CASES,
                         ids=[f"{c[0]}{i}" for i, c in enumerate(CASES)])
def test_op_under_qemu(tmp_path, op, inputs, attrs, constant):
    model = node_model(op, inputs, attrs, constant, opset=18)
    onnx.save(model, tmp_path / "node.onnx")
    report, _ = verify(tmp_path / "node.onnx", TARGET, out_dir=tmp_path / "build")
    assert report and all(r.ok for r in report), report


def _kernel_disassembly(lib, pattern: str) -> dict[str, str]:
    """The disassembly of each function in lib whose name matches pattern."""
    out = subprocess.run(["llvm-objdump", "-d", "--no-show-raw-insn", str(lib)],
                         capture_output=True, text=True, check=True).stdout
    bodies = re.split(r"\n(?=[0-9a-f]+ <)", out)
    return {b.split("<", 1)[1].split(">", 1)[0]: b for b in bodies
            if re.match(r"[0-9a-f]+ <", b)
            and re.search(pattern, b.split("<", 1)[1].split(">", 1)[0])}


@pytest.mark.parametrize("op, inputs, attrs, constant", [CASES[0], CASES[3]],
                         ids=["Conv", "MatMul"])
def test_neon_fma_in_kernels(tmp_path, cpu_backend, op, inputs, attrs, constant):
    model = node_model(op, inputs, attrs, constant, opset=18)
    lib = compile_to_dir(model, tmp_path, target=TARGET, name="node", strict=True)
    if cpu_backend == "c":
        assert "vfmaq_f32(" in (tmp_path / "node.c").read_text()   # the table's NEON row
    else:
        assert "llvm.fma.v4f32" in (tmp_path / "node_kernels.ll").read_text()
    if shutil.which("llvm-objdump") is None:
        pytest.skip("llvm-objdump not installed: checked the generated source only")
    # C: static kernels the compiler inlines into the forward function; LLVM: the kernels
    kernels = _kernel_disassembly(lib, r"^node_forward$|^k_")
    assert kernels, "no forward or kernel function found in the disassembly"
    assert any(re.search(r"\bfmla\s+v\d+\.4s", body) for body in kernels.values())
