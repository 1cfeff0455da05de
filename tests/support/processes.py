"""The processes a test leaves behind, found with psutil (so the checks run on macOS too).

Zombies are left out: a zombie has exited and holds no port, file or memory, and on
Linux its command line reads as empty, so no check by command line ever saw one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil

from titanic_bench.stack.server import stop_process_group


@dataclass(frozen=True)
class FoundProcess:
    pid: int
    pgid: int
    argv: tuple[str, ...]

    @property
    def command_line(self) -> str:
        return " ".join(self.argv)


def live_processes() -> list[FoundProcess]:
    """Every live process this user may read; one that exits while being read is skipped."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"], ad_value=None):
        if process.info["status"] in (None, psutil.STATUS_ZOMBIE) or not process.info["cmdline"]:
            continue
        try:
            pgid = os.getpgid(process.pid)
        except ProcessLookupError:
            continue
        found.append(FoundProcess(process.pid, pgid, tuple(process.info["cmdline"])))
    return found


def processes_mentioning(text: str) -> list[FoundProcess]:
    """Live processes whose command line contains ``text`` (e.g. a state folder)."""
    return [process for process in live_processes() if text in process.command_line]


def group_members(pgid: int) -> list[FoundProcess]:
    """Live processes of the process group ``pgid``."""
    return [process for process in live_processes() if process.pgid == pgid]


def stop_groups_mentioning(text: str) -> None:
    """Stop the whole process group of every process mentioning ``text`` (test clean-up),
    never the test's own group."""
    for pgid in {process.pgid for process in processes_mentioning(text)} - {os.getpgrp()}:
        stop_process_group(pgid, grace=5.0)


def processes_with_environment(name: str, value: str) -> list[FoundProcess]:
    """Live processes whose environment has ``name=value``: what a session started, even
    a process whose command line names nothing of it (a Dask worker spawned by multiprocessing)."""
    found = []
    for process in live_processes():
        try:
            environment = psutil.Process(process.pid).environ()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if environment.get(name) == value:
            found.append(process)
    return found
