from .loader import CompiledModel, NodeArg, load

__all__ = ["CompiledModel", "NodeArg", "load"]
