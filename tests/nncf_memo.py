"""Test-session memo of NNCF's hardware-pattern matching (imported by basename from conftest).

On the tiny test models (the Nano topology: ~370 nodes) NNCF spends ~12 of a quantization's
~25 s in ``find_subgraphs_matching_pattern``: networkx subgraph isomorphism of ~300 fusing
patterns over the whole graph, twice per run. The suite quantizes many of its graphs more than
once (the same format, output kind and size under other options); the memo saves the repeats
(about a minute of the suite on a 2-core AVX2 VM). The function's result depends
only on the graph's ordered nodes (their keys and the two attributes the matcher reads), its
edges and the pattern graph; the memo keys on exactly those and falls back to the real call for
anything it cannot key. Everything else (statistics, quantizer placement, the written graph) is
NNCF's own work, so every test still runs the real quantization.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

# The node attributes the matcher compares (GraphPattern.METATYPE_ATTR, GraphPattern.NODE_TYPE_ATTR).
_NODE_ATTRS = ("type", "metatype")
_MODULES = ("nncf.common.graph.graph_matching", "nncf.common.graph.graph", "nncf.common.insertion_point_graph")


def _freeze(value: Any) -> Hashable:
    """A hashable stand-in for an attribute value (lists and sets of metatypes); TypeError if none."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(_freeze(v) for v in value)
    hash(value)
    return value


def _graph_key(graph) -> Hashable:
    return (tuple((n, *(_freeze(d.get(a)) for a in _NODE_ATTRS)) for n, d in graph.nodes(data=True)),
            tuple(graph.edges(keys=True)))


def _pattern_key(pattern) -> Hashable:
    """The pattern graph up to its node ids (built afresh per run, possibly with new ids)."""
    g = pattern.graph
    index = {n: i for i, n in enumerate(g.nodes)}
    nodes = tuple(tuple(sorted((k, _freeze(v)) for k, v in d.items())) for _, d in g.nodes(data=True))
    return nodes, tuple((index[a], index[b]) for a, b, _ in g.edges(keys=True))


def memoize(real: Callable) -> Callable:
    """``real`` (find_subgraphs_matching_pattern) with its results kept per graph, pattern and strictness."""
    memo: dict[Hashable, list[list[str]]] = {}

    def cached(graph, pattern_graph, strict: bool = True) -> list[list[str]]:
        try:
            key = (_graph_key(graph), _pattern_key(pattern_graph), bool(strict))
        except (TypeError, AttributeError):
            return real(graph, pattern_graph, strict)
        if key not in memo:
            memo[key] = real(graph, pattern_graph, strict)
        return [list(match) for match in memo[key]]  # callers get their own lists

    return cached


ENV = "YOLOX_EDGE_TEST_NNCF_MEMO"  # "0": the session runs NNCF's matcher unmemoized


def enabled() -> bool:
    """Whether the session memoizes (not turned off through ``ENV``)."""
    import os

    return os.environ.get(ENV, "1") != "0"


def install(monkeypatch) -> Callable | None:
    """Put the memo in place of the matcher wherever NNCF imported it; None without NNCF."""
    import importlib

    try:
        modules = [importlib.import_module(m) for m in _MODULES]
    except ImportError:
        return None
    real = modules[0].find_subgraphs_matching_pattern
    if not all(getattr(m, "find_subgraphs_matching_pattern", None) is real for m in modules):
        return None  # NNCF moved it: run unmemoized rather than patch half of it
    cached = memoize(real)
    for m in modules:
        monkeypatch.setattr(m, "find_subgraphs_matching_pattern", cached)
    return cached
