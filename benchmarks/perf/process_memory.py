"""Memory of a server's process group, for the perf scripts (psutil: Linux and macOS alike)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import suppress

import psutil


def group_rss_mb(leader: int) -> float:
    """Summed resident memory of the process ``leader`` and all its descendants, in MiB.

    The embedded server is a group leader whose members are all its descendants
    (``mlflow server`` and its uvicorn worker), so this is the group's memory.
    """
    try:
        root = psutil.Process(leader)
        members = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for member in members:
        with suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += member.memory_info().rss
    return total / 2**20


class PeakRss(threading.Thread):
    """Samples :func:`group_rss_mb` of the group ``find()`` names every ``period`` s, keeping the peak."""

    def __init__(self, find: Callable[[], int | None], period: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.find, self.period, self.peak_mb, self.stopped = find, period, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.period):
            self.sample()

    def sample(self) -> None:
        leader = self.find()
        if leader is not None:
            self.peak_mb = max(self.peak_mb, group_rss_mb(leader))

    def stop(self) -> float:
        """Stop sampling, after one last sample; the peak in MiB."""
        self.stopped.set()
        self.join()
        self.sample()
        return self.peak_mb
