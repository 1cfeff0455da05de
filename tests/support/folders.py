"""A folder that exists but cannot be written, for the tests of the state folder's checks."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.ci import unavailable


@contextmanager
def read_only_folder(folder: Path) -> Iterator[Path]:
    """``folder``, created, that this process cannot write into while the block runs.

    Permission bits do not stop root (as CI runs), so for root the folder is made
    immutable with chattr, which needs a file system that supports it (ext4, xfs, btrfs).
    """
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        unavailable("chattr is needed to make a folder read-only for root")
    made = subprocess.run([chattr, "+i", str(folder)], capture_output=True, text=True)
    if made.returncode != 0:
        unavailable(f"chattr +i failed on {folder}: {made.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)
