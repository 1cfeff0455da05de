"""Option resolution: flag over environment over ini over default, validated once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from titanic_bench.errors import OptionError
from titanic_bench.gates.checks import Correction, GateTest
from titanic_bench.options import BenchSettings, GateMode, Mode, resolve


def settings_of(pytester: pytest.Pytester, *args: str) -> BenchSettings:
    return resolve(pytester.parseconfigure(*args))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every option variable, whatever a user or tox (which passes TITANIC_BENCH_*) has set.
    for name in [*(name for name in os.environ if name.startswith("TITANIC_BENCH_")), "MLFLOW_TRACKING_URI"]:
        monkeypatch.delenv(name, raising=False)


def test_defaults_give_the_embedded_stack(pytester: pytest.Pytester) -> None:
    settings = settings_of(pytester)
    assert settings.mode is Mode.AUTO and settings.effective_mode is Mode.EMBEDDED
    assert settings.port == 0 and settings.data == "package" and settings.keep_server is False
    assert settings.experiment == "titanic-survival-prediction"
    assert settings.registered_model == "titanic_survival"
    assert settings.paths == ("benchmarks",)


def test_tracking_uri_in_the_environment_means_connect(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    settings = settings_of(pytester)
    assert settings.effective_mode is Mode.CONNECT
    assert settings.tracking_uri == "http://127.0.0.1:5999"


def test_flag_beats_environment_beats_ini(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\nbench_port = 7001\nbench_keep_server = true\n")
    assert settings_of(pytester).port == 7001
    assert settings_of(pytester).keep_server is True
    monkeypatch.setenv("TITANIC_BENCH_PORT", "7002")
    assert settings_of(pytester).port == 7002
    assert settings_of(pytester, "--bench-port", "7003").port == 7003


def test_switches_and_paths(pytester: pytest.Pytester, tmp_path: Path) -> None:
    csv = tmp_path / "mine.csv"
    csv.write_text("x\n")
    settings = settings_of(pytester, "--bench-keep-server", "--bench-no-promote", "--bench-data", str(csv))
    assert settings.keep_server is True and settings.promote is False and settings.data == str(csv)


def test_artifact_destination_from_flag_env_or_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert settings_of(pytester).artifacts is None  # the state folder's, chosen by the server
    pytester.makeini("[pytest]\nbench_artifacts = s3://from-ini/runs\n")
    assert settings_of(pytester).artifacts == "s3://from-ini/runs"
    monkeypatch.setenv("TITANIC_BENCH_ARTIFACTS", "s3://from-env")
    assert settings_of(pytester).artifacts == "s3://from-env"
    folder = settings_of(pytester, f"--bench-artifacts={tmp_path / 'x' / '..' / 'art'}").artifacts
    assert folder == str(tmp_path / "art")


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ("--bench-artifacts", "s3:///no-bucket"),
            {},
            "--bench-artifacts='s3:///no-bucket': the artifact destination 's3:///no-bucket' names no bucket",
        ),
        (
            (),
            {"TITANIC_BENCH_ARTIFACTS": "gs://elsewhere"},
            "TITANIC_BENCH_ARTIFACTS='gs://elsewhere': the artifact destination 'gs://elsewhere' is neither",
        ),
        (("--bench-connect-attempts", "0"), {}, "--bench-connect-attempts='0' must be a whole number >= 1."),
        (
            ("--bench-data", "nowhere.csv"),
            {},
            "--bench-data='nowhere.csv' is neither 'package', 'kaggle' nor",
        ),
        ((), {"TITANIC_BENCH_PORT": "-1"}, "TITANIC_BENCH_PORT='-1' must be a whole number from 0 to 65535."),
        (("--bench-port", "99999"), {}, "--bench-port='99999' must be a whole number from 0 to 65535."),
        ((), {"TITANIC_BENCH_GATE": "bogus"}, "TITANIC_BENCH_GATE='bogus' is not one of: off, baseline"),
        (
            (),
            {"TITANIC_BENCH_KEEP_SERVER": "maybe"},
            "TITANIC_BENCH_KEEP_SERVER='maybe' must be true or false",
        ),
    ],
)
def test_bad_values_name_their_source(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    env: dict[str, str],
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(OptionError) as caught:
        settings_of(pytester, *args)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_defaults_cross_validate_5x3_with_the_gate_off(pytester: pytest.Pytester) -> None:
    resolved = settings_of(pytester)
    assert (resolved.cv.folds, resolved.cv.repeats, resolved.gate) == (5, 3, GateMode.OFF)
    assert (resolved.policy.alpha, resolved.policy.min_effect) == (0.05, 0.01)
    assert resolved.policy.metrics == ("accuracy", "roc_auc")
    assert (resolved.policy.correction, resolved.policy.test) == (Correction.NONE, GateTest.REGRESSION)


def test_a_bare_gate_flag_means_the_baseline(pytester: pytest.Pytester) -> None:
    assert settings_of(pytester, "--bench-gate").gate is GateMode.BASELINE
    assert settings_of(pytester, "--bench-gate=all").gate.champion


def test_gate_mode_from_the_environment(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TITANIC_BENCH_GATE", "champion")
    assert settings_of(pytester).gate is GateMode.CHAMPION


def test_cv_plan_and_gate_numbers_are_parsed(pytester: pytest.Pytester) -> None:
    resolved = settings_of(
        pytester,
        "--bench-cv",
        "4x2",
        "--bench-gate-alpha",
        "0.01",
        "--bench-gate-min-effect",
        "0",
        "--bench-gate-metrics",
        "roc_auc,log_loss",
    )
    assert (resolved.cv.folds, resolved.cv.repeats) == (4, 2)
    assert (resolved.policy.alpha, resolved.policy.min_effect) == (0.01, 0.0)
    assert resolved.policy.metrics == ("roc_auc", "log_loss")


def test_gate_correction_and_test_are_parsed_from_flag_and_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolved = settings_of(pytester, "--bench-gate-correction", "bh", "--bench-gate-test", "noninferiority")
    assert (resolved.policy.correction, resolved.policy.test) == (Correction.BH, GateTest.NONINFERIORITY)
    monkeypatch.setenv("TITANIC_BENCH_GATE_CORRECTION", "none")
    assert settings_of(pytester).policy.correction is Correction.NONE


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--bench-cv", "1x3"), "--bench-cv='1x3' must be FOLDSxREPEATS"),
        (("--bench-gate-alpha", "1.5"), "strictly between 0 and 1"),
        (("--bench-gate-min-effect", "-0.1"), "must be a number >= 0"),
        (("--bench-gate-metrics", "brier"), "name one or more of"),
        (
            ("--bench-gate-correction", "bonferroni"),
            "--bench-gate-correction='bonferroni' is not one of: holm, bh, none",
        ),
        (("--bench-gate-test", "equivalence"), "is not one of: regression, noninferiority"),
        (("--bench-gate=sometimes",), "A bare --bench-gate takes the next word as its value"),
        (("--bench-gate", "--bench-update-baseline"), "pass one of them"),
    ],
)
def test_bad_values_name_the_flag_and_the_fix(
    pytester: pytest.Pytester, args: tuple[str, ...], message: str
) -> None:
    with pytest.raises(OptionError, match=message.replace("(", r"\(")):
        settings_of(pytester, *args)


def test_a_gate_value_from_the_environment_gets_no_hint_about_bare_flags(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TITANIC_BENCH_GATE", "sometimes")
    with pytest.raises(OptionError) as caught:
        settings_of(pytester)
    assert "bare" not in str(caught.value)


def test_bad_options_do_not_break_a_session_the_harness_does_not_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    monkeypatch.setenv("TITANIC_BENCH_GATE", "bogus")
    monkeypatch.setenv("TITANIC_BENCH_PORT", "99999")
    result = pytester.runpytest_subprocess("-p", "no:xdist")

    result.assert_outcomes(passed=1)


def test_a_bare_pytest_in_a_project_that_names_no_bench_paths_does_not_run_the_harness(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another project with a benchmarks/ folder of its own (pytest-benchmark's, say).
    pytester.makeini("[pytest]\n")
    pytester.mkdir("benchmarks")
    pytester.makepyfile(**{"benchmarks/test_speed": "def test_fast():\n    assert True\n"})
    monkeypatch.setenv("TITANIC_BENCH_PORT", "99999")
    result = pytester.runpytest_subprocess("-p", "no:xdist")

    result.assert_outcomes(passed=1)
    # Naming the folder on the command line still runs the harness (the bad port shows it).
    named = pytester.runpytest_subprocess("-p", "no:xdist", "benchmarks")
    assert named.ret == pytest.ExitCode.USAGE_ERROR
    assert "TITANIC_BENCH_PORT" in named.stderr.str()


def test_bench_dask_from_flag_environment_or_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from titanic_bench.cluster.address import ClusterAddress

    assert settings_of(pytester).dask is None
    pytester.makeini("[pytest]\nbench_dask = local:3\n")
    assert settings_of(pytester).dask == ClusterAddress(workers=3)
    monkeypatch.setenv("TITANIC_BENCH_DASK", "tcp://scheduler:8786")
    assert settings_of(pytester).dask == ClusterAddress(scheduler="tcp://scheduler:8786")
    assert settings_of(pytester, "--bench-dask", "local:1").dask == ClusterAddress(workers=1)
    monkeypatch.setenv("TITANIC_BENCH_DASK", "nowhere")
    with pytest.raises(OptionError, match=r"TITANIC_BENCH_DASK='nowhere' is not a Dask cluster"):
        settings_of(pytester)
