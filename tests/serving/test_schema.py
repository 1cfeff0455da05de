"""Request bodies and the columns built from them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from pydantic import TypeAdapter

from tests.serving.helpers import PASSENGER
from titanic_bench.data.loading import INPUT_COLUMNS, load_titanic
from titanic_bench.serving.schema import Passenger, PassengerRow, passenger_columns, row


def test_batch_rows_are_validated_exactly_like_passengers() -> None:
    # Batches are parsed as PassengerRow dicts for speed; the contract is Passenger's.
    as_model = Passenger.model_json_schema()
    as_row = TypeAdapter(PassengerRow).json_schema()
    for field in as_model["properties"].values():
        field.pop("default", None)  # a TypedDict key is absent rather than defaulted
    assert as_row["properties"] == as_model["properties"]
    assert as_row["required"] == as_model["required"]
    assert as_row["additionalProperties"] is False


def test_columns_have_the_training_names_and_dtypes() -> None:
    frame = pd.DataFrame(passenger_columns([row(Passenger.model_validate(PASSENGER))]))
    training = load_titanic().features
    assert list(frame.columns) == list(INPUT_COLUMNS)
    for column in ("PassengerId", "Pclass", "Age", "SibSp", "Parch", "Fare"):
        assert frame[column].dtype == training[column].dtype, column
    assert math.isnan(frame.loc[0, "Cabin"])


def test_absent_and_null_fields_are_both_nan() -> None:
    columns = passenger_columns(
        [row(Passenger.model_validate({**PASSENGER, "age": None})), row(Passenger.model_validate(PASSENGER))]
    )
    assert np.isnan(columns["Age"][0]) and columns["Age"][1] == 22.0
    assert all(value != value for value in columns["Embarked"])  # NaN, what the imputers treat as missing
