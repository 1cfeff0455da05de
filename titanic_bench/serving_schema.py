"""Request and response bodies of the serving API, and the DataFrame a model receives.

Validation happens here, before the model: a value the Titanic data cannot hold
(a fourth class, a negative age, an unknown field) is refused with a 422 naming the
field, instead of reaching the pipeline and producing a meaningless probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Final, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from titanic_bench.data import INPUT_COLUMNS

SURVIVED_TEXT: Final = "Survived"
DIED_TEXT: Final = "Did not survive"
MAX_AGE = 120.0
MAX_TEXT = 200

#: Strict: a JSON string "3" is not a class and a float 1.5 is not a sibling count.
_STRICT = ConfigDict(extra="forbid", strict=True)


def _integral(value: object) -> object:
    """22.0 is the integer 22 in JSON (and JSON Schema); 1.5 and "3" stay wrong."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


OptionalText = Annotated[str | None, Field(default=None, max_length=MAX_TEXT)]
Count = Annotated[int, Field(ge=0, le=100), BeforeValidator(_integral)]
TicketClass = Annotated[Literal[1, 2, 3], BeforeValidator(_integral)]


class Passenger(BaseModel):
    """One passenger, as a client describes them; only the fields a model may read."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "examples": [{"pclass": 3, "sex": "male", "age": 22.0, "sibsp": 1, "parch": 0, "fare": 7.25}]
        },
    )

    pclass: TicketClass = Field(description="ticket class: 1, 2 or 3")
    sex: Literal["male", "female"]
    age: Annotated[float | None, Field(ge=0, le=MAX_AGE, allow_inf_nan=False)] = Field(
        default=None, description="years; null or absent: the pipeline imputes it"
    )
    sibsp: Count = Field(description="siblings and spouses aboard")
    parch: Count = Field(description="parents and children aboard")
    fare: Annotated[float | None, Field(ge=0, allow_inf_nan=False)] = Field(
        default=None, description="ticket price; null or absent: the pipeline imputes it"
    )
    name: OptionalText = None
    embarked: Literal["C", "Q", "S"] | None = Field(default=None, description="port: C, Q or S")
    cabin: OptionalText = None
    ticket: OptionalText = None


class Prediction(BaseModel):
    """What the model says about one passenger."""

    survived: Literal[0, 1]
    probability: float = Field(description="probability of survival, 0 to 1")
    prediction_text: Literal["Survived", "Did not survive"]


class ModelDescription(BaseModel):
    """The model being served and where it came from."""

    name: str | None
    version: str | None
    alias: str | None
    uri: str
    run_id: str | None
    spec: str | None
    metrics: dict[str, float]
    data_digest: str | None
    selection_metric: str | None
    session_id: str | None
    loaded_at: str
    fast_path: bool = Field(
        description="predictions skip the pipeline's bookkeeping (verified equal at load)"
    )


class Health(BaseModel):
    """Liveness and which model, if any, answers predictions."""

    status: Literal["ok", "no_model"]
    model_loaded: bool
    model_name: str | None
    model_version: str | None
    model_alias: str | None
    model_uri: str
    problem: str | None = Field(description="why no model or no newer model is loaded, if so")


Columns = dict[str, np.ndarray]


def passenger_columns(passengers: Sequence[Passenger]) -> Columns:
    """The raw CSV columns for ``passengers``, in the training order, as arrays of fixed dtype.

    No per-cell type inference, and a missing text is NaN (what the imputers treat
    as missing), never None.
    """
    columns = {
        "PassengerId": np.zeros(len(passengers), dtype=np.int64),
        "Pclass": np.array([p.pclass for p in passengers], dtype=np.int64),
        "Name": _text([p.name for p in passengers]),
        "Sex": np.array([p.sex for p in passengers], dtype=object),
        "Age": np.array([np.nan if p.age is None else p.age for p in passengers], dtype=np.float64),
        "SibSp": np.array([p.sibsp for p in passengers], dtype=np.int64),
        "Parch": np.array([p.parch for p in passengers], dtype=np.int64),
        "Ticket": _text([p.ticket for p in passengers]),
        "Fare": np.array([np.nan if p.fare is None else p.fare for p in passengers], dtype=np.float64),
        "Cabin": _text([p.cabin for p in passengers]),
        "Embarked": _text([p.embarked for p in passengers]),
    }
    return {name: columns[name] for name in INPUT_COLUMNS}


def columns_frame(columns: Columns) -> pd.DataFrame:
    """The frame the pipelines were trained on (pandas infers the same string dtype)."""
    return pd.DataFrame(columns, copy=False)


def passengers_frame(passengers: Sequence[Passenger]) -> pd.DataFrame:
    return columns_frame(passenger_columns(passengers))


def _text(values: list[str | None]) -> np.ndarray:
    return np.array([np.nan if value is None else value for value in values], dtype=object)


def prediction_json(survived: int, probability: float) -> str:
    """One :class:`Prediction` as JSON, written directly: batches spend less time here
    than building and serialising a thousand pydantic objects. ``repr`` of a float
    is valid JSON and round-trips exactly; a probability is never NaN or infinite."""
    label, text = (1, SURVIVED_TEXT) if survived else (0, DIED_TEXT)
    return f'{{"survived":{label},"probability":{float(probability)!r},"prediction_text":"{text}"}}'


def predictions_json(survived: Sequence[int], probabilities: Sequence[float]) -> bytes:
    items = map(prediction_json, survived, probabilities)
    return ("[" + ",".join(items) + "]").encode()


def training_passengers() -> list[Passenger]:
    """The 891 passengers of the training set as the API would receive them."""
    from titanic_bench.data import load_titanic

    features = load_titanic().features
    records = features.astype(object).where(features.notna(), None).to_dict(orient="records")
    return [Passenger(**{name.lower(): record[name] for name in _API_FIELDS}) for record in records]


#: The CSV columns a client may send, by their lower-case API names.
_API_FIELDS = ("Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Name", "Embarked", "Cabin", "Ticket")
