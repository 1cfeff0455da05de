"""Winner selection: eligible runs only, by the cross-validated mean, ties broken by name."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tests.support.factories import result
from titanic_bench.options import CHAMPION_ALIAS
from titanic_bench.session.results import ExperimentResult
from titanic_bench.tracking.client import Tracker
from titanic_bench.tracking.registry import champion_version, select_winner


def test_the_cross_validated_mean_decides_not_the_holdout() -> None:
    results = [result("holdout_star", auc=0.95, cv_auc=0.84), result("steady", auc=0.82, cv_auc=0.87)]
    winner, reason = select_winner(results, "roc_auc")
    assert winner is not None and winner.spec == "steady"
    assert reason == "highest cross-validated roc_auc (0.8700) among 2 passing run(s)"


def test_failing_runs_never_win() -> None:
    results = [result("best_but_failing", passed=False, cv_auc=0.99), result("modest", cv_auc=0.80)]
    winner, _ = select_winner(results, "roc_auc")
    assert winner is not None and winner.spec == "modest"


def test_ties_go_to_the_smaller_name_whatever_the_order() -> None:
    tied = [result("zeta", cv_auc=0.87), result("alpha", cv_auc=0.87), result("mid", cv_auc=0.86)]
    assert {select_winner(order, "roc_auc")[0].spec for order in (tied, tied[::-1])} == {"alpha"}  # type: ignore[union-attr]


def test_no_winner_says_why() -> None:
    assert select_winner([], "roc_auc") == (None, "no experiment reported a result")
    winner, reason = select_winner([result("b", passed=False), result("a", passed=False)], "roc_auc")
    assert winner is None
    assert reason == "no run passed its floors (failed: a, b)"


def test_a_gate_failed_run_never_wins() -> None:
    results = [result("regressed", cv_auc=0.95, gate_failure="worse"), result("steady", cv_auc=0.80)]
    winner, _ = select_winner(results, "roc_auc")
    assert winner is not None and winner.spec == "steady"


def test_a_loss_as_selection_metric_picks_the_lowest() -> None:
    def with_loss(spec: str, loss: float) -> ExperimentResult:
        base = result(spec)
        return replace(base, metrics={**base.metrics, "cv_log_loss_mean": loss})

    winner, reason = select_winner([with_loss("high", 0.6), with_loss("low", 0.4)], "log_loss")
    assert winner is not None and winner.spec == "low"
    assert reason == "lowest cross-validated log_loss (0.4000) among 2 passing run(s)"


def test_a_model_without_the_alias_has_no_champion(sqlite_tracker: Tracker, tmp_path: Path) -> None:
    # Another session registers its version before it moves the alias: in between, the model
    # exists without one, and MLflow's SQL store says so with INVALID_PARAMETER_VALUE.
    tracker = sqlite_tracker
    assert champion_version(tracker, "titanic_any", CHAMPION_ALIAS) is None
    tracker.client.create_registered_model("titanic_any")
    assert champion_version(tracker, "titanic_any", CHAMPION_ALIAS) is None
    tracker.client.create_model_version("titanic_any", source=(tmp_path / "model").as_uri())
    assert champion_version(tracker, "titanic_any", CHAMPION_ALIAS) is None
    tracker.client.set_registered_model_alias("titanic_any", CHAMPION_ALIAS, "1")
    champion = champion_version(tracker, "titanic_any", CHAMPION_ALIAS)
    assert champion is not None and str(champion.version) == "1"
