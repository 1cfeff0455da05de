"""Run one experiment end to end: split, fit, score, cross-validate, check, log, record.

This is what the ``titanic_bench`` fixture hands a benchmark test; a user's own
benchmark file needs nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from titanic_bench.data.loading import TitanicData, load_titanic
from titanic_bench.errors import BenchError, DataError
from titanic_bench.gates.baseline import reference_for
from titanic_bench.gates.checks import (
    GateCheck,
    check_floors,
    floor_failure_message,
    floors_passed,
    gate_against,
    gate_failure_message,
)
from titanic_bench.ml.crossval import CVResult, cross_validate_spec
from titanic_bench.ml.evaluation import fit_and_score, holdout_split, importances, reports
from titanic_bench.ml.experiments import ExperimentSpec
from titanic_bench.ml.figures import run_figures
from titanic_bench.session.context import SessionContext
from titanic_bench.session.results import RESULT_PROPERTY, ExperimentResult
from titanic_bench.tracking.client import Tracker
from titanic_bench.tracking.runs import ExperimentRecord, RunContext, SessionRun, log_experiment_run


def load_session_data(context: SessionContext) -> TitanicData:
    """The data the controller validated, loaded again here and checked to be the same."""
    data = load_titanic(context.data_source, allow_other=context.allow_other_data)
    if data.digest != context.data_digest:
        raise DataError(
            f"the data at {data.source} changed during the session (sha256 {data.digest[:12]}..., "
            f"the session started with {context.data_digest[:12]}...). Rerun the session."
        )
    return data


class Bench:
    """Trains and logs experiments for one test item: what the ``titanic_bench`` fixture gives.

    ``n_jobs`` is how many processes the cross-validation folds use: 1 in an xdist
    worker (the workers already use every core), more in a session without xdist.
    ``runner`` does the experiment's job: by default here, in this process; on a Dask
    cluster, it waits for the task the controller submitted.
    """

    def __init__(
        self,
        context: SessionContext,
        tracker: Tracker,
        data: TitanicData,
        item: pytest.Item,
        n_jobs: int = 1,
        runner: Runner | None = None,
    ) -> None:
        self.runner = runner or Experiment(context, tracker, data, n_jobs).run
        self.item = item

    def run(self, spec: ExperimentSpec) -> ExperimentResult:
        """Train ``spec``, cross-validate it, gate it, log its run, record the result.

        The run is logged completely even when a floor or the gate fails; call
        :func:`assert_result` (floors and gate) or :func:`assert_floors` on the result
        to fail the test then.
        """
        try:
            result = self.runner(spec, self.item.nodeid)
        except BenchError as error:
            failure = f"titanic-bench: {error}"
        else:
            self.item.user_properties.append((RESULT_PROPERTY, result.to_json()))
            return result
        # The server went away, a model needs an unlisted type...: the test fails on one line
        # (outside the except block, so pytest shows no chained exception with it).
        pytest.fail(failure, pytrace=False)


class Experiment:
    """One experiment's whole job, with no pytest in it: it can run in any process.

    ``run_tags`` are added to its run (a Dask task names its worker).
    """

    def __init__(
        self,
        context: SessionContext,
        tracker: Tracker,
        data: TitanicData,
        n_jobs: int = 1,
        run_tags: Mapping[str, str] | None = None,
    ) -> None:
        self.context = context
        self.tracker = tracker
        self.data = data
        self.n_jobs = n_jobs
        self.run_tags = dict(run_tags or {})

    def run(self, spec: ExperimentSpec, nodeid: str) -> ExperimentResult:
        """Train, score, cross-validate, check and log ``spec``; the result names its run."""
        self.reach_server()
        return self.log(self.record(spec, nodeid))

    def reach_server(self) -> None:
        """Fail before training, not after it, when the tracking server is gone: a dead
        server then fails each remaining case within its bounded retries."""
        with self.tracker.call("reaching the session run before training"):
            self.tracker.client.get_run(self.context.parent_run_id)

    def log(self, record: ExperimentRecord) -> ExperimentResult:
        """Log ``record`` as its run; the result names the run."""
        session = SessionRun(self.context.experiment_id, self.context.parent_run_id)
        context = self.context
        shared = RunContext(context.session_id, context.environment, context.pip_requirements, self.run_tags)
        run_id, model_uri = log_experiment_run(self.tracker, session, shared, record)
        return self._result(record, run_id, model_uri)

    def record(self, spec: ExperimentSpec, nodeid: str) -> ExperimentRecord:
        """Train, score, cross-validate and check ``spec``: everything its run will hold."""
        split = holdout_split(self.data)
        evaluation = fit_and_score(spec, split)
        cv = cross_validate_spec(spec, self.data.features, self.data.target, self.context.cv, self.n_jobs)
        values = importances(split, evaluation)
        return ExperimentRecord(
            spec=spec,
            nodeid=nodeid,
            data=self.data,
            split=split,
            evaluation=evaluation,
            cv=cv,
            floors=check_floors(evaluation.metrics, spec.floors),
            gate=self.gate(spec, cv),
            figures=run_figures(spec.title, split, evaluation, values),
            texts=reports(split, evaluation, values),
        )

    def gate(self, spec: ExperimentSpec, cv: CVResult) -> list[GateCheck]:
        """Gate against the baseline when the baseline gate is on, else nothing."""
        if self.context.baseline is None:
            return []
        reference = reference_for(self.context.baseline, spec.name)
        return gate_against(
            cv.fold_scores,
            self.data.digest,
            cv.plan.label,
            cv.plan.test_train_ratio,
            reference,
            self.context.policy,
        )

    def _result(self, record: ExperimentRecord, run_id: str, model_uri: str) -> ExperimentResult:
        spec, floors, gate = record.spec, list(record.floors), list(record.gate)
        return ExperimentResult(
            spec=spec.name,
            title=spec.title,
            nodeid=record.nodeid,
            run_id=run_id,
            model_uri=model_uri,
            registered_model=spec.registered_model_name,
            data_digest=self.data.digest,
            metrics={**record.evaluation.metrics, **record.cv.summary()},
            floors=dict(spec.floors),
            passed=floors_passed(floors),
            failure="" if floors_passed(floors) else floor_failure_message(spec.name, floors),
            fold_scores=record.cv.fold_scores,
            cv_plan=record.cv.plan.label,
            params=spec.json_params(),
            gate=[check.to_dict() for check in gate],
            gate_failure=_gate_failure(spec, gate, self.context),
        )


#: What does one experiment's job for a test: (spec, test id) -> its result.
Runner = Callable[[ExperimentSpec, str], ExperimentResult]


def _gate_failure(spec: ExperimentSpec, gate: list[GateCheck], context: SessionContext) -> str:
    failed = any(check.failed for check in gate)
    return gate_failure_message(spec.name, gate, context.policy) if failed else ""


def assert_floors(result: ExperimentResult) -> None:
    """Fail the current test, listing every metric against its floor, if one was missed."""
    if not result.passed:
        pytest.fail(f"{result.failure}\n  run {result.run_id}", pytrace=False)


def assert_result(result: ExperimentResult) -> None:
    """Fail the current test on a missed floor or a failed regression gate, naming both."""
    failures = [text for text in (result.failure, result.gate_failure) if text]
    if failures:
        pytest.fail("\n".join([*failures, f"  run {result.run_id}"]), pytrace=False)
