"""Ending runs that were cut off: no verdict survives on a run that did not finish."""

from __future__ import annotations

from pathlib import Path

from titanic_bench.tracking import runs
from titanic_bench.tracking.client import Tracker
from titanic_bench.tracking.tags import RunKind, TagKey


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
