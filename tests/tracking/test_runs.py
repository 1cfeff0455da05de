"""Ending runs: a retried attempt replaces the earlier ones; a run cut off keeps no verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mlflow.protos.databricks_pb2 import BAD_REQUEST
from mlflow.tracking import MlflowClient

from titanic_bench.errors import TrackingError
from titanic_bench.tracking import runs
from titanic_bench.tracking.client import Tracker
from titanic_bench.tracking.runs import replace_earlier_attempts, run_key, session_ended
from titanic_bench.tracking.tags import RunKind, TagKey

SESSION = "20261201-000000-abcdef"


def tracker_on(tmp_path: Path) -> Tracker:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return Tracker(uri, MlflowClient(tracking_uri=uri, registry_uri=uri))


def attempt(tracker: Tracker, experiment_id: str, nodeid: str, session: str = SESSION) -> str:
    tags = {
        TagKey.KIND: RunKind.EXPERIMENT,
        TagKey.SESSION: session,
        TagKey.RUN_KEY: run_key(session, nodeid),
    }
    return str(tracker.client.create_run(experiment_id, tags=tags).info.run_id)


def test_the_run_key_is_the_session_and_the_test_id() -> None:
    assert (
        run_key(SESSION, "benchmarks/test_x.py::test_x[it's]")
        == f"{SESSION}/benchmarks/test_x.py::test_x[it's]"
    )


def test_a_retry_ends_the_earlier_attempts_of_its_key_failed_and_names_itself(tmp_path: Path) -> None:
    tracker = tracker_on(tmp_path)
    experiment = tracker.client.create_experiment("e")
    nodeid = "benchmarks/test_bench.py::test_experiment[it's]"
    cut_off, logged = attempt(tracker, experiment, nodeid), attempt(tracker, experiment, nodeid)
    tracker.client.set_terminated(logged, "FINISHED")
    other_test = attempt(tracker, experiment, "benchmarks/test_bench.py::test_experiment[other]")
    other_session = attempt(tracker, experiment, nodeid, session="20261130-000000-000000")
    retry = attempt(tracker, experiment, nodeid)

    replaced = replace_earlier_attempts(tracker, experiment, SESSION, run_key(SESSION, nodeid), retry)

    assert sorted(replaced) == sorted([cut_off, logged])
    for run_id in (cut_off, logged):
        run = tracker.client.get_run(run_id)
        assert run.info.status == "FAILED" and run.data.tags[TagKey.REPLACED_BY] == retry
    for run_id in (other_test, other_session, retry):
        run = tracker.client.get_run(run_id)
        assert run.info.status == "RUNNING" and TagKey.REPLACED_BY not in run.data.tags


def test_an_attempt_replaced_while_it_finishes_is_refused_not_left_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = tracker_on(tmp_path)
    experiment = tracker.client.create_experiment("e")
    nodeid = "benchmarks/test_bench.py::test_experiment[slow_worker]"
    lost, retry = attempt(tracker, experiment, nodeid), attempt(tracker, experiment, nodeid)
    tag = tracker.client.set_tag

    def retry_replaces_it_meanwhile(run_id: str, key: str, value: str) -> None:
        tag(run_id, key, value)
        if run_id == lost and key == TagKey.FLOORS:  # after the first check, before the end
            replace_earlier_attempts(tracker, experiment, SESSION, run_key(SESSION, nodeid), retry)

    monkeypatch.setattr(tracker.client, "set_tag", retry_replaces_it_meanwhile)
    with pytest.raises(TrackingError, match=f"the run {lost} of slow_worker was replaced by a later attempt"):
        runs.finish_run(tracker, lost, "slow_worker", passed=True)
    run = tracker.client.get_run(lost)
    assert run.info.status == "FAILED" and run.data.tags[TagKey.REPLACED_BY] == retry
    assert TagKey.FLOORS not in run.data.tags


def test_a_session_that_loses_the_race_to_insert_the_dataset_links_to_the_winners(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.exceptions import MlflowException

    from titanic_bench.data.loading import load_titanic

    tracker = tracker_on(tmp_path)
    run_id = attempt(tracker, tracker.client.create_experiment("e"), "session")
    log_inputs, calls = tracker.client.log_inputs, []

    def another_session_inserted_it_first(run: str, datasets: Any) -> None:
        calls.append(run)
        if len(calls) == 1:  # what MLflow answers the loser of two concurrent first inserts
            raise MlflowException("UNIQUE constraint failed: datasets.experiment_id, ...", BAD_REQUEST)
        log_inputs(run, datasets=datasets)

    monkeypatch.setattr(tracker.client, "log_inputs", another_session_inserted_it_first)
    runs.log_dataset(tracker, run_id, load_titanic())
    assert calls == [run_id, run_id]
    inputs = tracker.client.get_run(run_id).inputs
    assert inputs is not None
    [logged] = inputs.dataset_inputs
    assert logged.dataset.name == "titanic"


def test_a_task_can_tell_its_session_has_ended(tmp_path: Path) -> None:
    tracker = tracker_on(tmp_path)
    session_run = attempt(tracker, tracker.client.create_experiment("e"), "session")
    assert not session_ended(tracker, session_run)
    tracker.client.set_terminated(session_run, "KILLED")
    assert session_ended(tracker, session_run)


def open_run_with_a_verdict(tracker: Tracker, session_id: str) -> tuple[str, str]:
    """A RUNNING experiment run with its floors tag: what a worker stopped before the run ended leaves."""
    experiment_id = tracker.client.create_experiment("cut-off")
    tags = {TagKey.KIND: RunKind.EXPERIMENT, TagKey.SESSION: session_id, TagKey.FLOORS: "passed"}
    run_id = tracker.client.create_run(experiment_id, tags=tags).info.run_id
    return experiment_id, run_id


def test_open_runs_ended_by_the_controller_lose_their_verdict(tmp_path: Path) -> None:
    tracker = Tracker.connect(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id, run_id = open_run_with_a_verdict(tracker, "s1")
    assert runs.end_open_runs(tracker, experiment_id, "s1") == [run_id]
    run = tracker.client.get_run(run_id)
    assert run.info.status == "KILLED"
    assert TagKey.FLOORS not in run.data.tags


def test_a_run_cut_off_after_its_verdict_tag_loses_it(tmp_path: Path) -> None:
    tracker = Tracker.connect(f"sqlite:///{tmp_path / 'mlflow.db'}")
    _, run_id = open_run_with_a_verdict(tracker, "s2")
    runs._end_cut_off(tracker, run_id, "KILLED")
    run = tracker.client.get_run(run_id)
    assert run.info.status == "KILLED"
    assert TagKey.FLOORS not in run.data.tags
