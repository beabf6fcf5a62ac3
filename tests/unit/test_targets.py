"""Every x86-64 target description builds code that runs here and gives the same numbers."""
from __future__ import annotations

import subprocess

import onnxc
import pytest
from onnxc.targets import _host_features, available, get_target

from tests.ops.harness import check_model, node_model, rand

X86 = [tag for tag, t in available().items() if t.triple.startswith("x86_64")]


@pytest.mark.parametrize("tag", X86)
def test_conv_and_matmul_per_target(tmp_path, tag):
    if not set(get_target(tag).features) <= _host_features():
        pytest.skip(f"this CPU lacks {tag}'s features")
    conv = node_model("Conv", [rand(1, 8, 13, 13), rand(16, 8, 3, 3), rand(16)],
                      {"pads": [1, 1, 1, 1]}, constant=(1, 2))
    check_model(conv, {"x0": rand(1, 8, 13, 13)}, tmp_path / "conv", atol=1e-4, target=tag)
    mm = node_model("MatMul", [rand(9, 40), rand(40, 70)], constant=(1,))
    check_model(mm, {"x0": rand(9, 40)}, tmp_path / "mm", atol=1e-4, target=tag)


@pytest.mark.parametrize("tag,register", [("x86_64", "ymm"), ("x86_64-avx512", "zmm")])
def test_generated_code_uses_the_targets_vectors(tmp_path, tag, register):
    """Checked in the machine code, so it holds even where the CPU could not run it."""
    model = node_model("MatMul", [rand(32, 64), rand(64, 64)], constant=(1,))
    lib = onnxc.driver.compile_to_dir(model, tmp_path, target=tag, strict=True)
    asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(lib)], capture_output=True,
                         text=True, check=True).stdout
    assert f"vfmadd231ps %{register}" in asm or f"vfmadd213ps %{register}" in asm \
        or f"vfmadd132ps %{register}" in asm
