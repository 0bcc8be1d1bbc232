"""Builders of catalogue-shaped records (SPEC §2): display documents and their index fields.

Built images must look exactly like the pipeline's documents (same keys, types and fixed
licence labels), so a client tested against the replica works on the real catalogue.
Besides ``display`` each stored record carries what the Elasticsearch index holds next to
it (``filterableValues``, ``aggregatableValues``, ``query``): the list endpoint's filters,
aggregations and text search read those, as the real API does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from services.replica.documents import PLACEHOLDER_BASE, info_url

LICENSES: dict[str, tuple[str, str]] = {
    "cc-by": (
        "Attribution 4.0 International (CC BY 4.0)",
        "http://creativecommons.org/licenses/by/4.0/",
    ),
    "cc-by-nc": (
        "Attribution-NonCommercial 4.0 International (CC BY-NC 4.0)",
        "https://creativecommons.org/licenses/by-nc/4.0/",
    ),
    "cc-by-nc-nd": (
        "Attribution-NonCommercial-NoDerivatives 4.0 International (CC BY-NC-ND 4.0)",
        "https://creativecommons.org/licenses/by-nc-nd/4.0/",
    ),
    "cc-0": ("CC0 1.0 Universal", "https://creativecommons.org/publicdomain/zero/1.0/legalcode"),
    "pdm": (
        "Public Domain Mark",
        "https://creativecommons.org/share-your-work/public-domain/pdm/",
    ),
    "cc-by-nd": (
        "Attribution-NoDerivatives 4.0 International (CC BY-ND 4.0)",
        "https://creativecommons.org/licenses/by-nd/4.0/",
    ),
    "cc-by-sa": (
        "Attribution-ShareAlike 4.0 International (CC BY-SA 4.0)",
        "https://creativecommons.org/licenses/by-sa/4.0/",
    ),
    "cc-by-nc-sa": (
        "Attribution-NonCommercial-ShareAlike 4.0 International (CC BY-NC-SA 4.0)",
        "https://creativecommons.org/licenses/by-nc-sa/4.0/",
    ),
    "ogl": (
        "Open Government Licence",
        "http://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/",
    ),
    "opl": (
        "Open Parliament Licence",
        "https://www.parliament.uk/site-information/copyright-parliament/open-parliament-licence/",
    ),
    "inc": ("In copyright", "http://rightsstatements.org/vocab/InC/1.0/"),
}

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def canonical_id(*parts: str | bytes) -> str:
    """An 8-character lowercase alphanumeric id from a hash of ``parts`` (stable forever)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else part.encode())
        h.update(b"\x00")
    n = int.from_bytes(h.digest()[:8], "big")
    chars = []
    for _ in range(8):
        n, r = divmod(n, 36)
        chars.append(_ALPHABET[r])
    return "".join(chars)


def asset_id_for(image_id: str) -> str:
    """The IIIF asset id of a built image: ``L`` + the id in capitals, like Miro's ``L0014768``."""
    return "L" + image_id.upper()


def license_json(license_id: str) -> dict:
    label, url = LICENSES[license_id]
    return {"id": license_id, "label": label, "url": url, "type": "License"}


def iiif_location(asset_id: str, license_id: str, credit: str | None) -> dict:
    loc: dict[str, Any] = {
        "locationType": {"id": "iiif-image", "label": "IIIF Image API", "type": "LocationType"},
        "url": info_url(asset_id, PLACEHOLDER_BASE),
    }
    if credit:
        loc["credit"] = credit
    loc["license"] = license_json(license_id)
    loc["accessConditions"] = [
        {
            "method": {"id": "view-online", "label": "View online", "type": "AccessMethod"},
            "status": {"id": "open", "label": "Open", "type": "AccessStatus"},
            "type": "AccessCondition",
        }
    ]
    loc["type"] = "DigitalLocation"
    return loc


def contributor(label: str, role: str | None = None, agent_type: str = "Person") -> dict:
    return {
        "agent": {"label": label, "type": agent_type},
        "roles": [{"label": role, "type": "ContributionRole"}] if role else [],
        "primary": True,
        "type": "Contributor",
    }


def concept_list(kind: str, label: str, concept_id: str | None) -> dict:
    """A Genre (``kind="Genre"``) or Subject with one concept."""
    concept: dict[str, Any] = {"label": label, "type": "Genre" if kind == "Genre" else "Concept"}
    if concept_id:
        concept = {"id": concept_id, **concept}
    out: dict[str, Any] = {"label": label, "concepts": [concept], "type": kind}
    if kind == "Subject" and concept_id:
        out = {"id": concept_id, **out}
    return out


def image_display(
    *,
    image_id: str,
    asset_id: str,
    aspect: float,
    average_color: str,
    source_id: str,
    title: str | None,
    license_id: str,
    credit: str | None,
    contributors: list[dict],
    genres: list[dict],
    subjects: list[dict],
    languages: list[dict],
) -> dict:
    """One Image display document, snapshot key order."""
    loc = iiif_location(asset_id, license_id, credit)
    source: dict[str, Any] = {"id": source_id}
    if title is not None:
        source["title"] = title
    source.update(
        contributors=contributors,
        genres=genres,
        languages=languages,
        subjects=subjects,
        type="Work",
    )
    return {
        "id": image_id,
        "thumbnail": loc,
        "locations": [loc],
        "aspectRatio": aspect,
        "averageColor": average_color,
        "source": source,
        "type": "Image",
    }


def year_to_epoch_ms(year: int) -> int:
    return int(dt.datetime(year, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)


def index_fields(display: dict, date_from_ms: list[int]) -> dict:
    """``filterableValues``/``aggregatableValues``/``query`` for a built display document."""
    src = display["source"]
    licenses = [loc["license"] for loc in display["locations"] if loc.get("license")]
    contributors = [c["agent"] for c in src.get("contributors", [])]
    genres = src.get("genres", [])
    subjects = src.get("subjects", [])

    def first_concept_ids(items: list[dict]) -> list[str]:
        return [c["concepts"][0]["id"] for c in items if c["concepts"] and "id" in c["concepts"][0]]

    filterable = {
        "locations.license.id": [lic["id"] for lic in licenses],
        "source.contributors.agent.label": [a["label"] for a in contributors],
        "source.contributors.agent.id": [a["id"] for a in contributors if "id" in a],
        "source.genres.label": [g["label"] for g in genres],
        "source.genres.concepts.id": first_concept_ids(genres),
        "source.subjects.label": [s["label"] for s in subjects],
        "source.subjects.concepts.id": first_concept_ids(subjects),
        "source.production.dates.range.from": date_from_ms,
    }
    aggregatable = {
        "locations.license": [{"id": lic["id"], "label": lic["label"]} for lic in licenses],
        "source.contributors.agent": [
            {"id": a.get("id", a["label"]), "label": a["label"]} for a in contributors
        ],
        "source.genres": [
            {
                "id": (g["concepts"][0].get("id") if g["concepts"] else None) or g["label"],
                "label": g["label"],
            }
            for g in genres
        ],
        "source.subjects": [
            {
                "id": (s["concepts"][0].get("id") if s["concepts"] else None) or s["label"],
                "label": s["label"],
            }
            for s in subjects
        ],
    }
    query = {
        "id": display["id"],
        "source": {
            "id": src["id"],
            "title": src.get("title"),
            "contributors.agent.label": [a["label"] for a in contributors],
            "genres.concepts.label": [c["label"] for g in genres for c in g["concepts"]],
            "subjects.concepts.label": [c["label"] for s in subjects for c in s["concepts"]],
            "languages.label": [lang["label"] for lang in src.get("languages", [])],
        },
    }
    return {"filterable": filterable, "aggregatable": aggregatable, "query": query}
