"""``titanic-bench reproduce RUN_ID``: re-run a logged experiment and compare, bit for bit.

Everything comes from what the run logged: the estimator (``model_type`` and the
``estimator_params`` JSON), the feature set, the holdout and CV seeds and plan, and
the data digest. The new metrics are compared with ``==`` (no tolerance); timings
are not compared, they are never reproducible. Exit code 0: every input and metric
matches; 1: something differs; 2: the run cannot be re-run.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from titanic_bench.errors import ReproduceError
from titanic_bench.paths import HOME_ENV, state_paths
from titanic_bench.tracking.client import TRACKING_URI_ENV, Tracker, error_text
from titanic_bench.tracking.registry import NOT_FOUND

#: Logged metrics that are not results of the experiment: timings, floors, gate outcomes.
_NOT_COMPARED_PREFIXES = ("floor_", "gate_")
_NOT_COMPARED_SUFFIXES = ("_seconds", "_fold")
#: Ends the message when the tracking server or store cannot be reached.
REACH_ADVICE = "Start it, or pass --tracking-uri."


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    spec: str
    model_type: str
    estimator_params: dict[str, Any]
    feature_set: str
    seed: int
    cv: tuple[int, int, int]  # folds, repeats, seed
    data_digest: str
    data_source: str
    metrics: dict[str, float]
    fold_scores: dict[str, list[float]]
    environment: dict[str, Any]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", help="the MLflow run id of an experiment run")
    parser.add_argument(
        "--tracking-uri",
        help="tracking server or store (default $MLFLOW_TRACKING_URI, "
        "else the SQLite store in the state folder)",
    )
    parser.add_argument("--home", help="state folder (default $TITANIC_BENCH_HOME or ./.titanic-bench)")
    parser.add_argument(
        "--data",
        help="CSV to re-run on, 'package' or 'kaggle' (default: the file the "
        "run logged, else the shipped copy)",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override an estimator param (VALUE as JSON, else a string); repeatable",
    )


def run(args: argparse.Namespace) -> int:
    """Exit 0 when everything matches, 1 on a difference; a BenchError (exit 2) when it cannot re-run."""
    overrides = parse_overrides(args.param)
    logged = read_logged_run(Tracker.connect(_tracking_uri(args), REACH_ADVICE), args.run_id)
    lines, matched = reproduce(logged, args.data, overrides)
    print("\n".join(lines))
    return 0 if matched else 1


def _tracking_uri(args: argparse.Namespace) -> str:
    if args.tracking_uri:
        return str(args.tracking_uri)
    if os.environ.get(TRACKING_URI_ENV):
        return os.environ[TRACKING_URI_ENV]
    paths = state_paths(args.home)
    if not paths.database.is_file():
        # MLflow would create an empty store there, and then find no run in it.
        raise ReproduceError(
            f"there is no MLflow store at {paths.database}: pass the state folder of the session with "
            f"--home (or {HOME_ENV}), or the server with --tracking-uri."
        )
    return f"sqlite:///{paths.database}"


def parse_overrides(items: list[str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise ReproduceError(f"--param {item!r} is not NAME=VALUE, e.g. --param max_depth=1.")
        try:
            overrides[name] = json.loads(text)
        except ValueError:
            overrides[name] = text
    return overrides


def read_logged_run(tracker: Tracker, run_id: str) -> LoggedRun:
    """Everything re-running ``run_id`` needs, read from its params, tags and metrics."""
    from mlflow.exceptions import MlflowException

    from titanic_bench.ml.metrics import METRIC_NAMES
    from titanic_bench.tracking.runs import ESTIMATOR_PARAMS, fold_history
    from titanic_bench.tracking.tags import TagKey

    try:
        found = tracker.client.get_run(run_id)
    except MlflowException as error:
        if error.error_code != NOT_FOUND:
            raise ReproduceError(
                f"cannot reach the tracking server {tracker.shown_uri} to read run {run_id}: "
                f"{error_text(error)}. {REACH_ADVICE}"
            ) from None
        raise ReproduceError(
            f"run {run_id} not found on {tracker.shown_uri}. "
            "Pass --tracking-uri or --home to point at its store."
        ) from None
    params, tags = found.data.params, found.data.tags
    needed = (ESTIMATOR_PARAMS, "model_type", "feature_set", "seed", "cv_folds", "cv_repeats", "cv_seed")
    missing = [key for key in needed if key not in params]
    if missing or TagKey.DATA_DIGEST not in tags:
        raise ReproduceError(
            f"run {run_id} lacks {', '.join(missing) or TagKey.DATA_DIGEST}: it was not "
            "logged by a titanic-bench version that records what reproducing takes."
        )
    return LoggedRun(
        run_id=run_id,
        spec=tags.get(TagKey.SPEC, "?"),
        model_type=params["model_type"],
        estimator_params=json.loads(params[ESTIMATOR_PARAMS]),
        feature_set=params["feature_set"],
        seed=int(params["seed"]),
        cv=(int(params["cv_folds"]), int(params["cv_repeats"]), int(params["cv_seed"])),
        data_digest=tags[TagKey.DATA_DIGEST],
        data_source=tags.get(TagKey.DATA_SOURCE, ""),
        metrics=dict(found.data.metrics),
        fold_scores={metric: fold_history(tracker, run_id, metric) for metric in METRIC_NAMES},
        environment=json.loads(tags.get(TagKey.ENVIRONMENT, "{}")),
    )


def estimator_factory(model_type: str) -> Any:
    """The harness's own factories first (e.g. CalibratedSVC), then scikit-learn's classifiers."""
    from sklearn.utils import all_estimators

    from titanic_bench.ml.experiments import EXPERIMENTS

    factories = {name: cls for name, cls in all_estimators(type_filter="classifier")}
    factories.update({spec.model_type: spec.estimator for spec in EXPERIMENTS})
    if model_type not in factories:
        raise ReproduceError(
            f"model_type {model_type!r} is neither a harness factory nor a scikit-learn "
            "classifier; it cannot be rebuilt here."
        )
    return factories[model_type]


def reproduce(
    logged: LoggedRun, data_source: str | None, overrides: Mapping[str, Any]
) -> tuple[list[str], bool]:
    """Re-run ``logged`` and return the report lines and whether everything matched."""
    from titanic_bench.data.loading import PACKAGE_SOURCE, load_titanic

    source = data_source or (logged.data_source if Path(logged.data_source).is_file() else PACKAGE_SOURCE)
    data = load_titanic(source, allow_other=True)
    params = {**logged.estimator_params, **overrides}
    metrics, folds = rerun(logged, params, data)
    lines = [f"Reproducing run {logged.run_id} ({logged.spec}, {logged.model_type}) on {data.source}", ""]
    inputs_ok = True
    if data.digest != logged.data_digest:
        inputs_ok = False
        lines.append(f"DATA DIFFERS: logged sha256 {logged.data_digest}, now {data.digest}")
    for name, value in overrides.items():
        if logged.estimator_params.get(name, "<unset>") != value:
            inputs_ok = False
            lines.append(
                f"PARAM CHANGED: {name} logged {logged.estimator_params.get(name, '<unset>')!r}, "
                f"re-run with {value!r}"
            )
    lines += code_differences(logged)
    metric_lines, metrics_ok = compare_metrics(logged, metrics, folds)
    lines += [
        "",
        "metric                      logged                  reproduced              verdict",
        *metric_lines,
        "",
        *environment_differences(logged.environment),
    ]
    matched = inputs_ok and metrics_ok
    lines += ["", "RESULT: " + ("every metric matches exactly" if matched else "MISMATCH")]
    return lines, matched


def rerun(
    logged: LoggedRun, params: Mapping[str, Any], data: Any
) -> tuple[dict[str, float], dict[str, list[float]]]:
    from titanic_bench.ml.crossval import CVPlan, cross_validate_spec
    from titanic_bench.ml.evaluation import fit_and_score, holdout_split
    from titanic_bench.ml.experiments import ExperimentSpec
    from titanic_bench.ml.features import FeatureSet

    spec = ExperimentSpec(
        name=logged.spec,
        title=logged.spec,
        estimator=estimator_factory(logged.model_type),
        params=dict(params),
        feature_set=FeatureSet(logged.feature_set),
        floors={},
    )
    try:
        evaluation = fit_and_score(spec, holdout_split(data, logged.seed))
        cv = cross_validate_spec(spec, data.features, data.target, CVPlan(*logged.cv))
    except (ValueError, TypeError) as error:
        # scikit-learn's verdict on a param, e.g. --param max_depth=abc
        raise ReproduceError(
            f"{logged.model_type} cannot be re-run with params {dict(params)}: {error_text(error)}"
        ) from None
    return {**evaluation.metrics, **cv.summary()}, cv.fold_scores


def compared(name: str) -> bool:
    return not name.startswith(_NOT_COMPARED_PREFIXES) and not name.endswith(_NOT_COMPARED_SUFFIXES)


def compare_metrics(
    logged: LoggedRun, metrics: Mapping[str, float], folds: Mapping[str, list[float]]
) -> tuple[list[str], bool]:
    """One line per metric (exact ``==``), then one per fold series; timings are skipped."""
    lines, ok = [], True
    for name in sorted(key for key in logged.metrics if compared(key)):
        new = metrics.get(name)
        same = new == logged.metrics[name]
        ok &= same
        lines.append(f"{name:<27} {logged.metrics[name]!r:<23} {new!r:<23} {'match' if same else 'DIFFERS'}")
    for metric, scores in sorted(logged.fold_scores.items()):
        new_scores = folds.get(metric, [])
        differing = [i for i, (a, b) in enumerate(zip(scores, new_scores, strict=False)) if a != b]
        same = len(scores) == len(new_scores) and not differing
        ok &= same
        detail = "match" if same else f"DIFFERS on split(s) {differing[:5] or 'count'}"
        lines.append(f"{f'cv_{metric}_fold ({len(scores)} splits)':<75} {detail}")
    lines.append("(not compared: *_seconds timings, floor_* constants, gate_* outcomes)")
    return lines, ok


def code_differences(logged: LoggedRun) -> list[str]:
    """Note when experiments.py now gives the spec other params than the run logged."""
    from titanic_bench.ml.experiments import EXPERIMENTS

    current = {spec.name: spec.json_params() for spec in EXPERIMENTS}.get(logged.spec)
    if current is None or current == logged.estimator_params:
        return []
    before = logged.estimator_params
    changed = sorted(name for name in set(current) | set(before) if current.get(name) != before.get(name))
    return [
        f"note: {logged.spec} in experiments.py now differs from the logged params in {', '.join(changed)}; "
        "the re-run uses the logged ones."
    ]


def environment_differences(logged: Mapping[str, Any]) -> list[str]:
    """Every environment fact that differs between the run and this machine, flattened."""
    from titanic_bench.tracking.environment import describe

    before, now = _flatten(logged), _flatten(describe(Path.cwd()))
    keys = sorted(key for key in set(before) | set(now) if before.get(key) != now.get(key))
    if not logged:
        return ["environment: the run logged no environment record"]
    if not keys:
        return ["environment: identical to the run's"]
    return [
        "environment differences (logged -> now):",
        *(f"  {key}: {before.get(key)!r} -> {now.get(key)!r}" for key in keys),
    ]


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
