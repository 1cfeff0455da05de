""".github/workflows/bench.yml: the services, commands and artifacts GitHub Actions runs.

No runner is needed: the workflow is read as YAML and checked against what the rest of
the project says (tox.ini's environments and the bench environment's state folder, the
Python version pyproject requires, the PostgreSQL roles the tests use).
"""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "bench.yml"


def job() -> dict[str, Any]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the bare key `on` as True.
    assert {"push", "pull_request"} <= set(workflow.get("on") or workflow[True])
    [only] = workflow["jobs"].values()
    return dict(only)


def tox_ini() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "tox.ini")
    return parser


def step_running(text: str) -> dict[str, Any]:
    [step] = [step for step in job()["steps"] if text in step.get("run", "")]
    return dict(step)


def test_postgres_runs_as_a_service_container_the_tests_reach_without_a_password() -> None:
    postgres = job()["services"]["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert "5432:5432" in postgres["ports"]
    assert postgres["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert "--health-cmd pg_isready" in postgres["options"]
    assert "CREATE ROLE root LOGIN SUPERUSER" in step_running("CREATE ROLE")["run"]


def test_it_runs_lint_tests_and_bench_through_tox_with_ci_set() -> None:
    assert job()["env"]["CI"] == "true"
    commands = [step.get("run", "").strip() for step in job()["steps"]]
    assert commands.count("tox -e lint,tests,bench") == 1
    environments = {section.removeprefix("testenv:") for section in tox_ini().sections()}
    assert {"lint", "tests", "bench"} <= environments
    python = next(s for s in job()["steps"] if s.get("uses", "").startswith("actions/setup-python"))
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert required == f">={python['with']['python-version']}"
    assert "playwright install --with-deps chromium" in step_running("playwright install")["run"]


def test_the_leaderboard_is_the_job_summary_and_the_reports_are_uploaded() -> None:
    bench = tox_ini()["testenv:bench"]
    assert "GITHUB_STEP_SUMMARY" in bench["pass_env"].split()
    assert (
        "GITHUB_STEP_SUMMARY" not in tox_ini()["testenv"]["pass_env"].split()
    )  # test sessions never write it
    [upload] = [
        step for step in job()["steps"] if step.get("uses", "").startswith("actions/upload-artifact@")
    ]
    assert upload["if"] == "always()"
    home = dict(line.split(" = ") for line in bench["set_env"].strip().splitlines())["TITANIC_BENCH_HOME"]
    assert home == "{env_tmp_dir}/state"  # tox's env_tmp_dir is .tox/<env>/tmp
    assert upload["with"]["path"].rstrip("/") == ".tox/bench/tmp/state/reports"
