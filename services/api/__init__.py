"""The Flask API: one ``routes_*.py`` module (a blueprint) per group of endpoints.

Adding an endpoint
==================

Declare what it takes as models, once; validation, error messages and the OpenAPI document
all come from them (``contract.py`` says why this small layer over pydantic, and how). An
example showing more of the shapes than the real ``routes_lookalikes.py`` needs::

    from flask import Blueprint, Response, jsonify
    from pydantic import Field

    from services.api import answers
    from services.api.contract import Path, Query, endpoint
    from services.api.fields import Depth, ImageId, how_many, how_many_by

    bp = Blueprint("lookalikes", __name__)


    class ImageArg(Path):               # the route's <id>
        id: ImageId


    class LookalikesQuery(Query):       # unknown or repeated parameters are refused
        depth: Depth = 1                # 1 to LOOKALIKE_API_MAX_DEPTH, like everywhere
        k: how_many(100, "how many lookalikes") = 10
        limit: how_many_by("api_max_nodes") = 100   # bounded by a setting
        mirror: bool = Field(False, description="also mirrored copies")  # true or false


    @endpoint(bp, "GET", "/images/<id>/lookalikes", path=ImageArg, query=LookalikesQuery,
              summary="Learned lookalikes of an image", tags=["images"],
              responses={200: ("lookalikes, best first", answers.Lookalikes),
                         404: "no image with that id"})
    def lookalikes(id: str, query: LookalikesQuery) -> Response:  # noqa: A002
        ...  # query.k, query.depth are clean, typed values
        return jsonify({...})

Then register the blueprint in ``app.py`` (if the module is new) and describe the answer in
``answers.py``. The rest follows:

- A JSON body: ``class StartBody(Body)`` and ``body=StartBody``; the handler gets
  ``body``. Bodies are strict (``"2"`` is not an integer) and a body that is not a JSON
  object gets a 400 saying what is wrong with it. An optional body: ``body_required=False``.
  A multipart upload: ``class SearchForm(Form)`` with an ``Upload`` field and ``form=``.
- Shared shapes live in ``fields.py``: ids (``ImageId``, ``CrawlId``, ``JobId``, from
  ``lookalike/ids.py``), depths (``Depth``, ``CrawlDepth``), counts, comma-separated lists
  (``comma_list(ImageId, max_items="api_max_nodes")``). Use them rather than new
  constraints, so the same parameter reads, fails and documents the same everywhere.
- A limit from the settings: ``Bound("setting_name")`` in the field's annotation (see
  ``how_many_by``); ``{setting_name}`` in a field's description is filled in too.
- A rule across fields (``ExactlyOne(("seed", "ids", "crawl"))``): ``rules = (...)`` on
  the model; it is checked after the fields and written into the document.
- Errors: raise ``ApiError``/``bad_request``/``not_found`` (``errors.py``) naming the
  ``parameter``; invalid parameters already answer ``{"error": {"status", "message",
  "parameter"}}`` with the accepted range and what was received.
- Endpoints that change something: ``mutating=True`` (bearer token when one is set).
- Tests: ``tests/api/test_api_openapi.py`` checks that every route has a contract and runs
  schemathesis with every check against the real server, so the document and the
  behaviour cannot drift apart.
"""
