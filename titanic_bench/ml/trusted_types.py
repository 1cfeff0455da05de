"""The one allow-list of types that skops may load from a saved model.

MLflow 3.17 saves scikit-learn models with skops, which refuses every type not
known to be safe. Each entry here was reviewed as plain data or a pure function;
a model needing anything else is refused at save time, never pickled instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from titanic_bench.errors import UntrustedModelError

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


def trusted_types_for(model: object) -> list[str]:
    """The minimal sorted list of allow-listed types ``model`` needs to load again.

    Found by walking the fitted object graph, not by asking skops
    (``get_untrusted_types(data=dumps(model))``): that serialises the model a second
    time, as slowly as MLflow's own save (0.2-0.4 s per seed forest). The walk sees
    only allow-listed names; a model that needs any other type fails MLflow's
    test-load at save time, and :func:`refuse_untrusted` then names the types.
    A test checks that the walk and skops agree for every experiment.
    """
    return sorted(TRUSTED_TYPES.intersection(_reachable_names(model)))


def refuse_untrusted(model: object) -> None:
    """Raise UntrustedModelError if ``model`` needs a type outside the allow-list.

    Exact but slow (it serialises the model): for explaining a refused save, not for
    every save.
    """
    import skops.io

    needed = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    check_allowed(needed, what=f"the {type(model).__name__} model")


def check_allowed(types: Iterable[str], *, what: str) -> None:
    """Raise UntrustedModelError naming every type of ``types`` that is not allow-listed."""
    unknown = sorted(set(types) - TRUSTED_TYPES)
    if unknown:
        raise UntrustedModelError(
            f"{what} needs type(s) {', '.join(unknown)} that are not in the skops allow-list. "
            "Review them and add them to TRUSTED_TYPES in titanic_bench/trusted_types.py "
            "if they are safe to load; the harness never falls back to pickle."
        )


def _reachable_names(root: object) -> Iterator[str]:
    """Dotted names of the types, classes and functions reachable from ``root``, as skops names them."""
    seen: set[int] = set()
    pending: list[Any] = [root]
    while pending:
        obj = pending.pop()
        if isinstance(obj, np.ndarray) and obj.dtype == object:
            pending.extend(obj.ravel())  # e.g. GradientBoosting's grid of trees
            continue
        if id(obj) in seen or isinstance(obj, str | bytes | int | float | np.ndarray):
            continue
        seen.add(id(obj))
        if isinstance(obj, np.dtype):
            yield "numpy.dtype"  # skops records every dtype instance under this one name
        elif isinstance(obj, type) or (callable(obj) and hasattr(obj, "__qualname__")):
            yield f"{obj.__module__}.{obj.__qualname__}"
        else:
            yield f"{type(obj).__module__}.{type(obj).__qualname__}"
        if isinstance(obj, dict):
            pending.extend(obj.keys())
            pending.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            pending.extend(obj)
        elif not isinstance(obj, type) and hasattr(obj, "__dict__"):
            pending.extend(vars(obj).values())
