"""The ``lookalike`` commands: name -> (module, short help, first paragraph of the help,
hidden).

Written by ``python -m lookalike_cli.lazy`` from the commands themselves: do not edit.
"""

from __future__ import annotations

TABLE: dict[str, tuple[str, str | None, str | None, bool]] = {
    "audit": (
        "lookalike_cli.index",
        None,
        "Audit the catalogue's similar lists with the embeddings (of the last index build).",
        False,
    ),
    "beat": (
        "lookalike_cli.crawl",
        None,
        "Run the continuous-crawl schedule: re-fetch stale images, discover new ones.",
        False,
    ),
    "cancel": (
        "lookalike_cli.crawl",
        None,
        "Cancel a running crawl (images already stored stay).",
        False,
    ),
    "crawl": (
        "lookalike_cli.crawl",
        None,
        "Crawl the catalogue breadth-first from SEEDs (needs running workers: `lookalike worker`).",
        False,
    ),
    "crawls": (
        "lookalike_cli.crawl",
        None,
        "List crawls, or show one.",
        False,
    ),
    "demo": (
        "lookalike_cli.demo",
        None,
        "Crawl the demo collection, index, analyse, report and serve: the whole pipeline.",
        False,
    ),
    "down": (
        "lookalike_cli.stack",
        None,
        "Stop exactly the servers `lookalike up` started. Their data stays.",
        False,
    ),
    "duplicates": (
        "lookalike_cli.index",
        None,
        "Print the near-duplicates of the image IMAGE_ID (best first).",
        False,
    ),
    "evaluate": (
        "lookalike_cli.evaluate",
        None,
        "Measure near-duplicate precision and recall on FOLDER's labelled pictures.",
        False,
    ),
    "indexer": (
        "lookalike_cli.index",
        None,
        "Keep the near-duplicate index fresh: rebuild when enough new hashes arrive or "
        "the rebuild period passes (or with --once, now).",
        False,
    ),
    "lookalikes": (
        "lookalike_cli.index",
        None,
        "Print the images that look most like IMAGE_ID by embedding cosine (best first).",
        False,
    ),
    "model": (
        "lookalike_cli.model",
        None,
        "The learned embedding model (EfficientNet-Lite0, run by onnxruntime).",
        False,
    ),
    "replica": (
        "lookalike_cli.replica",
        None,
        "A local replica of the Wellcome catalogue API and its IIIF image server.",
        False,
    ),
    "report": (
        "lookalike_cli.serve",
        None,
        "Write an HTML report: collection, crawl, metrics, degree histogram, a "
        "neighbourhood picture with thumbnails, near-duplicate groups.",
        False,
    ),
    "search": (
        "lookalike_cli.index",
        None,
        "Print the stored images that look most like IMAGE_FILE: one ranking across hash "
        "kinds and the learned embedding, verified near-duplicates first.",
        False,
    ),
    "serve": (
        "lookalike_cli.serve",
        None,
        "Serve the HTTP API (OpenAPI description at /openapi.json).",
        False,
    ),
    "status": (
        "lookalike_cli.stack",
        None,
        "Show the embedded servers, whether they run, and what the graph holds.",
        False,
    ),
    "up": (
        "lookalike_cli.stack",
        None,
        "Start the embedded Redis and ArcadeDB (Bolt) servers and create the graph schema.",
        False,
    ),
    "worker": (
        "lookalike_cli.crawl",
        None,
        "Run a Celery worker for crawls (start as many as you like, on any machine).",
        False,
    ),
}
