"""Small value objects for unit tests."""

from __future__ import annotations

from titanic_bench.session.results import ExperimentResult


def result(
    spec: str, *, passed: bool = True, auc: float = 0.85, cv_auc: float = 0.85, gate_failure: str = ""
) -> ExperimentResult:
    """A result with a holdout ROC-AUC ``auc`` and a cross-validated one ``cv_auc`` (CI +-0.02)."""
    metrics = {
        "roc_auc": auc,
        "accuracy": 0.8,
        "cv_roc_auc_mean": cv_auc,
        "cv_roc_auc_ci_low": cv_auc - 0.02,
        "cv_roc_auc_ci_high": cv_auc + 0.02,
    }
    return ExperimentResult(
        spec=spec,
        title=spec,
        nodeid=f"b::t[{spec}]",
        run_id=f"run-{spec}",
        model_uri=f"models:/m-{spec}",
        registered_model=f"titanic_{spec}",
        data_digest="d",
        metrics=metrics,
        floors={},
        passed=passed,
        gate_failure=gate_failure,
    )
