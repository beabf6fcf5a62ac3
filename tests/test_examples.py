"""The examples: the C and C++ apps built with the top-level CMakeLists.txt against the compiled
demo model, and examples/python/run.py; their outputs must match CompiledModel.run."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxc
import pytest
from onnxc.cli import DEMO_MODEL

ROOT = Path(__file__).resolve().parents[1]
APPS = {"c": "examples/c/onnxc_example_c", "cpp": "examples/cpp/onnxc_example_cpp"}
TOL = 1e-5


def _missing_tools() -> str | None:
    for choices in (("cmake",), ("cc", "gcc"), ("c++", "g++")):
        if not any(shutil.which(exe) for exe in choices):
            return f"{choices[-1]} not found (apt-get install cmake make gcc g++)"
    return None


needs_cmake = pytest.mark.skipif(_missing_tools() is not None, reason=_missing_tools() or "")


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300,
                          **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The demo compiled to model/ and the examples built in build/: (model, build dir)."""
    tmp = tmp_path_factory.mktemp("examples")
    model = onnxc.compile(DEMO_MODEL, out_dir=tmp / "model", name="demo")
    build = tmp / "build"
    _run(["cmake", "-S", ROOT, "-B", build, f"-DONNXC_MODEL_DIR={tmp / 'model'}",
          "-DONNXC_MODEL_NAME=demo", "-DCMAKE_BUILD_TYPE=Release"])
    _run(["cmake", "--build", build, "-j", "2"])
    return model, build


def parse(stdout: str) -> tuple[list[float], str]:
    lines = stdout.strip().splitlines()
    assert lines[-1] == "# status 0 (ok)", stdout
    return [float(v) for v in lines if not v.startswith("#")], "\n".join(lines)


def sin_feed(model) -> dict:
    feed = {}
    for k, arg in enumerate(model.get_inputs()):
        n = int(np.prod(arg.shape))
        feed[arg.name] = np.sin(np.arange(n, dtype=np.float64) + k).astype(np.float32) \
            .reshape(arg.shape)
    return feed


def expected_values(model, feed) -> np.ndarray:
    return np.concatenate([o.ravel() for o in model.run(None, feed)]).astype(np.float64)


@needs_cmake
@pytest.mark.parametrize("app", sorted(APPS))
def test_example_app_default_input(built, app):
    model, build = built
    values, text = parse(_run([build / APPS[app]]).stdout)
    assert '# input 0 "input": dtype 1 shape [1, 1, 8, 8]' in text
    assert '# output 0 "probs": dtype 1 shape [1, 10]' in text
    np.testing.assert_allclose(values, expected_values(model, sin_feed(model)), rtol=TOL,
                               atol=TOL)


@needs_cmake
@pytest.mark.parametrize("app", sorted(APPS))
def test_example_app_input_file(built, app, tmp_path):
    model, build = built
    x = np.random.default_rng(5).standard_normal(model.get_inputs()[0].shape).astype(np.float32)
    path = tmp_path / "input.bin"
    x.tofile(path)
    values, _ = parse(_run([build / APPS[app], path]).stdout)
    want = expected_values(model, {model.get_inputs()[0].name: x})
    np.testing.assert_allclose(values, want, rtol=TOL, atol=TOL)


@needs_cmake
@pytest.mark.parametrize("app", sorted(APPS))
def test_example_app_reports_bad_input_file(built, app, tmp_path):
    _, build = built
    path = tmp_path / "short.bin"
    path.write_bytes(b"\0" * 12)
    proc = subprocess.run([str(build / APPS[app]), str(path)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "bytes" in proc.stderr


@needs_cmake
def test_cmake_without_model_says_how(tmp_path):
    proc = subprocess.run(["cmake", "-S", str(ROOT), "-B", str(tmp_path / "b"),
                           f"-DONNXC_MODEL_DIR={tmp_path / 'nothing'}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "Compile a model first" in proc.stderr


def test_python_example(tmp_path):
    env = {**os.environ, "ONNXC_NUM_THREADS": "1"}
    proc = _run([sys.executable, ROOT / "examples" / "python" / "run.py", "-o", tmp_path / "out"],
                cwd=tmp_path, env=env)
    assert "probs =" in proc.stdout
    assert (tmp_path / "out" / "demo.so").is_file()


@needs_cmake
def test_c_example_runs_one_dynamic_library_at_two_shapes(tmp_path):
    """The C app against a library with symbolic dimensions: set at run time (--dims), the
    buffers sized by NAME_get_input_shape / NAME_get_output_shape."""
    from tests.models.dynamic_corpus import concat_batch
    model, _ = concat_batch()
    lib = onnxc.compile(model, out_dir=tmp_path / "model", name="dyn")
    build = tmp_path / "build"
    _run(["cmake", "-S", ROOT, "-B", build, f"-DONNXC_MODEL_DIR={tmp_path / 'model'}",
          "-DONNXC_MODEL_NAME=dyn", "-DCMAKE_BUILD_TYPE=Release"])
    _run(["cmake", "--build", build, "-j", "2", "--target", "onnxc_example_c"])
    for batch, src, tgt in ((1, 2, 3), (3, 5, 1)):
        values, text = parse(_run([build / APPS["c"], "--dims", f"{batch},{src},{tgt}"]).stdout)
        assert f'# output 0 "y": dtype 1 shape [{batch}, {src + tgt}, 4]' in text
        feed = {"a": np.sin(np.arange(batch * src * 8, dtype=np.float64))
                .astype(np.float32).reshape(batch, src, 8),
                "b": np.sin(np.arange(batch * tgt * 8, dtype=np.float64) + 1)
                .astype(np.float32).reshape(batch, tgt, 8)}
        np.testing.assert_allclose(values, expected_values(lib, feed), rtol=TOL, atol=TOL)
