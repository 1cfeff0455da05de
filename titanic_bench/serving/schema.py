"""Request and response bodies of the serving API, and the columns a model receives.

Validation happens here, before the model: a value the Titanic data cannot hold
(a fourth class, a negative age, an unknown field) is refused with a 422 naming the
field, instead of reaching the pipeline and producing a meaningless probability.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final, Literal, NotRequired, cast

import numpy as np
import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from titanic_bench.data.loading import INPUT_COLUMNS

SURVIVED_TEXT: Final = "Survived"
DIED_TEXT: Final = "Did not survive"
MAX_AGE = 120.0
MAX_TEXT = 200
MAX_RELATIVES = 100

#: Strict: a JSON string "3" is not a class and a float 1.5 is not a sibling count.
_STRICT = ConfigDict(extra="forbid", strict=True)


def _integral(value: object) -> object:
    """22.0 is the integer 22 in JSON (and JSON Schema); 1.5 and "3" stay wrong."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _class_number(value: object) -> object:
    """``true`` is not class 1, though Python's ``True == 1`` lets a Literal match it."""
    if isinstance(value, bool):
        # The error a fourth class gets; the 422 message adds the value.
        raise PydanticCustomError("literal_error", "Input should be 1, 2 or 3", {"expected": "1, 2 or 3"})
    return _integral(value)


# Each field's type and limits, defined once for Passenger, PassengerRow and the bulk
# check of batches (fast.batch), which reads the choices from these Literals.
Classes = Literal[1, 2, 3]
TicketClass = Annotated[Classes, BeforeValidator(_class_number), Field(description="ticket class: 1, 2 or 3")]
Sex = Literal["male", "female"]
Age = Annotated[
    float | None,
    Field(
        ge=0, le=MAX_AGE, allow_inf_nan=False, description="years; null or absent: the pipeline imputes it"
    ),
]
SibSp = Annotated[
    int, Field(ge=0, le=MAX_RELATIVES, description="siblings and spouses aboard"), BeforeValidator(_integral)
]
Parch = Annotated[
    int, Field(ge=0, le=MAX_RELATIVES, description="parents and children aboard"), BeforeValidator(_integral)
]
Fare = Annotated[
    float | None,
    Field(ge=0, allow_inf_nan=False, description="ticket price; null or absent: the pipeline imputes it"),
]
Text = Annotated[str | None, Field(max_length=MAX_TEXT)]
Ports = Literal["C", "Q", "S"]
Port = Annotated[Ports | None, Field(description="port: C, Q or S")]


class Passenger(BaseModel):
    """One passenger, as a client describes them; only the fields a model may read."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "examples": [{"pclass": 3, "sex": "male", "age": 22.0, "sibsp": 1, "parch": 0, "fare": 7.25}]
        },
    )

    pclass: TicketClass
    sex: Sex
    age: Age = None
    sibsp: SibSp
    parch: Parch
    fare: Fare = None
    name: Text = None
    embarked: Port = None
    cabin: Text = None
    ticket: Text = None


class PassengerRow(TypedDict):
    """A :class:`Passenger` as a plain dict: how a batch the bulk check refused is validated
    (faster than building a thousand models), to name each fault's row and field. Same
    fields, same limits (a test compares them)."""

    __pydantic_config__ = _STRICT  # type: ignore[misc]

    pclass: TicketClass
    sex: Sex
    age: NotRequired[Age]
    sibsp: SibSp
    parch: Parch
    fare: NotRequired[Fare]
    name: NotRequired[Text]
    embarked: NotRequired[Port]
    cabin: NotRequired[Text]
    ticket: NotRequired[Text]


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


#: Raw CSV column name -> one array per column: what a model is given for a request.
Columns = Mapping[str, np.ndarray]


#: The raw CSV column each request field fills.
CSV_COLUMN_OF_FIELD = {
    "pclass": "Pclass", "name": "Name", "sex": "Sex", "age": "Age", "sibsp": "SibSp",
    "parch": "Parch", "ticket": "Ticket", "fare": "Fare", "cabin": "Cabin", "embarked": "Embarked",
}  # fmt: skip


def csv_columns(fields: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The raw CSV columns in the training order, from one array per request field.

    PassengerId is never asked for: it is zeros (the pipelines do not read it).
    """
    columns = {CSV_COLUMN_OF_FIELD[field]: values for field, values in fields.items()}
    columns["PassengerId"] = np.zeros(len(fields["pclass"]), dtype=np.int64)
    return {name: columns[name] for name in INPUT_COLUMNS}


def passenger_columns(rows: Sequence[PassengerRow]) -> dict[str, np.ndarray]:
    """The raw CSV columns for validated ``rows``, in the training order, as arrays of fixed dtype.

    No per-cell type inference, and a missing value is NaN (what the imputers treat
    as missing), never None.
    """
    return csv_columns(
        {
            "pclass": np.array([row["pclass"] for row in rows], dtype=np.int64),
            "name": _optional(rows, "name", object),
            "sex": np.array([row["sex"] for row in rows], dtype=object),
            "age": _optional(rows, "age", np.float64),
            "sibsp": np.array([row["sibsp"] for row in rows], dtype=np.int64),
            "parch": np.array([row["parch"] for row in rows], dtype=np.int64),
            "ticket": _optional(rows, "ticket", object),
            "fare": _optional(rows, "fare", np.float64),
            "cabin": _optional(rows, "cabin", object),
            "embarked": _optional(rows, "embarked", object),
        }
    )


def _optional(rows: Sequence[PassengerRow], key: str, dtype: Any) -> np.ndarray:
    values = [row.get(key) for row in rows]
    return np.array([np.nan if value is None else value for value in values], dtype=dtype)


def row(passenger: Passenger) -> PassengerRow:
    """The passenger's fields as the client sent them (an absent field stays absent)."""
    return cast(PassengerRow, passenger.model_dump(exclude_unset=True))


def predictions_json(survived: np.ndarray, probabilities: np.ndarray) -> bytes:
    """:class:`Prediction` items as a JSON array, serialised by orjson from plain dicts:
    a fifth of the time of formatting them in Python, and far less than building and
    dumping pydantic objects. orjson writes the shortest float that reads back exactly,
    so a client gets the model's probability bit for bit; it is never NaN or infinite."""
    return orjson.dumps(_items(survived, probabilities))


def prediction_json(survived: np.ndarray, probabilities: np.ndarray) -> bytes:
    """The one :class:`Prediction` of a single-row answer, as a JSON object."""
    return orjson.dumps(_items(survived, probabilities)[0])


def _items(survived: np.ndarray, probabilities: np.ndarray) -> list[dict[str, Any]]:
    labels = np.asarray(survived != 0, dtype=np.int64).tolist()
    return [
        {"survived": label, "probability": probability, "prediction_text": _TEXTS[label]}
        for label, probability in zip(labels, np.asarray(probabilities).tolist(), strict=True)
    ]


_TEXTS = (DIED_TEXT, SURVIVED_TEXT)
