"""The compiled fast path gives the pipeline's probabilities bit for bit, beyond the rows it is checked on."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from tests.serving.helpers import SPECS, training_passengers
from titanic_bench.data.loading import load_titanic
from titanic_bench.ml.evaluation import fit_and_score, holdout_split
from titanic_bench.serving.fast.path import compile_fast_path
from titanic_bench.serving.schema import MAX_AGE, MAX_RELATIVES, MAX_TEXT, Passenger, passenger_columns, row

#: Titles, decks and tickets the training set has, has rarely, or never has.
NAMES = [
    "Smith, Mr. John",
    "Doe, Mrs. Jane (Roe)",
    "Curie, Dr. Marie",
    "Zed, Jonkheer. Q",
    "no title at all",
    "",
]
CABINS = ["C85", "B57 B59 B63 B66", "T", "Z999", "", "x" * MAX_TEXT]
TICKETS = ["A/5 21171", "PC 17599", "113803", "LINE", "?" * MAX_TEXT]


def new_passengers(count: int, seed: int = 20261126) -> list[Passenger]:
    """Valid passengers the load-time check never saw: limits of every field, missing
    values in every combination, names, cabins and tickets unlike the training rows'."""
    rng = np.random.default_rng(seed)

    def maybe(value: Any) -> Any:
        return None if rng.random() < 0.25 else value

    return [
        Passenger.model_validate(
            {
                "pclass": int(rng.integers(1, 4)),
                "sex": str(rng.choice(["male", "female"])),
                "age": maybe(float(rng.choice([0.0, 0.42, 120.0, rng.uniform(0, MAX_AGE)]))),
                "sibsp": int(rng.choice([0, 1, 8, MAX_RELATIVES])),
                "parch": int(rng.choice([0, 2, 9, MAX_RELATIVES])),
                "fare": maybe(float(rng.choice([0.0, 7.25, 512.3292, 1e6, rng.uniform(0, 600)]))),
                "name": maybe(str(rng.choice(NAMES))),
                "embarked": maybe(str(rng.choice(["C", "Q", "S"]))),
                "cabin": maybe(str(rng.choice(CABINS))),
                "ticket": maybe(str(rng.choice(TICKETS))),
            }
        )
        for _ in range(count)
    ]


@pytest.mark.parametrize(
    "spec", ["logistic_regression", "gradient_boosting_engineered", "svm", "random_forest_engineered"]
)
def test_fast_path_equals_the_pipeline_on_passengers_it_was_not_checked_on(spec: str) -> None:
    model = fit_and_score(SPECS[spec], holdout_split(load_titanic())).model
    fast = compile_fast_path(model, passenger_columns([row(p) for p in training_passengers()]))
    assert fast is not None
    columns = passenger_columns([row(p) for p in new_passengers(2000)])
    assert np.array_equal(fast(columns), model.predict_proba(pd.DataFrame(columns)))
    for i in range(100):  # single rows take other code paths (BLAS) than a batch
        one = {name: values[i : i + 1] for name, values in columns.items()}
        assert np.array_equal(fast(one), model.predict_proba(pd.DataFrame(one))), i


def test_fast_path_is_refused_for_other_shapes() -> None:
    data = load_titanic()
    model = DummyClassifier().fit(data.features, data.target)
    assert compile_fast_path(model, passenger_columns([row(p) for p in training_passengers()])) is None
