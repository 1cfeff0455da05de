"""Backend URIs: driver normalisation and password masking (pure functions, no database)."""

from __future__ import annotations

import pytest

from titanic_bench.errors import BackendError
from titanic_bench.stack import backend
from titanic_bench.stack.backend import (
    ensure_database,
    is_postgres,
    mask_secrets,
    normalize_backend_uri,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5432/mlflow", "postgresql+psycopg2://u:p@db:5432/mlflow"),
        ("postgres://u@db/mlflow", "postgresql+psycopg2://u@db/mlflow"),
        ("postgresql+psycopg2://u@db/mlflow", "postgresql+psycopg2://u@db/mlflow"),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
        ("mysql+pymysql://u:p@db/mlflow", "mysql+pymysql://u:p@db/mlflow"),
    ],
)
def test_normalize_gives_postgres_the_installed_driver(given: str, expected: str) -> None:
    assert normalize_backend_uri(given) == expected


def test_psycopg3_spelling_falls_back_to_psycopg2_only_when_psycopg3_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uri = "postgresql+psycopg://u@db/mlflow"
    monkeypatch.setattr(backend, "psycopg3_installed", lambda: False)
    assert normalize_backend_uri(uri) == "postgresql+psycopg2://u@db/mlflow"
    monkeypatch.setattr(backend, "psycopg3_installed", lambda: True)
    assert normalize_backend_uri(uri) == uri


@pytest.mark.parametrize(
    "uri", ["postgresql://u@h/d", "postgres://h/d", "postgresql+psycopg2://h/d", "postgresql+psycopg://h/d"]
)
def test_is_postgres(uri: str) -> None:
    assert is_postgres(uri)
    assert not is_postgres("sqlite:///x.db")


@pytest.mark.parametrize(
    ("uri", "masked"),
    [
        ("postgresql://bench:s3cret@db:5432/mlflow", "postgresql://bench:***@db:5432/mlflow"),
        ("postgresql+psycopg2://bench:p%40ss@db/mlflow", "postgresql+psycopg2://bench:***@db/mlflow"),
        # An unencoded "@" in the password must not leak the part after it.
        ("postgresql://bench:a@b@db/mlflow", "postgresql://bench:***@db/mlflow"),
        ("postgresql://bench@db/mlflow", "postgresql://bench@db/mlflow"),
        ("postgresql://bench:@db/mlflow", "postgresql://bench:***@db/mlflow"),
        (
            "postgresql://db/mlflow?user=bench&password=s3cret",
            "postgresql://db/mlflow?user=bench&password=***",
        ),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
        ("http://localhost:5000", "http://localhost:5000"),
    ],
)
def test_mask_uri_hides_the_password(uri: str, masked: str) -> None:
    assert mask_secrets(uri) == masked


def test_mask_secrets_masks_every_uri_in_a_text() -> None:
    log = (
        "starting with postgresql+psycopg2://bench:s3cret@db/mlflow\n"
        "sqlalchemy.exc.OperationalError: (psycopg2) 'postgresql://root:hunter2@127.0.0.1/x' failed\n"
        "dsn: host=db user=bench password=s3cret dbname=mlflow"
    )
    masked = mask_secrets(log)
    assert "s3cret" not in masked and "hunter2" not in masked
    assert "postgresql+psycopg2://bench:***@db/mlflow" in masked
    assert "postgresql://root:***@127.0.0.1/x" in masked
    assert "password=*** dbname=mlflow" in masked


def test_ensure_database_ignores_other_backends() -> None:
    ensure_database("sqlite:////nonexistent/folder/mlflow.db")


def test_ensure_database_needs_a_database_name() -> None:
    with pytest.raises(BackendError, match=r"names no database; add /DBNAME") as info:
        ensure_database("postgresql://bench:s3cret@127.0.0.1:5432")
    assert "s3cret" not in str(info.value)
