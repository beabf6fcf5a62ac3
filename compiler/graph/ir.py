"""Graph IR: the model after the frontend, as frozen values the graph passes rebuild."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np


@dataclass(frozen=True, slots=True)
class Value:
    """A tensor's type: dtype name and shape (ints, or names for symbolic dimensions).
    runtime_axes: axes whose extent the data decides (NonZero's count); shape holds their
    upper bound."""
    name: str
    dtype: str
    shape: tuple[int | str, ...]
    runtime_axes: tuple[int, ...] = ()

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)


@dataclass(frozen=True, slots=True)
class Node:
    op_type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: tuple[tuple[str, Any], ...] = ()
    domain: str = ""

    def attr(self, key: str, default=None):
        for k, v in self.attrs:
            if k == key:
                return v
        return default

    @property
    def attr_dict(self) -> dict[str, Any]:
        return dict(self.attrs)


@dataclass(frozen=True, eq=False)
class Graph:
    name: str
    inputs: tuple[Value, ...]
    outputs: tuple[Value, ...]
    nodes: tuple[Node, ...]
    values: Mapping[str, Value]                 # type of every tensor we know
    constants: Mapping[str, np.ndarray] = field(default_factory=dict)
    opsets: Mapping[str, int] = field(default_factory=dict)   # domain -> version

    def scalar(self, name: str | None) -> float | None:
        """The value of a one-element float constant, None for anything else."""
        data = self.constants.get(name or "")
        if data is None or data.size != 1 or data.dtype.kind != "f":
            return None
        return float(data.reshape(()))

    def producer(self) -> dict[str, Node]:
        return {out: n for n in self.nodes for out in n.outputs}

    def consumers(self) -> dict[str, list[Node]]:
        users: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in n.inputs:
                users.setdefault(i, []).append(n)
        return users

    def with_nodes(self, nodes, constants=None, values=None) -> "Graph":
        return Graph(self.name, self.inputs, self.outputs, tuple(nodes), values or self.values,
                     self.constants if constants is None else constants, self.opsets)
