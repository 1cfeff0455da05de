"""The API's endpoints and answers: predictions, model description, bad input, parity, fuzzing."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import hypothesis
import numpy as np
import pandas as pd
import pytest
import schemathesis
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from tests.serving.helpers import (
    PASSENGER,
    Registered,
    api_rows,
    offline,
    passengers_frame,
    started_client,
)
from titanic_bench.data.loading import INPUT_COLUMNS, load_titanic
from titanic_bench.serving.app import ServeSettings, create_app
from titanic_bench.serving.schema import Passenger
from titanic_bench.stack.server import EmbeddedServer

BATCH_LIMIT = 1000
BODY_LIMIT = 8 * 1024 * 1024  # room for the 5 MB values below; the default follows the batch limit


@pytest.fixture(scope="module")
def client(tracking_server: EmbeddedServer, champion: Registered) -> Iterator[TestClient]:
    settings = ServeSettings(
        model_uri=f"models:/{champion.name}@champion",
        tracking_uri=tracking_server.url,
        poll_seconds=60.0,
        batch_limit=BATCH_LIMIT,
        body_limit=BODY_LIMIT,
    )
    yield from started_client(create_app(settings))


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
    survived, probability = offline(champion.model, passengers_frame([Passenger.model_validate(PASSENGER)]))
    assert body == {
        "survived": int(survived[0]),
        "probability": float(probability[0]),
        "prediction_text": "Survived" if survived[0] else "Did not survive",
    }
    assert body["survived"] == 0  # a 22-year-old third-class man
    assert response.headers["X-Model-Version"] == champion.version


def test_each_prediction_text_matches_its_class(client: TestClient) -> None:
    answers = client.post("/predict/batch", json=api_rows(load_titanic().features.head(BATCH_LIMIT))).json()
    texts = {answer["survived"]: answer["prediction_text"] for answer in answers}
    assert texts == {0: "Did not survive", 1: "Survived"}  # both classes occur, each with its text
    assert all(texts[answer["survived"]] == answer["prediction_text"] for answer in answers)
    assert all((answer["probability"] > 0.5) == (answer["survived"] == 1) for answer in answers)


def test_missing_age_and_fare_are_imputed(client: TestClient, champion: Registered) -> None:
    passenger = {key: value for key, value in PASSENGER.items() if key not in ("age", "fare")}
    body = client.post("/predict", json={**passenger, "embarked": None}).json()
    known = {"PassengerId": 0, "Pclass": 3, "Sex": "male", "SibSp": 1, "Parch": 0}
    frame = pd.DataFrame([{**dict.fromkeys(INPUT_COLUMNS, np.nan), **known}])
    assert body["probability"] == offline(champion.model, frame)[1][0]


def test_integral_floats_are_integers(client: TestClient) -> None:
    # JSON (and JSON Schema) do not tell 3 from 3.0.
    same = client.post("/predict", json={**PASSENGER, "pclass": 3.0, "sibsp": 1.0}).json()
    assert same == client.post("/predict", json=PASSENGER).json()


def test_optional_text_fields_are_accepted(client: TestClient) -> None:
    extra = {"name": "Braund, Mr. Owen Harris", "embarked": "S", "cabin": "C85", "ticket": "A/5 21171"}
    assert client.post("/predict", json={**PASSENGER, **extra}).status_code == 200


def test_batch_keeps_the_order(client: TestClient, champion: Registered) -> None:
    rows = [PASSENGER, {**PASSENGER, "sex": "female", "pclass": 1}, {**PASSENGER, "age": None}]
    response = client.post("/predict/batch", json=rows)
    assert response.status_code == 200
    expected = offline(champion.model, passengers_frame([Passenger.model_validate(row) for row in rows]))[1]
    assert [item["probability"] for item in response.json()] == expected.tolist()


def test_model_describes_the_version(
    client: TestClient, champion: Registered, tracking_server: EmbeddedServer
) -> None:
    body = client.get("/model").json()
    tags = MlflowClient(tracking_server.url).get_model_version(champion.name, champion.version).tags
    assert body["name"] == champion.name
    assert body["version"] == champion.version
    assert body["alias"] == "champion"
    assert body["run_id"] == tags["run_id"]
    assert body["spec"] == "logistic_regression"
    assert body["data_digest"] == tags["data_digest"]
    assert body["metrics"]["accuracy"] == float(tags["metric.accuracy"])
    assert body["fast_path"] is True


def test_docs_and_schema_are_served(client: TestClient) -> None:
    assert "swagger-ui" in client.get("/docs").text
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/predict", "/predict/batch", "/model"} <= set(paths)


# --- bad input ---------------------------------------------------------------------------


BAD_FIELDS = [
    ({"pclass": 4}, "pclass"),
    ({"pclass": 0}, "pclass"),
    ({"pclass": "3"}, "pclass"),
    ({"pclass": True}, "pclass"),
    ({"sex": "unknown"}, "sex"),
    ({"age": -1.0}, "age"),
    ({"age": 121.0}, "age"),
    ({"age": "old"}, "age"),
    ({"fare": -0.01}, "fare"),
    ({"sibsp": -1}, "sibsp"),
    ({"parch": -2}, "parch"),
    ({"sibsp": 1.5}, "sibsp"),
    ({"parch": True}, "parch"),
    ({"embarked": "X"}, "embarked"),
    ({"favourite_colour": "blue"}, "favourite_colour"),
]


@pytest.mark.parametrize(("change", "field"), BAD_FIELDS)
def test_bad_field_is_422_naming_it_and_its_value_once(
    client: TestClient, change: dict[str, Any], field: str
) -> None:
    response = client.post("/predict", json={**PASSENGER, **change})
    assert response.status_code == 422
    body = response.json()
    assert body["message"].startswith(f"body.{field}: ")
    assert body["message"].count("(got ") == 1
    assert [item["loc"][-1] for item in body["detail"]] == [field]


def test_a_class_that_is_true_is_explained_once(client: TestClient) -> None:
    body = client.post("/predict", json={**PASSENGER, "pclass": True}).json()
    assert body["message"] == "body.pclass: Input should be 1, 2 or 3 (got True)"


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


def test_malformed_batch_json_is_422(client: TestClient) -> None:
    response = client.post("/predict/batch", content=b"[{", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["message"].startswith("body: the request body is not valid JSON")


@pytest.mark.parametrize(("change", "field"), BAD_FIELDS)
def test_bad_field_in_a_batch_is_422_naming_its_row_and_field(
    client: TestClient, change: dict[str, Any], field: str
) -> None:
    # Batches are checked in bulk first; a refused one must still get pydantic's full answer.
    response = client.post("/predict/batch", json=[PASSENGER, {**PASSENGER, **change}])
    assert response.status_code == 422
    body = response.json()
    assert body["message"].startswith(f"body.1.{field}: ")
    assert [item["loc"] for item in body["detail"]] == [["body", 1, field]]


def test_bad_row_in_batch_names_its_index(client: TestClient) -> None:
    response = client.post("/predict/batch", json=[PASSENGER, {**PASSENGER, "age": 200.0}])
    assert response.status_code == 422
    assert response.json()["message"].startswith("body.1.age:")


def test_empty_batch_is_422(client: TestClient) -> None:
    response = client.post("/predict/batch", json=[])
    assert response.status_code == 422
    assert response.json()["message"].startswith("body:")


def test_batch_over_the_limit_is_413(client: TestClient) -> None:
    response = client.post("/predict/batch", json=[PASSENGER] * (BATCH_LIMIT + 1))
    assert response.status_code == 413
    assert f"{BATCH_LIMIT + 1} passengers, over the limit of {BATCH_LIMIT}" in response.json()["detail"]
    assert client.post("/predict/batch", json=[PASSENGER] * BATCH_LIMIT).status_code == 200


def test_a_batch_over_the_limit_is_counted_before_it_is_validated(client: TestClient) -> None:
    response = client.post("/predict/batch", json=[{**PASSENGER, "pclass": 4}] * (BATCH_LIMIT + 1))
    assert response.status_code == 413


@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
def test_a_huge_value_is_echoed_once_and_truncated(client: TestClient, path: str) -> None:
    passenger = {**PASSENGER, "name": "x" * 5_000_000}
    response = client.post(path, json=passenger if path == "/predict" else [PASSENGER, passenger])
    assert response.status_code == 422
    assert len(response.content) < 2_000
    echoed = re.findall("x{10,}", response.text)
    assert len(echoed) == 1 and len(echoed[0]) < 80
    assert "at most 200 characters (got 'xxxxxxxxxx" in response.json()["message"]
    assert "…" in response.json()["message"]


@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
def test_a_huge_field_name_is_echoed_once_and_truncated(client: TestClient, path: str) -> None:
    passenger = {**PASSENGER, "y" * 5_000_000: "blue"}
    response = client.post(path, json=passenger if path == "/predict" else [PASSENGER, passenger])
    assert response.status_code == 422
    assert len(response.content) < 2_000
    echoed = re.findall("y{10,}", response.text)
    assert len(echoed) == 1 and len(echoed[0]) < 80
    body = response.json()
    where = "body." if path == "/predict" else "body.1."
    assert body["message"].startswith(f"{where}{echoed[0]}…: Extra inputs are not permitted (got 'blue')")
    # The detail still points at the field, by its length instead of a second copy.
    assert body["detail"][0]["loc"][-1] == "<a name of 5000000 characters>"


def test_a_batch_of_many_bad_rows_lists_the_first_errors_and_counts_the_rest(client: TestClient) -> None:
    rows = [{**PASSENGER, "age": -float(i + 1)} for i in range(1000)]
    response = client.post("/predict/batch", json=rows)
    assert response.status_code == 422
    body = response.json()
    assert [item["loc"] for item in body["detail"]] == [["body", i, "age"] for i in range(20)]
    assert body["message"].startswith("body.0.age: Input should be greater than or equal to 0 (got -1.0)")
    assert body["message"].count("body.") == 20
    assert body["message"].endswith("; and 980 more errors")
    assert len(response.content) < 10_000


NON_FINITE = [("age", "NaN"), ("fare", "Infinity"), ("age", "-Infinity"), ("fare", "NaN")]


@pytest.mark.parametrize(("field", "literal"), NON_FINITE)
@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
def test_nan_and_infinity_literals_are_422_without_a_traceback(
    client: TestClient, caplog: pytest.LogCaptureFixture, path: str, field: str, literal: str
) -> None:
    passenger = f'{{"pclass": 3, "sex": "male", "sibsp": 0, "parch": 0, "{field}": {literal}}}'
    body = passenger if path == "/predict" else f"[{passenger}]"
    with caplog.at_level(logging.DEBUG):
        response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    where = f"body.{field}" if path == "/predict" else f"body.0.{field}"
    assert response.json()["message"].startswith(f"{where}: Input should be a finite number")
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR or record.exc_info]


# --- serving parity ----------------------------------------------------------------------


def test_served_predictions_on_the_891_training_rows_equal_the_offline_model(
    tracking_server: EmbeddedServer, champion: Registered
) -> None:
    features = load_titanic().features
    rows = api_rows(features)
    survived, probability = offline(champion.model, features)
    settings = ServeSettings(
        model_uri=f"models:/{champion.name}/{champion.version}",
        tracking_uri=tracking_server.url,
        poll_seconds=60.0,
        batch_limit=1000,
    )
    for client in started_client(create_app(settings)):
        batch = client.post("/predict/batch", json=rows).json()
        single = [client.post("/predict", json=row).json() for row in rows]
    assert len(batch) == len(single) == 891
    assert [item["survived"] for item in batch] == survived.tolist()
    assert [item["probability"] for item in batch] == probability.tolist()  # bit for bit
    assert [item["survived"] for item in single] == survived.tolist()
    # One row alone may round differently in the last bit than inside a batch.
    assert [item["probability"] for item in single] == pytest.approx(probability.tolist(), rel=1e-12)


def test_without_the_fast_path_the_pipeline_answers_alone(
    tracking_server: EmbeddedServer, champion: Registered
) -> None:
    features = load_titanic().features
    settings = ServeSettings(
        model_uri=f"models:/{champion.name}/{champion.version}",
        tracking_uri=tracking_server.url,
        batch_limit=1000,
        fast_path=False,
    )
    for client in started_client(create_app(settings)):
        assert client.get("/model").json()["fast_path"] is False
        batch = client.post("/predict/batch", json=api_rows(features)).json()
        refused = client.post("/predict/batch", json=[PASSENGER, {**PASSENGER, "sex": "x"}])
    assert [item["probability"] for item in batch] == offline(champion.model, features)[1].tolist()
    assert refused.status_code == 422 and refused.json()["message"].startswith("body.1.sex: ")


# --- schema fuzzing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/predict"), ("POST", "/predict/batch"), ("GET", "/health"), ("GET", "/model")],
)
def test_inputs_drawn_from_the_schema_cause_no_server_error(
    client: TestClient, method: str, path: str
) -> None:
    # schemathesis.pytest.from_fixture reads a private pytest attribute that pytest 9
    # removed, so the strategy is drawn here, from the schema of the app already running.
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operation = schema[path][method]

    @hypothesis.given(case=operation.as_strategy())
    @hypothesis.settings(max_examples=40, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
    def check(case: Any) -> None:
        case.call_and_validate()

    check()
