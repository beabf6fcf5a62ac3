"""onnxc as an ONNX backend (onnx.backend.base): every model goes through the whole compiler to
a shared library, which then runs natively. There is no interpreter fallback: what onnxc cannot
compile raises its error (UnsupportedOps, ModelError) from prepare()."""
from __future__ import annotations

import tempfile
from typing import Any

import numpy as np
import onnx
from onnx import helper
from onnx.backend.base import Backend, BackendRep, Device, DeviceType

# Devices the compiled libraries run on (CUDA comes with the cuda targets).
_TARGETS = {DeviceType.CPU: "host"}


class OnnxcRep(BackendRep):
    """A compiled model; run() takes the inputs in graph order (or by name) and returns the
    outputs in graph order."""

    def __init__(self, model: onnx.ModelProto, target: str, **options: Any) -> None:
        from .. import driver
        from ..runtime import CompiledModel
        with tempfile.TemporaryDirectory(prefix="onnxc_backend_") as out:
            # the loaded library stays mapped after its file is removed
            self.compiled = CompiledModel(driver.compile_to_dir(model, out, target=target,
                                                                **options))
        initialized = {i.name for i in model.graph.initializer}
        self.input_names = [i.name for i in model.graph.input if i.name not in initialized]

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:  # noqa: ARG002
        if isinstance(inputs, dict):
            feeds = dict(inputs)
        else:
            arrays = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
            if len(arrays) != len(self.input_names):
                raise ValueError(f"expected {len(self.input_names)} inputs "
                                 f"({', '.join(self.input_names)}), got {len(arrays)}")
            feeds = dict(zip(self.input_names, arrays))
        return tuple(self.compiled.run(None, feeds))


class OnnxcBackend(Backend):
    @classmethod
    def supports_device(cls, device: str) -> bool:
        return Device(device).type in _TARGETS

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> OnnxcRep:
        if not cls.supports_device(device):
            raise RuntimeError(f"onnxc backend: device {device!r} is not supported")
        # dims: {name or INPUT:AXIS: value or (low, high)}, as onnxc.compile takes them
        options = {k: v for k, v in kwargs.items() if k in ("name", "schedule_file", "dims")}
        return OnnxcRep(model, _TARGETS[Device(device).type], **options)

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU",
                  **kwargs: Any) -> tuple[np.ndarray, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs: Any, device: str = "CPU",
                 outputs_info=None, **kwargs: Any) -> tuple[np.ndarray, ...]:
        """One node as a model of its own: inputs (arrays, in the node's input order) give
        the graph inputs' types; outputs_info [(dtype, shape)] gives the outputs' types,
        which shape inference supplies when it is omitted."""
        arrays = [np.asarray(a) for a in (inputs.values() if isinstance(inputs, dict)
                                          else inputs)]
        names = [n for n in node.input if n]
        graph_inputs = [helper.make_tensor_value_info(
            n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape) for n, a in zip(names, arrays)]
        if outputs_info:
            graph_outputs = [helper.make_tensor_value_info(
                n, helper.np_dtype_to_tensor_dtype(np.dtype(dt)), shape)
                for n, (dt, shape) in zip(node.output, outputs_info)]
        else:
            graph_outputs = [helper.make_empty_tensor_value_info(n) for n in node.output if n]
        opset = kwargs.pop("opset_version", None)
        graph = helper.make_graph([node], f"{node.op_type}_node", graph_inputs, graph_outputs)
        imports = [helper.make_opsetid(node.domain, opset)] if opset else None
        model = helper.make_model(graph, **({"opset_imports": imports} if imports else {}))
        model = onnx.shape_inference.infer_shapes(model)
        return cls.run_model(model, arrays, device, **kwargs)
