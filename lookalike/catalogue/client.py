"""The catalogue client: one object that puts the package's parts together.

Workers are separate processes: create the client in the process that uses it (the session
is re-created automatically if the process forks after creating it).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from PIL import Image

from lookalike.catalogue import images, pages, snapshot
from lookalike.catalogue.fetch import Fetcher, Source
from lookalike.catalogue.json_body import ACCEPT_JSON, read_json
from lookalike.catalogue.offsite import check_host, host_allowed, host_of
from lookalike.catalogue.stats import ClientStats
from lookalike.catalogue.throttle import DEFAULT_KEY_PREFIX, Throttle
from lookalike.catalogue.thumbnails import ACCEPT_IMAGE, iiif_thumbnail_url, read_thumbnail
from lookalike.catalogue.transport import Transport
from lookalike.errors import CatalogueError, RecordError
from lookalike.ratelimit import RateLimiter
from lookalike.records import ImageRecord, ImageWithSimilar
from lookalike.retry import catalogue_requests
from lookalike.settings import WELLCOME_CATALOGUE, Settings


class CatalogueClient:
    """Fetches images, similar images, list pages, snapshots and thumbnails.

    ``redis_client`` (a ``redis.Redis``) makes the rate limit shared by every process using
    the same Redis; without it each client limits itself only.
    """

    def __init__(
        self,
        settings: Settings,
        redis_client: Any = None,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        snapshot_hosts: Iterable[str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.catalogue_url = settings.catalogue_url.rstrip("/")
        if not host_allowed(self.catalogue_url, [host_of(self.catalogue_url)]):
            raise ValueError(
                f"catalogue_url {settings.catalogue_url!r} is not an http(s) URL; set "
                "LOOKALIKE_CATALOGUE_URL to e.g. https://api.wellcomecollection.org/catalogue/v2"
            )
        self.catalogue_hosts = (host_of(self.catalogue_url),)
        self.image_hosts = tuple(settings.image_hosts)
        if snapshot_hosts is None:
            snapshot_hosts = (
                snapshot.WELLCOME_SNAPSHOT_HOSTS
                if self.catalogue_url == WELLCOME_CATALOGUE.rstrip("/")
                else ()
            )
        self.snapshot_hosts = self.catalogue_hosts + tuple(snapshot_hosts)
        self._json = Source("catalogue URL", self.catalogue_hosts, ACCEPT_JSON)
        self._thumbnails = Source("thumbnail", self.image_hosts, ACCEPT_IMAGE)
        self.redis = redis_client
        self._owns_redis = False
        self.stats = ClientStats()
        policy = catalogue_requests(settings)
        # The longest in-line wait (rate limit, Retry-After) before giving the task back.
        self.max_wait = policy.cap
        self.throttle = Throttle(settings, redis_client, key_prefix, self.max_wait, self.stats)
        self.transport = Transport(settings, self.throttle, self.stats)
        self.fetcher = Fetcher(
            self.transport,
            self.throttle,
            policy,
            settings.http_timeout,
            self.stats,
            sleep=sleep,
            rng=rng,
        )
        # Which similar-images include this catalogue accepts, once we know.
        self.similar_field: str | None = None

    @classmethod
    def connect(cls, settings: Settings, **kwargs: Any) -> CatalogueClient:
        """A client sharing its rate limit through the Redis that ``settings`` names
        (``REDIS_URL``, or the embedded stack's); ``close()`` closes that connection too."""
        import redis

        client = cls(settings, redis.Redis.from_url(settings.redis()), **kwargs)
        client._owns_redis = True
        return client

    def limiter(self, url: str) -> RateLimiter:
        """The rate limiter of ``url``'s host (shared via Redis when there is one)."""
        return self.throttle.limiter(url)

    def close(self) -> None:
        self.transport.close()
        if self._owns_redis and self.redis is not None:
            self.redis.close()

    def __enter__(self) -> CatalogueClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get_json(self, url: str, params: Mapping[str, Any] | None = None) -> tuple[Any, str]:
        """The parsed JSON of a catalogue URL, and the URL that answered."""
        return self.fetcher.fetch(
            self._json, url, params, lambda resp, final: (read_json(resp, final), final)
        )

    # -- images --------------------------------------------------------------------------

    def get_image(self, image_id: str, *, similar: bool = True) -> ImageWithSimilar:
        """One image and (with ``similar``) its visually similar images, rank order.

        Asks for ``include=withSimilarFeatures``; when the catalogue rejects that with 400,
        asks for ``include=visuallySimilar`` instead (``legacy_similar`` reverses the order),
        and remembers which one worked.
        """
        order = images.similar_order(self.similar_field, self.settings.legacy_similar)
        result, field = images.get_image(
            self._get_json, self.stats, self.catalogue_url, image_id, similar, order
        )
        if field is not None:
            self.similar_field = field
        return result

    # -- thumbnails ----------------------------------------------------------------------

    def thumbnail_url(self, record: ImageRecord | str) -> str:
        """The small IIIF rendering of a record's thumbnail, on an allowed image host."""
        info_url = record.thumbnail_url if isinstance(record, ImageRecord) else record
        check_host(info_url, self.image_hosts, "thumbnail")
        try:
            return iiif_thumbnail_url(info_url, self.settings.thumbnail_size)
        except ValueError as exc:
            raise RecordError("thumbnail.url", str(exc)) from exc

    def fetch_thumbnail(self, url: str) -> bytes:
        """The bytes of a thumbnail, checked to be a decodable image within the limits."""
        return self.fetch_thumbnail_decoded(url)[0]

    def fetch_thumbnail_decoded(self, url: str) -> tuple[bytes, Image.Image]:
        """A thumbnail's bytes and the RGB image they decode to.

        Checking a thumbnail means decoding it, so the decoded image is handed on: the hashes
        are computed from it rather than from a second decode of the same bytes.
        """
        max_bytes = self.settings.max_thumbnail_bytes
        max_pixels = self.settings.max_thumbnail_pixels
        return self.fetcher.fetch(
            self._thumbnails,
            url,
            None,
            lambda resp, final: read_thumbnail(resp, final, max_bytes, max_pixels),
        )

    # -- discovery: list pages and snapshots ---------------------------------------------

    def iter_list(
        self,
        page_size: int = 100,
        *,
        on_error: Callable[[CatalogueError], None] | None = None,
        **filters: Any,
    ) -> Iterator[ImageRecord]:
        """Every image of ``GET /images`` (with ``filters``), page by page, sequentially.

        Filters use the API's names, e.g. ``**{"locations.license": "pdm"}``. Only the
        first 10 000 results of a query are reachable; past that the walk stops with a
        warning (``stats["list_window_truncated"]``): partition by filters, or use the
        snapshot. Records that fail validation are skipped and passed to ``on_error``.
        """
        return pages.iter_list(
            self._get_json, self.stats, self.catalogue_url, page_size, on_error, filters
        )

    def iter_snapshot(
        self,
        source: str | os.PathLike[str],
        *,
        on_error: Callable[[CatalogueError], None] | None = None,
    ) -> Iterator[ImageRecord]:
        """Every image of a bulk snapshot (JSON lines, gzipped or not), URL or local path.

        URLs must be on the catalogue's host (or a configured snapshot host). Bad lines are
        skipped and passed to ``on_error``; a truncated or corrupt file raises
        ``malformed_json`` after yielding what could be read.
        """
        return snapshot.iter_snapshot(self.fetcher, source, self.snapshot_hosts, on_error)
