"""The six benchmark models built for armv8 (aarch64, NEON): each library is an AArch64 ELF
that needs only libc, libm and pthreads, and `onnxc verify` passes on it under qemu."""
from __future__ import annotations

import subprocess
import sys

import pytest
from onnxc.verify import verify

from .conftest import TARGET

pytest.importorskip("onnxruntime")
pytest.importorskip("torch", reason="the benchmark models are exported with torch")

from benchmarks.models import MODEL_NAMES, ensure_models  # noqa: E402

EM_AARCH64 = 183                       # ELF e_machine of AArch64
ELF_MACHINE_OFFSET = 18
ALLOWED_LIBS = {"libc.so.6", "libm.so.6", "libpthread.so.0", "ld-linux-aarch64.so.1"}


@pytest.fixture(scope="module")
def model_paths():
    return ensure_models()


def needed_libraries(lib) -> set[str]:
    out = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True,
                         check=True).stdout
    return {line.split("[", 1)[1].split("]", 1)[0] for line in out.splitlines()
            if "(NEEDED)" in line}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_verify_under_qemu(tmp_path, model_paths, name):
    report, how = verify(model_paths[name], TARGET, seed=1, out_dir=tmp_path)
    assert "qemu-aarch64" in how
    assert report and all(r.ok for r in report), report
    lib = tmp_path / "model.so"
    header = lib.read_bytes()[:ELF_MACHINE_OFFSET + 2]
    assert header[:4] == b"\x7fELF"
    assert int.from_bytes(header[ELF_MACHINE_OFFSET:], "little") == EM_AARCH64
    assert needed_libraries(lib) <= ALLOWED_LIBS


def test_verify_command(tmp_path, model_paths):
    proc = subprocess.run([sys.executable, "-m", "onnxc.cli", "verify", str(model_paths["cnn"]),
                           "--target", TARGET, "-o", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "max abs error" in proc.stdout and "passed" in proc.stdout


def test_verify_a_dynamic_model_at_two_shapes_under_qemu(tmp_path):
    """One aarch64 library run by the .npy driver at both ends of a --dim range: the inputs'
    shapes set the dimensions."""
    import onnx

    from tests.test_dims import two_dims_model
    path = tmp_path / "two.onnx"
    onnx.save(two_dims_model(), path)
    report, how = verify(path, TARGET, out_dir=tmp_path / "build",
                         dims={"batch": 2, "seq": (1, 3)})
    assert "qemu-aarch64" in how
    assert [(r.name, r.shape) for r in report] == [("z at batch=2 seq=1", (1, 2, 8)),
                                                   ("z at batch=2 seq=3", (3, 2, 8))]
    assert all(r.ok for r in report), report


@pytest.mark.parametrize("corpus", ["concat_batch", "torch_crnn"])
def test_one_dynamic_library_at_three_shapes_under_qemu(tmp_path, corpus, cpu_backend):
    """A model with dynamic dimensions compiled with no flags for aarch64: one library, run
    by the .npy driver under qemu at three shapes (the inputs' shapes set the dimensions)."""
    from onnxc.verify import _build, compare, reference_outputs

    from tests.models.dynamic_corpus import BUILDERS, TORCH_BUILDERS, feed_for
    builder = {**BUILDERS, **TORCH_BUILDERS}[corpus]
    model, cases = builder()
    run, how = _build(model, TARGET, tmp_path / "build", cpu_backend, (), None)
    assert "qemu-aarch64" in how
    for k, shapes in enumerate(cases):
        feed = feed_for(builder, shapes, k)
        case_dir = tmp_path / f"case{k}"
        case_dir.mkdir()
        want, _ = reference_outputs(model, feed)
        report = compare([o.name for o in model.graph.output], run(feed, case_dir), want,
                         1e-4, 1e-5)
        assert report and all(r.ok for r in report), (shapes, report)


def test_a_dynamic_library_builds_warning_free_for_aarch64(tmp_path, cpu_backend):
    """-Wall -Wextra -Werror under clang (zig cc): the generic skeleton with two inputs and
    three dimensions (clang warns on a constant operand of && that gcc accepts)."""
    from onnxc.driver import compile_to_dir

    from tests.models.dynamic_corpus import concat_batch
    lib = compile_to_dir(concat_batch()[0], tmp_path, target=TARGET, strict=True,
                         backend=cpu_backend)
    assert lib.exists()


def test_readers_of_a_data_sized_tensor_under_qemu(tmp_path, cpu_backend):
    """NonZero's count read by later nodes, built warning-free (clang, -Werror) for aarch64:
    one library at three shapes and three counts, 0 among them."""
    import numpy as np
    from onnxc.driver import compile_to_dir
    from onnxc.verify import _build, compare, reference_outputs

    from tests.ops.test_data_sized import reader_model
    model = reader_model(["rows", 4])
    assert compile_to_dir(model, tmp_path / "strict", target=TARGET, strict=True,
                          backend=cpu_backend).exists()
    run, how = _build(model, TARGET, tmp_path / "build", cpu_backend, (), None)
    assert "qemu-aarch64" in how
    rng = np.random.default_rng(7)
    for k, (rows, density) in enumerate([(1, 1.0), (3, 0.5), (6, 0.2)]):
        x = ((rng.random((rows, 4)) < density) * rng.random((rows, 4))).astype(np.float32)
        case_dir = tmp_path / f"case{k}"
        case_dir.mkdir()
        want, _ = reference_outputs(model, {"x": x})
        report = compare([o.name for o in model.graph.output], run({"x": x}, case_dir), want,
                         0, 0)
        assert report and all(r.ok for r in report), (rows, report)
