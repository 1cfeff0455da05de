"""The one-process launcher keeps ``mlflow server``'s contract with its uvicorn worker.

These tests compare the launcher with MLflow's own ``server`` command (its uvicorn spawn
captured, see mlflow_server_contract.py), so an MLflow upgrade that changes what the
server sets up fails here instead of silently misbehaving.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from titanic_bench import server_main
from titanic_bench.stack import LEAN_SERVER_ENV

CONTRACT_SCRIPT = Path(__file__).with_name("mlflow_server_contract.py")
BOOT_ID = "_MLFLOW_SERVER_BOOT_ID"
#: ``mlflow server`` options the launcher stands for (what the harness ran before it).
SERVER_ARGS = ["--serve-artifacts", "--host", "127.0.0.1", "--port", "5005", "--workers", "1"]


def mlflow_server_contract(backend: str, artifacts: Path) -> dict[str, Any]:
    # The environment the harness gives the server, minus anything that would change it.
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLFLOW_", "_MLFLOW_")) and key not in server_main.UNSUPPORTED_ENV
    }
    environment.update(LEAN_SERVER_ENV, MLFLOW_BACKEND_STORE_URI=backend, MLFLOW_DISABLE_TELEMETRY="true")
    result = subprocess.run(
        [sys.executable, str(CONTRACT_SCRIPT), *SERVER_ARGS, "--artifacts-destination", str(artifacts)],
        env=environment, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.splitlines()[-1]))


@pytest.fixture(scope="module")
def contract(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("contract")
    return mlflow_server_contract(f"sqlite:///{home / 'absent.db'}", home / "artifacts")


def test_environment_is_what_mlflow_server_gives_its_worker(contract: dict[str, Any]) -> None:
    backend = contract["environment"]["_MLFLOW_SERVER_FILE_STORE"]
    artifacts = contract["environment"]["_MLFLOW_SERVER_ARTIFACT_DESTINATION"]
    ours = server_main.mlflow_server_environment(backend, artifacts)
    theirs = contract["environment"]
    # A fresh id per boot on both sides; only its shape can match.
    assert re.fullmatch("[0-9a-f]{32}", ours.pop(BOOT_ID))
    assert re.fullmatch("[0-9a-f]{32}", theirs.pop(BOOT_ID))
    assert ours == theirs


def test_app_and_log_configuration_are_what_mlflow_server_runs(contract: dict[str, Any]) -> None:
    assert contract["command"] == [
        sys.executable, "-m", "uvicorn", "--log-config", str(server_main.log_config_path()),
        "--host", "127.0.0.1", "--port", "5005", "--workers", "1", server_main.APP,
    ]  # fmt: skip


def test_stores_are_initialised_as_mlflow_server_does(
    contract: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = contract["environment"]["_MLFLOW_SERVER_FILE_STORE"]
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(
        "mlflow.server.handlers.initialize_backend_stores", lambda *args, **kwargs: calls.append(args)
    )
    monkeypatch.setenv(
        "_MLFLOW_SERVER_ARTIFACT_ROOT", contract["environment"]["_MLFLOW_SERVER_ARTIFACT_ROOT"]
    )
    server_main.initialize_stores(backend)
    # The CLI passes workspace and read-replica stores as keywords; none are configured.
    assert [list(calls[0])] == [contract["initialize_args"]]
    assert all(value is None for value in contract["initialize_kwargs"].values())


def test_launcher_refuses_exactly_the_server_options_it_would_ignore() -> None:
    from mlflow.cli import server

    # Given on the command line, read by the app itself, or the backend we pass.
    covered = {
        "MLFLOW_BACKEND_STORE_URI", "MLFLOW_SERVE_ARTIFACTS", "MLFLOW_ARTIFACTS_DESTINATION",
        "MLFLOW_HOST", "MLFLOW_PORT", "MLFLOW_WORKERS", "MLFLOW_SERVER_ALLOWED_HOSTS",
        "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS", "MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE",
        "MLFLOW_SERVER_X_FRAME_OPTIONS",
    }  # fmt: skip
    read_by_mlflow_server = {param.envvar for param in server.params if param.envvar} - covered
    assert read_by_mlflow_server == set(server_main.UNSUPPORTED_ENV)


@pytest.mark.parametrize(
    ("name", "value"), [("MLFLOW_REGISTRY_STORE_URI", "sqlite:///r.db"), ("MLFLOW_ENABLE_WORKSPACES", "true")]
)
def test_an_ignored_server_option_stops_the_launcher(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit, match=f"{name} set in the environment"):
        server_main.check_environment()


def test_missing_backend_uri_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_BACKEND_STORE_URI", raising=False)
    with pytest.raises(SystemExit, match="MLFLOW_BACKEND_STORE_URI is empty or unset"):
        server_main.backend_uri_from_environment()
