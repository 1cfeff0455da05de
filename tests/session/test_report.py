"""The leaderboard: ranked rows, PASS/FAIL, the champion line, and the same table on disk."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from tests.support.factories import result
from titanic_bench.gates.checks import Correction, GatePolicy, Reference, gate_against
from titanic_bench.gates.family import decide_session
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


def gated_board() -> Leaderboard:
    """Two experiments gated under Holm: one dropped by 0.05 on every fold, one unchanged."""
    base = [0.80, 0.82, 0.84, 0.81, 0.83] * 3
    noise = [0.004, -0.003, 0.002, -0.004, 0.001] * 3
    policy = GatePolicy(("roc_auc", "accuracy"), correction=Correction.HOLM)
    reference = Reference("baseline", "d", "5x3 seed 42", {"roc_auc": base, "accuracy": base})
    dropped = [score - 0.05 + n for score, n in zip(base, noise, strict=True)]
    results = []
    for spec, scores in (("dropped", dropped), ("same", base)):
        checks = gate_against(
            {"roc_auc": scores, "accuracy": base}, "d", "5x3 seed 42", 0.25, reference, policy
        )
        results.append(replace(result(spec), gate=[check.to_dict() for check in checks]))
    decided = decide_session(results, policy)
    return Leaderboard.build("s", "roc_auc", decided, Promotion(winner=None, reason="r"), "")


def test_gate_rows_show_the_detectable_drop_the_adjusted_p_and_the_test_and_correction() -> None:
    header, *rows = gated_board().gate_rows()
    assert header[6:10] == ["mdd", "p-value", "adj. p", "test / correction"]
    dropped = next(row for row in rows if row[0] == "dropped" and row[1] == "roc_auc")
    assert float(dropped[6]) > 0 and dropped[9] == "regression / holm" and dropped[-1] == "REGRESSION"
    assert float(dropped[8]) >= float(dropped[7])  # Holm only raises p


def test_markdown_and_json_name_the_correction_and_carry_the_new_fields() -> None:
    board = gated_board()
    files = board.files()
    line = "regression test; correction holm over the session's 4 tests"
    assert line in files["leaderboard.md"] and line in board.text()
    assert "| mdd | p-value | adj. p | test / correction |" in files["leaderboard.md"]
    data = json.loads(files["leaderboard.json"])
    assert data["gate"].startswith(line)
    checks = [check for entry in data["results"] for check in entry["gate"]]
    assert all(check["mdd"] > 0 and check["p_adjusted"] is not None for check in checks)
    assert {check["correction"] for check in checks} == {"holm"}
