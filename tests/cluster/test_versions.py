"""Workers must run the controller's versions; a real worker with another scipy stops the session."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

import pytest

from tests.cluster.helpers import dask_cluster, forest_project, left_behind
from titanic_bench.cluster.versions import PACKAGES, check_versions, differences, local_versions
from titanic_bench.errors import ClusterError

FAKE_SCIPY = "0.0.1"


def test_local_versions_are_the_installed_ones() -> None:
    versions = local_versions()
    assert versions["python"] == platform.python_version()
    assert set(versions) == {"python", *PACKAGES}
    assert versions["scikit-learn"] == metadata.version("scikit-learn")


def test_every_difference_is_listed_per_worker_and_package() -> None:
    here = {"python": "3.11.7", "numpy": "2.3.0", "mlflow": "3.17.2"}
    workers = {
        "tcp://b:1": {"python": "3.11.7", "numpy": "2.2.0", "mlflow": "3.17.2"},
        "tcp://a:1": {"python": "3.12.1", "numpy": "2.3.0"},
    }
    assert differences(here, workers) == [
        "python 3.12.1 on tcp://a:1 (controller: 3.11.7)",
        "mlflow not reported on tcp://a:1 (controller: 3.17.2)",
        "numpy 2.2.0 on tcp://b:1 (controller: 2.3.0)",
    ]
    check_versions(here, {"tcp://a:1": dict(here)})
    with pytest.raises(ClusterError, match=r"numpy 2\.2\.0 on tcp://b:1 \(controller: 2\.3\.0\)"):
        check_versions(here, workers)


def fake_distribution(folder: Path, name: str, version: str) -> Path:
    """A folder whose dist-info makes importlib.metadata report ``version`` for ``name`` when it
    comes first on sys.path: a worker environment that differs, with the real package still used."""
    info = folder / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return folder


@pytest.mark.slow
def test_a_worker_with_another_scipy_stops_the_session_before_submitting(tmp_path: Path) -> None:
    project = forest_project(tmp_path)
    other = fake_distribution(tmp_path / "other-env", "scipy", FAKE_SCIPY)
    with dask_cluster(workers=1, env={"PYTHONPATH": str(other)}) as scheduler:
        result = project.run("--bench-dask", scheduler)

    assert result.ret == pytest.ExitCode.USAGE_ERROR, "\n".join(result.outlines[-30:] + result.errlines[-30:])
    errors = [line for line in result.errlines if line.startswith("ERROR: titanic-bench")]
    assert len(errors) == 1, result.errlines
    expected = f"scipy {FAKE_SCIPY} on tcp://127.0.0.1:"
    assert expected in errors[0] and f"(controller: {metadata.version('scipy')})" in errors[0]
    assert "numpy" not in errors[0]  # only what differs
    assert left_behind(project.home) == []


def test_a_worker_that_joins_after_the_check_refuses_its_task_before_training() -> None:
    """The controller checks the workers it finds at the start; each task checks its own."""
    from distributed import Client, LocalCluster

    from titanic_bench.cluster.submission import run_task
    from titanic_bench.ml.experiments import EXPERIMENTS
    from titanic_bench.session.context import SessionContext

    controller = {**local_versions(), "scipy": FAKE_SCIPY}  # as if the controller had another scipy
    # Port 9 (discard): the task must stop before it ever talks to a tracking server.
    context = SessionContext("s", "http://127.0.0.1:9", "", "", "", "", "", "", False, "m")
    cluster = LocalCluster(n_workers=1, processes=False, threads_per_worker=1, dashboard_address=None)
    with cluster, Client(cluster) as client:
        future = client.submit(run_task, context, EXPERIMENTS[0], "b::t[x]", None, controller, pure=False)
        with pytest.raises(ClusterError) as refused:
            future.result(timeout=60)
    message = str(refused.value)
    assert f"scipy {metadata.version('scipy')} on inproc://" in message
    assert f"(controller: {FAKE_SCIPY})" in message and "numpy" not in message
