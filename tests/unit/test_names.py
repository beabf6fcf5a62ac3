"""Library names against the C library: the clash table in compiler/names.py covers every
NAME_<suffix> the templates define that this machine's libc, libm or libpthread exports."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from onnxc.names import NameTable, library_name_problem
from onnxc.resources import resource_dir

LIBS = ("libc.so.6", "libm.so.6", "libpthread.so.0", "librt.so.1", "libdl.so.2")


def _libc_symbols() -> set[str]:
    found = set()
    for lib in LIBS:
        path = subprocess.run(["gcc", f"-print-file-name={lib}"], capture_output=True,
                              text=True).stdout.strip()
        if not Path(path).is_file():
            continue
        listing = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True,
                                 text=True).stdout
        found |= {line.split()[-1].split("@")[0] for line in listing.splitlines() if line}
    return found


def _template_suffixes() -> set[str]:
    suffixes = set()
    for template in Path(resource_dir("templates")).glob("*.j2"):
        suffixes |= set(re.findall(r"\{\{ name \}\}_([A-Za-z0-9_]+)", template.read_text()))
    return suffixes


@pytest.mark.skipif(shutil.which("nm") is None or shutil.which("gcc") is None,
                    reason="needs gcc and nm")
def test_every_libc_clash_is_refused():
    symbols, suffixes = _libc_symbols(), _template_suffixes()
    assert "pthread_create" in symbols and "create" in suffixes
    clashes = {s[:-len(x) - 1] for s in symbols for x in suffixes
               if s.endswith("_" + x) and len(s) > len(x) + 1}
    missed = sorted(c for c in clashes if not c.startswith("_") and library_name_problem(c) is None)
    assert not missed, f"add to names.LIBC_CLASHES: {missed}"


@pytest.mark.parametrize("name", ["model", "mnist", "resnet18", "bert", "yolo_v8", "Net"])
def test_ordinary_names_are_accepted(name):
    assert library_name_problem(name) is None


def test_internal_names_keep_out_of_the_library_namespace():
    table = NameTable(reserved_prefix="k_")
    assert table.unique("run", "k_") == "kk_run"
    assert table.unique("run", "k_") == "kk_run_1"
    assert table.unique("relu", "t_") == "t_relu"
    assert NameTable(reserved_prefix="kk_").unique("x", "kk_").startswith("kkk_")
