"""The leaderboard: ranked rows, PASS/FAIL, the champion line, and the same table on disk."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.factories import result
from titanic_bench.session.promotion import Promotion
from titanic_bench.session.report import Leaderboard


def board(promotion: Promotion) -> Leaderboard:
    results = [
        result("slow", cv_auc=0.80),
        result("failing", passed=False, cv_auc=0.95),
        result("best", cv_auc=0.88),
    ]
    return Leaderboard.build("s-1", "roc_auc", results, promotion, "http://127.0.0.1:5000/#/experiments/1")


def test_rows_rank_passing_runs_first_by_the_selection_metric() -> None:
    rows = board(Promotion(winner=None, reason="r")).rows()
    assert [row[0] for row in rows[1:]] == ["best", "slow", "failing"]
    floors = rows[0].index("floors")
    assert [row[floors] for row in rows[1:]] == ["PASS", "PASS", "FAIL"]
    assert rows[1][-1] == "run-best"
    assert rows[1][1] == "0.8800 ± 0.0200" and rows[1][2] == "-"  # CV ROC-AUC with its CI; no CV accuracy


def test_a_gate_failed_run_ranks_below_every_eligible_run() -> None:
    results = [result("regressed", cv_auc=0.95, gate_failure="worse"), result("champion", cv_auc=0.80)]
    board = Leaderboard.build("s", "roc_auc", results, Promotion(winner=None, reason="r"), "")
    assert [row[0] for row in board.rows()[1:]] == ["champion", "regressed"]


def test_champion_line_names_version_and_alias_or_why_none() -> None:
    winner = result("best", cv_auc=0.88)
    promoted = Promotion(
        winner=winner, reason="best won: x", model_name="titanic_survival", version="7", alias="champion"
    )
    assert board(promoted).champion_line() == (
        "Champion: best -> titanic_survival version 7 (@champion), best won: x."
    )
    nobody = Promotion(winner=None, reason="no run passed its floors (failed: a)")
    assert board(nobody).champion_line() == "Champion: none promoted, no run passed its floors (failed: a)."
    held = Promotion(winner=winner, reason="promotion is off (--bench-no-promote)")
    assert "would win, not promoted: promotion is off" in board(held).champion_line()


def test_text_markdown_and_json_say_the_same(tmp_path: Path) -> None:
    leaderboard = board(Promotion(winner=None, reason="nothing passed"))
    written = leaderboard.write(tmp_path / "reports")
    assert sorted(path.name for path in written) == ["leaderboard.json", "leaderboard.md"]
    markdown = (tmp_path / "reports" / "leaderboard.md").read_text()
    data = json.loads((tmp_path / "reports" / "leaderboard.json").read_text())
    assert "| best |" in markdown and "| failing |" in markdown
    assert [entry["spec"] for entry in data["results"]] == ["best", "slow", "failing"]
    assert data["champion"]["reason"] == "nothing passed" and data["champion"]["version"] is None
    for text in (leaderboard.text(), markdown):
        assert "Champion: none promoted, nothing passed." in text
        assert "MLflow UI: http://127.0.0.1:5000/#/experiments/1" in text
