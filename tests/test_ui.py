"""``titanic-bench ui`` serves the stored state and leaves nothing behind on Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from benchproject import processes_mentioning

from titanic_bench.stack import probe


def test_ui_serves_the_state_folder_until_interrupted(tmp_path: Path) -> None:
    home = tmp_path / "state"
    process = subprocess.Popen(
        [sys.executable, "-m", "titanic_bench.cli", "ui", "--home", str(home), "--port", "0"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.match(r"MLflow UI: (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        assert probe(match.group(1)) is None
        assert (home / "mlflow.db").exists()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
    assert processes_mentioning(str(home)) == []
