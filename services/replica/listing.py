"""``GET /catalogue/v2/images``: parameters, filters, search, sorting, aggregations (SPEC §4).

Parsing collects every parameter error and joins them with ", " (as the catalogue does for
page and pageSize) before the 10,000-result window is checked. Filters are OR within one
parameter and AND across parameters; each aggregation applies every filter but its own
(RFC 37 faceting). With no query, colour or sort the order is image id ascending, the
stable order a paging crawler relies on; that common case only slices the id list.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

import numpy as np

from services.replica.collection import Collection
from services.replica.descriptor import color_query_vector, hex_to_rgb
from services.replica.documents import SOURCE_INCLUDES, drop_nulls, parse_csv, trim, with_base_url
from services.replica.errors import PAGE_LIMIT_MESSAGE, CatalogueError, not_valid_values

MAX_WINDOW = 10_000
COLOR_K = 1000
INT_MAX = 2**31 - 1

AGGREGATIONS = (
    "locations.license",
    "source.contributors.agent.label",
    "source.contributors.agent",
    "source.genres.label",
    "source.genres",
    "source.subjects.label",
    "source.subjects",
)
# filter parameter -> filterableValues key
FILTERS = {
    "locations.license": "locations.license.id",
    "source.contributors.agent.label": "source.contributors.agent.label",
    "source.contributors.agent": "source.contributors.agent.id",
    "source.genres.label": "source.genres.label",
    "source.genres": "source.genres.concepts.id",
    "source.subjects.label": "source.subjects.label",
    "source.subjects": "source.subjects.concepts.id",
}
_EMPTY_MEANS_NO_FILTER = {"source.genres", "source.subjects"}
# aggregation -> (response key, aggregatableValues key, bucket id is the label?)
_AGG_SOURCES = {
    "locations.license": ("license", "locations.license", False),
    "source.contributors.agent.label": (
        "source.contributors.agent.label",
        "source.contributors.agent",
        True,
    ),
    "source.contributors.agent": (
        "source.contributors.agent.label",
        "source.contributors.agent",
        False,
    ),
    "source.genres.label": ("source.genres.label", "source.genres", True),
    "source.genres": ("source.genres.label", "source.genres", False),
    "source.subjects.label": ("source.subjects.label", "source.subjects", True),
    "source.subjects": ("source.subjects.label", "source.subjects", False),
}
_DATE_KEY = "source.production.dates.range.from"
# ImagesQuery.json field boosts, by the field's path below query.source.
_FIELD_BOOSTS = {
    "title": 500.0,
    "contributors.agent.label": 100.0,
    "genres.concepts.label": 10.0,
    "subjects.concepts.label": 10.0,
    "production.label": 10.0,
}
_TOKEN = re.compile(r"\w+", re.UNICODE)


@dataclass
class ListQuery:
    page: int = 1
    page_size: int = 10
    query: str | None = None
    color: tuple[int, int, int] | None = None
    includes: set[str] = field(default_factory=set)
    aggregations: list[str] = field(default_factory=list)
    sort_by_date: bool = False
    descending: bool = False
    filters: dict[str, list[str]] = field(default_factory=dict)
    date_from: int | None = None  # epoch ms, inclusive
    date_to: int | None = None  # epoch ms, inclusive (end of that day)

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> ListQuery:
        q = cls()
        errors: list[str] = []
        q.page = _int_param(args, "page", 1, errors, lambda v: v >= 1, "must be greater than 1")
        q.page_size = _int_param(
            args, "pageSize", 10, errors, lambda v: 1 <= v <= 100, "must be between 1 and 100"
        )
        if "sort" in args:
            values = parse_csv(args["sort"])
            bad = [v for v in values if v != "source.production.dates"]
            if bad:
                errors.append(not_valid_values("sort", bad, ["source.production.dates"]))
            q.sort_by_date = bool(values) and not bad
        if "sortOrder" in args:
            order = args["sortOrder"]
            if order not in ("asc", "desc"):
                errors.append(not_valid_values("sortOrder", [order], ["asc", "desc"]))
            q.descending = order == "desc"
        if "color" in args:
            raw = args["color"]
            if re.fullmatch(r"[0-9a-fA-F]{1,8}", raw) and int(raw, 16) <= INT_MAX:
                q.color = hex_to_rgb(raw)
            else:
                errors.append(
                    f"color: '{raw}' is not a valid value. Please supply a single hex string."
                )
        if "include" in args:
            values = parse_csv(args["include"])
            bad = [v for v in values if v not in SOURCE_INCLUDES]
            if bad:
                errors.append(not_valid_values("include", bad, list(SOURCE_INCLUDES)))
            q.includes = set(values)
        if "aggregations" in args:
            values = parse_csv(args["aggregations"])
            bad = [v for v in values if v not in AGGREGATIONS]
            if bad:
                errors.append(not_valid_values("aggregations", bad, list(AGGREGATIONS)))
            q.aggregations = [v for v in values if v in AGGREGATIONS]
        for name, end in (
            ("source.production.dates.from", False),
            ("source.production.dates.to", True),
        ):
            if name in args:
                try:
                    value = _parse_date(args[name], end_of_day=end)
                except ValueError as exc:
                    errors.append(f"{name}: {exc}")
                    continue
                if end:
                    q.date_to = value
                else:
                    q.date_from = value
        if errors:
            raise CatalogueError(400, ", ".join(errors))
        if (q.page - 1) * q.page_size + q.page_size > MAX_WINDOW:
            raise CatalogueError(400, PAGE_LIMIT_MESSAGE)
        query = args.get("query")
        q.query = query if query and query.strip() else None
        for name in FILTERS:
            if name in args:
                values = parse_csv(args[name])
                if not values and name in _EMPTY_MEANS_NO_FILTER:
                    continue
                q.filters[name] = values
        return q

    @property
    def plain(self) -> bool:
        """True when the answer is just a slice of the id-ordered collection."""
        return not (
            self.query
            or self.color
            or self.filters
            or self.aggregations
            or self.sort_by_date
            or self.date_from is not None
            or self.date_to is not None
        )


def _int_param(args, name, default, errors, ok, message) -> int:
    if name not in args:
        return default
    raw = args[name]
    if not re.fullmatch(r"[+-]?\d+", raw.strip()) or abs(int(raw)) > INT_MAX + 1:
        errors.append(f"{name}: must be a valid Integer")
        return default
    value = int(raw)
    if not ok(value):
        errors.append(f"{name}: {message}")
        return default
    return value


def _parse_date(raw: str, *, end_of_day: bool) -> int:
    m = re.fullmatch(r"(\d{4,})-(\d{2})-(\d{2})", raw)
    if not m:
        raise ValueError("Invalid date encoding. Expected YYYY-MM-DD")
    if int(m.group(1)) > 9999:
        raise ValueError("year must be less than 9999")
    try:
        day = dt.datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)), tzinfo=dt.UTC)
    except ValueError as exc:
        raise ValueError("Invalid date encoding. Expected YYYY-MM-DD") from exc
    ms = int(day.timestamp() * 1000)
    return ms + 86_400_000 - 1 if end_of_day else ms


# -- execution ---------------------------------------------------------------------------------


def _matches_filters(filterable: dict, filters: dict[str, list[str]], skip: str | None) -> bool:
    for name, values in filters.items():
        if name == skip:
            continue
        have = filterable.get(FILTERS[name]) or []
        if not set(values).intersection(have):
            return False
    return True


def _in_dates(filterable: dict, q: ListQuery) -> bool:
    if q.date_from is None and q.date_to is None:
        return True
    for value in filterable.get(_DATE_KEY) or []:
        if (q.date_from is None or value >= q.date_from) and (
            q.date_to is None or value <= q.date_to
        ):
            return True
    return False


def _flatten(prefix: str, value, out: dict[str, list[str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else k, v, out)
    elif isinstance(value, list):
        for v in value:
            _flatten(prefix, v, out)
    elif value is not None:
        out.setdefault(prefix, []).append(str(value))


def _terms(text: str) -> list[str]:
    """Lowercased word tokens with a plural ``s`` stripped (a light English analyzer)."""
    return [
        w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
        for w in _TOKEN.findall(text.lower())
    ]


def text_score(query_fields: dict, tokens: list[str], require_all: bool) -> float | None:
    """best_fields multi_match (tie_breaker 0.4, minimum_should_match -30%): score or None."""
    flat: dict[str, list[str]] = {}
    _flatten("", query_fields, flat)
    need = len(tokens) if require_all else len(tokens) - math.floor(0.3 * len(tokens))
    scores = []
    matched_any = False
    for path, texts in flat.items():
        words = {w for text in texts for w in _terms(text)}
        hits = sum(1 for t in tokens if t in words)
        if hits == 0:
            continue
        if hits >= need:
            matched_any = True
        sub = path[len("source.") :] if path.startswith("source.") else path
        boost = next((b for suffix, b in _FIELD_BOOSTS.items() if sub.startswith(suffix)), 1.0)
        scores.append(boost * hits / len(tokens))
    if not matched_any:
        return None
    best = max(scores)
    return best + 0.4 * (sum(scores) - best)


def _color_scores(collection: Collection, rgb: tuple[int, int, int]) -> dict[int, float]:
    """Top ``COLOR_K`` rows by palette similarity (kNN on paletteEmbedding)."""
    qv = color_query_vector(rgb)
    rows, mat = collection.palette_matrix()
    all_rows = [rows]
    all_scores = [mat @ qv if len(rows) else np.zeros(0, np.float32)]
    proc = collection.procedural_arrays()
    if proc is not None and len(proc["rows"]):
        # Generated pictures are nearly one colour field; compare colour bins directly.
        centre = np.round(np.array(rgb) / 255 * 9)
        bins = np.round(proc["color"].astype(np.float64) / 255 * 9)
        d2 = ((bins - centre) ** 2).sum(axis=1)
        all_rows.append(proc["rows"])
        all_scores.append(np.exp(-d2 / (4 * 0.3**2)).astype(np.float32))
    rows = np.concatenate(all_rows).astype(np.int64)
    scores = np.concatenate(all_scores)
    order = np.lexsort((rows, -scores))[:COLOR_K]
    return {int(rows[i]): float(scores[i]) for i in order}


def run_list_query(
    collection: Collection, q: ListQuery, base_url: str, args: Mapping[str, str]
) -> dict:
    """The ResultList body for a parsed query."""
    start = (q.page - 1) * q.page_size
    if q.plain:
        total = len(collection)
        page_ids = collection.ids[start : start + q.page_size]
        aggregations = None
    else:
        page_ids, total, aggregations = _search(collection, q, start)
    results = [
        drop_nulls(trim(with_base_url(collection.record(i)["display"], base_url), q.includes))
        for i in page_ids
    ]
    total_pages = math.ceil(total / q.page_size) if total else 0
    body: dict = {
        "type": "ResultList",
        "pageSize": q.page_size,
        "totalPages": total_pages,
        "totalResults": total,
        "results": results,
    }
    if 1 <= q.page - 1 <= total_pages:
        body["prevPage"] = page_link(base_url, args, q.page - 1)
    if 1 <= q.page + 1 <= total_pages:
        body["nextPage"] = page_link(base_url, args, q.page + 1)
    if aggregations is not None:
        body["aggregations"] = aggregations
    return body


def page_link(base_url: str, args: Mapping[str, str], page: int) -> str:
    """The request's own query string with ``page`` replaced (or appended), on our host."""
    parts = []
    replaced = False
    items = args.items(multi=True) if hasattr(args, "getlist") else args.items()
    for key, value in items:
        if key == "page":
            if replaced:
                continue
            value, replaced = str(page), True
        parts.append(f"{quote(key, safe='.')}={quote(str(value), safe=',.:!')}")
    if not replaced:
        parts.append(f"page={page}")
    return f"{base_url}/catalogue/v2/images?" + "&".join(parts)


def _search(collection: Collection, q: ListQuery, start: int):
    tokens = list(dict.fromkeys(_terms(q.query))) if q.query else []
    color = _color_scores(collection, q.color) if q.color else None
    candidates = sorted(color) if color is not None else range(len(collection.ids))

    base: list[tuple[int, float, dict]] = []  # (row, score, record) after query/colour/date
    for row in candidates:
        rec = collection.record(collection.ids[row])
        score = 0.0
        if color is not None:
            score = color[row]
        if tokens:
            s = text_score(rec.get("query", {}), tokens, require_all=color is not None)
            if s is None:
                continue
            if color is None:
                score = s
        if not _in_dates(rec.get("filterable", {}), q):
            continue
        base.append((row, score, rec))

    hits = [b for b in base if _matches_filters(b[2].get("filterable", {}), q.filters, None)]

    def date_key(item) -> tuple:
        dates = item[2].get("filterable", {}).get(_DATE_KEY) or []
        if not dates:
            return (1, 0)
        value = min(dates)
        return (0, -value if q.descending else value)

    ids = collection.ids
    if q.sort_by_date:
        hits.sort(key=lambda it: (date_key(it), -it[1], ids[it[0]]))
    elif tokens or color is not None:
        hits.sort(key=lambda it: (-it[1], ids[it[0]]))
    else:
        hits.sort(key=lambda it: ids[it[0]])
    page_ids = [ids[it[0]] for it in hits[start : start + q.page_size]]
    aggregations = _aggregate(base, q) if q.aggregations else None
    return page_ids, len(hits), aggregations


def _aggregate(base: list[tuple[int, float, dict]], q: ListQuery) -> dict:
    out: dict = {"type": "Aggregations"}
    for name in q.aggregations:
        key, source, by_label = _AGG_SOURCES[name]
        counts: Counter[tuple[str, str]] = Counter()
        for _row, _score, rec in base:
            if not _matches_filters(rec.get("filterable", {}), q.filters, skip=name):
                continue
            seen = set()
            for item in rec.get("aggregatable", {}).get(source) or []:
                label = item.get("label", "")
                bucket = (label, label) if by_label else (item.get("id") or label, label)
                if bucket not in seen:
                    seen.add(bucket)
                    counts[bucket] += 1
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][1]))[:20]
        buckets = [
            {"data": {"id": bid, "label": label}, "count": n, "type": "AggregationBucket"}
            for (bid, label), n in ranked
        ]
        present = {bid for (bid, _label), _n in ranked}
        for value in q.filters.get(name, []):
            if value not in present:
                buckets.append(
                    {"data": {"id": value, "label": value}, "count": 0, "type": "AggregationBucket"}
                )
        out[key] = {"type": "Aggregation", "buckets": buckets}
    return out
