"""Run MLflow's own ``mlflow server`` command with its uvicorn spawn captured, and print as
JSON what it would have started: the command, the environment it adds for the child, and
how it initialised the stores. Run in a subprocess (the command changes ``os.environ`` and
installs signal handlers): ``python tests/mlflow_server_contract.py SERVER-ARGS...``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any
from unittest import mock

import mlflow.server
from mlflow.cli import cli


class _FinishedProcess:
    returncode = 0

    def poll(self) -> int:
        return 0

    def wait(self) -> int:
        return 0


def capture(server_args: list[str]) -> dict[str, Any]:
    before = dict(os.environ)
    captured: dict[str, Any] = {}

    def fake_exec_cmd(command: list[str], extra_env: dict[str, str], **_: Any) -> _FinishedProcess:
        child = {**os.environ, **extra_env}  # what _exec_cmd gives the child
        captured["command"] = command
        captured["environment"] = {k: v for k, v in child.items() if before.get(k) != v}
        return _FinishedProcess()

    with (
        mock.patch.object(mlflow.server, "_exec_cmd", fake_exec_cmd),
        mock.patch("mlflow.server.handlers.initialize_backend_stores") as initialize,
    ):
        cli.main(["server", *server_args], standalone_mode=False)
    captured["initialize_args"] = list(initialize.call_args.args)
    captured["initialize_kwargs"] = initialize.call_args.kwargs
    return captured


if __name__ == "__main__":
    print(json.dumps(capture(sys.argv[1:])))
