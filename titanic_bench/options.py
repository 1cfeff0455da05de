"""The harness's pytest options: declared once in :data:`OPTIONS`, resolved once into frozen settings.

Every option has a command-line flag, an ini key of the same name and, where users
expect one, an environment variable. Precedence: flag, then environment, then ini,
then the default. Options are resolved only in a session the harness runs in (see
``plugin.is_active``), so a bad value never breaks an unrelated pytest run; there it
stops pytest with one line naming the flag (or variable, or ini key) and the value.
Defaults come from the objects they configure (:class:`CVPlan`, :class:`GatePolicy`),
so none is written twice.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest

from titanic_bench.cluster.address import ClusterAddress, parse_cluster_address
from titanic_bench.data.loading import KAGGLE_SOURCE, PACKAGE_SOURCE
from titanic_bench.errors import ArtifactStoreError, OptionError
from titanic_bench.gates.checks import Correction, GatePolicy, GateTest
from titanic_bench.ml.crossval import CVPlan
from titanic_bench.ml.metrics import DEFAULT_SELECTION_METRIC, METRIC_NAMES
from titanic_bench.paths import HOME_ENV
from titanic_bench.stack.artifacts import ARTIFACTS_ENV, check_destination
from titanic_bench.stack.backend import BACKEND_ENV
from titanic_bench.stack.server import Retry
from titanic_bench.tracking.client import TRACKING_URI_ENV

DEFAULT_EXPERIMENT = "titanic-survival-prediction"
DEFAULT_REGISTERED_MODEL = "titanic_survival"
CHAMPION_ALIAS = "champion"
DEFAULT_BASELINE = "benchmarks/baseline.json"
#: ini-only: the harness runs when the session's arguments lie under these paths.
PATHS_INI = "bench_paths"
DEFAULT_PATHS = ("benchmarks",)


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
    """Everything the options decide, resolved once when the harness starts."""

    mode: Mode = Mode.AUTO
    tracking_uri: str | None = None
    home: str | None = None
    backend_uri: str | None = None
    artifacts: str | None = None
    port: int = 0
    keep_server: bool = False
    wide: bool = False
    summary: str | None = None
    data: str = PACKAGE_SOURCE
    allow_other_data: bool = False
    experiment: str = DEFAULT_EXPERIMENT
    registered_model: str = DEFAULT_REGISTERED_MODEL
    selection_metric: str = DEFAULT_SELECTION_METRIC
    connect_attempts: int = Retry.attempts
    #: Where the experiments run: None in this process (or xdist's), else a Dask cluster.
    dask: ClusterAddress | None = None
    promote: bool = True
    paths: tuple[str, ...] = DEFAULT_PATHS
    cv: CVPlan = field(default_factory=CVPlan)
    gate: GateMode = GateMode.OFF
    baseline: str = DEFAULT_BASELINE
    update_baseline: bool = False
    policy: GatePolicy = field(default_factory=GatePolicy)

    @property
    def effective_mode(self) -> Mode:
        """AUTO becomes CONNECT when a tracking URI is known, else EMBEDDED."""
        if self.mode is not Mode.AUTO:
            return self.mode
        return Mode.CONNECT if self.tracking_uri else Mode.EMBEDDED


class FlagKind(StrEnum):
    VALUE = "value"
    #: A boolean flag without a value.
    SWITCH = "switch"
    #: A flag whose value may be omitted (it then takes ``const``).
    OPTIONAL = "optional"


Convert = Callable[[str, str], Any]


@dataclass(frozen=True)
class Option:
    """One option: its ini key (and flag ``--bench-...``), help, default and how to read it."""

    name: str
    help: str
    default: str | None
    env: str | None = None
    convert: Convert = lambda source, value: value
    kind: FlagKind = FlagKind.VALUE
    const: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _choice(choices: tuple[str, ...]) -> Convert:
    def convert(source: str, value: str) -> str:
        if value not in choices:
            raise OptionError(f"{source}={value!r} is not one of: {', '.join(choices)}.")
        return value

    return convert


def _whole(minimum: int, maximum: int | None = None) -> Convert:
    expectation = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"

    def convert(source: str, value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = minimum - 1  # accepted by no range
        if number < minimum or (maximum is not None and number > maximum):
            raise OptionError(f"{source}={value!r} must be a whole number {expectation}.")
        return number

    return convert


def _boolean(source: str, value: str) -> bool:
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise OptionError(f"{source}={value!r} must be true or false (1/0, yes/no).")


def _gate_mode(source: str, value: str) -> str:
    modes = tuple(mode.value for mode in GateMode)
    if value in modes:
        return value
    # nargs="?" lets a bare --bench-gate swallow the next word, often the test path.
    hint = (
        f" A bare {source} takes the next word as its value: write {source}=baseline."
        if source.startswith("--")
        else ""
    )
    raise OptionError(f"{source}={value!r} is not one of: {', '.join(modes)}.{hint}")


def _number(accept: Callable[[float], bool], expectation: str) -> Convert:
    def convert(source: str, value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            number = float("nan")  # accepted by no range
        if not accept(number):
            raise OptionError(f"{source}={value!r} must be {expectation}.")
        return number

    return convert


def _cv_plan(source: str, value: str) -> CVPlan:
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
    if not match or int(match[1]) < 2 or int(match[2]) < 1:
        raise OptionError(
            f"{source}={value!r} must be FOLDSxREPEATS with FOLDS >= 2 and REPEATS >= 1, e.g. 5x3."
        )
    return CVPlan(int(match[1]), int(match[2]))


def _metric_list(source: str, value: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    if not names or any(name not in METRIC_NAMES for name in names):
        raise OptionError(
            f"{source}={value!r}: name one or more of {', '.join(METRIC_NAMES)}, comma-separated."
        )
    return names


def _artifact_destination(source: str, value: str) -> str:
    try:
        return check_destination(value)
    except ArtifactStoreError as error:
        raise OptionError(f"{source}={value!r}: {error}") from None


def _data_source(source: str, value: str) -> str:
    if value in (PACKAGE_SOURCE, KAGGLE_SOURCE) or Path(value).expanduser().is_file():
        return value
    raise OptionError(
        f"{source}={value!r} is neither '{PACKAGE_SOURCE}', '{KAGGLE_SOURCE}' nor an existing CSV file."
    )


_DEFAULTS = BenchSettings()
_fraction = _number(lambda number: 0.0 < number < 1.0, "a number strictly between 0 and 1")
_non_negative = _number(lambda number: number >= 0.0, "a number >= 0")

OPTIONS: tuple[Option, ...] = (
    Option(
        "bench_mode",
        "tracking stack: auto (connect if a tracking URI is set, else embedded), embedded, connect, "
        "compose, or off",
        _DEFAULTS.mode.value,
        "TITANIC_BENCH_MODE",
        _choice(tuple(Mode)),
    ),
    Option("bench_tracking_uri", "tracking server to connect to", None, TRACKING_URI_ENV),
    Option("bench_home", "state folder (default ./.titanic-bench)", None, HOME_ENV),
    Option(
        "bench_backend_uri",
        "backend store of the embedded server (default SQLite in the state folder), e.g. postgresql://user@host/db",
        None,
        BACKEND_ENV,
    ),
    Option(
        "bench_artifacts",
        "artifact destination of the embedded server (default the state folder's artifacts/), "
        "e.g. s3://bucket/prefix with the endpoint and keys in the standard AWS variables",
        None,
        ARTIFACTS_ENV,
        _artifact_destination,
    ),
    Option(
        "bench_port",
        "port of the embedded server (0: a free one)",
        str(_DEFAULTS.port),
        "TITANIC_BENCH_PORT",
        _whole(0, 65535),
    ),
    Option(
        "bench_keep_server",
        "leave the embedded server running after the session and print its URL",
        None,
        "TITANIC_BENCH_KEEP_SERVER",
        _boolean,
        FlagKind.SWITCH,
    ),
    Option(
        "bench_wide",
        "print the whole leaderboard in the terminal, every column (-v does too)",
        None,
        "TITANIC_BENCH_WIDE",
        _boolean,
        FlagKind.SWITCH,
    ),
    Option(
        "bench_summary",
        "append the Markdown leaderboard to this file (GitHub Actions' job summary by default)",
        None,
        "GITHUB_STEP_SUMMARY",
    ),
    Option(
        "bench_data",
        "data source: package (shipped copy), kaggle, or a CSV path",
        _DEFAULTS.data,
        "TITANIC_BENCH_DATA",
        _data_source,
    ),
    Option(
        "bench_allow_other_data",
        "accept data whose digest differs from the pinned Kaggle file",
        None,
        "TITANIC_BENCH_ALLOW_OTHER_DATA",
        _boolean,
        FlagKind.SWITCH,
    ),
    Option("bench_experiment", "MLflow experiment name", _DEFAULTS.experiment),
    Option(
        "bench_registered_model", "registered model that gets the champion alias", _DEFAULTS.registered_model
    ),
    Option(
        "bench_selection_metric",
        "metric that picks the winner",
        _DEFAULTS.selection_metric,
        None,
        _choice(METRIC_NAMES),
    ),
    Option(
        "bench_connect_attempts",
        "attempts to reach a tracking server or Dask scheduler before failing",
        str(_DEFAULTS.connect_attempts),
        None,
        _whole(1),
    ),
    Option(
        "bench_dask",
        "run every experiment as a task on a Dask cluster: local (one worker per core), local:N "
        "(N workers), or a scheduler address such as tcp://scheduler:8786",
        None,
        "TITANIC_BENCH_DASK",
        parse_cluster_address,
    ),
    Option("bench_no_promote", "do not register a winner", None, None, _boolean, FlagKind.SWITCH),
    Option(
        "bench_cv",
        "cross-validation of every experiment: FOLDSxREPEATS (repeated stratified k-fold)",
        f"{_DEFAULTS.cv.folds}x{_DEFAULTS.cv.repeats}",
        "TITANIC_BENCH_CV",
        _cv_plan,
    ),
    Option(
        "bench_gate",
        "regression gate: baseline (the default when the flag has no value), champion, all, or off",
        _DEFAULTS.gate.value,
        "TITANIC_BENCH_GATE",
        _gate_mode,
        FlagKind.OPTIONAL,
        GateMode.BASELINE.value,
    ),
    Option(
        "bench_baseline",
        "baseline file, relative to the rootdir",
        _DEFAULTS.baseline,
        "TITANIC_BENCH_BASELINE",
    ),
    Option(
        "bench_update_baseline",
        "write this session's results into the baseline file",
        None,
        None,
        _boolean,
        FlagKind.SWITCH,
    ),
    Option(
        "bench_gate_alpha",
        "significance level of the gate's paired test",
        str(_DEFAULTS.policy.alpha),
        "TITANIC_BENCH_GATE_ALPHA",
        _fraction,
    ),
    Option(
        "bench_gate_min_effect",
        "smallest drop (absolute, in metric units) the gate fails on",
        str(_DEFAULTS.policy.min_effect),
        "TITANIC_BENCH_GATE_MIN_EFFECT",
        _non_negative,
    ),
    Option(
        "bench_gate_metrics",
        "comma-separated metrics the gate compares",
        ",".join(_DEFAULTS.policy.metrics),
        "TITANIC_BENCH_GATE_METRICS",
        _metric_list,
    ),
    Option(
        "bench_gate_correction",
        "correction of the p-values over the session's gated tests (experiments x metrics): "
        "holm (family-wise error), bh (Benjamini-Hochberg, false discovery rate) or none",
        _DEFAULTS.policy.correction.value,
        "TITANIC_BENCH_GATE_CORRECTION",
        _choice(tuple(Correction)),
    ),
    Option(
        "bench_gate_test",
        "what a gated metric must show: regression (fails on a significant drop larger than the "
        "min effect) or noninferiority (passes only when the drop's upper confidence bound is below it)",
        _DEFAULTS.policy.test.value,
        "TITANIC_BENCH_GATE_TEST",
        _choice(tuple(GateTest)),
    ),
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("titanic-bench", "titanic-bench benchmark harness")
    for option in OPTIONS:
        where = f"ini {option.name}" + (f", env {option.env}" if option.env else "")
        help_text = f"{option.help} (default {option.default or 'unset'}; {where})"
        if option.kind is FlagKind.SWITCH:
            group.addoption(option.flag, action="store_true", default=None, dest=option.name, help=help_text)
        elif option.kind is FlagKind.OPTIONAL:
            group.addoption(
                option.flag, nargs="?", const=option.const, default=None, dest=option.name, help=help_text
            )
        else:
            group.addoption(option.flag, default=None, dest=option.name, help=help_text)
        parser.addini(option.name, option.help, default="")
    # No default here: whether a project names its bench paths decides whether a bare
    # `pytest` over the whole project starts the harness (see plugin.is_active).
    parser.addini(
        PATHS_INI,
        f"paths whose tests start the harness (default: {' '.join(DEFAULT_PATHS)})",
        type="args",
        default=[],
    )


def _raw_value(config: pytest.Config, option: Option) -> tuple[str, Any]:
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


def _values(config: pytest.Config) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for option in OPTIONS:
        source, raw = _raw_value(config, option)
        if raw is None or isinstance(raw, bool):
            values[option.name] = bool(raw) if option.kind is FlagKind.SWITCH else raw
        else:
            values[option.name] = option.convert(source, str(raw))
    return values


def resolve(config: pytest.Config) -> BenchSettings:
    """Read and validate every option; raise :class:`OptionError` on a bad value or combination."""
    values = _values(config)
    mode, gate = Mode(values["bench_mode"]), GateMode(values["bench_gate"])
    if mode is Mode.CONNECT and not values["bench_tracking_uri"]:
        raise OptionError(
            f"--bench-mode=connect needs a server: pass --bench-tracking-uri or set {TRACKING_URI_ENV}."
        )
    if gate.baseline and values["bench_update_baseline"]:
        raise OptionError(
            "--bench-gate compares with the baseline and --bench-update-baseline rewrites it: "
            "pass one of them (update first, gate in later sessions)."
        )
    policy = GatePolicy(
        values["bench_gate_metrics"],
        values["bench_gate_alpha"],
        values["bench_gate_min_effect"],
        Correction(values["bench_gate_correction"]),
        GateTest(values["bench_gate_test"]),
    )
    return BenchSettings(
        mode=mode,
        tracking_uri=values["bench_tracking_uri"],
        home=values["bench_home"],
        backend_uri=values["bench_backend_uri"],
        artifacts=values["bench_artifacts"],
        port=values["bench_port"],
        keep_server=values["bench_keep_server"],
        wide=values["bench_wide"],
        summary=values["bench_summary"],
        data=values["bench_data"],
        allow_other_data=values["bench_allow_other_data"],
        experiment=values["bench_experiment"],
        registered_model=values["bench_registered_model"],
        selection_metric=values["bench_selection_metric"],
        connect_attempts=values["bench_connect_attempts"],
        dask=values["bench_dask"],
        promote=not values["bench_no_promote"],
        paths=tuple(config.getini(PATHS_INI) or DEFAULT_PATHS),
        cv=values["bench_cv"],
        gate=gate,
        baseline=values["bench_baseline"],
        update_baseline=values["bench_update_baseline"],
        policy=policy,
    )
