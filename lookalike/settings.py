"""One settings object for every process, read from the environment and an optional file.

Why one object: the CLI, the Celery workers, the indexer and the API run as separate
processes, and must agree on where the graph, Redis, the catalogue and the state folder are.
Each reads the same variables (``LOOKALIKE_<NAME>``, plus the conventional ``NEO4J_*`` and
``REDIS_URL``), optionally layered over a TOML file named by ``LOOKALIKE_CONFIG``.

Precedence: environment > config file > defaults. When ``NEO4J_URI`` / ``REDIS_URL`` are
unset, the connection details of the embedded stack (``lookalike up``) are read from the state
folder, so every command finds the servers that ``up`` started.

The model is the contract: each field's type, bounds and description are declared once here;
validation, the error messages (which name the variable), the README's settings table
(``python -m lookalike.settings_table``) and the test that keeps that table true all come
from it.

Why a pydantic model with a small loader rather than pydantic-settings: callers (tests,
benchmarks, the compose check) pass the environment as a mapping, ``load_settings(environ=
...)``, and pydantic-settings' environment source only reads ``os.environ``; it also decodes
list values as JSON (``LOOKALIKE_IMAGE_HOSTS=a,b`` would need a workaround) and looks for
``.env`` files. Layering two dicts over defaults is a dozen lines, and the rest (types,
bounds, secrets, refusal of unknown keys) is pydantic's.
"""

from __future__ import annotations

import json
import os
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import annotated_types
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
)

WELLCOME_CATALOGUE = "https://api.wellcomecollection.org/catalogue/v2"
WELLCOME_IMAGE_HOSTS = ("iiif.wellcomecollection.org",)


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""


def _default_state_dir() -> Path:
    return Path.cwd() / ".lookalike"


def _default_model_dir() -> Path:
    # The user's cache, not the state folder: the converted model is the same for every
    # project and test run, so temporary state folders reuse one conversion.
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "lookalike" / "models"


def _host_list(raw: Any) -> Any:
    """``a, b`` from the environment or ``["a", "b"]`` from TOML: a tuple of names."""
    items = raw.split(",") if isinstance(raw, str) else raw
    if isinstance(items, list | tuple):
        return tuple(str(i).strip() for i in items if str(i).strip())
    return raw


def _user_path(raw: Any) -> Any:
    return Path(raw).expanduser() if isinstance(raw, str | Path) else raw


def _work_template(raw: Any) -> Any:
    """A link template may name only {source_id} and {id}; empty means no link."""
    if not isinstance(raw, str):
        return raw
    try:
        names = {n for _, n, _, _ in string.Formatter().parse(raw) if n is not None}
    except ValueError as exc:
        raise ValueError(f"not a valid template ({exc})") from None
    if names - {"source_id", "id"}:
        raise ValueError(
            f"may only use {{source_id}} and {{id}}, not "
            f"{', '.join(sorted(names - {'source_id', 'id'}))}"
        )
    return raw


Hosts = Annotated[tuple[str, ...], BeforeValidator(_host_list)]
WorkTemplate = Annotated[str, AfterValidator(_work_template)]
UserPath = Annotated[Path, BeforeValidator(_user_path)]


def _doc(text: str, *, shown: str | None = None, section: str) -> dict[str, Any]:
    """Field metadata: ``shown`` replaces a default that depends on where you run."""
    extra: dict[str, Any] = {"section": section}
    if shown is not None:
        extra["shown"] = shown
    return {"description": text, "json_schema_extra": extra}


GRAPH, REDIS, CATALOGUE, CRAWL, INDEX, EMBED, API, DEV = (
    "graph",
    "redis",
    "catalogue",
    "crawling",
    "index",
    "embeddings",
    "API",
    "development",
)


class Settings(BaseModel):
    """Everything configurable. Field names map to ``LOOKALIKE_<NAME>`` variables."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=False)

    state_dir: UserPath = Field(
        default_factory=_default_state_dir,
        **_doc(
            "data of the embedded servers, thumbnails, index, report",
            shown="./.lookalike",
            section=GRAPH,
        ),
    )

    # Graph (Neo4j or the embedded ArcadeDB Bolt server).
    neo4j_uri: str | None = Field(
        None,
        **_doc(
            "Bolt URI of a real Neo4j (default: the embedded server of `lookalike up`)",
            shown="embedded",
            section=GRAPH,
        ),
    )
    neo4j_user: str = Field("neo4j", **_doc("user for NEO4J_URI", section=GRAPH))
    neo4j_password: SecretStr | None = Field(
        None, **_doc("password for NEO4J_URI (never printed)", shown="none", section=GRAPH)
    )
    neo4j_database: str | None = Field(
        None,
        **_doc("database name (default: the server's default)", shown="default", section=GRAPH),
    )

    # Redis: Celery broker, crawl frontier, shared rate limit.
    redis_url: str | None = Field(
        None,
        **_doc(
            "your own Redis: broker, crawl frontier, shared rate limit",
            shown="embedded",
            section=REDIS,
        ),
    )

    # Catalogue.
    catalogue_url: str = Field(
        WELLCOME_CATALOGUE,
        **_doc("the catalogue API's base URL", shown="Wellcome's", section=CATALOGUE),
    )
    image_hosts: Hosts = Field(
        WELLCOME_IMAGE_HOSTS,
        **_doc("the only hosts thumbnails are fetched from (comma-separated)", section=CATALOGUE),
    )
    rate_limit: float = Field(
        10.0,
        gt=0,
        le=10_000,
        **_doc(
            "catalogue requests per second, one limit for all workers together", section=CATALOGUE
        ),
    )
    rate_burst: int = Field(
        10,
        ge=1,
        le=10_000,
        **_doc("requests allowed at once before the rate limit applies", section=CATALOGUE),
    )
    http_timeout: float = Field(
        30.0,
        gt=0,
        le=600,
        **_doc(
            "seconds one whole catalogue or thumbnail request may take (connecting, headers "
            "and body together)",
            section=CATALOGUE,
        ),
    )
    max_retries: int = Field(
        5,
        ge=0,
        le=50,
        **_doc(
            "retries of one request on 429, 5xx, timeouts and dropped connections",
            section=CATALOGUE,
        ),
    )
    backoff_base: float = Field(
        0.5,
        ge=0,
        le=600,
        **_doc(
            "first retry delay in seconds of a request or a re-queued image (doubles each retry, "
            "with jitter)",
            section=CATALOGUE,
        ),
    )
    backoff_max: float = Field(
        30.0,
        ge=0,
        le=3600,
        **_doc(
            "longest retry delay in seconds, and the longest a task waits in-line for a rate "
            "limit or a Retry-After",
            section=CATALOGUE,
        ),
    )
    thumbnail_size: int = Field(
        400,
        ge=16,
        le=4096,
        **_doc("thumbnail size asked of the IIIF server (`!n,n`)", section=CATALOGUE),
    )
    max_thumbnail_bytes: int = Field(
        5_000_000,
        ge=1,
        le=1_000_000_000,
        **_doc("largest thumbnail accepted, in bytes", section=CATALOGUE),
    )
    max_thumbnail_pixels: int = Field(
        4_000_000,
        ge=1,
        le=1_000_000_000,
        **_doc("largest thumbnail accepted, in decoded pixels", section=CATALOGUE),
    )
    user_agent: str = Field(
        "Lookalike/0.1 (visual-similarity graph crawler; +https://github.com/lookalike/lookalike)",
        min_length=1,
        **_doc("the User-Agent the crawler sends", shown="Lookalike/0.1 (…)", section=CATALOGUE),
    )
    legacy_similar: bool = Field(
        False,
        **_doc("ask for `include=visuallySimilar` first (older catalogues)", section=CATALOGUE),
    )
    work_url: WorkTemplate = Field(
        "https://wellcomecollection.org/works/{source_id}",
        **_doc(
            "the link from an image to its work in the catalogue, for people (`{source_id}`, "
            "`{id}`; empty: no link)",
            section=CATALOGUE,
        ),
    )

    # Crawling.
    max_depth: int = Field(6, ge=0, le=50, **_doc("deepest crawl accepted", section=CRAWL))
    crawl_ttl_hours: float = Field(
        24.0 * 7,
        ge=0,
        le=24 * 3650,
        **_doc(
            "images older than this are re-fetched by `lookalike beat` (0.5 = half an hour)",
            section=CRAWL,
        ),
    )
    refresh_batch: int = Field(
        500, ge=1, le=100_000, **_doc("stale images re-fetched per beat tick", section=CRAWL)
    )
    refresh_interval_s: float = Field(
        3600.0,
        gt=0,
        le=7 * 86400,
        **_doc("seconds between beat's refreshes of stale images", section=CRAWL),
    )
    discover_interval_s: float = Field(
        6 * 3600.0,
        gt=0,
        le=30 * 86400,
        **_doc("seconds between beat's looks for new catalogue images", section=CRAWL),
    )
    thumbnail_cache_mb: int = Field(
        512, ge=0, le=10_000_000, **_doc("disk for cached thumbnails, in MB", section=CRAWL)
    )
    crawl_batch: int = Field(
        16,
        ge=1,
        le=100,
        **_doc("images per fetch task, written to the graph in one transaction", section=CRAWL),
    )
    crawl_lease_s: float = Field(
        120.0,
        gt=0,
        le=86400,
        **_doc("an image not finished by then (dead worker) is dispatched again", section=CRAWL),
    )
    task_retries: int = Field(
        4,
        ge=0,
        le=50,
        **_doc("tries of one image after the client's own retries gave up", section=CRAWL),
    )
    max_seeds: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        **_doc(
            "most seed images one crawl may start from (`lookalike crawl` runs more as "
            "consecutive crawls of this many)",
            section=CRAWL,
        ),
    )
    discover_depth: int = Field(
        0,
        ge=0,
        le=50,
        **_doc("how deep to crawl from images discovered in the catalogue", section=CRAWL),
    )
    discover_source: str = Field(
        "",
        **_doc(
            "snapshot URL or path to discover images from, also for `lookalike crawl --all` "
            "(empty: the catalogue's list pages)",
            shown="none",
            section=CRAWL,
        ),
    )

    # Index sidecar.
    index_rebuild_min_new: int = Field(
        1000,
        ge=1,
        le=100_000_000,
        **_doc("new hashes that trigger an index rebuild", section=INDEX),
    )
    index_rebuild_period_s: float = Field(
        600.0,
        gt=0,
        le=7 * 86400,
        **_doc("seconds after which anything new triggers a rebuild", section=INDEX),
    )
    index_trees: int = Field(10, ge=1, le=1000, **_doc("Annoy trees per hash kind", section=INDEX))
    index_search_k: int = Field(
        2000,
        ge=1,
        le=10_000_000,
        **_doc("Annoy nodes inspected per query (recall against speed)", section=INDEX),
    )
    # Near-duplicates: the embedding rules of services/indexer/verify.py, chosen by
    # bench/bench_quality.py on its tuning pictures (never on those it reports on) for the
    # shipped embedding recipe: veto what 99.5% of original-edit pairs stay above; claim at
    # the lowest cosine and loosest distance that add no false pair there (bench/README.md).
    neardup_min_cosine: float = Field(
        0.78,
        ge=0,
        le=1,
        **_doc(
            "embedding cosine from which a pair whose hashes agree only loosely (up to "
            "NEARDUP_LOOSE_WEIGHTED) is a near-duplicate; 1: hashes alone claim pairs",
            section=INDEX,
        ),
    )
    neardup_loose_weighted: float = Field(
        23.0,
        ge=0,
        le=64,
        **_doc(
            "weighted hash distance (bits) up to which NEARDUP_MIN_COSINE claims a pair",
            section=INDEX,
        ),
    )
    neardup_veto_cosine: float = Field(
        0.71,
        ge=0,
        le=1,
        **_doc(
            "embedding cosine under which a pair is never a near-duplicate, however alike its "
            "hashes; 0: no veto",
            section=INDEX,
        ),
    )
    # Where the workers leave the views the index sidecar verifies pairs with.
    view_store_mb: int = Field(
        17_000,
        ge=0,
        le=10_000_000,
        **_doc(
            "disk for the views near-duplicates are verified with (lookalike.localmatch; a "
            "grey PNG of ~40-45 KB per image and its colours in ~11 KB), in MB: the default "
            "keeps a 250,000-image collection's (250,000 x 56 KB = 14 GB, and a fifth to "
            "spare); past it the oldest views are evicted and their pairs judged on hashes "
            "and embeddings alone, as with 0: none kept",
            section=INDEX,
        ),
    )
    index_local_pairs_per_build: int = Field(
        40_000,
        ge=0,
        le=100_000_000,
        **_doc(
            "candidate pairs an index build compares on their views at most (~18 ms each, "
            "views read from disk, on 2 cores: ~12 min); the pairs with the newest views go "
            "first, the rest are "
            "judged on hashes and embeddings until the builds that follow, which come at once, "
            "have compared them all (a 250,000-image collection's first ~1.4M pairs take ~35 "
            "builds); 0: every pair in one build",
            section=INDEX,
        ),
    )

    # Learned embeddings (lookalike/embedding/).
    embeddings: bool = Field(
        True,
        **_doc(
            "learned embeddings; false: no model is loaded and nothing is embedded", section=EMBED
        ),
    )
    model_dir: UserPath = Field(
        default_factory=_default_model_dir,
        **_doc(
            "where `lookalike model install` puts the converted model, shared by every project "
            "and test run",
            shown="`~/.cache/lookalike/models` (`$XDG_CACHE_HOME`)",
            section=EMBED,
        ),
    )
    embed_recipe: str = Field(
        "",
        **_doc(
            "another preprocessing recipe than the tuned one (a label such as `pad224-avg`): "
            "another model version, so every image is embedded again",
            section=EMBED,
        ),
    )
    embed_stream_max: int = Field(
        50_000,
        ge=100,
        le=10_000_000,
        **_doc(
            "vectors waiting in Redis for the indexer; past it the oldest are dropped (and "
            "embedded again later)",
            section=EMBED,
        ),
    )
    looks_like_k: int = Field(
        10,
        ge=1,
        le=100,
        **_doc(
            "`LOOKS_LIKE` relationships the indexer writes per image (raw and refined)",
            section=EMBED,
        ),
    )
    embed_reembed_per_build: int = Field(
        20_000,
        ge=0,
        le=10_000_000,
        **_doc(
            "images whose vectors are missing (or by another model) the indexer hands back to "
            "the workers per build",
            section=EMBED,
        ),
    )

    # API.
    api_token: SecretStr | None = Field(
        None,
        **_doc(
            "bearer token required by the API's mutating endpoints (never printed)",
            shown="none",
            section=API,
        ),
    )
    api_max_depth: int = Field(
        3, ge=1, le=10, **_doc("deepest neighbourhood the API answers while you wait", section=API)
    )
    api_max_nodes: int = Field(
        5000,
        ge=1,
        le=1_000_000,
        **_doc("most images in one API answer (bigger: `POST /analysis/jobs`)", section=API),
    )
    api_max_upload_bytes: int = Field(
        10_000_000,
        ge=1,
        le=1_000_000_000,
        **_doc("largest picture `POST /search` accepts, in bytes", section=API),
    )
    api_max_upload_pixels: int = Field(
        40_000_000,
        ge=1,
        le=1_000_000_000,
        **_doc("largest picture `POST /search` decodes, in pixels", section=API),
    )
    cypher_timeout_s: float = Field(
        5.0, gt=0, le=600, **_doc("time limit of one `POST /cypher` query, in seconds", section=API)
    )
    cypher_max_rows: int = Field(
        1000, ge=1, le=1_000_000, **_doc("most rows one `POST /cypher` query returns", section=API)
    )

    # Replica and shared spec data.
    catalogue_spec_dir: UserPath = Field(
        Path("../shared/catalogue-api"),
        **_doc("the catalogue API's specification files, for the tests that use them", section=DEV),
    )

    @property
    def stack_file(self) -> Path:
        return self.state_dir / "stack.json"

    @property
    def thumbnail_dir(self) -> Path:
        return self.state_dir / "thumbnails"

    @property
    def view_dir(self) -> Path:
        return self.state_dir / "views"

    @property
    def index_dir(self) -> Path:
        return self.state_dir / "index"

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied and checked like any other value."""
        return _validated({**dict(self), **changes}, {})

    def embedded(self) -> dict[str, Any]:
        """The connection record ``lookalike up`` wrote, or {} when the stack is not up."""
        try:
            record: dict[str, Any] = json.loads(self.stack_file.read_text())
        except FileNotFoundError:
            return {}
        return record

    def graph(self) -> GraphConnection:
        """Where the graph is: ``NEO4J_URI`` when set, else the embedded server."""
        if self.neo4j_uri:
            return GraphConnection(
                uri=self.neo4j_uri,
                user=self.neo4j_user,
                password=self.neo4j_password.get_secret_value() if self.neo4j_password else "",
                database=self.neo4j_database,
            )
        graph = self.embedded().get("graph")
        if not graph:
            raise SettingsError(
                "no graph server: set NEO4J_URI, or start the embedded stack with `lookalike up`"
            )
        return GraphConnection(
            uri=graph["uri"],
            user=graph["user"],
            password=graph["password"],
            database=self.neo4j_database or graph.get("database"),
        )

    def redis(self) -> str:
        """The Redis URL: ``REDIS_URL`` when set, else the embedded server."""
        if self.redis_url:
            return self.redis_url
        redis = self.embedded().get("redis")
        if not redis:
            raise SettingsError(
                "no Redis: set REDIS_URL, or start the embedded stack with `lookalike up`"
            )
        url: str = redis["url"]
        return url


@dataclass(frozen=True)
class GraphConnection:
    uri: str
    user: str
    password: str = field(repr=False)
    database: str | None

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)


_ALIASES = {
    "neo4j_uri": "NEO4J_URI",
    "neo4j_user": "NEO4J_USER",
    "neo4j_password": "NEO4J_PASSWORD",
    "neo4j_database": "NEO4J_DATABASE",
    "redis_url": "REDIS_URL",
}


def variable(name: str) -> str:
    """The environment variable of the setting ``name``."""
    return _ALIASES.get(name, f"LOOKALIKE_{name.upper()}")


VARIABLES: dict[str, str] = {name: variable(name) for name in Settings.model_fields}


def _optional(name: str) -> bool:
    return Settings.model_fields[name].default is None


def number(value: object) -> str:
    """A bound or default as people write it: 0.5, 30, 5,000,000. (annotated_types types a
    bound only as comparable; every bound of ours is a number.)"""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _bounds(name: str) -> str:
    """The accepted range of a numeric setting, in words."""
    low: object = None
    high: object = None
    low_open = False
    for rule in Settings.model_fields[name].metadata:
        if isinstance(rule, annotated_types.Ge):
            low = rule.ge
        elif isinstance(rule, annotated_types.Gt):
            low, low_open = rule.gt, True
        elif isinstance(rule, annotated_types.Le):
            high = rule.le
    if low_open and low == 0:
        return " greater than 0" + (f" and at most {number(high)}" if high is not None else "")
    if low is not None and high is not None:
        return f" from {number(low)} to {number(high)}"
    return ""


def _message(err: Mapping[str, Any]) -> str:
    name = str(err["loc"][0]) if err["loc"] else ""
    var = variable(name)
    annotation = Settings.model_fields[name].annotation if name in Settings.model_fields else None
    secret = annotation is not None and "SecretStr" in str(annotation)
    got = "" if secret else f" (got {err.get('input')!r})"
    kind = str(err["type"])
    if annotation is bool or kind == "bool_parsing":
        return f"{var} must be true or false{got}"
    if annotation is int or kind.startswith("int_"):
        return f"{var} must be a whole number{_bounds(name)}{got}"
    if annotation is float or kind.startswith("float_"):
        return f"{var} must be a number{_bounds(name)}{got}"
    return f"{var} is not valid: {err['msg']}{got}"


def _validated(values: Mapping[str, Any], raw_sources: Mapping[str, str]) -> Settings:
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        messages = []
        for err in exc.errors():
            message = _message(err)
            name = str(err["loc"][0]) if err["loc"] else ""
            if name in raw_sources:
                message += f" in {raw_sources[name]}"
            messages.append(message)
        raise SettingsError("; ".join(dict.fromkeys(messages))) from None


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from defaults, the optional TOML file, the environment and overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    where: dict[str, str] = {}

    config = env.get("LOOKALIKE_CONFIG")
    if config:
        path = Path(config).expanduser()
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError as exc:
            raise SettingsError(f"LOOKALIKE_CONFIG names {path}, which does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"LOOKALIKE_CONFIG file {path} is not valid TOML: {exc}") from exc
        unknown = sorted(set(data) - set(Settings.model_fields))
        if unknown:
            raise SettingsError(f"unknown settings in {path}: {', '.join(unknown)}")
        values.update(data)
        where.update(dict.fromkeys(data, str(path)))

    for name, var in VARIABLES.items():
        if var in env:
            raw = env[var]
            # An empty variable means "not set" for settings that are optional.
            values[name] = None if raw == "" and _optional(name) else raw
            where.pop(name, None)

    unknown = sorted(set(overrides) - set(Settings.model_fields))
    if unknown:
        raise TypeError(f"load_settings() got unknown settings: {', '.join(unknown)}")
    values.update(overrides)
    return _validated(values, where)
