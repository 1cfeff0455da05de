"""Run one experiment end to end: split, fit, score, check floors, log to MLflow.

This is what the ``titanic_bench`` fixture hands a benchmark test; a user's own
benchmark file needs nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from titanic_bench.baseline import read_baseline, reference_for
from titanic_bench.context import SessionContext
from titanic_bench.crossval import CVPlan, CVResult, cross_validate_spec
from titanic_bench.data import DataError, TitanicData, load_titanic
from titanic_bench.evaluation import fit_and_score, holdout_split
from titanic_bench.experiments import ExperimentSpec
from titanic_bench.gates import (
    FloorCheck,
    GateCheck,
    GatePolicy,
    check_floors,
    floor_failure_message,
    floors_passed,
    gate_against,
    gate_failure_message,
)
from titanic_bench.results import RESULT_PROPERTY, ExperimentResult
from titanic_bench.tracking import log_experiment_run


def load_session_data(context: SessionContext) -> TitanicData:
    """The data the controller validated, loaded again here and checked to be the same."""
    data = load_titanic(context.data_source, allow_other=context.allow_other_data)
    if data.digest != context.data_digest:
        raise DataError(
            f"the data at {data.source} changed during the session (sha256 {data.digest[:12]}..., "
            f"the session started with {context.data_digest[:12]}...). Rerun the session."
        )
    return data


def gate_policy(context: SessionContext) -> GatePolicy:
    return GatePolicy(tuple(context.gate_metrics), context.gate_alpha, context.gate_min_effect)


def cv_plan(context: SessionContext) -> CVPlan:
    return CVPlan(context.cv_folds, context.cv_repeats)


class Bench:
    """Trains and logs experiments for one test item.

    ``n_jobs`` is how many processes the cross-validation folds use: 1 in an xdist
    worker (the workers already use every core), more in a session without xdist.
    """

    def __init__(self, context: SessionContext, data: TitanicData, item: pytest.Item,
                 n_jobs: int = 1) -> None:  # fmt: skip
        self.context = context
        self.data = data
        self.item = item
        self.n_jobs = n_jobs

    def run(self, spec: ExperimentSpec) -> ExperimentResult:
        """Train ``spec``, cross-validate it, gate it, log its run, record the result.

        The run is logged completely even when a floor or the gate fails; call
        :func:`assert_result` (floors and gate) or :func:`assert_floors` on the result
        to fail the test then.
        """
        split = holdout_split(self.data)
        evaluation = fit_and_score(spec, split)
        data = self.data
        cv = cross_validate_spec(spec, data.features, data.target, cv_plan(self.context), self.n_jobs)
        checks = check_floors(evaluation.metrics, spec.floors)
        gate = self.gate(spec, cv)
        run_id, model_uri = log_experiment_run(
            self.context, spec, self.item.nodeid, self.data, split, evaluation, checks, cv, gate
        )
        result = self._result(spec, run_id, model_uri, evaluation.metrics, checks, cv, gate)
        self.item.user_properties.append((RESULT_PROPERTY, result.to_json()))
        return result

    def _result(self, spec: ExperimentSpec, run_id: str, model_uri: str, holdout: dict[str, float],
                checks: list[FloorCheck], cv: CVResult, gate: list[GateCheck]
                ) -> ExperimentResult:  # fmt: skip
        passed = floors_passed(checks)
        gate_failed = any(check.failed for check in gate)
        policy = gate_policy(self.context)
        return ExperimentResult(
            spec=spec.name, title=spec.title, nodeid=self.item.nodeid, run_id=run_id,
            model_uri=model_uri, registered_model=spec.registered_model_name,
            data_digest=self.data.digest, metrics={**holdout, **cv.summary()},
            floors=dict(spec.floors), passed=passed,
            failure="" if passed else floor_failure_message(spec.name, checks),
            fold_scores=cv.fold_scores, cv_plan=cv.plan.label,
            params=json.loads(json.dumps(dict(spec.params), default=repr)),
            gate=[check.to_dict() for check in gate],
            gate_failure=gate_failure_message(spec.name, gate, policy) if gate_failed else "",
        )  # fmt: skip

    def gate(self, spec: ExperimentSpec, cv: CVResult) -> list[GateCheck]:
        """Gate against the baseline file when the baseline gate is on, else nothing."""
        if not self.context.baseline_path:
            return []
        reference = reference_for(read_baseline(Path(self.context.baseline_path)), spec.name)
        return gate_against(cv.fold_scores, self.data.digest, cv.plan.label, cv.plan.test_train_ratio,
                            reference, gate_policy(self.context))  # fmt: skip


def assert_floors(result: ExperimentResult) -> None:
    """Fail the current test, listing every metric against its floor, if one was missed."""
    if not result.passed:
        pytest.fail(f"{result.failure}\n  run {result.run_id}", pytrace=False)


def assert_result(result: ExperimentResult) -> None:
    """Fail the current test on a missed floor or a failed regression gate, naming both."""
    failures = [text for text in (result.failure, result.gate_failure) if text]
    if failures:
        pytest.fail("\n".join([*failures, f"  run {result.run_id}"]), pytrace=False)
