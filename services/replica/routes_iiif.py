"""The IIIF Image API 2 server (SPEC §7) on the same port as the catalogue.

``/image/{asset}/info.json`` (also ``/image/{asset}``) and
``/image/{asset}/{region}/{size}/{rotation}/{quality}.{format}``; ``/thumbs/…`` is the same
fast-thumbnail service. Errors are plain text, as the real image server's are. Pictures come
from ``picture_cache``; the permanent thumbnail faults (``corrupt_thumb``,
``nonimage_thumb``) are applied to those bytes here, so the cached bytes stay clean.
"""

from __future__ import annotations

from flask import Blueprint, Response

from services.replica import iiif
from services.replica.collection import ImageSource
from services.replica.responses import json_response
from services.replica.state import replica_state

SERVICES = ("image", "thumbs")
_SERVICE = f"<any({', '.join(SERVICES)}):service>"

bp = Blueprint("iiif", __name__)


@bp.app_errorhandler(iiif.IIIFError)
def iiif_error(exc: iiif.IIIFError) -> Response:
    return Response(str(exc), exc.status, mimetype="text/plain")


@bp.get(f"/{_SERVICE}/<asset>/info.json")
@bp.get(f"/{_SERVICE}/<asset>")
def info(service: str, asset: str) -> Response:
    state = replica_state()
    source = _source_for(asset)
    return json_response(iiif.info_json(f"{state.base_url()}/{service}/{asset}", source))


@bp.get(f"/{_SERVICE}/<asset>/<region>/<size>/<rotation>/<quality_format>")
def picture(
    service: str, asset: str, region: str, size: str, rotation: str, quality_format: str
) -> Response:
    state = replica_state()
    source = _source_for(asset)
    req = iiif.parse_image_request(region, size, rotation, quality_format, source)
    image_id = state.collection.image_for_asset(asset)
    fault = state.plan.thumb_fault(image_id, state.request_faults()) if image_id else None
    data = state.pictures.get((asset, region, size, rotation, quality_format), source, req)
    if fault == "corrupt_thumb":
        state.stats.fault("corrupt_thumb")
        return Response(corrupt(data), mimetype=req.mimetype)
    if fault == "nonimage_thumb":
        state.stats.fault("nonimage_thumb")
        return Response(
            "<html><body><h1>503 Service Unavailable</h1></body></html>", mimetype="text/html"
        )
    return Response(data, mimetype=req.mimetype, headers={"Cache-Control": "public, max-age=86400"})


def _source_for(asset: str) -> ImageSource:
    source = replica_state().collection.image_source(asset)
    if source is None:
        raise iiif.IIIFError(404, f"no image with asset id {asset!r}")
    return source


def corrupt(data: bytes) -> bytes:
    """Keep the JPEG/PNG header so it sniffs as an image, then cut and scramble the rest."""
    head = data[: min(len(data), 600)]
    return head + bytes((b * 7 + 13) % 256 for b in data[600:900])
