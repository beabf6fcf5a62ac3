"""The precompiled prelude (compiler/build/prelude.py): gcc builds the same object with it as
without it, and the prelude is left out wherever it cannot help."""
from __future__ import annotations

import subprocess

import onnxc.build.prelude as prelude_module
import pytest
from onnxc.build.cache import CACHE_ENV
from onnxc.build.prelude import prelude, prelude_flags
from onnxc.build.toolchain import BASE_CFLAGS, compiler_command
from onnxc.cli import DEMO_MODEL
from onnxc.driver import compile_to_dir
from onnxc.resources import resource_dir
from onnxc.targets import get_target

GENERATED = """/* m.c: generated */
#include <math.h>
#include <stdint.h>

#include "onnxc_runtime.h"
#include "m.h"

static int x;
"""


def test_prelude_is_the_leading_includes():
    assert prelude(GENERATED, "m.h") == \
        '#include <math.h>\n#include <stdint.h>\n#include "onnxc_runtime.h"\n'
    assert prelude("int x;\n#include <math.h>\n", "m.h") == ""


def _compile(flags, source, obj):
    subprocess.run(flags + ["-c", str(source), "-o", str(obj)], check=True)
    return obj.read_bytes()


def test_same_object_with_the_prelude(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    compile_to_dir(DEMO_MODEL, tmp_path / "out", name="demo")
    runtime = resource_dir("runtime_c")
    command = compiler_command(get_target("host"))
    flags = command + list(BASE_CFLAGS) + list(get_target("host").cflags) + \
        ["-I", str(runtime), "-I", str(tmp_path / "out")]
    source = tmp_path / "out" / "demo.c"
    extra = prelude_flags(command, flags[len(command):], source, "demo.h", runtime)
    if not extra:
        pytest.skip("the host C compiler is not gcc")
    assert (tmp_path / "cache" / (extra[1].rsplit("/", 1)[1] + ".gch")).is_file()
    assert _compile(flags + extra, source, tmp_path / "a.o") == \
        _compile(flags, source, tmp_path / "b.o")


def test_no_prelude_without_gcc_or_a_cache(tmp_path, monkeypatch):
    source = tmp_path / "m.c"
    source.write_text(GENERATED)
    (tmp_path / "file").write_text("")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "file" / "cache"))   # cannot be made
    runtime = resource_dir("runtime_c")
    assert prelude_flags(["gcc"], ["-O2"], source, "m.h", runtime) == []
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(prelude_module, "compiler_identity", lambda command: "clang version 18")
    assert prelude_flags(["cc"], ["-O2"], source, "m.h", runtime) == []
