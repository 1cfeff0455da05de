"""The CV and gate options: values, environment variables and usage errors."""

from __future__ import annotations

import pytest

from titanic_bench.plugin import settings_key
from titanic_bench.settings import BenchSettings, GateMode


def settings(pytester: pytest.Pytester, *args: str) -> BenchSettings:
    return pytester.parseconfigure(*args).stash[settings_key]


def test_defaults_cross_validate_5x3_with_the_gate_off(pytester: pytest.Pytester) -> None:
    resolved = settings(pytester)
    assert (resolved.cv_folds, resolved.cv_repeats, resolved.gate) == (5, 3, GateMode.OFF)
    assert (resolved.gate_alpha, resolved.gate_min_effect) == (0.05, 0.01)
    assert resolved.gate_metrics == ("accuracy", "roc_auc")


def test_a_bare_gate_flag_means_the_baseline(pytester: pytest.Pytester) -> None:
    assert settings(pytester, "--bench-gate").gate is GateMode.BASELINE
    assert settings(pytester, "--bench-gate=all").gate.champion


def test_gate_mode_from_the_environment(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TITANIC_BENCH_GATE", "champion")
    assert settings(pytester).gate is GateMode.CHAMPION


def test_cv_plan_and_gate_numbers_are_parsed(pytester: pytest.Pytester) -> None:
    resolved = settings(
        pytester, "--bench-cv", "4x2", "--bench-gate-alpha", "0.01", "--bench-gate-min-effect", "0",
        "--bench-gate-metrics", "roc_auc,log_loss",
    )  # fmt: skip
    assert (resolved.cv_folds, resolved.cv_repeats) == (4, 2)
    assert (resolved.gate_alpha, resolved.gate_min_effect) == (0.01, 0.0)
    assert resolved.gate_metrics == ("roc_auc", "log_loss")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--bench-cv", "1x3"), "--bench-cv='1x3' must be FOLDSxREPEATS"),
        (("--bench-gate-alpha", "1.5"), "strictly between 0 and 1"),
        (("--bench-gate-min-effect", "-0.1"), "must be a number >= 0"),
        (("--bench-gate-metrics", "brier"), "name one or more of"),
        (("--bench-gate=sometimes",), "write --bench-gate=baseline before paths"),
        (("--bench-gate", "--bench-update-baseline"), "pass one of them"),
    ],
)
def test_bad_values_name_the_flag_and_the_fix(
    pytester: pytest.Pytester, args: tuple[str, ...], message: str
) -> None:
    with pytest.raises(pytest.UsageError, match=message.replace("(", r"\(")):
        settings(pytester, *args)
