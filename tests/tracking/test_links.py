"""The links into the MLflow UI: the routes MLflow 3.17's own UI builds, parsable back."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, unquote, urlsplit

from titanic_bench.tracking.links import SessionLinks, session_filter

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
