"""The bulk check of batch bodies accepts exactly what the pydantic validation accepts.

It may only ever be stricter (a refusal just costs the slower path); on the edge of
every rule below it is neither stricter nor looser, so a batch of ordinary rows never
takes the slow path and no bad value reaches the model.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter, ValidationError
from pydantic_core import from_json

from titanic_bench.data.loading import INPUT_COLUMNS, load_titanic
from titanic_bench.serving.fast.batch import bulk_columns
from titanic_bench.serving.schema import Columns, PassengerRow, passenger_columns

PASSENGER = {"pclass": 3, "sex": "male", "age": 22.0, "sibsp": 1, "parch": 0, "fare": 7.25}
ROWS = TypeAdapter(list[PassengerRow])
API_FIELDS = ("pclass", "sex", "age", "sibsp", "parch", "fare", "name", "embarked", "cabin", "ticket")

EDGES: dict[str, list[Any]] = {
    "pclass": [1, 2, 3, 1.0, 3.0, 0, 4, 2.5, -1, "1", True, None, [1]],
    "sex": ["male", "female", "Male", "", None, 1, ["male"]],
    "age": [0, 0.0, -0.0, 120, 120.0, 120.0001, -0.01, 22.5, None, "22", True, 1e308, 10**30],
    "fare": [0, 512.3292, 1e308, -0.01, None, "7", False, 10**30],
    "sibsp": [0, 100, 100.0, 101, -1, 1.5, 8.0, True, None, "1", 10**30],
    "parch": [0, 6, 100, 101, -2, 0.5, False],
    "name": ["Braund, Mr. Owen Harris", "", "é" * 200, "x" * 201, None, 5, ["a"], {"a": 1}],
    "cabin": ["C85", "x" * 200, "x" * 201, None, 1.5],
    "ticket": ["A/5 21171", None, True],
    "embarked": ["C", "Q", "S", None, "X", "c", "", 1],
}


def bulk(body: bytes) -> Columns | None:
    """The bulk check of a body as the API runs it, on the body parsed by pydantic-core."""
    try:
        rows = from_json(body)
    except ValueError:
        return None  # the API validates it with pydantic at once
    return bulk_columns(rows)


def pydantic_columns(body: bytes) -> Columns | None:
    try:
        rows = ROWS.validate_json(body)
    except ValidationError:
        return None
    return passenger_columns(rows) if rows else None


def assert_same_columns(checked: Columns, expected: Columns) -> None:
    assert list(checked) == list(expected) == list(INPUT_COLUMNS)
    for name in INPUT_COLUMNS:
        # Series.equals: same dtype and values, NaN equal to NaN in object columns too
        assert pd.Series(checked[name]).equals(pd.Series(expected[name])), name


@pytest.mark.parametrize(
    ("field", "value"), [(field, value) for field, values in EDGES.items() for value in values], ids=repr
)
def test_a_value_is_accepted_in_bulk_exactly_when_pydantic_accepts_it(field: str, value: Any) -> None:
    body = json.dumps([PASSENGER, {**PASSENGER, field: value}]).encode()
    expected = pydantic_columns(body)
    checked = bulk(body)
    assert (checked is None) == (expected is None)
    if checked is not None and expected is not None:
        assert_same_columns(checked, expected)


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"{}",
        b"[1]",
        b"[[]]",
        b"[{",
        b"",
        b"null",
        json.dumps([{key: v for key, v in PASSENGER.items() if key != "sibsp"}]).encode(),
        json.dumps([{**PASSENGER, "favourite_colour": "blue"}]).encode(),
        json.dumps([{**PASSENGER, "Pclass": 3}]).encode(),
        b'[{"pclass": 3, "sex": "male", "sibsp": 1, "parch": 0, "age": NaN}]',
        b'[{"pclass": 3, "sex": "male", "sibsp": 1, "parch": 0, "fare": Infinity}]',
        b'[{"pclass": 3, "sex": "male", "sibsp": 1, "parch": 0, "fare": 1e400}]',
        b'[{"pclass": 3, "sex": "male", "sibsp": 1, "parch": 0, "name": "\\ud800"}]',
        b'[{"pclass": 9, "pclass": 3, "sex": "male", "sibsp": 1, "parch": 0}]',
        b'[{"pclass": 3, "pclass": 9, "sex": "male", "sibsp": 1, "parch": 0}]',
    ],
)
def test_bodies_pydantic_refuses_are_refused_in_bulk(body: bytes) -> None:
    checked = bulk(body)
    expected = pydantic_columns(body)
    assert (checked is None) == (expected is None)
    if checked is not None and expected is not None:
        assert_same_columns(checked, expected)


def test_the_training_rows_give_the_columns_of_the_validated_rows() -> None:
    features = load_titanic().features
    records = features.rename(columns=str.lower)[list(API_FIELDS)].astype(object)
    body = records.where(records.notna(), None).to_json(orient="records").encode()
    checked = bulk(body)
    expected = pydantic_columns(body)
    assert checked is not None and expected is not None
    assert_same_columns(checked, expected)
    assert np.isnan(checked["Age"]).sum() == features["Age"].isna().sum() > 0


def test_absent_and_null_optional_fields_are_both_missing() -> None:
    minimal = {"pclass": 1, "sex": "female", "sibsp": 0, "parch": 0}
    body = json.dumps([PASSENGER, {**PASSENGER, "age": None, "embarked": None}, minimal]).encode()
    checked = bulk(body)
    assert checked is not None
    assert np.isnan(checked["Age"][1:]).all() and np.isnan(checked["Fare"][2])
    assert all(value != value for value in checked["Embarked"])  # NaN, what the imputers treat as missing
    assert checked["Pclass"].tolist() == [3, 3, 1]
