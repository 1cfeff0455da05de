"""Promotion only from a complete, verified session: the champion check loads no pickle, a
registry fault fails the session, the baseline is written only by a session that passed, and
each session adds exactly one version."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from tests.support.proxy import faulty_proxy
from tests.support.sessions import SMALL_FOREST, run_session, sqlite_uri, write_project
from titanic_bench.options import CHAMPION_ALIAS, DEFAULT_REGISTERED_MODEL
from titanic_bench.tracking.client import Tracker

pytestmark = pytest.mark.slow

SMALL_CV = ("--bench-cv", "2x1")
#: Enough folds for the champion check to see a stump forest is worse.
GATE_CV = ("--bench-cv", "5x2")


class Trap:
    """Unpickling this creates ``marker``: what a hostile registered model could do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def register_pickled_champion(home: Path, marker: Path) -> None:
    """A cloudpickle "model" as version 1 of the champion model, with the alias on it, and
    no run of ours behind it, so the session has to load it to compare."""
    import mlflow.sklearn
    from mlflow.tracking import MlflowClient
    from sklearn.linear_model import LogisticRegression

    folder = home / "hostile" / "model"
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    mlflow.sklearn.save_model(model, folder, serialization_format="cloudpickle")
    (folder / "model.pkl").write_bytes(pickle.dumps(Trap(marker)))
    client = MlflowClient(tracking_uri=sqlite_uri(home), registry_uri=sqlite_uri(home))
    client.create_registered_model(DEFAULT_REGISTERED_MODEL)
    version = client.create_model_version(DEFAULT_REGISTERED_MODEL, source=folder.as_uri())
    client.set_registered_model_alias(DEFAULT_REGISTERED_MODEL, CHAMPION_ALIAS, version.version)


def test_a_pickled_champion_is_refused_not_unpickled(tmp_path: Path) -> None:
    project, home = write_project(tmp_path / "project", logistic=False), tmp_path / "state"
    home.mkdir()
    marker = tmp_path / "unpickled-here"
    register_pickled_champion(home, marker)
    result = run_session(project, home, "-p", "no:xdist", *SMALL_CV)

    assert not marker.exists(), "the session unpickled the registered model"
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert "the champion, titanic_survival version 1, is refused" in result.stdout
    assert "cloudpickle" in result.stdout and "never pickles" in result.stdout
    versions = registered_versions(sqlite_uri(home))
    assert versions == ["1"]


def registered_versions(uri: str, name: str = DEFAULT_REGISTERED_MODEL) -> list[str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return sorted(str(version.version) for version in client.search_model_versions(f"name='{name}'"))


def alias_fault(method: str, path: str) -> tuple[int, dict[str, str]] | None:
    """The registry fails to read a registered model or its aliases (a 5xx): not the same as
    "no champion yet"."""
    if method == "GET" and path.startswith("/api/2.0/mlflow/registered-models/"):
        return 500, {"error_code": "INTERNAL_ERROR", "message": "the registry database is on fire"}
    return None


def test_a_registry_fault_fails_the_session_instead_of_skipping_the_champion_check(
    tmp_path: Path, tracking_server: Any
) -> None:
    project, home = write_project(tmp_path / "project", logistic=False), tmp_path / "state"
    model = "titanic_registry_fault"
    with faulty_proxy(tracking_server.url, alias_fault) as proxy:
        result = run_session(
            project,
            home,
            "-p",
            "no:xdist",
            *SMALL_CV,
            "--bench-tracking-uri",
            proxy,
            "--bench-registered-model",
            model,
            "--bench-connect-attempts",
            "2",
        )

    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert "titanic-bench: end of session failed" in result.stdout
    assert f"reading {model}@champion failed on the tracking server {proxy}" in result.stdout
    assert "500" in result.stdout  # MLflow's retries end on the status, not the body
    assert registered_versions(tracking_server.url, model) == []


def test_the_baseline_is_written_only_by_a_session_whose_gates_passed(tmp_path: Path) -> None:
    project, home = write_project(tmp_path / "project"), tmp_path / "state"
    first = run_session(project, home, "-p", "no:xdist", *GATE_CV)
    assert first.returncode == 0, first.stdout
    stump = {"stump_forest": {**SMALL_FOREST, "max_depth": 1}}
    write_project(project, stump, logistic=False)
    baseline = tmp_path / "baseline.json"
    blocked = run_session(
        project,
        home,
        "-p",
        "no:xdist",
        *GATE_CV,
        "--bench-gate=champion",
        "--bench-update-baseline",
        f"--bench-baseline={baseline}",
    )

    assert blocked.returncode == pytest.ExitCode.TESTS_FAILED, blocked.stdout
    assert "is significantly worse than the current champion" in blocked.stdout
    assert not baseline.exists(), "a session whose champion check failed wrote the baseline"
    assert f"baseline {baseline} NOT written" in blocked.stdout


def test_a_winner_worse_than_the_champion_writes_no_baseline_with_the_champion_gate_off(
    tmp_path: Path,
) -> None:
    project, home = write_project(tmp_path / "project"), tmp_path / "state"
    first = run_session(project, home, "-p", "no:xdist", *GATE_CV)
    assert first.returncode == 0, first.stdout
    write_project(project, {"stump_forest": {**SMALL_FOREST, "max_depth": 1}}, logistic=False)
    baseline = tmp_path / "baseline.json"
    blocked = run_session(
        project, home, "-p", "no:xdist", *GATE_CV, "--bench-update-baseline", f"--bench-baseline={baseline}"
    )

    assert blocked.returncode == 0, blocked.stdout  # the gate is off: the block is reported, not failed
    assert "stump_forest is significantly worse than the current champion" in blocked.stdout
    assert not baseline.exists(), "a session whose champion check failed wrote the baseline"
    note = next(line for line in blocked.stdout.splitlines() if f"baseline {baseline} NOT written" in line)
    assert "significantly worse than the current champion" in note, note


def test_a_session_at_n4_with_three_passing_candidates_adds_exactly_one_version(tmp_path: Path) -> None:
    forests = {f"forest_{seed}": {**SMALL_FOREST, "random_state": seed} for seed in range(3)}
    project, home = write_project(tmp_path / "project", forests), tmp_path / "state"
    result = run_session(project, home, "-n", "4", *SMALL_CV)

    assert result.returncode == 0, result.stdout
    assert "4 passed" in result.stdout
    assert registered_versions(sqlite_uri(home)) == ["1"]


def test_a_champion_moved_by_another_session_meanwhile_is_compared_again(sqlite_tracker: Tracker) -> None:
    from collections.abc import Iterator
    from contextlib import contextmanager

    from titanic_bench import EXPERIMENTS
    from titanic_bench.data.loading import load_titanic
    from titanic_bench.ml.crossval import CVPlan
    from titanic_bench.options import BenchSettings
    from titanic_bench.session.bench import Experiment
    from titanic_bench.session.context import SessionContext
    from titanic_bench.session.promotion import promote_winner
    from titanic_bench.tracking.registry import move_alias, register
    from titanic_bench.tracking.runs import open_session

    tracker, data, model = sqlite_tracker, load_titanic(), "titanic_moved"
    session = open_session(tracker, "moved", "s-1", {}, data, controller="{}")
    context = SessionContext(
        session_id="s-1",
        tracking_uri=tracker.uri,
        ui_url="",
        experiment_id=session.experiment_id,
        experiment_name="moved",
        parent_run_id=session.run_id,
        data_source=data.source,
        data_digest=data.digest,
        allow_other_data=False,
        registered_model=model,
        cv=CVPlan(2, 1),
    )
    specs = {spec.name: spec for spec in EXPERIMENTS}
    ours = Experiment(context, tracker, data).run(specs["logistic_regression"], "b::t[ours]")
    theirs = Experiment(context, tracker, data).run(specs["random_forest_baseline"], "b::t[theirs]")

    @contextmanager
    def another_session_promotes_first() -> Iterator[None]:
        version = register(tracker, theirs.model_uri, model, {"spec": theirs.spec})
        move_alias(tracker, model, CHAMPION_ALIAS, version)
        yield

    settings = BenchSettings(registered_model=model, cv=CVPlan(2, 1))
    promotion = promote_winner(tracker, [ours], settings, "s-1", data, another_session_promotes_first)

    assert "the champion moved to version 1 during the session, compared again" in promotion.reason
    assert {check.reference for check in promotion.champion_checks} == {"champion v1"}
    expected = "1" if promotion.blocked else "2"
    alias = tracker.client.get_model_version_by_alias(model, CHAMPION_ALIAS).version
    assert str(alias) == expected


def concurrent_sessions(project: Path, homes: list[Path], *args: str) -> list[tuple[int, str]]:
    from tests.support.sessions import start_session

    sessions = [start_session(project, home, *args) for home in homes]
    outcomes = []
    for session in sessions:
        output, _ = session.communicate(timeout=900)
        outcomes.append((session.returncode, output))
    if any(code != 0 for code, _ in outcomes):
        # pytest cuts long assertion values: the whole outputs go to the captured stdout.
        print("\n\n".join(f"--- exit {code}\n{output}" for code, output in outcomes))
    return outcomes


def test_two_concurrent_sessions_on_one_server_each_add_one_version(
    tmp_path: Path, tracking_server: Any
) -> None:
    project, model = write_project(tmp_path / "project", logistic=False), "titanic_concurrent"
    homes = [tmp_path / "state-a", tmp_path / "state-b"]
    outcomes = concurrent_sessions(
        project,
        homes,
        "-p",
        "no:xdist",
        *SMALL_CV,
        "--bench-tracking-uri",
        tracking_server.url,
        "--bench-registered-model",
        model,
    )

    assert [code for code, _ in outcomes] == [0, 0], outcomes
    assert registered_versions(tracking_server.url, model) == ["1", "2"]
    alias = tracking_client(tracking_server.url).get_model_version_by_alias(model, CHAMPION_ALIAS).version
    assert str(alias) in {"1", "2"}


@pytest.mark.postgres
def test_two_concurrent_sessions_sharing_a_postgresql_backend_serialise_their_promotion(
    tmp_path: Path,
) -> None:
    from tests.support.postgres import scratch_database, server_address
    from titanic_bench.paths import state_paths
    from titanic_bench.stack.server import start_embedded

    host, port, user = server_address()
    with scratch_database("concurrent") as database:
        backend = f"postgresql://{user}@{host}:{port}/{database}"
        schema = start_embedded(state_paths(tmp_path / "schema"), backend)  # one migration, before the race
        schema.wait_ready()
        schema.stop()
        project = write_project(tmp_path / "project", logistic=False)
        homes = [tmp_path / "state-a", tmp_path / "state-b"]
        outcomes = concurrent_sessions(
            project, homes, "-p", "no:xdist", *SMALL_CV, "--bench-backend-uri", backend
        )

        assert [code for code, _ in outcomes] == [0, 0], outcomes
        uri = f"postgresql+psycopg2://{user}@{host}:{port}/{database}"
        assert registered_versions(uri) == ["1", "2"]
        alias = (
            tracking_client(uri).get_model_version_by_alias(DEFAULT_REGISTERED_MODEL, CHAMPION_ALIAS).version
        )
        assert str(alias) in {"1", "2"}


def tracking_client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)
