"""pytest hooks and fixtures of titanic-bench: thin glue between pytest, xdist and the controller.

The controller process (or the only process, without xdist) resolves the options,
starts or reaches the tracking stack once, and hands the session context to the
workers through ``workerinput``. Workers train and log; their results come back
inside the test reports; the controller promotes the winner and prints the table.
Nothing here runs, and no option is read, in a session outside the ``bench_paths``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

import pytest

from titanic_bench.errors import BenchError
from titanic_bench.options import DEFAULT_PATHS, PATHS_INI, BenchSettings, Mode, add_options, resolve
from titanic_bench.session.context import SessionContext
from titanic_bench.session.results import RESULT_PROPERTY, ExperimentResult

if TYPE_CHECKING:
    from titanic_bench.data.loading import TitanicData
    from titanic_bench.session.bench import Bench
    from titanic_bench.session.controller import Controller
    from titanic_bench.tracking.client import Tracker

WORKERINPUT_KEY = "titanic_bench_context"
settings_key = pytest.StashKey[BenchSettings]()
context_key = pytest.StashKey[SessionContext]()
controller_key = pytest.StashKey["Controller"]()
finish_error_key = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "titanic_bench: a benchmark case run by titanic-bench")
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        if WORKERINPUT_KEY in workerinput:
            config.stash[context_key] = SessionContext.from_json(workerinput[WORKERINPUT_KEY])
        return
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(config), "titanic_bench_xdist")


def is_active(config: pytest.Config) -> bool:
    """Whether this session benchmarks: an argument lies in one of the bench paths, or above
    one that the project names in its ``bench_paths`` ini key.

    Only a project that names its bench paths runs the harness from a bare ``pytest`` over
    the whole project: another project installed beside it that merely has a
    ``benchmarks/`` folder (pytest-benchmark's, say) never starts a server.
    """
    if config.option.collectonly or getattr(config, "workerinput", None) is not None:
        return False
    declared = config.getini(PATHS_INI)
    candidates = (config.rootpath / path for path in declared or DEFAULT_PATHS)
    roots = [root.resolve() for root in candidates if root.exists()]
    for arg in config.args:
        target = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if any(target == root or root in target.parents for root in roots):
            return True
        if declared and any(target in root.parents for root in roots):
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Start the stack before xdist starts its workers (its hook runs last)."""
    config = session.config
    if not is_active(config):
        return
    with _as_usage_error():
        settings = resolve(config)
    if settings.mode is Mode.OFF:
        return
    if settings.dask is not None and _xdist_workers(config):
        raise pytest.UsageError(
            f"titanic-bench: --bench-dask={settings.dask.label} runs the experiments on the Dask workers; "
            "-n would start xdist workers that only wait for them: drop -n (the cluster's workers are "
            "the parallelism), or drop --bench-dask."
        )
    config.stash[settings_key] = settings
    from titanic_bench.session.controller import Controller

    controller = Controller(settings, config.rootpath, _sayer(config))
    config.stash[controller_key] = controller
    verbose = config.get_verbosity() > 0
    config.pluginmanager.register(ResultCollector(controller, verbose), "titanic_bench_results")
    _stop_on_sigterm()
    with _as_usage_error():
        config.stash[context_key] = controller.begin()


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Wait for the stack only now, so the server's start-up overlaps collection
    (and the xdist workers' start-up); no test runs before the session is open."""
    controller = session.config.stash.get(controller_key, None)
    if controller is None or controller.context is not None:
        return
    with _as_usage_error():
        session.config.stash[context_key] = controller.open()
        if controller.submissions is not None:
            controller.submit(_experiment_cases(session.items))


def _xdist_workers(config: pytest.Config) -> bool:
    """Whether xdist will start workers (``-n N`` with N > 0, or ``--tx``)."""
    if not config.pluginmanager.hasplugin("xdist"):
        return False
    return bool(config.getoption("numprocesses", None)) or bool(config.getoption("tx", None))


def _experiment_cases(items: list[pytest.Item]) -> list[tuple[str, Any]]:
    """(test id, spec) of each collected case parametrized with an ExperimentSpec, in order."""
    import cloudpickle

    from titanic_bench.ml.experiments import ExperimentSpec

    cases = []
    for item in items:
        params = getattr(item, "callspec", None)
        specs = [
            value for value in (params.params.values() if params else ()) if isinstance(value, ExperimentSpec)
        ]
        if specs:
            # A spec may use a factory defined in the benchmark file, which workers cannot import.
            module = getattr(item, "module", None)
            if module is not None:
                cloudpickle.register_pickle_by_value(module)
            cases.append((item.nodeid, specs[0]))
    return cases


@contextmanager
def _as_usage_error() -> Iterator[None]:
    """Report a session that cannot start as one usage error, without a traceback."""
    try:
        yield
    except BenchError as error:
        raise pytest.UsageError(f"titanic-bench: {error}") from None


class ResultCollector:
    """Collects results and progress from test reports; on the controller, from every worker's."""

    def __init__(self, controller: Controller, verbose: bool) -> None:
        self.controller = controller
        self.verbose = verbose

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if getattr(session.config, "workerinput", None) is None and session.items:
            self.controller.progress.select(item.nodeid for item in session.items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.controller.progress.report(report)
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == RESULT_PROPERTY:
                result = ExperimentResult.from_json(str(value))
                self.controller.record(result)
                if self.verbose:
                    from titanic_bench.session.report import finished_line

                    self.controller.say(finished_line(result, self.controller.settings.selection_metric))


class XdistHooks:
    """Registered only when xdist is present, so the plugin works without it."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_configure_node(self, node: Any) -> None:
        context = self.config.stash.get(context_key, None)
        if context is not None:
            node.workerinput[WORKERINPUT_KEY] = context.to_json()
            self.config.stash[controller_key].handed_out = True

    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        controller = self.config.stash.get(controller_key, None)
        if controller is not None:
            controller.progress.select(ids)

    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched: Any) -> None:
        controller = self.config.stash.get(controller_key, None)
        if controller is not None:
            controller.progress.crashed.append(crashitem)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The end of the session, after xdist has stopped its workers (its hook is trylast too,
    and registered later, so it runs first): no worker can still be logging a run."""
    controller = session.config.stash.get(controller_key, None)
    if controller is None:
        return
    try:
        controller.finish(session_failed=exitstatus != 0, cut_short=controller.progress.cut_short(exitstatus))
    except BenchError as error:
        session.config.stash[finish_error_key] = str(error)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if controller.gate_failures:
        # Also catches benchmark files that call assert_floors only, not assert_result.
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    controller = config.stash.get(controller_key, None)
    if controller is None:
        return
    error = config.stash.get(finish_error_key, None)
    if error:
        terminalreporter.write_sep("=", "titanic-bench: end of session failed", red=True)
        terminalreporter.write_line(error)
    if controller.leaderboard is not None:
        terminalreporter.write_sep("=", "titanic-bench leaderboard")
        wide = controller.settings.wide or config.get_verbosity() > 0
        terminalreporter.write_line(controller.leaderboard.text(wide=wide))
        terminalreporter.write_line(f"Reports and picture: {controller.paths.reports}")
        terminalreporter.write_line(f"MLflow's own output: {controller.paths.session_log}")
    for note in controller.notes:
        terminalreporter.write_line(f"titanic-bench: {note}")
    if controller.gate_failures:
        terminalreporter.write_sep("=", "titanic-bench: regression gate FAILED", red=True)
        for failure in controller.gate_failures:
            terminalreporter.write_line(failure)


def pytest_unconfigure(config: pytest.Config) -> None:
    controller = config.stash.get(controller_key, None)
    if controller is not None:
        controller.stop()


@pytest.fixture(scope="session")
def titanic_bench_context(pytestconfig: pytest.Config) -> SessionContext:
    """The session context the controller built; fails when the harness is not active."""
    context = pytestconfig.stash.get(context_key, None)
    if context is None:
        pytest.fail(
            "titanic-bench is not active in this session: put the test under one of the "
            "bench_paths (default: benchmarks/) and do not pass --bench-mode off.",
            pytrace=False,
        )
    return context


@pytest.fixture(scope="session")
def titanic_bench_tracker(titanic_bench_context: SessionContext) -> Tracker:
    """A client of the session's tracking server."""
    from titanic_bench.tracking.client import Tracker

    return Tracker.connect(titanic_bench_context.tracking_uri)


@pytest.fixture(scope="session")
def titanic_bench_session(
    pytestconfig: pytest.Config, titanic_bench_context: SessionContext, titanic_bench_tracker: Tracker
) -> SessionContext:
    """The opened session: in a worker, the experiment and session run the controller created."""
    from dataclasses import replace

    from titanic_bench.tracking.runs import find_session_run

    context = titanic_bench_context
    if not context.is_open:
        with _as_test_error():
            found = find_session_run(titanic_bench_tracker, context.experiment_name, context.session_id)
        context = replace(context, experiment_id=found.experiment_id, parent_run_id=found.run_id)
    return context


@pytest.fixture(scope="session")
def titanic_bench_data(titanic_bench_context: SessionContext) -> TitanicData:
    """The data the controller validated, read again in this process."""
    from titanic_bench.session.bench import load_session_data

    with _as_test_error():
        return load_session_data(titanic_bench_context)


@pytest.fixture
def titanic_bench(
    request: pytest.FixtureRequest,
    titanic_bench_session: SessionContext,
    titanic_bench_tracker: Tracker,
    titanic_bench_data: TitanicData,
) -> Bench:
    """Train, log and record experiments: ``titanic_bench.run(spec)``."""
    from titanic_bench.session.bench import Bench

    # An xdist worker shares the cores with the other workers: its folds run in-process.
    distributed = getattr(request.config, "workerinput", None) is not None
    n_jobs = 1 if distributed else min(2, os.cpu_count() or 1)
    controller = request.config.stash.get(controller_key, None)
    submissions = controller.submissions if controller is not None else None
    runner = submissions.result if submissions is not None else None
    return Bench(
        titanic_bench_session, titanic_bench_tracker, titanic_bench_data, request.node, n_jobs, runner
    )


@contextmanager
def _as_test_error() -> Iterator[None]:
    """A fixture that cannot work fails its tests with the message, not a traceback."""
    try:
        yield
    except BenchError as error:
        pytest.fail(f"titanic-bench: {error}", pytrace=False)


def _sayer(config: pytest.Config) -> Any:
    def say(message: str) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(message)

    return say


def _stop_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt so pytest unwinds and the server is stopped."""
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
