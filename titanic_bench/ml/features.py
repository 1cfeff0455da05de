"""Preprocessing pipelines that turn raw passenger records into model inputs.

Every model is one scikit-learn ``Pipeline`` whose first step is built here, so a
logged model takes the CSV's own columns (all but ``Survived``) and needs nothing
but scikit-learn to predict. The engineered features are built from scikit-learn
and NumPy parts only, never from our own classes, so that a saved model loads
without this package and its skops allow-list stays small.
"""

from __future__ import annotations

from collections import Counter
from enum import StrEnum

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import Binarizer, FunctionTransformer, OneHotEncoder, StandardScaler

from titanic_bench.data.loading import INPUT_COLUMNS, TARGET_COLUMN

__all__ = ["INPUT_COLUMNS", "TARGET_COLUMN", "FeatureSet", "build_preprocessor", "feature_names"]

#: Honorifics found in ``Name`` ("Braund, Mr. Owen Harris"); the rare ones carry
#: rank or profession, which correlates with class and survival.
TITLES: tuple[str, ...] = (
    "mr", "mrs", "miss", "master", "dr", "rev", "col", "major",
    "mlle", "mme", "ms", "capt", "countess", "jonkheer", "don", "dona", "lady", "sir",
)  # fmt: skip


class FeatureSet(StrEnum):
    """Named sets of inputs a spec can choose from."""

    SEED = "seed"
    ENGINEERED = "engineered"


#: The columns each feature set reads from a raw record.
FEATURE_COLUMNS: dict[FeatureSet, tuple[str, ...]] = {
    FeatureSet.SEED: ("Pclass", "Sex", "Age", "SibSp", "Parch", "Fare"),
    FeatureSet.ENGINEERED: ("Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Name", "Embarked", "Cabin"),
}


def _numeric() -> Pipeline:
    return make_pipeline(SimpleImputer(strategy="median"), StandardScaler())


def _categorical() -> Pipeline:
    return make_pipeline(
        SimpleImputer(strategy="most_frequent"),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )


def _title() -> Pipeline:
    # A fixed vocabulary turns "Braund, Mr. Owen Harris" into a one-hot title
    # without a custom transformer; a missing name simply has no title.
    return make_pipeline(
        SimpleImputer(strategy="constant", fill_value=""),
        FunctionTransformer(np.ravel),
        CountVectorizer(vocabulary=list(TITLES), binary=True),
    )


def _family_size() -> Pipeline:
    return make_pipeline(
        SimpleImputer(strategy="constant", fill_value=0),
        FunctionTransformer(np.sum, kw_args={"axis": 1, "keepdims": True}),
    )


def _travels_with_family() -> Pipeline:
    return make_pipeline(_family_size(), Binarizer(threshold=0.0))


def build_preprocessor(feature_set: FeatureSet) -> ColumnTransformer:
    """Return an unfitted transformer from raw records to the feature set's matrix."""
    transformers: list[tuple[str, object, list[str]]] = [
        ("numeric", _numeric(), ["Age", "SibSp", "Parch", "Fare"]),
        ("categorical", _categorical(), ["Pclass", "Sex"]),
    ]
    if feature_set is FeatureSet.ENGINEERED:
        transformers += [
            ("port", _categorical(), ["Embarked"]),
            ("title", _title(), ["Name"]),
            ("family_size", _family_size(), ["SibSp", "Parch"]),
            ("with_family", _travels_with_family(), ["SibSp", "Parch"]),
            ("cabin_known", MissingIndicator(features="all"), ["Cabin"]),
        ]
    # Dense output: HistGradientBoosting refuses sparse input.
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)


#: Output names of transformers that cannot name their own columns.
_SINGLE_COLUMN_OUTPUTS = {"family_size": "family_size", "with_family": "with_family"}


def feature_names(preprocessor: ColumnTransformer) -> list[str]:
    """Names of the fitted preprocessor's output columns, in order, as the data names them.

    One-hot and numeric columns keep scikit-learn's own names (``Sex_female``, ``Fare``);
    only a name two transformers share is prefixed with its transformer (``port__...``),
    so a name never stands for two columns.
    """
    named: list[tuple[str, str]] = []
    for name, transformer, columns in preprocessor.transformers_:
        if name == "remainder":
            continue
        if name in _SINGLE_COLUMN_OUTPUTS:
            named.append((name, _SINGLE_COLUMN_OUTPUTS[name]))
        elif name == "title":
            named += [(name, f"title_{title}") for title in transformer[-1].get_feature_names_out()]
        elif name == "cabin_known":
            named.append((name, "cabin_known"))
        else:
            named += [(name, str(out)) for out in transformer.get_feature_names_out(columns)]
    counts = Counter(out for _, out in named)
    return [out if counts[out] == 1 else f"{name}__{out}" for name, out in named]
