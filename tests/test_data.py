"""Loading and validating the data: every bad input stops with one actionable message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from titanic_bench import data as data_module
from titanic_bench.data import (
    PINNED_DIGEST,
    DataError,
    content_digest,
    load_titanic,
    packaged_csv,
)

SHIPPED = packaged_csv()


def write_variant(tmp_path: Path, transform: object) -> Path:
    text = SHIPPED.read_bytes().decode()
    path = tmp_path / "variant.csv"
    path.write_bytes(transform(text).encode())  # type: ignore[operator]
    return path


def test_shipped_copy_is_the_pinned_kaggle_file() -> None:
    loaded = load_titanic()
    assert loaded.digest == PINNED_DIGEST
    assert loaded.pinned
    assert len(loaded.frame) == 891
    assert list(loaded.features.columns) == list(data_module.INPUT_COLUMNS)
    assert set(loaded.target.unique()) == {0, 1}


def test_digest_ignores_line_endings(tmp_path: Path) -> None:
    lf = write_variant(tmp_path, lambda text: text.replace("\r\n", "\n"))
    assert b"\r\n" not in lf.read_bytes()
    assert content_digest(lf.read_bytes()) == PINNED_DIGEST
    assert load_titanic(str(lf)).pinned


@pytest.mark.parametrize(
    ("transform", "expected"),
    [
        (lambda t: t.replace("Survived,", "Lived,", 1), "lacks column(s) Survived"),
        (lambda t: t.replace("\r\n1,0,3,", "\r\n1,2,3,", 1), "must hold only 0 and 1, found [0, 1, 2]"),
        (lambda t: t.replace("\r\n2,1,1,", "\r\n1,1,1,", 1), "PassengerId must be unique"),
        (lambda t: "\r\n".join(t.split("\r\n")[:100]), "has 99 rows; at least 300"),
        (lambda t: t.replace(",22,1,0,A/5", ",twenty-two,1,0,A/5", 1), "column Age"),
        (lambda t: "", "is empty"),
    ],
    ids=["missing-column", "bad-label", "duplicate-id", "too-few-rows", "text-in-numeric", "empty"],
)
def test_bad_files_are_refused_with_the_fault_named(tmp_path: Path, transform: object, expected: str) -> None:
    path = write_variant(tmp_path, transform)
    with pytest.raises(DataError, match=None) as caught:
        load_titanic(str(path), allow_other=True)
    assert expected in str(caught.value)
    assert str(path) in str(caught.value) or expected == "is empty"


def test_changed_content_needs_explicit_consent(tmp_path: Path) -> None:
    path = write_variant(tmp_path, lambda t: t.replace("Braund, Mr. Owen Harris", "Braund, Mr. Owen H."))
    with pytest.raises(DataError, match="differs from the pinned Titanic training set") as caught:
        load_titanic(str(path))
    assert "--bench-allow-other-data" in str(caught.value)
    loaded = load_titanic(str(path), allow_other=True)
    assert not loaded.pinned
    assert loaded.digest == content_digest(path.read_bytes()) != PINNED_DIGEST


def test_unreadable_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataError, match=r"cannot read the data file .*nope\.csv"):
        load_titanic(str(missing))


class FakeKaggle:
    """Stands in for kagglehub.dataset_download: no network, records the call."""

    def __init__(self, folder: Path | None, error: Exception | None = None) -> None:
        self.folder, self.error, self.handles = folder, error, []

    def __call__(self, handle: str, *args: object, **kwargs: object) -> str:
        self.handles.append(handle)
        if self.error is not None:
            raise self.error
        return str(self.folder)


@pytest.fixture
def no_kaggle_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    return home


def test_kaggle_download_is_validated_like_any_source(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_kaggle_credentials: Path
) -> None:
    import kagglehub

    download = tmp_path / "download"
    download.mkdir()
    (download / data_module.KAGGLE_FILE).write_bytes(SHIPPED.read_bytes())
    fake = FakeKaggle(download)
    monkeypatch.setattr(kagglehub, "dataset_download", fake)
    (tmp_path / "kaggle.json").write_text(json.dumps({"username": "ada", "key": "s3cret-key"}))

    loaded = load_titanic("kaggle")

    assert fake.handles == ["yasserh/titanic-dataset"]
    assert loaded.digest == PINNED_DIGEST
    assert loaded.source == str(download / data_module.KAGGLE_FILE)


def test_kaggle_without_credentials_stops_before_downloading(
    monkeypatch: pytest.MonkeyPatch, no_kaggle_credentials: Path
) -> None:
    import kagglehub

    fake = FakeKaggle(None)
    monkeypatch.setattr(kagglehub, "dataset_download", fake)
    with pytest.raises(DataError, match="Kaggle credentials are missing: set KAGGLE_USERNAME"):
        load_titanic("kaggle")
    assert fake.handles == []


def test_unreachable_kaggle_is_reported_without_the_key(
    monkeypatch: pytest.MonkeyPatch, no_kaggle_credentials: Path
) -> None:
    import kagglehub

    monkeypatch.setenv("KAGGLE_USERNAME", "ada")
    monkeypatch.setenv("KAGGLE_KEY", "s3cret-key")
    fake = FakeKaggle(None, ConnectionError("Max retries exceeded; auth s3cret-key rejected"))
    monkeypatch.setattr(kagglehub, "dataset_download", fake)
    with pytest.raises(DataError, match="could not download yasserh/titanic-dataset") as caught:
        load_titanic("kaggle")
    assert "s3cret-key" not in str(caught.value)
    assert "ConnectionError" in str(caught.value)


def test_home_kaggle_json_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_kaggle_credentials: Path
) -> None:
    import kagglehub

    (no_kaggle_credentials / ".kaggle").mkdir()
    (no_kaggle_credentials / ".kaggle" / "kaggle.json").write_text('{"username": "ada", "key": "k"}')
    download = tmp_path / "dl"
    download.mkdir()
    (download / "train.csv").write_bytes(SHIPPED.read_bytes())
    monkeypatch.setattr(kagglehub, "dataset_download", FakeKaggle(download))
    assert load_titanic("kaggle").pinned
    import os

    assert os.environ["KAGGLE_USERNAME"] == "ada"
