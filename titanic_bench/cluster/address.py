"""What ``--bench-dask`` names: a local cluster the session starts, or a running scheduler.

Parsed when the options are resolved, so it imports nothing from Dask: a session that
does not ask for a cluster never loads it.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from titanic_bench.errors import OptionError

LOCAL = "local"
#: Dask's own comm schemes a scheduler address may use.
SCHEMES = ("tcp", "tls", "ws", "wss", "inproc", "ucx")
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


@dataclass(frozen=True)
class ClusterAddress:
    """A local cluster of ``workers`` processes on 127.0.0.1, or the ``scheduler`` at an address."""

    workers: int = 0
    scheduler: str = ""

    @property
    def is_local(self) -> bool:
        """Whether the session starts the cluster itself (on this machine's loopback)."""
        return not self.scheduler

    @property
    def label(self) -> str:
        return self.scheduler or f"{LOCAL}:{self.workers}"

    @property
    def on_loopback(self) -> bool:
        """Whether the scheduler, and so (as far as can be told before connecting) its
        workers, are on this machine's loopback."""
        return self.is_local or is_loopback_host(urlsplit(self.scheduler).hostname or "")

    def to_json(self) -> dict[str, object]:
        return {"workers": self.workers, "scheduler": self.scheduler}


def is_loopback_host(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_cluster_address(source: str, value: str) -> ClusterAddress:
    """``local``, ``local:N`` or ``SCHEME://HOST:PORT``; anything else is an OptionError."""
    text = value.strip()
    if text == LOCAL:
        return ClusterAddress(workers=os.cpu_count() or 1)
    match = re.fullmatch(rf"{LOCAL}:(\d+)", text)
    if match and int(match[1]) >= 1:
        return ClusterAddress(workers=int(match[1]))
    parts = urlsplit(text)
    if parts.scheme in SCHEMES and parts.hostname and not parts.path.strip("/"):
        return ClusterAddress(scheduler=text)
    raise OptionError(
        f"{source}={value!r} is not a Dask cluster: write local (one worker per core), local:N "
        "(N >= 1 workers), or a scheduler address such as tcp://scheduler:8786."
    )
