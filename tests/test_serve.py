"""The serving API: endpoints, errors, safe loading, hot swap, parity, schema fuzzing.

Models are real: trained with the harness's specs, logged with skops to an
embedded MLflow server and registered, then loaded by the API from the registry.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from schemathesis.checks import not_a_server_error

from titanic_bench.champion import LoadedModel, ModelLoadError, ModelRef, load_skops_model
from titanic_bench.data import INPUT_COLUMNS, load_titanic
from titanic_bench.evaluation import fit_and_score, holdout_split
from titanic_bench.experiments import EXPERIMENTS, ExperimentSpec
from titanic_bench.serve import ServeSettings, create_app
from titanic_bench.serving_schema import Passenger, passengers_frame
from titanic_bench.stack import EmbeddedServer, free_port, stop_process_group
from titanic_bench.trusted_types import UntrustedModelError, trusted_types_for

SPECS = {spec.name: spec for spec in EXPERIMENTS}
PASSENGER = {"pclass": 3, "sex": "male", "age": 22.0, "sibsp": 1, "parch": 0, "fare": 7.25}
READY_SECONDS = 120.0


# --- models in a registry ---------------------------------------------------------------


@dataclass(frozen=True)
class Registered:
    name: str
    version: str
    model: Any  # the fitted pipeline, as trained: the offline reference


def register(tracking_uri: str, spec: ExperimentSpec, name: str, alias: str | None = "champion") -> Registered:
    """Train ``spec``, log it with skops as the harness does, register it, set the alias."""
    data = load_titanic()
    evaluation = fit_and_score(spec, holdout_split(data))
    example = data.features.head(5)
    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run(run_name=f"serve-test {spec.name}") as run:
        info = mlflow.sklearn.log_model(
            evaluation.model,
            name="model",
            signature=infer_signature(example, evaluation.model.predict(example)),
            pip_requirements=["scikit-learn"],
            skops_trusted_types=trusted_types_for(evaluation.model),
        )
    tags = {"spec": spec.name, "run_id": run.info.run_id, "data_digest": data.digest}
    tags |= {f"metric.{key}": f"{value:.6f}" for key, value in evaluation.metrics.items()}
    version = str(mlflow.register_model(info.model_uri, name, tags=tags).version)
    if alias:
        MlflowClient(tracking_uri).set_registered_model_alias(name, alias, version)
    return Registered(name, version, evaluation.model)


@pytest.fixture(scope="module")
def champion(tracking_server: EmbeddedServer) -> Registered:
    return register(tracking_server.url, SPECS["logistic_regression"], "serve_test_champion")


def wait_until(condition: Callable[[], bool], what: str, seconds: float = READY_SECONDS) -> None:
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


@pytest.fixture(scope="module")
def client(tracking_server: EmbeddedServer, champion: Registered) -> Iterator[TestClient]:
    settings = ServeSettings(f"models:/{champion.name}@champion", tracking_server.url, 60.0, 50)
    yield from started_client(create_app(settings))


def offline(model: Any, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    proba = model.predict_proba(frame)
    return proba.argmax(axis=1), proba[:, 1]


# --- endpoints ---------------------------------------------------------------------------


def test_health_names_the_served_model(client: TestClient, champion: Registered) -> None:
    body = client.get("/health").json()
    assert body == {
        "status": "ok",
        "model_loaded": True,
        "model_name": champion.name,
        "model_version": champion.version,
        "model_alias": "champion",
        "model_uri": f"models:/{champion.name}/{champion.version}",
        "problem": None,
    }


def test_predict_one_passenger(client: TestClient, champion: Registered) -> None:
    response = client.post("/predict", json=PASSENGER)
    assert response.status_code == 200
    body = response.json()
    survived, probability = offline(champion.model, passengers_frame([Passenger(**PASSENGER)]))
    assert body == {
        "survived": int(survived[0]),
        "probability": pytest.approx(float(probability[0]), abs=0),
        "prediction_text": "Survived" if survived[0] else "Did not survive",
    }
    assert body["survived"] == 0  # a 22-year-old third-class man
    assert response.headers["X-Model-Version"] == champion.version


def test_predict_texts_match_the_class(client: TestClient) -> None:
    woman = {**PASSENGER, "pclass": 1, "sex": "female", "age": 30.0, "fare": 80.0}
    body = client.post("/predict", json=woman).json()
    assert body["survived"] == 1
    assert body["prediction_text"] == "Survived"
    assert body["probability"] > 0.5


def test_missing_age_and_fare_are_imputed(client: TestClient, champion: Registered) -> None:
    passenger = {key: value for key, value in PASSENGER.items() if key not in ("age", "fare")}
    body = client.post("/predict", json={**passenger, "embarked": None}).json()
    frame = pd.DataFrame([{**dict.fromkeys(INPUT_COLUMNS, np.nan), "PassengerId": 0, "Pclass": 3,
                           "Sex": "male", "SibSp": 1, "Parch": 0}])  # fmt: skip
    assert body["probability"] == offline(champion.model, frame)[1][0]


def test_optional_text_fields_are_accepted(client: TestClient) -> None:
    extra = {"name": "Braund, Mr. Owen Harris", "embarked": "S", "cabin": "C85", "ticket": "A/5 21171"}
    assert client.post("/predict", json={**PASSENGER, **extra}).status_code == 200


def test_batch_keeps_the_order(client: TestClient, champion: Registered) -> None:
    rows = [PASSENGER, {**PASSENGER, "sex": "female", "pclass": 1}, {**PASSENGER, "age": None}]
    response = client.post("/predict/batch", json=rows)
    assert response.status_code == 200
    expected = offline(champion.model, passengers_frame([Passenger(**row) for row in rows]))[1]
    assert [item["probability"] for item in response.json()] == expected.tolist()


def test_model_describes_the_version(client: TestClient, champion: Registered) -> None:
    body = client.get("/model").json()
    tags = MlflowClient(os.environ.get("MLFLOW_TRACKING_URI")).get_model_version(champion.name, champion.version).tags
    assert body["name"] == champion.name
    assert body["version"] == champion.version
    assert body["alias"] == "champion"
    assert body["run_id"] == tags["run_id"]
    assert body["spec"] == "logistic_regression"
    assert body["data_digest"] == tags["data_digest"]
    assert body["metrics"]["accuracy"] == float(tags["metric.accuracy"])


def test_docs_and_schema_are_served(client: TestClient) -> None:
    assert "swagger-ui" in client.get("/docs").text
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/predict", "/predict/batch", "/model"} <= set(paths)


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"pclass": 4}, "pclass"),
        ({"pclass": 0}, "pclass"),
        ({"pclass": "3"}, "pclass"),
        ({"sex": "unknown"}, "sex"),
        ({"age": -1.0}, "age"),
        ({"age": 121.0}, "age"),
        ({"age": "old"}, "age"),
        ({"fare": -0.01}, "fare"),
        ({"sibsp": -1}, "sibsp"),
        ({"parch": -2}, "parch"),
        ({"sibsp": 1.5}, "sibsp"),
        ({"embarked": "X"}, "embarked"),
        ({"favourite_colour": "blue"}, "favourite_colour"),
    ],
)
def test_bad_field_is_422_naming_it(client: TestClient, change: dict[str, Any], field: str) -> None:
    response = client.post("/predict", json={**PASSENGER, **change})
    assert response.status_code == 422
    body = response.json()
    assert f"body.{field}" in body["message"]
    assert [item["loc"][-1] for item in body["detail"]] == [field]


@pytest.mark.parametrize("field", ["pclass", "sex", "sibsp", "parch"])
def test_missing_required_field_is_422(client: TestClient, field: str) -> None:
    passenger = {key: value for key, value in PASSENGER.items() if key != field}
    response = client.post("/predict", json=passenger)
    assert response.status_code == 422
    assert response.json()["message"] == f"body.{field}: field required"


def test_malformed_json_is_422(client: TestClient) -> None:
    response = client.post("/predict", content=b'{"pclass": 3,', headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["message"]


def test_bad_row_in_batch_names_its_index(client: TestClient) -> None:
    response = client.post("/predict/batch", json=[PASSENGER, {**PASSENGER, "age": 200.0}])
    assert response.status_code == 422
    assert response.json()["message"].startswith("body.1.age:")


def test_empty_batch_is_422(client: TestClient) -> None:
    response = client.post("/predict/batch", json=[])
    assert response.status_code == 422
    assert response.json()["message"].startswith("body:")


def test_batch_over_the_limit_is_413(client: TestClient) -> None:
    response = client.post("/predict/batch", json=[PASSENGER] * 51)
    assert response.status_code == 413
    assert "51 passengers, over the limit of 50" in response.json()["detail"]
    assert client.post("/predict/batch", json=[PASSENGER] * 50).status_code == 200


def test_frame_has_the_training_columns_and_dtypes() -> None:
    frame = passengers_frame([Passenger(**PASSENGER)])
    training = load_titanic().features
    assert list(frame.columns) == list(INPUT_COLUMNS)
    for column in ("PassengerId", "Pclass", "Age", "SibSp", "Parch", "Fare"):
        assert frame[column].dtype == training[column].dtype, column
    assert math.isnan(frame.loc[0, "Cabin"])
