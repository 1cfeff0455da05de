"""The serving API: endpoints, errors, safe loading, hot swap, parity, schema fuzzing.

Models are real: trained with the harness's specs, logged with skops to an
embedded MLflow server and registered, then loaded by the API from the registry.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import mlflow
import numpy as np
import pandas as pd
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from pydantic import TypeAdapter

from titanic_bench.champion import ModelLoadError, ModelRef, load_skops_model
from titanic_bench.data import INPUT_COLUMNS, load_titanic
from titanic_bench.evaluation import fit_and_score, holdout_split
from titanic_bench.experiments import EXPERIMENTS, ExperimentSpec
from titanic_bench.fast_path import compile_fast_path
from titanic_bench.serve import FAST_FAILING_MLFLOW_ENV, ServeSettings, create_app
from titanic_bench.serving_schema import (
    Passenger,
    PassengerRow,
    passenger_columns,
    passengers_frame,
    row,
    training_passengers,
)
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


def register(
    tracking_uri: str, spec: ExperimentSpec, name: str, alias: str | None = "champion"
) -> Registered:
    """Train ``spec``, log it with skops as the harness does, register it, set the alias."""
    data = load_titanic()
    evaluation = fit_and_score(spec, holdout_split(data))
    example = data.features.head(5)
    mlflow.set_tracking_uri(tracking_uri)
    with warnings.catch_warnings():
        # MLflow hints at integer columns; Pclass, SibSp and Parch are never missing.
        warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer column")
        signature = infer_signature(example, evaluation.model.predict(example))
    with mlflow.start_run(run_name=f"serve-test {spec.name}") as run:
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
    expected = offline(champion.model, passengers_frame([Passenger(**row) for row in rows]))[1]
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
    response = client.post("/predict/batch", json=[PASSENGER] * 51)
    assert response.status_code == 413
    assert "51 passengers, over the limit of 50" in response.json()["detail"]
    assert client.post("/predict/batch", json=[PASSENGER] * 50).status_code == 200


@pytest.mark.parametrize(
    "spec", ["logistic_regression", "gradient_boosting_engineered", "svm", "random_forest_engineered"]
)
def test_fast_path_equals_the_pipeline(spec: str) -> None:
    data = load_titanic()
    model = fit_and_score(SPECS[spec], holdout_split(data)).model
    columns = passenger_columns([row(p) for p in training_passengers()])
    fast = compile_fast_path(model, columns)
    assert fast is not None
    assert np.array_equal(fast(columns), model.predict_proba(pd.DataFrame(columns)))
    one = passenger_columns([row(Passenger(**PASSENGER))])
    assert np.array_equal(fast(one), model.predict_proba(pd.DataFrame(one)))


def test_fast_path_is_refused_for_other_shapes() -> None:
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier().fit(load_titanic().features, load_titanic().target)
    assert compile_fast_path(model, passenger_columns([row(p) for p in training_passengers()])) is None


def test_batch_rows_are_validated_exactly_like_passengers() -> None:
    # Batches are parsed as PassengerRow dicts for speed; the contract is Passenger's.
    as_model = Passenger.model_json_schema()
    as_row = TypeAdapter(PassengerRow).json_schema()
    for field in as_model["properties"].values():
        field.pop("default", None)  # a TypedDict key is absent rather than defaulted
    assert as_row["properties"] == as_model["properties"]
    assert as_row["required"] == as_model["required"]
    assert as_row["additionalProperties"] is False


def test_frame_has_the_training_columns_and_dtypes() -> None:
    frame = passengers_frame([Passenger(**PASSENGER)])
    training = load_titanic().features
    assert list(frame.columns) == list(INPUT_COLUMNS)
    for column in ("PassengerId", "Pclass", "Age", "SibSp", "Parch", "Fare"):
        assert frame[column].dtype == training[column].dtype, column
    assert math.isnan(frame.loc[0, "Cabin"])


# --- no model yet, safe loading ----------------------------------------------------------


def test_without_a_champion_it_answers_503_then_picks_it_up(tracking_server: EmbeddedServer) -> None:
    name = "serve_test_late"
    settings = ServeSettings(f"models:/{name}@champion", tracking_server.url, 0.2, 10)
    with TestClient(create_app(settings)) as client:
        wait_until(lambda: "start-up" not in (client.get("/health").json()["problem"] or ""), "a poll")
        health = client.get("/health").json()
        assert (health["status"], health["model_loaded"]) == ("no_model", False)
        assert name in health["problem"]
        for response in (client.post("/predict", json=PASSENGER), client.get("/model")):
            assert response.status_code == 503
            assert response.json()["detail"].startswith("Model not loaded: ")
            assert name in response.json()["detail"]
        late = register(tracking_server.url, SPECS["logistic_regression"], name)
        wait_until(lambda: client.get("/health").json()["model_loaded"], "the late champion")
        assert client.get("/health").json()["model_version"] == late.version
        assert client.post("/predict", json=PASSENGER).status_code == 200


def test_unreachable_tracking_server_is_the_503_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAST_FAILING_MLFLOW_ENV.items():
        monkeypatch.setenv(name, value)  # what `titanic-bench serve` sets
    settings = ServeSettings("models:/any@champion", f"http://127.0.0.1:{free_port()}", 60.0, 10)
    with TestClient(create_app(settings)) as client:
        wait_until(lambda: "start-up" not in (client.get("/health").json()["problem"] or ""), "a poll")
        response = client.post("/predict", json=PASSENGER)
        assert response.status_code == 503
        assert "Model not loaded: " in response.json()["detail"]
        assert "Connection" in response.json()["detail"] or "connect" in response.json()["detail"]


def test_bad_model_uri_is_refused_with_the_forms_it_takes() -> None:
    with pytest.raises(ModelLoadError, match="models:/NAME@ALIAS"):
        ModelRef.parse("models:/titanic_survival")
    assert ModelRef.parse("models:/m@champion") == ModelRef("models:/m@champion", "m", "champion", None)
    assert ModelRef.parse("models:/m/3").version == "3"


def test_pickled_model_is_never_loaded(tmp_path: Path) -> None:
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier().fit([[0], [1]], [0, 1])
    mlflow.sklearn.save_model(
        model, tmp_path / "m", serialization_format="pickle", pip_requirements=["scikit-learn"]
    )
    with pytest.raises(ModelLoadError, match="saved as 'pickle'; only 'skops'"):
        load_skops_model(tmp_path / "m")


def test_type_outside_the_allow_list_is_refused(tmp_path: Path) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    # The MLmodel file trusts numpy.polyval; our allow-list does not, and ours decides.
    model = make_pipeline(FunctionTransformer(np.polyval))
    mlflow.sklearn.save_model(
        model, tmp_path / "m", skops_trusted_types=["numpy.polyval"], pip_requirements=["scikit-learn"]
    )
    with pytest.raises(UntrustedModelError, match=r"numpy\.polyval"):
        load_skops_model(tmp_path / "m")


# --- hot swap under load -----------------------------------------------------------------


class Hammer:
    """Threads posting training rows to /predict until stopped, recording every answer."""

    def __init__(self, url: str, rows: list[dict[str, Any]], threads: int = 4) -> None:
        self.url, self.rows = url, rows
        self.answers: list[tuple[int, int, str, float | None]] = []  # row, status, version, probability
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._work, args=(i,)) for i in range(threads)]

    def _work(self, offset: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30.0) as http:
            i = offset
            while not self.stop.is_set():
                i = (i + 7) % len(self.rows)
                response = http.post("/predict", json=self.rows[i])
                probability = response.json().get("probability") if response.status_code == 200 else None
                self.answers.append(
                    (i, response.status_code, response.headers.get("X-Model-Version", ""), probability)
                )

    def versions(self) -> list[str]:
        return [answer[2] for answer in list(self.answers)]


def api_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Training rows as the API takes them: lower-case names, null for missing."""
    fields = ("Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Name", "Embarked", "Cabin", "Ticket")
    names = {field: field.lower() for field in fields}
    records = frame.rename(columns=names)[list(names.values())].astype(object)
    return json.loads(records.where(records.notna(), None).to_json(orient="records"))


@pytest.fixture
def live_app() -> Iterator[Callable[[FastAPI], str]]:
    """Serve an app with uvicorn in a thread of this process; yield a starter returning its URL."""
    import uvicorn

    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: FastAPI) -> str:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        wait_until(lambda: server.started, "uvicorn to start")
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(30)


def test_hot_swap_under_load_fails_no_request(
    tracking_server: EmbeddedServer, live_app: Callable[[FastAPI], str]
) -> None:
    name = "serve_test_swap"
    old = register(tracking_server.url, SPECS["logistic_regression"], name)
    new = register(tracking_server.url, SPECS["random_forest_baseline"], name, alias=None)
    features = load_titanic().features
    rows = api_rows(features)
    url = live_app(create_app(ServeSettings(f"models:/{name}@champion", tracking_server.url, 0.1, 10)))
    wait_until(lambda: httpx.get(f"{url}/health").json()["model_loaded"], "the first version")
    hammer = Hammer(url, rows)
    for thread in hammer.threads:
        thread.start()
    try:
        wait_until(lambda: len(hammer.answers) >= 40, "requests before the swap")
        MlflowClient(tracking_server.url).set_registered_model_alias(name, "champion", new.version)
        wait_until(lambda: hammer.versions().count(new.version) >= 40, "requests after the swap")
    finally:
        hammer.stop.set()
        for thread in hammer.threads:
            thread.join(60)
    assert {status for _, status, _, _ in hammer.answers} == {200}
    assert set(hammer.versions()) == {old.version, new.version}
    # Each answer is what the version it names predicts: no half-swapped model. (One row
    # alone and the same row in a batch of 891 may differ in the last bit: BLAS paths.)
    expected = {r.version: offline(r.model, passengers_frame([Passenger(**item) for item in rows]))[1]
                for r in (old, new)}  # fmt: skip
    for index, _, version, probability in hammer.answers:
        assert probability == pytest.approx(expected[version][index], rel=1e-12, abs=1e-15)


# --- serving parity ----------------------------------------------------------------------


def test_served_predictions_on_the_891_training_rows_equal_the_offline_model(
    tracking_server: EmbeddedServer, champion: Registered
) -> None:
    features = load_titanic().features
    rows = api_rows(features)
    survived, probability = offline(champion.model, features)
    settings = ServeSettings(f"models:/{champion.name}/{champion.version}", tracking_server.url, 60.0, 1000)
    for client in started_client(create_app(settings)):
        batch = client.post("/predict/batch", json=rows).json()
        single = [client.post("/predict", json=row).json() for row in rows]
    assert len(batch) == len(single) == 891
    assert [item["survived"] for item in batch] == survived.tolist()
    assert [item["probability"] for item in batch] == probability.tolist()  # bit for bit
    assert [item["survived"] for item in single] == survived.tolist()
    # One row alone may round differently in the last bit than inside a batch.
    assert [item["probability"] for item in single] == pytest.approx(probability.tolist(), rel=1e-12)


# --- schema fuzzing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/predict"), ("POST", "/predict/batch"), ("GET", "/health"), ("GET", "/model")],
)
def test_no_input_the_schema_allows_causes_a_server_error(client: TestClient, method: str, path: str) -> None:
    # schemathesis.pytest.from_fixture reads a private pytest attribute that pytest 9
    # removed, so the strategy is drawn here, from the schema of the app already running.
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operation = schema[path][method]

    @hypothesis.given(case=operation.as_strategy())
    @hypothesis.settings(max_examples=40, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
    def check(case: Any) -> None:
        case.call_and_validate()

    check()


# --- a real uvicorn process serving what a real benchmark session registered -------------

BENCH_FILE = """
import pytest

from titanic_bench.experiments import EXPERIMENTS
from titanic_bench.runner import assert_floors

CHEAP = [spec for spec in EXPERIMENTS if spec.name == "logistic_regression"]


@pytest.mark.parametrize("spec", CHEAP, ids=lambda spec: spec.name)
def test_experiment(spec, titanic_bench):
    assert_floors(titanic_bench.run(spec))
"""


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start ``python -m titanic_bench.serve`` in its own process group; stop the group after."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> str:
        port = free_port()
        log = (tmp_path / f"serve-{port}.log").open("wb")
        command = [sys.executable, "-m", "titanic_bench.serve", "--port", str(port), *args]
        processes.append(
            subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )
        return f"http://127.0.0.1:{port}"

    yield start
    for process in processes:
        stop_process_group(process.pid)
        process.wait()


def get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except OSError:
        return None


def test_uvicorn_process_serves_the_champion_of_a_benchmark_session(
    pytester: pytest.Pytester,
    tracking_server: EmbeddedServer,
    serve_process: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = "serve_test_session"
    monkeypatch.setenv("TITANIC_BENCH_HOME", str(pytester.path / "state"))
    pytester.makepyfile(**{"benchmarks/test_bench": BENCH_FILE})
    result = pytester.runpytest_subprocess(
        "benchmarks", "-p", "no:xdist", "--bench-mode", "connect",
        "--bench-tracking-uri", tracking_server.url, "--bench-registered-model", name, timeout=600,
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    registered = MlflowClient(tracking_server.url).get_model_version_by_alias(name, "champion")

    url = serve_process("--tracking-uri", tracking_server.url, "--model-uri", f"models:/{name}@champion")
    wait_until(lambda: (get_json(f"{url}/health") or {}).get("model_loaded"), "the served champion")
    assert get_json(f"{url}/health")["model_version"] == str(registered.version)
    described = get_json(f"{url}/model")
    assert (described["run_id"], described["spec"]) == (registered.tags["run_id"], "logistic_regression")
    assert described["session_id"] == registered.tags["session_id"]

    # The reference: the same version loaded by MLflow's own loader.
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    mlflow.set_tracking_uri(tracking_server.url)
    reference = mlflow.sklearn.load_model(f"models:/{name}/{registered.version}")
    features = load_titanic().features
    served = httpx.post(f"{url}/predict/batch", json=api_rows(features), timeout=60).json()
    survived, probability = offline(reference, features)
    assert [item["survived"] for item in served] == survived.tolist()
    assert [item["probability"] for item in served] == probability.tolist()


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_without_a_tracking_uri_it_runs_and_then_stops_an_embedded_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "embedded-home"
    monkeypatch.setenv("TITANIC_BENCH_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    port = free_port()
    command = [sys.executable, "-m", "titanic_bench.serve", "--port", str(port)]
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: "not found" in str((get_json(f"{url}/health") or {}).get("problem")), "the registry"
        )
        assert get_json(f"{url}/health")["model_loaded"] is False
        assert processes_mentioning(str(home)), "no embedded MLflow server was started"
        process.terminate()
        process.wait(60)
        wait_until(lambda: not processes_mentioning(str(home)), "the embedded server to stop", 30)
    finally:
        stop_process_group(process.pid)
        for pid in processes_mentioning(str(home)):
            stop_process_group(os.getpgid(pid))
