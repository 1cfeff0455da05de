"""Option resolution: flag over environment over ini over default, validated once."""

from __future__ import annotations

from pathlib import Path

import pytest

from titanic_bench.plugin import settings_key
from titanic_bench.settings import BenchSettings, Mode, effective_mode


def settings_of(pytester: pytest.Pytester, *args: str) -> BenchSettings:
    config = pytester.parseconfigure(*args)
    return config.stash[settings_key]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLFLOW_TRACKING_URI", "TITANIC_BENCH_PORT", "TITANIC_BENCH_MODE", "TITANIC_BENCH_DATA",
                 "TITANIC_BENCH_BACKEND_URI", "TITANIC_BENCH_HOME", "TITANIC_BENCH_KEEP_SERVER"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def test_defaults_give_the_embedded_stack(pytester: pytest.Pytester) -> None:
    settings = settings_of(pytester)
    assert settings.mode is Mode.AUTO and effective_mode(settings) is Mode.EMBEDDED
    assert settings.port == 0 and settings.data == "package" and settings.keep_server is False
    assert settings.experiment == "titanic-survival-prediction"
    assert settings.registered_model == "titanic_survival"
    assert settings.paths == ("benchmarks",)


def test_tracking_uri_in_the_environment_means_connect(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    settings = settings_of(pytester)
    assert effective_mode(settings) is Mode.CONNECT
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


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("--bench-connect-attempts", "0"), {}, "--bench-connect-attempts='0' must be a whole number >= 1."),
        (
            ("--bench-data", "nowhere.csv"),
            {},
            "--bench-data='nowhere.csv' is neither 'package', 'kaggle' nor",
        ),
        ((), {"TITANIC_BENCH_PORT": "-1"}, "TITANIC_BENCH_PORT='-1' must be a whole number >= 0."),
        (
            (),
            {"TITANIC_BENCH_KEEP_SERVER": "maybe"},
            "TITANIC_BENCH_KEEP_SERVER='maybe' must be true or false",
        ),
    ],
)
def test_bad_values_name_their_source(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], env: dict[str, str],
    message: str,
) -> None:  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(pytest.UsageError) as caught:
        settings_of(pytester, *args)
    assert message in str(caught.value)
