"""The OpenAPI 3.1 document, written from the endpoints' contracts (``contract.py``) and the
answer models (``answers.py``): the same models that validate the requests describe them,
with the limits of the settings the server runs with.

``check_routes`` (run by the tests) proves that every Flask route has a contract, so nothing
is served undocumented.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from lookalike.settings import Settings
from services.api import answers
from services.api.contract import CONTRACTS, Contract, Query, contract_of

API_VERSION = "1.0.0"
REF = "#/components/schemas/{model}"

Schema = dict[str, Any]

# Answers every endpoint may give besides its own, by kind of contract.
_ERRORS = {
    400: "a parameter or the body is invalid; the message says which and why",
    401: "missing or wrong bearer token (only when the server has one configured)",
    413: "the request body is larger than the limit",
    503: "the graph (or Redis, or the index) is not reachable; retry after Retry-After",
}


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z_]+:)?([a-z_]+)>", r"{\1}", rule)


def _tidy(schema: Any, *, text: bool = False) -> Any:
    """Schemas as the document shows them: without pydantic's generated titles, and a comma
    list's default written as it travels (``"phash,dhash"``). ``text``: a query string's,
    where a value cannot be null (an optional parameter is one left out)."""
    if isinstance(schema, list):
        return [_tidy(item, text=text) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        k: _tidy(v, text=text)
        for k, v in schema.items()
        if not (k == "title" and isinstance(v, str))
    }
    if text and "anyOf" in out:
        options = [o for o in out["anyOf"] if o != {"type": "null"}]
        if len(options) == 1:
            del out["anyOf"]
            out = {**options[0], **out}
        else:
            out["anyOf"] = options
    if text and out.get("default", 0) is None:
        del out["default"]
    if out.get("type") == "string" and isinstance(out.get("default"), list):
        out["default"] = ",".join(map(str, out["default"]))
    return out


def _parameters(where: str, model: type[Query], refs: dict[Any, Schema]) -> list[Schema]:
    if where == "query" and model.rules:
        # Rules across parameters ("exactly one of seed, ids, crawl") can only be stated on
        # the query string as one object: form style, exploded into name=value pairs.
        return [
            {
                "name": model.__name__,
                "in": "query",
                "required": True,
                "style": "form",
                "explode": True,
                "schema": refs[(model, "validation")],
            }
        ]
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema["properties"].items():
        entry: Schema = {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
            "schema": _tidy(prop, text=True),
        }
        description = prop.get("description") or next(
            (o.get("description") for o in prop.get("anyOf", []) if o.get("description")), None
        )
        if description:
            entry["description"] = description
        out.append(entry)
    return out


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _responses(contract: Contract, refs: dict[Any, Schema]) -> Schema:
    out: Schema = {}
    for status, spec in contract.responses.items():
        description, body = (spec, None) if isinstance(spec, str) else spec
        if body is None:
            schema = refs[(answers.Error, "validation")] if status >= 400 else None
            out[str(status)] = (
                _json(schema, description) if schema is not None else {"description": description}
            )
        elif isinstance(body, type) and issubclass(body, BaseModel):
            out[str(status)] = _json(refs[(body, "validation")], description)
        else:  # {media type: schema} for answers that are not JSON
            out[str(status)] = {
                "description": description,
                "content": {media: {"schema": s} for media, s in body.items()},
            }
    implied = []
    if contract.models():
        implied.append(400)
    if contract.mutating:
        implied.append(401)
    if contract.body or contract.form:
        implied.append(413)
    if "meta" not in contract.tags:
        implied.append(503)
    for status in implied:
        out.setdefault(str(status), _json(refs[(answers.Error, "validation")], _ERRORS[status]))
    return dict(sorted(out.items()))


def _answer_models(contracts: list[Contract]) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [answers.Error]
    for c in contracts:
        for spec in c.responses.values():
            body = spec[1] if isinstance(spec, tuple) else None
            if isinstance(body, type) and issubclass(body, BaseModel) and body not in found:
                found.append(body)
    return found


def document(app: Flask, settings: Settings) -> dict[str, Any]:
    bound = app.extensions[CONTRACTS]
    routes = []
    for rule in app.url_map.iter_rules():
        contract = contract_of(app.view_functions[rule.endpoint])
        if contract is not None:
            routes.append((rule, contract, bound[rule.endpoint]))
    contracts = [c for _, c, _ in routes]

    # Every model the document refers to, in one components section.
    named: list[type[BaseModel]] = _answer_models(contracts)
    for _, _, models in routes:
        for part, model in models.items():
            as_object = part in ("body", "form") or (part == "query" and model.rules)
            if as_object and model not in named:
                named.append(model)
    refs, defs = models_json_schema([(m, "validation") for m in named], ref_template=REF)
    components = {name: _tidy(schema) for name, schema in defs.get("$defs", {}).items()}
    for model in named:  # query models travel as text (exploded into name=value pairs)
        if issubclass(model, Query):
            components[model.__name__] = _tidy(components[model.__name__], text=True)

    paths: dict[str, dict[str, Any]] = {}
    for rule, contract, models in routes:
        op: Schema = {
            "operationId": rule.endpoint.replace(".", "_"),
            "summary": contract.summary,
            "tags": list(contract.tags),
        }
        parameters = []
        for where in ("path", "query"):
            if where in models:
                parameters += _parameters(where, models[where], refs)
        if parameters:
            op["parameters"] = parameters
        if "body" in models:
            op["requestBody"] = {
                "required": contract.body_required,
                "content": {"application/json": {"schema": refs[(models["body"], "validation")]}},
            }
        if "form" in models:
            op["requestBody"] = {
                "required": True,
                "content": {
                    "multipart/form-data": {"schema": refs[(models["form"], "validation")]}
                },
            }
        if contract.mutating:
            op["security"] = (
                [{"bearerAuth": []}] if settings.api_token is not None else [{}, {"bearerAuth": []}]
            )
        op["responses"] = _responses(contract, refs)
        paths.setdefault(_openapi_path(rule.rule), {})[contract.method.lower()] = op

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
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


def check_routes(app: Flask) -> list[str]:
    """Routes served without a contract (empty when every route is described)."""
    problems = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        if contract_of(app.view_functions[rule.endpoint]) is None:
            methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
            problems.append(f"served but not documented: {','.join(methods)} {rule.rule}")
    return problems
