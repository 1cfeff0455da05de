"""The harness's pytest options: declared once, resolved once into frozen settings.

Every option has a command-line flag, an ini key of the same name and, where users
expect one, an environment variable. Precedence: flag, then environment, then ini,
then the default. Bad values stop pytest with a message naming the flag and value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest

from titanic_bench.backend import BACKEND_ENV
from titanic_bench.data import KAGGLE_SOURCE, PACKAGE_SOURCE
from titanic_bench.gates import DEFAULT_GATE_METRICS, GATEABLE_METRICS, QUALITY_METRICS
from titanic_bench.paths import HOME_ENV

DEFAULT_EXPERIMENT = "titanic-survival-prediction"
DEFAULT_REGISTERED_MODEL = "titanic_survival"
CHAMPION_ALIAS = "champion"
DEFAULT_BASELINE = "benchmarks/baseline.json"


class GateMode(StrEnum):
    """What the regression gate compares with: nothing, the baseline file, the champion, both."""

    OFF = "off"
    BASELINE = "baseline"
    CHAMPION = "champion"
    ALL = "all"

    @property
    def baseline(self) -> bool:
        return self in (GateMode.BASELINE, GateMode.ALL)

    @property
    def champion(self) -> bool:
        return self in (GateMode.CHAMPION, GateMode.ALL)


class Mode(StrEnum):
    """How the session gets its tracking server."""

    AUTO = "auto"
    EMBEDDED = "embedded"
    CONNECT = "connect"
    COMPOSE = "compose"
    OFF = "off"


@dataclass(frozen=True)
class BenchSettings:
    """Everything the options decide, resolved once in ``pytest_configure``."""

    mode: Mode
    tracking_uri: str | None
    home: str | None
    backend_uri: str | None
    port: int
    keep_server: bool
    data: str
    allow_other_data: bool
    experiment: str
    registered_model: str
    selection_metric: str
    connect_attempts: int
    promote: bool
    paths: tuple[str, ...]
    cv_folds: int = 5
    cv_repeats: int = 3
    gate: GateMode = GateMode.OFF
    baseline: str = DEFAULT_BASELINE
    update_baseline: bool = False
    gate_alpha: float = 0.05
    gate_min_effect: float = 0.01
    gate_metrics: tuple[str, ...] = DEFAULT_GATE_METRICS


@dataclass(frozen=True)
class _Option:
    name: str  # dest and ini key; the flag is --bench-<name with dashes>
    help: str
    default: Any
    env: str | None = None
    convert: Callable[[str, str], Any] = lambda flag, value: value
    flag_kind: str = "value"  # "value", "switch" (a boolean flag) or "optional" (value may be omitted)
    const: str | None = None  # the value of an "optional" flag given without one

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _choice(choices: tuple[str, ...]) -> Callable[[str, str], str]:
    def convert(flag: str, value: str) -> str:
        if value not in choices:
            raise pytest.UsageError(f"{flag}={value!r} is not one of: {', '.join(choices)}.")
        return value

    return convert


def _count(minimum: int) -> Callable[[str, str], int]:
    def convert(flag: str, value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = minimum - 1
        if number < minimum:
            raise pytest.UsageError(f"{flag}={value!r} must be a whole number >= {minimum}.")
        return number

    return convert


def _boolean(flag: str, value: str) -> bool:
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise pytest.UsageError(f"{flag}={value!r} must be true or false (1/0, yes/no).")


def _gate_mode(flag: str, value: str) -> str:
    modes = tuple(mode.value for mode in GateMode)
    if value not in modes:
        # nargs="?" lets a bare --bench-gate swallow the next word, often the test path.
        raise pytest.UsageError(
            f"{flag}={value!r} is not one of: {', '.join(modes)}. A bare {flag} takes the next "
            f"word as its value: write {flag}=baseline before paths."
        )
    return value


def _number(accept: Callable[[float], bool], expectation: str) -> Callable[[str, str], float]:
    def convert(flag: str, value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            number = float("nan")  # accepted by no range
        if not accept(number):
            raise pytest.UsageError(f"{flag}={value!r} must be {expectation}.")
        return number

    return convert


_fraction = _number(lambda number: 0.0 < number < 1.0, "a number strictly between 0 and 1")
_non_negative = _number(lambda number: number >= 0.0, "a number >= 0")


def _cv_plan(flag: str, value: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
    if not match or int(match[1]) < 2 or int(match[2]) < 1:
        raise pytest.UsageError(f"{flag}={value!r} must be FOLDSxREPEATS with FOLDS >= 2 and "
                                "REPEATS >= 1, e.g. 5x3.")  # fmt: skip
    return int(match[1]), int(match[2])


def _metric_list(flag: str, value: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = [name for name in names if name not in GATEABLE_METRICS]
    if not names or unknown:
        raise pytest.UsageError(f"{flag}={value!r}: name one or more of {', '.join(GATEABLE_METRICS)}, "
                                "comma-separated.")  # fmt: skip
    return names


def _data_source(flag: str, value: str) -> str:
    if value in (PACKAGE_SOURCE, KAGGLE_SOURCE) or Path(value).expanduser().is_file():
        return value
    raise pytest.UsageError(
        f"{flag}={value!r} is neither '{PACKAGE_SOURCE}', '{KAGGLE_SOURCE}' nor an existing CSV file."
    )


OPTIONS: tuple[_Option, ...] = (
    _Option("bench_mode", "tracking stack: auto (connect if a tracking URI is set, else "
            "embedded), embedded, connect, compose, or off", "auto", "TITANIC_BENCH_MODE",
            _choice(tuple(mode.value for mode in Mode))),
    _Option("bench_tracking_uri", "tracking server to connect to", None, "MLFLOW_TRACKING_URI"),
    _Option("bench_home", "state folder (default ./.titanic-bench)", None, HOME_ENV),
    _Option("bench_backend_uri", "backend store of the embedded server (default SQLite in the "
            "state folder), e.g. postgresql://user@host/db", None, BACKEND_ENV),
    _Option("bench_port", "port of the embedded server (0: a free one)", "0",
            "TITANIC_BENCH_PORT", _count(0)),
    _Option("bench_keep_server", "leave the embedded server running after the session and "
            "print its URL", "false", "TITANIC_BENCH_KEEP_SERVER", _boolean, "switch"),
    _Option("bench_data", "data source: package (shipped copy), kaggle, or a CSV path",
            PACKAGE_SOURCE, "TITANIC_BENCH_DATA", _data_source),
    _Option("bench_allow_other_data", "accept data whose digest differs from the pinned "
            "Kaggle file", "false", "TITANIC_BENCH_ALLOW_OTHER_DATA", _boolean, "switch"),
    _Option("bench_experiment", "MLflow experiment name", DEFAULT_EXPERIMENT),
    _Option("bench_registered_model", "registered model that gets the champion alias",
            DEFAULT_REGISTERED_MODEL),
    _Option("bench_selection_metric", "metric that picks the winner",
            "roc_auc", None, _choice(QUALITY_METRICS)),
    _Option("bench_connect_attempts", "attempts to reach a tracking server before failing",
            "12", None, _count(1)),
    _Option("bench_no_promote", "do not register a winner", "false", None, _boolean, "switch"),
    _Option("bench_cv", "cross-validation of every experiment: FOLDSxREPEATS (repeated "
            "stratified k-fold)", "5x3", "TITANIC_BENCH_CV", _cv_plan),
    _Option("bench_gate", "regression gate: baseline (the default when the flag has no value), "
            "champion, all, or off", "off", "TITANIC_BENCH_GATE",
            _gate_mode, "optional", GateMode.BASELINE.value),
    _Option("bench_baseline", "baseline file, relative to the rootdir", DEFAULT_BASELINE,
            "TITANIC_BENCH_BASELINE"),
    _Option("bench_update_baseline", "write this session's results into the baseline file",
            "false", None, _boolean, "switch"),
    _Option("bench_gate_alpha", "significance level of the gate's paired test", "0.05",
            "TITANIC_BENCH_GATE_ALPHA", _fraction),
    _Option("bench_gate_min_effect", "smallest drop (absolute, in metric units) the gate "
            "fails on", "0.01", "TITANIC_BENCH_GATE_MIN_EFFECT", _non_negative),
    _Option("bench_gate_metrics", "comma-separated metrics the gate compares",
            ",".join(DEFAULT_GATE_METRICS), "TITANIC_BENCH_GATE_METRICS", _metric_list),
)  # fmt: skip

#: ini-only: the harness runs when the session's arguments lie under these paths.
PATHS_INI = "bench_paths"


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("titanic-bench", "titanic-bench benchmark harness")
    for option in OPTIONS:
        if option.flag_kind == "switch":
            group.addoption(option.flag, action="store_true", default=None, dest=option.name,
                            help=f"{option.help} (ini {option.name}"
                            + (f", env {option.env})" if option.env else ")"))  # fmt: skip
        elif option.flag_kind == "optional":
            group.addoption(option.flag, nargs="?", const=option.const, default=None, dest=option.name,
                            help=f"{option.help} (ini {option.name}"
                            + (f", env {option.env})" if option.env else ")"))  # fmt: skip
        else:
            group.addoption(option.flag, default=None, dest=option.name,
                            help=f"{option.help} (ini {option.name}"
                            + (f", env {option.env})" if option.env else ")"))  # fmt: skip
        parser.addini(option.name, option.help, default="")
    parser.addini(PATHS_INI, "paths whose tests start the harness", type="args",
                  default=["benchmarks"])  # fmt: skip


def _raw_value(config: pytest.Config, option: _Option) -> tuple[str, Any]:
    """(where it came from, the raw value) by precedence flag, env, ini, default."""
    value = config.getoption(option.name)
    if value is not None:
        return option.flag, value
    if option.env and os.environ.get(option.env):
        return option.env, os.environ[option.env]
    ini = config.getini(option.name)
    if ini:
        return f"ini {option.name}", ini
    return option.flag, option.default


def resolve(config: pytest.Config) -> BenchSettings:
    """Read and validate every option; raise pytest.UsageError on a bad value."""
    values: dict[str, Any] = {}
    for option in OPTIONS:
        source, raw = _raw_value(config, option)
        keep = raw is None or isinstance(raw, bool)
        values[option.name] = raw if keep else option.convert(source, str(raw))
    mode = Mode(values["bench_mode"])
    if mode is Mode.CONNECT and not values["bench_tracking_uri"]:
        raise pytest.UsageError(
            "--bench-mode=connect needs a server: pass --bench-tracking-uri or set MLFLOW_TRACKING_URI."
        )
    gate = GateMode(values["bench_gate"])
    if gate.baseline and values["bench_update_baseline"]:
        raise pytest.UsageError(
            "--bench-gate compares with the baseline and --bench-update-baseline rewrites it: "
            "pass one of them (update first, gate in later sessions)."
        )
    return BenchSettings(
        mode=mode,
        tracking_uri=values["bench_tracking_uri"],
        home=values["bench_home"],
        backend_uri=values["bench_backend_uri"],
        port=values["bench_port"],
        keep_server=values["bench_keep_server"],
        data=values["bench_data"],
        allow_other_data=values["bench_allow_other_data"],
        experiment=values["bench_experiment"],
        registered_model=values["bench_registered_model"],
        selection_metric=values["bench_selection_metric"],
        connect_attempts=values["bench_connect_attempts"],
        promote=not values["bench_no_promote"],
        paths=tuple(config.getini(PATHS_INI)),
        cv_folds=values["bench_cv"][0],
        cv_repeats=values["bench_cv"][1],
        gate=gate,
        baseline=values["bench_baseline"],
        update_baseline=bool(values["bench_update_baseline"]),
        gate_alpha=values["bench_gate_alpha"],
        gate_min_effect=values["bench_gate_min_effect"],
        gate_metrics=values["bench_gate_metrics"],
    )


def effective_mode(settings: BenchSettings) -> Mode:
    """AUTO becomes CONNECT when a tracking URI is known, else EMBEDDED."""
    if settings.mode is not Mode.AUTO:
        return settings.mode
    return Mode.CONNECT if settings.tracking_uri else Mode.EMBEDDED
