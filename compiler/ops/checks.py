"""RunCheck: a condition computed by the graph that the run must satisfy.

The frontend inserts it where it compiled a subgraph for facts only the run can confirm (an
unrolled Loop's iteration count). It passes its first input through unchanged, so that it
stays on the path to an output, and fails the run with its message when the condition is
false.
"""
from __future__ import annotations

from .registry import INTERNAL_DOMAIN, register
from .runtime_values import all_of, values_of


def _passes_through(inputs, attrs):
    value = inputs[0]
    return [(value.dtype, value.shape, ())]


@register("RunCheck", domain=INTERNAL_DOMAIN, bound=_passes_through)
def RunCheck(ctx, value, ok, *, message="a value read at run time breaks what was compiled"):
    ctx.check(all_of(values_of(ctx, ok)), message)
    ctx.alias(ctx.output(0), value)
