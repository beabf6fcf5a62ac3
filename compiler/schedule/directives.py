"""Schedule directives: plain data addressing loops (and buffers) by name; JSON-serializable."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Split:
    """loop -> loop_o (ceil(extent/factor)) x loop_i (factor); a remainder is guarded."""
    loop: str
    factor: int
    outer: str = ""
    inner: str = ""


@dataclass(frozen=True, slots=True)
class Reorder:
    """The named loops, which must sit in one perfect nest, take this order."""
    loops: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Fuse:
    """outer and its directly nested inner loop become one loop of the product extent."""
    outer: str
    inner: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class Vectorize:
    loop: str


@dataclass(frozen=True, slots=True)
class Unroll:
    loop: str


@dataclass(frozen=True, slots=True)
class Parallel:
    """The kernel's outermost loop runs on the thread pool, `grain` iterations at least a task."""
    loop: str
    grain: int = 1


@dataclass(frozen=True, slots=True)
class Bind:
    """The loop's iterations become a GPU launch's blocks or threads along `axis`
    ("blockIdx.x" ... "threadIdx.z"). Bound loops head a kernel's top-level nest, blocks
    outside threads, and their iterations must be independent."""
    loop: str
    axis: str


@dataclass(frozen=True, slots=True)
class CacheWrite:
    """Accumulate `buffer`'s tile touched under loop `at` in a kernel-local buffer."""
    buffer: str
    at: str


@dataclass(frozen=True, slots=True)
class TileContraction:
    """The nest headed by `loop`, a contraction (acc[..] = acc[..] + a * b, as MatMul, Gemm
    and Conv lower), as GPU block tiles: `block` (rows, cols) outputs per block, `thread`
    (rows, cols) of them per thread in registers, the reduction in steps of `step` staged in
    shared memory through `stages` buffers (2: a step's global loads overlap the previous
    step's products). The kernel's templates start and finish each thread's outputs.
    With `mma` (the operands' tensor-core type: "tfloat32", "float16" or "bfloat16") each warp
    computes a `thread` tile of outputs instead, as warp-level MMAs of `mma_shape` (m, n, k)
    on the tensor cores, the staged values rounded to that type."""
    loop: str
    block: tuple[int, int] = (64, 64)
    thread: tuple[int, int] = (4, 4)
    step: int = 16
    stages: int = 2
    mma: str = ""
    mma_shape: tuple[int, int, int] = ()


@dataclass(frozen=True, slots=True)
class Pack:
    """Lay out the constant `buffer` at compile time with dimension `dim` cut into tiles of
    `factor` and the tile number made outermost, so a tile's rows are contiguous."""
    buffer: str
    dim: int
    factor: int


DIRECTIVES = {cls.__name__: cls for cls in (Split, Reorder, Fuse, Vectorize, Unroll, Parallel,
                                            Bind, CacheWrite, TileContraction, Pack)}


def to_json(schedule: dict[str, tuple]) -> str:
    """{kernel name: directives} as JSON."""
    return json.dumps({k: [{"directive": type(d).__name__, **dataclasses.asdict(d)} for d in ds]
                       for k, ds in schedule.items()}, indent=1, sort_keys=True)


def from_json(text: str) -> dict[str, tuple]:
    def make(row):
        row = dict(row)
        cls = DIRECTIVES[row.pop("directive")]
        row = {k: tuple(v) if isinstance(v, list) else v for k, v in row.items()}
        return cls(**row)
    return {k: tuple(make(r) for r in rows) for k, rows in json.loads(text).items()}
