"""Fixtures for the explorer's tests: a real Chromium driven by Playwright, and pages that
record every console message and every request they make.

Playwright cannot download its own browsers here, so the tests drive the system's Chromium,
which ``scripts/setup.sh`` installs (Debian's ``chromium-headless-shell``; ``chromium`` works
too; ``LOOKALIKE_CHROMIUM`` names another). Screenshots of the main views are written to
``LOOKALIKE_SCREENSHOT_DIR`` (default ``build/screenshots`` in the repository).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO

# Nothing but the page under test: no updates, no safe-browsing, no metrics, no prefetching.
QUIET = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-sync",
    "--disable-client-side-phishing-detection",
    "--metrics-recording-only",
    "--no-first-run",
    "--no-pings",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
]
VIEWPORT = {"width": 1440, "height": 900}  # a laptop screen


def chromium_path() -> str:
    for candidate in (os.environ.get("LOOKALIKE_CHROMIUM"), "chromium-headless-shell", "chromium"):
        if candidate and (found := shutil.which(candidate)):
            return found
    raise RuntimeError(
        "no Chromium found: run `bash scripts/setup.sh` (installs Debian's "
        "chromium-headless-shell) or set LOOKALIKE_CHROMIUM to a Chromium binary"
    )


def screenshot_dir() -> Path:
    folder = Path(os.environ.get("LOOKALIKE_SCREENSHOT_DIR") or REPO / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    args = QUIET + (["--headless=new"] if Path(path).name == "chromium" else [])
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=path, args=args)
        yield chromium
        chromium.close()


@dataclass
class Recorder:
    """What a page did: console messages, uncaught errors, and every request's URL."""

    origin: str
    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        out = [
            f"console {kind}: {text}" for kind, text in self.console if kind in ("error", "warning")
        ]
        out += [f"uncaught: {e}" for e in self.errors]
        out += [
            f"request outside {self.origin}: {u}"
            for u in self.requests
            if not (
                u.startswith(self.origin + "/")
                or u.startswith("blob:" + self.origin)
                or u.startswith("data:")
            )
        ]
        return out


def open_page(browser: Any, origin: str) -> tuple[Any, Recorder]:
    """A fresh page (own context: no shared storage) that records what it does."""
    context = browser.new_context(viewport=VIEWPORT, service_workers="block")
    page = context.new_page()
    rec = Recorder(origin)
    page.on("console", lambda m: rec.console.append((m.type, m.text)))
    page.on("pageerror", lambda e: rec.errors.append(str(e)))
    page.on("request", lambda r: rec.requests.append(r.url))
    page.set_default_timeout(30_000)
    return page, rec


def drop_file(page: Any, target: str, name: str, data: bytes, mime: str) -> None:
    """Drop a file on ``target`` as a person dragging it from their desktop would."""
    transfer = page.evaluate_handle(
        """([name, bytes, mime]) => {
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(bytes)], name, { type: mime }));
            return dt;
        }""",
        [name, list(data), mime],
    )
    for event in ("dragenter", "dragover", "drop"):
        page.dispatch_event(target, event, {"dataTransfer": transfer})
