"""A standard ONNX op that onnxc does not implement, read from the live registry.

Error-path tests need a real ai.onnx op that onnxc lacks; naming one by hand goes stale the
day that op is added, so pick the first of a few one-input, same-shape candidates that is
still missing.
"""

from onnxc.ops.registry import registered

# One float input, output of the input's shape and dtype: any of them fits the test graphs.
_SAME_SHAPE_CANDIDATES = ("Bernoulli", "RandomUniformLike", "RandomNormalLike")


def missing_unary_op() -> str:
    have = {op for (domain, op) in registered() if domain == ""}
    for op in _SAME_SHAPE_CANDIDATES:
        if op not in have:
            return op
    raise AssertionError(f"onnxc implements all of {_SAME_SHAPE_CANDIDATES}: extend the list")
