"""Tracker: a tracking server or store that fails is one line naming it, never its password."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.postgres import scratch_database, server_address, unique_name
from titanic_bench.errors import TrackingError
from titanic_bench.stack.backend import ensure_database
from titanic_bench.stack.server import free_port
from titanic_bench.tracking.client import Tracker, translated

PASSWORD = "hunter2"
#: Nothing listens on port 1: connecting is refused at once.
CLOSED_POSTGRES = f"postgresql://u:{PASSWORD}@127.0.0.1:1/x"


def assert_one_line(message: str, *expected: str) -> None:
    assert "\n" not in message, message
    assert PASSWORD not in message, message
    for part in expected:
        assert part in message, message


@pytest.fixture
def no_http_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's retries only repeat the same failure; the translation is what is tested."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


class Answers500(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(500)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"internal error")

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest's output clean


@pytest.fixture
def failing_server() -> Iterator[int]:
    """The port of a local HTTP server that answers every request with a 500."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answers500)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.usefixtures("no_http_retries")
def test_a_call_to_a_server_that_is_down_names_the_operation_and_the_masked_uri() -> None:
    port = free_port()
    tracker = Tracker.connect(f"http://ada:{PASSWORD}@127.0.0.1:{port}")
    with pytest.raises(TrackingError) as raised, tracker.call("reading run 0123456789abcdef"):
        tracker.client.get_run("0123456789abcdef")
    assert_one_line(
        str(raised.value),
        f"reading run 0123456789abcdef failed on the tracking server http://ada:***@127.0.0.1:{port}: ",
    )


@pytest.mark.usefixtures("no_http_retries")
def test_a_call_a_server_answers_with_500_names_the_operation_and_the_masked_uri(failing_server: int) -> None:
    tracker = Tracker.connect(f"http://ada:{PASSWORD}@127.0.0.1:{failing_server}")
    with pytest.raises(TrackingError) as raised, tracker.call("reading run 0123456789abcdef"):
        tracker.client.get_run("0123456789abcdef")
    assert_one_line(
        str(raised.value),
        "reading run 0123456789abcdef failed on the tracking server "
        f"http://ada:***@127.0.0.1:{failing_server}: ",
    )


def test_a_failed_call_on_a_database_store_masks_the_uri_in_the_operation_and_the_error() -> None:
    from mlflow.exceptions import MlflowException

    with pytest.raises(TrackingError) as raised, translated("reading run r1", CLOSED_POSTGRES):
        # MLflow's SQL store errors can carry the store's URI, password and all.
        raise MlflowException(f"could not connect to {CLOSED_POSTGRES}:\nconnection refused")
    assert_one_line(
        str(raised.value),
        "reading run r1 failed on the tracking server postgresql://u:***@127.0.0.1:1/x: ",
        "could not connect to postgresql://u:***@127.0.0.1:1/x: connection refused",
    )


@pytest.mark.parametrize(
    "uri", [CLOSED_POSTGRES, CLOSED_POSTGRES.replace("postgresql", "postgresql+psycopg2")]
)
def test_a_database_store_that_is_down_is_one_line_naming_it_without_its_password(uri: str) -> None:
    with pytest.raises(TrackingError) as raised:
        Tracker.connect(uri)
    assert_one_line(
        str(raised.value),
        f"cannot reach the tracking server {uri.replace(PASSWORD, '***')}: ",
        "Connection refused",
        "Start it, or",
    )


@pytest.mark.postgres
def test_a_missing_database_is_one_line_naming_it() -> None:
    host, port, user = server_address()
    name = unique_name("missing")
    with pytest.raises(TrackingError) as raised:
        Tracker.connect(f"postgresql://{user}@{host}:{port}/{name}")
    assert_one_line(
        str(raised.value),
        f"cannot reach the tracking server postgresql://{user}@{host}:{port}/{name}: ",
        name,
    )


@pytest.mark.slow
@pytest.mark.postgres
def test_a_postgresql_uri_without_a_driver_gets_the_installed_one() -> None:
    host, port, user = server_address()
    with scratch_database("tracking") as name:
        uri = f"postgresql://{user}@{host}:{port}/{name}"
        ensure_database(uri)
        tracker = Tracker.connect(uri)
        with tracker.call("creating an experiment"):
            experiment_id = tracker.client.create_experiment("driver")
            assert tracker.client.get_experiment(experiment_id).name == "driver"
