"""Winner selection: passing runs only, by the cross-validated mean, ties broken by name."""

from __future__ import annotations

from titanic_bench.registry import select_winner
from titanic_bench.results import ExperimentResult


def result(
    spec: str, *, passed: bool = True, auc: float = 0.85, cv_auc: float | None = None
) -> ExperimentResult:
    metrics = {"roc_auc": auc, "accuracy": 0.8}
    if cv_auc is not None:
        metrics |= {
            "cv_roc_auc_mean": cv_auc,
            "cv_roc_auc_ci_low": cv_auc - 0.02,
            "cv_roc_auc_ci_high": cv_auc + 0.02,
        }
    return ExperimentResult(
        spec=spec, title=spec, nodeid=f"b::t[{spec}]", run_id=f"run-{spec}", model_uri=f"models:/m-{spec}",
        registered_model=f"titanic_{spec}", data_digest="d", metrics=metrics, floors={}, passed=passed,
    )  # fmt: skip


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


def test_without_cross_validation_the_holdout_decides() -> None:
    winner, reason = select_winner([result("x", auc=0.81), result("y", auc=0.83)], "roc_auc")
    assert winner is not None and winner.spec == "y"
    assert reason.startswith("highest holdout roc_auc (0.8300)")
