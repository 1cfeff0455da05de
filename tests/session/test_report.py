"""The leaderboard: ranked rows, PASS/FAIL, the champion line, and the same table on disk."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.support.factories import result
from tests.support.sessions import (
    assert_session,
    leaderboard,
    run_ids,
    run_session,
    sqlite_uri,
    write_project,
)
from titanic_bench.errors import ReportError
from titanic_bench.gates.checks import Correction, GatePolicy, Reference, gate_against
from titanic_bench.gates.family import decide_session
from titanic_bench.session.promotion import Promotion
from titanic_bench.session.report import Leaderboard, _columns, finished_line
from titanic_bench.tracking.links import SessionLinks
from titanic_bench.tracking.tags import RunKind, TagKey

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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
    assert sorted(path.name for path in written) == ["leaderboard.json", "leaderboard.md", "leaderboard.png"]
    markdown = (tmp_path / "reports" / "leaderboard.md").read_text()
    data = json.loads((tmp_path / "reports" / "leaderboard.json").read_text())
    assert "| best |" in markdown and "| failing |" in markdown
    assert [entry["spec"] for entry in data["results"]] == ["best", "slow", "failing"]
    assert data["champion"]["reason"] == "nothing passed" and data["champion"]["version"] is None
    for text in (leaderboard.text(), markdown):
        assert "Champion: none promoted, nothing passed." in text
        assert "MLflow UI: http://127.0.0.1:5000/#/experiments/1" in text


def long_board(links: SessionLinks | None = None, reopen: str = "") -> Leaderboard:
    """Six long-named runs with both CV columns, a gate, and a long reason: the real widths."""
    results = []
    for index, name in enumerate(["gradient_boosting_engineered", "random_forest_engineered", "svm"]):
        base = result(name, cv_auc=0.87 - index / 100)
        metrics = {**base.metrics, "cv_accuracy_mean": 0.83, "cv_accuracy_ci_low": 0.81}
        metrics |= {"cv_accuracy_ci_high": 0.85, "precision": 0.8, "recall": 0.7, "f1": 0.75}
        metrics |= {"fit_seconds": 1.25}
        run_id = f"{index}" * 32
        results.append(
            replace(base, metrics=metrics, run_id=run_id, floors={"accuracy": 0.78, "roc_auc": 0.81})
        )
    winner = results[0]
    reason = (
        "gradient_boosting_engineered won: highest cross-validated roc_auc (0.8700) among 3 passing run(s)"
    )
    promotion = Promotion(winner, reason, model_name="titanic_survival", version="12", alias="champion")
    return Leaderboard.build("s-1", "roc_auc", results, promotion, "http://127.0.0.1:5000/", links, reopen)


def test_the_terminal_table_fits_120_columns_and_keeps_the_chosen_columns() -> None:
    text = long_board().text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 120, text
    assert lines[0].split() == [
        *("experiment", "cv", "roc_auc", "±", "CI", "cv", "accuracy", "±", "CI"),
        *("holdout", "acc", "floors", "gate", "run"),
    ]
    assert lines[2].split() == [
        *("gradient_boosting_engineered", "0.8700", "±", "0.0200", "0.8300", "±", "0.0200"),
        *("0.8000", "PASS", "-", "00000000"),
    ]


def test_wide_text_markdown_and_json_keep_every_column() -> None:
    board = long_board()
    wide = board.text(wide=True).splitlines()
    for header in ("cv_roc_auc (95% CI)", "precision", "recall", "f1", "fit_seconds", "run_id"):
        assert header in wide[0] and header in board.markdown()
    assert "0" * 32 in wide[2] and "0" * 32 in board.markdown()
    assert max(len(line) for line in wide) > 120
    assert json.loads(json.dumps(board.as_dict()))["results"][0]["metrics"]["precision"] == 0.8


def test_the_compact_gate_table_chooses_its_columns_by_header() -> None:
    rows = [
        ["experiment", "metric", "new column", "delta", "verdict"],
        ["a", "roc_auc", "wide", "+0.1", "pass"],
    ]
    assert _columns(rows, {"experiment": "experiment", "verdict": "v", "missing": "m"}) == [
        ["experiment", "v"],
        ["a", "pass"],
    ]


def test_links_and_the_reopen_command_are_printed_whole() -> None:
    links = SessionLinks("http://127.0.0.1:5000", "3", "s-1", ("a" * 32, "b" * 32), "titanic_survival", "12")
    reopen = "MLflow UI: the server stops.\n  titanic-bench ui --home /x --port 5000\nand then:"
    board = long_board(links, reopen)
    text, markdown = board.text(), board.markdown()
    for shown in (text, markdown):
        assert "  titanic-bench ui --home /x --port 5000\n" in shown
        assert f"  compare the runs: {links.compare}\n" in shown
        assert f"  champion in the registry: {links.registry}" in shown
    assert board.as_dict()["links"]["compare"] == links.compare
    assert board.as_dict()["reopen"] == reopen


def test_the_picture_is_a_png_with_a_panel_per_cv_metric(tmp_path: Path) -> None:
    board = long_board()
    figure = board.figure()
    assert [axes.get_title() for axes in figure.axes] == [
        "cross-validated roc_auc (mean, 95% CI)",
        "cross-validated accuracy (mean, 95% CI)",
    ]
    labels = [label.get_text() for label in figure.axes[0].get_yticklabels()]
    assert labels[-1] == "★ gradient_boosting_engineered (champion)" and labels[0] == "svm"
    written = board.write(tmp_path)
    assert (tmp_path / "leaderboard.png") in written
    assert (tmp_path / "leaderboard.png").read_bytes()[:8] == PNG_SIGNATURE


def test_the_summary_is_appended_to(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    board = long_board()
    board.append_summary(summary, "GITHUB_STEP_SUMMARY")
    assert summary.read_text() == "earlier step\n" + board.markdown() + "\n"
    with pytest.raises(
        ReportError, match=r"the summary file .*/nowhere/s\.md \(GITHUB_STEP_SUMMARY\) cannot"
    ):
        board.append_summary(tmp_path / "nowhere" / "s.md", "GITHUB_STEP_SUMMARY")


def test_the_verbose_line_names_the_result_in_one_line() -> None:
    line = finished_line(long_board().results[0], "roc_auc")
    assert line == (
        "titanic-bench: gradient_boosting_engineered finished: cv roc_auc 0.8700 ± 0.0200, "
        "holdout accuracy 0.8000, floors PASS, run 00000000"
    )


#: What MLflow prints by itself during a session; none of it may reach the terminal.
MLFLOW_CHATTER = (
    "Successfully registered model",
    "Created version",
    "Waiting up to",
    "View run",
    "View experiment",
    "INFO mlflow",
)


def leaderboard_section(output: str) -> list[str]:
    """The lines pytest prints under the "titanic-bench leaderboard" header, up to where the reports are."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "titanic-bench leaderboard" in line)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("Reports and picture: "))
    return lines[start + 1 : end]


@pytest.mark.slow
def test_a_session_prints_its_own_lines_only_and_leaves_links_picture_and_summary(tmp_path: Path) -> None:
    project, home = write_project(tmp_path / "project"), tmp_path / "state"
    summary = tmp_path / "step-summary.md"
    result = run_session(
        project, home, "-p", "no:xdist", "--bench-cv", "2x1", env={"GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert_session(result)
    shown = result.stdout + result.stderr
    (tmp_path / "terminal.txt").write_text(shown)  # for a person reading a failure
    assert [chatter for chatter in MLFLOW_CHATTER if chatter in shown] == []
    # What MLflow said went to the session log instead (its registry waits for the version).
    assert "Waiting up to 300 seconds for model version" in (home / "session.log").read_text()
    section = leaderboard_section(result.stdout)
    assert [line for line in section if len(line) > 120 and "://" not in line] == []
    assert section[0].split()[:2] == ["experiment", "cv"] and "precision" not in section[0]

    board = leaderboard(home)
    links = SessionLinks.from_dict(board["links"])
    assert sorted(links.run_ids) == sorted(run_ids(home).values()) and len(links.run_ids) == 2
    assert links.version == board["champion"]["version"] == "1"
    port = links.base.rsplit(":", 1)[1]
    assert f"  titanic-bench ui --home {home} --port {port}" in section
    assert [f"  {label}: {url}" in section for label, url in links.labelled()] == [True, True, True]

    assert summary.read_text() == (home / "reports" / "leaderboard.md").read_text() + "\n"
    picture = home / "reports" / "leaderboard.png"
    assert picture.read_bytes()[:8] == PNG_SIGNATURE
    client = MlflowClient(sqlite_uri(home))
    [session_run] = client.search_runs([links.experiment_id], f"tags.{TagKey.KIND} = '{RunKind.SESSION}'")
    logged = home / "artifacts" / links.experiment_id / session_run.info.run_id / "artifacts" / "plots"
    assert (logged / "leaderboard.png").read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.slow
def test_a_verbose_session_prints_a_line_per_experiment_and_the_whole_table(tmp_path: Path) -> None:
    project, home = write_project(tmp_path / "project"), tmp_path / "state"
    # -vv: the helper runs pytest -q, and -q -vv is what a user's -v is.
    result = run_session(project, home, "-n", "2", "--bench-cv", "2x1", "-vv")
    assert_session(result)
    shown = result.stdout + result.stderr
    (tmp_path / "terminal.txt").write_text(shown)
    assert [chatter for chatter in MLFLOW_CHATTER if chatter in shown] == []
    ids = run_ids(home)
    finished = re.findall(r"^titanic-bench: (\w+) finished: cv roc_auc .*, run (\w+)$", result.stdout, re.M)
    assert sorted(finished) == sorted((spec, run_id[:8]) for spec, run_id in ids.items())  # one line each
    header = leaderboard_section(result.stdout)[0].split()
    assert {"precision", "recall", "f1", "fit_seconds", "run_id"} <= set(header)
    assert all(run_id in result.stdout for run_id in ids.values())  # full ids in the wide table


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
