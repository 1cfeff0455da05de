"""pytest hooks of titanic-bench: thin glue between pytest, xdist and the controller.

The controller process (or the only process, without xdist) resolves the options,
starts or reaches the tracking stack once, and hands the session context to the
workers through ``workerinput``. Workers train and log; their results come back
inside the test reports; the controller promotes the winner and prints the table.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

import pytest

from titanic_bench.backend import BackendError
from titanic_bench.baseline import BaselineError
from titanic_bench.context import SessionContext
from titanic_bench.data import DataError
from titanic_bench.results import RESULT_PROPERTY, ExperimentResult
from titanic_bench.settings import BenchSettings, Mode, add_options, resolve

if TYPE_CHECKING:
    from titanic_bench.controller import Controller
    from titanic_bench.runner import Bench

WORKERINPUT_KEY = "titanic_bench_context"
settings_key = pytest.StashKey[BenchSettings]()
context_key = pytest.StashKey[SessionContext]()
controller_key = pytest.StashKey["Controller"]()
finish_error_key = pytest.StashKey[str]()

#: Failures that mean the session cannot run; shown as one usage error, no traceback.
SETUP_ERRORS: tuple[type[Exception], ...] = (DataError, BackendError, BaselineError)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "titanic_bench: a benchmark case run by titanic-bench")
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        if WORKERINPUT_KEY in workerinput:
            config.stash[context_key] = SessionContext.from_json(workerinput[WORKERINPUT_KEY])
        return
    settings = resolve(config)
    config.stash[settings_key] = settings
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(config), "titanic_bench_xdist")


def is_active(config: pytest.Config, settings: BenchSettings) -> bool:
    """Whether this session benchmarks: mode not off and an argument lies in bench_paths."""
    if settings.mode is Mode.OFF or config.option.collectonly:
        return False
    roots = [root for path in settings.paths if (root := (config.rootpath / path).resolve()).exists()]
    for arg in config.args:
        target = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if any(target == root or root in target.parents or target in root.parents for root in roots):
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Start the stack before xdist starts its workers (its hook runs last)."""
    config = session.config
    settings = config.stash.get(settings_key, None)
    if settings is None or not is_active(config, settings):
        return
    from titanic_bench.controller import Controller

    controller = Controller(settings, config.rootpath, _sayer(config))
    config.stash[controller_key] = controller
    config.pluginmanager.register(ResultCollector(controller), "titanic_bench_results")
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


@contextmanager
def _as_usage_error() -> Iterator[None]:
    """Report a session that cannot start as one usage error, without a traceback."""
    from titanic_bench.stack import StackError
    from titanic_bench.trusted_types import UntrustedModelError

    stopping: tuple[type[Exception], ...] = (*SETUP_ERRORS, StackError, UntrustedModelError)
    try:
        yield
    except stopping as error:
        raise pytest.UsageError(f"titanic-bench: {error}") from None


class ResultCollector:
    """Collects results from test reports; on the controller, from every worker's."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == RESULT_PROPERTY:
                self.controller.record(ExperimentResult.from_json(str(value)))


class XdistHooks:
    """Registered only when xdist is present, so the plugin works without it."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_configure_node(self, node: Any) -> None:
        context = self.config.stash.get(context_key, None)
        if context is not None:
            node.workerinput[WORKERINPUT_KEY] = context.to_json()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    controller = session.config.stash.get(controller_key, None)
    if controller is None or getattr(session.config, "workerinput", None) is not None:
        return
    from titanic_bench.stack import StackError

    try:
        controller.finish(session_failed=exitstatus != 0)
    except StackError as error:
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
        terminalreporter.write_line(controller.leaderboard.text())
        terminalreporter.write_line(f"Reports: {controller.paths.reports}")
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
    if not context.is_open:
        from titanic_bench.tracking import find_session_run

        context = find_session_run(context)
        pytestconfig.stash[context_key] = context
    return context


@pytest.fixture(scope="session")
def _titanic_bench_data(titanic_bench_context: SessionContext) -> Any:
    import mlflow

    from titanic_bench.runner import load_session_data

    mlflow.set_tracking_uri(titanic_bench_context.tracking_uri)
    return load_session_data(titanic_bench_context)


@pytest.fixture
def titanic_bench(
    request: pytest.FixtureRequest, titanic_bench_context: SessionContext, _titanic_bench_data: Any
) -> Iterator[Bench]:
    """Train, log and record experiments: ``titanic_bench.run(spec)``."""
    from titanic_bench.runner import Bench

    # An xdist worker shares the cores with the other workers: its folds run in-process.
    distributed = getattr(request.config, "workerinput", None) is not None
    n_jobs = 1 if distributed else min(2, os.cpu_count() or 1)
    yield Bench(titanic_bench_context, _titanic_bench_data, request.node, n_jobs)


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
