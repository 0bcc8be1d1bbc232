"""The catalogue API's images endpoints (SPEC §3-4), its healthcheck and v1's farewell.

- ``GET /catalogue/v2/images/{id}``: id pattern 404, then include 400, then lookup 404; the
  stored document trimmed to what ``include`` asks, nulls dropped; ``withSimilarFeatures``
  (and in legacy mode ``visuallySimilar``) lists the precomputed top 5. The permanent
  per-image faults (``missing``, ``malformed``) are applied here.
- ``GET /catalogue/v2/images``: the list and search (``listing``).
- ``GET /management/healthcheck``; ``/catalogue/v1/*`` answers 410.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, request

from services.replica.documents import (
    ID_PATTERN,
    LEGACY_SINGLE_INCLUDES,
    SINGLE_INCLUDES,
    drop_nulls,
    parse_csv,
    trim,
    with_base_url,
)
from services.replica.errors import DECOMMISSIONED_MESSAGE, CatalogueError, not_valid_values
from services.replica.listing import ListQuery, run_list_query
from services.replica.responses import error_response, json_response
from services.replica.state import replica_state

CATALOGUE_PREFIX = "/catalogue/v2"
IMAGES_PREFIX = f"{CATALOGUE_PREFIX}/images"

bp = Blueprint("catalogue", __name__)


@bp.app_errorhandler(CatalogueError)
def catalogue_error(exc: CatalogueError) -> Response:
    return error_response(exc.status, exc.description)


@bp.get(f"{IMAGES_PREFIX}/<path:image_id>")
def get_image(image_id: str) -> Response:
    state = replica_state()
    collection = state.collection
    image_id = image_id.rstrip("/")
    if not ID_PATTERN.match(image_id):
        raise CatalogueError(404, f"Image not found for identifier {image_id}")
    includes = _single_includes(request.args.get("include"), state.legacy)
    if image_id not in collection:
        raise CatalogueError(404, f"Image not found for identifier {image_id}")
    json_fault = state.plan.json_fault(image_id, state.request_faults())
    if json_fault == "missing":
        state.stats.fault("missing")
        raise CatalogueError(404, f"Image not found for identifier {image_id}")
    base = state.base_url()
    doc = trim(with_base_url(collection.record(image_id)["display"], base), includes)
    if "withSimilarFeatures" in includes or "visuallySimilar" in includes:
        similar = [
            trim(with_base_url(collection.record(s)["display"], base), includes)
            for s in collection.similar_ids(image_id)
        ]
        if "withSimilarFeatures" in includes:
            doc["withSimilarFeatures"] = similar
        if "visuallySimilar" in includes:
            doc["visuallySimilar"] = similar
    text = json.dumps(drop_nulls(doc), ensure_ascii=False)
    if json_fault == "malformed":
        state.stats.fault("malformed")
        text = text.replace('":', '"=', 1)
    return Response(text, mimetype="application/json")


@bp.get(IMAGES_PREFIX)
@bp.get(f"{IMAGES_PREFIX}/")
def list_images() -> Response:
    state = replica_state()
    query = ListQuery.parse(request.args)
    return json_response(run_list_query(state.collection, query, state.base_url(), request.args))


@bp.get("/catalogue/v1/<path:_rest>")
def decommissioned(_rest: str) -> Response:
    raise CatalogueError(410, DECOMMISSIONED_MESSAGE)


@bp.get("/management/healthcheck")
def healthcheck() -> Response:
    return json_response({"message": "ok"})


def _single_includes(raw: str | None, legacy: bool) -> set[str]:
    valid = LEGACY_SINGLE_INCLUDES if legacy else SINGLE_INCLUDES
    values = parse_csv(raw or "")
    bad = [v for v in values if v not in valid]
    if bad:
        raise CatalogueError(400, not_valid_values("include", bad, list(valid)))
    return set(values)
