"""Loading and validating the data: every bad input stops with one actionable message."""

from __future__ import annotations

from pathlib import Path

import pytest

from titanic_bench.data import loading as data_module
from titanic_bench.data.loading import PINNED_DIGEST, content_digest, load_titanic, packaged_csv
from titanic_bench.errors import DataError

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
        (lambda t: t.replace("\r\n1,0,3,", "\r\n1,2,3,", 1), "must hold only 0 and 1, found [0, 1, 2]. Fix"),
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


def test_every_refusal_names_a_fix(tmp_path: Path) -> None:
    faults = {
        "bad-label": lambda t: t.replace("\r\n1,0,3,", "\r\n1,2,3,", 1),
        "duplicate-id": lambda t: t.replace("\r\n2,1,1,", "\r\n1,1,1,", 1),
    }
    for name, transform in faults.items():
        with pytest.raises(DataError) as caught:
            load_titanic(str(write_variant(tmp_path, transform)), allow_other=True)
        message = str(caught.value)
        assert "Fix the file" in message or "Use the Kaggle Titanic training set" in message, (name, message)


def test_a_file_that_is_not_utf8_says_what_to_do(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(bytes(range(128, 256)) * 20)
    with pytest.raises(DataError) as caught:
        load_titanic(str(garbage), allow_other=True)
    message = str(caught.value)
    assert "is not a UTF-8 CSV" in message and "Save it as UTF-8" in message
    assert "\n" not in message
