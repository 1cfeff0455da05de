"""The only module that talks to MLflow's tracking API.

It creates the session's experiment and parent run (controller), logs one
experiment run with everything a reader of the UI needs (workers), and attaches
the leaderboard to the session run at the end.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import mlflow.data
import mlflow.sklearn
from mlflow.data.pandas_dataset import PandasDataset, from_pandas
from mlflow.entities import DatasetInput, InputTag, Metric
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from titanic_bench.context import SessionContext
from titanic_bench.crossval import CVResult
from titanic_bench.data import DATASET_NAME, TitanicData
from titanic_bench.evaluation import (
    TEST_SIZE,
    Evaluation,
    Split,
    confusion_matrix_figure,
    importance_figure,
    importances,
    report_text,
    roc_curve_figure,
)
from titanic_bench.experiments import SEED, ExperimentSpec
from titanic_bench.features import FEATURE_COLUMNS
from titanic_bench.gates import FloorCheck, GateCheck, floors_passed
from titanic_bench.trusted_types import refuse_untrusted, trusted_types_for

TASK = "binary_classification"
#: Param holding the estimator's params as JSON (types intact) for ``reproduce``.
ESTIMATOR_PARAMS = "estimator_params"
#: Metric key of a metric's per-split scores, logged with step = split index.
FOLD_METRIC = "cv_{metric}_fold"
MODEL_ARTIFACT = "model"
INPUT_EXAMPLE_ROWS = 5


class TagKey:
    """Tag names every harness run carries; searches and tests use these."""

    KIND = "run_kind"
    SESSION = "session_id"
    SPEC = "spec"
    NODEID = "pytest_nodeid"
    DATASET = "dataset"
    DATA_DIGEST = "data_digest"
    DATA_SOURCE = "data_source"
    #: "true" for the pinned Kaggle file, "false" for data accepted with --bench-allow-other-data.
    DATA_PINNED = "data_pinned"
    TASK = "task"
    FLOORS = "floors"
    GIT_COMMIT = "mlflow.source.git.commit"
    GIT_DIRTY = "git_dirty"
    PYTHON = "python_version"
    SKLEARN = "sklearn_version"
    PLATFORM = "platform"
    CPU_COUNT = "cpu_count"
    #: The whole environment record as compact JSON, so ``reproduce`` needs no artifact access.
    ENVIRONMENT = "environment"
    CV_PLAN = "cv_plan"
    GATE = "gate"


KIND_SESSION = "session"
KIND_EXPERIMENT = "experiment"


def ensure_experiment(client: MlflowClient, name: str) -> str:
    """The experiment's id, creating it if missing (safe when another process races us)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise MlflowException(
                f"experiment {name!r} is deleted on this server; restore it in the UI or pass "
                "another --bench-experiment."
            )
        return str(experiment.experiment_id)
    try:
        return str(client.create_experiment(name))
    except MlflowException:
        existing = client.get_experiment_by_name(name)
        if existing is None:
            raise
        return str(existing.experiment_id)


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


def start_session_run(client: MlflowClient, experiment_id: str, session_id: str,
                      environment: Mapping[str, Any]) -> str:  # fmt: skip
    """The parent run that groups a session's experiment runs in the UI."""
    run = client.create_run(
        experiment_id,
        run_name=f"Benchmark session {session_id}",
        tags={TagKey.KIND: KIND_SESSION, TagKey.SESSION: session_id, TagKey.TASK: TASK,
              **environment_tags(environment)},
    )  # fmt: skip
    return str(run.info.run_id)


def find_session_run(context: SessionContext) -> SessionContext:
    """The context with the experiment and session run the controller created (workers).

    Workers start while the server boots and get the context before these exist;
    the controller creates them before any test is handed out.
    """
    client = MlflowClient(context.tracking_uri)
    experiment = client.get_experiment_by_name(context.experiment_name)
    query = f"tags.{TagKey.SESSION} = '{context.session_id}' and tags.{TagKey.KIND} = '{KIND_SESSION}'"
    runs = client.search_runs([experiment.experiment_id], query) if experiment else []
    if not runs:
        raise MlflowException(
            f"session {context.session_id} has no session run in experiment "
            f"{context.experiment_name!r} at {context.tracking_uri}; the controller did not open it."
        )
    run = runs[0]
    return replace(context, experiment_id=run.info.experiment_id, parent_run_id=run.info.run_id)


def end_session_run(client: MlflowClient, run_id: str, status: str,
                    files: Mapping[str, str], tags: Mapping[str, str]) -> None:  # fmt: skip
    """Attach the leaderboard files and close the session run."""
    for name, text in files.items():
        client.log_text(run_id, text, f"reports/{name}")
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    client.set_terminated(run_id, status)


def log_experiment_run(
    context: SessionContext,
    spec: ExperimentSpec,
    nodeid: str,
    data: TitanicData,
    split: Split,
    evaluation: Evaluation,
    checks: list[FloorCheck],
    cv: CVResult | None = None,
    gate: Sequence[GateCheck] = (),
) -> tuple[str, str]:
    """Log one experiment as a child of the session run; return (run id, model URI)."""
    passed = floors_passed(checks)
    tags = {
        TagKey.KIND: KIND_EXPERIMENT,
        TagKey.SESSION: context.session_id,
        TagKey.SPEC: spec.name,
        TagKey.NODEID: nodeid,
        TagKey.DATASET: DATASET_NAME,
        TagKey.DATA_DIGEST: data.digest,
        TagKey.DATA_SOURCE: data.source,
        TagKey.DATA_PINNED: str(data.pinned).lower(),
        TagKey.TASK: TASK,
        TagKey.FLOORS: "passed" if passed else "failed",
        **environment_tags(context.environment),
        **({TagKey.CV_PLAN: cv.plan.label} if cv else {}),
        **({TagKey.GATE: gate_tag(gate)} if gate else {}),
    }
    with mlflow.start_run(
        experiment_id=context.experiment_id,
        run_name=spec.title,
        tags=tags,
        parent_run_id=context.parent_run_id,
    ) as run:
        mlflow.log_params(run_params(spec, split, cv))
        mlflow.log_metrics(evaluation.metrics)  # the holdout metrics, which MLflow links to the model
        with _known_mlflow_warnings():
            log_dataset(data)
            model_uri = log_model(spec, split, evaluation, context.pip_requirements)
        # After the model: log_model re-reads the history of every metric logged so far,
        # one request each, to link them to the model; the CV series would cost ~0.5 s.
        mlflow.log_metrics({f"floor_{check.metric}": check.floor for check in checks} | gate_metrics(gate))
        if cv is not None:
            log_cross_validation(run.info.run_id, cv)
        log_plots_and_reports(spec, split, evaluation, context)
        return str(run.info.run_id), model_uri


def run_params(spec: ExperimentSpec, split: Split, cv: CVResult | None = None) -> dict[str, Any]:
    """Params for the UI, plus what ``reproduce`` rebuilds the experiment from."""
    cv_params = {}
    if cv is not None:
        cv_params = {"cv_folds": cv.plan.folds, "cv_repeats": cv.plan.repeats, "cv_seed": cv.plan.seed}
    return {
        **spec.all_params(),
        **cv_params,
        # Params come back from MLflow as strings; this one keeps JSON types exact (others as repr).
        ESTIMATOR_PARAMS: json.dumps(dict(spec.params), sort_keys=True, default=repr),
        "model_type": spec.model_type,
        "feature_set": spec.feature_set.value,
        "features": ",".join(FEATURE_COLUMNS[spec.feature_set]),
        "train_size": len(split.X_train),
        "test_size": len(split.X_test),
        "test_fraction": TEST_SIZE,
        "seed": SEED,
    }


def log_cross_validation(run_id: str, cv: CVResult) -> None:
    """The summary as plain metrics and every split's score as a step, in one batch."""
    now = int(time.time() * 1000)
    folds = [
        Metric(FOLD_METRIC.format(metric=metric), value, now, step)
        for metric, scores in cv.fold_scores.items()
        for step, value in enumerate(scores)
    ]
    summary = [Metric(key, value, now, 0) for key, value in cv.summary().items()]
    MlflowClient().log_batch(run_id, metrics=[*summary, *folds])


def gate_tag(gate: Sequence[GateCheck]) -> str:
    if any(check.failed for check in gate):
        return "failed"
    verdicts = sorted({check.verdict.value for check in gate})
    return ", ".join(verdicts)


def gate_metrics(gate: Sequence[GateCheck]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for check in gate:
        if check.delta is not None and check.p_value is not None:
            metrics[f"gate_{check.metric}_delta"] = check.delta
            metrics[f"gate_{check.metric}_p_value"] = check.p_value
    return metrics


def fold_history(client: MlflowClient, run_id: str, metric: str) -> list[float]:
    """A run's per-split scores of ``metric``, in split order."""
    history = client.get_metric_history(run_id, FOLD_METRIC.format(metric=metric))
    return [entry.value for entry in sorted(history, key=lambda entry: entry.step)]


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


def _dataset(data: TitanicData) -> PandasDataset:
    return from_pandas(
        data.frame, source=data.source, targets="Survived", name=DATASET_NAME,
        digest=data.digest[:32],
    )  # fmt: skip


def log_dataset(data: TitanicData) -> None:
    mlflow.log_input(_dataset(data), context="training")


def log_session_dataset(client: MlflowClient, run_id: str, data: TitanicData) -> None:
    """Record the data on the session run before any worker does.

    MLflow 3.17 inserts a dataset the first time a run of the experiment logs it
    and does not handle two runs doing so at once (UNIQUE constraint failed on
    datasets); once the controller has created it, workers only link to it.
    """
    with _known_mlflow_warnings():
        entity = _dataset(data)._to_mlflow_entity()
    context = InputTag(key=MLFLOW_DATASET_CONTEXT, value="training")
    client.log_inputs(run_id, datasets=[DatasetInput(dataset=entity, tags=[context])])


def log_plots_and_reports(spec: ExperimentSpec, split: Split, evaluation: Evaluation,
                          context: SessionContext) -> None:  # fmt: skip
    values = importances(split, evaluation)
    figures = {
        "plots/feature_importance.png": importance_figure(values),
        "plots/confusion_matrix.png": confusion_matrix_figure(split, evaluation),
        "plots/roc_curve.png": roc_curve_figure(split, evaluation, spec.title),
    }
    for path, figure in figures.items():
        mlflow.log_figure(figure, path)
        plt.close(figure)
    mlflow.log_text(report_text(split, evaluation), "reports/classification_report.txt")
    mlflow.log_dict(values.sort_values(ascending=False).to_dict(), "reports/feature_importance.json")
    mlflow.log_text(json.dumps(context.environment, indent=2), "environment.json")


def log_model(spec: ExperimentSpec, split: Split, evaluation: Evaluation,
              pip_requirements: list[str]) -> str:  # fmt: skip
    example = split.X_test.head(INPUT_EXAMPLE_ROWS)
    signature = infer_signature(example, evaluation.model.predict(example))
    try:
        info = mlflow.sklearn.log_model(
            evaluation.model,
            name=MODEL_ARTIFACT,
            signature=signature,
            input_example=example,
            pip_requirements=pip_requirements,
            skops_trusted_types=trusted_types_for(evaluation.model),
            registered_model_name=spec.registered_model_name,
        )
    except MlflowException:
        refuse_untrusted(evaluation.model)  # a type outside the allow-list: say which
        raise
    return str(info.model_uri)
