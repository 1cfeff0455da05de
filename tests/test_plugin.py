"""Acceptance tests of the pytest plugin: real sessions, real MLflow server, with and without xdist."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.processes import processes_mentioning
from tests.support.sessions import BenchProject
from titanic_bench.data.loading import PINNED_DIGEST
from titanic_bench.tracking.tags import TagKey

pytestmark = pytest.mark.slow

XDIST_MODES = {"no-xdist": ("-p", "no:xdist"), "xdist-2": ("-n", "2")}

EXPECTED_ARTIFACTS = {
    "plots/feature_importance.png",
    "plots/confusion_matrix.png",
    "plots/roc_curve.png",
    "reports/classification_report.txt",
    "environment.json",
}


@pytest.fixture
def project(tmp_path: Path) -> BenchProject:
    return BenchProject.create(tmp_path / "project", tmp_path / "state")


@pytest.mark.parametrize("mode", XDIST_MODES.values(), ids=XDIST_MODES.keys())
def test_session_trains_logs_checks_floors_and_promotes(project: BenchProject, mode: tuple[str, str]) -> None:
    result = project.run(*mode)

    result.assert_outcomes(passed=1, failed=1)
    assert project.server_starts() == 1
    assert processes_mentioning(str(project.home)) == []
    output = result.stdout.str()
    assert "a_impossible missed its floor(s) on accuracy, roc_auc:" in output
    assert "accuracy = 0.8045 (floor 0.9900) BELOW FLOOR" in output
    assert "roc_auc = 0.8514 (floor 0.9990) BELOW FLOOR" in output

    board = json.loads((project.home / "reports" / "leaderboard.json").read_text())
    session_id = board["session_id"]
    runs = {run.data.tags[TagKey.SPEC]: run for run in project.experiment_runs(session_id)}
    assert set(runs) == {"logistic_regression", "a_impossible"}
    check_logged_run(project, runs["logistic_regression"], session_id, passed=True)
    check_logged_run(project, runs["a_impossible"], session_id, passed=False)

    client = project.client()
    champion = client.get_model_version_by_alias("titanic_survival", "champion")
    assert champion.tags["spec"] == "logistic_regression"
    assert champion.tags["session_id"] == session_id
    assert champion.tags["data_digest"] == PINNED_DIGEST
    assert champion.run_id == runs["logistic_regression"].info.run_id
    assert len(client.search_model_versions("name='titanic_survival'")) == 1
    for spec in ("logistic_regression", "a_impossible"):
        assert len(client.search_model_versions(f"name='titanic_{spec}'")) == 1
    assert board["champion"]["spec"] == "logistic_regression"
    assert (  # the terminal wraps the line at 120 columns
        "Champion: logistic_regression -> titanic_survival version 1 (@champion), logistic_regression won: "
        "highest cross-validated roc_auc" in " ".join(output.split())
    )
    assert "titanic-bench leaderboard" in output


def check_logged_run(project: BenchProject, run: object, session_id: str, *, passed: bool) -> None:
    from mlflow.entities import Run

    assert isinstance(run, Run)
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert run.info.status == "FINISHED"
    assert run.info.run_name in ("Logistic Regression", "Impossible")
    assert params["C"] == "1.0" and params["solver"] == "lbfgs" and params["max_iter"] == "1000"
    assert params["penalty"] == "l2" and params["model_type"] == "LogisticRegression"
    assert params["feature_set"] == "seed" and params["test_size"] == "179"
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc", "fit_seconds", "predict_seconds"):
        assert metric in metrics
    assert tags[TagKey.SESSION] == session_id
    assert tags[TagKey.TASK] == "binary_classification"
    assert tags[TagKey.DATASET] == "titanic"
    assert tags[TagKey.DATA_PINNED] == "true"
    assert tags[TagKey.NODEID].startswith("benchmarks/test_bench.py::test_experiment[")
    assert tags[TagKey.FLOORS] == ("passed" if passed else "failed")
    assert tags["mlflow.parentRunId"]
    assert run.inputs is not None
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == "titanic"
    assert dataset_input.dataset.digest == PINNED_DIGEST[:32]
    assert json.loads(str(dataset_input.dataset.schema))  # the columns are recorded
    assert project.run_artifacts(run) >= EXPECTED_ARTIFACTS
    model = project.logged_model(run)
    sklearn_flavor = model["flavors"]["sklearn"]  # type: ignore[index]
    assert sklearn_flavor["serialization_format"] == "skops"
    assert sklearn_flavor["skops_trusted_types"] == ["numpy.dtype"]
    assert "signature" in model and "saved_input_example_info" in model
    files = model["files"]
    assert isinstance(files, list)
    assert {"model.skops", "requirements.txt", "input_example.json"} <= set(files)
    requirements = (project.home / "artifacts").glob(
        f"*/models/{model['model_id']}/artifacts/requirements.txt"
    )
    pins = next(requirements).read_text().split()
    assert any(pin.startswith("scikit-learn==") for pin in pins)
    assert not any(pin.startswith("pytest") for pin in pins)


def test_each_session_adds_one_champion_version_and_keeps_history(project: BenchProject) -> None:
    first = project.run("-n", "2")
    second = project.run("-p", "no:xdist", "-k", "logistic")

    first.assert_outcomes(passed=1, failed=1)
    second.assert_outcomes(passed=1, deselected=1)
    client = project.client()
    versions = client.search_model_versions("name='titanic_survival'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    assert str(client.get_model_version_by_alias("titanic_survival", "champion").version) == "2"
    assert len(project.experiment_runs()) == 3


def test_no_champion_when_every_run_fails(project: BenchProject) -> None:
    result = project.run("-p", "no:xdist", "-k", "impossible")

    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        ["*Champion: none promoted, no run passed its floors (failed: a_impossible).*"]
    )
    client = project.client()
    assert client.search_model_versions("name='titanic_survival'") == []


def test_connect_mode_logs_to_a_running_server(
    project: BenchProject, tracking_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    url = tracking_server.url  # type: ignore[attr-defined]
    result = project.run("-p", "no:xdist", "-k", "logistic", env={"MLFLOW_TRACKING_URI": url})

    result.assert_outcomes(passed=1, deselected=1)
    assert project.server_starts() == 0
    assert not (project.home / "mlflow.db").exists()
    board = json.loads((project.home / "reports" / "leaderboard.json").read_text())
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("titanic-survival-prediction")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], f"tags.session_id = '{board['session_id']}'")
    assert {run.data.tags.get(TagKey.SPEC) for run in runs} == {"logistic_regression", None}
    assert board["ui_url"].startswith(url)


def test_unreachable_server_fails_clearly_after_retries(project: BenchProject) -> None:
    from titanic_bench.stack.server import free_port

    uri = f"http://127.0.0.1:{free_port()}"
    result = project.run("-p", "no:xdist", "--bench-tracking-uri", uri, "--bench-connect-attempts", "3")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*the MLflow tracking server at {uri} is unreachable after 3 attempts*"])
    assert "ConnectionRefusedError" in result.stderr.str()
    assert project.server_starts() == 0


def test_an_unreachable_server_fails_before_the_xdist_workers_start(
    project: BenchProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    from titanic_bench.stack.server import free_port

    uri = f"http://ada:hunter2@127.0.0.1:{free_port()}"
    result = project.run("-n", "2", "--bench-connect-attempts", "2", env={"MLFLOW_TRACKING_URI": uri})

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert "is unreachable after 2 attempts" in output and "hunter2" not in output
    assert "bringing up nodes" not in output and "created: 2/2 workers" not in output


def test_a_database_tracking_uri_that_is_down_is_one_line_without_its_password(project: BenchProject) -> None:
    uri = "postgresql://u:hunter2@127.0.0.1:1/x"  # port 1: nothing listens there
    result = project.run("-p", "no:xdist", "--bench-tracking-uri", uri)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert result.stderr.lines[0].startswith(
        "ERROR: titanic-bench: cannot reach the tracking server postgresql://u:***@127.0.0.1:1/x: "
    )
    assert result.stderr.lines[0].endswith(
        "Start it, or pass --bench-tracking-uri (or set MLFLOW_TRACKING_URI)."
    )
    assert "hunter2" not in output and "Traceback" not in output and "INTERNALERROR" not in output


def test_a_state_folder_that_cannot_be_created_is_one_line(project: BenchProject, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    home = blocker / "state"
    result = project.run("-p", "no:xdist", "--bench-home", str(home))

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == (
        f"ERROR: titanic-bench: the state folder {home} cannot be created or written (Not a directory): "
        "pass a writable folder with --bench-home or TITANIC_BENCH_HOME."
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert project.server_starts() == 0


@pytest.mark.parametrize("read_only", ["state", "state/reports"])
def test_a_state_folder_that_exists_but_cannot_be_written_is_one_line(
    project: BenchProject, tmp_path: Path, read_only: str
) -> None:
    from tests.support.folders import read_only_folder

    home = tmp_path / "state"
    for folder in ("artifacts", "reports"):
        (home / folder).mkdir(parents=True)
    with read_only_folder(tmp_path / read_only):
        result = project.run("-p", "no:xdist", "--bench-home", str(home))

    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    line = result.stderr.lines[0]
    assert line.startswith(f"ERROR: titanic-bench: the state folder {home} cannot be created or written (")
    assert line.endswith("pass a writable folder with --bench-home or TITANIC_BENCH_HOME.")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert project.server_starts() == 0


def test_a_deleted_experiment_of_the_same_name_is_one_line_not_an_internal_error(
    project: BenchProject,
) -> None:
    project.home.mkdir(parents=True)
    client = project.client()
    client.delete_experiment(client.create_experiment("titanic-survival-prediction"))
    result = project.run("-p", "no:xdist")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output and "Traceback" not in output
    assert (
        "titanic-bench: the experiment 'titanic-survival-prediction' is deleted on the tracking server "
        "http://127.0.0.1:"
    ) in output
    assert "restore it in the MLflow UI, or pass another --bench-experiment" in output


def test_bad_data_stops_the_session_before_training(project: BenchProject, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("PassengerId,Survived\n1,0\n")
    result = project.run("-p", "no:xdist", "--bench-data", str(bad))

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*titanic-bench: the data in *bad.csv lacks column(s) Pclass, Name*"])
    assert "passed" not in result.stdout.str()
    assert processes_mentioning(str(project.home)) == []


def test_compose_mode_without_docker_engine_says_so(project: BenchProject) -> None:
    result = project.run("-p", "no:xdist", "--bench-mode", "compose")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*compose mode needs a running Docker engine*--bench-mode embedded*"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--bench-port", "http"), "--bench-port='http' must be a whole number from 0 to 65535."),
        (
            ("--bench-mode", "cloud"),
            "--bench-mode='cloud' is not one of: auto, embedded, connect, compose, off.",
        ),
        (("--bench-selection-metric", "speed"), "--bench-selection-metric='speed' is not one of"),
        (("--bench-mode", "connect"), "--bench-mode=connect needs a server"),
    ],
)
def test_bad_options_name_the_flag_and_value(
    project: BenchProject, args: tuple[str, ...], message: str
) -> None:
    result = project.run("-p", "no:xdist", *args)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
    assert project.server_starts() == 0


def test_harness_stays_off_outside_benchmark_paths(pytester: pytest.Pytester, bench_home: Path) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:xdist")

    result.assert_outcomes(passed=1)
    assert not bench_home.exists()


def test_ctrl_c_during_the_server_start_up_leaves_no_server_behind(project: BenchProject) -> None:
    import signal
    import time

    # Its own signal dispositions: a shell running the suite in the background ignores SIGINT.
    session = project.start("-n", "2")
    deadline = time.monotonic() + 120
    while not processes_mentioning(str(project.home)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_mentioning(str(project.home)), "the embedded server never started"
    time.sleep(3)  # into the server's start-up, before the session is ready
    os.killpg(session.pid, signal.SIGINT)  # as Ctrl-C does: the controller and its workers
    output, _ = session.communicate(timeout=120)
    assert session.returncode == pytest.ExitCode.INTERRUPTED, output
    assert processes_mentioning(str(project.home)) == []


def test_keep_server_leaves_it_running_and_says_where(project: BenchProject) -> None:
    import re

    from tests.support.processes import group_members
    from titanic_bench.stack.server import probe, stop_process_group

    result = project.run("-p", "no:xdist", "-k", "logistic", "--bench-keep-server")
    result.assert_outcomes(passed=1, deselected=1)
    match = re.search(
        r"MLflow server kept running at (http://\S+) \(process group (\d+)\)", result.stdout.str()
    )
    assert match, result.stdout.str()
    url, pgid = match.group(1), int(match.group(2))
    try:
        assert probe(url) is None
    finally:
        stop_process_group(pgid)
    assert group_members(pgid) == []
    assert processes_mentioning(str(project.home)) == []


def test_other_data_needs_consent_and_is_logged_as_such(project: BenchProject, tmp_path: Path) -> None:
    from titanic_bench.data.loading import content_digest, packaged_csv

    other = tmp_path / "other.csv"
    other.write_text(packaged_csv().read_text().replace("Braund, Mr. Owen Harris", "Braund, Mr. Owen H."))
    refused = project.run("-p", "no:xdist", "-k", "logistic", "--bench-data", str(other))
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    assert "differs from the pinned Titanic training set" in refused.stderr.str()

    accepted = project.run(
        "-p", "no:xdist", "-k", "logistic", "--bench-data", str(other), "--bench-allow-other-data"
    )
    accepted.assert_outcomes(passed=1, deselected=1)
    (run,) = project.experiment_runs()
    assert run.data.tags[TagKey.DATA_PINNED] == "false"
    assert run.data.tags[TagKey.DATA_DIGEST] == content_digest(other.read_bytes()) != PINNED_DIGEST
    assert run.inputs is not None
    assert run.inputs.dataset_inputs[0].dataset.digest == content_digest(other.read_bytes())[:32]
