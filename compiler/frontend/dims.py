"""Symbolic input dimensions: which the model has, the ranges the user gives, and (for
models some node of which compiles for static shapes only) one static model per value.

A model input dimension named by `dim_param` (batch, sequence) may be bounded by the user
(`--dim batch=1..8`) or given one value (`--dim batch=1`); without either it takes any value.
An unnamed dynamic dimension (skl2onnx, Paddle) gets the name INPUT:AXIS (name_dims), and any
symbolic axis can be bound by that form too (`--dim X:0=1..8`). The generic program's symbols
come from here (frontend/symbolic.py); specializations() and specialize() give the static
programs that a static-only node needs instead, or that one value adds as a fast path.
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

_DIM_TEXT = re.compile(r"\s*([A-Za-z_][\w.:/-]*)\s*=\s*(\d+)\s*(?:\.\.\s*(\d+)\s*)?"
                       r"(?:@\s*(\d+)\s*)?")


@dataclass(frozen=True)
class DimRange:
    name: str
    low: int
    high: int | None     # None: no upper bound (the generic program's memory grows)
    hint: int | None = None   # the value schedules are chosen for (None: schedule/hints.py)


def parse_dim(text: str) -> DimRange:
    """'batch=4', 'batch=1..8' or 'seq=1..512@128' -> DimRange."""
    m = _DIM_TEXT.fullmatch(text)
    if not m:
        raise ModelError(f"--dim {text!r}: expected NAME=N, NAME=LOW..HIGH or "
                         "NAME=LOW..HIGH@HINT")
    low = int(m.group(2))
    high = int(m.group(3)) if m.group(3) is not None else low
    hint = int(m.group(4)) if m.group(4) is not None else None
    if low < 1 or high < low:
        raise ModelError(f"--dim {text!r}: need 1 <= LOW <= HIGH")
    if hint is not None and not low <= hint <= high:
        raise ModelError(f"--dim {text!r}: need LOW <= HINT <= HIGH")
    return DimRange(m.group(1), low, high, hint)


DIM_METAVAR = "NAME=N|NAME=LOW..HIGH[@HINT]"
DIM_HELP = ("bound a dynamic input dimension (by its name, or INPUT:AXIS) to a range, or add a "
            "static fast path for one value beside the generic program; @HINT: the value "
            "schedules are tuned for (repeatable); without it every dimension takes any value")


def add_dim_option(parser, more: str = "") -> None:
    """The --dim option of the commands that compile a model."""
    parser.add_argument("--dim", action="append", default=[], metavar=DIM_METAVAR,
                        help=DIM_HELP + more)


def parse_dims(texts: list[str]) -> dict[str, tuple[int, int]]:
    """--dim texts -> {name: (low, high) or (low, high, hint)}; a name given twice is an
    error."""
    dims: dict[str, tuple] = {}
    for text in texts:
        d = parse_dim(text)
        if d.name in dims:
            raise ModelError(f"--dim {d.name} is given twice")
        dims[d.name] = (d.low, d.high) if d.hint is None else (d.low, d.high, d.hint)
    return dims


def unnamed_dim_name(input_name: str, axis: int) -> str:
    return f"{input_name}:{axis}"


def dim_symbol(input_name: str, axis: int, d) -> str:
    """The symbol a dynamic input axis carries: its dim_param, else INPUT:AXIS."""
    return d.dim_param or unnamed_dim_name(input_name, axis)


def is_dynamic(d) -> bool:
    """A dimension without a value, or with a negative one (exporters write -1 for "any", and
    onnxruntime reads it so)."""
    return not d.HasField("dim_value") or d.dim_value < 0


def _dynamic_axes(model: onnx.ModelProto):
    """(input, axis, dim) for each graph input axis without a value."""
    initializers = {t.name for t in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in initializers or not inp.type.tensor_type.HasField("shape"):
            continue
        for axis, d in enumerate(inp.type.tensor_type.shape.dim):
            if is_dynamic(d):
                yield inp, axis, d


def name_dims(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model, or a copy in which each unnamed dynamic input dimension (no value, or a
    negative one) is named INPUT:AXIS (a dimension of its own: onnxruntime equates no two
    unnamed dimensions)."""
    if all(d.dim_param and not d.HasField("dim_value") for _, _, d in _dynamic_axes(model)):
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for inp, axis, d in _dynamic_axes(out):
        d.dim_param = dim_symbol(inp.name, axis, d)   # clears dim_value
    return out


def symbolic_dims(model: onnx.ModelProto) -> list[str]:
    """Names of the symbolic dimensions of the graph inputs, in order of first use (an
    unnamed one by its INPUT:AXIS name)."""
    names: list[str] = []
    for inp, axis, d in _dynamic_axes(model):
        name = dim_symbol(inp.name, axis, d)
        if name not in names:
            names.append(name)
    return names


def _by_symbol(model: onnx.ModelProto, dims: dict) -> dict:
    """dims keyed by symbol name: an INPUT:AXIS key names the symbol on that axis (the same
    symbol bound twice must get the same range)."""
    axes = {unnamed_dim_name(inp.name, axis): dim_symbol(inp.name, axis, d)
            for inp, axis, d in _dynamic_axes(model)}
    found: dict = {}
    for key, bound in dims.items():
        symbol = key if key in axes.values() else axes.get(key, key)
        if symbol in found and found[symbol][1] != bound:
            raise ModelError(f"--dim {found[symbol][0]} and --dim {key} bind dimension "
                             f"{symbol!r} to different values")
        found[symbol] = (key, bound)
    return {symbol: bound for symbol, (_, bound) in found.items()}


def _range(name: str, bound) -> tuple[int, int]:
    """A value N or a pair (LOW, HIGH), checked (a hint, third, is left to _hint)."""
    low, high = (bound, bound) if isinstance(bound, int) else tuple(bound)[:2]
    if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high):
        raise ModelError(f"dimension {name!r}: need a value >= 1 or a range (low, high) with "
                         f"1 <= low <= high, got {bound!r}")
    return low, high


def _hint(name: str, bound) -> int | None:
    """The third of (LOW, HIGH, HINT), checked; None without one."""
    if isinstance(bound, int) or len(tuple(bound)) < 3:
        return None
    low, high, hint = tuple(bound)[:3]
    if not isinstance(hint, int) or not low <= hint <= high:
        raise ModelError(f"dimension {name!r}: the hint {hint!r} must lie in {low}..{high}")
    return hint


def dim_ranges(model: onnx.ModelProto, dims: dict | None) -> list[DimRange]:
    """Every symbolic dimension (model order) with its range: the one given, else 1 and no
    upper bound (high None)."""
    symbols = symbolic_dims(model)
    given = _by_symbol(model, dims or {})
    dims = {k: (*_range(k, v), _hint(k, v)) for k, v in given.items()}
    unknown = sorted(set(dims) - set(symbols))
    if unknown:
        raise ModelError(f"--dim {', '.join(unknown)}: the model has no such input dimension "
                         f"(its symbolic dimensions: {symbols or 'none'})")
    return [DimRange(s, *dims.get(s, (1, None, None))) for s in symbols]


def specializations(model: onnx.ModelProto, dims: dict | None
                    ) -> tuple[list[DimRange], list[tuple[int, ...]]]:
    """The bound symbols (model order) and every combination of their values. dims maps a
    symbol to a value or a (low, high) range."""
    symbols = symbolic_dims(model)
    dims = {k: _range(k, v) for k, v in _by_symbol(model, dims or {}).items()}
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
