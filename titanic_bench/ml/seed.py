"""The one seed of the benchmark: model seeds, the holdout split and the CV folds derive from it."""

from __future__ import annotations

SEED = 42
