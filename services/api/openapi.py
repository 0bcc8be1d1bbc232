"""The OpenAPI 3.1 description of the API, written as a table next to the code it describes.

Why by hand: the routes validate with small helpers (``params.py``), not a schema library, so
there is nothing to generate from; instead ``check_routes`` (run by the tests) proves every
Flask route is described and every description has a route, and schemathesis checks that the
responses match. Limits in the document come from the same settings the handlers use.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from lookalike.hashing import HASH_BITS, HASH_KINDS
from lookalike.settings import Settings
from services.api.exports import FORMATS
from services.api.params import BOOLEAN_WORDS, ID_PATTERN

API_VERSION = "1.0.0"

Schema = dict[str, Any]


def _nullable(kind: str | list[str], **extra: Any) -> Schema:
    kinds = [kind] if isinstance(kind, str) else list(kind)
    return {"type": [*kinds, "null"], **extra}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _query(name: str, schema: Schema, description: str, required: bool = False) -> Schema:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description}


def _path(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": schema,
            "description": description}


ID_SCHEMA: Schema = {"type": "string", "pattern": ID_PATTERN, "maxLength": 64}
HEX_ID: Schema = {"type": "string", "pattern": "^[0-9a-f]{1,64}$"}
ID_LIST: Schema = {"type": "string", "pattern": "^[a-z0-9]{1,64}(,[a-z0-9]{1,64})*$"}


def _body(properties: dict[str, Schema], required: tuple[str, ...] = (),
          description: str = "") -> Schema:
    """A JSON object body: unknown fields are refused, and null means "not given" for every
    optional field (the handlers treat both the same)."""
    schema: Schema = {
        "type": "object", "additionalProperties": False,
        "properties": {
            name: prop if name in required else {"anyOf": [prop, {"type": "null"}]}
            for name, prop in properties.items()
        },
    }
    if required:
        schema["required"] = list(required)
    if description:
        schema["description"] = description
    return schema


def _schemas(settings: Settings) -> dict[str, Schema]:
    timestamp = _nullable("integer", description="epoch milliseconds")
    text = _nullable("string")
    return {
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {
                "type": "object", "required": ["status", "message"],
                "properties": {
                    "status": {"type": "integer"},
                    "message": {"type": "string"},
                    "parameter": {"type": "string",
                                  "description": "the parameter or field at fault"},
                },
            }},
        },
        "Image": {
            "type": "object",
            "required": ["id", "hashes", "crawl", "analysis", "extra"],
            "properties": {
                "id": {"type": "string"},
                "title": text, "source_id": text, "thumbnail_url": text, "license": text,
                "aspect_ratio": _nullable("number"), "average_color": text,
                "hashes": {"type": "object", "properties": {k: text for k in HASH_KINDS}},
                "crawl": {"type": "object", "properties": {
                    "fetched_at": timestamp, "hashed_at": timestamp, "hash_version": text,
                    "hash_error": text}},
                "out_degree": {"type": "integer"}, "in_degree": {"type": "integer"},
                "dup_group": _nullable(["string", "integer"],
                                       description="near-duplicate group (its smallest id)"),
                "dup_group_size": _nullable("integer"),
                "analysis": _nullable("object", description=(
                    "scores of the latest whole-graph analysis: community, pagerank, degree, "
                    "analysis_id")),
                "thumbnail_cached": {"type": "boolean"},
                "extra": {"type": "object"},
            },
        },
        "SimilarList": {
            "type": "object", "required": ["id", "count", "similar"],
            "properties": {
                "id": {"type": "string"}, "count": {"type": "integer"},
                "similar": {"type": "array", "items": {
                    "type": "object", "required": ["id", "rank"],
                    "properties": {"id": {"type": "string"}, "rank": _nullable("integer"),
                                   "title": text, "thumbnail_url": text,
                                   "first_seen": timestamp, "last_seen": timestamp}}},
            },
        },
        "NodeLink": {
            "type": "object",
            "description": "node-link JSON: networkx.node_link_graph(data, edges='links')",
            "required": ["directed", "multigraph", "graph", "nodes", "links"],
            "properties": {
                "directed": {"type": "boolean"}, "multigraph": {"type": "boolean"},
                "graph": {"type": "object"},
                "nodes": {"type": "array", "items": {
                    "type": "object", "required": ["id"],
                    "properties": {"id": {"type": "string"},
                                   "depth": {"type": "integer", "minimum": 0}}}},
                "links": {"type": "array", "items": {
                    "type": "object", "required": ["source", "target"],
                    "properties": {"source": {"type": "string"}, "target": {"type": "string"},
                                   "rank": _nullable("integer")}}},
                "truncated": {"type": "boolean"},
            },
        },
        "Path": {
            "type": "object", "required": ["from", "to", "hops", "ids", "nodes", "edges"],
            "properties": {
                "from": {"type": "string"}, "to": {"type": "string"},
                "hops": {"type": "integer", "minimum": 0},
                "ids": {"type": "array", "items": {"type": "string"}},
                "nodes": {"type": "array", "items": {"type": "object"}},
                "edges": {"type": "array", "items": {
                    "type": "object", "properties": {
                        "source": {"type": "string"}, "target": {"type": "string"},
                        "rank": _nullable("integer")}}},
            },
        },
        "Match": {
            "type": "object", "required": ["id", "distance"],
            "properties": {"id": {"type": "string"}, "distance": {"type": "integer"},
                           "kind": {"type": "string"}, "title": text,
                           "thumbnail_url": text, "mirrored": {"type": "boolean"}},
        },
        "Duplicates": {
            "type": "object", "required": ["id", "kind", "matches"],
            "properties": {"id": {"type": "string"}, "kind": {"type": "string"},
                           "hash": {"type": "string"}, "k": {"type": "integer"},
                           "max_distance": {"type": "integer"}, "mirror": {"type": "boolean"},
                           "dup_group": _nullable(["string", "integer"]),
                           "matches": {"type": "array", "items": _ref("Match")}},
        },
        "SearchResult": {
            "type": "object", "required": ["hashes", "results"],
            "properties": {
                "hashes": {"type": "object", "properties": {k: {"type": "string"}
                                                             for k in HASH_KINDS}},
                "kinds": {"type": "array", "items": {"type": "string"}},
                "k": {"type": "integer"}, "max_distance": {"type": "integer"},
                "mirror": {"type": "boolean"},
                "results": {"type": "object", "description": "matches per hash kind",
                            "additionalProperties": {"type": "array", "items": _ref("Match")}},
            },
        },
        "Ranked": {"type": "array", "items": {
            "type": "object", "required": ["id", "value"],
            "properties": {"id": {"type": "string"}, "value": {"type": "number"}}}},
        "Analysis": {
            "type": "object",
            "required": ["nodes", "edges", "density", "degree_histogram", "components",
                         "clustering", "diameter", "centrality"],
            "properties": {
                "subgraph": {"type": "object"},
                "label": {"type": "string"},
                "nodes": {"type": "integer"}, "edges": {"type": "integer"},
                "undirected_edges": {"type": "integer"},
                "reciprocal_edges": {"type": "integer"},
                "density": {"type": "number"}, "directed_density": {"type": "number"},
                "degree_histogram": {"type": "array", "items": {"type": "integer"}},
                "in_degree_histogram": {"type": "array", "items": {"type": "integer"}},
                "out_degree_histogram": {"type": "array", "items": {"type": "integer"}},
                "mean_degree": {"type": "number"},
                "components": {"type": "object", "properties": {
                    "count": {"type": "integer"}, "largest": {"type": "integer"},
                    "sizes": {"type": "array", "items": {"type": "integer"}},
                    "isolated": {"type": "integer"},
                    "strongly_connected": {"type": "integer"}}},
                "clustering": {"type": "object", "properties": {
                    "average": {"type": "number"}, "transitivity": {"type": "number"}}},
                "diameter": {"type": "object", "properties": {
                    "value": {"type": "integer"}, "exact": {"type": "boolean"},
                    "component_size": {"type": "integer"}}},
                "centrality": {"type": "object", "properties": {
                    "degree": _ref("Ranked"), "in_degree": _ref("Ranked"),
                    "betweenness": _ref("Ranked"), "pagerank": _ref("Ranked"),
                    "betweenness_exact": {"type": "boolean"},
                    "betweenness_samples": _nullable("integer")}},
                "communities": {"type": "object", "properties": {
                    "count": {"type": "integer"},
                    "sizes": {"type": "array", "items": {"type": "integer"}},
                    "modularity": {"type": "number"}, "seed": {"type": "integer"},
                    "membership": {"type": "object",
                                   "additionalProperties": {"type": "integer"}}}},
            },
        },
        "Comparison": {
            "type": "object", "required": ["items", "labels", "jaccard", "subgraphs"],
            "properties": {
                "items": {"type": "array", "items": _ref("Analysis")},
                "labels": {"type": "array", "items": {"type": "string"}},
                "jaccard": {"type": "array", "items": {"type": "array",
                                                       "items": {"type": "number"}}},
                "shared_nodes": {"type": "integer"},
                "subgraphs": {"type": "array", "items": {"type": "object"}},
            },
        },
        "Job": {
            "type": "object", "required": ["id", "status"],
            "properties": {
                "id": {"type": "string"},
                "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
                "created_at": {"type": "integer"}, "started_at": {"type": "integer"},
                "finished_at": {"type": "integer"}, "error": {"type": "string"},
                "params": {}, "summary": {},
            },
        },
        "Crawl": {
            "type": "object", "required": ["id", "status"],
            "properties": {
                "id": {"type": "string"},
                "status": {"type": "string",
                           "enum": ["queued", "running", "done", "failed", "cancelled"]},
                "seeds": {"type": "array", "items": {"type": "string"}},
                "depth": {"type": "integer"}, "max_images": _nullable("integer"),
                "counts": {"type": "object"}, "created_at": {"type": "integer"},
                "finished_at": _nullable("integer"),
            },
        },
        "CypherResult": {
            "type": "object", "required": ["columns", "rows", "row_count", "truncated"],
            "properties": {
                "columns": {"type": "array", "items": {"type": "string"}},
                "rows": {"type": "array", "items": {"type": "object"}},
                "row_count": {"type": "integer"}, "truncated": {"type": "boolean"},
                "max_rows": {"type": "integer"},
            },
        },
    }


def _operations(settings: Settings) -> dict[str, dict[str, Any]]:
    max_depth = settings.api_max_depth
    max_nodes = settings.api_max_nodes
    kinds = "|".join(HASH_KINDS)
    depth = _query("depth", {"type": "integer", "minimum": 1, "maximum": max_depth,
                             "default": 1}, "hops from the seed")
    image_id = _path("id", ID_SCHEMA, "catalogue image id")
    e400 = _error("a parameter is invalid; the message says which and why")
    e404 = _error("no such image (or path, crawl, job)")
    e503 = _error("the graph (or Redis, or the index) is not reachable")
    token_security = [{"bearerAuth": []}] if settings.api_token else [{}, {"bearerAuth": []}]
    e401 = _error("missing or wrong bearer token (only when the server has one configured)")
    selection_params = [
        _query("seed", ID_SCHEMA, "image id whose neighbourhood to take"),
        _query("depth", {"type": "integer", "minimum": 1, "maximum": max_depth},
               "hops from the seed (only with seed; default 1)"),
        _query("ids", ID_LIST, f"comma-separated image ids (at most {max_nodes})"),
        _query("crawl", HEX_ID, "a crawl id: the images that crawl stored"),
    ]
    analysis_options = [
        _query("top_k", {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
               "how many top images per centrality"),
        _query("communities", {"type": "boolean", "default": True}, "run Louvain"),
        _query("membership", {"type": "boolean", "default": False},
               "include the community of every image"),
    ]
    selection_body = _body({
        "seed": ID_SCHEMA,
        "depth": {"type": "integer", "minimum": 1, "maximum": max_depth},
        "ids": {"type": "array", "items": ID_SCHEMA, "minItems": 1, "maxItems": max_nodes},
        "crawl": HEX_ID,
        "top_k": {"type": "integer", "minimum": 1, "maximum": 100},
        "communities": {"type": "boolean"},
        "membership": {"type": "boolean"},
    }, description="exactly one of seed (with depth), ids, crawl")
    return {
        "/": {"get": {
            "summary": "What this API offers", "tags": ["meta"],
            "responses": {"200": _json({"type": "object"}, "name, version, endpoints")},
        }},
        "/health": {"get": {
            "summary": "Liveness: the process answers", "tags": ["meta"],
            "responses": {"200": _json({"type": "object", "properties": {
                "status": {"const": "ok"}}}, "alive")},
        }},
        "/ready": {"get": {
            "summary": "Readiness: the graph answers (Redis and index reported)",
            "tags": ["meta"],
            "responses": {
                "200": _json({"type": "object", "required": ["ready", "checks"]}, "ready"),
                "503": _json({"type": "object", "required": ["ready", "checks"]},
                             "not ready; checks say what is missing"),
            },
        }},
        "/openapi.json": {"get": {
            "summary": "This document", "tags": ["meta"],
            "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
        }},
        "/images/{id}": {"get": {
            "summary": "One image: catalogue fields, hashes, crawl marks, degrees, analysis",
            "tags": ["images"], "parameters": [image_id],
            "responses": {"200": _json(_ref("Image"), "the image"), "400": e400, "404": e404,
                          "503": e503},
        }},
        "/images/{id}/similar": {"get": {
            "summary": "The images this image lists as similar, best first",
            "tags": ["images"],
            "parameters": [image_id, _query("limit", {"type": "integer", "minimum": 1,
                                                      "maximum": 1000, "default": 100},
                                            "at most this many")],
            "responses": {"200": _json(_ref("SimilarList"), "ranked SIMILAR_TO targets"),
                          "400": e400, "404": e404, "503": e503},
        }},
        "/images/{id}/neighborhood": {"get": {
            "summary": "Images within depth hops (either direction) and the edges among them",
            "tags": ["images"],
            "parameters": [
                image_id, depth,
                _query("limit", {"type": "integer", "minimum": 1, "maximum": max_nodes,
                                 "default": max_nodes},
                       "at most this many nodes, admitted breadth-first"),
                _query("properties", {"type": "boolean", "default": True},
                       "include node properties (false: ids and depths only)"),
            ],
            "responses": {"200": _json(_ref("NodeLink"), "node-link JSON"), "400": e400,
                          "404": e404, "503": e503},
        }},
        "/images/{id}/neighborhood.png": {"get": {
            "summary": "A picture of the neighbourhood with thumbnails on the nodes",
            "tags": ["images"],
            "parameters": [
                image_id, depth,
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 150,
                                 "default": 60}, "at most this many nodes"),
                _query("size", {"type": "integer", "minimum": 200, "maximum": 2000,
                                "default": 900}, "width and height in pixels"),
            ],
            "responses": {
                "200": {"description": "PNG", "content": {"image/png": {
                    "schema": {"type": "string", "format": "binary"}}}},
                "400": e400, "404": e404, "503": e503,
            },
        }},
        "/images/{id}/thumbnail": {"get": {
            "summary": "The cached thumbnail (JPEG)", "tags": ["images"],
            "parameters": [image_id],
            "responses": {
                "200": {"description": "JPEG", "content": {"image/jpeg": {
                    "schema": {"type": "string", "format": "binary"}}}},
                "400": e400, "404": e404,
            },
        }},
        "/images/{id}/duplicates": {"get": {
            "summary": "Nearest images by perceptual hash, through the Annoy index",
            "tags": ["search"],
            "parameters": [
                image_id,
                _query("kind", {"type": "string", "enum": list(HASH_KINDS),
                                "default": "phash"}, "hash kind"),
                _query("k", {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
                       "how many"),
                _query("max_distance", {"type": "integer", "minimum": 0,
                                        "maximum": max(HASH_BITS.values())},
                       "only matches at most this many bits away (colorhash: 56 bits)"),
                _query("mirror", {"type": "boolean", "default": False},
                       "also match left-right mirrored copies"),
            ],
            "responses": {"200": _json(_ref("Duplicates"), "matches, nearest first"),
                          "400": e400, "404": e404,
                          "409": _error("the image has no hash of that kind yet"),
                          "503": e503},
        }},
        "/paths": {"get": {
            "summary": "The shortest chain of similar images between two images",
            "tags": ["images"],
            "parameters": [
                _query("from", ID_SCHEMA, "start image", required=True),
                _query("to", ID_SCHEMA, "end image", required=True),
                _query("max_hops", {"type": "integer", "minimum": 1, "maximum": 12,
                                    "default": 6}, "give up beyond this many hops"),
            ],
            "responses": {"200": _json(_ref("Path"), "the path"), "400": e400,
                          "404": _error("an image is unknown, or no path within max_hops"),
                          "503": e503},
        }},
        "/search": {"post": {
            "summary": "Upload a picture; get the nearest stored images by hash",
            "tags": ["search"],
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["image"],
                "properties": {
                    "image": {"type": "string", "format": "binary",
                              "description": f"at most {settings.api_max_upload_bytes} bytes "
                                             f"and {settings.api_max_upload_pixels} pixels"},
                    "kinds": {"type": "string", "description": "comma-separated hash kinds",
                              "pattern": f"^({kinds})(,({kinds}))*$"},
                    # Form fields are text: numbers and booleans as they are written.
                    "k": {"type": "string", "pattern": "^[0-9]{1,3}$",
                          "description": "1 to 100"},
                    "max_distance": {"type": "string", "pattern": "^[0-9]{1,2}$",
                                     "description": "0 to 64"},
                    "mirror": {"type": "string", "enum": list(BOOLEAN_WORDS)},
                }}}}},
            "responses": {"200": _json(_ref("SearchResult"), "matches"), "400": e400,
                          "413": _error("the file or its pixel count is over the limit"),
                          "415": _error("not multipart/form-data"), "503": e503},
        }},
        "/analysis": {
            "get": {
                "summary": "Measures of one bounded subgraph (seed+depth, ids or crawl)",
                "tags": ["analysis"], "parameters": selection_params + analysis_options,
                "responses": {"200": _json(_ref("Analysis"), "the measures"), "400": e400,
                              "404": e404, "503": e503},
            },
            "post": {
                "summary": "Same as GET, with the selection as a JSON body (long id lists)",
                "tags": ["analysis"],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": selection_body}}},
                "responses": {"200": _json(_ref("Analysis"), "the measures"), "400": e400,
                              "404": e404, "413": _error("body too large"), "503": e503},
            },
        },
        "/analysis/compare": {"get": {
            "summary": "Several seeds and depths side by side",
            "tags": ["analysis"],
            "parameters": [
                _query("seeds", ID_LIST, "comma-separated image ids", required=True),
                _query("depths", {"type": "string", "default": "1",
                                  "pattern": f"^[1-{max_depth}](,[1-{max_depth}])*$"},
                       f"comma-separated depths from 1 to {max_depth}"),
                _query("top_k", {"type": "integer", "minimum": 1, "maximum": 100,
                                 "default": 5}, "top images per centrality"),
                _query("communities", {"type": "boolean", "default": True}, "run Louvain"),
            ],
            "responses": {"200": _json(_ref("Comparison"), "one analysis per seed x depth"),
                          "400": e400, "404": e404, "503": e503},
        }},
        "/analysis/jobs": {
            "post": {
                "summary": "Start a whole-graph analysis in the background",
                "tags": ["analysis"], "security": token_security,
                "requestBody": {"required": False, "content": {"application/json": {
                    "schema": _body({"top_k": {"type": "integer", "minimum": 1,
                                               "maximum": 100}})}}},
                "responses": {"202": _json(_ref("Job"), "queued"), "400": e400,
                              "401": e401, "413": _error("body too large"), "503": e503},
            },
            "get": {
                "summary": "Recent analysis jobs", "tags": ["analysis"],
                "parameters": [_query("limit", {"type": "integer", "minimum": 1,
                                                "maximum": 100, "default": 20}, "how many")],
                "responses": {"200": _json({"type": "object", "properties": {
                    "jobs": {"type": "array", "items": _ref("Job")}}}, "jobs, newest first"),
                    "400": e400, "503": e503},
            },
        },
        "/analysis/jobs/{id}": {"get": {
            "summary": "One analysis job, with its summary when done", "tags": ["analysis"],
            "parameters": [_path("id", HEX_ID, "job id")],
            "responses": {"200": _json(_ref("Job"), "the job"), "400": e400, "404": e404,
                          "503": e503},
        }},
        "/analysis/latest": {"get": {
            "summary": "The newest finished whole-graph analysis", "tags": ["analysis"],
            "responses": {"200": _json(_ref("Job"), "the job"), "404": e404, "503": e503},
        }},
        "/analysis/communities/{community}": {"get": {
            "summary": "Images of one community of the latest whole-graph analysis",
            "tags": ["analysis"],
            "parameters": [
                _path("community", {"type": "integer", "minimum": 0}, "community number"),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": max_nodes,
                                 "default": 100}, "how many"),
            ],
            "responses": {"200": _json({"type": "object", "required": ["community", "images"]},
                                       "members, most central first"),
                          "400": e400, "404": e404, "503": e503},
        }},
        "/export": {"get": {
            "summary": "A subgraph (or the whole graph) as GraphML, GEXF, node-link or "
                       "Cytoscape JSON",
            "tags": ["export"],
            "parameters": [
                _query("format", {"type": "string", "enum": list(FORMATS),
                                  "default": "graphml"}, "file format"),
                *selection_params,
                _query("all", {"type": "boolean"}, "the whole graph"),
            ],
            "responses": {
                "200": {"description": "the file", "content": {
                    "application/graphml+xml": {"schema": {"type": "string"}},
                    "application/gexf+xml": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"type": "object"}},
                }},
                "400": e400, "404": e404, "503": e503,
            },
        }},
        "/crawls": {
            "post": {
                "summary": "Start a breadth-first crawl from seed images", "tags": ["crawls"],
                "security": token_security,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _body({
                        "seeds": {"type": "array", "items": ID_SCHEMA, "minItems": 1,
                                  "maxItems": settings.max_seeds},
                        "depth": {"type": "integer", "minimum": 0,
                                  "maximum": settings.max_depth, "default": 2},
                        "max_images": {"type": "integer", "minimum": 1},
                    }, required=("seeds",))}}},
                "responses": {"201": _json(_ref("Crawl"), "queued"), "400": e400, "401": e401,
                              "413": _error("body too large"), "503": e503},
            },
            "get": {
                "summary": "Recent crawls", "tags": ["crawls"],
                "parameters": [_query("limit", {"type": "integer", "minimum": 1,
                                                "maximum": 500, "default": 50}, "how many")],
                "responses": {"200": _json({"type": "object", "properties": {
                    "crawls": {"type": "array", "items": _ref("Crawl")}}}, "crawls"),
                    "400": e400, "503": e503},
            },
        },
        "/crawls/{id}": {
            "get": {
                "summary": "One crawl: status and counts", "tags": ["crawls"],
                "parameters": [_path("id", HEX_ID, "crawl id")],
                "responses": {"200": _json(_ref("Crawl"), "the crawl"), "400": e400,
                              "404": e404, "503": e503},
            },
            "delete": {
                "summary": "Cancel a crawl", "tags": ["crawls"], "security": token_security,
                "parameters": [_path("id", HEX_ID, "crawl id")],
                "responses": {"200": _json(_ref("Crawl"), "cancelled"), "400": e400,
                              "401": e401, "404": e404, "503": e503},
            },
        },
        "/cypher": {"post": {
            "summary": "Read-only ad-hoc Cypher (writes are refused)", "tags": ["cypher"],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": _body({
                    "query": {"type": "string", "minLength": 1, "maxLength": 20000,
                              "pattern": "\\S"},
                    "params": {"type": "object"},
                    "max_rows": {"type": "integer", "minimum": 1,
                                 "maximum": settings.cypher_max_rows},
                }, required=("query",))}}},
            "responses": {
                "200": _json(_ref("CypherResult"), "rows (truncated at max_rows)"),
                "400": _error("malformed query, or the server rejected it"),
                "403": _error("the statement would write; refused"),
                "408": _error(f"ran longer than {settings.cypher_timeout_s:g} s"),
                "413": _error("body too large"),
                "503": e503,
            },
        }},
    }


def document(app: Flask, settings: Settings) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Lookalike API",
            "version": API_VERSION,
            "description": (
                "The visual-similarity graph of an image collection: images and their "
                "SIMILAR_TO edges, neighbourhoods, paths, near-duplicates, analysis, exports, "
                "pictures, crawls and read-only Cypher. Errors are JSON: "
                '{"error": {"status", "message", "parameter"}}.'
            ),
        },
        "paths": _operations(settings),
        "components": {
            "schemas": _schemas(settings),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


def check_routes(app: Flask, settings: Settings) -> list[str]:
    """Differences between the Flask routes and the document (empty when they agree)."""
    import re

    documented = {
        (path, method.upper())
        for path, ops in _operations(settings).items() for method in ops
    }
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        path = path.replace("{image_id}", "{id}").replace("{cid}", "{id}").replace(
            "{job_id}", "{id}")
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                served.add((path, method))
    problems = [f"served but not documented: {m} {p}" for p, m in sorted(served - documented)]
    problems += [f"documented but not served: {m} {p}" for p, m in sorted(documented - served)]
    return problems
