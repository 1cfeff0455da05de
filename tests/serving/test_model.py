"""Finding, safely loading and hot-swapping the served model; what happens when that fails."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient
from sklearn.dummy import DummyClassifier

from tests.serving.conftest import ServeProcess
from tests.serving.helpers import (
    PASSENGER,
    SPECS,
    api_rows,
    get_json,
    offline,
    polled,
    register,
    started_client,
    tracking_to,
    wait_until,
)
from titanic_bench.data.loading import load_titanic
from titanic_bench.errors import ModelLoadError, UntrustedModelError
from titanic_bench.serving.app import FAST_FAILING_MLFLOW_ENV, ServeSettings, create_app
from titanic_bench.serving.model import ModelRef
from titanic_bench.stack.server import EmbeddedServer, free_port
from titanic_bench.tracking.models import load_skops_model


def settings_for(model_uri: str, tracking_uri: str, poll_seconds: float = 60.0) -> ServeSettings:
    return ServeSettings(model_uri=model_uri, tracking_uri=tracking_uri, poll_seconds=poll_seconds)


@pytest.fixture
def fast_failing_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAST_FAILING_MLFLOW_ENV.items():
        monkeypatch.setenv(name, value)  # what `titanic-bench serve` sets


# --- no model yet ------------------------------------------------------------------------


def test_without_a_champion_it_answers_503_then_picks_it_up(tracking_server: EmbeddedServer) -> None:
    name = "serve_test_late"
    with TestClient(create_app(settings_for(f"models:/{name}@champion", tracking_server.url, 0.2))) as client:
        wait_until(lambda: polled(client), "a poll")
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


@pytest.mark.usefixtures("fast_failing_mlflow")
def test_unreachable_tracking_server_is_the_503_reason() -> None:
    settings = settings_for("models:/any@champion", f"http://127.0.0.1:{free_port()}")
    with TestClient(create_app(settings)) as client:
        wait_until(lambda: polled(client), "a poll")
        response = client.post("/predict", json=PASSENGER)
        assert response.status_code == 503
        assert "Model not loaded: " in response.json()["detail"]
        assert "Connection refused" in response.json()["detail"]


def test_bad_model_uri_is_refused_with_the_forms_it_takes() -> None:
    with pytest.raises(ModelLoadError, match="models:/NAME@ALIAS"):
        ModelRef.parse("models:/titanic_survival")
    assert ModelRef.parse("models:/m@champion") == ModelRef("models:/m@champion", "m", "champion", None)
    assert ModelRef.parse("models:/m/3").version == "3"


# --- safe loading ------------------------------------------------------------------------


def test_pickled_model_is_never_loaded(tmp_path: Path) -> None:
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


# --- a failed refresh keeps the old version ----------------------------------------------


def register_pickle(tracking_uri: str, name: str) -> str:
    """A version saved with pickle, which the API refuses to load; returns its number."""
    model = DummyClassifier().fit(load_titanic().features, load_titanic().target)
    with tracking_to(tracking_uri), mlflow.start_run(run_name="serve-test pickle"):
        info = mlflow.sklearn.log_model(
            model, name="model", serialization_format="pickle", pip_requirements=["scikit-learn"]
        )
        return str(mlflow.register_model(info.model_uri, name).version)


def assert_still_serving(client: TestClient, version: str, reason: str) -> None:
    wait_until(
        lambda: (client.get("/health").json()["problem"] or "").startswith("still serving"), "a refresh"
    )
    health = client.get("/health").json()
    assert (health["status"], health["model_version"]) == ("ok", version)
    assert health["problem"].startswith(f"still serving version {version}; the refresh failed: ")
    assert reason in health["problem"]
    response = client.post("/predict", json=PASSENGER)
    assert (response.status_code, response.headers["X-Model-Version"]) == (200, version)


def test_a_deleted_alias_keeps_the_old_version_serving(tracking_server: EmbeddedServer) -> None:
    name = "serve_test_deleted_alias"
    served = register(tracking_server.url, SPECS["logistic_regression"], name)
    for client in started_client(
        create_app(settings_for(f"models:/{name}@champion", tracking_server.url, 0.2))
    ):
        MlflowClient(tracking_server.url).delete_registered_model_alias(name, "champion")
        assert_still_serving(client, served.version, "champion")


def test_a_version_that_cannot_be_loaded_keeps_the_old_one(tracking_server: EmbeddedServer) -> None:
    name = "serve_test_unloadable"
    served = register(tracking_server.url, SPECS["logistic_regression"], name)
    pickled = register_pickle(tracking_server.url, name)
    for client in started_client(
        create_app(settings_for(f"models:/{name}@champion", tracking_server.url, 0.2))
    ):
        MlflowClient(tracking_server.url).set_registered_model_alias(name, "champion", pickled)
        assert_still_serving(client, served.version, "saved as 'pickle'")


@pytest.mark.slow
@pytest.mark.usefixtures("fast_failing_mlflow")
def test_a_registry_outage_keeps_the_old_version(tmp_path: Path) -> None:
    server = EmbeddedServer(
        f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts", tmp_path / "log"
    ).start()
    try:
        server.wait_ready()
        served = register(server.url, SPECS["logistic_regression"], "serve_test_outage")
        app = create_app(settings_for("models:/serve_test_outage@champion", server.url, 0.2))
        for client in started_client(app):
            server.stop()
            assert_still_serving(client, served.version, "Connection refused")
    finally:
        server.stop()


# --- hot swap under load -----------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    row: int
    version: str
    probability: float


@dataclass
class Hammer:
    """Clients posting training rows to /predict until stopped. Each answer is recorded
    per client, and every failure too: a non-200 answer, a transport error, any exception."""

    url: str
    rows: list[dict[str, Any]]
    clients: int = 16
    answers: list[list[Answer]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Hammer:
        self.answers = [[] for _ in range(self.clients)]
        self.threads = [threading.Thread(target=self._work, args=(i,)) for i in range(self.clients)]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)
        self.failures += [f"{thread.name} still running" for thread in self.threads if thread.is_alive()]

    def _work(self, client: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30.0) as http:
            i = client
            while not self.stop.is_set():
                i = (i + 7) % len(self.rows)
                try:
                    response = http.post("/predict", json=self.rows[i])
                    if response.status_code != 200:
                        raise AssertionError(f"{response.status_code}: {response.text[:300]}")
                    answer = Answer(i, response.headers["X-Model-Version"], response.json()["probability"])
                except Exception as error:  # a failed request, whatever failed
                    self.failures.append(f"client {client}, row {i}: {error!r}")
                    continue
                self.answers[client].append(answer)

    def count(self, version: str) -> int:
        return sum(answer.version == version for answers in self.answers for answer in list(answers))


def answered_by(hammer: Hammer, version: str, at_least: int) -> bool:
    return hammer.count(version) >= at_least


@pytest.mark.slow
def test_hot_swaps_under_load_fail_no_request(
    tracking_server: EmbeddedServer, serve_process: Callable[..., ServeProcess]
) -> None:
    name = "serve_test_swap"
    specs = ("logistic_regression", "random_forest_baseline", "gradient_boosting_engineered", "svm")
    versions = [register(tracking_server.url, SPECS[specs[0]], name)]
    versions += [register(tracking_server.url, SPECS[spec], name, alias=None) for spec in specs[1:]]
    features = load_titanic().features
    rows = api_rows(features)
    served = serve_process(
        "--tracking-uri",
        tracking_server.url,
        "--model-uri",
        f"models:/{name}@champion",
        "--poll-seconds",
        "0.1",
    )
    wait_until(lambda: (get_json(f"{served.url}/health") or {}).get("model_loaded"), "the first version")
    registry = MlflowClient(tracking_server.url)
    with Hammer(served.url, rows) as hammer:
        wait_until(lambda: hammer.count(versions[0].version) >= 50, "answers before the swaps")
        for new in versions[1:]:  # three swaps
            registry.set_registered_model_alias(name, "champion", new.version)
            wait_until(partial(answered_by, hammer, new.version, 50), f"answers from version {new.version}")
    assert hammer.failures == []
    order = [version.version for version in versions]
    for client in hammer.answers:
        seen = [order.index(answer.version) for answer in client]
        assert seen == sorted(seen), "a client saw an older version after a newer one"
    assert {answer.version for client in hammer.answers for answer in client} == set(order)
    # Each answer is what the version it names predicts: no half-swapped model. (One row
    # alone and the same row in a batch of 891 may differ in the last bit: BLAS paths.)
    expected = {version.version: offline(version.model, features)[1] for version in versions}
    for answer in (answer for client in hammer.answers for answer in client):
        assert answer.probability == pytest.approx(expected[answer.version][answer.row], rel=1e-12, abs=1e-15)
