"""The `onnxc` command: compile, info, demo, --help everywhere, and clean one-line errors."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import onnx
import onnxc
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxc.cli import DEMO_MODEL, main
from onnxc.lower.pipeline import STAGES

from tests.unsupported import missing_unary_op


def gemm_relu_model(graph_name="g") -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.standard_normal((5, 3)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.standard_normal((3,)).astype(np.float32), "B")]
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["h"], name="fc"),
             helper.make_node("Relu", ["h"], ["y"], name="relu")]
    graph = helper.make_graph(nodes, graph_name,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def unsupported_model() -> onnx.ModelProto:
    """Two unknown op types of a custom domain in three nodes, one real ONNX op onnxc lacks."""
    ex = "com.example"
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu"),
             helper.make_node("FooOp", ["a"], ["b"], name="foo_first", domain=ex),
             helper.make_node("BarOp", ["b"], ["c"], name="bar_only", domain=ex),
             helper.make_node("FooOp", ["c"], ["d"], name="foo_second", domain=ex),
             helper.make_node(missing_unary_op(), ["x"], ["det"], name="det_node")]
    graph = helper.make_graph(nodes, "unsupported",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 3])],
                              [helper.make_tensor_value_info("d", TensorProto.FLOAT, [3, 3]),
                               helper.make_tensor_value_info("det", TensorProto.FLOAT, [3, 3])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid(ex, 1)])


@pytest.fixture
def model_path(tmp_path):
    path = tmp_path / "my-model.onnx"
    onnx.save(gemm_relu_model(), path)
    return path


def run_cli(*args):
    """The real entry point in a child process: exit code, stdout, stderr."""
    proc = subprocess.run([sys.executable, "-m", "onnxc.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def assert_one_line_error(code, err, *needles):
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("onnxc: error: "), err
    for needle in needles:
        assert needle in lines[0]


# ---- compile ---------------------------------------------------------------------------------

def test_compile_default_name_and_run(model_path, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(model_path), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    for fname in ("my_model.so", "my_model.h", "my_model-config.cmake"):
        assert (out / fname).is_file()
        assert str(out / fname) in printed
    compiled = onnxc.load(out / "my_model.so")
    x = np.linspace(-1, 1, 10, dtype=np.float32).reshape(2, 5)
    w = numpy_helper.to_array(gemm_relu_model().graph.initializer[0])
    b = numpy_helper.to_array(gemm_relu_model().graph.initializer[1])
    np.testing.assert_allclose(compiled.run(None, {"x": x})[0], np.maximum(x @ w + b, 0),
                               rtol=1e-5, atol=1e-6)


def test_compile_subcommand_name_and_target(model_path, tmp_path, capsys):
    out = tmp_path / "named"
    assert main(["compile", str(model_path), "-o", str(out), "--name", "net_v2",
                 "--target", "x86_64"]) == 0
    assert (out / "net_v2.so").is_file() and (out / "net_v2.h").is_file()
    assert "net_v2_run" in (out / "net_v2.h").read_text()
    assert "onnxc::net_v2" in (out / "net_v2-config.cmake").read_text()
    assert not (out / "my_model.so").exists()


def test_compile_default_out_dir(model_path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([str(model_path)]) == 0
    assert (tmp_path / "out" / "my_model.so").is_file()


@pytest.mark.parametrize("stage", ["lower", "after-schedule", "memory"])
def test_dump_ir_one_stage(model_path, tmp_path, capsys, stage):
    assert main([str(model_path), "-o", str(tmp_path), "--dump-ir", stage]) == 0
    printed = capsys.readouterr().out
    name = stage.removeprefix("after-")
    assert f"# IR after {name}\n" in printed
    assert printed.count("# IR after ") == 1
    assert "kernel k_" in printed and "max(" in printed   # the (fused) Relu is in the IR


def test_dump_ir_all(model_path, tmp_path, capsys):
    assert main([str(model_path), "-o", str(tmp_path), "--dump-ir", "all"]) == 0
    printed = capsys.readouterr().out
    for stage in STAGES:
        assert f"# IR after {stage}\n" in printed


def test_dump_ir_unknown_stage(model_path, tmp_path, capsys):
    assert main([str(model_path), "-o", str(tmp_path), "--dump-ir", "nonsense"]) == 2
    assert_one_line_error(2, capsys.readouterr().err, "nonsense")


def test_schedule_file_replaces_default(model_path, tmp_path, capsys):
    """An empty directive list per kernel keeps the naive loops; the result stays right."""
    assert main([str(model_path), "-o", str(tmp_path / "a"), "--dump-ir", "lower"]) == 0
    kernels = re.findall(r"^kernel (\w+)", capsys.readouterr().out, re.MULTILINE)
    assert kernels
    schedule = tmp_path / "naive.json"
    schedule.write_text(json.dumps({k: [] for k in kernels}))
    out = tmp_path / "b"
    assert main([str(model_path), "-o", str(out), "--schedule", str(schedule),
                 "--dump-ir", "schedule"]) == 0
    assert "vectorize" not in capsys.readouterr().out
    x = np.linspace(-1, 1, 10, dtype=np.float32).reshape(2, 5)
    want = onnxc.load(tmp_path / "a" / "my_model.so").run(None, {"x": x})[0]
    got = onnxc.load(out / "my_model.so").run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_bad_schedule_file(model_path, tmp_path, capsys):
    bad = tmp_path / "sched.json"
    bad.write_text("{not json")
    code = main([str(model_path), "-o", str(tmp_path / "o"), "--schedule", str(bad)])
    assert_one_line_error(code, capsys.readouterr().err, "sched.json")
    code = main([str(model_path), "-o", str(tmp_path / "o"), "--schedule", str(tmp_path / "no")])
    assert_one_line_error(code, capsys.readouterr().err, "schedule")


@pytest.mark.parametrize("args, needle", [
    (["--name", "1 bad-name"], "not a C identifier"),
    (["--target", "vax-11"], "unknown target"),
])
def test_bad_options(model_path, tmp_path, capsys, args, needle):
    code = main([str(model_path), "-o", str(tmp_path / "o"), *args])
    assert_one_line_error(code, capsys.readouterr().err, needle)


def test_output_dir_is_a_file(model_path, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = main([str(model_path), "-o", str(blocker)])
    assert_one_line_error(code, capsys.readouterr().err)


# ---- errors without a traceback (real process) -------------------------------------------------

@pytest.mark.parametrize("command", [[], ["info"]])
def test_unsupported_ops_listed_exit_2(tmp_path, command):
    path = tmp_path / "unsupported.onnx"
    onnx.save(unsupported_model(), path)
    out = tmp_path / "never"
    code, stdout, err = run_cli(*command, path, *([] if command else ["-o", out]))
    assert code == 2
    text = stdout + err
    assert "Traceback" not in text
    assert "com.example.FooOp: foo_first, foo_second" in text
    assert "com.example.BarOp: bar_only" in text
    assert f"{missing_unary_op()}: det_node" in text
    assert "Relu:" not in text.split("unsupported", 1)[1]
    if not command:
        assert err.startswith("onnxc: error: unsupported op(s): ")
        assert not out.exists(), "compilation must stop before any work"


def test_unknown_default_domain_op_fails_checker(tmp_path):
    model = gemm_relu_model()
    model.graph.node[1].op_type = "NoSuchOp"
    path = tmp_path / "bad_op.onnx"
    path.write_bytes(model.SerializeToString())
    code, _, err = run_cli(path, "-o", tmp_path / "o")
    assert_one_line_error(code, err, "NoSuchOp")


@pytest.mark.parametrize("kind", ["garbage", "empty", "truncated"])
@pytest.mark.parametrize("command", [[], ["info"]])
def test_malformed_file_one_line(tmp_path, kind, command):
    good = gemm_relu_model().SerializeToString()
    data = {"garbage": b"\x00\xffnot an onnx model\x01" * 10, "empty": b"",
            "truncated": good[: len(good) // 2]}[kind]
    path = tmp_path / "broken.onnx"
    path.write_bytes(data)
    code, _, err = run_cli(*command, path, *([] if command else ["-o", tmp_path / "o"]))
    assert_one_line_error(code, err)


@pytest.mark.parametrize("command", [[], ["compile"], ["info"]])
def test_missing_file(tmp_path, capsys, command):
    missing = tmp_path / "nowhere.onnx"
    code = main([*command, str(missing)])
    assert_one_line_error(code, capsys.readouterr().err, "nowhere.onnx", "no such file")


def test_no_arguments_prints_usage(capsys):
    assert main([]) == 2
    assert "usage: onnxc" in capsys.readouterr().err


# ---- info --------------------------------------------------------------------------------------

def test_info(model_path, capsys):
    assert main(["info", str(model_path)]) == 0
    text = capsys.readouterr().out
    assert "x: float[2, 5]" in text
    assert "y: float[2, 3]" in text
    assert "ai.onnx 17" in text
    hist = {line.split()[0]: line.split()[1] for line in text.splitlines()
            if line.startswith("  ") and len(line.split()) == 2}
    assert hist.get("Gemm") == "1" and hist.get("Relu") == "1"
    assert "unsupported ops: none" in text


def test_info_names_unnamed_dimensions(tmp_path, capsys):
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             [None, "seq", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                             [None, "seq", 4])])
    path = tmp_path / "unnamed.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "x: float[x:0, seq, 4]" in text and "y: float[x:0, seq, 4]" in text


# ---- help, version, demo -----------------------------------------------------------------------

@pytest.mark.parametrize("command", [[], ["compile"], ["info"], ["demo"]])
def test_help(capsys, command):
    assert main([*command, "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: onnxc {' '.join(command)}".rstrip())


def test_help_lists_commands_and_stages(capsys):
    main(["--help"])
    text = capsys.readouterr().out
    for command in ("compile", "info", "demo"):
        assert command in text
    main(["compile", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--dump-ir" in text and "memory" in text and "x86_64" in text


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"onnxc {onnxc.__version__}"


def test_demo_model_is_bundled_and_small():
    assert DEMO_MODEL.is_file()
    assert DEMO_MODEL.stat().st_size < 50_000
    onnx.checker.check_model(onnx.load(DEMO_MODEL), full_check=True)


def test_demo_model_is_reproducible(tmp_path):
    from onnxc.models.make_demo import main as make
    make(["-o", str(tmp_path / "demo.onnx")])
    assert (tmp_path / "demo.onnx").read_bytes() == DEMO_MODEL.read_bytes()


def test_demo(capsys, tmp_path):
    assert main(["demo", "--runs", "5", "-o", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "max abs error vs " in text
    assert "median run time: " in text and " ms over 5 runs" in text
    assert (tmp_path / "demo.so").is_file()


def test_demo_reference_without_onnxruntime(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    assert main(["demo", "--runs", "2"]) == 0
    assert "max abs error vs onnx.reference: " in capsys.readouterr().out


def test_demo_fails_on_mismatch(capsys, monkeypatch):
    import onnxc.cli as cli
    monkeypatch.setattr(cli, "reference_outputs", lambda path, feed: ([np.zeros((1, 10))], "zeros"))
    assert main(["demo", "--runs", "2", "--threads", "1"]) == 1
    captured = capsys.readouterr()
    assert "max abs error vs zeros: " in captured.out
    assert "onnxc: error: demo output differs" in captured.err


@pytest.mark.skipif(shutil.which("onnxc") is None, reason="the onnxc console script is not "
                    "installed (pip install .)")
def test_console_script():
    proc = subprocess.run(["onnxc", "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == f"onnxc {onnxc.__version__}"


def test_bench_prints_a_ratio_table(model_path, capsys):
    pytest.importorskip("onnxruntime")
    assert main(["bench", str(model_path), "--runs", "3", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "| model | threads | onnxc ms | onnxruntime ms | ratio |" in printed
    row = [line for line in printed.splitlines() if line.startswith(f"| {model_path.stem} | 1 |")]
    assert len(row) == 1 and float(row[0].split("|")[5]) > 0
