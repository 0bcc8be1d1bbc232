"""The shapes of the ids the system hands around, declared once.

Every edge that takes an id (catalogue records, the API, the CLI, the replica, the crawl
control) checks it against these patterns, and the API's OpenAPI document publishes them.

- Image ids are the catalogue's: lowercase letters and digits (Wellcome: 8 characters). The
  length cap keeps a hostile id from reaching the graph as a megabyte-long parameter.
- Crawl and analysis-job ids are made here (``uuid4().hex`` cut short), so their exact shape
  is known: a malformed one is refused before Redis or the graph is asked.
"""

from __future__ import annotations

import re
import uuid

IMAGE_ID_MAX = 64
IMAGE_ID_PATTERN = rf"^[a-z0-9]{{1,{IMAGE_ID_MAX}}}$"
IMAGE_ID = re.compile(IMAGE_ID_PATTERN)
IMAGE_ID_WORDS = f"1 to {IMAGE_ID_MAX} lowercase letters and digits, e.g. 'hqnskj6m'"

CRAWL_ID_LENGTH = 12
CRAWL_ID_PATTERN = rf"^[0-9a-f]{{{CRAWL_ID_LENGTH}}}$"
CRAWL_ID = re.compile(CRAWL_ID_PATTERN)
CRAWL_ID_WORDS = f"{CRAWL_ID_LENGTH} lowercase hex digits, as returned when a crawl starts"

JOB_ID_LENGTH = 16
JOB_ID_PATTERN = rf"^[0-9a-f]{{{JOB_ID_LENGTH}}}$"
JOB_ID = re.compile(JOB_ID_PATTERN)
JOB_ID_WORDS = f"{JOB_ID_LENGTH} lowercase hex digits, as returned when a job starts"


def is_image_id(value: object) -> bool:
    return isinstance(value, str) and IMAGE_ID.match(value) is not None


def is_crawl_id(value: object) -> bool:
    return isinstance(value, str) and CRAWL_ID.match(value) is not None


def new_crawl_id() -> str:
    return uuid.uuid4().hex[:CRAWL_ID_LENGTH]


def new_job_id() -> str:
    return uuid.uuid4().hex[:JOB_ID_LENGTH]
