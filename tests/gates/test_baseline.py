"""The baseline file: written from results, merged, read back as gate references."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from titanic_bench.errors import BaselineError
from titanic_bench.gates.baseline import read_baseline, reference_for, write_baseline
from titanic_bench.session.results import ExperimentResult


def result(spec: str, roc: float) -> ExperimentResult:
    return ExperimentResult(
        spec=spec,
        title=spec,
        nodeid=f"b.py::t[{spec}]",
        run_id="r" + spec,
        model_uri="m",
        registered_model="x",
        data_digest="d" * 64,
        metrics={"roc_auc": roc, "fit_seconds": 0.1},
        floors={},
        passed=True,
        fold_scores={"roc_auc": [roc, roc]},
        cv_plan="2x1 seed 42",
        params={"max_depth": None},
    )


def test_written_entries_become_references_and_timings_are_left_out(tmp_path: Path) -> None:
    path = write_baseline(tmp_path / "baseline.json", [result("a", 0.8)], {"python": "3.11"}, "s1")
    baseline = read_baseline(path)
    assert "fit_seconds" not in baseline["experiments"]["a"]["metrics"]
    ref = reference_for(baseline, "a")
    assert ref is not None and ref.fold_scores == {"roc_auc": [0.8, 0.8]} and ref.cv_plan == "2x1 seed 42"
    assert reference_for(baseline, "unknown") is None


def test_updating_a_subset_keeps_the_other_entries(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    write_baseline(path, [result("a", 0.8), result("b", 0.7)], {}, "s1")
    write_baseline(path, [result("b", 0.75)], {}, "s2")
    experiments = read_baseline(path)["experiments"]
    assert experiments["a"]["metrics"]["roc_auc"] == 0.8
    assert experiments["b"]["metrics"]["roc_auc"] == 0.75


def test_a_missing_file_names_the_option_that_writes_it(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="--bench-update-baseline"):
        read_baseline(tmp_path / "nope.json")


def test_a_file_of_another_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"format": 99}))
    with pytest.raises(BaselineError, match="format 99, expected 1"):
        read_baseline(path)
