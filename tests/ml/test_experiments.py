"""The experiment specs, their pipelines and the skops allow-list."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.svm import SVC

from titanic_bench.data.loading import INPUT_COLUMNS, load_titanic
from titanic_bench.errors import UntrustedModelError
from titanic_bench.ml.evaluation import fit_and_score, holdout_split
from titanic_bench.ml.experiments import EXPERIMENTS, ExperimentSpec
from titanic_bench.ml.features import FEATURE_COLUMNS, FeatureSet, build_preprocessor, feature_names
from titanic_bench.ml.seed import SEED
from titanic_bench.ml.trusted_types import TRUSTED_TYPES, check_allowed, refuse_untrusted, trusted_types_for
from titanic_bench.tracking.client import Tracker
from titanic_bench.tracking.runs import log_model

SPECS = {spec.name: spec for spec in EXPERIMENTS}

SEED_PARAMS: dict[str, dict[str, object]] = {
    "random_forest_baseline": {
        "n_estimators": 100,
        "max_depth": None,
        "min_samples_split": 2,
        "min_samples_leaf": 1,
    },
    "random_forest_tuned": {
        "n_estimators": 200,
        "max_depth": 10,
        "min_samples_split": 5,
        "min_samples_leaf": 2,
    },
    "logistic_regression": {"penalty": "l2", "C": 1.0, "solver": "lbfgs", "max_iter": 1000},
    "svm": {"kernel": "rbf", "C": 1.0, "gamma": "scale", "probability": True},
}


def test_names_are_unique_and_registered_as_the_seed_did() -> None:
    assert len(SPECS) == len(EXPERIMENTS)
    assert SPECS["random_forest_baseline"].registered_model_name == "titanic_random_forest_baseline"
    assert SPECS["svm"].registered_model_name == "titanic_svm"
    assert all(spec.registered_model_name == f"titanic_{spec.name}" for spec in EXPERIMENTS)


@pytest.mark.parametrize("name", SEED_PARAMS)
def test_seed_experiments_keep_the_seed_hyperparameters(name: str) -> None:
    spec = SPECS[name]
    logged = spec.all_params()
    assert {key: logged[key] for key in SEED_PARAMS[name]} == SEED_PARAMS[name]
    assert logged["random_state"] == SEED == 42
    assert spec.feature_set is FeatureSet.SEED
    assert FEATURE_COLUMNS[FeatureSet.SEED] == ("Pclass", "Sex", "Age", "SibSp", "Parch", "Fare")
    assert spec.floors["accuracy"] >= 0.78 and spec.floors["roc_auc"] >= 0.80


def test_svm_gets_probabilities_the_non_deprecated_way() -> None:
    model = SPECS["svm"].build()[-1]
    assert isinstance(model, CalibratedClassifierCV)
    assert model.ensemble is False
    assert isinstance(model.estimator, SVC) and model.estimator.probability is not True


def test_at_least_two_engineered_experiments_including_boosting() -> None:
    engineered = [spec for spec in EXPERIMENTS if spec.feature_set is FeatureSet.ENGINEERED]
    assert len(engineered) >= 2
    assert any("Boosting" in spec.model_type for spec in engineered)


@pytest.fixture(scope="module")
def titanic() -> pd.DataFrame:
    return load_titanic().frame


@pytest.mark.parametrize("spec", EXPERIMENTS, ids=lambda spec: spec.name)
def test_pipeline_predicts_on_raw_rows_with_missing_values(
    spec: ExperimentSpec, titanic: pd.DataFrame
) -> None:
    model = spec.build().fit(titanic[list(INPUT_COLUMNS)], titanic["Survived"])
    raw = pd.DataFrame(
        [
            {
                "PassengerId": 1,
                "Pclass": 3,
                "Name": None,
                "Sex": "male",
                "Age": np.nan,
                "SibSp": 0,
                "Parch": 0,
                "Ticket": None,
                "Fare": np.nan,
                "Cabin": None,
                "Embarked": None,
            },
            {
                "PassengerId": 2,
                "Pclass": 1,
                "Name": "Doe, Mrs. Jane",
                "Sex": "female",
                "Age": 30.0,
                "SibSp": 1,
                "Parch": 2,
                "Ticket": "X",
                "Fare": 80.0,
                "Cabin": "C85",
                "Embarked": "C",
            },
        ]
    )
    probabilities = model.predict_proba(raw)[:, 1]
    assert probabilities.shape == (2,)
    assert probabilities[1] > probabilities[0]  # a first-class woman beats a third-class man


def test_engineered_features_read_titles_family_port_and_cabin(titanic: pd.DataFrame) -> None:
    preprocessor = build_preprocessor(FeatureSet.ENGINEERED).fit(titanic[list(INPUT_COLUMNS)])
    names = feature_names(preprocessor)
    row = pd.DataFrame([titanic.iloc[1][list(INPUT_COLUMNS)]])  # "Cumings, Mrs. John Bradley", C85, port C
    values = dict(zip(names, preprocessor.transform(row)[0], strict=True))
    assert values["title_mrs"] == 1 and values["title_mr"] == 0
    assert values["family_size"] == 1 and values["with_family"] == 1
    assert values["cabin_known"] == 0  # MissingIndicator: 1 means the cabin is missing
    assert values["Embarked_C"] == 1


@pytest.mark.parametrize("feature_set", list(FeatureSet))
def test_feature_names_are_the_datas_own_and_unique(titanic: pd.DataFrame, feature_set: FeatureSet) -> None:
    preprocessor = build_preprocessor(feature_set).fit(titanic[list(INPUT_COLUMNS)])
    names = feature_names(preprocessor)
    assert len(names) == len(set(names)) == preprocessor.transform(titanic.head(1)).shape[1]
    assert {"Sex_female", "Fare", "Pclass_3"} <= set(names)
    assert not [name for name in names if "__" in name]
    if feature_set is FeatureSet.ENGINEERED:
        assert {"title_mr", "Embarked_S", "family_size", "cabin_known"} <= set(names)


@pytest.mark.parametrize("spec", EXPERIMENTS, ids=lambda spec: spec.name)
def test_trusted_types_are_what_skops_finds_in_the_saved_model(
    spec: ExperimentSpec, titanic: pd.DataFrame
) -> None:
    model = spec.build().fit(titanic[list(INPUT_COLUMNS)], titanic["Survived"])
    needed = sorted(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    assert trusted_types_for(model) == needed
    assert set(needed) <= TRUSTED_TYPES


def test_a_type_outside_the_allow_list_is_refused_not_pickled(monkeypatch: pytest.MonkeyPatch) -> None:
    import titanic_bench.ml.trusted_types as trusted

    with pytest.raises(UntrustedModelError, match=r"builtins\.eval.*not in the skops allow-list"):
        check_allowed(["numpy.dtype", "builtins.eval"], what="the test model")
    monkeypatch.setattr(trusted, "TRUSTED_TYPES", frozenset({"numpy.dtype"}))
    forest = RandomForestClassifier(n_estimators=2).fit([[0], [1]], [0, 1])
    assert trusted_types_for(forest) == []
    with pytest.raises(
        UntrustedModelError, match=r"RandomForestClassifier model needs type\(s\) sklearn.tree._tree.Tree"
    ):
        refuse_untrusted(forest)


def test_logging_a_model_that_needs_an_unlisted_type_names_the_type(
    monkeypatch: pytest.MonkeyPatch, sqlite_tracker: Tracker
) -> None:
    import titanic_bench.ml.trusted_types as trusted

    spec = SPECS["logistic_regression"]
    split = holdout_split(load_titanic())
    evaluation = fit_and_score(spec, split)
    monkeypatch.setattr(trusted, "TRUSTED_TYPES", frozenset())
    tracker = sqlite_tracker
    run_id = tracker.client.create_run(tracker.client.create_experiment("refused")).info.run_id
    example = split.X_test.head(2)
    with pytest.raises(UntrustedModelError, match=r"needs type\(s\) numpy\.dtype"):
        log_model(tracker, run_id, evaluation.model, example, "titanic_refused", ["scikit-learn"])
