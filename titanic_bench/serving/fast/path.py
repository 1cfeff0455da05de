"""A verified shortcut through a fitted ``Pipeline(ColumnTransformer, classifier)``.

For a single row, most of ``predict_proba``'s time is bookkeeping, not arithmetic:
the ColumnTransformer's parallel wrapper, pandas indexing and feature-name checks
in every step. This path calls the same fitted transformers on NumPy blocks (the
common steps replaced by their arithmetic, see :mod:`.transforms`) and stacks them
as the ColumnTransformer does, then the same classifier.

It is used only if, at load time, it gives bit-for-bit the pipeline's probabilities
on the whole training set and on single rows of it; otherwise the pipeline serves.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.pipeline import Pipeline

from titanic_bench.serving.fast.transforms import Transform, compiled_transform
from titanic_bench.serving.schema import Columns

log = logging.getLogger(__name__)

Predictor = Callable[[Columns], np.ndarray]
#: Rows checked one at a time at load: single-row answers take other code paths (BLAS).
SINGLE_ROWS_CHECKED = 25


def compile_fast_path(model: Any, reference: Columns) -> Predictor | None:
    """A ``predict_proba`` on columns, equal to ``model``'s on ``reference``'s frame, or None."""
    parts = _column_parts(model)
    if parts is None:
        return None
    classifier = _classifier_path(model[-1])

    def predict_proba(data: Columns) -> np.ndarray:
        # No DataFrame at all: pandas would convert the text columns to Arrow and back.
        blocks: list[Any] = [transform(_stack(data, columns)) for transform, columns in parts]
        dense = [block.toarray() if sparse.issparse(block) else block for block in blocks]
        return np.asarray(classifier(np.hstack(dense)))

    if not _agrees(predict_proba, model, reference):
        log.warning("the fast path disagrees with the pipeline; serving through the pipeline")
        return None
    return predict_proba


def _column_parts(model: Any) -> list[tuple[Transform, list[str]]] | None:
    """(transform of a transformer copy, its columns) for each block, or None for another shape."""
    if not (
        isinstance(model, Pipeline) and len(model.steps) == 2 and isinstance(model[0], ColumnTransformer)
    ):
        return None
    preprocessor = model[0]
    if preprocessor.sparse_threshold != 0:
        return None
    parts = []
    for name, transformer, columns in preprocessor.transformers_:
        if isinstance(transformer, str):
            if transformer == "drop" or (name == "remainder" and not len(columns)):
                continue
            return None  # "passthrough" blocks keep pandas dtypes; not worth the risk
        parts.append((compiled_transform(_without_feature_names(copy.deepcopy(transformer))), list(columns)))
    return parts


def _classifier_path(classifier: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The classifier's ``predict_proba``; for a forest, its trees summed in a plain loop.

    A forest's own method dispatches each tree through joblib with a fresh config and
    warning state: about 0.1 ms a tree, 10 ms for a single row through 100 trees.
    The loop does what it does sequentially (float32 input, sum in tree order, divide).
    """
    if (
        not isinstance(classifier, RandomForestClassifier | ExtraTreesClassifier)
        or classifier.n_outputs_ != 1
    ):
        return classifier.predict_proba  # type: ignore[no-any-return]
    trees = list(classifier.estimators_)

    def forest_proba(X: np.ndarray) -> np.ndarray:
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        total = np.zeros((X32.shape[0], classifier.n_classes_), dtype=np.float64)
        for tree in trees:
            total += tree.predict_proba(X32, check_input=False)
        total /= len(trees)
        return total

    return forest_proba


def _stack(data: Columns, columns: list[str]) -> np.ndarray:
    """The 2-D block of ``columns`` with pandas' common dtype: numbers and text give an object
    array, integers and floats a float64 one (an object array would cost a conversion per cell)."""
    arrays = [data[column] for column in columns]
    if any(array.dtype == object for array in arrays) and len({array.dtype for array in arrays}) > 1:
        arrays = [array.astype(object) for array in arrays]
    return np.column_stack(arrays)


def _without_feature_names(transformer: Any) -> Any:
    """The copy takes NumPy input, so it must not check (and warn about) column names."""
    if isinstance(transformer, Pipeline):
        for _, step in transformer.steps:
            _without_feature_names(step)  # steps may be pipelines themselves
    else:
        vars(transformer).pop("feature_names_in_", None)
    return transformer


def _agrees(fast: Predictor, model: Any, reference: Columns) -> bool:
    try:
        if not np.array_equal(fast(reference), model.predict_proba(pd.DataFrame(reference))):
            return False
        rows = len(next(iter(reference.values())))
        for i in range(min(SINGLE_ROWS_CHECKED, rows)):
            row = {name: array[i : i + 1] for name, array in reference.items()}
            if not np.array_equal(fast(row), model.predict_proba(pd.DataFrame(row))):
                return False
    except (ValueError, TypeError, AttributeError) as error:
        log.warning("the fast path fails on the reference rows (%s)", error)
        return False
    return True
