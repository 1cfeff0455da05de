"""The links into the MLflow UI: the routes MLflow 3.17's own UI builds, parsable back."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from mlflow.tracking import MlflowClient

from tests.support.browser import browser_page
from tests.support.processes import stop_groups_mentioning
from tests.support.sessions import assert_session, run_ids, run_session, sqlite_uri
from titanic_bench.ml.experiments import EXPERIMENTS
from titanic_bench.tracking.links import SessionLinks, session_filter

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]

RUNS = ("a" * 32, "b" * 32)


def links(version: str = "7") -> SessionLinks:
    return SessionLinks("http://127.0.0.1:5000", "3", "20261201-1-abc", RUNS, "titanic survival", version)


def fragment_query(url: str) -> tuple[str, dict[str, list[str]]]:
    """The route and the query of a hash-routed URL, decoded as the UI decodes them."""
    route, _, query = urlsplit(url).fragment.partition("?")
    return route, parse_qs(query)


def test_the_compare_page_lists_the_runs_and_the_experiment_as_json() -> None:
    url = links().compare
    assert url.startswith("http://127.0.0.1:5000/#/compare-runs?runs=")
    assert " " not in url and '"' not in url  # a terminal keeps it one link
    route, query = fragment_query(url)
    assert route == "/compare-runs"
    assert json.loads(query["runs"][0]) == list(RUNS)
    assert json.loads(query["experiments"][0]) == ["3"]


def test_the_runs_table_opens_in_the_model_training_view_filtered_to_the_session() -> None:
    route, query = fragment_query(links().runs)
    assert route == "/experiments/3/runs"
    assert query["workflowType"] == ["machine_learning"]
    assert query["searchFilter"] == [session_filter("20261201-1-abc")]
    assert session_filter("x") == "tags.session_id = 'x' and tags.run_kind = 'experiment'"


def test_the_registry_link_is_the_champion_version_or_the_model() -> None:
    assert links().registry == "http://127.0.0.1:5000/#/models/titanic%20survival/versions/7"
    assert links("").registry == "http://127.0.0.1:5000/#/models/titanic%20survival"
    assert [label for label, _ in links().labelled()] == [
        "compare the runs",
        "runs of this session",
        "champion in the registry",
    ]


def test_links_move_to_another_address_and_survive_json() -> None:
    moved = SessionLinks.from_dict(json.loads(json.dumps(links().to_dict()))).on("http://127.0.0.1:6000/")
    assert moved == SessionLinks(
        "http://127.0.0.1:6000", "3", "20261201-1-abc", RUNS, "titanic survival", "7"
    )
    assert unquote(moved.compare).startswith('http://127.0.0.1:6000/#/compare-runs?runs=["aaaa')


#: Height of a row of the compare page's metric table (react-virtualized, rows rendered on scroll).
METRIC_ROW_PX = 45


def printed_links(output: str) -> list[str]:
    return re.findall(r"^  [a-z ]+: (http://\S+)$", output, re.M)


def shown_metric_row(page: Page, index: int) -> list[float]:
    """The values the compare page shows in metric row ``index``, one per run in column order."""
    grid = page.locator("[role=grid]").nth(1)  # the first lists the metric names, the second their values
    grid.evaluate(f"grid => {{ grid.scrollTop = {index * METRIC_ROW_PX}; }}")
    cells = grid.locator(f"xpath=./div/div[contains(@style, 'top: {index * METRIC_ROW_PX}px')]")
    cells.first.wait_for()
    return [float(text) for text in cells.all_inner_texts()]


@pytest.mark.slow
def test_the_printed_links_show_the_runs_artifacts_and_champion_in_a_browser(tmp_path: Path) -> None:
    project, home = tmp_path / "project", tmp_path / "state"
    (project / "benchmarks").mkdir(parents=True)
    shutil.copy(ROOT / "benchmarks" / "test_experiments.py", project / "benchmarks")
    result = run_session(project, home, "-n", "2", "--bench-cv", "2x1")
    assert_session(result)
    links = printed_links(result.stdout)
    [reopen] = [line.strip() for line in result.stdout.splitlines() if line.startswith("  titanic-bench ui ")]
    ui = subprocess.Popen(
        [sys.executable, "-m", "titanic_bench.cli", *shlex.split(reopen)[1:]],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert ui.stdout is not None
        served = [ui.stdout.readline() for _ in range(5)]  # the address, then the latest session's links
        assert printed_links("".join(served)) == links
        with browser_page() as page:
            check_pages(page, links, home, tmp_path)
    finally:
        stop_groups_mentioning(str(home))
        ui.kill()
        ui.wait(timeout=30)


def check_pages(page: Page, links: list[str], home: Path, shots: Path) -> None:
    compare, session_runs, registry = links
    client = MlflowClient(sqlite_uri(home))
    runs = [client.get_run(run_id) for run_id in run_ids(home).values()]
    by_id = {run.info.run_id: run for run in runs}
    assert len(runs) == len(EXPERIMENTS) == 6

    page.set_viewport_size(
        {"width": 2400, "height": 1000}
    )  # wide enough that no run column is virtualized away
    page.goto(compare)
    page.get_by_text(f"Comparing {len(runs)} Runs from 1 Experiment").wait_for()
    order = json.loads(fragment_query(compare)[1]["runs"][0])
    for spec in EXPERIMENTS:
        assert page.get_by_text(spec.title, exact=True).count() >= 1, spec.title
    names = sorted(set().union(*(run.data.metrics for run in runs)))  # the page lists them sorted
    for metric in ("accuracy", "roc_auc"):
        shown = shown_metric_row(page, names.index(metric))
        expected = [by_id[run_id].data.metrics[metric] for run_id in order]
        assert shown == pytest.approx(expected, abs=0.0005), metric  # shown to three decimals
    page.screenshot(path=shots / "compare.png", full_page=True)

    page.get_by_role("link", name=order[0], exact=True).first.click()
    page.get_by_role("tab", name="Artifacts").click()
    page.get_by_text("plots", exact=True).first.click()
    page.get_by_text("roc_curve.png", exact=True).first.click()
    page.get_by_text("plots/roc_curve.png", exact=True).wait_for()
    page.screenshot(path=shots / "artifacts.png")

    page.goto(session_runs)
    page.get_by_text("matching runs").wait_for()
    # MLflow folds child runs under their parent: the table shows this session's run alone,
    # and its expander unfolds exactly the six experiment runs.
    session_row = page.get_by_role("row").filter(has_text="Benchmark session")
    session_row.first.wait_for()
    assert session_row.count() == 1
    for spec in EXPERIMENTS:
        assert page.get_by_text(spec.title, exact=True).count() == 0, spec.title
    session_row.get_by_role("button").first.click()
    for spec in EXPERIMENTS:
        page.get_by_text(spec.title, exact=True).wait_for()
    page.screenshot(path=shots / "session-runs.png")

    page.goto(registry)
    page.get_by_text("@ champion").wait_for()
    assert page.get_by_text("titanic_survival", exact=True).count() >= 1
    page.screenshot(path=shots / "registry.png", full_page=True)
