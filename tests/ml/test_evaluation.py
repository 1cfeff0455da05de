"""What a run's importance plot and JSON call the features: the data's own names."""

from __future__ import annotations

import json

from titanic_bench.data.loading import load_titanic
from titanic_bench.ml.evaluation import fit_and_score, holdout_split, importances, reports
from titanic_bench.ml.experiments import EXPERIMENTS
from titanic_bench.ml.figures import importance_figure


def test_native_importances_are_named_as_the_data_names_its_columns() -> None:
    spec = next(spec for spec in EXPERIMENTS if spec.name == "random_forest_engineered")
    split = holdout_split(load_titanic())
    evaluation = fit_and_score(spec, split)
    values = importances(split, evaluation)
    ranked = json.loads(reports(split, evaluation, values)["reports/feature_importance.json"])
    assert {"Sex_female", "Sex_male", "Fare", "Age", "title_mr", "Embarked_S", "cabin_known"} <= set(ranked)
    assert [name for name in ranked if "__" in name] == []
    assert list(ranked) == sorted(ranked, key=ranked.__getitem__, reverse=True)
    labels = [label.get_text() for label in importance_figure(values).axes[0].get_yticklabels()]
    assert sorted(labels) == sorted(ranked)
