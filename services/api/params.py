"""Validation of request parameters: each helper returns a clean value or raises a 400 that
names the parameter, the accepted range and what was received.

Why hand-written helpers rather than a schema library: the rules are few (integers in a
range, ids, enumerations, comma lists) and the messages matter more than the machinery; the
same rules are described in ``openapi.py`` so the document and the behaviour agree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from services.api.errors import ApiError, bad_request

# Catalogue ids are lowercase letters and digits (Wellcome: 8 characters). The length cap
# keeps a hostile id from reaching the graph as a megabyte-long parameter.
ID_PATTERN = r"^[a-z0-9]{1,64}$"
_ID = re.compile(ID_PATTERN)


def _show(raw: object, width: int = 40) -> str:
    text = str(raw)
    return repr(text if len(text) <= width else text[:width] + "...")


def image_id(raw: object, name: str = "id") -> str:
    if raw is None:
        raise bad_request(f"{name} is required: a catalogue image id", name)
    if not isinstance(raw, str) or not _ID.match(raw):
        raise bad_request(
            f"{name} must be a catalogue image id: 1 to 64 lowercase letters and digits "
            f"(got {_show(raw)})",
            name,
        )
    return raw


def id_list(raw: object, name: str, max_items: int) -> list[str]:
    """A list of image ids: a JSON list, or a comma-separated string from a query string."""
    if isinstance(raw, str):
        items = [part.strip() for part in raw.split(",") if part.strip()]
    elif isinstance(raw, list):
        items = raw
    else:
        raise bad_request(f"{name} must be a list of image ids (got {_show(raw)})", name)
    if not items:
        raise bad_request(f"{name} must name at least one image id", name)
    if len(items) > max_items:
        raise bad_request(
            f"{name} has {len(items)} ids; at most {max_items} are allowed per request", name
        )
    return list(dict.fromkeys(image_id(item, name) for item in items))


def integer(
    raw: object, name: str, low: int, high: int, default: int | None = None,
    hint: str = "",
) -> int:
    """An integer in [low, high]; ``default`` when absent (None)."""
    if raw is None:
        if default is None:
            raise bad_request(f"{name} is required: an integer from {low} to {high}", name)
        return default
    if isinstance(raw, bool):
        value = None
    elif isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and re.fullmatch(r"[+-]?\d{1,12}", raw.strip()):
        value = int(raw.strip())
    else:
        value = None
    if value is None or not low <= value <= high:
        raise bad_request(
            f"{name} must be an integer from {low} to {high} (got {_show(raw)}){hint}", name
        )
    return value


def number(raw: object, name: str, low: float, high: float, default: float) -> float:
    if raw is None:
        return default
    try:
        value = float(raw) if not isinstance(raw, bool) else math.nan
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or not low <= value <= high:
        raise bad_request(f"{name} must be a number from {low} to {high} (got {_show(raw)})", name)
    return value


TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")
BOOLEAN_WORDS = TRUE_WORDS + FALSE_WORDS


def boolean(raw: object, name: str, default: bool) -> bool:
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise bad_request(f"{name} must be true or false (got {_show(raw)})", name)


def choice(raw: object, name: str, options: Iterable[str], default: str | None = None) -> str:
    options = tuple(options)
    if raw is None:
        if default is None:
            raise bad_request(f"{name} is required: one of {', '.join(options)}", name)
        return default
    if not isinstance(raw, str) or raw not in options:
        raise bad_request(f"{name} must be one of {', '.join(options)} (got {_show(raw)})", name)
    return raw


def choices(raw: object, name: str, options: Iterable[str], default: Iterable[str]) -> list[str]:
    """A comma-separated (or JSON list) subset of ``options``, in the order given."""
    options = tuple(options)
    if raw is None:
        return list(default)
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list):
        raise bad_request(f"{name} must be a comma-separated list of {', '.join(options)}", name)
    out = []
    for item in items:
        item = item.strip() if isinstance(item, str) else item
        if item not in options:
            raise bad_request(
                f"{name} must list values from {', '.join(options)} (got {_show(item)})", name
            )
        out.append(item)
    return list(dict.fromkeys(out))


def int_list(raw: object, name: str, low: int, high: int, max_items: int) -> list[int]:
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or len(items) > max_items:
        raise bad_request(
            f"{name} must be a comma-separated list of 1 to {max_items} integers from {low} to "
            f"{high} (got {_show(raw)})", name,
        )
    return list(dict.fromkeys(integer(item, name, low, high) for item in items))


def reject_unknown(given: Iterable[str], known: Iterable[str], where: str) -> None:
    """Refuse misspelt parameters (silently ignoring ``depht=3`` answers the wrong question)
    and, in a query string or form, parameters given twice (which one would count?)."""
    known = tuple(known)
    # Names starting with "_" are cache-busters some HTTP clients add; they change nothing.
    unknown = sorted(n for n in set(given) - set(known) if not n.startswith("_"))
    if unknown:
        raise bad_request(
            f"unknown {where} {', '.join(unknown)}; accepted: {', '.join(sorted(known))}"
            if known else f"unknown {where} {', '.join(unknown)}; this endpoint takes none",
            unknown[0],
        )
    getlist = getattr(given, "getlist", None)
    if getlist is not None:
        for name in given:
            if len(getlist(name)) > 1:
                raise bad_request(f"{where} {name} is given more than once", name)


def json_object(body: Any, what: str = "request body") -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, f"the {what} must be a JSON object")
    return body
