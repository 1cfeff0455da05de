"""What reproducing a run takes: code version, interpreter, packages, machine.

Computed once per session by the controller and shipped to workers, so every run
of a session records the same facts, and ``log_model`` gets explicit pip
requirements instead of inferring them (~5 s per model).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

#: Distributions a saved model needs to load and predict, pinned at their
#: installed versions in every model's requirements.
MODEL_DISTRIBUTIONS: tuple[str, ...] = ("mlflow", "scikit-learn", "numpy", "pandas", "scipy", "skops")
#: Distributions whose versions can change a result, recorded with every run.
RECORDED_DISTRIBUTIONS: tuple[str, ...] = (*MODEL_DISTRIBUTIONS, "matplotlib", "titanic-bench")


def distribution_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def model_requirements() -> list[str]:
    """Pinned pip requirements for every logged model."""
    versions = {name: distribution_version(name) for name in MODEL_DISTRIBUTIONS}
    return [f"{name}=={version}" for name, version in versions.items() if version]


def git_state(folder: Path) -> dict[str, Any]:
    """Commit and dirtiness of the git checkout holding ``folder``; empty when there is none."""

    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


def describe(folder: Path) -> dict[str, Any]:
    """The environment record logged as ``environment.json`` with every run."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "packages": {name: distribution_version(name) for name in RECORDED_DISTRIBUTIONS},
        "git": git_state(folder),
    }
