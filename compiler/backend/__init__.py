"""Code generation (c.py, emit.py, intrinsics.py) and, at package level, onnxc as an ONNX
backend (`onnx.backend.base.Backend`, see onnx_backend.py): `import onnxc.backend as backend;
backend.run_model(model, inputs)`, usable by `onnx.backend.test.BackendTest`."""


def _backend():
    from .onnx_backend import OnnxcBackend  # the compiler imports this package first
    return OnnxcBackend


def is_compatible(model, device="CPU", **kwargs):
    return _backend().is_compatible(model, device, **kwargs)


def prepare(model, device="CPU", **kwargs):
    return _backend().prepare(model, device, **kwargs)


def run_model(model, inputs, device="CPU", **kwargs):
    return _backend().run_model(model, inputs, device, **kwargs)


def run_node(node, inputs, device="CPU", outputs_info=None, **kwargs):
    return _backend().run_node(node, inputs, device, outputs_info, **kwargs)


def supports_device(device):
    return _backend().supports_device(device)
