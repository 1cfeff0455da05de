"""Where the harness keeps its state: one folder, everything else derived from it."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "TITANIC_BENCH_HOME"
DEFAULT_HOME = ".titanic-bench"
#: The session's reports, written to the reports folder and logged to the session run.
LEADERBOARD_MARKDOWN = "leaderboard.md"
LEADERBOARD_JSON = "leaderboard.json"
LEADERBOARD_PICTURE = "leaderboard.png"


@dataclass(frozen=True)
class StatePaths:
    """The state folder and the files the harness keeps in it."""

    root: Path

    @property
    def database(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def server_log(self) -> Path:
        return self.root / "mlflow-server.log"

    @property
    def session_log(self) -> Path:
        """MLflow's own output during a session (its logs, registration and run-link lines)."""
        return self.root / "session.log"

    def create(self) -> StatePaths:
        """Create the folders and check each can be written (an OSError says why not)."""
        for folder in (self.root, self.artifacts, self.reports):
            folder.mkdir(parents=True, exist_ok=True)
            # mkdir accepts a folder that exists but cannot be written: the server's log or
            # the reports would then fail later as an internal error.
            with tempfile.TemporaryFile(dir=folder):
                pass
        return self


def state_paths(home: str | os.PathLike[str] | None = None) -> StatePaths:
    """The state folder: ``home``, else ``$TITANIC_BENCH_HOME``, else ``./.titanic-bench``."""
    chosen = home or os.environ.get(HOME_ENV) or DEFAULT_HOME
    return StatePaths(Path(chosen).expanduser().resolve())
