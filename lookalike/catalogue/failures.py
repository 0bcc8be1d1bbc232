"""How a failed attempt is described: the retryable ``Transient`` wrapper and the excerpts
of bad bodies that error messages quote."""

from __future__ import annotations

import json

import requests

from lookalike import safe_json
from lookalike.errors import CatalogueError


class Transient(Exception):
    """A failure of one attempt that another attempt may not have (wraps the error).

    ``stat`` is the counter it adds to. ``body_digest`` is set when the failure is a bad body
    (malformed JSON, not an image): the same bad body every time is the server's own data,
    not damage on the way.
    """

    def __init__(self, error: CatalogueError, stat: str, body_digest: str | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.stat = stat
        self.body_digest = body_digest
        self.pause_for: float | None = None  # seconds every worker should hold off


def noted(error: CatalogueError, note: str) -> CatalogueError:
    """The same error with ``note`` appended to its message."""
    error.message = f"{error.message}; {note}"
    error.args = (error.message,)
    return error


def describe_json_error(body: bytes, exc: ValueError) -> str:
    """Where and why ``body`` is not JSON, with the text around the spot."""
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


def error_description(body: bytes) -> str:
    """The ``description`` (or ``label``) of a catalogue Error body, or a short excerpt."""
    try:
        doc = safe_json.loads(body[:65536])
    except ValueError:
        text = body[:200].decode("utf-8", "replace").strip()
        return text or "no body"
    if isinstance(doc, dict):
        for key in ("description", "label"):
            value = doc.get(key)
            if isinstance(value, str):
                return value
    return json.dumps(doc)[:200]


def peek(resp: requests.Response, n: int) -> bytes:
    """Up to ``n`` bytes of a body, for error messages; b"" if even that fails."""
    try:
        return resp.raw.read(n, decode_content=True) or b""
    except Exception:  # a broken body must not hide the error we are reporting
        return b""
