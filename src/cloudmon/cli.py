"""The `cloudmon` command: thin wrappers around the library code."""

import logging
import socket
import sys
import time
from pathlib import Path

import click

from cloudmon.agent import paths
from cloudmon.options import DURATION, SIZE, TIME, store_of
from cloudmon.rightsize import rightsize
from cloudmon.top import top


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cloudmon", prog_name="cloudmon")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="How much to log (to standard error).",
)
def main(log_level: str) -> None:
    """cloudmon: Kubernetes resource monitoring with history."""
    _configure_logging(log_level)


@main.command()
@click.option(
    "--server",
    envvar="CLOUDMON_SERVER",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="Base URL of the cloudmon server.",
)
@click.option(
    "--interval",
    envvar="CLOUDMON_INTERVAL",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds between samples.",
)
@click.option(
    "--node-name",
    envvar="NODE_NAME",
    default=socket.gethostname,
    show_default="host name",
    help="This node's name.",
)
@click.option(
    "--proc-root",
    envvar="CLOUDMON_PROC_ROOT",
    default=paths.default_proc_root,
    show_default=f"{paths.HOST_PROC} if it exists, else {paths.PROC}",
    help="Where the host's /proc is.",
)
@click.option(
    "--cgroup-root",
    envvar="CLOUDMON_CGROUP_ROOT",
    default=paths.default_cgroup_root,
    show_default=f"{paths.HOST_CGROUP} if it exists, else {paths.CGROUP}",
    help="Where the host's cgroup file system is (v1, v2 or hybrid, found by looking).",
)
@click.option(
    "--rootfs",
    envvar="CLOUDMON_ROOTFS",
    default=paths.default_rootfs,
    show_default=f"{paths.HOST_ROOTFS} if it exists, else {paths.ROOTFS}",
    help="The host's root file system, measured for fs_total_bytes and fs_used_bytes.",
)
@click.option(
    "--metadata",
    envvar="CLOUDMON_METADATA",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "apiserver", "kubelet", "crictl", "none"]),
    help="Where pod names, namespaces and workloads come from; auto takes the first of "
    "apiserver, kubelet and crictl that answers.",
)
@click.option(
    "--kubelet-url",
    envvar="CLOUDMON_KUBELET_URL",
    default=None,
    show_default="https://$NODE_IP:10250",
    help="The kubelet's API; its /pods is read.",
)
@click.option(
    "--crictl",
    envvar="CLOUDMON_CRICTL",
    default="crictl",
    show_default=True,
    help="The crictl binary.",
)
@click.option(
    "--token-file",
    envvar="CLOUDMON_TOKEN_FILE",
    default=None,
    type=click.Path(dir_okay=False),
    help="File holding the bearer token sent to the server.",
)
@click.option(
    "--ca-file",
    envvar="CLOUDMON_CA_FILE",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="CA certificate(s) that verify an https:// server; default: the system's.",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Do not verify the https:// server's certificate (tests only: anyone in between "
    "can read and change the samples).",
)
@click.option(
    "--spool-dir",
    envvar="CLOUDMON_SPOOL_DIR",
    default=None,
    type=click.Path(file_okay=False),
    help="Keep unsent samples on disk here (they survive a restart); default: in memory.",
)
@click.option(
    "--spool-limit",
    envvar="CLOUDMON_SPOOL_LIMIT",
    default=None,
    type=click.IntRange(min=1),
    show_default="one hour of samples",
    help="At most this many unsent samples are kept; past it the oldest are dropped.",
)
@click.option(
    "--health-file",
    envvar="CLOUDMON_HEALTH_FILE",
    default=None,
    type=click.Path(dir_okay=False),
    help="Touch this file after every completed cycle, for a liveness check of its age "
    "(`cloudmon health`).",
)
@click.option(
    "--once",
    is_flag=True,
    help="Collect twice, --gap seconds apart, send or print the second sample, and exit.",
)
@click.option(
    "--gap",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.0),
    help="Seconds between the two samples of --once.",
)
@click.option(
    "--output",
    type=click.Choice(["-"]),
    default=None,
    help="'-': write each payload as one line of JSON to standard output instead of sending it.",
)
def agent(**options) -> None:
    """Measure this node and its pods every --interval seconds and send them to the server."""
    from cloudmon.agent.main import run_agent

    sys.exit(run_agent(**options))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--storage",
    envvar="CLOUDMON_STORAGE",
    default=None,
    show_default="sqlite:///data/cloudmon.db",
    help="Where samples are kept: sqlite:///PATH (a relative PATH is under the working "
    "directory; sqlite:////abs/path for an absolute one), or a Prometheus-compatible engine, "
    "prometheus+http://HOST:PORT[/PREFIX] or prometheus+https://..., with options after '?': "
    "read_url=, write_url= (engines that split them), username= and password_file= or "
    "bearer_token_file=, ca_file=, cluster= (a label on every series), timeout=, retries=, "
    "history= (README: Scaling out).",
)
@click.option(
    "--token-file",
    envvar="CLOUDMON_TOKEN_FILE",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="File holding the bearer token agents must send to POST /api/ingest.",
)
@click.option(
    "--read-token-file",
    envvar="CLOUDMON_READ_TOKEN_FILE",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="File holding the bearer token the read endpoints (GET /api/..., /metrics) require.",
)
@click.option(
    "--workers",
    default=3,
    show_default=True,
    type=click.IntRange(min=1),
    help="gunicorn worker processes.",
)
@click.option(
    "--threads",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Threads per worker: with more, a slow client holds one thread, not a worker (at "
    "some cost to the ingest rate).",
)
@click.option(
    "--request-time-limit",
    envvar="CLOUDMON_REQUEST_TIME_LIMIT",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=1.0),
    help="Seconds a request may take from its arrival; its connection is shut past them.",
)
@click.option(
    "--tls-cert",
    envvar="CLOUDMON_TLS_CERT",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="PEM certificate (chain) to serve HTTPS with; needs --tls-key.",
)
@click.option(
    "--tls-key",
    envvar="CLOUDMON_TLS_KEY",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="PEM private key of --tls-cert.",
)
@click.option("--dev", is_flag=True, help="Flask's development server instead of gunicorn.")
@click.option(
    "--retention-raw",
    type=DURATION,
    default="24h",
    show_default=True,
    help="How long 10 s samples are kept.",
)
@click.option(
    "--retention-1m",
    type=DURATION,
    default="7d",
    show_default=True,
    help="How long 1 min rollups are kept.",
)
@click.option(
    "--retention-1h",
    type=DURATION,
    default="90d",
    show_default=True,
    help="How long 1 h rollups are kept.",
)
@click.option(
    "--retention-size",
    envvar="CLOUDMON_RETENTION_SIZE",
    type=SIZE,
    default=None,
    help="The most the embedded store's file and its WAL may take (e.g. 8GiB; units B, KB,"
    " MB, GB, TB, KiB, MiB, GiB, TiB, all powers of 1024, as Prometheus's): past 95 %% of it"
    " the oldest data is deleted, raw samples already rolled up first; default: no bound"
    " but the retention times.",
)
def server(storage, retention_raw, retention_1m, retention_1h, **options) -> None:
    """Store the agents' samples and serve them over HTTP (REST API, /metrics, dashboard)."""
    from cloudmon.server.main import run_server

    retention = {10: retention_raw, 60: retention_1m, 3600: retention_1h}
    if (options["tls_cert"] is None) != (options["tls_key"] is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if storage is not None:
        options["storage"] = storage
    log_level = logging.getLevelName(logging.getLogger().level).lower()
    sys.exit(run_server(retention=retention, log_level=log_level, **options))


@main.command()
@click.option(
    "--health-file",
    envvar="CLOUDMON_HEALTH_FILE",
    required=True,
    type=click.Path(dir_okay=False),
    help="The file `cloudmon agent --health-file` touches every cycle.",
)
@click.option(
    "--max-age",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Seconds since the last completed cycle beyond which the agent is not healthy.",
)
def health(health_file: str, max_age: float) -> None:
    """Exit 0 if the agent completed a cycle within --max-age seconds, else 1 (a liveness probe)."""
    from cloudmon.agent.main import seconds_since_last_cycle

    age = seconds_since_last_cycle(health_file)
    if age is None or age > max_age:
        click.echo(f"no completed cycle in the last {max_age:g} s ({health_file})", err=True)
        sys.exit(1)


@main.command()
@click.option(
    "--server",
    envvar="CLOUDMON_SERVER",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="Base URL of the cloudmon server to feed.",
)
@click.option(
    "--nodes", default=4, show_default=True, type=int, help="Nodes of the synthetic cluster."
)
@click.option(
    "--pods-per-node",
    default=12,
    show_default=True,
    type=int,
    help="Pods on each node (at least 4: three DaemonSets and a pod of the shop).",
)
@click.option(
    "--history",
    type=DURATION,
    default="1h",
    show_default=True,
    help="History sent first, as agents catching up would; less than the server's "
    "--retention-raw (24h by default).",
)
@click.option(
    "--seed",
    default=1,
    show_default=True,
    type=int,
    help="Seed of the cluster's names and figures: the same seed, the same cluster.",
)
@click.option(
    "--token-file",
    envvar="CLOUDMON_TOKEN_FILE",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="File holding the bearer token the server requires.",
)
def demo(**options) -> None:
    """Feed a synthetic cluster (namespaces shop, payments, monitoring, kube-system) to a
    server: its history first, then a sample per node every 10 s until Ctrl-C."""
    from cloudmon.demo import run_demo

    sys.exit(run_demo(**options))


@main.command()
@click.argument("destination", type=click.Path(dir_okay=False, writable=True))
@store_of("embedded store to copy")
def backup(destination: str, storage: str) -> None:
    """Copy the embedded store to DESTINATION, consistently, while the server runs."""
    import sqlite3

    from cloudmon.storage.sqlite import SqliteStorage
    from cloudmon.storage.sqlite.backup import backup as copy_store

    try:
        done = copy_store(SqliteStorage.path_of(storage), destination)
    except (ValueError, OSError, sqlite3.Error) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{done.path}: {done.bytes / 2**20:.1f} MiB in {done.seconds:.1f} s")


@main.command("export")
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["seed-json"]),
    default="seed-json",
    show_default=True,
    help="seed-json: the original system's nodes.json, pods.json, namespaces.json and"
    " deployments.json (README: The seed-json files).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The directory to write the files into (made if missing).",
)
@click.option("--window", type=DURATION, help="The history from now minus this to now (7d).")
@click.option("--start", type=TIME, help="The history from this time (unix seconds, RFC 3339).")
@click.option("--end", type=TIME, help="... to this time (default now).")
@store_of("store to read")
def export(file_format: str, out: Path, window, start, end, storage: str) -> None:
    """Write the store's history as the original system's JSON files, an entry per entity and
    10 s bucket."""
    now = time.time()
    if window is not None and (start is not None or end is not None):
        raise click.UsageError("give either --window or --start/--end")
    if window is None and start is None:
        raise click.UsageError("give --window or --start")
    start, end = (now - window, now) if window is not None else (start, end or now)
    from cloudmon import seedjson
    from cloudmon.storage import open_storage

    store = open_storage(storage)
    try:
        written = seedjson.export(store, start, end, out)
    finally:
        store.close()
    for name, count in written.items():
        click.echo(f"{out / name}: {count} entries")


@main.command("import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@store_of("store to write into", " (the server may run)")
def import_files(directory: Path, storage: str) -> None:
    """Store the original system's JSON files (or cloudmon's export) from DIRECTORY: all
    validated first, nothing stored if one is wrong; then some payloads per transaction."""
    from cloudmon import seedjson
    from cloudmon.storage import open_storage
    from cloudmon.storage.base import RETENTION, bucket_of

    now = time.time()
    try:
        seed = seedjson.read(directory, bucket_of(now - max(RETENTION.values())), now + 60)
    except seedjson.SeedError as error:
        raise click.ClickException(f"nothing imported: {error}") from None
    store = open_storage(storage)
    try:
        samples = seedjson.write(store, seed.payloads)
    finally:
        store.close()
    read = ", ".join(f"{name} {count}" for name, count in seed.entries.items())
    click.echo(
        f"imported {len(seed.payloads)} node reports ({samples} values); entries read: {read}"
    )


main.add_command(top)
main.add_command(rightsize)
