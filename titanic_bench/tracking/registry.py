"""The Model Registry: the session's winner, the current champion, and promotion.

Only the controller calls this, at the end of the session, so exactly one version is
created per session however many workers ran (the alias would otherwise end on
whichever process wrote last). Everything here is registry I/O; the session decides
(:mod:`titanic_bench.session.promotion`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from titanic_bench.errors import ModelLoadError
from titanic_bench.gates.checks import Reference
from titanic_bench.ml import metrics as table
from titanic_bench.session.results import ExperimentResult, ranked
from titanic_bench.tracking.client import Tracker
from titanic_bench.tracking.models import RegisteredVersion, load_version
from titanic_bench.tracking.runs import fold_history
from titanic_bench.tracking.tags import TagKey, VersionTag

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

#: MLflow's error code for a registered model or alias that does not exist.
NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
#: MLflow's error codes for creating a registered model that exists (stores differ).
ALREADY_EXISTS = ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS")
#: How ``log_model`` names a logged model: ``models:/<model id>``.
LOGGED_MODEL_SCHEME = "models:/"


def select_winner(results: Sequence[ExperimentResult], metric: str) -> tuple[ExperimentResult | None, str]:
    """The first of :func:`ranked`: the eligible run with the best cross-validated mean of ``metric``."""
    if not results:
        return None, "no experiment reported a result"
    order = ranked(results, metric)
    if not order[0].eligible:
        failed = ", ".join(sorted(result.spec for result in results))
        checks = "floors and gate" if any(result.gate_failed for result in results) else "floors"
        return None, f"no run passed its {checks} (failed: {failed})"
    winner, passing = order[0], sum(result.eligible for result in results)
    best = "highest" if table.metric(metric).greater_is_better else "lowest"
    return (
        winner,
        f"{best} cross-validated {metric} ({winner.cv_mean(metric):.4f}) among {passing} passing run(s)",
    )


def champion_version(tracker: Tracker, model_name: str, alias: str) -> ModelVersion | None:
    """The version ``alias`` points to; None only when the model or the alias does not exist.

    The alias is read from the registered model: MLflow reports a missing alias of an
    existing model as INVALID_PARAMETER_VALUE, a code it also uses for real faults, and a
    model sits without the alias whenever another session has registered its version but
    not yet moved the alias. Any other registry failure (a 5xx, a timeout, a permission
    error) is a TrackingError: treating it as "no champion" would promote the winner
    without comparing it.
    """
    from mlflow.exceptions import MlflowException

    with tracker.call(f"reading {model_name}@{alias}"):
        try:
            model = tracker.client.get_registered_model(model_name)
        except MlflowException as error:
            if error.error_code == NOT_FOUND:
                return None
            raise
        version = (model.aliases or {}).get(alias)
        return None if version is None else tracker.client.get_model_version(model_name, str(version))


def logged_reference(
    tracker: Tracker, version: ModelVersion, label: str, metrics: Sequence[str]
) -> Reference | None:
    """The champion's fold scores as its run logged them; None when its run lacks them."""
    run_id = (version.tags or {}).get(VersionTag.RUN_ID) or version.run_id
    if not run_id:
        return None
    with tracker.call(f"reading the run of {label}"):
        tags = tracker.client.get_run(run_id).data.tags
        folds = {metric: fold_history(tracker, run_id, metric) for metric in metrics}
    if not tags.get(TagKey.CV_PLAN) or not all(folds.values()):
        return None
    return Reference(label, tags.get(TagKey.DATA_DIGEST, ""), tags[TagKey.CV_PLAN], folds)


def load_champion(tracker: Tracker, version: ModelVersion) -> Any:
    """The champion's model, loaded with skops and our allow-list only (never pickle)."""
    found = RegisteredVersion(version.name, str(version.version), dict(version.tags or {}))
    try:
        return load_version(tracker.uri, found)
    except ModelLoadError as error:
        raise ModelLoadError(
            f"the champion, {version.name} version {version.version}, is refused: {error}"
        ) from None


def version_tags(winner: ExperimentResult, session_id: str, metric: str) -> dict[str, str]:
    return {
        VersionTag.SESSION: session_id,
        VersionTag.SPEC: winner.spec,
        VersionTag.RUN_ID: winner.run_id,
        VersionTag.DATA_DIGEST: winner.data_digest,
        VersionTag.SELECTION_METRIC: metric,
        **{VersionTag.metric(name): f"{value:.6f}" for name, value in sorted(winner.metrics.items())},
    }


def register(tracker: Tracker, model_uri: str, model_name: str, tags: Mapping[str, str]) -> str:
    """Register the logged model ``model_uri`` (``models:/<model id>``, as ``log_model`` gives
    it) as a new version of ``model_name``, creating the model if needed; return the number."""
    from mlflow.exceptions import MlflowException

    scheme, _, model_id = model_uri.partition(LOGGED_MODEL_SCHEME)
    if scheme or not model_id or "/" in model_id:
        raise ValueError(
            f"not a logged model's URI: {model_uri!r} (expected {LOGGED_MODEL_SCHEME}<model id>)"
        )
    with tracker.call(f"registering a version of {model_name}"):
        try:
            tracker.client.create_registered_model(model_name)
        except MlflowException as error:
            if error.error_code not in ALREADY_EXISTS:
                raise
        version = tracker.client.create_model_version(
            model_name, source=model_uri, tags=dict(tags), model_id=model_id
        )
    return str(version.version)


def move_alias(tracker: Tracker, model_name: str, alias: str, version: str) -> None:
    with tracker.call(f"moving {model_name}@{alias} to version {version}"):
        tracker.client.set_registered_model_alias(model_name, alias, version)
