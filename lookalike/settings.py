"""One settings object for every process, read from the environment and an optional file.

Why one object: the CLI, the Celery workers, the indexer and the API run as separate
processes, and must agree on where the graph, Redis, the catalogue and the state folder are.
Each reads the same variables (``LOOKALIKE_*``, plus the conventional ``NEO4J_*`` and
``REDIS_URL``), optionally layered over a TOML file named by ``LOOKALIKE_CONFIG``.

Precedence: environment > config file > defaults. When ``NEO4J_URI`` / ``REDIS_URL`` are
unset, the connection details of the embedded stack (``lookalike up``) are read from the state
folder, so every command finds the servers that ``up`` started.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

WELLCOME_CATALOGUE = "https://api.wellcomecollection.org/catalogue/v2"
WELLCOME_IMAGE_HOSTS = ("iiif.wellcomecollection.org",)


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""


def _default_state_dir() -> Path:
    return Path.cwd() / ".lookalike"


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Field names map to ``LOOKALIKE_<NAME>`` variables."""

    state_dir: Path = field(default_factory=_default_state_dir)

    # Graph (Neo4j or the embedded ArcadeDB Bolt server).
    neo4j_uri: str | None = None
    neo4j_user: str = "neo4j"
    neo4j_password: str | None = None
    neo4j_database: str | None = None

    # Redis: Celery broker, crawl frontier, shared rate limit.
    redis_url: str | None = None

    # Catalogue.
    catalogue_url: str = WELLCOME_CATALOGUE
    image_hosts: tuple[str, ...] = WELLCOME_IMAGE_HOSTS
    rate_limit: float = 10.0  # requests per second, shared by every worker
    rate_burst: int = 10
    http_timeout: float = 30.0
    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    thumbnail_size: int = 400  # IIIF "!n,n"
    max_thumbnail_bytes: int = 5_000_000
    max_thumbnail_pixels: int = 4_000_000
    user_agent: str = (
        "Lookalike/0.1 (visual-similarity graph crawler; +https://github.com/lookalike/lookalike)"
    )
    legacy_similar: bool = False  # ask for include=visuallySimilar first

    # Crawling.
    max_depth: int = 6
    crawl_ttl_hours: float = 24 * 7
    refresh_batch: int = 500
    refresh_interval_s: float = 3600.0
    discover_interval_s: float = 6 * 3600.0
    thumbnail_cache_mb: int = 512
    crawl_batch: int = 16  # images per fetch task, written to the graph in one transaction
    crawl_lease_s: float = 120.0  # a dispatched image not finished by then is dispatched again
    task_retries: int = 4  # tries of one image after the client's own retries gave up
    max_seeds: int = 1000
    discover_depth: int = 0  # how deep to crawl from images discovered in the snapshot
    discover_source: str = ""  # snapshot URL or path; empty: the catalogue's list pages

    # Index sidecar.
    index_rebuild_min_new: int = 1000
    index_rebuild_period_s: float = 600.0
    index_trees: int = 10
    index_search_k: int = 2000

    # API.
    api_token: str | None = None
    api_max_depth: int = 3
    api_max_nodes: int = 5000
    api_max_upload_bytes: int = 10_000_000
    api_max_upload_pixels: int = 40_000_000
    cypher_timeout_s: float = 5.0
    cypher_max_rows: int = 1000

    # Replica and shared spec data.
    catalogue_spec_dir: Path = Path("../shared/catalogue-api")

    @property
    def stack_file(self) -> Path:
        return self.state_dir / "stack.json"

    @property
    def thumbnail_dir(self) -> Path:
        return self.state_dir / "thumbnails"

    @property
    def index_dir(self) -> Path:
        return self.state_dir / "index"

    def embedded(self) -> dict[str, Any]:
        """The connection record ``lookalike up`` wrote, or {} when the stack is not up."""
        try:
            return json.loads(self.stack_file.read_text())
        except FileNotFoundError:
            return {}

    def graph(self) -> GraphConnection:
        """Where the graph is: ``NEO4J_URI`` when set, else the embedded server."""
        if self.neo4j_uri:
            return GraphConnection(
                uri=self.neo4j_uri,
                user=self.neo4j_user,
                password=self.neo4j_password or "",
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
        return redis["url"]


@dataclass(frozen=True)
class GraphConnection:
    uri: str
    user: str
    password: str
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


def _convert(name: str, raw: Any, default: Any) -> Any:
    """Coerce a raw env/file value to the type of the field's default."""
    try:
        if isinstance(raw, str) and raw == "" and default is None:
            return None
        if isinstance(default, bool):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError("expected true/false")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, Path):
            return Path(str(raw)).expanduser()
        if isinstance(default, tuple):
            items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
            return tuple(str(i).strip() for i in items if str(i).strip())
        return str(raw)
    except (TypeError, ValueError) as exc:
        var = _ALIASES.get(name, f"LOOKALIKE_{name.upper()}")
        raise SettingsError(f"{var}={raw!r} is not valid: {exc}") from exc


def load_settings(
    environ: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Build Settings from defaults, the optional TOML file, the environment and overrides."""
    env = os.environ if environ is None else environ
    base = Settings()
    values: dict[str, Any] = {}

    config = env.get("LOOKALIKE_CONFIG")
    if config:
        path = Path(config).expanduser()
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError as exc:
            raise SettingsError(f"LOOKALIKE_CONFIG names {path}, which does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"LOOKALIKE_CONFIG file {path} is not valid TOML: {exc}") from exc
        known = {f.name for f in fields(Settings)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"unknown settings in {path}: {', '.join(unknown)}")
        values.update(data)

    for f in fields(Settings):
        var = _ALIASES.get(f.name, f"LOOKALIKE_{f.name.upper()}")
        if var in env:
            values[f.name] = env[var]

    converted = {
        name: _convert(name, raw, getattr(base, name)) for name, raw in values.items()
    }
    converted.update(overrides)
    settings = replace(base, **converted)
    if settings.rate_limit <= 0:
        raise SettingsError("LOOKALIKE_RATE_LIMIT must be a positive number of requests/s")
    if not 1 <= settings.crawl_batch <= 100:
        raise SettingsError("LOOKALIKE_CRAWL_BATCH must be a whole number of images from 1 to 100")
    return settings
