"""``lookalike up | status | down``: the embedded Redis and graph server."""

from __future__ import annotations

import json

import click

from lookalike import stack
from lookalike_cli.common import settings, user_errors


@click.command()
@click.option("--redis-port", type=int, default=None, help="Port for Redis (default: a free one).")
@click.option("--bolt-port", type=int, default=None, help="Bolt port (default: a free one).")
@click.option("--http-port", type=int, default=None, help="ArcadeDB HTTP port (default: free).")
@user_errors()
def up(redis_port: int | None, bolt_port: int | None, http_port: int | None) -> None:
    """Start the embedded Redis and ArcadeDB (Bolt) servers and create the graph schema."""
    from lookalike.graph import GraphStore

    s = settings()
    record = stack.up(s, redis_port=redis_port, bolt_port=bolt_port, http_port=http_port)
    with GraphStore.connect(s) as store:
        store.ensure_schema()
    click.echo(f"state folder: {s.state_dir}")
    if "redis" in record:
        click.echo(f"redis  pid {record['redis']['pid']:>7}  {record['redis']['url']}")
    if "graph" in record:
        g = record["graph"]
        click.echo(f"graph  pid {g['pid']:>7}  {g['uri']} (database {g['database']})")
    if s.neo4j_uri:
        click.echo(f"graph  external  {s.neo4j_uri}")
    if s.redis_url:
        click.echo(f"redis  external  {s.redis_url}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the connection record as JSON.")
@user_errors()
def status(as_json: bool) -> None:
    """Show the embedded servers, whether they run, and what the graph holds."""
    from lookalike.graph import GraphStore, GraphUnavailable

    s = settings()
    record = stack.status(s)
    for part in record.values():
        part.pop("password", None)
    access = stack.graph_access(s)
    if as_json:
        click.echo(json.dumps({**record, "graph_access": access}, indent=2))
        return
    if not record:
        click.echo("the embedded stack is not running (start it with `lookalike up`)")
    for name, part in record.items():
        state = "running" if part.get("running") else "NOT RUNNING"
        click.echo(f"{name:6} pid {part['pid']:>7}  {state:11}  {part.get('url') or part['uri']}")
    if access:
        click.echo("graph access (cypher-shell, Neo4j Browser, any Bolt client):")
        for key in ("uri", "user", "database", "password", "example"):
            if key in access:
                click.echo(f"  {key:9} {access[key]}")
    try:
        with GraphStore.connect(s, retry_time=2) as store:
            c = store.counts()
        click.echo(
            f"graph: {c['images']} images ({c['hashed']} hashed, {c['hash_failed']} broken "
            f"thumbnails), {c['edges']} SIMILAR_TO edges"
        )
    except (GraphUnavailable, Exception) as exc:  # status must report, not crash
        click.echo(f"graph: not reachable ({exc})")


@click.command()
@user_errors()
def down() -> None:
    """Stop exactly the servers `lookalike up` started. Their data stays."""
    stopped = stack.down(settings())
    click.echo("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


COMMANDS = [up, status, down]
