"""NumPy equivalents of the fitted preprocessing steps our pipelines use, for the fast path.

On a 1,000-row batch, scikit-learn's ``transform`` of a median imputer, a scaler, a
most-frequent imputer and a one-hot encoder spent most of its time in input checks
(narwhals dataframe detection, tags, dtype validation) and in the encoder's
dictionary lookups, several times the arithmetic. Each function here does only the
arithmetic of its step, with the same operations in the same order, and exists only
for the settings it reproduces exactly; any other step or setting keeps its own
``transform``. The fast path compares the result with the pipeline at load anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

Transform = Callable[[np.ndarray], np.ndarray]


def compiled_transform(transformer: Any) -> Transform:
    """``transformer.transform``, with each step that has a NumPy equivalent replaced by it."""
    if isinstance(transformer, Pipeline):
        steps = [compiled_transform(step) for _, step in transformer.steps]

        def chained(X: np.ndarray) -> np.ndarray:
            for step in steps:
                X = step(X)
            return X

        return chained
    fast = numpy_step(transformer)
    return fast if fast is not None else transformer.transform


def numpy_step(step: Any) -> Transform | None:
    """The NumPy equivalent of a fitted step, or None where there is no exact one."""
    if type(step) is SimpleImputer:
        return _imputer(step)
    if type(step) is StandardScaler:
        return _scaler(step)
    if type(step) is OneHotEncoder:
        return _one_hot(step)
    return None


def _imputer(imputer: SimpleImputer) -> Transform | None:
    """Missing (NaN) cells get the fitted statistic of their column.

    Mean or median: the input becomes float64 first, as scikit-learn converts it. Most
    frequent or constant: only for text (object) input, which stays object; numeric
    input keeps scikit-learn's own dtype rules.
    """
    statistics = imputer.statistics_
    if (
        imputer.add_indicator
        or not _is_nan(imputer.missing_values)
        or any(_is_nan(value) for value in statistics)  # an all-missing column: dropped or kept
    ):
        return None
    if imputer.strategy in ("mean", "median"):

        def fill_numbers(X: np.ndarray) -> np.ndarray:
            numbers = np.asarray(X, dtype=np.float64)
            return np.where(np.isnan(numbers), statistics, numbers)

        return fill_numbers

    def fill_objects(X: np.ndarray) -> np.ndarray:
        if X.dtype != object:
            return imputer.transform(X)  # type: ignore[no-any-return]
        return np.where(X != X, statistics, X)  # NaN is the only object unequal to itself

    return fill_objects


def _scaler(scaler: StandardScaler) -> Transform | None:
    """(X - mean) / scale, as two steps like scikit-learn's in-place ``-=`` and ``/=``."""
    mean, scale = scaler.mean_, scaler.scale_
    if not scaler.with_mean or not scaler.with_std:
        return None

    def scale_numbers(X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=np.float64) - mean) / scale  # type: ignore[no-any-return]

    return scale_numbers


def _one_hot(encoder: OneHotEncoder) -> Transform | None:
    """Dense indicator columns, one per fitted category; an unknown value gives all zeros.

    Only with ``handle_unknown="ignore"``, nothing dropped, no NaN category (equality
    cannot find NaN, scikit-learn's lookup can), and no grouping of infrequent
    categories: with ``min_frequency`` or ``max_categories`` set it may group some, and
    the pipeline's own transform is kept.
    """
    categories = [np.asarray(values)[np.newaxis, :] for values in encoder.categories_]
    if (
        encoder.handle_unknown != "ignore"
        or encoder.sparse_output
        or encoder.drop_idx_ is not None
        or encoder.min_frequency is not None
        or encoder.max_categories is not None
        or any(_is_nan(value) for values in encoder.categories_ for value in values)
    ):
        return None
    dtype = encoder.dtype

    def encode(X: np.ndarray) -> np.ndarray:
        blocks = [X[:, [i]] == values for i, values in enumerate(categories)]
        return np.hstack(blocks).astype(dtype)

    return encode


def _is_nan(value: object) -> bool:
    """A float NaN (Python or NumPy): the one value unequal to itself."""
    return isinstance(value, float | np.floating) and value != value
