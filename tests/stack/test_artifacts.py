"""The embedded server's artifact destination: folders, S3 buckets checked against a real
S3-compatible server (SeaweedFS on loopback, ``tests/support/s3.py``), and the S3 variables
kept out of the harness's own process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.serving.helpers import TITANIC_BENCH, started_client
from tests.support.s3 import S3Server
from tests.support.sessions import (
    STARTS_LOG_ENV,
    BenchProject,
    session_command,
    session_environment,
    wait_for_finished_run,
)
from titanic_bench.errors import ArtifactStoreError
from titanic_bench.serving.app import ServeSettings, create_app
from titanic_bench.stack.artifacts import (
    check_bucket,
    check_destination,
    endpoint_of,
    take_s3_environment,
)
from titanic_bench.stack.server import EmbeddedServer, free_port, server_command, stop_process_group


def test_destinations_the_server_takes(tmp_path: Path) -> None:
    assert check_destination("s3://bucket") == "s3://bucket"
    assert check_destination("s3://bucket/runs/x") == "s3://bucket/runs/x"
    assert check_destination(str(tmp_path / "a" / ".." / "b")) == str(tmp_path / "b")
    assert check_destination(f"file://{tmp_path}/c") == str(tmp_path / "c")
    with pytest.raises(ArtifactStoreError, match="names no bucket"):
        check_destination("s3:///path")
    with pytest.raises(ArtifactStoreError, match="neither a folder nor s3://"):
        check_destination("gs://bucket")


def test_the_s3_variables_are_taken_out_and_nothing_else() -> None:
    environ = {
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_ENDPOINT_URL": "http://e",
        "MLFLOW_S3_ENDPOINT_URL": "http://m",
        "MLFLOW_TRACKING_URI": "http://t",
        "PATH": "/bin",
    }
    taken = take_s3_environment(environ)
    assert set(taken) == {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ENDPOINT_URL",
        "MLFLOW_S3_ENDPOINT_URL",
    }
    assert environ == {"MLFLOW_TRACKING_URI": "http://t", "PATH": "/bin"}
    assert endpoint_of(taken) == "http://m"  # MLflow's own variable wins, as in its S3 store
    assert "no MLFLOW_S3_ENDPOINT_URL" in endpoint_of({})


def test_the_server_gets_the_s3_destination_and_variables(tmp_path: Path) -> None:
    variables = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "hidden-secret"}
    server = EmbeddedServer(
        "sqlite:///x.db", tmp_path, tmp_path / "log", artifacts_uri="s3://b/p", s3_environment=variables
    )
    command = server.command()
    assert command[command.index("--artifacts-destination") + 1] == "s3://b/p"
    assert "hidden-secret" not in " ".join(command)
    assert server.environment()["AWS_SECRET_ACCESS_KEY"] == "hidden-secret"
    assert "hidden-secret" not in repr(server)
    plain = server_command(tmp_path, "127.0.0.1", 5000)
    assert plain[plain.index("--artifacts-destination") + 1] == str(tmp_path)


def test_fast_tier_the_check_passes_on_a_bucket_and_names_a_missing_one(moto_server: dict[str, str]) -> None:
    import boto3

    endpoint = moto_server["MLFLOW_S3_ENDPOINT_URL"]
    client = boto3.session.Session(
        aws_access_key_id="moto", aws_secret_access_key="moto-secret", region_name="us-east-1"
    ).client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket="fast-tier")
    check_bucket("s3://fast-tier/runs", moto_server)
    with pytest.raises(ArtifactStoreError, match=f"bucket 'absent' at {endpoint} does not exist"):
        check_bucket("s3://absent", moto_server)


@pytest.mark.slow
def test_an_existing_bucket_passes_the_check(s3_server: S3Server, s3_bucket: str) -> None:
    check_bucket(f"s3://{s3_bucket}/runs", s3_server.server_environment())
    # botocore's own endpoint variable, which MLflow's S3 store leaves to botocore, works too.
    variables = s3_server.server_environment()
    variables["AWS_ENDPOINT_URL"] = variables.pop("MLFLOW_S3_ENDPOINT_URL")
    check_bucket(f"s3://{s3_bucket}", variables)


@pytest.mark.slow
def test_a_missing_bucket_names_the_endpoint_and_the_bucket(s3_server: S3Server) -> None:
    with pytest.raises(ArtifactStoreError) as caught:
        check_bucket("s3://no-such-bucket-here", s3_server.server_environment())
    message = str(caught.value)
    assert f"bucket 'no-such-bucket-here' at {s3_server.endpoint} does not exist" in message
    assert s3_server.secret_key not in message and "\n" not in message


@pytest.mark.slow
def test_a_wrong_secret_names_the_key_id_never_the_secret(s3_server: S3Server, s3_bucket: str) -> None:
    wrong = {**s3_server.server_environment(), "AWS_SECRET_ACCESS_KEY": "wrong-secret-value"}
    with pytest.raises(ArtifactStoreError) as caught:
        check_bucket(f"s3://{s3_bucket}", wrong)
    message = str(caught.value)
    assert f"refused access key '{s3_server.access_key}' (HTTP 403)" in message
    assert "wrong-secret-value" not in message and s3_server.secret_key not in message


def test_an_unreachable_endpoint_is_one_line_without_the_secret() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    variables = {
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "very-secret",
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pytest.raises(ArtifactStoreError) as caught:
        check_bucket("s3://mlflow", variables)
    message = str(caught.value)
    assert message.startswith(f"the artifact store is unreachable for bucket 'mlflow' at {endpoint}")
    assert "very-secret" not in message and "\n" not in message


def test_without_boto3_an_s3_destination_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # what an environment without the s3 extra sees
    with pytest.raises(ArtifactStoreError, match=r"needs boto3, .*pip install 'titanic-bench\[s3\]'"):
        check_bucket("s3://mlflow", {})


def test_no_credentials_at_all_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No shared credentials file or profile may supply a key either.
    monkeypatch.setenv("HOME", str(tmp_path))
    endpoint = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ArtifactStoreError, match="no S3 credentials for bucket 'mlflow'"):
        check_bucket("s3://mlflow", {"MLFLOW_S3_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1"})


# --- whole sessions on the S3 destination ---------------------------------------------------

#: The harness's own S3 variables reach no process but the server: each worker's test and
#: the controller (after its last MLflow call) write down the S3 variable names they see.
ENVIRONMENT_CONFTEST = """

import json
import os
import time
from pathlib import Path

import pytest

S3_PREFIXES = ("AWS_", "MLFLOW_S3_")


def _write(kind):
    seen = sorted(name for name in os.environ if name.startswith(S3_PREFIXES))
    folder = Path(os.environ["BENCH_ENV_RECORD"])
    folder.mkdir(exist_ok=True)
    (folder / f"{kind}-{os.getpid()}.json").write_text(json.dumps(seen))


@pytest.fixture(autouse=True)
def _record_environment():
    _write("worker" if os.environ.get("PYTEST_XDIST_WORKER") else "single")
    yield


def pytest_configure(config):
    if hasattr(config, "workerinput"):
        _write("worker")


def pytest_terminal_summary(config):
    if not hasattr(config, "workerinput"):
        _write("controller")


@pytest.fixture(autouse=True)
def _hold_the_second(request):
    gate = os.environ.get("BENCH_HOLD_SECOND")
    if gate and request.node.callspec.id == "second":
        for _ in range(6000):
            if Path(gate).exists():
                break
            time.sleep(0.1)
    yield
"""

#: Two cheap specs in the order they run without xdist: ``first``, then ``second``.
TWO_CHEAP = """
import dataclasses

import pytest

from titanic_bench import EXPERIMENTS, assert_result

LOGISTIC = next(spec for spec in EXPERIMENTS if spec.name == "logistic_regression")
SPECS = [dataclasses.replace(LOGISTIC, name=name, title=name) for name in ("first", "second")]


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_experiment(spec, titanic_bench):
    assert_result(titanic_bench.run(spec))
"""


def s3_project(root: Path) -> BenchProject:
    project = BenchProject.create(root, root / "state", bench_file=TWO_CHEAP)
    conftest = project.root / "conftest.py"
    conftest.write_text(conftest.read_text() + ENVIRONMENT_CONFTEST)
    return project


def recorded_environments(folder: Path) -> dict[str, list[str]]:
    return {path.stem: json.loads(path.read_text()) for path in folder.glob("*.json")}


@pytest.mark.slow
def test_a_session_keeps_its_artifacts_in_the_bucket_and_clients_need_no_s3_variable(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    project, record = s3_project(tmp_path / "project"), tmp_path / "environments"
    env = {**s3_server.server_environment(), "BENCH_ENV_RECORD": str(record)}
    args = ("-n", "2", f"--bench-artifacts=s3://{s3_bucket}/bench", "--bench-keep-server", "--bench-cv=3x1")
    result = project.run(*args, env=env)
    assert result.ret == 0, result.stdout.str()[-4000:]
    kept = re.search(
        r"MLflow server kept running at (http://\S+) \(process group (\d+)\)", result.stdout.str()
    )
    assert kept is not None, result.stdout.str()[-2000:]
    url, group = kept[1], int(kept[2])
    try:
        check_the_bucket_holds_the_session(s3_server, s3_bucket, project)
        environments = recorded_environments(record)
        assert sorted(kind.split("-")[0] for kind in environments) == ["controller", "worker", "worker"]
        assert all(names == [] for names in environments.values()), environments
        check_clients_read_the_champion_through_the_proxy(url, project)
    finally:
        stop_process_group(group)
    output = result.stdout.str() + result.stderr.str()
    assert s3_server.secret_key not in output
    assert not any(
        s3_server.secret_key in path.read_text(errors="replace") for path in files_of(project.home)
    )


def files_of(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file() and path.stat().st_size < 5_000_000]


def check_the_bucket_holds_the_session(s3_server: S3Server, bucket: str, project: BenchProject) -> None:
    keys = set(s3_server.objects(bucket))
    runs = project.experiment_runs()
    assert sorted(run.data.tags["spec"] for run in runs) == ["first", "second"]
    for run in runs:
        assert run.info.artifact_uri.startswith("mlflow-artifacts:/"), run.info.artifact_uri
        prefix = f"bench/{run.info.experiment_id}/{run.info.run_id}/artifacts/"
        expected = {
            "plots/confusion_matrix.png",
            "plots/roc_curve.png",
            "plots/feature_importance.png",
            "reports/classification_report.txt",
            "reports/feature_importance.json",
            "environment.json",
        }
        assert {prefix + name for name in expected} <= keys, sorted(keys)
        models = [key for key in keys if key.startswith(f"bench/{run.info.experiment_id}/models/")]
        model_files = {key.rsplit("/", 1)[-1] for key in models}
        assert {"MLmodel", "model.skops"} <= model_files, models
    session = runs[0].data.tags["session_id"]
    client = project.client()
    [session_run] = client.search_runs(
        [runs[0].info.experiment_id], f"tags.session_id = '{session}' and tags.run_kind = 'session'"
    )
    session_prefix = f"bench/{session_run.info.experiment_id}/{session_run.info.run_id}/artifacts/"
    reports = {f"{session_prefix}reports/leaderboard.json", f"{session_prefix}reports/leaderboard.md"}
    assert reports | {f"{session_prefix}plots/leaderboard.png"} <= keys
    # Nothing went to the state folder's artifacts.
    assert not [path for path in (project.home / "artifacts").rglob("*") if path.is_file()]


def check_clients_read_the_champion_through_the_proxy(url: str, project: BenchProject) -> None:
    """The API and ``reproduce``, in processes without any S3 variable, read from the bucket
    through the server: the server's log shows proxied artifact reads and no presigned URL."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "MLFLOW_S3_"))}
    clean.pop("MLFLOW_TRACKING_URI", None)
    champion = MlflowClient(url).get_model_version_by_alias("titanic_survival", "champion")
    reproduced = subprocess.run(
        [str(TITANIC_BENCH), "reproduce", champion.tags["run_id"], "--tracking-uri", url],
        env=clean,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert reproduced.returncode == 0, reproduced.stdout[-2000:] + reproduced.stderr[-2000:]
    settings = ServeSettings(
        model_uri="models:/titanic_survival@champion", tracking_uri=url, poll_seconds=60.0
    )
    for client in started_client(create_app(settings)):
        assert client.get("/health").json()["model_version"] == str(champion.version)
        answer = client.post(
            "/predict", json={"pclass": 1, "sex": "female", "age": 30.0, "sibsp": 0, "parch": 0, "fare": 80.0}
        )
        assert answer.status_code == 200 and answer.json()["survived"] in (0, 1)
    log = (project.home / "mlflow-server.log").read_text()
    assert "/api/2.0/mlflow-artifacts/artifacts/" in log
    assert "/presigned/" not in log and "presigned-download-url" not in log


def first_run_finished(session: subprocess.Popen[str], home: Path, timeout: float = 600.0) -> None:
    """Until an experiment run of ``session`` is FINISHED; fails at once if the session ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if session.poll() is not None:
            raise AssertionError(f"the session ended early:\n{session.communicate()[0][-4000:]}")
        with suppress(AssertionError):
            wait_for_finished_run(home, timeout=2.0)
            return
    raise AssertionError(f"no experiment run finished within {timeout:.0f} s")


@pytest.mark.slow
def test_a_bucket_removed_mid_session_is_one_clear_error_and_nothing_is_promoted(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    project, gate = s3_project(tmp_path / "project"), tmp_path / "bucket-removed"
    env = {
        **session_environment(project.home),
        **s3_server.server_environment(),
        "BENCH_ENV_RECORD": str(tmp_path / "environments"),
        "BENCH_HOLD_SECOND": str(gate),
        STARTS_LOG_ENV: str(project.starts_log),
    }
    command = session_command("-p", "no:xdist", f"--bench-artifacts=s3://{s3_bucket}", "--bench-cv=3x1")
    session = subprocess.Popen(
        command, cwd=project.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        first_run_finished(session, project.home)
        s3_server.remove_bucket(s3_bucket)
        gate.touch()
        output, _ = session.communicate(timeout=600)
    finally:
        if session.poll() is None:
            session.kill()
            session.wait()
    assert session.returncode == 1, output[-4000:]
    expected = (
        f"the artifact store failed during the session: bucket '{s3_bucket}' at {s3_server.endpoint} "
        "does not exist"
    )
    assert expected in output and "nothing was promoted" in output, output[-4000:]
    assert s3_server.secret_key not in output
    versions = project.client().search_model_versions("name = 'titanic_survival'")
    assert versions == [] or all("champion" not in version.aliases for version in versions)


@pytest.mark.slow
@pytest.mark.parametrize("problem", ["missing bucket", "closed port"])
def test_a_bad_bucket_or_endpoint_stops_the_session_before_any_server_or_training(
    s3_server: S3Server, tmp_path: Path, problem: str
) -> None:
    project = s3_project(tmp_path / "project")
    env = {**s3_server.server_environment(), "BENCH_ENV_RECORD": str(tmp_path / "environments")}
    if problem == "closed port":
        env["MLFLOW_S3_ENDPOINT_URL"] = endpoint = f"http://127.0.0.1:{free_port()}"
        expected = f"titanic-bench: the artifact store is unreachable for bucket 'absent' at {endpoint}"
    else:
        expected = f"titanic-bench: bucket 'absent' at {s3_server.endpoint} does not exist"
    result = project.run("-n", "2", "--bench-artifacts=s3://absent/x", env=env)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    [line] = [line for line in output.splitlines() if "titanic-bench:" in line]
    assert line.removeprefix("ERROR: ").startswith(expected), line
    assert s3_server.secret_key not in output and "Traceback" not in output
    assert project.server_starts() == 0  # stopped before the server, so before any training
    assert not (project.home / "mlflow.db").exists()
