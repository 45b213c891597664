"""The suite's memo of NNCF's pattern matching (tests/nncf_memo.py): in place, and keyed on all the matcher reads."""
from __future__ import annotations

import networkx as nx
import pytest

import nncf_memo


def test_the_memo_is_in_place_for_this_nncf(_nncf_pattern_memo) -> None:
    """NNCF moving its matcher would silently make the suite slower (and every repeat run its own): say so here."""
    if not nncf_memo.enabled():
        pytest.skip(f"{nncf_memo.ENV}=0")
    from nncf.common.graph import graph, graph_matching
    from nncf.common import insertion_point_graph

    assert _nncf_pattern_memo is not None, "nncf.common.graph.graph_matching.find_subgraphs_matching_pattern moved"
    for module in (graph, graph_matching, insertion_point_graph):
        assert module.find_subgraphs_matching_pattern is _nncf_pattern_memo


class _Pattern:  # what the memo reads of a GraphPattern: its .graph
    def __init__(self, graph: nx.MultiDiGraph) -> None:
        self.graph = graph


def _chain(*types: str, first: int = 0, pattern: bool = False) -> nx.MultiDiGraph:
    g = nx.MultiDiGraph()
    for i, t in enumerate(types):
        # a model graph's nodes carry more than the matcher reads (`other`: not keyed)
        g.add_node(f"{first + i} n", type=t, **({} if pattern else {"metatype": t.upper(), "other": object()}))
    for i in range(len(types) - 1):
        g.add_edge(f"{first + i} n", f"{first + i + 1} n")
    return g


def test_the_memo_calls_again_for_anything_the_matcher_reads() -> None:
    calls = []

    def real(graph, pattern, strict=True):
        calls.append(1)
        return [sorted(graph.nodes)]

    cached = nncf_memo.memoize(real)
    pattern = _Pattern(_chain("conv", "relu", first=100, pattern=True))
    same_pattern_new_ids = _Pattern(_chain("conv", "relu", first=7, pattern=True))
    out = cached(_chain("conv", "relu", "add"), pattern)
    out[0].append("x")  # a caller's edit does not reach the memo
    assert cached(_chain("conv", "relu", "add"), same_pattern_new_ids) == [["0 n", "1 n", "2 n"]] and len(calls) == 1
    cached(_chain("conv", "relu", "add"), pattern, strict=False)  # strictness
    cached(_chain("conv", "sigmoid", "add"), pattern)  # a node's type
    cached(_chain("conv", "relu", "add", first=1), pattern)  # node keys
    cached(_chain("conv", "relu"), pattern)  # the edges
    cached(_chain("conv", "relu", "add"), _Pattern(_chain("conv", "add", pattern=True)))  # the pattern
    assert len(calls) == 6
    unhashable = _chain("conv", "relu")
    unhashable.nodes["0 n"]["type"] = {"a": 1}  # no key: the real call, every time
    cached(unhashable, pattern), cached(unhashable, pattern)
    assert len(calls) == 8
