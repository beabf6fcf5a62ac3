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
