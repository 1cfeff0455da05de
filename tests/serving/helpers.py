"""Helpers of the serving tests: real models in a registry, waits, passengers as clients send them."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import mlflow
import numpy as np
import pandas as pd
from fastapi import FastAPI
from fastapi.testclient import TestClient
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from titanic_bench.data.loading import load_titanic
from titanic_bench.ml.evaluation import fit_and_score, holdout_split
from titanic_bench.ml.experiments import EXPERIMENTS, ExperimentSpec
from titanic_bench.ml.trusted_types import trusted_types_for
from titanic_bench.serving.schema import Passenger, passenger_columns, row

SPECS = {spec.name: spec for spec in EXPERIMENTS}
PASSENGER = {"pclass": 3, "sex": "male", "age": 22.0, "sibsp": 1, "parch": 0, "fare": 7.25}
#: The CSV columns a client may send; the API's field is the lower-case name.
API_FIELDS = ("Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Name", "Embarked", "Cabin", "Ticket")
READY_SECONDS = 120.0
#: The installed console script, next to this interpreter.
TITANIC_BENCH = Path(sys.executable).parent / "titanic-bench"


@dataclass(frozen=True)
class Registered:
    name: str
    version: str
    model: Any  # the fitted pipeline, as trained: the offline reference


@contextmanager
def tracking_to(uri: str) -> Iterator[None]:
    """MLflow's fluent API on ``uri`` for a while; ``set_tracking_uri`` also writes the
    environment, which every later subprocess of this worker would inherit."""
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)  # type: ignore[arg-type]  # None unsets it
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)


def register(
    tracking_uri: str, spec: ExperimentSpec, name: str, alias: str | None = "champion"
) -> Registered:
    """Train ``spec``, log it with skops as the harness does, register it, set the alias."""
    data = load_titanic()
    evaluation = fit_and_score(spec, holdout_split(data))
    example = data.features.head(5)
    with warnings.catch_warnings():
        # MLflow hints at integer columns; Pclass, SibSp and Parch are never missing.
        warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer column")
        signature = infer_signature(example, evaluation.model.predict(example))
    with tracking_to(tracking_uri), mlflow.start_run(run_name=f"serve-test {spec.name}") as run:
        info = mlflow.sklearn.log_model(
            evaluation.model,
            name="model",
            signature=signature,
            pip_requirements=["scikit-learn"],
            skops_trusted_types=trusted_types_for(evaluation.model),
        )
        tags = {"spec": spec.name, "run_id": run.info.run_id, "data_digest": data.digest}
        tags |= {f"metric.{key}": f"{value:.6f}" for key, value in evaluation.metrics.items()}
        version = str(mlflow.register_model(info.model_uri, name, tags=tags).version)
    if alias:
        MlflowClient(tracking_uri).set_registered_model_alias(name, alias, version)
    return Registered(name, version, evaluation.model)


def wait_until(condition: Callable[[], Any], what: str, seconds: float = READY_SECONDS) -> None:
    """Poll ``condition``; the deadline only bounds a hang, it asserts no speed."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {seconds:.0f} s")
        time.sleep(0.05)


def started_client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        wait_until(lambda: client.get("/health").json()["model_loaded"], "the model to load")
        yield client


def polled(client: TestClient) -> bool:
    """Whether the watcher has asked the registry at least once."""
    return "start-up" not in (client.get("/health").json()["problem"] or "")


def get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except OSError:
        return None


def offline(model: Any, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    proba = model.predict_proba(frame)
    return proba.argmax(axis=1), proba[:, 1]


def api_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as the API takes them: lower-case names, null for missing."""
    records = frame.rename(columns=str.lower)[[field.lower() for field in API_FIELDS]].astype(object)
    return cast(
        list[dict[str, Any]], json.loads(records.where(records.notna(), None).to_json(orient="records"))
    )


def training_passengers() -> list[Passenger]:
    """The 891 passengers of the training set as the API would receive them."""
    return [Passenger(**item) for item in api_rows(load_titanic().features)]


def passengers_frame(passengers: Sequence[Passenger]) -> pd.DataFrame:
    """The frame the model gets for these passengers, as the API builds it."""
    return pd.DataFrame(passenger_columns([row(passenger) for passenger in passengers]))
