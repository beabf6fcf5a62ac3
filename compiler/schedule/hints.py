"""The values schedules take dimension symbols at: a loop over a symbol is tiled for its
hint (the range's upper bound, else DEFAULT_SYMBOL_HINT), its tail guarded, so that every
value runs; schedule_kernels sets them around each default schedule."""
from __future__ import annotations

import contextlib
import contextvars

from ..loop.ir import Expr
from ..loop.symbolic import evaluate

DEFAULT_SYMBOL_HINT = 64
_HINTS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("symbol_hints",
                                                                  default=None)


@contextlib.contextmanager
def symbol_hints(symbols):
    """Schedules chosen inside take each symbol (Program.symbols) at its hint, else at its
    upper bound, else at DEFAULT_SYMBOL_HINT (within its range)."""
    token = _HINTS.set({s.var.name: s.hint if s.hint is not None else s.high
                        if s.high is not None else max(s.low, DEFAULT_SYMBOL_HINT)
                        for s in symbols})
    try:
        yield
    finally:
        _HINTS.reset(token)


def hinted(extent: Expr) -> int:
    """An extent over the symbols at their hints (1 for a symbol without one)."""
    try:
        return max(1, evaluate(extent, _HINTS.get() or {}))
    except ValueError:
        return 1
