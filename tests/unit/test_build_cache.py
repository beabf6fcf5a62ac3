"""The runtime objects are compiled once per compiler, flags and source, then reused."""
from __future__ import annotations

from onnxc.cli import DEMO_MODEL
from onnxc.driver import compile_to_dir
from onnxc.runtime.loader import CompiledModel


def _cached(folder):
    return sorted(p.name for p in folder.glob("*.o"))


def test_runtime_objects_are_reused(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("ONNXC_CACHE_DIR", str(cache))
    compile_to_dir(DEMO_MODEL, tmp_path / "a", backend="c")
    (runtime,) = _cached(cache)
    assert runtime.startswith("onnxc_runtime-")
    stamp = (cache / runtime).stat().st_mtime_ns
    lib = compile_to_dir(DEMO_MODEL, tmp_path / "b", backend="c")
    assert _cached(cache) == [runtime] and (cache / runtime).stat().st_mtime_ns == stamp
    assert CompiledModel(lib).get_inputs()          # the reused object links and loads
    compile_to_dir(DEMO_MODEL, tmp_path / "c", backend="llvm")
    assert any(n.startswith("onnxc_vmath_export-") for n in _cached(cache))
    compile_to_dir(DEMO_MODEL, tmp_path / "d", backend="c", strict=True)   # other flags
    assert len([n for n in _cached(cache) if n.startswith("onnxc_runtime-")]) == 2
    assert not list(cache.glob("*.partial"))


def test_unwritable_cache_builds_in_the_output_folder(tmp_path, monkeypatch):
    blocked = tmp_path / "not_a_folder"
    blocked.write_text("")
    monkeypatch.setenv("ONNXC_CACHE_DIR", str(blocked / "cache"))
    lib = compile_to_dir(DEMO_MODEL, tmp_path / "out", backend="c")
    assert (tmp_path / "out" / "onnxc_runtime.o").is_file()
    assert CompiledModel(lib).get_inputs()
