"""The session's experiment and runs in MLflow: create, log, find and close them.

The controller creates the experiment and the session's parent run and, at the end,
attaches the leaderboard to it; each test case logs one experiment run with
everything a reader of the UI needs. Every call goes through the session's
:class:`~titanic_bench.tracking.client.Tracker`. A run is created RUNNING and only
tagged ``floors=passed``/``failed`` once everything is logged: a run cut off half
way ends FAILED or KILLED and carries no verdict.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanic_bench.data.loading import DATASET_NAME, TARGET_COLUMN, TitanicData
from titanic_bench.errors import TrackingError
from titanic_bench.gates.checks import FloorCheck, GateCheck, floors_passed
from titanic_bench.ml.crossval import CVResult
from titanic_bench.ml.evaluation import TEST_SIZE, Evaluation, Split
from titanic_bench.ml.experiments import ExperimentSpec
from titanic_bench.ml.features import FEATURE_COLUMNS
from titanic_bench.ml.seed import SEED
from titanic_bench.ml.trusted_types import refuse_untrusted, trusted_types_for
from titanic_bench.tracking.client import Tracker, fluent_uri
from titanic_bench.tracking.tags import RunKind, TagKey

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from mlflow.entities import DatasetInput

TASK = "binary_classification"
#: Param holding the estimator's params as JSON (types intact) for ``reproduce``.
ESTIMATOR_PARAMS = "estimator_params"
#: Metric key of a metric's per-split scores, logged with step = split index.
FOLD_METRIC = "cv_{metric}_fold"
MODEL_ARTIFACT = "model"
INPUT_EXAMPLE_ROWS = 5
SESSION_REPORTS = "reports"


@dataclass(frozen=True)
class SessionRun:
    """Where a session logs: its experiment and its parent run."""

    experiment_id: str
    run_id: str


@dataclass(frozen=True)
class ExperimentRecord:
    """Everything one test case logs as its run: what was trained, measured and decided."""

    spec: ExperimentSpec
    nodeid: str
    data: TitanicData
    split: Split
    evaluation: Evaluation
    cv: CVResult
    floors: Sequence[FloorCheck]
    gate: Sequence[GateCheck] = ()
    figures: Mapping[str, Figure] = field(default_factory=dict)
    #: Text and JSON artifacts, by path.
    texts: Mapping[str, str] = field(default_factory=dict)


def open_session(
    tracker: Tracker,
    experiment_name: str,
    session_id: str,
    environment: Mapping[str, Any],
    data: TitanicData,
    controller: str,
) -> SessionRun:
    """Create (or find) the experiment and start the session's parent run, with the data on it.

    ``controller`` identifies the process that owns the session (see :data:`TagKey.CONTROLLER`).
    """
    with tracker.call(f"opening the experiment {experiment_name!r}"):
        experiment_id = ensure_experiment(tracker, experiment_name)
        tags = {TagKey.KIND: RunKind.SESSION, TagKey.SESSION: session_id, TagKey.TASK: TASK}
        tags |= {TagKey.CONTROLLER: controller} | environment_tags(environment)
        run = tracker.client.create_run(
            experiment_id, run_name=f"Benchmark session {session_id}", tags=_system_tags(tags)
        )
        # MLflow 3.17 inserts a dataset the first time a run of the experiment logs it and
        # fails when two runs do so at once (UNIQUE constraint on datasets): the session
        # run logs it first, so the experiment runs only link to it.
        log_dataset(tracker, run.info.run_id, data)
    return SessionRun(str(experiment_id), str(run.info.run_id))


#: MLflow's error code for an insert its database refused (the SQL store's IntegrityError).
CONSTRAINT_REFUSED = "BAD_REQUEST"


def log_dataset(tracker: Tracker, run_id: str, data: TitanicData) -> None:
    """Log ``data`` as the run's input. Two sessions that start at once on a new experiment
    both insert it, and MLflow refuses the second insert (UNIQUE constraint on datasets):
    the loser tries once more, and then links to the winner's row."""
    from mlflow.exceptions import MlflowException

    dataset = _dataset_input(data)
    try:
        tracker.client.log_inputs(run_id, datasets=[dataset])
    except MlflowException as error:
        # Only the refused insert: a server that is down has had its bounded retries already.
        if error.error_code != CONSTRAINT_REFUSED:
            raise
        tracker.client.log_inputs(run_id, datasets=[dataset])


def ensure_experiment(tracker: Tracker, name: str) -> str:
    """The experiment's id, creating it if missing (safe when another process races us)."""
    from mlflow.exceptions import MlflowException

    experiment = tracker.client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise TrackingError(
                f"the experiment {name!r} is deleted on the tracking server {tracker.shown_uri}: "
                "restore it in the MLflow UI, or pass another --bench-experiment."
            )
        return str(experiment.experiment_id)
    try:
        return str(tracker.client.create_experiment(name))
    except MlflowException:
        existing = tracker.client.get_experiment_by_name(name)
        if existing is None:
            raise
        return str(existing.experiment_id)


def find_session_run(tracker: Tracker, experiment_name: str, session_id: str) -> SessionRun:
    """The session run the controller created (workers, which start before it exists)."""
    with tracker.call(f"finding session {session_id}"):
        experiment = tracker.client.get_experiment_by_name(experiment_name)
        query = f"tags.{TagKey.SESSION} = '{session_id}' and tags.{TagKey.KIND} = '{RunKind.SESSION}'"
        runs = tracker.client.search_runs([experiment.experiment_id], query) if experiment else []
    if not runs:
        raise TrackingError(
            f"session {session_id} has no session run in experiment {experiment_name!r} on "
            f"{tracker.shown_uri}; the controller did not open it."
        )
    return SessionRun(str(runs[0].info.experiment_id), str(runs[0].info.run_id))


def end_session_run(
    tracker: Tracker,
    run_id: str,
    status: str,
    files: Mapping[str, str],
    tags: Mapping[str, str],
    pictures: Mapping[str, Path] | None = None,
) -> None:
    """Attach the leaderboard files, and ``pictures`` (artifact folder -> file already drawn),
    and close the session run."""
    with tracker.call("closing the session run"):
        for name, text in files.items():
            tracker.client.log_text(run_id, text, f"{SESSION_REPORTS}/{name}")
        for folder, picture in (pictures or {}).items():
            tracker.client.log_artifact(run_id, str(picture), folder)
        for key, value in tags.items():
            tracker.client.set_tag(run_id, key, value)
        tracker.client.set_terminated(run_id, status)


def close_dead_sessions(
    tracker: Tracker, experiment_id: str, session_id: str, alive: Callable[[str], bool]
) -> list[str]:
    """End as FAILED the RUNNING runs of earlier sessions whose controller is gone.

    ``alive(controller)`` tells from a session run's :data:`TagKey.CONTROLLER` tag whether
    its process still runs; a session whose liveness cannot be told is left alone.
    Returns the ids of the sessions closed.
    """
    running = f"attributes.status = 'RUNNING' and tags.{TagKey.SESSION} != '{session_id}'"
    with tracker.call("closing the runs of earlier sessions that died"):
        runs = tracker.client.search_runs([experiment_id], running)
        sessions = {run.data.tags[TagKey.SESSION] for run in runs if _dead(run.data.tags, alive)}
        for run in runs:
            if run.data.tags.get(TagKey.SESSION) in sessions:
                tracker.client.set_tag(run.info.run_id, TagKey.CLOSED_BY, session_id)
                tracker.client.set_terminated(run.info.run_id, "FAILED")
    return sorted(sessions)


def _dead(tags: Mapping[str, str], alive: Callable[[str], bool]) -> bool:
    return (
        tags.get(TagKey.KIND) == RunKind.SESSION
        and TagKey.CONTROLLER in tags
        and not alive(tags[TagKey.CONTROLLER])
    )


def session_ended(tracker: Tracker, session_run_id: str) -> bool:
    """Whether the session run is no longer RUNNING (its controller ended it, or was cut short)."""
    with tracker.call("reading the session run"):
        return str(tracker.client.get_run(session_run_id).info.status) != "RUNNING"


def end_open_runs(tracker: Tracker, experiment_id: str, session_id: str) -> list[str]:
    """End the session's experiment runs still RUNNING (their worker was stopped) as KILLED."""
    query = f"tags.{TagKey.SESSION} = '{session_id}' and attributes.status = 'RUNNING'"
    with tracker.call(f"ending the open runs of session {session_id}"):
        runs = tracker.client.search_runs([experiment_id], query)
        open_runs = [run for run in runs if run.data.tags.get(TagKey.KIND) == RunKind.EXPERIMENT]
        for run in open_runs:
            # A worker stopped between the verdict tag and the run's end left a verdict it never finished.
            if TagKey.FLOORS in run.data.tags:
                tracker.client.delete_tag(run.info.run_id, TagKey.FLOORS)
            tracker.client.set_terminated(run.info.run_id, "KILLED")
    return [str(run.info.run_id) for run in open_runs]


def log_experiment_run(
    tracker: Tracker, session: SessionRun, context: RunContext, record: ExperimentRecord
) -> tuple[str, str]:
    """Log ``record`` as a child of the session run; return its run id and model URI.

    The run ends FAILED if logging fails and KILLED on an interrupt, without a verdict tag.
    """
    with tracker.call(f"logging the run of {record.spec.name}"):
        run_id = str(
            tracker.client.create_run(
                session.experiment_id, run_name=record.spec.title, tags=_run_tags(session, context, record)
            ).info.run_id
        )
    try:
        with tracker.call(f"logging the run of {record.spec.name}"):
            key = run_key(context.session_id, record.nodeid)
            replace_earlier_attempts(tracker, session.experiment_id, context.session_id, key, run_id)
            model_uri = _log_contents(tracker, run_id, context, record)
            finish_run(tracker, run_id, record.spec.name, floors_passed(record.floors))
    except BaseException as error:
        _end_cut_off(tracker, run_id, "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
        raise
    return run_id, model_uri


def run_key(session_id: str, nodeid: str) -> str:
    """The value of :data:`TagKey.RUN_KEY`: the same for every attempt at one test's run."""
    return f"{session_id}/{nodeid}"


def replace_earlier_attempts(
    tracker: Tracker, experiment_id: str, session_id: str, key: str, run_id: str
) -> list[str]:
    """End as FAILED, tagged replaced by ``run_id``, the earlier runs with run key ``key``.

    An attempt that Dask re-ran after its worker died left a RUNNING run (or, had it
    died after logging, a FINISHED one): the session must keep one run per test.
    Returns the ids of the runs replaced.
    """
    query = f"tags.{TagKey.SESSION} = '{session_id}' and tags.{TagKey.KIND} = '{RunKind.EXPERIMENT}'"
    # Filtered here, not in the query: a test id may hold quotes.
    earlier = [
        run
        for run in tracker.client.search_runs([experiment_id], query)
        if run.data.tags.get(TagKey.RUN_KEY) == key and run.info.run_id != run_id
    ]
    for run in earlier:
        tracker.client.set_tag(run.info.run_id, TagKey.REPLACED_BY, run_id)
        tracker.client.set_terminated(run.info.run_id, "FAILED")
    return [str(run.info.run_id) for run in earlier]


def finish_run(tracker: Tracker, run_id: str, spec: str, passed: bool) -> None:
    """Tag the verdict and end the run FINISHED, unless a later attempt replaced it.

    The check runs again after the end: a retry may replace this attempt between the
    first check and the end, and then our FINISHED has overwritten its FAILED, so the run
    ends FAILED again, without its verdict.
    """
    _refuse_if_replaced(tracker, run_id, spec)
    tracker.client.set_tag(run_id, TagKey.FLOORS, "passed" if passed else "failed")
    tracker.client.set_terminated(run_id, "FINISHED")
    try:
        _refuse_if_replaced(tracker, run_id, spec)
    except TrackingError:
        _end_cut_off(tracker, run_id, "FAILED")
        raise


def _refuse_if_replaced(tracker: Tracker, run_id: str, spec: str) -> None:
    """An attempt Dask thought lost but that ran on must not finish after its replacement."""
    replaced_by = tracker.client.get_run(run_id).data.tags.get(TagKey.REPLACED_BY)
    if replaced_by:
        raise TrackingError(f"the run {run_id} of {spec} was replaced by a later attempt, run {replaced_by}.")


@dataclass(frozen=True)
class RunContext:
    """What every run of one session shares: its id, environment and model requirements;
    and the tags of where it runs (``tags``)."""

    session_id: str
    environment: Mapping[str, Any]
    pip_requirements: Sequence[str]
    tags: Mapping[str, str] = field(default_factory=dict)


def _run_tags(session: SessionRun, context: RunContext, record: ExperimentRecord) -> dict[str, str]:
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    tags = {
        TagKey.KIND: RunKind.EXPERIMENT,
        TagKey.SESSION: context.session_id,
        TagKey.SPEC: record.spec.name,
        TagKey.NODEID: record.nodeid,
        TagKey.RUN_KEY: run_key(context.session_id, record.nodeid),
        TagKey.DATASET: DATASET_NAME,
        TagKey.DATA_DIGEST: record.data.digest,
        TagKey.DATA_SOURCE: record.data.source,
        TagKey.DATA_PINNED: str(record.data.pinned).lower(),
        TagKey.TASK: TASK,
        TagKey.CV_PLAN: record.cv.plan.label,
        MLFLOW_PARENT_RUN_ID: session.run_id,
        **environment_tags(context.environment),
        **context.tags,
    }
    if record.gate:
        tags[TagKey.GATE] = gate_tag(record.gate)
    return _system_tags(tags)


def _log_contents(tracker: Tracker, run_id: str, context: RunContext, record: ExperimentRecord) -> str:
    from mlflow.entities import Param

    values = {key: str(value) for key, value in run_params(record.spec, record.split, record.cv).items()}
    params = [Param(key, value) for key, value in values.items()]
    # The holdout metrics before the model, which MLflow links to them.
    tracker.client.log_batch(run_id, metrics=_metrics(record.evaluation.metrics), params=params)
    with _known_mlflow_warnings():
        tracker.client.log_inputs(run_id, datasets=[_dataset_input(record.data)])
        example = record.split.X_test.head(INPUT_EXAMPLE_ROWS)
        model, name = record.evaluation.model, record.spec.registered_model_name
        model_uri = log_model(tracker, run_id, model, example, name, context.pip_requirements, values)
    # After the model: log_model re-reads the history of every metric logged so far,
    # one request each, to link them to the model; the CV series would cost ~0.5 s.
    later = {f"floor_{check.metric}": check.floor for check in record.floors} | gate_metrics(record.gate)
    tracker.client.log_batch(run_id, metrics=_metrics(later) + cross_validation_metrics(record.cv))
    for path, figure in record.figures.items():
        tracker.client.log_figure(run_id, figure, path)
    for path, text in record.texts.items():
        tracker.client.log_text(run_id, text, path)
    tracker.client.log_text(run_id, json.dumps(dict(context.environment), indent=2), "environment.json")
    return model_uri


def _end_cut_off(tracker: Tracker, run_id: str, status: str) -> None:
    """End a run whose logging was cut off; the original error matters more than this one."""
    from mlflow.exceptions import MlflowException

    # An interrupt can land between the verdict tag and the run's end: a cut-off run has no verdict.
    with suppress(MlflowException):
        tracker.client.delete_tag(run_id, TagKey.FLOORS)
    with suppress(MlflowException):
        tracker.client.set_terminated(run_id, status)


def run_params(spec: ExperimentSpec, split: Split, cv: CVResult) -> dict[str, Any]:
    """Params for the UI, plus what ``reproduce`` rebuilds the experiment from."""
    return {
        **spec.all_params(),
        "cv_folds": cv.plan.folds,
        "cv_repeats": cv.plan.repeats,
        "cv_seed": cv.plan.seed,
        # Params come back from MLflow as strings; this one keeps JSON types exact.
        ESTIMATOR_PARAMS: json.dumps(spec.json_params(), sort_keys=True),
        "model_type": spec.model_type,
        "feature_set": spec.feature_set.value,
        "features": ",".join(FEATURE_COLUMNS[spec.feature_set]),
        "train_size": len(split.X_train),
        "test_size": len(split.X_test),
        "test_fraction": TEST_SIZE,
        "seed": SEED,
    }


def _metrics(values: Mapping[str, float], step: int = 0) -> list[Any]:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(key, float(value), now, step) for key, value in values.items()]


def cross_validation_metrics(cv: CVResult) -> list[Any]:
    """The CV summary as plain metrics, and every split's score as a step of ``cv_<metric>_fold``."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    folds = [
        Metric(FOLD_METRIC.format(metric=metric), value, now, step)
        for metric, scores in cv.fold_scores.items()
        for step, value in enumerate(scores)
    ]
    return _metrics(cv.summary()) + folds


def gate_tag(gate: Sequence[GateCheck]) -> str:
    """``failed``, or the verdicts of a gate that passed ("pass", "no baseline", ...)."""
    if any(check.failed for check in gate):
        return "failed"
    return ", ".join(sorted({check.verdict.value for check in gate}))


def gate_metrics(gate: Sequence[GateCheck]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for check in gate:
        if check.delta is not None and check.p_value is not None:
            metrics[f"gate_{check.metric}_delta"] = check.delta
            metrics[f"gate_{check.metric}_p_value"] = check.p_value
        if check.mdd is not None:
            metrics[f"gate_{check.metric}_mdd"] = check.mdd
        if check.p_adjusted is not None:
            metrics[f"gate_{check.metric}_p_adjusted"] = check.p_adjusted
    return metrics


def record_gate_verdicts(tracker: Tracker, run_id: str, gate: Sequence[GateCheck]) -> None:
    """The session's final verdicts on a run logged before the family was decided."""
    from mlflow.entities import RunTag

    adjusted = {f"gate_{c.metric}_p_adjusted": c.p_adjusted for c in gate if c.p_adjusted is not None}
    with tracker.call("recording the session's gate verdicts"):
        tracker.client.log_batch(
            run_id, metrics=_metrics(adjusted), tags=[RunTag(TagKey.GATE, gate_tag(gate))]
        )


def fold_history(tracker: Tracker, run_id: str, metric: str) -> list[float]:
    """A run's per-split scores of ``metric``, in split order."""
    history = tracker.client.get_metric_history(run_id, FOLD_METRIC.format(metric=metric))
    return [entry.value for entry in sorted(history, key=lambda entry: entry.step)]


def environment_tags(environment: Mapping[str, Any]) -> dict[str, str]:
    tags = {
        TagKey.PYTHON: str(environment.get("python")),
        TagKey.SKLEARN: str(environment.get("packages", {}).get("scikit-learn")),
        TagKey.PLATFORM: str(environment.get("platform")),
        TagKey.CPU_COUNT: str(environment.get("cpu_count")),
        TagKey.ENVIRONMENT: json.dumps(environment, sort_keys=True, separators=(",", ":")),
    }
    git = environment.get("git") or {}
    if git.get("commit"):
        tags[TagKey.GIT_COMMIT] = git["commit"]
        tags[TagKey.GIT_DIRTY] = str(bool(git.get("dirty"))).lower()
    return tags


def _system_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """``tags`` plus the ones MLflow's own ``start_run`` adds (user, source), ours winning."""
    from mlflow.tracking.context.registry import resolve_tags

    return {key: str(value) for key, value in resolve_tags(dict(tags)).items()}


@contextmanager
def _known_mlflow_warnings() -> Iterator[None]:
    """Silence three MLflow 3.17 warnings that say nothing about the user's work.

    It registers its local dataset source twice and then warns the source is
    ambiguous; it hints at every integer column, though Pclass, SibSp and Parch are
    never missing; and it compares columns with a range, which pandas 3 deprecates.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The specified dataset source can be interpreted")
        warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer column")
        warnings.filterwarnings("ignore", "Operation with range is deprecated")
        yield


def _dataset_input(data: TitanicData) -> DatasetInput:
    """The data as an MLflow dataset used for training: name, source, digest, schema, profile."""
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    with _known_mlflow_warnings():
        dataset = from_pandas(
            data.frame, source=data.source, targets=TARGET_COLUMN, name=DATASET_NAME, digest=data.digest[:32]
        )
        entity = Dataset(**dataset.to_dict())
    return DatasetInput(dataset=entity, tags=[InputTag(key=MLFLOW_DATASET_CONTEXT, value="training")])


def log_model(
    tracker: Tracker,
    run_id: str,
    model: Any,
    example: Any,
    registered_name: str,
    pip_requirements: Sequence[str],
    params: Mapping[str, str] | None = None,
) -> str:
    """Log the fitted pipeline with skops, its minimal trusted types, signature and example,
    as a version of ``registered_name``; return the model's URI.

    The logged model is created in the run's experiment first: without an active run,
    ``log_model`` would put it in the process's active experiment (by default "0").
    """
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException
    from mlflow.models import infer_signature

    experiment_id = tracker.client.get_run(run_id).info.experiment_id
    logged = tracker.client.create_logged_model(
        experiment_id,
        name=MODEL_ARTIFACT,
        source_run_id=run_id,
        tags=_system_tags({}),
        params=dict(params or {}),
    )
    try:
        with fluent_uri(tracker.uri):
            info = mlflow.sklearn.log_model(
                model,
                name=MODEL_ARTIFACT,
                run_id=run_id,
                model_id=logged.model_id,
                signature=infer_signature(example, model.predict(example)),
                input_example=example,
                pip_requirements=list(pip_requirements),
                skops_trusted_types=trusted_types_for(model),
                registered_model_name=registered_name,
            )
    except MlflowException:
        refuse_untrusted(model)  # a type outside the allow-list: say which
        raise
    return str(info.model_uri)
