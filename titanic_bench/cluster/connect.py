"""The session's Dask cluster: a LocalCluster started for the session, or a running scheduler.

Dask is imported only here and in :mod:`titanic_bench.cluster.submission`, and only in a
session given ``--bench-dask``.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING

from titanic_bench.cluster.address import ClusterAddress
from titanic_bench.errors import ClusterError
from titanic_bench.stack.server import Retry

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

#: What --bench-dask needs beyond the harness's own dependencies: the ``dask`` extra.
DASK_MODULES = ("dask", "distributed", "cloudpickle")
#: Seconds one attempt to reach a scheduler may take (Dask retries within it).
ATTEMPT_TIMEOUT = 3.0
#: Seconds a running scheduler may take to have at least one worker.
WORKERS_TIMEOUT = 60.0
LOOPBACK = "127.0.0.1"


def require_dask() -> None:
    """One line, not an ImportError, when the ``dask`` extra is not installed."""
    missing = [name for name in DASK_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ClusterError(
            f"--bench-dask needs {', '.join(missing)}, which are not installed: "
            "pip install 'titanic-bench[dask]' (the dev extra includes it)."
        )


def start_local(workers: int) -> LocalCluster:
    """``workers`` single-threaded worker processes and a scheduler, on loopback only, no dashboard."""
    from distributed import LocalCluster

    try:
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host=LOOPBACK,
            scheduler_port=0,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    except (OSError, TimeoutError) as error:
        raise ClusterError(f"the local Dask cluster of {workers} workers did not start: {error}.") from None


def connect(scheduler: str, retry: Retry, sleep: Callable[[float], None] = time.sleep) -> Client:
    """A client of the scheduler at ``scheduler``; a ClusterError naming it once ``retry`` runs out."""
    from distributed import Client

    error: BaseException | None = None
    for delay in [*retry.delays(), None]:
        try:
            return Client(scheduler, timeout=ATTEMPT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError) as failure:
            error = failure
        if delay is not None:
            sleep(delay)
    raise ClusterError(
        f"the Dask scheduler at {scheduler} is unreachable after {retry.attempts} attempts "
        f"({ATTEMPT_TIMEOUT:.0f} s each, {sum(retry.delays()):g} s apart in all); last error: {error}. "
        "Start it (dask scheduler; dask worker ADDRESS), fix --bench-dask / TITANIC_BENCH_DASK, "
        "or use --bench-dask local."
    )


class Cluster:
    """The client the session submits through, and the local cluster when the session owns one."""

    def __init__(self, address: ClusterAddress, client: Client, local: LocalCluster | None = None) -> None:
        self.address = address
        self.client = client
        self.local = local

    @classmethod
    def open(cls, address: ClusterAddress, retry: Retry) -> Cluster:
        require_dask()
        if address.is_local:
            local = start_local(address.workers)
            try:
                return cls(address, _client_of(local), local)
            except BaseException:
                local.close()
                raise
        client = connect(address.scheduler, retry)
        try:
            client.wait_for_workers(1, timeout=WORKERS_TIMEOUT)
        except (OSError, TimeoutError):
            client.close()
            raise ClusterError(
                f"the Dask scheduler at {address.scheduler} has no worker after {WORKERS_TIMEOUT:.0f} s: "
                f"start some with dask worker {address.scheduler} --nworkers N."
            ) from None
        return cls(address, client)

    def workers(self) -> list[str]:
        return sorted(self.client.scheduler_info(n_workers=-1)["workers"])

    def check(self, tracking_uri: str) -> None:
        """Stop before submitting if a worker cannot reach the server or runs other versions."""
        from titanic_bench.cluster.reachability import check_workers
        from titanic_bench.cluster.versions import check_versions, local_versions

        check_workers(tracking_uri, self.workers())
        check_versions(local_versions(), self.client.run(local_versions))

    def close(self) -> None:
        """Close the client, and stop the local cluster's workers and scheduler."""
        with suppress(Exception):  # closing after an interrupt may race Dask's own teardown
            self.client.close()
        if self.local is not None:
            with suppress(Exception):
                self.local.close()
            self.local = None


def _client_of(local: LocalCluster) -> Client:
    from distributed import Client

    return Client(local, set_as_default=False)
