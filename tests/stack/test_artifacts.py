"""The embedded server's artifact destination: folders, S3 buckets checked against a real
S3-compatible server (SeaweedFS on loopback, ``tests/support/s3.py``), and the S3 variables
kept out of the harness's own process."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.s3 import S3Server
from titanic_bench.errors import ArtifactStoreError
from titanic_bench.stack.artifacts import (
    check_bucket,
    check_destination,
    endpoint_of,
    take_s3_environment,
)
from titanic_bench.stack.server import EmbeddedServer, free_port, server_command


def test_destinations_the_server_takes(tmp_path: Path) -> None:
    assert check_destination("s3://bucket") == "s3://bucket"
    assert check_destination("s3://bucket/runs/x") == "s3://bucket/runs/x"
    assert check_destination(str(tmp_path / "a" / ".." / "b")) == str(tmp_path / "b")
    assert check_destination(f"file://{tmp_path}/c") == str(tmp_path / "c")
    with pytest.raises(ArtifactStoreError, match="names no bucket"):
        check_destination("s3:///path")
    with pytest.raises(ArtifactStoreError, match="neither a folder nor s3://"):
        check_destination("gs://bucket")


def test_the_s3_variables_are_taken_out_and_nothing_else() -> None:
    environ = {
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_ENDPOINT_URL": "http://e",
        "MLFLOW_S3_ENDPOINT_URL": "http://m",
        "MLFLOW_TRACKING_URI": "http://t",
        "PATH": "/bin",
    }
    taken = take_s3_environment(environ)
    assert set(taken) == {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ENDPOINT_URL",
        "MLFLOW_S3_ENDPOINT_URL",
    }
    assert environ == {"MLFLOW_TRACKING_URI": "http://t", "PATH": "/bin"}
    assert endpoint_of(taken) == "http://m"  # MLflow's own variable wins, as in its S3 store
    assert "no MLFLOW_S3_ENDPOINT_URL" in endpoint_of({})


def test_the_server_gets_the_s3_destination_and_variables(tmp_path: Path) -> None:
    variables = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "hidden-secret"}
    server = EmbeddedServer(
        "sqlite:///x.db", tmp_path, tmp_path / "log", artifacts_uri="s3://b/p", s3_environment=variables
    )
    command = server.command()
    assert command[command.index("--artifacts-destination") + 1] == "s3://b/p"
    assert "hidden-secret" not in " ".join(command)
    assert server.environment()["AWS_SECRET_ACCESS_KEY"] == "hidden-secret"
    assert "hidden-secret" not in repr(server)
    plain = server_command(tmp_path, "127.0.0.1", 5000)
    assert plain[plain.index("--artifacts-destination") + 1] == str(tmp_path)


@pytest.mark.slow
def test_an_existing_bucket_passes_the_check(s3_server: S3Server, s3_bucket: str) -> None:
    check_bucket(f"s3://{s3_bucket}/runs", s3_server.server_environment())


@pytest.mark.slow
def test_a_missing_bucket_names_the_endpoint_and_the_bucket(s3_server: S3Server) -> None:
    with pytest.raises(ArtifactStoreError) as caught:
        check_bucket("s3://no-such-bucket-here", s3_server.server_environment())
    message = str(caught.value)
    assert f"bucket 'no-such-bucket-here' at {s3_server.endpoint} does not exist" in message
    assert s3_server.secret_key not in message and "\n" not in message


@pytest.mark.slow
def test_a_wrong_secret_names_the_key_id_never_the_secret(s3_server: S3Server, s3_bucket: str) -> None:
    wrong = {**s3_server.server_environment(), "AWS_SECRET_ACCESS_KEY": "wrong-secret-value"}
    with pytest.raises(ArtifactStoreError) as caught:
        check_bucket(f"s3://{s3_bucket}", wrong)
    message = str(caught.value)
    assert f"refused access key '{s3_server.access_key}' (HTTP 403)" in message
    assert "wrong-secret-value" not in message and s3_server.secret_key not in message


def test_an_unreachable_endpoint_is_one_line_without_the_secret() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    variables = {
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "very-secret",
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pytest.raises(ArtifactStoreError) as caught:
        check_bucket("s3://mlflow", variables)
    message = str(caught.value)
    assert message.startswith(f"the artifact store is unreachable for bucket 'mlflow' at {endpoint}")
    assert "very-secret" not in message and "\n" not in message


def test_no_credentials_at_all_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No shared credentials file or profile may supply a key either.
    monkeypatch.setenv("HOME", str(tmp_path))
    endpoint = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ArtifactStoreError, match="no S3 credentials for bucket 'mlflow'"):
        check_bucket("s3://mlflow", {"MLFLOW_S3_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1"})
