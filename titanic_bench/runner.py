"""Run one experiment end to end: split, fit, score, check floors, log to MLflow.

This is what the ``titanic_bench`` fixture hands a benchmark test; a user's own
benchmark file needs nothing else.
"""

from __future__ import annotations

import pytest

from titanic_bench.context import SessionContext
from titanic_bench.data import DataError, TitanicData, load_titanic
from titanic_bench.evaluation import fit_and_score, holdout_split
from titanic_bench.experiments import ExperimentSpec
from titanic_bench.gates import check_floors, floor_failure_message, floors_passed
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


class Bench:
    """Trains and logs experiments for one test item."""

    def __init__(self, context: SessionContext, data: TitanicData, item: pytest.Item) -> None:
        self.context = context
        self.data = data
        self.item = item

    def run(self, spec: ExperimentSpec) -> ExperimentResult:
        """Train ``spec``, log its run, and record the result for the session report.

        The run is logged completely even when a floor is missed; call
        :func:`assert_floors` on the result to fail the test then.
        """
        split = holdout_split(self.data)
        evaluation = fit_and_score(spec, split)
        checks = check_floors(evaluation.metrics, spec.floors)
        run_id, model_uri = log_experiment_run(
            self.context, spec, self.item.nodeid, self.data, split, evaluation, checks
        )
        passed = floors_passed(checks)
        result = ExperimentResult(
            spec=spec.name,
            title=spec.title,
            nodeid=self.item.nodeid,
            run_id=run_id,
            model_uri=model_uri,
            registered_model=spec.registered_model_name,
            data_digest=self.data.digest,
            metrics=evaluation.metrics,
            floors=dict(spec.floors),
            passed=passed,
            failure="" if passed else floor_failure_message(spec.name, checks),
        )
        self.item.user_properties.append((RESULT_PROPERTY, result.to_json()))
        return result


def assert_floors(result: ExperimentResult) -> None:
    """Fail the current test, listing every metric against its floor, if one was missed."""
    if not result.passed:
        pytest.fail(f"{result.failure}\n  run {result.run_id}", pytrace=False)
