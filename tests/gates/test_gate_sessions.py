"""The regression gate in real sessions: a degraded model fails it, a new seed does not,
and a winner worse than the champion does not take the alias."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.sessions import (
    SMALL_FOREST,
    assert_session,
    leaderboard,
    logged_results,
    run_ids,
    run_session,
    sqlite_uri,
    write_project,
)
from titanic_bench.options import CHAMPION_ALIAS, DEFAULT_REGISTERED_MODEL

pytestmark = pytest.mark.slow

CV = ("--bench-cv", "5x2")


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A baseline and a champion from a session over the small forest and a logistic model."""
    project = write_project(tmp_path_factory.mktemp("project"))
    home = tmp_path_factory.mktemp("state")
    path = home / "baseline.json"
    result = run_session(
        project, home, "-p", "no:xdist", *CV, "--bench-update-baseline", f"--bench-baseline={path}"
    )  # "=": a bare path argument would move the rootdir
    assert_session(result)
    assert f"baseline written: {path}" in result.stdout
    return {"project": project, "home": home, "path": path}


def gate_session(baseline: dict[str, Path], forest: dict[str, Any], *args: str) -> Any:
    write_project(baseline["project"], {"small_forest": forest})
    return run_session(
        baseline["project"],
        baseline["home"],
        "-p",
        "no:xdist",
        *CV,
        f"--bench-baseline={baseline['path']}",
        "--bench-no-promote",
        *args,
    )


def verdicts(home: Path, spec: str) -> dict[str, str]:
    [entry] = [entry for entry in leaderboard(home)["results"] if entry["spec"] == spec]
    return {check["metric"]: check["verdict"] for check in entry["gate"]}


def test_a_degraded_forest_fails_the_gate_naming_metric_baseline_current_and_p(
    baseline: dict[str, Path],
) -> None:
    result = gate_session(baseline, {**SMALL_FOREST, "max_depth": 1}, "--bench-gate")
    assert_session(result, returncode=1)
    assert "small_forest failed the regression gate on" in result.stdout
    line = next(line for line in result.stdout.splitlines() if line.strip().startswith("roc_auc: baseline"))
    assert "current" in line and "delta -" in line and "p = " in line and "REGRESSION" in line
    assert verdicts(baseline["home"], "small_forest")["roc_auc"] == "REGRESSION"
    assert verdicts(baseline["home"], "logistic") == {"accuracy": "pass", "roc_auc": "pass"}


def test_a_gated_session_shows_the_detectable_drop_the_adjusted_p_and_the_test_and_correction(
    baseline: dict[str, Path],
) -> None:
    result = gate_session(
        baseline, {**SMALL_FOREST, "max_depth": 1}, "--bench-gate", "--bench-gate-correction=bh"
    )
    assert_session(result, returncode=1)
    family = "regression test; correction bh over the session's 4 tests"
    assert family in result.stdout
    markdown = (baseline["home"] / "reports" / "leaderboard.md").read_text()
    assert family in markdown and "| mdd | p-value | adj. p | test / correction | verdict |" in markdown
    assert "| regression / bh | REGRESSION |" in markdown
    board = leaderboard(baseline["home"])
    checks = {(entry["spec"], c["metric"]): c for entry in board["results"] for c in entry["gate"]}
    assert checks[("small_forest", "roc_auc")]["verdict"] == "REGRESSION"
    assert all(c["mdd"] > 0 and c["p_adjusted"] >= c["p_value"] for c in checks.values())
    assert {c["correction"] for c in checks.values()} == {"bh"}
    logged = logged_results(sqlite_uri(baseline["home"]), run_ids(baseline["home"]))["small_forest"]
    assert logged["gate_roc_auc_mdd"] == checks[("small_forest", "roc_auc")]["mdd"]
    assert logged["gate_roc_auc_p_adjusted"] == checks[("small_forest", "roc_auc")]["p_adjusted"]


def test_a_new_random_state_alone_passes_the_gate(baseline: dict[str, Path]) -> None:
    result = gate_session(baseline, {**SMALL_FOREST, "random_state": 7}, "--bench-gate")
    assert_session(result)
    assert verdicts(baseline["home"], "small_forest") == {"accuracy": "pass", "roc_auc": "pass"}


def test_a_winner_worse_than_the_champion_leaves_the_alias_and_fails_in_champion_mode(
    baseline: dict[str, Path],
) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(sqlite_uri(baseline["home"]))
    before = client.get_model_version_by_alias(DEFAULT_REGISTERED_MODEL, CHAMPION_ALIAS).version
    write_project(baseline["project"], {"stump_forest": {**SMALL_FOREST, "max_depth": 1}}, logistic=False)
    result = run_session(
        baseline["project"], baseline["home"], "-p", "no:xdist", *CV, "--bench-gate=champion"
    )
    assert_session(result, returncode=1)
    assert "stump_forest is significantly worse than the current champion" in result.stdout
    assert client.get_model_version_by_alias(DEFAULT_REGISTERED_MODEL, CHAMPION_ALIAS).version == before
    champion = leaderboard(baseline["home"])["champion"]
    assert champion["version"] is None and any(c["verdict"] == "REGRESSION" for c in champion["checks"])


def test_a_champion_logged_with_another_cv_plan_is_re_cross_validated_and_blocks_a_stump_forest(
    baseline: dict[str, Path],
) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(sqlite_uri(baseline["home"]))
    before = client.get_model_version_by_alias(DEFAULT_REGISTERED_MODEL, CHAMPION_ALIAS).version
    write_project(baseline["project"], {"stump_forest": {**SMALL_FOREST, "max_depth": 1}}, logistic=False)
    result = run_session(baseline["project"], baseline["home"], "-p", "no:xdist", "--bench-cv", "4x2")
    assert_session(result)  # the champion gate is off: a blocked winner is reported, not a failure
    champion = leaderboard(baseline["home"])["champion"]
    assert champion["checks"], result.stdout[-3000:]
    # The champion was logged at 5x2: only its model, cross-validated on these 4x2 folds, compares.
    assert all("(re-cross-validated)" in check["reference"] for check in champion["checks"])
    assert any(check["verdict"] == "REGRESSION" for check in champion["checks"]), champion["checks"]
    assert champion["version"] is None
    assert "stump_forest is significantly worse than the current champion" in result.stdout
    assert client.get_model_version_by_alias(DEFAULT_REGISTERED_MODEL, CHAMPION_ALIAS).version == before
