"""The production deployment files: docker-compose.yml, Dockerfile, .dockerignore.

No Docker engine runs here, so the compose file is checked as data: parsed with PyYAML,
interpolated the way compose does, validated against the Compose Specification's JSON schema
(vendored by check-jsonschema) and, when a compose CLI is installed, by ``docker compose config``.
Every command it runs must name a module, object or CLI command that really exists.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from lookalike_cli.main import child_command

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

APP_SERVICES = ("init", "api", "worker", "beat", "indexer")
LONG_RUNNING = ("api", "worker", "beat", "indexer")
SENTINEL = "sentinel-Pw-4f9c"  # stands in for the operator's NEO4J_PASSWORD


# --------------------------------------------------------------------------- helpers


class InterpolationError(ValueError):
    pass


_VAR = re.compile(
    r"\$(?:\$|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("braced") or m.group("plain")
        op, arg = m.group("op"), m.group("arg") or ""
        value = env.get(name)
        if op in (":-", ":?") and value == "":
            value = None
        if value is not None:
            return value
        if op in (":?", "?"):
            raise InterpolationError(f"{name}: {arg}")
        if op in (":-", "-"):
            return arg
        return ""

    return _VAR.sub(sub, text)


def interpolate_tree(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(x, env) for x in node]
    if isinstance(node, dict):
        return {k: interpolate_tree(v, env) for k, v in node.items()}
    return node


def raw_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose file as a deployment would see it, with NEO4J_PASSWORD set."""
    return interpolate_tree(raw_compose(), {"NEO4J_PASSWORD": SENTINEL, **(env or {})})


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def image_version(image: str) -> tuple[str, str]:
    name, _, tag = image.partition(":")
    return name, tag


def healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions (continuation lines joined), grouped by FROM stage."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), rest.strip()))
    return stages


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore ``patterns`` keep ``path`` (or a parent folder) out of the context.

    Docker's rules for the forms this repo uses: ``*`` and ``?`` within one path segment,
    ``**`` across segments, a match on a folder covers its contents, later ``!`` lines re-include.
    """

    def regex(pattern: str) -> re.Pattern[str]:
        out = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**", i):
                out += ".*"
                i += 2
                if pattern.startswith("/", i):
                    out += "/?"
                    i += 1
                continue
            c = pattern[i]
            out += "[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c)
            i += 1
        return re.compile(out + "$")

    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        rx = regex(pattern.lstrip("!").strip("/"))
        if any(rx.match(c) for c in candidates):
            result = not negate
    return result


def dockerignore_patterns() -> list[str]:
    return [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


# --------------------------------------------------------------------------- services


def test_services_and_images() -> None:
    services = compose()["services"]
    assert set(services) >= {"neo4j", "redis", *APP_SERVICES}

    name, tag = image_version(services["neo4j"]["image"])
    assert name == "neo4j" and tag.split(".")[0] == "5", services["neo4j"]["image"]
    assert "enterprise" not in tag  # community needs no licence acceptance
    name, tag = image_version(services["redis"]["image"])
    assert name == "redis" and tag.split(".")[0].split("-")[0] == "7", services["redis"]["image"]

    # One image for every app service, built from ./Dockerfile.
    images = {services[s]["image"] for s in APP_SERVICES}
    assert len(images) == 1, images
    for s in APP_SERVICES:
        build = services[s]["build"]
        assert Path(ROOT, build["context"]).resolve() == ROOT
        assert (ROOT / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE


def test_app_services_reach_neo4j_and_redis_by_service_name() -> None:
    doc = compose()
    services = doc["services"]
    for s in APP_SERVICES:
        env = environment(services[s])
        graph = urlparse(env["NEO4J_URI"])
        assert graph.scheme in {"bolt", "neo4j"} and graph.hostname == "neo4j", (s, env)
        assert graph.port == 7687
        assert env["NEO4J_USER"] == "neo4j"
        assert env["NEO4J_PASSWORD"] == SENTINEL, s
        redis = urlparse(env["REDIS_URL"])
        assert redis.scheme == "redis" and redis.hostname == "redis" and redis.port == 6379, s
        assert env["LOOKALIKE_STATE_DIR"] == "/data"
        assert env["LOOKALIKE_CATALOGUE_URL"] == "https://api.wellcomecollection.org/catalogue/v2"
        assert env["LOOKALIKE_IMAGE_HOSTS"] == "iiif.wellcomecollection.org"
        # The state folder is one shared named volume: the API serves the thumbnails the
        # workers fetched and the index the indexer built.
        assert "state:/data" in services[s]["volumes"], s
    assert "state" in doc["volumes"]
    # The variable names are the ones the settings really read.
    from lookalike.settings import load_settings

    s = load_settings(environ=environment(services["worker"]))
    assert s.graph().uri == "bolt://neo4j:7687" and s.graph().password == SENTINEL
    assert s.redis() == "redis://redis:6379/0" and str(s.state_dir) == "/data"
    assert s.image_hosts == ("iiif.wellcomecollection.org",) and s.api_token is None


def test_operator_can_override_catalogue_and_hosts() -> None:
    env = environment(
        compose(
            {
                "LOOKALIKE_CATALOGUE_URL": "http://replica:8080/catalogue/v2",
                "LOOKALIKE_IMAGE_HOSTS": "replica",
            }
        )["services"]["worker"]
    )
    assert env["LOOKALIKE_CATALOGUE_URL"] == "http://replica:8080/catalogue/v2"
    assert env["LOOKALIKE_IMAGE_HOSTS"] == "replica"


def test_compose_refuses_to_run_without_a_password() -> None:
    with pytest.raises(InterpolationError, match="NEO4J_PASSWORD"):
        interpolate_tree(raw_compose(), {})
    with pytest.raises(InterpolationError, match="NEO4J_PASSWORD"):
        interpolate_tree(raw_compose(), {"NEO4J_PASSWORD": ""})


def test_no_secret_is_written_in_the_file() -> None:
    """Every secret-like value comes from the operator's environment, with no default."""
    services = compose()["services"]
    assert environment(services["neo4j"])["NEO4J_AUTH"] == f"neo4j/{SENTINEL}"
    secret_name = re.compile(r"PASSWORD|SECRET|TOKEN|AUTH|_KEY$", re.IGNORECASE)
    for name, service in services.items():
        for var, value in environment(service).items():
            if secret_name.search(var):
                assert value in {"", SENTINEL, f"neo4j/{SENTINEL}"}, (name, var, value)
    # Uninterpolated, with nothing in the environment, no secret has a value of its own:
    # it is required (${VAR:?...}) or empty by default.
    for name, service in raw_compose()["services"].items():
        for var, value in environment(service).items():
            if secret_name.search(var):
                try:
                    fallback = interpolate(value, {})
                except InterpolationError:
                    continue
                assert fallback == "", (name, var, value)
    # And in the raw text: no `${...:-default}` on a password, no literal password after -p.
    text = COMPOSE.read_text()
    assert not re.search(r"\$\{[A-Z0-9_]*(PASSWORD|SECRET)[A-Z0-9_]*:?-", text)
    for m in re.finditer(r"(?:-p|--password)[ =]+(\S+)", text):
        assert m.group(1).lstrip("\\\"'").startswith("$$"), m.group(0)  # read in the container


def test_healthchecks() -> None:
    services = compose()["services"]
    for s in ("neo4j", "redis", "api"):
        assert services[s]["healthcheck"]["test"], s
    neo = healthcheck_text(services["neo4j"])
    assert "cypher-shell" in neo or "7474" in neo
    assert "redis-cli" in healthcheck_text(services["redis"])
    assert "ping" in healthcheck_text(services["redis"])
    api = healthcheck_text(services["api"])
    assert "8000" in api and "/health" in api


def test_start_order_waits_for_healthy_dependencies() -> None:
    services = compose()["services"]
    init = services["init"]["depends_on"]
    assert init == {
        "neo4j": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    assert services["init"]["restart"] == "no"  # one-shot
    for s in LONG_RUNNING:
        deps = services[s]["depends_on"]
        assert deps["neo4j"]["condition"] == "service_healthy", s
        assert deps["redis"]["condition"] == "service_healthy", s
        assert deps["init"]["condition"] == "service_completed_successfully", s
        assert services[s]["restart"] in {"unless-stopped", "always", "on-failure"}, s
    for s in ("neo4j", "redis"):
        assert services[s]["restart"] in {"unless-stopped", "always"}


def test_worker_scales() -> None:
    services = compose()["services"]
    for s in ("worker", "beat", "indexer", "init"):
        assert "container_name" not in services[s], s
    # Published host ports would collide between replicas.
    assert "ports" not in services["worker"]


def test_ports_published_to_loopback_by_default() -> None:
    services = compose()["services"]
    assert "ports" not in services["redis"]
    published = [p for s in ("neo4j", "api") for p in services[s]["ports"]]
    assert all(p.startswith("127.0.0.1:") for p in published), published
    assert {p.rsplit(":", 1)[1] for p in services["neo4j"]["ports"]} == {"7474", "7687"}
    opened = compose({"PUBLISH_HOST": "0.0.0.0"})["services"]["neo4j"]["ports"]
    assert all(p.startswith("0.0.0.0:") for p in opened)


# --------------------------------------------------------------------------- commands


def run_as_service(
    service: str, code: str, tmp_path: Path, extra: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter with the service's compose environment; its last
    stdout line is JSON. The state folder is moved to ``tmp_path`` (no /data here)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LOOKALIKE_", "NEO4J_"))},
        **environment(compose()["services"][service]),
        "LOOKALIKE_STATE_DIR": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        **(extra or {}),
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_celery_commands_name_the_real_app_and_queue(tmp_path: Path) -> None:
    services = compose()["services"]
    worker, beat = command(services["worker"]), command(services["beat"])
    assert worker[:2] == ["celery", "-A"] and worker[3] == "worker"
    assert beat[:2] == ["celery", "-A"] and beat[3] == "beat"
    assert beat[2] == worker[2]
    assert worker[2] in healthcheck_text(services["worker"])
    # Beat keeps its schedule file on the writable state volume, not in the image.
    assert beat[beat.index("--schedule") + 1].startswith("/data/")
    # What `celery -A <module>` finds, configured from the worker's compose environment.
    code = (
        "import importlib, json; from celery import Celery;"
        f"m = importlib.import_module({worker[2]!r}); app = m.app;"
        "print(json.dumps({'celery': isinstance(app, Celery), 'broker': app.conf.broker_url,"
        " 'queue': app.conf.task_default_queue, 'beat': sorted(app.conf.beat_schedule)}))"
    )
    found = run_as_service("worker", code, tmp_path)
    assert found["celery"]
    assert found["broker"] == "redis://redis:6379/0"
    assert worker[worker.index("-Q") + 1] == found["queue"]  # the worker consumes what is sent
    assert found["beat"], "beat would run with an empty schedule"


def test_gunicorn_target_serves_health(tmp_path: Path) -> None:
    services = compose()["services"]
    cmd = command(services["api"])
    assert cmd[0] == "gunicorn"
    assert "--bind=0.0.0.0:8000" in cmd
    target = cmd[-1]
    m = re.fullmatch(r"([\w.]+):(\w+)(\(\))?", target)
    assert m, f"gunicorn target {target!r} is not module:app or module:factory()"
    module_name, attr, factory_call = m.groups()
    assert importlib.util.find_spec(module_name) is not None, (
        f"the api service runs {module_name}, which does not exist"
    )
    path = urlparse(re.search(r"https?://[^'\" ]+", healthcheck_text(services["api"]))[0]).path
    # Load the app as gunicorn would, with the api service's environment (the graph at
    # bolt://neo4j:7687 is unreachable here: liveness must not depend on it), and ask it.
    code = (
        "import importlib, json;"
        f"m = importlib.import_module({module_name!r}); obj = getattr(m, {attr!r});"
        f"app = obj() if {bool(factory_call)!r} else obj;"
        f"r = app.test_client().get({path!r});"
        "print(json.dumps({'status': r.status_code}))"
    )
    assert run_as_service("api", code, tmp_path) == {"status": 200}
    # The Dockerfile's default command serves the same app.
    cmd_line = [rest for i, rest in dockerfile_stages()[-1] if i == "CMD"][-1]
    assert json.loads(cmd_line)[-1] == target


def test_one_gunicorn_configuration() -> None:
    """compose, the Dockerfile and `lookalike serve` run gunicorn from one config module;
    none of them restates a timeout."""
    from gunicorn.workers.gthread import ThreadWorker

    from services.api import gunicorn_conf

    config = "--config=python:services.api.gunicorn_conf"
    api = command(compose()["services"]["api"])
    docker = json.loads([rest for i, rest in dockerfile_stages()[-1] if i == "CMD"][-1])
    for cmd in (api, docker):
        assert config in cmd
        assert not [a for a in cmd if a.startswith(("--timeout", "--graceful-timeout", "-t"))]
    assert gunicorn_conf.timeout >= 120
    # gunicorn's threaded worker (the API's own subclass, which answers in JSON).
    module, _, name = gunicorn_conf.worker_class.rpartition(".")
    assert issubclass(getattr(importlib.import_module(module), name), ThreadWorker)
    serve = (ROOT / "lookalike_cli" / "serve.py").read_text()
    assert "gunicorn_conf" in serve and "timeout" not in serve


def _cli_commands() -> dict[str, Any]:
    from lookalike_cli import lazy

    return {command.name: command for _, command in lazy.real_commands()}


@pytest.mark.parametrize("service", ["indexer", "init"])
def test_lookalike_commands_are_registered(service: str) -> None:
    cmd = command(compose()["services"][service])
    assert cmd[0] == "lookalike"
    commands = _cli_commands()
    assert cmd[1] in commands, (
        f"the {service} service runs `lookalike {cmd[1]}`, which lookalike_cli/main.py does "
        "not register"
    )
    import click
    from click.testing import CliRunner

    # A group run without a subcommand only prints its usage and exits: the container would
    # restart in a loop instead of running the service.
    assert not isinstance(commands[cmd[1]], click.Group) or len(cmd) > 2, cmd
    result = CliRunner().invoke(commands[cmd[1]], [*cmd[2:], "--help"])
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------- Dockerfile


def test_dockerfile() -> None:
    stages = dockerfile_stages()
    runtime = stages[-1]
    assert runtime[0] == ("FROM", "python:3.11-slim")
    assert all(stage[0][1].split()[0] == "python:3.11-slim" for stage in stages)
    runs = " ".join(rest for i, rest in runtime if i == "RUN")
    # The project itself is installed (from the wheels the build stage made of `.`).
    assert re.search(r"pip install\b.*\b(lookalike|\.)(\s|$)", runs), runs
    if len(stages) > 1:
        build_runs = " ".join(rest for stage in stages[:-1] for i, rest in stage if i == "RUN")
        assert re.search(r"pip wheel\b.*\s\.(\s|$)", build_runs), build_runs
    users = [rest for i, rest in runtime if i == "USER"]
    assert users and users[-1] not in {"root", "0", "0:0"}, users
    assert ("EXPOSE", "8000") in runtime
    # The Cypher statements and Lua scripts come inside the installed package
    # (tests/test_packaging.py), so the runtime copies no source folder and sets no path.
    env = " ".join(rest for i, rest in runtime if i == "ENV")
    assert "CYPHER_DIR" not in env
    copies = [rest.split() for i, rest in runtime if i == "COPY"]
    assert all(c[0].startswith("--from=") for c in copies), copies
    assert "LOOKALIKE_STATE_DIR=/data" in env
    # The embedding model is converted at build time, into a folder the image names.
    assert "LOOKALIKE_MODEL_DIR=" in env
    assert re.search(r"\blookalike model install\b", runs), runs


def test_build_context_has_what_pip_install_needs_and_no_secrets() -> None:
    patterns = dockerignore_patterns()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = [
        "pyproject.toml",
        "cypher/counts.cypher",
        "cypher/__init__.py",
        "workers/lua/complete_fetch.lua",
        "lookalike/settings.py",
        "workers/app.py",
        "lookalike_cli/main.py",
        "services/__init__.py",
    ]
    readme = pyproject["project"].get("readme")
    if isinstance(readme, str):
        needed.append(readme)
        # setuptools refuses to build a project whose readme file is missing.
        assert (ROOT / readme).exists(), f"pyproject.toml names readme {readme}, which is missing"
    for path in needed:
        assert not ignored(path, patterns), f".dockerignore keeps {path} out of the image"
    for path in [".env", ".git/config", ".lookalike/stack.json", "lookalike/__pycache__/x.pyc"]:
        assert ignored(path, patterns), f".dockerignore lets {path} into the build context"


def test_packages_hold_no_undeclared_data_files() -> None:
    """The image installs the project as a wheel, which carries only .py files unless data
    files are declared; a data file beside the code would be missing in production."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = pyproject.get("tool", {}).get("setuptools", {}).get("package-data", {})
    # An extension's C source is compiled into the wheel, not carried; its in-place build
    # (the editable install's .so) is what the wheel carries instead.
    extensions = pyproject["tool"]["setuptools"].get("ext-modules", [])
    compiled = {source for ext in extensions for source in ext["sources"]}
    built = tuple(ext["name"].replace(".", "/") + "." for ext in extensions)
    package_roots = ["lookalike", "lookalike_cli", "services", "workers"]
    stray = []
    for root in package_roots:
        for path in (ROOT / root).rglob("*"):
            # Python files ship; documentation (.md) is not read at run time.
            skip = path.is_dir() or "__pycache__" in path.parts
            if skip or path.suffix in {".py", ".pyc", ".md"}:
                continue
            rel = path.relative_to(ROOT)
            if rel.as_posix() in compiled or (
                rel.as_posix().startswith(built) and path.suffix in {".so", ".pyd"}
            ):
                continue
            # As setuptools reads them: a package's globs are relative to its folder and may
            # reach into its sub-folders (explorer/js/*.js under services.api).
            enclosing = [rel.parents[i] for i in range(len(rel.parts) - 1)]
            if not any(
                fnmatch.fnmatch(path.relative_to(ROOT / folder).as_posix(), g)
                for folder in enclosing
                for g in [*declared.get(".".join(folder.parts), []), *declared.get("*", [])]
            ):
                stray.append(str(rel))
    assert not stray, (
        f"data files not declared as package data (add them to "
        f"[tool.setuptools.package-data] in pyproject.toml): {stray}"
    )


# --------------------------------------------------------------------------- validators


def test_compose_file_matches_the_compose_specification() -> None:
    try:
        from importlib.resources import files

        import jsonschema

        schema_file = files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
        schema = json.loads(schema_file.read_text())
    except (ImportError, FileNotFoundError, ModuleNotFoundError) as exc:
        pytest.skip(
            f"the Compose Specification schema (pip install check-jsonschema) is "
            f"not available: {exc}"
        )
    jsonschema.validate(compose(), schema)
    # And a deliberately broken file is rejected, so the validation is real.
    broken = compose()
    broken["services"]["worker"]["depends_on"]["neo4j"]["condition"] = "service_ready"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    return None


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no compose CLI (`docker compose` plugin or docker-compose) installed")
    env = {k: v for k, v in os.environ.items() if k != "NEO4J_PASSWORD"}
    run = [*cli, "-f", str(COMPOSE), "--project-directory", str(ROOT), "config"]
    ok = subprocess.run(
        run,
        env={**env, "NEO4J_PASSWORD": SENTINEL},
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    config = yaml.safe_load(ok.stdout)
    assert set(config["services"]) >= {"neo4j", "redis", *APP_SERVICES}
    refused = subprocess.run(
        run, env=env, capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert refused.returncode != 0 and "NEO4J_PASSWORD" in refused.stderr


# --------------------------------------------------------------------------- end to end


def test_init_command_creates_the_schema_on_an_external_graph(settings, tmp_path: Path) -> None:
    """The init service's command, with the compose environment's shape (NEO4J_URI and
    REDIS_URL set, so nothing embedded may start), run against a real Bolt server and Redis
    on an empty database: it must create the schema and start no server of its own."""
    import neo4j

    from lookalike import stack

    cmd = command(compose()["services"]["init"])
    assert cmd[1] in _cli_commands(), f"`lookalike {cmd[1]}` is not registered"
    graph = settings.graph()
    name = f"compose{os.getpid()}"
    stack.create_database(settings, name)
    try:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("LOOKALIKE_", "NEO4J_"))},
            "NEO4J_URI": graph.uri,
            "NEO4J_USER": graph.user,
            "NEO4J_PASSWORD": graph.password,
            "NEO4J_DATABASE": name,
            "REDIS_URL": settings.redis(),
            "LOOKALIKE_STATE_DIR": str(tmp_path),
            "PYTHONPATH": str(ROOT),
        }
        run = subprocess.run(
            child_command(*cmd[1:]),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=tmp_path,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert json.loads((tmp_path / "stack.json").read_text()) == {}  # started nothing
        with neo4j.GraphDatabase.driver(graph.uri, auth=graph.auth) as driver:
            driver.execute_query("CREATE (:Image {id: 'dup00001'})", database_=name)
            with pytest.raises(neo4j.exceptions.ConstraintError):
                driver.execute_query("CREATE (:Image {id: 'dup00001'})", database_=name)
    finally:
        stack.drop_database(settings, name)
