"""Pick the session's winner and promote it in the Model Registry.

Runs only on the controller at the end of the session, so exactly one version is
created per session however many workers ran (the alias would otherwise end on
whichever process wrote last).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from titanic_bench.gates import GateCheck, GatePolicy, Reference, gate_against
from titanic_bench.results import ExperimentResult

if TYPE_CHECKING:
    from titanic_bench.crossval import CVPlan


@dataclass(frozen=True)
class Promotion:
    """What happened to the champion alias this session."""

    winner: ExperimentResult | None
    reason: str
    model_name: str = ""
    version: str = ""
    alias: str = ""
    #: The winner against the current champion on the same folds; empty without a champion.
    champion_checks: tuple[GateCheck, ...] = ()

    @property
    def blocked(self) -> bool:
        """The winner is significantly worse than the champion, so the alias stays."""
        return any(check.failed for check in self.champion_checks)


def select_winner(results: Sequence[ExperimentResult], metric: str) -> tuple[ExperimentResult | None, str]:
    """The passing run with the highest cross-validated mean of ``metric`` (holdout value
    when there was no cross-validation); ties go to the smaller spec name."""
    if not results:
        return None, "no experiment reported a result"
    passing = [result for result in results if result.passed and not result.gate_failed]
    if not passing:
        failed = ", ".join(sorted(result.spec for result in results))
        checks = "floors and gate" if any(result.gate_failed for result in results) else "floors"
        return None, f"no run passed its {checks} (failed: {failed})"
    winner = min(passing, key=lambda result: (-result.ranking_value(metric), result.spec))
    label = f"cross-validated {metric}" if f"cv_{metric}_mean" in winner.metrics else f"holdout {metric}"
    return winner, f"highest {label} ({winner.ranking_value(metric):.4f}) among {len(passing)} passing run(s)"


def compare_with_champion(winner: ExperimentResult, model_name: str, alias: str, plan: CVPlan,
                          data: Any, policy: GatePolicy) -> tuple[GateCheck, ...]:  # fmt: skip
    """Gate the winner against the current champion on the same folds; () without one.

    The champion's logged fold scores are used when its run saw the same data and CV
    plan; otherwise its model is cross-validated again here on this session's folds.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return ()  # no registered model or no alias yet: nothing to beat
    label = f"champion v{version.version}"
    reference = _logged_reference(client, version, label, policy.metrics)
    if reference is None or reference.data_digest != winner.data_digest or reference.cv_plan != plan.label:
        reference = _recomputed_reference(model_name, alias, label, plan, data, winner.data_digest)
    checks = gate_against(winner.fold_scores, winner.data_digest, winner.cv_plan, plan.test_train_ratio,
                          reference, policy)  # fmt: skip
    return tuple(checks)


def _logged_reference(client: Any, version: Any, label: str, metrics: Sequence[str]) -> Reference | None:
    from titanic_bench.tracking import TagKey, fold_history

    run_id = (version.tags or {}).get("run_id") or version.run_id
    if not run_id:
        return None
    tags = client.get_run(run_id).data.tags
    folds = {metric: fold_history(client, run_id, metric) for metric in metrics}
    if not tags.get(TagKey.CV_PLAN) or not all(folds.values()):
        return None
    return Reference(label, tags.get(TagKey.DATA_DIGEST, ""), tags[TagKey.CV_PLAN], folds)


def _recomputed_reference(model_name: str, alias: str, label: str, plan: CVPlan, data: Any,
                          digest: str) -> Reference:  # fmt: skip
    """Refit clones of the champion's pipeline on this session's folds and data."""
    import mlflow.sklearn

    from titanic_bench.crossval import cross_validate_model

    model = mlflow.sklearn.load_model(f"models:/{model_name}@{alias}")
    cv = cross_validate_model(model, data.features, data.target, plan)
    return Reference(f"{label} (re-cross-validated)", digest, plan.label, cv.fold_scores)


def promote(
    winner: ExperimentResult,
    model_name: str,
    alias: str,
    session_id: str,
    metric: str,
    why: str,
    champion_checks: tuple[GateCheck, ...] = (),
) -> Promotion:
    """Register ``winner`` as a new version of ``model_name`` and point ``alias`` at it.

    ``why`` is :func:`select_winner`'s reason, repeated in the report.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    tags = {
        "session_id": session_id,
        "spec": winner.spec,
        "run_id": winner.run_id,
        "data_digest": winner.data_digest,
        "selection_metric": metric,
        **{f"metric.{name}": f"{value:.6f}" for name, value in sorted(winner.metrics.items())},
    }
    version = mlflow.register_model(winner.model_uri, model_name, tags=tags)
    MlflowClient().set_registered_model_alias(model_name, alias, str(version.version))
    return Promotion(
        winner=winner,
        reason=f"{winner.spec} won: {why}"
        + (", not significantly worse than the champion" if champion_checks else ""),
        model_name=model_name,
        version=str(version.version),
        alias=alias,
        champion_checks=champion_checks,
    )
