"""onnxc: an ahead-of-time compiler from ONNX models to standalone native libraries."""
__version__ = "0.1.0"

from .driver import compile, compile_to_dir  # noqa: E402,A004
from .errors import BuildError, ModelError, OnnxcError, ScheduleError, UnsupportedOps  # noqa: E402
from .runtime import CompiledModel, NodeArg, load  # noqa: E402

__all__ = ["compile", "compile_to_dir", "load", "CompiledModel", "NodeArg", "OnnxcError",
           "ModelError", "UnsupportedOps", "ScheduleError", "BuildError", "__version__"]
