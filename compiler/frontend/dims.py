"""Symbolic input dimensions: which the model has, the values the user allows, and one
static model per allowed combination.

A model input dimension named by `dim_param` (batch, sequence) is bound by the user to a
value or a range (`--dim batch=1..8`). Each combination of values is compiled as its own
fully static program (a specialization); the library picks one at run time from the values
the caller sets. Static models have no symbols and one specialization: nothing changes.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import onnx

from ..errors import ModelError

# One compiled program per combination: past this, code size and compile time stop being
# reasonable, and the user should narrow the ranges.
MAX_SPECIALIZATIONS = 64

_DIM_TEXT = re.compile(r"\s*([A-Za-z_][\w.:/-]*)\s*=\s*(\d+)\s*(?:\.\.\s*(\d+)\s*)?")


@dataclass(frozen=True)
class DimRange:
    name: str
    low: int
    high: int


def parse_dim(text: str) -> DimRange:
    """'batch=4' or 'batch=1..8' -> DimRange."""
    m = _DIM_TEXT.fullmatch(text)
    if not m:
        raise ModelError(f"--dim {text!r}: expected NAME=N or NAME=LOW..HIGH")
    low = int(m.group(2))
    high = int(m.group(3)) if m.group(3) is not None else low
    if low < 1 or high < low:
        raise ModelError(f"--dim {text!r}: need 1 <= LOW <= HIGH")
    return DimRange(m.group(1), low, high)


def symbolic_dims(model: onnx.ModelProto) -> list[str]:
    """Names of the symbolic dimensions of the graph inputs, in order of first use.
    An unnamed dynamic dimension cannot be bound, so it is an error."""
    names: list[str] = []
    initializers = {t.name for t in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in initializers or not inp.type.tensor_type.HasField("shape"):
            continue
        for axis, d in enumerate(inp.type.tensor_type.shape.dim):
            if d.HasField("dim_value"):
                continue
            if not d.dim_param:
                raise ModelError(f"input {inp.name!r} axis {axis} has an unnamed dynamic "
                                 "dimension: give it a name (dim_param) in the model to bind "
                                 "it with --dim")
            if d.dim_param not in names:
                names.append(d.dim_param)
    return names


def _range(name: str, bound) -> tuple[int, int]:
    """A value N or a pair (LOW, HIGH), checked."""
    low, high = (bound, bound) if isinstance(bound, int) else tuple(bound)
    if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high):
        raise ModelError(f"dimension {name!r}: need a value >= 1 or a range (low, high) with "
                         f"1 <= low <= high, got {bound!r}")
    return low, high


def specializations(model: onnx.ModelProto, dims: dict | None
                    ) -> tuple[list[DimRange], list[tuple[int, ...]]]:
    """The bound symbols (model order) and every combination of their values. dims maps a
    symbol to a value or a (low, high) range."""
    symbols = symbolic_dims(model)
    dims = {k: _range(k, v) for k, v in (dims or {}).items()}
    unknown = sorted(set(dims) - set(symbols))
    if unknown:
        raise ModelError(f"--dim {', '.join(unknown)}: the model has no such input dimension "
                         f"(its symbolic dimensions: {symbols or 'none'})")
    unbound = [s for s in symbols if s not in dims]
    if unbound:
        raise ModelError(f"symbolic input dimension(s) {unbound} need a value or range: "
                         f"e.g. --dim {unbound[0]}=1 or --dim {unbound[0]}=1..8")
    ranges = [DimRange(s, *dims[s]) for s in symbols]
    count = 1
    for r in ranges:
        count *= r.high - r.low + 1
    if count > MAX_SPECIALIZATIONS:
        raise ModelError(f"the --dim ranges give {count} combinations; at most "
                         f"{MAX_SPECIALIZATIONS} are compiled: narrow the ranges")
    values = list(itertools.product(*(range(r.low, r.high + 1) for r in ranges)))
    return ranges, values


def specialize(model: onnx.ModelProto, bindings: dict[str, int]) -> onnx.ModelProto:
    """A copy of the model with each bound symbol replaced by its value, everywhere the
    graph states a shape (inputs, outputs, value_info); shape inference redoes the rest."""
    if not bindings:
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    for info in itertools.chain(g.input, g.output, g.value_info):
        if not info.type.tensor_type.HasField("shape"):
            continue
        for d in info.type.tensor_type.shape.dim:
            if d.dim_param in bindings:
                d.dim_value = bindings[d.dim_param]
    return out
