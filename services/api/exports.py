"""Subgraphs in the file formats graph tools read: GraphML, GEXF (Gephi), node-link JSON
(networkx, d3) and Cytoscape JSON (Cytoscape, cytoscape.js).

Why the attribute clean-up: GraphML and GEXF declare one type per attribute, so a property
that is an int on one node and a float on another (``aspect_ratio`` 1 vs 1.5) would be
declared twice and not read back; None cannot be written at all. Values are coerced to one
type per key (float wins over int, str over numbers) and None is left out.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import networkx as nx

from lookalike.graph import Subgraph

FORMATS: dict[str, tuple[str, str]] = {
    # name: (media type, file extension)
    "graphml": ("application/graphml+xml", "graphml"),
    "gexf": ("application/gexf+xml", "gexf"),
    "node-link": ("application/json", "json"),
    "cytoscape": ("application/json", "cyjs"),
}


def _type_rank(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return 1
    if isinstance(value, float):
        return 2
    return 3


def clean_attributes(items: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One scalar type per key across all items; None dropped; lists/maps as JSON text."""
    cleaned: list[dict[str, Any]] = []
    ranks: dict[str, set[int]] = {}
    for item in items:
        row: dict[str, Any] = {}
        for key, value in item.items():
            if value is None:
                continue
            if isinstance(value, list | tuple | dict):
                value = json.dumps(value, sort_keys=True)
            row[key] = value
            ranks.setdefault(key, set()).add(_type_rank(value))
        cleaned.append(row)
    for key, seen in ranks.items():
        if len(seen) == 1:
            continue
        # ints and floats together become floats; anything else mixed becomes text
        # (True is not 1.0).
        convert: Any = float if seen == {1, 2} else str
        for row in cleaned:
            if key in row:
                row[key] = convert(row[key])
    return cleaned


def to_networkx(sub: Subgraph) -> nx.DiGraph:
    """The subgraph as a DiGraph with cleaned node and edge attributes."""
    ids = sorted(sub.nodes)
    attrs = clean_attributes(
        [
            {
                **{k: v for k, v in sub.nodes[i].items() if k != "id"},
                **({"depth": sub.depth[i]} if i in sub.depth else {}),
            }
            for i in ids
        ]
    )
    g = nx.DiGraph()
    for node, data in zip(ids, attrs, strict=True):
        g.add_node(node, **data)
    for source, target, rank in sub.edges:
        g.add_edge(source, target, **({"rank": int(rank)} if rank is not None else {}))
    return g


def render(sub: Subgraph, fmt: str) -> bytes:
    """The subgraph in ``fmt`` (one of FORMATS)."""
    g = to_networkx(sub)
    if fmt == "graphml":
        buf = io.BytesIO()
        nx.write_graphml_xml(g, buf, encoding="utf-8", prettyprint=False)
        return buf.getvalue()
    if fmt == "gexf":
        buf = io.BytesIO()
        nx.write_gexf(g, buf, encoding="utf-8", prettyprint=False)
        return buf.getvalue()
    if fmt == "node-link":
        data = nx.node_link_data(g, edges="edges")  # what node_link_graph(data) reads
        data["truncated"] = sub.truncated
        return json.dumps(data).encode()
    if fmt == "cytoscape":
        return json.dumps(nx.cytoscape_data(g)).encode()
    raise ValueError(f"unknown export format {fmt!r}")
