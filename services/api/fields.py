"""The API's shared parameter types, declared once: ids, depths, limits, comma lists.

Every route's models build on these, so ``depth`` is checked (and documented, and worded in
its error message) the same way wherever it appears, with limits from the settings the
server runs with (``Bound``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    GetJsonSchemaHandler,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema
from werkzeug.datastructures import FileStorage

from lookalike import ids
from services.api.contract import Bound, words


def _words(text: str) -> dict[str, Any]:
    return {"x-words": text}


ImageId = Annotated[
    str,
    Field(
        pattern=ids.IMAGE_ID_PATTERN,
        json_schema_extra=_words(f"a catalogue image id: {ids.IMAGE_ID_WORDS}"),
    ),
]
CrawlId = Annotated[
    str,
    Field(
        pattern=ids.CRAWL_ID_PATTERN,
        json_schema_extra=_words(f"a crawl id: {ids.CRAWL_ID_WORDS}"),
    ),
]
JobId = Annotated[
    str,
    Field(
        pattern=ids.JOB_ID_PATTERN,
        json_schema_extra=_words(f"an analysis job id: {ids.JOB_ID_WORDS}"),
    ),
]


def depth(low: int, setting: str, description: str) -> Any:
    """Hops from a seed: one declaration for every endpoint, bounded by ``setting``."""
    return Annotated[int, Field(ge=low, description=description), Bound(setting)]


# While you wait (neighbourhoods, analyses, exports) and for a crawl to cover.
Depth = depth(1, "api_max_depth", "hops from the seed")
CrawlDepth = depth(0, "max_depth", "hops from the seeds to crawl")


def how_many(high: int, description: str = "at most this many") -> Any:
    """How many results: from 1 to ``high``."""
    return Annotated[int, Field(ge=1, le=high, description=description)]


def how_many_by(
    setting: str, description: str = "at most this many", *, default_is_limit: bool = False
) -> Any:
    """How many results: from 1 to the value of ``setting`` (also the default, if asked)."""
    return Annotated[
        int, Field(ge=1, description=description), Bound(setting, default=default_is_limit)
    ]


def _dedupe(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def id_list(max_items: str) -> Any:
    """Image ids as a JSON list (bodies): 1 to the value of the setting ``max_items``."""
    return Annotated[
        list[ImageId],
        Field(min_length=1),
        Bound(max_items, to="max_length"),
        AfterValidator(_dedupe),
    ]


def _must_be_true(value: bool) -> bool:
    if value is not True:
        raise ValueError("must be true when given (leave it out otherwise)")
    return value


# A switch that is either given as true or left out ("all=true": the whole graph).
OnlyTrue = Annotated[
    bool, AfterValidator(_must_be_true), Field(json_schema_extra={"const": True, "x-words": "true"})
]


def _is_upload(value: Any) -> Any:
    if not isinstance(value, FileStorage):
        raise ValueError("must be a file (multipart file field), not a text field")
    return value


Upload = Annotated[
    Any,
    AfterValidator(_is_upload),
    WithJsonSchema(
        {"type": "string", "format": "binary", "x-words": "a picture, sent as a file field"}
    ),
]


def _split(raw: Any) -> Any:
    """A query string's ``a,b,c`` as a list (JSON bodies send lists already)."""
    if isinstance(raw, str):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


class CommaSeparated:
    """Documents a list that travels as one comma-separated query parameter: a string whose
    pattern repeats the item's pattern at most ``maxItems`` times."""

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        array = handler.resolve_ref_schema(handler(schema))
        items = array.get("items", {})
        item = _item_pattern(items)
        top = array.get("maxItems")
        repeat = "*" if top is None else f"{{0,{top - 1}}}"
        out: dict[str, Any] = {"type": "string", "pattern": f"^{item}(,{item}){repeat}$"}
        each = words(items)
        out["x-words"] = (
            f"a comma-separated list of up to {top} values, each {each}"
            if top
            else f"a comma-separated list of values, each {each}"
        )
        if "default" in array and isinstance(array["default"], list):
            out["default"] = ",".join(map(str, array["default"]))
        for key in ("description", "title"):
            if key in array:
                out[key] = array[key]
        return out


def _item_pattern(items: dict[str, Any]) -> str:
    if "pattern" in items:
        return "(" + items["pattern"].removeprefix("^").removesuffix("$") + ")"
    if "enum" in items:
        return "(" + "|".join(map(str, items["enum"])) + ")"
    if items.get("type") == "integer" and "minimum" in items and "maximum" in items:
        return "(" + "|".join(str(n) for n in range(items["minimum"], items["maximum"] + 1)) + ")"
    raise ValueError(f"no pattern for comma-separated items {items}")


def comma_list(item: Any, *, max_items: int | str | None = None) -> Any:
    """A non-empty list from ``a,b,c`` (query) or ``["a", "b"]`` (JSON), duplicates dropped;
    ``max_items`` is a number or the name of the setting that bounds it."""
    extra: list[Any] = []
    if isinstance(max_items, str):
        extra.append(Bound(max_items, to="max_length"))
    elif max_items is not None:
        extra.append(Field(max_length=max_items))
    return Annotated[
        list[item],
        BeforeValidator(_split),
        Field(min_length=1),
        *extra,
        AfterValidator(_dedupe),
        CommaSeparated(),
    ]
