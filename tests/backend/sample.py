"""The node-suite sample of the default test tier: for every op type the suite's cases use
(subgraphs included), the smallest case that uses it and is not excluded. About a tenth of the
suite runs every op type the full suite runs (tests/tiers.py)."""
from __future__ import annotations

import re

import onnx


def op_types(graph: onnx.GraphProto) -> set[tuple[str, str]]:
    """(domain, op_type) of every node of a graph and of its subgraphs."""
    found = set()
    for node in graph.node:
        found.add((node.domain if node.domain != "ai.onnx" else "", node.op_type))
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                found |= op_types(sub)
    return found


def node_sample(cases, excluded: dict[str, str]) -> frozenset[str]:
    """The names (test_NAME_cpu) of the sample of cases (onnx's loader TestCase records)
    that cover every op type of the cases that the exclusions (regexes) leave."""
    patterns = [re.compile(p) for p in excluded]
    kept = [c for c in cases if c.model is not None
            and not any(p.search(f"{c.name}_cpu") for p in patterns)]
    uses = {c.name: op_types(c.model.graph) for c in kept}
    size = {c.name: len(c.model.graph.node) for c in kept}
    chosen: set[str] = set()
    covered: set[tuple[str, str]] = set()
    for op in sorted(set().union(*uses.values())):
        if op in covered:
            continue
        best = min((name for name in uses if op in uses[name]), key=lambda n: (size[n], n))
        chosen.add(best)
        covered |= uses[best]
    return frozenset(f"{name}_cpu" for name in chosen)
