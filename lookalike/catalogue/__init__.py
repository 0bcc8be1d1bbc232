"""HTTP client for a catalogue's images API and its IIIF image server.

The crawler's only way out to the network, so politeness and safety live here, one concern
per file:

- ``client.py``: ``CatalogueClient``, which puts the parts below together;
- ``images.py``: ``GET /images/{id}`` with its similar images and the include fallback;
  ``pages.py``: ``GET /images`` page by page; ``snapshot.py``: bulk snapshots;
  ``thumbnails.py``: IIIF thumbnail URLs and the checks a thumbnail passes;
- ``fetch.py``: one request attempted under the retry policy (``lookalike.retry``: 429, 5xx,
  timeouts, dropped connections and damaged bodies, backoff with jitter, Retry-After);
- ``statuses.py``: what a non-200 answer means; ``failures.py``: how a failed attempt is
  described;
- ``offsite.py``: the allowed hosts, checked before every request and every redirect;
  ``redirects.py``: redirects followed hop by hop;
- ``limits.py``: byte limits on bodies (after decompression); ``json_body.py``: JSON read
  safely; ``deadline.py``: one deadline for each whole request (a server trickling its
  answer byte by byte is cut off too);
- ``throttle.py``: one request rate per host shared by every worker through Redis, and the
  shared pause a 429/503 with Retry-After puts on it; ``transport.py``: the pooled session,
  a User-Agent naming Lookalike, proxies;
- ``stats.py``: what the client did, counted.

Responses are parsed into validated records (``lookalike.records``), with errors that name
the URL and the bad field.
"""

from lookalike.catalogue.client import CatalogueClient
from lookalike.catalogue.offsite import host_allowed, host_of
from lookalike.catalogue.thumbnails import check_thumbnail, iiif_thumbnail_url

__all__ = [
    "CatalogueClient",
    "check_thumbnail",
    "host_allowed",
    "host_of",
    "iiif_thumbnail_url",
]
