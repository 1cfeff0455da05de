"""Each NumPy step equals its scikit-learn step, including on what training never showed it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from titanic_bench.serving.fast.transforms import compiled_transform, numpy_step

NAN = np.nan
NUMBERS = np.array([[22.0, 1, 7.25], [NAN, 0, 71.2833], [26.0, 0, NAN], [35.0, 3, 8.05]])
# Serving time: unseen values, all-missing rows, values outside the fitted range.
NEW_NUMBERS = np.array([[NAN, NAN, NAN], [80.0, 8, 512.3292], [0.42, 0, 0.0]])
TEXTS = np.array([[3, "male"], [1, "female"], [3, NAN], [2, "female"]], dtype=object)
NEW_TEXTS = np.array([[NAN, NAN], [4, "unknown"], [1, "male"], [3.0, "female"]], dtype=object)


@pytest.mark.parametrize(
    ("steps", "X", "new"),
    [
        ([SimpleImputer(strategy="median"), StandardScaler()], NUMBERS, NEW_NUMBERS),
        ([SimpleImputer(strategy="mean")], NUMBERS, NEW_NUMBERS),
        ([SimpleImputer(strategy="median")], NUMBERS.astype(object), NEW_NUMBERS.astype(object)),
        (
            [
                SimpleImputer(strategy="most_frequent"),
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
            ],
            TEXTS,
            NEW_TEXTS,
        ),
        ([SimpleImputer(strategy="constant", fill_value="missing")], TEXTS, NEW_TEXTS),
        (
            [OneHotEncoder(handle_unknown="ignore", sparse_output=False)],
            NUMBERS[:, 1:2],
            NEW_NUMBERS[1:, 1:2],
        ),
    ],
    ids=[
        "median+scaler",
        "mean",
        "median of objects",
        "most_frequent+one-hot",
        "constant",
        "one-hot numbers",
    ],
)
def test_the_numpy_steps_equal_scikit_learns(steps: list[object], X: np.ndarray, new: np.ndarray) -> None:
    pipeline = make_pipeline(*steps).fit(X)
    assert all(numpy_step(step) is not None for _, step in pipeline.steps)  # really replaced
    fast = compiled_transform(pipeline)
    for data in (X, new):
        expected = pipeline.transform(data)
        got = fast(data)
        assert got.dtype == expected.dtype
        assert np.array_equal(got, expected) if got.dtype != object else got.tolist() == expected.tolist()


@pytest.mark.parametrize(
    "step",
    [
        OneHotEncoder(handle_unknown="error", sparse_output=False),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False, drop="first"),
        OneHotEncoder(handle_unknown="infrequent_if_exist", sparse_output=False, min_frequency=2),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False, min_frequency=2),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False, max_categories=2),
        OneHotEncoder(handle_unknown="ignore", sparse_output=True),
        SimpleImputer(strategy="median", add_indicator=True),
        SimpleImputer(strategy="median", missing_values=-1),
        StandardScaler(with_mean=False),
    ],
    ids=repr,
)
def test_settings_without_an_exact_equivalent_keep_scikit_learns_transform(step: object) -> None:
    step.fit(np.array([[1.0], [2.0], [2.0], [3.0]]))  # type: ignore[attr-defined]
    assert numpy_step(step) is None
    assert compiled_transform(step) == step.transform  # type: ignore[attr-defined]


def test_other_steps_of_a_pipeline_keep_their_transform() -> None:
    pipeline = make_pipeline(
        SimpleImputer(strategy="constant", fill_value=0), FunctionTransformer(np.sum, kw_args={"axis": 1})
    ).fit(NUMBERS)
    assert np.array_equal(compiled_transform(pipeline)(NEW_NUMBERS), pipeline.transform(NEW_NUMBERS))
