"""Cross-validation: fixed folds, identical scores in one process or two, the summary."""

from __future__ import annotations

import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from titanic_bench.data.loading import load_titanic
from titanic_bench.ml.crossval import CVPlan, cross_validate_spec
from titanic_bench.ml.experiments import ExperimentSpec
from titanic_bench.ml.features import FeatureSet
from titanic_bench.ml.metrics import METRIC_NAMES

FOREST = ExperimentSpec(
    "forest",
    "Forest",
    RandomForestClassifier,
    {"n_estimators": 20, "max_depth": 4, "random_state": 0},
    FeatureSet.SEED,
    {},
)
LOGISTIC = ExperimentSpec(
    "logistic", "Logistic", LogisticRegression, {"max_iter": 1000}, FeatureSet.ENGINEERED, {}
)


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return load_titanic()


@pytest.mark.parametrize("spec", [FOREST, LOGISTIC], ids=lambda spec: spec.name)
def test_scores_are_bit_identical_in_one_process_and_in_two(spec: ExperimentSpec, data) -> None:  # type: ignore[no-untyped-def]
    plan = CVPlan(3, 2)
    serial = cross_validate_spec(spec, data.features, data.target, plan, n_jobs=1)
    parallel = cross_validate_spec(spec, data.features, data.target, plan, n_jobs=2)
    assert serial.fold_scores == parallel.fold_scores  # ==, not approx
    assert set(serial.fold_scores) == set(METRIC_NAMES)
    assert all(len(scores) == plan.splitter().get_n_splits() for scores in serial.fold_scores.values())


def test_summary_has_mean_std_and_an_interval_around_the_mean(data) -> None:  # type: ignore[no-untyped-def]
    result = cross_validate_spec(LOGISTIC, data.features, data.target, CVPlan(3, 1))
    summary = result.summary()
    for metric in ("accuracy", "roc_auc", "log_loss"):
        assert summary[f"cv_{metric}_ci_low"] < summary[f"cv_{metric}_mean"] < summary[f"cv_{metric}_ci_high"]
        assert summary[f"cv_{metric}_std"] > 0
    assert 0.3 < summary["cv_log_loss_mean"] < 0.7  # a loss again, not scikit-learn's negated score


def test_plan_label_names_folds_repeats_and_seed() -> None:
    assert CVPlan(5, 3).label == "5x3 seed 42"
    assert CVPlan(5, 3).test_train_ratio == 0.25
