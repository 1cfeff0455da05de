"""The same benchmark session on SQLite and on PostgreSQL backends, measured.

For each backend: the embedded server's start-up on a fresh and on an already
migrated store (two standalone starts), then the whole ``pytest benchmarks`` session
with ``-n 1`` and ``-n 4`` (the harness starts its own server), recording wall time
and the peak memory of the server's process group (summed RSS, sampled every 0.25 s).

    python benchmarks/perf/backends.py [--pg postgresql://postgres@127.0.0.1:5432] [--out FILE]

PostgreSQL databases are created as ``titanic_bench_perf_<hex>`` and dropped afterwards.
Not collected by pytest (the file name does not start with ``test_``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
from process_memory import PeakRss, group_rss_mb

from titanic_bench.stack.backend import mask_secrets
from titanic_bench.stack.server import EmbeddedServer

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Measurement:
    backend: str
    what: str
    seconds: float
    server_peak_mb: float
    detail: str = ""


def server_group_under(home: Path) -> int | None:
    """The process group of the embedded ``mlflow server`` whose artifacts live under ``home``."""
    for process in psutil.process_iter(["cmdline"], ad_value=None):
        argv = process.info["cmdline"] or []
        if argv[1:4] == ["-m", "mlflow", "server"] and any(str(home) in arg for arg in argv):
            try:
                return os.getpgid(process.pid)
            except ProcessLookupError:
                continue
    return None


def standalone_start(backend_uri: str, home: Path, label: str) -> Measurement:
    from titanic_bench.stack.backend import ensure_database

    ensure_database(backend_uri)
    server = EmbeddedServer(backend_uri, home / "artifacts", home / f"server-{label}.log")
    started = time.perf_counter()
    server.start()
    try:
        server.wait_ready()
        seconds = time.perf_counter() - started
        assert server.process is not None
        memory = group_rss_mb(server.process.pid)
    finally:
        server.stop()
    return Measurement(mask_secrets(backend_uri).split(":")[0], f"server start-up ({label})", seconds, memory)


def session(backend_uri: str, home: Path, workers: int) -> Measurement:
    env = {**os.environ, "TITANIC_BENCH_HOME": str(home), "TITANIC_BENCH_BACKEND_URI": backend_uri}
    env.pop("MLFLOW_TRACKING_URI", None)
    sampler = PeakRss(lambda: server_group_under(home), period=0.25)
    sampler.start()
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks", "-q", "-p", "no:cacheprovider", "-n", str(workers)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    sampler.stop()
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-300:]
    shown = mask_secrets(backend_uri)
    if result.returncode != 0:
        raise SystemExit(f"session -n {workers} on {shown} failed:\n{result.stdout[-3000:]}")
    return Measurement(shown.split(":")[0], f"session -n {workers}", seconds, sampler.peak_mb, summary)


def measure_backend(
    make_uri: Callable[[str], str], cleanup: Callable[[str], None], scratch: Path
) -> list[Measurement]:
    results = []
    for label in ("startup", "n1", "n4"):
        uri = make_uri(label)
        home = scratch / f"{uri.split(':')[0]}-{label}"
        try:
            if label == "startup":
                results.append(standalone_start(uri, home, "fresh store"))
                results.append(standalone_start(uri, home, "migrated store"))
            else:
                results.append(session(uri, home, 1 if label == "n1" else 4))
        finally:
            cleanup(uri)
    return results


def drop_pg_database(admin: str, uri: str) -> None:
    import psycopg2
    from psycopg2 import sql

    name = uri.rsplit("/", 1)[1]
    assert name.startswith("titanic_bench_perf_")
    connection = psycopg2.connect(f"{admin}/postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server without a database; its role must create databases",
    )
    parser.add_argument("--out", type=Path, help="also write the measurements as JSON here")
    args = parser.parse_args()
    token = secrets.token_hex(3)
    results: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="titanic-bench-perf-") as scratch:
        results += measure_backend(
            lambda label: f"sqlite:///{scratch}/sqlite-{label}/mlflow.db", lambda uri: None, Path(scratch)
        )
        results += measure_backend(
            lambda label: f"{args.pg}/titanic_bench_perf_{token}_{label}",
            lambda uri: drop_pg_database(args.pg, uri),
            Path(scratch),
        )
    print(f"{'backend':<22} {'what':<34} {'seconds':>8} {'server MB':>10}  detail")
    for m in results:
        print(f"{m.backend:<22} {m.what:<34} {m.seconds:>8.1f} {m.server_peak_mb:>10.0f}  {m.detail}")
    if args.out:
        args.out.write_text(json.dumps([asdict(m) for m in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
