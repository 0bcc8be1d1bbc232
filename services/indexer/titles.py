"""The title-word index: find images by the words of their titles without scanning the graph.

Why here: neither backend offers the same word index through Cypher (ArcadeDB accepts
Neo4j's ``CREATE TEXT INDEX`` but ignores it, and has no ``db.index.fulltext``), and a
``CONTAINS`` scan of every title grows with the collection. The indexer already rebuilds a
generation from the graph and publishes it atomically; the title index is one more part of
it, read the same way the hash index is: the published generation, plus the titles of images
fetched or hashed since it was built (read from the graph, scanned exactly), so an image
stored a moment ago is found at once.

Matching: a title matches when every query word begins one of its words ("sun flow" finds
"Sunflowers in a vase"), case and accents folded. Results come shortest title first (fewest
words: the query says most of it), then by id, a page at a time.

Files in a generation (rows ordered by (word count, id), which is the result order):
``titles.ids.npy`` (ids), ``titles.sizes.npy`` (word counts), ``titles.vocab.npy`` (every word,
sorted), ``titles.offsets.npy`` and ``titles.postings.npy`` (for word i, the rows
``postings[offsets[i]:offsets[i+1]]``, ascending). A prefix covers a contiguous run of the
sorted vocabulary, so its rows are one contiguous slice of the postings.

The titles' text is kept too (``TitleTexts``: ``titles.text_ids.npy``, every titled image's
id, sorted; ``titles.text_offsets.npy`` and ``titles.text.npy``, their UTF-8 bytes end to
end), so a reader that knows the graph has nothing newer than the generation
(``lookalike.hashmark``) prints its results' titles without asking the graph.
"""

from __future__ import annotations

import heapq
import logging
import re
import threading
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from services.indexer import generations as gens
from services.indexer.npmap import load_mapped

log = logging.getLogger(__name__)

# Longer words are cut (on both sides of a query, so they still match by prefix).
WORD_MAX = 32
# Titles written just before a generation read them may commit after: re-read this much.
FRESH_SLACK_MS = 120_000
_WORD = re.compile(r"[^\W_]+")
_FILES = ("ids", "sizes", "vocab", "offsets", "postings")
_TOP = "\U0010ffff"


def words(text: str | None) -> list[str]:
    """The words of ``text``, lowercased, accents removed, each at most WORD_MAX long."""
    if not text:
        return []
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return [w[:WORD_MAX] for w in _WORD.findall(folded)]


@dataclass(frozen=True)
class TitleTexts:
    """The titles' text, by id (see the module's docstring)."""

    ids: np.ndarray  # (n,) str, sorted
    offsets: np.ndarray  # (n + 1,) int64: title i is text[offsets[i]:offsets[i + 1]]
    text: np.ndarray  # uint8, UTF-8

    @classmethod
    def build(cls, rows: Iterable[tuple[str, str | None]]) -> TitleTexts:
        """From (id, title) pairs (the last title of an id counts; None: no title)."""
        titles = dict(rows)
        ids = sorted(i for i, t in titles.items() if t is not None)
        encoded = [str(titles[i]).encode("utf-8", "surrogatepass") for i in ids]
        lengths = np.array([len(b) for b in encoded], dtype=np.int64)
        return cls(
            np.array(ids, dtype=str),
            np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            np.frombuffer(b"".join(encoded), dtype=np.uint8),
        )

    def save(self, folder: Path) -> None:
        np.save(folder / "titles.text_ids.npy", self.ids)
        np.save(folder / "titles.text_offsets.npy", self.offsets)
        np.save(folder / "titles.text.npy", self.text)

    @classmethod
    def load(cls, folder: Path) -> TitleTexts | None:
        """The generation's titles, None when it has none kept (older generations)."""
        if not (folder / "titles.text_ids.npy").exists():
            return None
        return cls(
            load_mapped(folder / "titles.text_ids.npy"),
            load_mapped(folder / "titles.text_offsets.npy"),
            load_mapped(folder / "titles.text.npy"),
        )

    def get(self, ids: Iterable[str]) -> dict[str, str]:
        """The titles of those of ``ids`` that have one here."""
        out = {}
        for image_id in ids:
            i = int(np.searchsorted(self.ids, image_id))
            if i < len(self.ids) and self.ids[i] == image_id:
                lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
                out[image_id] = self.text[lo:hi].tobytes().decode("utf-8", "surrogatepass")
        return out


@dataclass(frozen=True)
class TitleTable:
    """The index arrays (see the module's docstring), and the titles' text when built from
    titles (not when loaded: ``TitleTexts.load`` reads it on its own)."""

    ids: np.ndarray
    sizes: np.ndarray
    vocab: np.ndarray
    offsets: np.ndarray
    postings: np.ndarray
    texts: TitleTexts | None = None

    @classmethod
    def build(cls, rows: Iterable[tuple[str, str | None]]) -> TitleTable:
        """From (id, title) pairs; images without a word in their title are left out of
        the word index (their text is kept)."""
        rows = list(rows)
        entries = sorted(
            (len(set(ws)), image_id, ws) for image_id, title in rows if (ws := words(title))
        )
        postings: dict[str, list[int]] = {}
        for row, (_, _, ws) in enumerate(entries):
            for w in dict.fromkeys(ws):
                postings.setdefault(w, []).append(row)
        vocab = sorted(postings)
        lengths = np.array([len(postings[w]) for w in vocab], dtype=np.int64)
        return cls(
            ids=np.array([e[1] for e in entries], dtype=str),
            sizes=np.array([e[0] for e in entries], dtype=np.int16),
            vocab=np.array(vocab, dtype=str),
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            postings=np.array([r for w in vocab for r in postings[w]], dtype=np.int32),
            texts=TitleTexts.build(rows),
        )

    def save(self, folder: Path) -> None:
        for name in _FILES:
            np.save(folder / f"titles.{name}.npy", getattr(self, name))
        if self.texts is not None:
            self.texts.save(folder)

    @classmethod
    def load(cls, folder: Path) -> TitleTable:
        return cls(**{name: load_mapped(folder / f"titles.{name}.npy") for name in _FILES})

    def _prefix_rows(self, prefix: str) -> np.ndarray:
        lo = int(np.searchsorted(self.vocab, prefix, side="left"))
        width = self.vocab.dtype.itemsize // 4
        # A key longer than the array's strings would be cut to their width by numpy.
        hi = int(
            np.searchsorted(
                self.vocab, prefix + _TOP if len(prefix) < width else prefix, side="right"
            )
        )
        return np.unique(self.postings[self.offsets[lo] : self.offsets[hi]])

    def match(self, query: Sequence[str]) -> np.ndarray:
        """Rows (ascending: result order) whose titles have a word beginning with each of
        ``query``'s words."""
        if not len(self.vocab) or not query:
            return np.zeros(0, dtype=np.int32)
        sets = sorted((self._prefix_rows(w) for w in dict.fromkeys(query)), key=len)
        rows = sets[0]
        for other in sets[1:]:
            if not len(rows):
                break
            rows = np.intersect1d(rows, other, assume_unique=True)
        return rows


def matches_words(title_words: Iterable[str], query: Sequence[str]) -> bool:
    have = list(title_words)
    return all(any(w.startswith(q) for w in have) for q in query)


class TitleSource(Protocol):
    """Where the reader learns of titles newer than its generation (the graph, in service)."""

    def titles_since(self, since_ms: int) -> list[tuple[str, str | None]]: ...


@dataclass(frozen=True)
class TitleMatches:
    ids: list[str]  # the requested page
    total: int


@dataclass
class _Fresh:
    since: int
    fetched: float
    titles: dict[str, tuple[int, list[str]]]  # id -> (word count, words)


class TitleReader:
    """Title queries over the published generation plus the titles written since."""

    def __init__(
        self,
        index_dir: Path,
        source: TitleSource | None = None,
        *,
        fresh_ttl: float = 1.0,
        check_interval: float = 1.0,
        slack_ms: int = FRESH_SLACK_MS,
    ) -> None:
        self.index_dir = Path(index_dir)
        self.source = source
        self.fresh_ttl = fresh_ttl
        self.check_interval = check_interval
        self.slack_ms = slack_ms
        self._gen: tuple[str, TitleTable | None, int] | None = None  # name, table, read_at
        self._checked = -1e9
        self._lock = threading.Lock()
        self._fresh: _Fresh | None = None

    def _generation(self) -> tuple[TitleTable | None, int]:
        """The current generation's table (None: none yet, or built without titles) and
        the time its titles were read (0 when there are none)."""
        with self._lock:
            if time.monotonic() - self._checked >= self.check_interval:
                self._checked = time.monotonic()
                try:
                    name = gens.current_name(self.index_dir)
                    if name is not None and (self._gen is None or self._gen[0] != name):
                        folder = self.index_dir / name
                        meta = gens.read_meta(folder).get("titles")
                        table = TitleTable.load(folder) if meta else None
                        self._gen = (name, table, int(meta["read_at"]) if meta else 0)
                except (OSError, ValueError, KeyError) as exc:
                    log.warning("cannot load the title index in %s: %s", self.index_dir, exc)
            if self._gen is None:
                return None, 0
            return self._gen[1], self._gen[2]

    def _recent(self, read_at: int) -> dict[str, tuple[int, list[str]]]:
        if self.source is None:
            return {}
        since = max(0, read_at - self.slack_ms) if read_at else 0
        with self._lock:
            f = self._fresh
            if f is None or f.since != since or time.monotonic() - f.fetched > self.fresh_ttl:
                titles = {}
                for image_id, title in self.source.titles_since(since):
                    ws = words(title)
                    titles[image_id] = (len(set(ws)), ws)
                f = self._fresh = _Fresh(since, time.monotonic(), titles)
            return f.titles

    def search(self, text: str, offset: int = 0, limit: int = 20) -> TitleMatches:
        """Images whose titles match ``text`` (see the module's docstring): the ids of one
        page, shortest title first, and how many match in all."""
        query = words(text)
        if not query:
            return TitleMatches([], 0)
        table, read_at = self._generation()
        fresh = self._recent(read_at)
        wanted = offset + limit
        # Recent titles replace what the generation has for the same image.
        recent = sorted(
            (size, image_id) for image_id, (size, ws) in fresh.items() if matches_words(ws, query)
        )
        older: list[tuple[int, str]] = []
        total = len(recent)
        if table is not None:
            rows = table.match(query)
            if fresh and len(rows):
                rows = rows[~np.isin(table.ids[rows], np.array(list(fresh), dtype=str))]
            total += len(rows)
            head = rows[:wanted]
            older = list(zip(table.sizes[head].tolist(), table.ids[head].tolist(), strict=True))
        merged = heapq.merge(older, recent)
        page = [image_id for _, image_id in list(merged)[offset:wanted]]
        return TitleMatches(page, total)


def titles_meta(table: TitleTable, read_at: int) -> dict[str, Any]:
    """What a generation's meta.json says of its title index."""
    return {"images": len(table.ids), "words": len(table.vocab), "read_at": int(read_at)}
