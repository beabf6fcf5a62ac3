"""The library cache ($ONNXC_LIBRARY_CACHE): a second compile of the same model with the same
options is a copy, and any change to what goes into a build (model bytes, options, target,
toolchain, onnxc's sources) misses. These tests set the folder themselves."""
from __future__ import annotations

import numpy as np
import onnx
import onnxc
import onnxc.build.library_cache as library_cache
import onnxc.driver as driver
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxc.build.library_cache import CACHE_ENV, library_key, model_digest
from onnxc.errors import ModelWarning

X = np.arange(6, dtype=np.float32).reshape(2, 3)


def _model(weight: float, name: str = "g") -> onnx.ModelProto:
    """y = x * w, w an initializer: models that differ in one weight's bytes only."""
    vi = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "w"], ["y"], name="scale")], name,
        [vi("x", TensorProto.FLOAT, [2, 3])], [vi("y", TensorProto.FLOAT, [2, 3])],
        [numpy_helper.from_array(np.array(weight, np.float32), "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture
def builds(tmp_path, monkeypatch):
    """The cache in tmp_path/cache, and a list that grows by one per real build."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    made = []
    real_build = driver.build

    def counting_build(*args, **kwargs):
        made.append(args[1])
        return real_build(*args, **kwargs)
    monkeypatch.setattr(driver, "build", counting_build)
    return made


def _run(lib) -> np.ndarray:
    return onnxc.load(lib).run(None, {"x": X})[0]


def test_same_build_is_copied(tmp_path, builds):
    first = driver.compile_to_dir(_model(2.0), tmp_path / "a")
    second = driver.compile_to_dir(_model(2.0), tmp_path / "b")
    assert len(builds) == 1 and second == tmp_path / "b" / first.name
    assert (tmp_path / "b" / "g.h").read_bytes() == (tmp_path / "a" / "g.h").read_bytes()
    np.testing.assert_array_equal(_run(second), X * 2)


def test_a_copy_gives_the_warnings_of_its_build(tmp_path, builds):
    """A declared shape that disagrees warns on every compile, the copies' too, and the
    stored warnings never land in the output folder."""
    model = _model(2.0)
    del model.graph.output[0].type.tensor_type.shape.dim[1:]
    for out in ("a", "b"):
        with pytest.warns(ModelWarning, match="declared with shape \\[2\\] but computes to"):
            driver.compile_to_dir(model, tmp_path / out)
    assert len(builds) == 1
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == \
        sorted(p.name for p in (tmp_path / "a").iterdir())


def test_a_copy_never_writes_into_a_loaded_library(tmp_path, builds):
    """Both builds cached, then both copied into one folder: the second copy replaces the
    file the first model was loaded from, which keeps running (and computing its numbers)."""
    for weight, out in ((2.0, "a"), (3.0, "b")):
        driver.compile_to_dir(_model(weight), tmp_path / out)
    first = onnxc.load(driver.compile_to_dir(_model(2.0), tmp_path / "same"))
    second = onnxc.load(driver.compile_to_dir(_model(3.0), tmp_path / "same"))
    np.testing.assert_array_equal(first.run(None, {"x": X})[0], X * 2)
    np.testing.assert_array_equal(second.run(None, {"x": X})[0], X * 3)
    assert len(builds) == 2


def test_other_weights_build_again(tmp_path, builds):
    """Same graph, name and options: only the bytes of one weight differ."""
    np.testing.assert_array_equal(_run(driver.compile_to_dir(_model(2.0), tmp_path / "a")), X * 2)
    np.testing.assert_array_equal(_run(driver.compile_to_dir(_model(3.0), tmp_path / "b")), X * 3)
    assert len(builds) == 2


@pytest.mark.parametrize("options", [dict(strict=True), dict(name="other"),
                                     dict(backend="llvm"), dict(target="x86_64")])
def test_other_options_build_again(tmp_path, builds, options):
    driver.compile_to_dir(_model(2.0), tmp_path / "a")
    lib = driver.compile_to_dir(_model(2.0), tmp_path / "b", **options)
    assert len(builds) == 2
    np.testing.assert_array_equal(_run(lib), X * 2)


def test_model_file_bytes_are_the_key(tmp_path, builds):
    path = tmp_path / "m.onnx"
    onnx.save(_model(2.0), path)
    driver.compile_to_dir(path, tmp_path / "a")
    onnx.save(_model(5.0), path)
    np.testing.assert_array_equal(_run(driver.compile_to_dir(path, tmp_path / "b")), X * 5)
    assert len(builds) == 2


def test_schedule_file_contents_are_the_key(tmp_path, builds):
    schedule = tmp_path / "s.json"
    schedule.write_text("{}")
    driver.compile_to_dir(_model(2.0), tmp_path / "a", schedule_file=str(schedule))
    schedule.write_text("{} ")
    driver.compile_to_dir(_model(2.0), tmp_path / "b", schedule_file=str(schedule))
    assert len(builds) == 2


def test_external_data_is_keyed_by_its_bytes(tmp_path, builds):
    path = tmp_path / "m.onnx"
    onnx.save(_model(2.0), path, save_as_external_data=True, all_tensors_to_one_file=True,
              location="m.bin", size_threshold=0)
    for out in ("a", "b"):
        driver.compile_to_dir(path, tmp_path / out)
    assert len(builds) == 1
    (tmp_path / "m.bin").write_bytes(np.float32(3.0).tobytes())     # same model file
    np.testing.assert_array_equal(_run(driver.compile_to_dir(path, tmp_path / "c")), X * 3)
    assert len(builds) == 2
    (tmp_path / "m.bin").write_bytes(b"")       # a file too short: the build reports it
    assert model_digest(path) is None


def test_key_covers_sources_and_toolchain(monkeypatch):
    data, options = b"model", {"target": "t"}
    key = library_key(data, options, ["cc"], False)
    assert library_key(data, options, ["cc"], False) == key
    assert library_key(b"model2", options, ["cc"], False) != key
    assert library_key(data, {"target": "u"}, ["cc"], False) != key
    assert library_key(data, options, ["gcc"], False) != key
    monkeypatch.setenv("ONNXC_CC", "clang")
    assert library_key(data, options, ["cc"], False) != key
    monkeypatch.delenv("ONNXC_CC")
    monkeypatch.setattr(library_cache, "source_digest", lambda: "changed sources")
    assert library_key(data, options, ["cc"], False) != key


def test_half_written_entry_is_rebuilt(tmp_path, builds):
    driver.compile_to_dir(_model(2.0), tmp_path / "a")
    (entry,) = (tmp_path / "cache").iterdir()
    (entry / "g.so").unlink()                       # as if it never finished
    np.testing.assert_array_equal(_run(driver.compile_to_dir(_model(2.0), tmp_path / "b")), X * 2)
    assert len(builds) == 2


def test_unwritable_cache_still_builds(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "file" / "cache"))
    np.testing.assert_array_equal(_run(driver.compile_to_dir(_model(2.0), tmp_path / "a")), X * 2)


def test_ir_dumps_are_never_cached(tmp_path, builds, capsys):
    for out in ("a", "b"):
        driver.compile_to_dir(_model(2.0), tmp_path / out, dump_ir="frontend")
        assert "IR after frontend" in capsys.readouterr().out
    assert len(builds) == 2
