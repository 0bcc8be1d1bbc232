"""Conformance to the catalogue's OpenAPI spec: schemathesis against the served replica, plus
direct schema validation of every kind of document the replica serves."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml
from jsonschema import Draft202012Validator

from services.replica.server import run_replica

INCLUDES = "withSimilarFeatures,source.contributors,source.languages,source.genres,source.subjects"


@pytest.fixture(scope="module")
def openapi(replica_spec_dir: Path) -> tuple[Path, dict]:
    path = replica_spec_dir / "reference" / "catalogue.yaml"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path, yaml.safe_load(path.read_text())


def _validator(spec: dict, name: str) -> Draft202012Validator:
    # OpenAPI 3.1 schemas are JSON Schema 2020-12; refs resolve against the embedded document.
    return Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    )


def test_schemathesis_images_paths(openapi, docs_dir: Path, tmp_path: Path) -> None:
    schema_path, _ = openapi
    exe = shutil.which("schemathesis") or shutil.which("st")
    cmd = [exe] if exe else [sys.executable, "-m", "schemathesis.cli"]
    with run_replica(docs_dir) as rep:
        result = subprocess.run(
            [
                *cmd,
                "run",
                str(schema_path),
                "--url",
                rep.catalogue_url,
                "--include-path-regex",
                "^/images",
                "--max-examples",
                "30",
                "--seed",
                "1",
                "--no-color",
                "--generation-database",
                "none",
                "--suppress-health-check",
                "all",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                # Every check but the two that test input validation against the schema: the
                # real API is laxer than its schema (Integer.parseInt colours such as `0`, pages
                # that are valid int64 but outside the 10,000 window), and the replica copies it.
                "--checks",
                "all",
                "--exclude-checks",
                "negative_data_rejection,positive_data_acceptance",
                "--request-timeout",
                "20",
            ],
            capture_output=True,
            text=True,
            timeout=240,
            cwd=tmp_path,
        )
        stats = rep.stats()
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout
    assert stats["requests"]["catalogue"] > 100
    assert not any(key.startswith("catalogue:5") for key in stats["statuses"]), stats


def test_every_served_document_matches_the_schema(
    openapi, docs_replica, demo_dir: Path, scale_dir: Path
) -> None:
    _, spec = openapi
    image = _validator(spec, "Image")
    result_list = _validator(spec, "ImageResultList")
    error = _validator(spec, "Error")
    with run_replica(demo_dir) as demo, run_replica(scale_dir) as scale:
        for rep, ids in (
            (docs_replica, docs_replica.collection.ids),
            (demo, demo.collection.ids[::5]),
            (scale, scale.collection.ids[::500]),
        ):
            for image_id in ids:
                body = requests.get(
                    f"{rep.catalogue_url}/images/{image_id}",
                    params={"include": INCLUDES},
                    timeout=10,
                ).json()
                image.validate(body)
            listing = requests.get(
                f"{rep.catalogue_url}/images",
                timeout=10,
                params={
                    "pageSize": 100,
                    "page": 2,
                    "include": INCLUDES.split(",", 1)[1],
                    "aggregations": "locations.license,source.genres.label,source.subjects,"
                    "source.contributors.agent.label",
                },
            ).json()
            result_list.validate(listing)
            error.validate(requests.get(f"{rep.catalogue_url}/images?page=0", timeout=10).json())
