"""The one allow-list of types that skops may load from a saved model.

MLflow 3.17 saves scikit-learn models with skops, which refuses every type not
known to be safe. Each entry here was reviewed as plain data or a pure function;
a model needing anything else is refused at save time, never pickled instead.
"""

from __future__ import annotations

from collections.abc import Iterable

import skops.io

TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "numpy.dtype",
        "numpy.ravel",
        "numpy.sum",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.tree._tree.Tree",
    }
)


class UntrustedModelError(Exception):
    """A model needs a type outside :data:`TRUSTED_TYPES`."""


def trusted_types_for(model: object) -> list[str]:
    """The minimal sorted list of allow-listed types ``model`` needs to load again."""
    needed = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    check_allowed(needed, what=f"the {type(model).__name__} model")
    return sorted(needed)


def check_allowed(types: Iterable[str], *, what: str) -> None:
    """Raise UntrustedModelError naming every type of ``types`` that is not allow-listed."""
    unknown = sorted(set(types) - TRUSTED_TYPES)
    if unknown:
        raise UntrustedModelError(
            f"{what} needs type(s) {', '.join(unknown)} that are not in the skops allow-list. "
            "Review them and add them to TRUSTED_TYPES in titanic_bench/trusted_types.py "
            "if they are safe to load; the harness never falls back to pickle."
        )
