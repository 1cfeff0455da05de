"""A password in the tracking URI, or in an error's text, never leaves the process.

Not in an answer (/health, the 503 of /predict and /model, the OpenAPI description),
not in a log line, not in the output of ``titanic-bench serve``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tests.serving.conftest import ServeProcess
from tests.serving.helpers import PASSENGER, Registered, get_json, polled, started_client, wait_until
from titanic_bench.serving.app import FAST_FAILING_MLFLOW_ENV, ServeSettings, create_app
from titanic_bench.stack.server import EmbeddedServer, free_port

SECRET = "hunter2"


def with_password(url: str) -> str:
    return url.replace("http://", f"http://ada:{SECRET}@", 1)


def answers(client: httpx.Client | TestClient) -> list[str]:
    """Every answer that could describe the model or its source."""
    replies = [
        client.get("/health"),
        client.post("/predict", json=PASSENGER),
        client.post("/predict/batch", json=[PASSENGER]),
        client.get("/model"),
        client.get("/openapi.json"),
        client.get("/docs"),
    ]
    return [f"{reply.status_code} {reply.headers} {reply.text}" for reply in replies]


def assert_no_secret(texts: list[str]) -> None:
    assert [text for text in texts if SECRET in text] == []


@pytest.fixture
def fast_failing_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAST_FAILING_MLFLOW_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("fast_failing_mlflow")
def test_an_unreachable_server_with_a_password_is_masked(caplog: pytest.LogCaptureFixture) -> None:
    uri = with_password(f"http://127.0.0.1:{free_port()}")
    with (
        caplog.at_level(logging.DEBUG),
        TestClient(create_app(ServeSettings("models:/m@champion", uri))) as client,
    ):
        wait_until(lambda: polled(client), "a poll")
        replies = answers(client)
    assert "ada:***@127.0.0.1" in replies[0] and "Connection refused" in replies[0]  # masked, not dropped
    assert_no_secret([*replies, caplog.text])


def test_a_real_server_with_a_password_is_masked(
    tracking_server: EmbeddedServer, champion: Registered, caplog: pytest.LogCaptureFixture
) -> None:
    uri = with_password(tracking_server.url)
    with caplog.at_level(logging.DEBUG):
        for client in started_client(create_app(ServeSettings(f"models:/{champion.name}@champion", uri))):
            replies = answers(client)
        with TestClient(create_app(ServeSettings(f"models:/{champion.name}@no_such_alias", uri))) as client:
            wait_until(lambda: polled(client), "a poll")
            replies += answers(client)
    assert "no_such_alias" in replies[len(replies) // 2] and "ada:***@" in replies[len(replies) // 2]
    assert_no_secret([*replies, caplog.text])


def test_a_password_inside_an_error_message_is_masked(
    tracking_server: EmbeddedServer,
    champion: Registered,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What a registry whose database fails might answer.
    message = f"cannot reach postgresql://mlflow:{SECRET}@db:5432/mlflow (password={SECRET})"

    def failing(*_: object, **__: object) -> None:
        raise MlflowException(message)

    monkeypatch.setattr(MlflowClient, "get_model_version_by_alias", failing)
    with caplog.at_level(logging.DEBUG):
        settings = ServeSettings(f"models:/{champion.name}@champion", tracking_server.url, poll_seconds=0.2)
        with TestClient(create_app(settings)) as client:
            wait_until(lambda: polled(client), "a poll")
            replies = answers(client)
    assert any("postgresql://mlflow:***@db:5432/mlflow" in reply for reply in replies)
    assert_no_secret([*replies, caplog.text])


def serve_and_ask(start: Callable[..., ServeProcess], tracking_uri: str, model_uri: str) -> ServeProcess:
    served = start("--tracking-uri", tracking_uri, "--model-uri", model_uri, "--access-log")
    wait_until(
        lambda: "start-up" not in str((get_json(f"{served.url}/health") or {}).get("problem", "start-up")),
        "a poll",
    )
    with httpx.Client(base_url=served.url, timeout=30) as client:
        assert_no_secret(answers(client))
    return served


@pytest.mark.slow
def test_serve_prints_and_logs_no_password(
    tracking_server: EmbeddedServer, champion: Registered, serve_process: Callable[..., ServeProcess]
) -> None:
    unreachable = serve_and_ask(
        serve_process, with_password(f"http://127.0.0.1:{free_port()}"), "models:/m@x"
    )
    missing = serve_and_ask(
        serve_process, with_password(tracking_server.url), f"models:/{champion.name}@nope"
    )
    for served in (unreachable, missing):
        served.process.terminate()
        served.process.wait(60)
        output = served.output()
        assert f"ada:***@{urlsplit(tracking_server.url).hostname}" in output  # it does say which server
        assert SECRET not in output
