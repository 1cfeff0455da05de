"""tox and the README's virtualenv share the project root: either may come first.

tox 4.67 writes a PEP 832 redirect *file* named ``.venv`` into the project root after a
run unless ``venv_redirect = false``; ``python3 -m venv .venv`` then fails. Each order is
run in a fresh git repository holding the project's own tox.ini, pyproject.toml and
.gitignore; ``--skip-pkg-install`` keeps it to creating the environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def project(folder: Path) -> Path:
    folder.mkdir()
    for name in ("tox.ini", "pyproject.toml", ".gitignore"):
        shutil.copy(ROOT / name, folder / name)
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    return folder


def run(folder: Path, *command: str) -> None:
    # Under `tox -e tests` the outer tox's variables (TOX_WORK_DIR...) must not steer the inner one.
    env = {key: value for key, value in os.environ.items() if not key.startswith("TOX_")}
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{command}: {result.stdout[-2000:]}\n{result.stderr[-2000:]}"


def tox_lint(folder: Path) -> None:
    run(folder, sys.executable, "-m", "tox", "-e", "lint", "--notest", "--skip-pkg-install")


def readme_venv(folder: Path) -> None:
    # The README's `python3 -m venv .venv`; pip is left out, its install is not in question here.
    run(folder, sys.executable, "-m", "venv", "--without-pip", ".venv")


def untracked(folder: Path) -> list[str]:
    status = subprocess.run(["git", "status", "--porcelain"], cwd=folder, capture_output=True, text=True)
    return [line for line in status.stdout.splitlines() if line.startswith("??")]


@pytest.mark.slow
def test_tox_first_then_the_readme_virtualenv(tmp_path: Path) -> None:
    folder = project(tmp_path / "project")
    tox_lint(folder)
    assert not (folder / ".venv").exists()
    readme_venv(folder)
    assert (folder / ".venv" / "pyvenv.cfg").is_file()
    assert untracked(folder) == ["?? .gitignore", "?? pyproject.toml", "?? tox.ini"]


@pytest.mark.slow
def test_the_readme_virtualenv_first_then_tox(tmp_path: Path) -> None:
    folder = project(tmp_path / "project")
    readme_venv(folder)
    tox_lint(folder)
    assert (folder / ".venv" / "pyvenv.cfg").is_file()
    assert untracked(folder) == ["?? .gitignore", "?? pyproject.toml", "?? tox.ini"]
