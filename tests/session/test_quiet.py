"""MLflow's own output goes to the session log: its loggers always, its prints inside the block."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from titanic_bench.session.quiet import MLFLOW_LOGGERS, mlflow_output_to, route_mlflow_logging


@pytest.fixture
def restored_mlflow_loggers() -> Iterator[None]:
    saved = {
        name: (logging.getLogger(name).handlers, logging.getLogger(name).propagate) for name in MLFLOW_LOGGERS
    }
    yield
    for name, (handlers, propagate) in saved.items():
        logging.getLogger(name).handlers, logging.getLogger(name).propagate = handlers, propagate


def test_mlflow_logs_prints_and_registration_lines_go_to_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restored_mlflow_loggers: None
) -> None:
    from mlflow.utils.logging_utils import eprint

    log = tmp_path / "state" / "session.log"
    handler = route_mlflow_logging(log)
    with mlflow_output_to(log):
        logging.getLogger("mlflow.store.model_registry").info("Waiting up to 300 seconds")
        eprint("Successfully registered model 'titanic_survival'.")  # type: ignore[no-untyped-call]
        sys.stdout.write("🏃 View run x at: http://127.0.0.1:1/#/experiments/1/runs/r\n")
    handler.flush()
    shown = capsys.readouterr()
    assert shown.out == shown.err == ""
    text = log.read_text()
    for line in (
        "INFO mlflow.store.model_registry: Waiting up to 300 seconds",
        "Successfully registered",
        "View run",
    ):
        assert line in text
    print("after")
    assert capsys.readouterr().out == "after\n"


def test_warnings_stay_warnings(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="matters"), mlflow_output_to(tmp_path / "session.log"):
        warnings.warn("this matters", UserWarning, stacklevel=1)
