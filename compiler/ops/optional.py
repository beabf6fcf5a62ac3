"""Optional values where the model states them statically: OptionalHasElement and
OptionalGetElement.

Graph inputs of optional or sequence type are not supported (the ABI passes tensors only), so
an input here is either absent (an empty optional: has no element) or a plain tensor (which the
spec treats as present). Both answers are known when compiling.
"""
from __future__ import annotations

import numpy as np

from .common import copy_body
from .registry import register
from .shape import emit_constant


@register("OptionalHasElement", since=15)
def OptionalHasElement(ctx, optional_input=None):
    emit_constant(ctx, np.array(optional_input is not None))


@register("OptionalGetElement", since=15)
def OptionalGetElement(ctx, optional_input):
    """A tensor input is returned as it is (opset 18 allows tensors as well as optionals)."""
    ctx.emit(copy_body(ctx.output(0), optional_input), kind="elementwise")
