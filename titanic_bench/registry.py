"""Pick the session's winner and promote it in the Model Registry.

Runs only on the controller at the end of the session, so exactly one version is
created per session however many workers ran (the alias would otherwise end on
whichever process wrote last).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from titanic_bench.results import ExperimentResult


@dataclass(frozen=True)
class Promotion:
    """What happened to the champion alias this session."""

    winner: ExperimentResult | None
    reason: str
    model_name: str = ""
    version: str = ""
    alias: str = ""


def select_winner(results: Sequence[ExperimentResult], metric: str) -> tuple[ExperimentResult | None, str]:
    """The passing run with the highest ``metric``; ties go to the smaller spec name."""
    if not results:
        return None, "no experiment reported a result"
    passing = [result for result in results if result.passed]
    if not passing:
        failed = ", ".join(sorted(result.spec for result in results))
        return None, f"no run passed its floors (failed: {failed})"
    winner = min(passing, key=lambda result: (-result.metrics[metric], result.spec))
    return winner, f"highest {metric} ({winner.metrics[metric]:.4f}) among {len(passing)} passing run(s)"


def promote(
    winner: ExperimentResult, model_name: str, alias: str, session_id: str, metric: str
) -> Promotion:
    """Register ``winner`` as a new version of ``model_name`` and point ``alias`` at it."""
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
        reason=f"{winner.spec} won: highest {metric}",
        model_name=model_name,
        version=str(version.version),
        alias=alias,
    )
