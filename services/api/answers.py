"""The shapes of the API's answers, as models the OpenAPI document is written from.

The handlers build plain dicts (``shapes.py``, ``lookalike.analysis``); these models describe
them for clients, and schemathesis checks every answer of the running server against them.
Extra keys are allowed: an answer may grow without breaking a client.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lookalike.hashing import HASH_KINDS


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


Millis = int  # epoch milliseconds


class ErrorDetail(Answer):
    status: int
    message: str = Field(description="what was wrong and what to do about it")
    parameter: str | None = Field(None, description="the parameter or field at fault")


class Error(Answer):
    """Every error: ``{"error": {"status", "message", "parameter"}}``."""

    error: ErrorDetail


class Health(Answer):
    status: Literal["ok"]


class Ready(Answer):
    ready: bool
    checks: dict[str, Any]


class Index(Answer):
    name: str
    version: str
    openapi: str
    explorer: str | None = Field(None, description="where the explorer is")
    endpoints: list[str]


class Hashes(Answer):
    phash: str | None = None
    dhash: str | None = None
    whash: str | None = None
    ahash: str | None = None
    colorhash: str | None = None


assert set(Hashes.model_fields) == set(HASH_KINDS)


class CrawlMarks(Answer):
    fetched_at: Millis | None = None
    hashed_at: Millis | None = None
    hash_version: str | None = None
    hash_error: str | None = None
    embed_model: str | None = Field(None, description="the model that embedded the thumbnail")
    embedded_at: Millis | None = None
    embed_error: str | None = None


class Image(Answer):
    """One image: catalogue fields, hashes, crawl marks, degrees, analysis."""

    id: str
    title: str | None = None
    source_id: str | None = None
    thumbnail_url: str | None = None
    license: str | None = None
    aspect_ratio: float | None = None
    average_color: str | None = None
    hashes: Hashes
    crawl: CrawlMarks
    out_degree: int | None = None
    in_degree: int | None = None
    dup_group: str | int | None = Field(None, description="near-duplicate group (its smallest id)")
    dup_group_size: int | None = None
    analysis: dict[str, Any] | None = Field(
        description=(
            "scores of the latest whole-graph analysis: community, pagerank, degree, analysis_id"
        )
    )
    thumbnail_cached: bool | None = None
    work_url: str | None = Field(
        None, description=("the work's page in the catalogue, for people (LOOKALIKE_WORK_URL)")
    )
    extra: dict[str, Any]


class Brief(Answer):
    id: str
    title: str | None = None
    thumbnail_url: str | None = None
    license: str | None = None


class FoundImages(Answer):
    q: str
    image: Brief | None = Field(description="the image whose id is q, if there is one")
    total: int = Field(description="how many titles match")
    offset: int
    limit: int
    next: int | None = Field(description="the offset of the next page, if there is one")
    images: list[Brief]


class Similar(Answer):
    id: str
    rank: int | None
    title: str | None = None
    thumbnail_url: str | None = None
    first_seen: Millis | None = None
    last_seen: Millis | None = None


class SimilarList(Answer):
    id: str
    count: int
    similar: list[Similar]


class Node(Answer):
    id: str
    depth: int | None = Field(None, ge=0)
    x: float | None = Field(None, description="with layout: where to draw it, in node widths")
    y: float | None = Field(None, description="with layout: where to draw it, in node widths")
    thumbnail_cached: bool | None = Field(
        None, description="with layout: GET /images/{id}/thumbnail has it"
    )


class Edge(Answer):
    source: str
    target: str
    rank: int | None = None


class NodeLink(Answer):
    """Node-link JSON, as networkx writes it: ``networkx.node_link_graph(data)`` reads it."""

    directed: bool
    multigraph: bool
    graph: dict[str, Any]
    nodes: list[Node]
    edges: list[Edge]
    truncated: bool | None = None


class PathNode(Answer):
    id: str
    title: str | None = None
    thumbnail_url: str | None = None


class Path(Answer):
    from_: str = Field(alias="from")
    to: str
    hops: int = Field(ge=0)
    ids: list[str]
    nodes: list[PathNode]
    edges: list[Edge]


class Match(Answer):
    id: str
    distance: int | None
    kind: str | None = None
    title: str | None = None
    thumbnail_url: str | None = None
    mirrored: bool | None = None
    # the one ranking's evidence (absent in per-kind answers)
    match: bool | None = Field(None, description="a verified near-duplicate")
    weighted: float | None = Field(None, description="weighted hash distance, bits")
    distances: dict[str, int] | None = Field(None, description="bits apart, per hash kind")
    information: float | None = Field(None, description="the smaller of the two pictures' detail")
    color: float | None = Field(
        None, description="colour layout distance (null: either picture has no colour)"
    )
    cosine: float | None = Field(
        None, description="embedding cosine (null: either picture has no embedding)"
    )
    why: list[str] | None = Field(None, description="what decided it")


class Duplicates(Answer):
    id: str
    kind: str | None
    hash: str | None = None
    k: int | None = None
    max_distance: int | None = None
    mirror: bool | None = None
    dup_group: str | int | None = None
    matches: list[Match]


class Lookalike(Answer):
    id: str
    score: float = Field(description="embedding cosine")
    refined: bool | None = Field(None, description="both vectors compared were refined")
    mirrored: bool | None = Field(None, description="matched through the mirror image")
    title: str | None = None
    thumbnail_url: str | None = None


class SearchResult(Answer):
    hashes: dict[str, str]
    kinds: list[str] | None = None
    k: int | None = None
    max_distance: int | None = None
    mirror: bool | None = None
    matches: list[Match] | None = Field(None, description="one ranking across hash kinds")
    results: dict[str, list[Match]] = Field(description="matches per hash kind")
    embedding: list[Lookalike] | None = Field(
        None, description="nearest by embedding cosine (null when embeddings are off)"
    )


class Lookalikes(Answer):
    id: str
    k: int | None = None
    refined: bool | None = None
    model: str | None = Field(None, description="the embedding model's version")
    generation: str | None = Field(None, description="the index generation answering")
    lookalikes: list[Lookalike]


class AuditSummary(Answer):
    edges: int
    with_vectors: int
    reciprocal: int
    cos_raw: dict[str, float] = Field(description="quantiles p10, p50, p90 of the raw cosines")
    unlisted: int
    strong: float = Field(description="the cosine from which a lookalike counts as strong")
    model: str


class AuditItem(Answer):
    """An edge (source, target, rank, cosines, hash distances, colour distance, reciprocal)
    or, in the ``unlisted`` section, a pair (a, b, cosines) the catalogue does not list."""

    source: str | None = None
    target: str | None = None
    rank: int | None = None
    a: str | None = None
    b: str | None = None
    cos_raw: float | None = None
    cos_refined: float | None = None
    hash_distance: dict[str, int | None] | None = None
    colour_distance: float | None = Field(None, description="CIELAB Delta E of the average colours")
    reciprocal: bool | None = None


class Audit(Answer):
    generation: str | None = None
    section: str
    offset: int
    limit: int
    total: int
    summary: AuditSummary
    items: list[AuditItem]


class Ranked(Answer):
    id: str
    value: float


class Components(Answer):
    count: int | None = None
    largest: int | None = None
    sizes: list[int] | None = None
    isolated: int | None = None
    strongly_connected: int | None = None


class Clustering(Answer):
    average: float | None = None
    transitivity: float | None = None


class Diameter(Answer):
    value: int | None = None
    exact: bool | None = None
    component_size: int | None = None


class Centrality(Answer):
    degree: list[Ranked] | None = None
    in_degree: list[Ranked] | None = None
    betweenness: list[Ranked] | None = None
    pagerank: list[Ranked] | None = None
    betweenness_exact: bool | None = None
    betweenness_samples: int | None = None


class Communities(Answer):
    count: int | None = None
    sizes: list[int] | None = None
    modularity: float | None = None
    algorithm: Literal["leiden"] | None = None
    seed: int | None = None
    membership: dict[str, int] | None = None


class Analysis(Answer):
    subgraph: dict[str, Any] | None = None
    label: str | None = None
    nodes: int
    edges: int
    undirected_edges: int | None = None
    reciprocal_edges: int | None = None
    density: float
    directed_density: float | None = None
    degree_histogram: list[int]
    in_degree_histogram: list[int] | None = None
    out_degree_histogram: list[int] | None = None
    mean_degree: float | None = None
    components: Components
    clustering: Clustering
    diameter: Diameter
    centrality: Centrality
    communities: Communities | None = None


class Comparison(Answer):
    items: list[Analysis]
    labels: list[str]
    jaccard: list[list[float]]
    shared_nodes: int | None = None
    subgraphs: list[dict[str, Any]]


class JobProgress(Answer):
    """Where a running whole-graph job is."""

    phase: Literal["export", "compute", "write", "done"]
    done: int
    total: int


class Job(Answer):
    id: str
    status: Literal["queued", "running", "done", "failed"]
    created_at: int | None = None
    started_at: int | None = None
    finished_at: int | None = None
    error: str | None = None
    params: Any = None
    summary: Any = None
    progress: JobProgress | None = None


class JobList(Answer):
    jobs: list[Job]


class CommunityMembers(Answer):
    community: int
    analysis_id: str | None = None
    images: list[dict[str, Any]]


class Crawl(Answer):
    id: str
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    seeds: list[str] | None = None
    depth: int | None = None
    max_images: int | None = None
    counts: dict[str, Any] | None = None
    created_at: int | None = None
    finished_at: int | None = None


class CrawlList(Answer):
    crawls: list[Crawl]
    total: int | None = Field(None, description="crawls Redis remembers")
    offset: int | None = None
    limit: int | None = None


class CypherResult(Answer):
    columns: list[str]
    rows: list[dict[str, Any]]
    row_count: int
    truncated: bool
    max_rows: int | None = None
