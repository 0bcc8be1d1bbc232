"""The embedded stack: our own Redis and a Bolt-speaking ArcadeDB, for machines without Docker.

``up`` starts both on free loopback ports, each with its own data directory under the state
folder, waits until each really answers (Redis PING; a real Cypher query, because ArcadeDB
opens its Bolt port before the database exists), and records PIDs and URLs in
``<state>/stack.json`` so every other command finds them. ``down`` stops exactly those PIDs.
Data lives in the state folder, so it survives ``down`` then ``up``.

Production runs Neo4j 5 and Redis 7 from docker-compose.yml instead; nothing else changes.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lookalike.settings import Settings

DATABASE = "lookalike"


class StackError(RuntimeError):
    """The embedded stack could not start or stop; the message says what to fix."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists"; treat it as dead.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        return state != "Z"
    except OSError:
        return True


def _ensure_writable(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise StackError(
            f"the data directory {path} is not writable ({exc.strerror}); "
            "set LOOKALIKE_STATE_DIR to a folder you can write"
        ) from exc


def _log_tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait(
    check: Callable[[], bool],
    proc: subprocess.Popen[bytes],
    what: str,
    log: Path,
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(
                f"{what} exited with code {proc.returncode} while starting. "
                f"Last lines of {log}:\n{_log_tail(log)}"
            )
        try:
            if check():
                return
        except Exception as exc:  # the server is still coming up
            last_error = f"{type(exc).__name__}: {exc}"
        time.sleep(0.2)
    proc.terminate()
    raise StackError(
        f"{what} did not answer within {timeout:.0f}s ({last_error}). "
        f"Last lines of {log}:\n{_log_tail(log)}"
    )


# --------------------------------------------------------------------------- Redis


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if not found:
        raise StackError(
            "redis-server is not installed: run `apt-get install -y redis-server` "
            "(the README's commands do this), or set REDIS_URL to a running Redis"
        )
    return found


def start_redis(data_dir: Path, port: int | None = None, timeout: float = 20.0) -> dict[str, Any]:
    """Start redis-server on loopback with persistence in ``data_dir``."""
    import redis

    _ensure_writable(data_dir)
    port = port or free_port()
    if port_in_use(port):
        raise StackError(f"port {port} for Redis is already taken; choose another or free it")
    log = data_dir / "redis.log"
    cmd = [
        redis_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--save",
        "60 1",
        "--appendonly",
        "yes",
        "--protected-mode",
        "yes",
        "--logfile",
        str(log),
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=1)
    _wait(lambda: bool(client.ping()), proc, "redis-server", log, timeout)
    return {"pid": proc.pid, "port": port, "url": url, "log": str(log)}


# --------------------------------------------------------------------------- ArcadeDB


def arcadedb_home() -> Path:
    try:
        import arcadedb_embedded
    except ImportError as exc:
        raise StackError(
            "arcadedb-embedded is not installed: `pip install arcadedb-embedded`, "
            "or set NEO4J_URI to a running Neo4j"
        ) from exc
    return Path(arcadedb_embedded.__file__).parent


def arcadedb_command(
    root: Path, bolt_port: int, http_port: int, password_file: Path, heap: str = "1g"
) -> list[str]:
    """The java command line of the embedded server. Every local user can read a process's
    command line, so the root password is not on it: the server reads it from
    ``password_file`` (readable by its owner only)."""
    home = arcadedb_home()
    java = home / "jre" / "bin" / "java"
    props = {
        "arcadedb.server.rootPath": str(root),
        "arcadedb.server.databaseDirectory": str(root / "databases"),
        "arcadedb.server.rootPasswordPath": str(password_file),
        "arcadedb.server.defaultDatabases": f"{DATABASE}[root]",
        "arcadedb.server.plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
        "arcadedb.bolt.port": str(bolt_port),
        "arcadedb.bolt.host": "127.0.0.1",
        "arcadedb.bolt.defaultDatabase": DATABASE,
        "arcadedb.server.httpIncomingHost": "127.0.0.1",
        "arcadedb.server.httpIncomingPort": str(http_port),
        # Not "production": that mode hides every error's message from clients ("check the
        # server log"), so a syntax error in ad-hoc Cypher could not say what is wrong. What
        # production mode would also set is set explicitly: WAL flushed at commit, LOAD CSV
        # without local files (and Studio, which development mode serves, is on loopback
        # behind the root password like the rest of the HTTP API).
        "arcadedb.server.mode": "development",
        "arcadedb.txWalFlush": "1",
        "arcadedb.opencypher.loadCsv.allowFileUrls": "false",
        # Tuned for many small concurrent write transactions (crawl workers). ArcadeDB's
        # transactions are optimistic per page: a transaction copies every page it changes
        # and fails on commit if another changed the same page meanwhile. More buckets per
        # type (default: one per core) spread concurrent inserts and updates over more pages:
        # 4 writers retried ~400-480 of 3,000 crawl transactions with the defaults, ~110-150
        # with 8 buckets and 32 KB index pages (and ~300-360 with 32 KB index pages alone).
        # Smaller index pages (default 256 KB) make each insert's private copy cheaper; 64 KB
        # is a middle value that was not measured separately.
        "arcadedb.typeDefaultBuckets": "8",
        "arcadedb.indexDefaultPageSize": str(64 * 1024),
    }
    return [
        str(java),
        "-Xms256m",
        f"-Xmx{heap}",
        "-XX:+UseSerialGC",
        "-Djava.awt.headless=true",
        "--add-opens=java.base/java.nio=ALL-UNNAMED",
        *[f"-D{k}={v}" for k, v in props.items()],
        "-cp",
        f"{home / 'jars'}/*",
        "com.arcadedb.server.ArcadeDBServer",
    ]


def _cypher_ready(uri: str, password: str) -> Callable[[], bool]:
    from neo4j import GraphDatabase

    def check() -> bool:
        with GraphDatabase.driver(
            uri, auth=("root", password), connection_timeout=2, max_transaction_retry_time=0
        ) as driver:
            records, _, _ = driver.execute_query("RETURN 1 AS ok", database_=DATABASE)
            return bool(records[0]["ok"] == 1)

    return check


def start_arcadedb(
    data_dir: Path,
    password_file: Path,
    bolt_port: int | None = None,
    http_port: int | None = None,
    timeout: float = 90.0,
) -> dict[str, Any]:
    """Start ArcadeDB with the Bolt plugin and the root password kept in ``password_file``;
    return once a real Cypher query succeeds."""
    password = password_file.read_text().strip()
    _ensure_writable(data_dir)
    bolt_port = bolt_port or free_port()
    http_port = http_port or free_port()
    for port, what in ((bolt_port, "Bolt"), (http_port, "ArcadeDB HTTP")):
        if port_in_use(port):
            raise StackError(f"port {port} for {what} is already taken; choose another or free it")
    java = arcadedb_home() / "jre" / "bin" / "java"
    if not os.access(java, os.X_OK):
        raise StackError(f"Java cannot start: {java} is missing or not executable")
    log = data_dir / "arcadedb.log"
    with log.open("ab") as out:
        try:
            proc = subprocess.Popen(
                arcadedb_command(data_dir, bolt_port, http_port, password_file),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=data_dir,
                start_new_session=True,
            )
        except OSError as exc:
            raise StackError(f"Java cannot start ({exc}); reinstall arcadedb-embedded") from exc
    uri = f"bolt://127.0.0.1:{bolt_port}"
    _wait(_cypher_ready(uri, password), proc, "ArcadeDB", log, timeout)
    return {
        "pid": proc.pid,
        "uri": uri,
        "bolt_port": bolt_port,
        "http_port": http_port,
        "http_url": f"http://127.0.0.1:{http_port}",
        "user": "root",
        "password": password,
        "password_file": str(password_file),
        "database": DATABASE,
        "log": str(log),
    }


# --------------------------------------------------------------------------- whole stack


def graph_password_file(state_dir: Path) -> Path:
    """The file holding the per-installation graph password, generated once, readable only
    by its owner."""
    secret = state_dir / "graph-password"
    if not secret.exists():
        # Created with owner-only permissions, so the secret is never readable by others.
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(18))
    return secret


def stop_pid(pid: int, timeout: float = 20.0) -> bool:
    """SIGTERM, then SIGKILL after ``timeout``. True if the process was running."""
    if not pid_alive(pid):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return True


def status(settings: Settings) -> dict[str, Any]:
    """What ``up`` recorded, with whether each process still runs."""
    record = settings.embedded()
    for name in ("redis", "graph"):
        if name in record:
            record[name]["running"] = pid_alive(int(record[name]["pid"]))
    return record


def graph_access(settings: Settings) -> dict[str, str] | None:
    """What a Bolt client (cypher-shell, Neo4j Browser, a driver) needs to reach the graph:
    URI, user, database and where the password is kept, never the password itself. None when
    there is no graph (neither ``NEO4J_URI`` nor the embedded server)."""
    if settings.neo4j_uri:
        return {
            "uri": settings.neo4j_uri,
            "user": settings.neo4j_user,
            "database": settings.neo4j_database or "(the server's default)",
            "password": "the NEO4J_PASSWORD variable of this environment",
        }
    graph = settings.embedded().get("graph")
    if not graph:
        return None
    secret = graph.get("password_file") or str(graph_password_file(settings.state_dir))
    return {
        "uri": graph["uri"],
        "user": graph["user"],
        "database": settings.neo4j_database or graph["database"],
        "password": f"the file {secret} (readable by its owner only)",
        "example": (
            f'NEO4J_PASSWORD="$(cat {secret})" cypher-shell -a {graph["uri"]} '
            f"-u {graph['user']} -d {settings.neo4j_database or graph['database']}"
        ),
    }


def up(
    settings: Settings,
    redis_port: int | None = None,
    bolt_port: int | None = None,
    http_port: int | None = None,
) -> dict[str, Any]:
    """Start whatever of the embedded stack is not running; return the connection record."""
    state = settings.state_dir
    _ensure_writable(state)
    # Reuse last time's ports when free, so URLs stay stable across down/up and processes
    # that cached a connection (workers, an API) find the servers again after a restart.
    ports_file = state / "ports.json"
    try:
        previous = json.loads(ports_file.read_text())
    except (FileNotFoundError, ValueError):
        previous = {}

    def pick(given: int | None, key: str) -> int | None:
        if given:
            return given
        old = previous.get(key)
        return old if old and not port_in_use(old) else None

    redis_port = pick(redis_port, "redis")
    bolt_port = pick(bolt_port, "bolt")
    http_port = pick(http_port, "http")
    record = status(settings)
    started: list[int] = []
    try:
        if not settings.redis_url and not record.get("redis", {}).get("running"):
            record["redis"] = start_redis(state / "redis", redis_port)
            started.append(record["redis"]["pid"])
        if not settings.neo4j_uri and not record.get("graph", {}).get("running"):
            record["graph"] = start_arcadedb(
                state / "arcadedb", graph_password_file(state), bolt_port, http_port
            )
            started.append(record["graph"]["pid"])
    except BaseException:
        for pid in started:
            stop_pid(pid)
        raise
    for part in record.values():
        part.pop("running", None)
    ports = {
        "redis": record.get("redis", {}).get("port"),
        "bolt": record.get("graph", {}).get("bolt_port"),
        "http": record.get("graph", {}).get("http_port"),
    }
    ports_file.write_text(json.dumps(ports))
    tmp = settings.stack_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    tmp.chmod(0o600)
    os.replace(tmp, settings.stack_file)
    return record


def down(settings: Settings) -> list[str]:
    """Stop exactly the processes ``up`` recorded; return the names of those stopped."""
    record = settings.embedded()
    stopped: list[str] = [
        name for name in ("graph", "redis") if name in record and stop_pid(int(record[name]["pid"]))
    ]
    settings.stack_file.unlink(missing_ok=True)
    return stopped


# --------------------------------------------------------------------------- databases


def server_command(graph: dict[str, Any], command: str, timeout: float = 60.0) -> Any:
    """Run an ArcadeDB server command (``create database x``, ``list queries``...) through its
    HTTP API, as the root user of the ``graph`` record ``up`` wrote; returns its result."""
    return _post(graph, "server", {"command": command}, command, timeout)


def database_command(
    graph: dict[str, Any], database: str, command: str, timeout: float = 60.0
) -> Any:
    """Run one statement of ArcadeDB's own SQL on ``database`` through the HTTP API (for what
    Cypher cannot say, such as a unique index on an edge's two ends); returns its result."""
    return _post(
        graph, f"command/{database}", {"language": "sql", "command": command}, command, timeout
    )


def _post(graph: dict[str, Any], path: str, body: dict[str, str], what: str, timeout: float) -> Any:
    import requests

    try:
        response = requests.post(
            f"{graph['http_url']}/api/v1/{path}",
            json=body,
            auth=(graph["user"], graph["password"]),
            timeout=timeout,
        )
    except requests.RequestException as exc:
        raise StackError(f"ArcadeDB's HTTP API did not answer `{what}`: {exc}") from exc
    if response.status_code != 200:
        raise StackError(f"ArcadeDB refused `{what}`: {response.status_code} {response.text}")
    try:
        return response.json().get("result")
    except ValueError:
        return None


def create_database(settings: Settings, name: str) -> None:
    """Create an extra database on the embedded server (tests use one each, for isolation)."""
    graph = settings.embedded().get("graph")
    if not graph:
        raise StackError("create_database needs the embedded stack (`lookalike up`)")
    server_command(graph, f"create database {name}")


def drop_database(settings: Settings, name: str) -> None:
    graph = settings.embedded().get("graph")
    if graph:
        server_command(graph, f"drop database {name}")
