"""Fault injection for the replica: what to break, decided deterministically from a seed.

Two families of faults, because a crawler must treat them differently:

- transient (429 with Retry-After, 5xx, dropped connections, slow answers, truncated
  JSON): decided per (seed, request key, n-th request with that key), so a retry of the same
  URL draws again and eventually succeeds, while a rerun with the same seed and the same
  request sequence sees exactly the same faults;
- permanent (missing neighbour, malformed JSON, corrupt or non-image thumbnail): decided per
  (seed, image id) alone, so tests can predict precisely which images stay bad with
  ``FaultPlan.is_permanently_bad``.

``FaultConfig.parse("seed=7,429=0.1,retry_after=1,5xx=0.1,...")`` reads the same string the
CLI's ``--faults`` and the per-request ``?faults=`` parameter take.
"""

from __future__ import annotations

import hashlib
import threading
import time
from array import array
from collections import Counter
from dataclasses import dataclass, fields

import numpy as np

TRANSIENT_KINDS = ("429", "5xx", "drop", "slow", "truncated")
PERMANENT_KINDS = ("missing", "malformed", "corrupt_thumb", "nonimage_thumb")
# Keys accepted in the spec string, mapped to FaultConfig fields.
_KEYS = {
    "seed": "seed",
    "429": "rate_429",
    "retry_after": "retry_after",
    "5xx": "rate_5xx",
    "slow": "slow",
    "slow_s": "slow_s",
    "malformed": "malformed",
    "truncated": "truncated",
    "corrupt_thumb": "corrupt_thumb",
    "nonimage_thumb": "nonimage_thumb",
    "missing": "missing",
    "drop": "drop",
}


class FaultSpecError(ValueError):
    """A fault spec string names an unknown key or an out-of-range value."""


@dataclass(frozen=True)
class FaultConfig:
    """Rates (0..1) of each fault kind, plus its parameters. All zero: no faults."""

    seed: int = 0
    rate_429: float = 0.0
    retry_after: float = 1.0
    rate_5xx: float = 0.0
    slow: float = 0.0
    slow_s: float = 2.0
    malformed: float = 0.0
    truncated: float = 0.0
    corrupt_thumb: float = 0.0
    nonimage_thumb: float = 0.0
    missing: float = 0.0
    drop: float = 0.0

    @classmethod
    def parse(cls, spec: str | None) -> FaultConfig:
        """``"seed=7,429=0.1,5xx=0.1"`` (also ``429:0.1``); empty or None: no faults."""
        values: dict[str, float | int] = {}
        for part in (spec or "").split(","):
            part = part.strip()
            if not part:
                continue
            sep = "=" if "=" in part else ":"
            key, _, raw = part.partition(sep)
            key = key.strip()
            if key not in _KEYS:
                raise FaultSpecError(
                    f"unknown fault {key!r} in {spec!r}; known: {', '.join(_KEYS)}"
                )
            try:
                value: float | int = int(raw) if key == "seed" else float(raw)
            except ValueError as exc:
                raise FaultSpecError(f"fault {key!r} has a non-numeric value {raw!r}") from exc
            values[_KEYS[key]] = value
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("seed",):
                continue
            if f.name in ("retry_after", "slow_s"):
                if not 0 <= value <= 600:
                    raise FaultSpecError(f"{f.name}={value} must be between 0 and 600 seconds")
            elif not 0 <= value <= 1:
                raise FaultSpecError(f"fault rate {f.name}={value} must be between 0 and 1")
        total = self.rate_429 + self.rate_5xx + self.drop + self.slow + self.truncated
        if total > 1:
            raise FaultSpecError(f"transient fault rates add up to {total:.3f} > 1")

    def to_spec(self) -> str:
        reverse = {v: k for k, v in _KEYS.items()}
        default = FaultConfig()
        parts = [f"seed={self.seed}"]
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "seed" and value != getattr(default, f.name):
                parts.append(f"{reverse[f.name]}={value:g}")
        return ",".join(parts)

    @property
    def active(self) -> bool:
        default = FaultConfig(seed=self.seed)
        return any(
            getattr(self, f.name) != getattr(default, f.name)
            for f in fields(self)
            if f.name not in ("seed", "retry_after", "slow_s")
        )


def request_key(path: str, params: list[tuple[str, str]]) -> str:
    """The identity of a request for transient fault draws: the path plus its decoded query
    parameters in request order, ``faults`` left out; e.g.
    ``/catalogue/v2/images/abc?include=withSimilarFeatures``. Retries of one URL share it."""
    query = "&".join(f"{k}={v}" for k, v in params if k != "faults")
    return path + ("?" + query if query else "")


def _unit(*parts: object) -> float:
    """A uniform number in [0, 1) from a hash of ``parts``."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class FaultPlan:
    """Decides the faults of a run. Thread-safe; one per server (or per test reference)."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.config = config or FaultConfig()
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def next_attempt(self, key: str) -> int:
        """Count one more request for ``key``; returns its 0-based attempt number."""
        with self._lock:
            n = self._counts[key]
            self._counts[key] = n + 1
            return n

    @staticmethod
    def transient_for(config: FaultConfig, key: str, attempt: int) -> str | None:
        """The transient fault of the ``attempt``-th request for ``key``, or None."""
        u = _unit(config.seed, "transient", key, attempt)
        edge = 0.0
        for kind, rate in (
            ("429", config.rate_429),
            ("5xx", config.rate_5xx),
            ("drop", config.drop),
            ("slow", config.slow),
            ("truncated", config.truncated),
        ):
            edge += rate
            if u < edge:
                return kind
        return None

    @staticmethod
    def status_for(config: FaultConfig, key: str, attempt: int) -> int:
        """Which of 500/502/503 a ``5xx`` draw answers with."""
        return (500, 502, 503)[int(_unit(config.seed, "5xx-status", key, attempt) * 3)]

    def bad_ids(self, ids) -> dict[str, str]:
        """``{id: reason}`` for every permanently bad image among ``ids``."""
        return {i: r for i in ids if (r := self.is_permanently_bad(i)) is not None}

    def permanent_faults(self, image_id: str, config: FaultConfig | None = None) -> list[str]:
        """Every permanent fault of an image, in precedence order."""
        cfg = config or self.config
        rates = {
            "missing": cfg.missing,
            "malformed": cfg.malformed,
            "corrupt_thumb": cfg.corrupt_thumb,
            "nonimage_thumb": cfg.nonimage_thumb,
        }
        return [k for k, rate in rates.items() if rate and _unit(cfg.seed, k, image_id) < rate]

    def is_permanently_bad(self, image_id: str) -> str | None:
        """The reason an image is permanently bad (``missing``/``malformed`` for its JSON,
        ``corrupt_thumb``/``nonimage_thumb`` for its picture), or None."""
        found = self.permanent_faults(image_id)
        return found[0] if found else None

    def json_fault(self, image_id: str, config: FaultConfig | None = None) -> str | None:
        """``missing`` or ``malformed`` when ``/images/{id}`` permanently fails."""
        for kind in self.permanent_faults(image_id, config):
            if kind in ("missing", "malformed"):
                return kind
        return None

    def thumb_fault(self, image_id: str, config: FaultConfig | None = None) -> str | None:
        for kind in self.permanent_faults(image_id, config):
            if kind in ("corrupt_thumb", "nonimage_thumb"):
                return kind
        return None

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


class Stats:
    """Request and fault counts, and per-request timestamps (for rate-limit assertions)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.started = time.time()
            self.requests: Counter[str] = Counter()
            self.faults: Counter[str] = Counter()
            self.paths: Counter[str] = Counter()
            self.statuses: Counter[str] = Counter()
            self.times: dict[str, array] = {}

    def request(self, kind: str, path: str) -> None:
        now = time.time()
        with self._lock:
            self.requests[kind] += 1
            self.paths[path] += 1
            self.times.setdefault(kind, array("d")).append(now)

    def fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def status(self, kind: str, code: int) -> None:
        with self._lock:
            self.statuses[f"{kind}:{code}"] += 1

    def snapshot(self, *, timestamps: bool = False, paths: bool = False) -> dict:
        with self._lock:
            out: dict = {
                "started": self.started,
                "requests": dict(self.requests),
                "total_requests": sum(self.requests.values()),
                "faults": dict(self.faults),
                "statuses": dict(self.statuses),
                "max_per_second": {k: max_in_window(v, 1.0) for k, v in self.times.items()},
            }
            if timestamps:
                out["timestamps"] = {k: list(v) for k, v in self.times.items()}
            if paths:
                out["paths"] = dict(self.paths)
        return out


def max_in_window(times, window: float) -> int:
    """The largest number of timestamps inside any half-open window of ``window`` seconds."""
    ts = np.sort(
        np.frombuffer(times, dtype=np.float64)
        if isinstance(times, array)
        else np.asarray(times, dtype=np.float64)
    )
    if ts.size == 0:
        return 0
    ends = np.searchsorted(ts, ts + window, side="left")
    return int((ends - np.arange(ts.size)).max())
