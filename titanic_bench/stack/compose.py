"""Compose mode: bring up the docker compose stack's tracking services and find its URL."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from titanic_bench.errors import StackError

COMPOSE_SERVICES = ("postgres", "mlflow")


def compose_up(project_dir: Path, services: Sequence[str] = COMPOSE_SERVICES) -> str:
    """``docker compose up -d --wait`` the tracking services; return the server's URL."""
    try:
        check = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True
        )
    except FileNotFoundError:
        check = subprocess.CompletedProcess([], 127, "", "the docker command is not installed")
    if check.returncode != 0:
        reason = (check.stderr or check.stdout).strip().splitlines()
        raise StackError(
            "compose mode needs a running Docker engine, but `docker info` failed: "
            f"{reason[-1] if reason else 'no output'}. Start Docker, or use "
            "--bench-mode embedded (the default) to run without it."
        )
    result = subprocess.run(
        ["docker", "compose", "up", "-d", "--wait", *services],
        cwd=project_dir,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise StackError(
            f"`docker compose up -d --wait {' '.join(services)}` failed in {project_dir}:\n"
            f"{result.stderr.strip()[-2000:]}"
        )
    return f"http://localhost:{published_port(project_dir, 'mlflow', 5000, 'MLFLOW_PORT')}"


def published_port(project_dir: Path, service: str, port: int, env: str) -> str:
    """The host port compose published ``service``'s ``port`` on.

    Asked of compose itself, since the port variable ``env`` may be set in .env, which
    this process never reads; the environment, then ``port``, are only fallbacks.
    """
    result = subprocess.run(
        ["docker", "compose", "port", service, str(port)], cwd=project_dir, capture_output=True, text=True
    )
    # "0.0.0.0:5050", possibly followed by an IPv6 line "[::]:5050".
    lines = result.stdout.split() if result.returncode == 0 else []
    published = lines[0].rsplit(":", 1)[-1] if lines else ""
    return published if published.isdigit() else os.environ.get(env, str(port))
