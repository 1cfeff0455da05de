"""Whether the cluster's workers can reach the session's tracking server.

Workers log their own runs, so a tracking URI that only this machine can reach (a
server on loopback, a local SQLite file or folder) would fail every task after its
training. The check runs before anything is submitted: on the scheduler's address
before connecting, and on the workers' addresses once connected.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from titanic_bench.cluster.address import ClusterAddress, is_loopback_host
from titanic_bench.errors import ClusterError
from titanic_bench.stack.backend import mask_secrets

HOW_TO = (
    "give the workers a server they can reach: start one on a routable address "
    "(mlflow server --host 0.0.0.0 --allowed-hosts HOST --serve-artifacts "
    "--backend-store-uri postgresql+psycopg2://... --artifacts-destination DIR) and pass "
    "--bench-tracking-uri http://HOST:5000 (or MLFLOW_TRACKING_URI), or run the cluster on "
    "this machine with --bench-dask local"
)


def local_only(tracking_uri: str) -> bool:
    """Whether only processes on this machine can use ``tracking_uri``."""
    parts = urlsplit(tracking_uri)
    if parts.scheme not in ("http", "https"):
        return True  # sqlite:, file: or a bare path: a file on this machine
    return is_loopback_host(parts.hostname or "")


def check_scheduler(tracking_uri: str, cluster: ClusterAddress) -> None:
    """Before connecting: a scheduler off this machine with a tracking URI only it can use."""
    if local_only(tracking_uri) and not cluster.on_loopback:
        raise ClusterError(
            f"the tracking URI {mask_secrets(tracking_uri)} is reachable only from this machine, "
            f"but the experiments would run on the workers of {cluster.scheduler}: {HOW_TO}."
        )


def check_workers(tracking_uri: str, workers: Iterable[str]) -> None:
    """Once connected: any worker off this machine with a tracking URI only it can use."""
    remote = sorted(address for address in workers if not is_loopback_host(urlsplit(address).hostname or ""))
    if local_only(tracking_uri) and remote:
        raise ClusterError(
            f"the tracking URI {mask_secrets(tracking_uri)} is reachable only from this machine, "
            f"but the Dask workers {', '.join(remote)} are not on its loopback: {HOW_TO}."
        )
