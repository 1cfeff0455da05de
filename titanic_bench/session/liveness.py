"""Whether the controller of a session still runs, from the tag its session run carries.

A session whose process died (killed, its machine rebooted, its server gone) leaves its
runs RUNNING for good. The tag names the controller's host, pid and start time: on
the same host a later session can tell whether that process is still the one; a
session of another host is taken as alive until :data:`STALE_AFTER` has passed.
"""

from __future__ import annotations

import json
import os
import socket
import time

import psutil

#: A session of another host still RUNNING after this long is taken to be dead.
STALE_AFTER = 24 * 3600.0


def this_controller() -> str:
    """The tag value for this process."""
    started = psutil.Process(os.getpid()).create_time()
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": started})


def controller_alive(tag: str) -> bool:
    """Whether the controller ``tag`` names may still be running (unknown counts as alive)."""
    try:
        owner = json.loads(tag)
        host, pid, started = str(owner["host"]), int(owner["pid"]), float(owner["started"])
    except (ValueError, KeyError, TypeError):
        return True
    if host != socket.gethostname():
        return time.time() - started < STALE_AFTER
    try:
        return bool(abs(psutil.Process(pid).create_time() - started) < 1.0)
    except psutil.NoSuchProcess:
        return False
