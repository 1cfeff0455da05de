"""The Kaggle source: kagglehub's own credential lookup, a stub of the download, nothing left behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from titanic_bench.data.kaggle import KAGGLE_FILE, KAGGLE_HANDLE
from titanic_bench.data.loading import PINNED_DIGEST, load_titanic, packaged_csv
from titanic_bench.errors import DataError

KAGGLE_VARIABLES = ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR")


class FakeKaggle:
    """Stands in for kagglehub.dataset_download: no network; records the call and the
    credentials kagglehub itself would use at that moment."""

    def __init__(self, folder: Path | None, error: Exception | None = None) -> None:
        self.folder, self.error = folder, error
        self.handles: list[str] = []
        self.usernames: list[str | None] = []

    def __call__(self, handle: str, *args: object, **kwargs: object) -> str:
        from kagglehub.config import get_kaggle_credentials

        credentials = get_kaggle_credentials()
        self.handles.append(handle)
        self.usernames.append(credentials.username if credentials else None)
        if self.error is not None:
            raise self.error
        return str(self.folder)


@pytest.fixture
def no_kaggle_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty home and working directory, and none of kagglehub's variables."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    for name in KAGGLE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def download(tmp_path: Path) -> Path:
    folder = tmp_path / "download"
    folder.mkdir()
    (folder / KAGGLE_FILE).write_bytes(packaged_csv().read_bytes())
    return folder


def fake_download(monkeypatch: pytest.MonkeyPatch, fake: FakeKaggle) -> FakeKaggle:
    import kagglehub

    monkeypatch.setattr(kagglehub, "dataset_download", fake)
    return fake


def assert_environment_untouched() -> None:
    assert [name for name in KAGGLE_VARIABLES if name in os.environ] == []


def test_a_kaggle_json_in_the_working_directory_is_offered_to_kagglehub_for_the_call_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_kaggle_credentials: Path, download: Path
) -> None:
    fake = fake_download(monkeypatch, FakeKaggle(download))
    (tmp_path / "kaggle.json").write_text(json.dumps({"username": "ada", "key": "s3cret-key"}))

    loaded = load_titanic("kaggle")

    assert (fake.handles, fake.usernames) == ([KAGGLE_HANDLE], ["ada"])
    assert loaded.digest == PINNED_DIGEST
    assert loaded.source == str(download / KAGGLE_FILE)
    assert_environment_untouched()


def test_kagglehub_reads_its_own_kaggle_json_before_the_working_directory_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_kaggle_credentials: Path, download: Path
) -> None:
    config = no_kaggle_credentials / ".kaggle"
    config.mkdir()
    (config / "kaggle.json").write_text('{"username": "grace", "key": "k"}')
    (tmp_path / "kaggle.json").write_text('{"username": "ada", "key": "k2"}')
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config))  # where kagglehub looks (default ~/.kaggle)
    fake = fake_download(monkeypatch, FakeKaggle(download))

    assert load_titanic("kaggle").pinned
    assert fake.usernames == ["grace"]
    assert os.environ["KAGGLE_CONFIG_DIR"] == str(config)


def test_without_credentials_the_public_data_set_is_still_tried(
    monkeypatch: pytest.MonkeyPatch, no_kaggle_credentials: Path, download: Path
) -> None:
    fake = fake_download(monkeypatch, FakeKaggle(download))
    assert load_titanic("kaggle").pinned
    assert fake.usernames == [None]


def test_unreachable_kaggle_is_one_line_without_the_key(
    monkeypatch: pytest.MonkeyPatch, no_kaggle_credentials: Path
) -> None:
    monkeypatch.setenv("KAGGLE_USERNAME", "ada")
    monkeypatch.setenv("KAGGLE_KEY", "s3cret-key")
    error = ConnectionError("Max retries exceeded; auth s3cret-key rejected\nsecond line")
    fake_download(monkeypatch, FakeKaggle(None, error))
    with pytest.raises(DataError, match="could not download yasserh/titanic-dataset") as caught:
        load_titanic("kaggle")
    message = str(caught.value)
    assert "s3cret-key" not in message and "\n" not in message
    assert "ConnectionError" in message and "--bench-data package" in message


def test_an_invalid_kaggle_json_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_kaggle_credentials: Path, download: Path
) -> None:
    fake_download(monkeypatch, FakeKaggle(download))
    (tmp_path / "kaggle.json").write_text("{not json")
    with pytest.raises(DataError, match=r"Invalid Kaggle credentials file at .*kaggle\.json"):
        load_titanic("kaggle")
    assert_environment_untouched()
