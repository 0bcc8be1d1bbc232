"""HTTP client for a catalogue's images API and its IIIF image server.

The crawler's only way out to the network, so politeness and safety live here:

- one request rate per host shared by every worker process (``lookalike.ratelimit``), and a
  shared pause when the server answers 429/503 with Retry-After;
- retries with exponential backoff and jitter on 429, 5xx, timeouts, dropped connections
  and garbled JSON bodies; never on 400/404;
- a User-Agent naming Lookalike; pooled connections; one deadline for each whole request
  (``lookalike.http_deadline``: a server trickling its answer byte by byte is cut off too);
- thumbnails fetched small (IIIF ``full/!n,n``), only from the configured image hosts (checked
  before any request, and on every redirect), with byte, pixel and content checks;
- responses parsed into validated records (``lookalike.records``), with errors that name
  the URL and the bad field.

Workers are separate processes: create the client in the process that uses it (the session
is re-created automatically if the process forks after creating it).
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import hashlib
import io
import json
import logging
import math
import os
import random
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import closing
from datetime import UTC
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from PIL import Image

from lookalike import safe_json
from lookalike.errors import CatalogueError, RateLimitTimeout, RecordError
from lookalike.hashing import ImageDecodeError, decode_image
from lookalike.http_deadline import Deadline, DeadlineAdapter
from lookalike.ids import IMAGE_ID_WORDS, is_image_id
from lookalike.ratelimit import LocalRateLimiter, RateLimiter, RedisRateLimiter
from lookalike.records import (
    SIMILAR_FIELDS,
    ImageRecord,
    ImageWithSimilar,
    parse_image,
    parse_image_with_similar,
    parse_result_page,
)
from lookalike.settings import WELLCOME_CATALOGUE, Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_KEY_PREFIX = "lookalike:ratelimit"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
PAUSE_STATUSES = frozenset({429, 503})  # a Retry-After on these holds back every worker
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
LIST_WINDOW = 10_000  # only the first 10 000 hits of any list query are reachable (SPEC §8)
MAX_JSON_BYTES = 20_000_000
# A well-framed but bad body (malformed JSON, not an image) is usually the server's own data,
# rarely damage on the way: it gets this many attempts, not the full retry budget.
BAD_BODY_ATTEMPTS = 3
MAX_SNAPSHOT_LINE_BYTES = 10_000_000
# Content types that are certainly not a thumbnail; anything else still has to decode.
_NOT_IMAGE_TYPES = ("text/", "application/json", "application/xml", "application/xhtml")
# The real snapshot is served from a sibling host of the API (SPEC §8).
WELLCOME_SNAPSHOT_HOSTS = ("data.wellcomecollection.org",)


# --------------------------------------------------------------------------- pure helpers


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None.

    A date in the past gives 0; an unreadable value gives None (then plain backoff applies).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def backoff_delay(
    attempt: int, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Delay before retry number ``attempt + 1``: exponential, capped, "equal jitter".

    Half the step is fixed (so retries really do slow down), half is random (so workers
    that failed together do not retry together). Step n is ``min(cap, base * 2**n)``.
    """
    step = min(cap, base * (2 ** max(0, attempt)))
    r = rng.random() if rng is not None else random.random()
    return step / 2 + r * step / 2


def _default_port(scheme: str) -> int | None:
    return {"http": 80, "https": 443}.get(scheme)


def host_of(url: str) -> str:
    """``host[:port]`` of a URL, lowercase, without the scheme's default port."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    if port is None or port == _default_port(parts.scheme):
        return host
    return f"{host}:{port}"


def host_allowed(url: str, allowed: Iterable[str]) -> bool:
    """Is ``url`` an http(s) URL on one of ``allowed`` (``host`` or ``host:port`` entries)?

    An entry without a port matches only the scheme's default port. URLs with user info
    (``https://good.org@evil.org/``) are never allowed: they exist to fool readers.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or _default_port(parts.scheme)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return False
    host = parts.hostname.lower()
    for entry in allowed:
        try:
            want = urlsplit("//" + entry.strip())
            want_port = want.port
        except ValueError:
            continue
        if (want.hostname or "").lower() != host:
            continue
        if (want_port if want_port is not None else _default_port(parts.scheme)) == port:
            return True
    return False


def iiif_thumbnail_url(info_url: str, size: int) -> str:
    """The IIIF Image API request for a thumbnail that fits in ``size`` x ``size``.

    ``…/image/{asset}/info.json`` → ``…/image/{asset}/full/!{size},{size}/0/default.jpg``
    (the pipeline's own recipe, SPEC §7). A service base without ``/info.json`` works too.
    """
    parts = urlsplit(info_url)
    path = parts.path
    if path.endswith("/info.json"):
        path = path[: -len("/info.json")]
    path = path.rstrip("/")
    if not path:
        raise ValueError(f"{info_url!r} is not a IIIF image service URL")
    return f"{parts.scheme}://{parts.netloc}{path}/full/!{size},{size}/0/default.jpg"


def _describe_json_error(body: bytes, exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        pos = exc.pos
        n = len(exc.doc)
        tail = exc.doc[max(0, pos - 40) : pos + 40]
        what = f"{exc.msg} at line {exc.lineno} column {exc.colno} (char {pos} of {n})"
        stripped = exc.doc.strip()
        if pos >= len(stripped) - 1 or (stripped[:1] in "{[" and stripped[-1:] not in "}]"):
            what += "; the body ends in the middle of a JSON value, so it looks truncated"
        return f"{what}; text around it: {tail!r}"
    return f"{exc}; body starts {body[:80]!r}"


def _error_description(body: bytes) -> str:
    """The ``description`` (or ``label``) of a catalogue Error body, or a short excerpt."""
    try:
        doc = safe_json.loads(body[:65536])
    except ValueError:
        text = body[:200].decode("utf-8", "replace").strip()
        return text or "no body"
    if isinstance(doc, dict):
        for key in ("description", "label"):
            if isinstance(doc.get(key), str):
                return doc[key]
    return json.dumps(doc)[:200]


def _peek(resp: requests.Response, n: int) -> bytes:
    """Up to ``n`` bytes of a body, for error messages; b"" if even that fails."""
    try:
        return resp.raw.read(n, decode_content=True) or b""
    except Exception:  # a broken body must not hide the error we are reporting
        return b""


class _Transient(Exception):
    """A failure of one attempt that another attempt may not have (wraps the error).

    ``body_digest`` is set when the failure is a bad body (malformed JSON, not an image):
    the same bad body every time is the server's own data, not damage on the way.
    """

    def __init__(self, error: CatalogueError, stat: str, body_digest: str | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.stat = stat
        self.body_digest = body_digest
        self.pause_for: float | None = None  # seconds every worker should hold off


def _noted(error: CatalogueError, note: str) -> CatalogueError:
    """The same error with ``note`` appended to its message."""
    error.message = f"{error.message}; {note}"
    error.args = (error.message,)
    return error


# --------------------------------------------------------------------------- the client


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
                WELLCOME_SNAPSHOT_HOSTS
                if self.catalogue_url == WELLCOME_CATALOGUE.rstrip("/")
                else ()
            )
        self.snapshot_hosts = self.catalogue_hosts + tuple(snapshot_hosts)
        self.redis = redis_client
        self._owns_redis = False
        self.key_prefix = key_prefix
        self.timeout = (min(10.0, settings.http_timeout), settings.http_timeout)
        self.max_wait = settings.backoff_max  # longest in-line wait before giving the task back
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._limiters: dict[str, RateLimiter] = {}
        self._session: requests.Session | None = None
        self._proxies_of: dict[tuple[str, str], dict[str, str]] = {}
        self._pid = os.getpid()
        # Which similar-images include this catalogue accepts, once we know.
        self.similar_field: str | None = None
        self.stats: dict[str, float] = {
            "requests": 0,
            "retries": 0,
            "backoff_s": 0.0,
            "rate_wait_s": 0.0,
            "throttled": 0,
            "server_errors": 0,
            "timeouts": 0,
            "connection_errors": 0,
            "malformed_json": 0,
            "bad_images": 0,
            "pauses": 0,
            "redirects": 0,
            "similar_fallbacks": 0,
            "invalid_records": 0,
            "list_window_truncated": 0,
        }

    @classmethod
    def connect(cls, settings: Settings, **kwargs: Any) -> CatalogueClient:
        """A client sharing its rate limit through the Redis that ``settings`` names
        (``REDIS_URL``, or the embedded stack's); ``close()`` closes that connection too."""
        import redis

        client = cls(settings, redis.Redis.from_url(settings.redis()), **kwargs)
        client._owns_redis = True
        return client

    # -- plumbing ------------------------------------------------------------------------

    @property
    def session(self) -> requests.Session:
        """A pooled session for this process (a forked child gets its own)."""
        if self._session is None or self._pid != os.getpid():
            session = requests.Session()
            adapter = DeadlineAdapter(pool_connections=4, pool_maxsize=8, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["User-Agent"] = self.settings.user_agent
            # requests re-reads proxies, the CA bundle and ~/.netrc from the environment on
            # every request (a tenth of a millisecond each, two requests per image). Read
            # them once per process instead: proxies per host in ``_proxies``, the bundle
            # here; the catalogue is public, so no netrc credentials.
            session.trust_env = False
            session.verify = (
                os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            )
            self._session = session
            self._pid = os.getpid()
        return self._session

    def _proxies(self, url: str) -> dict[str, str]:
        """The proxies the environment (``HTTPS_PROXY``, ``NO_PROXY``...) names for ``url``'s
        scheme and host, as requests would find them; read once per host."""
        origin = urlsplit(url)[:2]
        proxies = self._proxies_of.get(origin)
        if proxies is None:
            proxies = self._proxies_of[origin] = requests.utils.get_environ_proxies(url)
        return proxies

    def limiter(self, url: str) -> RateLimiter:
        """The rate limiter of ``url``'s host (shared via Redis when there is one)."""
        host = host_of(url)
        limiter = self._limiters.get(host)
        if limiter is None:
            rate, burst = self.settings.rate_limit, self.settings.rate_burst
            if self.redis is not None:
                limiter = RedisRateLimiter(self.redis, f"{self.key_prefix}:{host}", rate, burst)
            else:
                limiter = LocalRateLimiter(rate, burst)
            self._limiters[host] = limiter
        return limiter

    def close(self) -> None:
        if self._session is not None and self._pid == os.getpid():
            self._session.close()
        self._session = None
        if self._owns_redis and self.redis is not None:
            self.redis.close()

    def __enter__(self) -> CatalogueClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _count(self, key: str, amount: float = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + amount

    def _check_host(self, url: str, allowed: tuple[str, ...], what: str) -> None:
        if not host_allowed(url, allowed):
            raise CatalogueError(
                "forbidden_host",
                f"refusing to fetch {what} {url!r}: its host {host_of(url) or '(none)'!r} is not "
                f"one of the allowed hosts {list(allowed)}. If this host really belongs to the "
                "catalogue, add it to LOOKALIKE_IMAGE_HOSTS (thumbnails) or use the "
                "catalogue's own host.",
                url=url,
            )

    def _acquire(self, url: str) -> None:
        limiter = self.limiter(url)
        started = time.monotonic()
        try:
            limiter.acquire(timeout=self.max_wait)
        except RateLimitTimeout as exc:
            wait = max(exc.wait, limiter.paused_for())
            raise CatalogueError(
                "rate_limited",
                f"not sending GET {url}: the shared rate limit for {host_of(url)} (or a "
                f"Retry-After pause) holds requests back for another {wait:.1f}s, longer than "
                f"the {self.max_wait:.0f}s a task may wait; try again after that",
                url=url,
                retry_after=wait,
            ) from exc
        finally:
            self._count("rate_wait_s", time.monotonic() - started)

    def _send(
        self, url: str, params: Mapping[str, Any] | None, allowed: tuple[str, ...], what: str,
        accept: str,
    ) -> tuple[requests.Response, str]:
        """One attempt: GET, following redirects only within ``allowed``. Body unread."""
        for _hop in range(MAX_REDIRECTS + 1):
            self._check_host(url, allowed, what)
            self._acquire(url)
            self._count("requests")
            resp = self.session.get(
                url,
                params=params,
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
                headers={"Accept": accept},
                proxies=self._proxies(url),
            )
            if resp.status_code not in REDIRECT_STATUSES or "Location" not in resp.headers:
                return resp, resp.url
            target = urljoin(resp.url, resp.headers["Location"])
            resp.close()
            self._count("redirects")
            if not host_allowed(target, allowed):
                raise CatalogueError(
                    "forbidden_host",
                    f"{resp.url} redirected to {target!r}, whose host "
                    f"{host_of(target) or '(none)'!r} is not one of the allowed hosts "
                    f"{list(allowed)}; not following it",
                    url=resp.url,
                )
            url, params = target, None
        raise CatalogueError(
            "http_error", f"more than {MAX_REDIRECTS} redirects starting from {url}", url=url
        )

    def _read_body(
        self, resp: requests.Response, url: str, limit: int, too_large: str, limit_name: str
    ) -> bytes:
        """Read at most ``limit`` bytes (after decompression); raise ``too_large`` beyond it,
        naming the limit (``limit_name``). The request's deadline bounds the time."""
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise CatalogueError(
                too_large,
                f"{url} is {int(declared)} bytes (Content-Length), over the limit of {limit} "
                f"({limit_name}); not downloading it",
                url=url,
            )
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in resp.iter_content(chunk_size=16384):  # small: bounds gzip expansion
                size += len(chunk)
                if size > limit:
                    encoding = resp.headers.get("Content-Encoding", "")
                    packed = (
                        f", decompressed from its {encoding} transfer encoding: a compression "
                        "bomb, or a body far larger than its kind ever is"
                        if encoding and encoding != "identity" else ""
                    )
                    raise CatalogueError(
                        too_large,
                        f"{url} sent more than {limit} bytes{packed}; stopped reading (limit "
                        f"{limit_name})",
                        url=url,
                    )
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise _Transient(
                CatalogueError(
                    "unavailable",
                    f"the connection broke while reading the body of {url} after {size} bytes "
                    f"({exc.__class__.__name__}: {exc})",
                    url=url,
                ),
                "connection_errors",
            ) from exc
        return b"".join(chunks)

    def _status_error(self, resp: requests.Response, url: str) -> CatalogueError:
        status = resp.status_code
        try:
            body = self._read_body(resp, url, 65536, "response_too_large", "64 KB for an error")
        except (CatalogueError, _Transient):
            body = b""
        detail = _error_description(body)
        if status == 404:
            return CatalogueError(
                "not_found",
                f"GET {url} answered 404 Not Found ({detail}); it does not exist (any more) "
                "in the catalogue, so there is no point asking again",
                url=url,
                status=status,
            )
        if status == 400:
            return CatalogueError(
                "bad_request",
                f"GET {url} answered 400 Bad Request: {detail}",
                url=url,
                status=status,
            )
        return CatalogueError(
            "http_error",
            f"GET {url} answered {status} {resp.reason or ''}: {detail}".rstrip(),
            url=url,
            status=status,
        )

    def _fetch(
        self,
        url: str,
        params: Mapping[str, Any] | None,
        *,
        allowed: tuple[str, ...],
        what: str,
        accept: str,
        read: Callable[[requests.Response, str], T],
        keep_open: bool = False,
    ) -> T:
        """GET with the rate limit, retries and backoff; ``read`` turns a 200 into a value.

        ``read`` may raise ``_Transient`` to have the attempt retried. With ``keep_open`` the
        response stays open after ``read`` (the caller streams it and closes it).
        """
        retries = max(0, self.settings.max_retries)
        bad_bodies: list[str] = []  # digests of the malformed / non-image bodies so far
        for attempt in range(retries + 1):
            # The whole request, body included, has http_timeout seconds; a streamed one
            # (keep_open: a snapshot of every image) only its socket timeouts.
            limit = None if keep_open else Deadline(self.settings.http_timeout)
            try:
                with limit or contextlib.nullcontext():
                    return self._attempt(url, params, allowed, what, accept, read, keep_open,
                                         attempt)
            except _Transient as caught:
                failure = caught
                if limit is not None and limit.expired:
                    failure = self._over_deadline(url, caught)
                self._count(failure.stat)
                error = failure.error
                if failure.body_digest is not None:
                    bad_bodies.append(failure.body_digest)
                    if len(bad_bodies) >= BAD_BODY_ATTEMPTS:
                        same = len(set(bad_bodies)) == 1
                        error.retryable = not same
                        note = f"a bad body came back {len(bad_bodies)} times"
                        if same:
                            note += ", the same each time: the server itself serves it so"
                        raise _noted(error, note) from None
                if failure.pause_for is not None:
                    # Every worker sharing this host's limiter now waits it out together.
                    self.limiter(url).pause(failure.pause_for)
                    self._count("pauses")
                    log.info("pausing %s %.1fs after: %s", host_of(url), failure.pause_for, error)
                    if failure.pause_for > self.max_wait:
                        raise _noted(
                            error,
                            f"it asked for a {failure.pause_for:.0f}s pause, longer than a task "
                            f"may wait ({self.max_wait:.0f}s): all workers hold off, try again "
                            "after it",
                        ) from None
                if attempt >= retries:
                    if retries:
                        error = _noted(error, f"gave up after {retries + 1} attempts")
                    raise error from None
            delay = backoff_delay(
                attempt, self.settings.backoff_base, self.settings.backoff_max, self._rng
            )
            self._count("retries")
            self._count("backoff_s", delay)
            log.debug("retry %d of %s in %.2fs: %s", attempt + 1, url, delay, error.message)
            self._sleep(delay)  # then _acquire also waits out any shared pause
        raise AssertionError("unreachable")

    def _attempt(
        self,
        url: str,
        params: Mapping[str, Any] | None,
        allowed: tuple[str, ...],
        what: str,
        accept: str,
        read: Callable[[requests.Response, str], T],
        keep_open: bool,
        attempt: int,
    ) -> T:
        """One request: the value, a ``_Transient`` failure, or a final ``CatalogueError``."""
        try:
            resp, final_url = self._send(url, params, allowed, what, accept)
        except requests.Timeout as exc:
            raise _Transient(
                CatalogueError(
                    "unavailable",
                    f"GET {url} timed out after {self.settings.http_timeout}s ({exc})",
                    url=url,
                ),
                "timeouts",
            ) from exc
        except requests.RequestException as exc:
            raise _Transient(
                CatalogueError(
                    "unavailable",
                    f"GET {url} failed to connect or lost the connection "
                    f"({exc.__class__.__name__}: {exc})",
                    url=url,
                ),
                "connection_errors",
            ) from exc
        close = True
        try:
            if resp.status_code == 200:
                value = read(resp, final_url)
                close = not keep_open  # the caller streams the body and closes it
                return value
            if resp.status_code in RETRY_STATUSES:
                raise self._retry_status(resp, final_url, attempt)
            raise self._status_error(resp, final_url)
        finally:
            if close:
                resp.close()

    def _over_deadline(self, url: str, cause: _Transient) -> _Transient:
        """The failure of a request its deadline cut off (``cause``: how the cut showed)."""
        failure = _Transient(
            CatalogueError(
                "unavailable",
                f"GET {url} timed out: it took longer than {self.settings.http_timeout:g}s, "
                "the limit for a whole request (LOOKALIKE_HTTP_TIMEOUT); the server is too "
                "slow or sends its answer a trickle at a time",
                url=url,
            ),
            "timeouts",
        )
        failure.__cause__ = cause
        return failure

    def _retry_status(self, resp: requests.Response, url: str, attempt: int) -> _Transient:
        """The failure for a 429/5xx, with the shared pause it calls for (if any)."""
        status = resp.status_code
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        detail = _error_description(_peek(resp, 4096))
        if status == 429:
            failure = _Transient(
                CatalogueError(
                    "rate_limited",
                    f"GET {url} was refused with 429 Too Many Requests ({detail}); the "
                    "catalogue wants fewer requests: lower LOOKALIKE_RATE_LIMIT",
                    url=url,
                    status=status,
                    retry_after=retry_after,
                ),
                "throttled",
            )
        else:
            failure = _Transient(
                CatalogueError(
                    "unavailable",
                    f"GET {url} answered {status} ({detail}); the server is having trouble, "
                    "try again later",
                    url=url,
                    status=status,
                    retry_after=retry_after,
                ),
                "server_errors",
            )
        if retry_after is not None and status in PAUSE_STATUSES:
            failure.pause_for = retry_after
        elif status == 429:  # too fast, and no hint how long to wait: everyone backs off a step
            failure.pause_for = backoff_delay(
                attempt, self.settings.backoff_base, self.settings.backoff_max, self._rng
            )
        return failure

    def _read_json(self, resp: requests.Response, url: str) -> Any:
        body = self._read_body(
            resp, url, MAX_JSON_BYTES, "response_too_large",
            f"{MAX_JSON_BYTES // 1_000_000} MB for a catalogue JSON answer",
        )
        try:
            return safe_json.loads(body)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too deep
            raise _Transient(
                CatalogueError(
                    "malformed_json",
                    f"GET {url} returned malformed JSON ({len(body)} bytes): "
                    f"{_describe_json_error(body, exc)}",
                    url=url,
                    status=resp.status_code,
                ),
                "malformed_json",
                hashlib.sha256(body).hexdigest(),
            ) from exc

    def _get_json(self, url: str, params: Mapping[str, Any] | None = None) -> tuple[Any, str]:
        """The parsed JSON of a catalogue URL, and the URL that answered."""
        return self._fetch(
            url,
            params,
            allowed=self.catalogue_hosts,
            what="catalogue URL",
            accept="application/json",
            read=lambda resp, final: (self._read_json(resp, final), final),
        )

    # -- images --------------------------------------------------------------------------

    def _similar_order(self) -> tuple[str, ...]:
        if self.similar_field is not None:
            first = self.similar_field
        else:
            first = "visuallySimilar" if self.settings.legacy_similar else "withSimilarFeatures"
        return (first, *[f for f in SIMILAR_FIELDS if f != first])

    def get_image(self, image_id: str, *, similar: bool = True) -> ImageWithSimilar:
        """One image and (with ``similar``) its visually similar images, rank order.

        Asks for ``include=withSimilarFeatures``; when the catalogue rejects that with 400,
        asks for ``include=visuallySimilar`` instead (``legacy_similar`` reverses the order),
        and remembers which one worked.
        """
        if not is_image_id(image_id):
            raise CatalogueError(
                "not_found",
                f"{image_id!r} is not a catalogue image id ({IMAGE_ID_WORDS}); "
                "the catalogue answers 404 for it, so no request was sent",
            )
        url = f"{self.catalogue_url}/images/{image_id}"
        if not similar:
            doc, final = self._get_json(url)
            return self._checked(
                image_id, final, lambda: ImageWithSimilar(parse_image(doc), (), "")
            )

        rejected: list[CatalogueError] = []
        for field in self._similar_order():
            try:
                doc, final = self._get_json(url, {"include": field})
            except CatalogueError as exc:
                if exc.reason != "bad_request":
                    raise
                rejected.append(exc)
                self._count("similar_fallbacks")
                log.info("catalogue rejected include=%s: %s", field, exc.message)
                continue
            result = self._checked(
                image_id, final, lambda doc=doc, field=field: parse_image_with_similar(doc, field)
            )
            self.similar_field = field
            return result
        raise CatalogueError(
            "bad_request",
            f"the catalogue rejected every similar-images include for {url} "
            f"({', '.join(SIMILAR_FIELDS)}): "
            + "; ".join(e.message for e in rejected)
            + ". Check LOOKALIKE_CATALOGUE_URL points at a catalogue with similar images.",
            url=url,
            status=400,
        )

    def _checked(
        self, image_id: str, url: str, parse: Callable[[], ImageWithSimilar]
    ) -> ImageWithSimilar:
        """Parse, naming the URL in any error, and make sure it is the image we asked for."""
        try:
            result = parse()
        except RecordError as exc:
            self._count("invalid_records")
            raise RecordError(exc.path, exc.problem, url=url) from exc
        if result.image.id != image_id:
            self._count("invalid_records")
            raise RecordError(
                "id", f"asked for {image_id!r} but got {result.image.id!r}", url=url
            )
        return result

    # -- thumbnails ----------------------------------------------------------------------

    def thumbnail_url(self, record: ImageRecord | str) -> str:
        """The small IIIF rendering of a record's thumbnail, on an allowed image host."""
        info_url = record.thumbnail_url if isinstance(record, ImageRecord) else record
        self._check_host(info_url, self.image_hosts, "thumbnail")
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
        return self._fetch(
            url,
            None,
            allowed=self.image_hosts,
            what="thumbnail",
            accept="image/jpeg,image/*;q=0.8",
            read=self._read_thumbnail,
        )

    def _read_thumbnail(
        self, resp: requests.Response, url: str
    ) -> tuple[bytes, Image.Image]:
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        data = self._read_body(
            resp, url, self.settings.max_thumbnail_bytes, "thumbnail_too_large",
            "LOOKALIKE_MAX_THUMBNAIL_BYTES",
        )
        try:
            if ctype.startswith(_NOT_IMAGE_TYPES):
                raise CatalogueError(
                    "not_an_image",
                    f"{url} sent {ctype!r} instead of an image (body starts {data[:120]!r}); "
                    "the image server answered with an error page or this is not an image URL",
                    url=url,
                )
            image = check_thumbnail(data, url, self.settings.max_thumbnail_pixels, ctype)
        except CatalogueError as exc:
            if exc.reason != "not_an_image":
                raise
            # Possibly a body damaged on the way: one more try, unless it comes back the same.
            raise _Transient(exc, "bad_images", hashlib.sha256(data).hexdigest()) from exc
        return data, image

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
        if not 1 <= int(page_size) <= 100:
            raise ValueError(f"page_size must be between 1 and 100, not {page_size}")
        reserved = sorted({"page", "pageSize"} & set(filters))
        if reserved:
            raise ValueError(f"{', '.join(reserved)} are set by iter_list, not by filters")
        url = f"{self.catalogue_url}/images"
        last_page = LIST_WINDOW // page_size
        page = 1
        while True:
            doc, final = self._get_json(url, {**filters, "pageSize": page_size, "page": page})
            try:
                parsed = parse_result_page(doc)
            except RecordError as exc:
                self._count("invalid_records")
                raise RecordError(exc.path, exc.problem, url=final) from exc
            for err in parsed.errors:
                self._bad_item(RecordError(err.path, err.problem, url=final), on_error)
            yield from parsed.records
            if parsed.next_page is None:
                return
            if parsed.next_page != page + 1:
                raise RecordError(
                    "nextPage", f"expected page {page + 1}, got page {parsed.next_page}", url=final
                )
            if parsed.next_page > last_page:
                self._count("list_window_truncated")
                log.warning(
                    "%s has %d results but only the first %d can be listed; stopped at page "
                    "%d. Partition the query by filters or read the snapshot.",
                    final, parsed.total_results, LIST_WINDOW, page,
                )
                return
            page += 1

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
        text = os.fspath(source)
        if text.startswith(("http://", "https://")) or "://" in text:
            resp = self._fetch(
                text,
                None,
                allowed=self.snapshot_hosts,
                what="snapshot",
                accept="application/gzip,application/x-ndjson,*/*;q=0.5",
                read=lambda resp, final: resp,
                keep_open=True,
            )
            with closing(resp):
                resp.raw.decode_content = True  # undo transport encoding, keep the .gz itself
                resp.raw.auto_close = False  # reading past the end must see EOF, not "closed"
                yield from self._snapshot_records(resp.raw, resp.url, on_error)
        else:
            path = Path(text).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"snapshot file {path} does not exist or is not a file")
            with path.open("rb") as fh:
                yield from self._snapshot_records(fh, str(path), on_error)

    def _snapshot_records(
        self,
        raw: IO[bytes] | Any,
        name: str,
        on_error: Callable[[CatalogueError], None] | None,
    ) -> Iterator[ImageRecord]:
        buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)
        stream: IO[bytes] = buffered
        if buffered.peek(2)[:2] == b"\x1f\x8b":
            stream = gzip.GzipFile(fileobj=buffered, mode="rb")
        lineno = 0
        count = 0
        try:
            while True:
                line = stream.readline(MAX_SNAPSHOT_LINE_BYTES + 1)
                if not line:
                    break
                lineno += 1
                if len(line) > MAX_SNAPSHOT_LINE_BYTES and not line.endswith(b"\n"):
                    while line and not line.endswith(b"\n"):  # skip the rest of it
                        line = stream.readline(MAX_SNAPSHOT_LINE_BYTES)
                    self._bad_item(
                        CatalogueError(
                            "response_too_large",
                            f"{name} line {lineno} is longer than {MAX_SNAPSHOT_LINE_BYTES} "
                            "bytes; skipped it",
                            url=name,
                        ),
                        on_error,
                    )
                    continue
                if not line.strip():
                    continue
                try:
                    doc = safe_json.loads(line)
                except ValueError as exc:
                    self._bad_item(
                        CatalogueError(
                            "malformed_json",
                            f"{name} line {lineno} is not valid JSON: "
                            f"{_describe_json_error(line, exc)}",
                            url=name,
                            retryable=False,
                        ),
                        on_error,
                    )
                    continue
                try:
                    record = parse_image(doc)
                except RecordError as exc:
                    self._bad_item(
                        RecordError(exc.path, exc.problem, url=name, where=f"{name} line {lineno}"),
                        on_error,
                    )
                    continue
                count += 1
                yield record
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise CatalogueError(
                "malformed_json",
                f"snapshot {name} is truncated or corrupt after line {lineno} ({count} records "
                f"read): {exc}. Download it again.",
                url=name,
            ) from exc
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise CatalogueError(
                "unavailable",
                f"reading snapshot {name} failed after line {lineno} ({count} records read): "
                f"{exc.__class__.__name__}: {exc}",
                url=name,
            ) from exc

    def _bad_item(
        self, error: CatalogueError, on_error: Callable[[CatalogueError], None] | None
    ) -> None:
        self._count("invalid_records")
        log.warning("skipped a bad catalogue record: %s", error.message)
        if on_error is not None:
            on_error(error)


def check_thumbnail(
    data: bytes, url: str, max_pixels: int, content_type: str = ""
) -> Image.Image:
    """The RGB image of a thumbnail's bytes; refuses bytes that are not a decodable image of
    at most ``max_pixels`` pixels."""
    hint = f" (Content-Type {content_type!r})" if content_type else ""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
    except Image.DecompressionBombError as exc:
        raise CatalogueError(
            "thumbnail_too_large", f"{url} is a decompression bomb: {exc}", url=url
        ) from exc
    except Exception as exc:  # PIL raises many types for garbage input
        raise CatalogueError(
            "not_an_image",
            f"{url} is not an image{hint}: {len(data)} bytes starting {data[:16]!r} "
            f"({exc.__class__.__name__}: {exc})",
            url=url,
        ) from exc
    if width * height > max_pixels:
        raise CatalogueError(
            "thumbnail_too_large",
            f"{url} is {width}x{height} = {width * height} pixels, over the limit of "
            f"{max_pixels} (max_thumbnail_pixels); ask for a smaller IIIF size",
            url=url,
        )
    try:
        return decode_image(data, max_pixels=max_pixels)
    except ImageDecodeError as exc:
        raise CatalogueError(
            "not_an_image",
            f"{url} has an image header ({width}x{height}) but does not decode{hint}: {exc}",
            url=url,
        ) from exc

