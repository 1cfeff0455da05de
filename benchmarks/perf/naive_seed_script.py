"""The straightforward script a team writes from the seed demo: the yardstick for the harness.

Four seed models, one after another, each with MLflow's default settings: params,
metrics, two plots, a text report and the model (requirements inferred), each
registered under its own name. It is deliberately plain; only the skops trusted
types are given, because MLflow 3.17 refuses to save tree models without them.

Run: MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python benchmarks/perf/naive_seed_script.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import mlflow.sklearn
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    accuracy_score,
    classification_report,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

from titanic_bench.data.loading import packaged_csv

FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare"]
MODELS = {
    "random_forest_baseline": (
        RandomForestClassifier(
            n_estimators=100, max_depth=None, min_samples_split=2, min_samples_leaf=1, random_state=42
        ),
        ["sklearn.tree._tree.Tree"],
    ),
    "random_forest_tuned": (
        RandomForestClassifier(
            n_estimators=200, max_depth=10, min_samples_split=5, min_samples_leaf=2, random_state=42
        ),
        ["sklearn.tree._tree.Tree"],
    ),
    "logistic_regression": (LogisticRegression(C=1.0, solver="lbfgs", max_iter=1000, random_state=42), []),
    "svm": (
        CalibratedClassifierCV(SVC(kernel="rbf", C=1.0, gamma="scale", random_state=42), ensemble=False),
        ["sklearn.calibration._CalibratedClassifier", "sklearn.calibration._SigmoidCalibration"],
    ),
}


def main() -> None:
    frame = pd.read_csv(packaged_csv())
    X = frame[FEATURES].copy()
    X["Sex"] = X["Sex"].map({"male": 0, "female": 1})
    X["Age"] = X["Age"].fillna(X["Age"].median())
    y = frame["Survived"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42, stratify=y)
    mlflow.set_experiment("naive-seed-script")
    for name, (model, trusted) in MODELS.items():
        with mlflow.start_run(run_name=name), tempfile.TemporaryDirectory() as folder:
            model.fit(X_train, y_train)
            predicted = model.predict(X_test)
            mlflow.log_params({"model": name, **model.get_params(deep=False)})
            mlflow.log_metrics(
                {
                    "accuracy": accuracy_score(y_test, predicted),
                    "precision": precision_score(y_test, predicted),
                    "recall": recall_score(y_test, predicted),
                    "f1": f1_score(y_test, predicted),
                    "roc_auc": roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]),
                }
            )
            ConfusionMatrixDisplay.from_predictions(y_test, predicted)
            plt.savefig(Path(folder) / "confusion_matrix.png")
            plt.close("all")
            importances = getattr(model, "feature_importances_", None)
            if importances is not None:
                plt.figure()
                plt.barh(FEATURES, importances)
                plt.savefig(Path(folder) / "feature_importance.png")
                plt.close("all")
            (Path(folder) / "classification_report.txt").write_text(classification_report(y_test, predicted))
            mlflow.log_artifacts(folder)
            mlflow.sklearn.log_model(
                model,
                name="model",
                input_example=X_test.head(5),
                registered_model_name=f"naive_{name}",
                skops_trusted_types=["numpy.dtype", *trusted],
            )


if __name__ == "__main__":
    main()
