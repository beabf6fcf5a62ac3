"""Every x86-64 target description builds code that runs here and gives the same numbers; the
AArch64 records, target triples with overrides, and the errors of cross builds and verify."""
from __future__ import annotations

import subprocess

import onnxc
import pytest
from onnxc.targets import _host_features, available, get_target

from tests.ops.harness import check_model, node_model, rand

X86 = [tag for tag, t in available().items() if t.triple.startswith("x86_64") and not t.gpu]


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


# -- AArch64 records, target triples, the cross toolchain and verify's errors -----------------
ARM = [tag for tag, t in available().items() if t.arch == "aarch64"]


def test_arm_records_are_facts():
    assert {"armv8", "cortex-a72", "cortex-a76", "neoverse-n1", "neoverse-v1",
            "apple-m1"} <= set(ARM)
    for tag in ARM:
        t = get_target(tag)
        assert (t.vector_bits, t.vector_registers, t.lanes()) == (128, 32, 4)
        assert "neon" in t.features and t.cc == "zig" and t.emulator == "qemu-aarch64"
        assert not t.native


@pytest.mark.parametrize("spec, cpu, added, removed", [
    ("aarch64-linux-gnu", "generic", set(), set()),
    ("aarch64-unknown-linux-gnu -mcpu=cortex-a72", "cortex-a72", {"crc"}, set()),
    ("aarch64-linux-gnu -mcpu=neoverse-n1 -mattr=+sve,-dotprod", "neoverse-n1", {"sve"},
     {"dotprod"}),
    ("aarch64-linux-gnu -mcpu=cortex-x9", "cortex-x9", set(), set()),
])
def test_triple_with_overrides(spec, cpu, added, removed):
    t = get_target(spec)
    assert t.arch == "aarch64" and t.cpu == cpu and t.tag == spec
    assert added <= set(t.features) and not removed & set(t.features)


def test_x86_triple_overrides_become_flags():
    t = get_target("x86_64-linux-gnu -mcpu=znver3 -mattr=+avx512f")
    assert t.cflags == ("-march=znver3", "-mavx512f") and "avx512f" in t.features


@pytest.mark.parametrize("spec, message", [
    ("riscv64-linux-gnu", "no target describes architecture 'riscv64'"),
    ("aarch64-linux-gnu -O3", "unknown option '-O3'"),
    ("armv9", "unknown target 'armv9'"),
])
def test_bad_target_specs(spec, message):
    with pytest.raises(onnxc.errors.OnnxcError, match=message):
        get_target(spec)


def test_zig_command_for_a_cpu():
    from onnxc.build.toolchain import compiler_command
    cmd = compiler_command(get_target("cortex-a72"))
    assert cmd[1:5] == ["-m", "ziglang", "cc", "-target"]
    assert cmd[5:] == ["aarch64-linux-gnu", "-mcpu=cortex_a72+neon+crc"]


def test_missing_ziglang_is_a_clear_error(monkeypatch):
    import importlib.util

    from onnxc.build import toolchain
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ziglang" else real(name, *a))
    with pytest.raises(onnxc.errors.BuildError, match="pip install ziglang"):
        toolchain.compiler_command(get_target("armv8"))


def test_missing_emulator_is_a_clear_error(monkeypatch):
    from onnxc import verify
    monkeypatch.setattr(verify.shutil, "which", lambda name: None)
    with pytest.raises(verify.VerifyError, match="qemu-aarch64 not found"):
        verify.emulator_command(get_target("armv8"))


def test_python_compile_refuses_a_foreign_architecture(tmp_path):
    with pytest.raises(onnxc.errors.OnnxcError, match="cannot load"):
        onnxc.compile(node_model("Relu", [rand(3)]), target="armv8", out_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_verify_on_the_host(tmp_path, monkeypatch, capsys):
    from onnxc import verify
    from onnxc.cli import main
    model = node_model("Conv", [rand(1, 3, 7, 7), rand(4, 3, 3, 3)], constant=(1,))
    path = tmp_path / "conv.onnx"
    path.write_bytes(model.SerializeToString())
    assert main(["verify", str(path)]) == 0
    assert "in this process" in capsys.readouterr().out
    wrong = verify.reference_outputs
    monkeypatch.setattr(verify, "reference_outputs",
                        lambda m, feed: ([w + 1e-3 for w in wrong(m, feed)[0]], "shifted"))
    assert main(["verify", str(path)]) == 1
    assert "BEYOND TOLERANCE" in capsys.readouterr().out
