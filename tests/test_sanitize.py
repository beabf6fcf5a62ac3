"""Builds with the C compiler's sanitizers (compiler/build/sanitize.py): the option, the flags,
the environment a process needs, `onnxc verify --sanitize`, and, in the full tier, the op tests
under ASan+UBSan (tests/sanitizers.py) and one model run from 8 threads under TSan."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxc
import pytest
from onnx import helper
from onnxc.build import sanitize
from onnxc.errors import BuildError, OnnxcError
from onnxc.targets import get_target
from onnxc.verify import SanitizerFinding, run_emulated

from tests import sanitizers
from tests.fuzz.seeds import F, const, model, vi

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "runtime" / "contexts_driver.c"


def _runtime_missing(kind: str) -> str | None:
    try:
        sanitize.preloads((kind,), ["gcc"])
    except BuildError as exc:
        return str(exc)
    return None


needs_asan = pytest.mark.skipif(_runtime_missing("address") is not None, reason="no libasan")
needs_tsan = pytest.mark.skipif(_runtime_missing("thread") is not None, reason="no libtsan")


def test_sanitizers_from_option_or_environment(monkeypatch):
    monkeypatch.setenv(sanitize.SANITIZE_ENV, "undefined, address")
    assert sanitize.sanitizers() == ("address", "undefined")
    assert sanitize.sanitizers("thread") == ("thread",)
    assert sanitize.sanitizers(()) == ()
    monkeypatch.delenv(sanitize.SANITIZE_ENV)
    assert sanitize.sanitizers() == ()
    with pytest.raises(BuildError, match="unknown sanitizer memory"):
        sanitize.sanitizers("memory")
    with pytest.raises(BuildError, match="cannot be combined"):
        sanitize.sanitizers("address,thread")


def test_flags_do_not_recover():
    assert sanitize.cflags(()) == []
    flags = sanitize.cflags(("address", "undefined"))
    assert "-fsanitize=address,undefined" in flags and "-fno-sanitize-recover=all" in flags


@needs_asan
def test_environment_preloads_the_runtime_first():
    env = sanitize.environment(("address", "undefined"), ["gcc"], {"LD_PRELOAD": "/x.so",
                                                                   "ASAN_OPTIONS": "verbosity=1"})
    preload = env["LD_PRELOAD"].split()
    assert Path(preload[0]).name.startswith("libasan.so") and preload[-1] == "/x.so"
    assert env["ASAN_OPTIONS"].endswith(":verbosity=1") and "UBSAN_OPTIONS" in env
    assert env[sanitize.SANITIZE_ENV] == "address,undefined"
    assert "LD_PRELOAD" not in sanitize.environment(("undefined",), ["gcc"], {})


def test_findings_are_the_reports_first_lines():
    log = ("x.c:25:35: runtime error: division by zero\n    #0 0x1 in f x.c:25\n"
           "==12==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x60 at pc 0x1\n"
           "WARNING: ThreadSanitizer: data race (pid=7)\nplain line\n")
    assert sanitize.findings(log) == [
        "x.c:25:35: runtime error: division by zero",
        "ERROR: AddressSanitizer: heap-buffer-overflow on address 0x60 at pc 0x1",
        "WARNING: ThreadSanitizer: data race (pid=7)"]


def test_compile_refuses_a_process_without_the_runtime(tmp_path):
    if "address" in sanitize.loaded_runtimes():
        pytest.skip("this process runs under ASan")
    m = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, (2,))], [vi("y", F, (2,))])
    with pytest.raises(OnnxcError, match="LD_PRELOAD=.*libasan.so.*verify --sanitize"):
        onnxc.compile(m, out_dir=tmp_path, sanitize="address,undefined")


def test_sanitized_build_is_its_own_cache_entry(tmp_path, library_cache):
    from onnxc.driver import compile_to_dir
    m = model([helper.make_node("Neg", ["x"], ["y"])], [vi("x", F, (3,))], [vi("y", F, (3,))])
    plain = compile_to_dir(m, tmp_path / "plain", name="neg")
    checked = compile_to_dir(m, tmp_path / "ubsan", name="neg", sanitize="undefined")
    symbols = [subprocess.run(["nm", "-D", str(lib)], capture_output=True, text=True).stdout
               for lib in (plain, checked)]
    assert "__ubsan" not in symbols[0] and "__ubsan_handle" in symbols[1]


@needs_asan
def test_verify_sanitize_passes_a_clean_model(tmp_path):
    path = tmp_path / "relu.onnx"
    onnx.save(model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, (4, 8))],
                    [vi("y", F, (4, 8))]), path)
    proc = subprocess.run([sys.executable, "-m", "onnxc.cli", "verify", str(path), "--sanitize"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "with -fsanitize=address,undefined in a process of its own" in proc.stdout


@needs_asan
def test_verify_sanitize_reports_an_overflow(tmp_path):
    """The .npy driver, linked with the sanitizers, runs a library that reads past its input:
    the run stops on ASan's report and verify raises it as a finding."""
    lib = tmp_path / "faulty.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-g", *sanitize.cflags(("address", "undefined")),
                    str(HERE / "runtime" / "faulty_model.c"), "-o", str(lib)], check=True)
    with pytest.raises(SanitizerFinding) as info:
        run_emulated(lib, "faulty", get_target("host"), [], [np.ones(4, np.float32)], 1,
                     tmp_path, ("address", "undefined"))
    assert "AddressSanitizer: heap-buffer-overflow" in info.value.found[0]
    assert "faulty_model.c" in info.value.log


def test_verify_reports_a_model_onnxruntime_refuses(tmp_path):
    """(verify's reference run:) onnxruntime has no int32 Gemm; verify says so in one line."""
    path = tmp_path / "gemm.onnx"
    i32 = onnx.TensorProto.INT32
    onnx.save(model([helper.make_node("Gemm", ["a", "b"], ["y"])],
                    [vi("a", i32, (2, 3)), vi("b", i32, (3, 2))], [vi("y", i32, (2, 2))]), path)
    proc = subprocess.run([sys.executable, "-m", "onnxc.cli", "verify", str(path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "onnxc: error: onnxruntime" in proc.stderr and "nothing to compare" in proc.stderr


# ---- full tier ---------------------------------------------------------------------------------

def threads_model() -> onnx.ModelProto:
    """A model with parallel loops (a convolution over 16 channels, a wide elementwise chain)."""
    rng = np.random.default_rng(0)
    return model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", ["c"], ["r"]),
                  helper.make_node("Reshape", ["r", "s"], ["f"]),
                  helper.make_node("MatMul", ["f", "w2"], ["h"]),
                  helper.make_node("Softmax", ["h"], ["y"], axis=-1),
                  helper.make_node("Sigmoid", ["z"], ["t"]),
                  helper.make_node("Mul", ["t", "z"], ["u"])],
                 [vi("x", F, (2, 8, 16, 16)), vi("z", F, (256, 512))],
                 [helper.make_empty_tensor_value_info("y"),
                  helper.make_empty_tensor_value_info("u")],
                 [const("w", rng.standard_normal((16, 8, 3, 3)) * 0.1),
                  const("s", [4, 2048], np.int64),
                  const("w2", rng.standard_normal((2048, 64)) * 0.01)], name="threads")


def _contexts_run(tmp_path, kinds: tuple[str, ...], options: str, runs: int) -> None:
    from onnxc.driver import compile_to_dir
    lib = compile_to_dir(threads_model(), tmp_path / "lib", name="threads", sanitize=kinds)
    exe = tmp_path / "contexts_driver"
    subprocess.run(["gcc", "-std=c11", "-O1", "-g", "-pthread", *sanitize.cflags(kinds),
                    str(DRIVER), "-o", str(exe), "-ldl"], check=True)
    var = sanitize.RUN_OPTIONS[kinds[0]][0]
    env = dict(os.environ, **{var: options}, UBSAN_OPTIONS="halt_on_error=1")
    proc = subprocess.run([str(exe), str(lib), "threads", "8", "8", str(runs)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and not sanitize.findings(proc.stderr), proc.stderr[-6000:]


@pytest.mark.full
@needs_tsan
def test_eight_contexts_eight_pool_threads_under_tsan(tmp_path):
    _contexts_run(tmp_path, ("thread",), "halt_on_error=1:second_deadlock_stack=1", 20)


@pytest.mark.full
@needs_asan
def test_eight_contexts_under_asan_with_leak_checks(tmp_path):
    _contexts_run(tmp_path, ("address", "undefined"), "detect_leaks=1:halt_on_error=1", 20)


@pytest.mark.full
@needs_asan
def test_op_tests_under_asan_and_ubsan(tmp_path):
    """A fixed sample of the op tests (one in sanitizers.SAMPLE_EVERY) on the C backend, every
    library built with -fsanitize=address,undefined: no report, every test passing."""
    if shutil.which("gcc") is None:
        pytest.skip("no gcc")
    result = sanitizers.run(["tests/ops"], every=sanitizers.SAMPLE_EVERY, workers=2,
                            log_dir=tmp_path / "reports", timeout=1800)
    details = "\n".join(f"==== {n}\n{t[:3000]}" for n, t in result.reports.items())
    assert not result.reports, f"{len(result.reports)} sanitizer reports: " \
        f"{result.findings()}\nfailed: {result.failed}\n{details}"
    assert result.returncode == 0, result.output[-6000:]

