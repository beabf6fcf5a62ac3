"""Loading libraries: a rebuild into the same folder is the new library, not the old one."""
from __future__ import annotations

import numpy as np
import onnxc

from tests.ops.harness import node_model, rand


def test_rebuild_in_same_folder_loads_the_new_library(tmp_path):
    x = rand(8)
    first = onnxc.compile(node_model("Relu", [x]), out_dir=tmp_path, name="same")
    second = onnxc.compile(node_model("Neg", [x]), out_dir=tmp_path, name="same")
    np.testing.assert_array_equal(first.run(None, {"x0": x})[0], np.maximum(x, 0))
    np.testing.assert_array_equal(second.run(None, {"x0": x})[0], -x)


def test_runs_from_many_threads_agree_with_sequential_runs(tmp_path):
    """One context runs one call at a time: run() serializes callers, so threads sharing a
    model each get their own input's answer."""
    from concurrent.futures import ThreadPoolExecutor
    w = rand(64, 48, seed=1)
    model = onnxc.compile(node_model("MatMul", [rand(32, 64), w], constant=(1,)),
                          out_dir=tmp_path)
    feeds = [rand(32, 64, seed=10 + i) for i in range(16)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda x: model.run(None, {"x0": x})[0], feeds))
    for x, y in zip(feeds, got):
        np.testing.assert_array_equal(y, model.run(None, {"x0": x})[0])
