"""The session's controller side: stack up, experiment and session run, winner, report.

Exactly one Controller exists per pytest session, in the xdist controller or in
the single process of a run without xdist. Workers never build one.
"""

from __future__ import annotations

import atexit
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from titanic_bench.backend import default_backend_uri, ensure_database, mask_uri
from titanic_bench.baseline import read_baseline, resolve_path, write_baseline
from titanic_bench.context import SessionContext
from titanic_bench.data import TitanicData, load_titanic
from titanic_bench.environment import describe, model_requirements
from titanic_bench.gates import GatePolicy
from titanic_bench.paths import StatePaths, state_paths
from titanic_bench.registry import Promotion, compare_with_champion, promote, select_winner
from titanic_bench.report import Leaderboard
from titanic_bench.results import ExperimentResult
from titanic_bench.settings import CHAMPION_ALIAS, BenchSettings, Mode, effective_mode
from titanic_bench.stack import EmbeddedServer, Retry, StackError, compose_up, wait_for_server

Say = Callable[[str], None]


def new_session_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


class Controller:
    """Owns the tracking stack and the session's results from start to finish."""

    def __init__(self, settings: BenchSettings, rootpath: Path, say: Say) -> None:
        self.settings = settings
        self.rootpath = rootpath
        self.say = say
        self.paths: StatePaths = state_paths(settings.home)
        self.server: EmbeddedServer | None = None
        #: What workers get before the stack is up, then the opened session.
        self.pending: SessionContext | None = None
        self.context: SessionContext | None = None
        self.results: dict[str, ExperimentResult] = {}
        self.leaderboard: Leaderboard | None = None
        self.data: TitanicData | None = None
        #: Gate failures that fail the session, one message each, for the terminal summary.
        self.gate_failures: list[str] = []
        self.notes: list[str] = []
        self.baseline_path = resolve_path(settings.baseline, rootpath)

    def begin(self) -> SessionContext:
        """Start or locate the stack without waiting for it; prepare what needs no server.

        Returns the context the workers get. Its experiment and session-run ids are
        empty: :meth:`open` creates them while workers start and collect, and workers
        look them up by session id (see ``tracking.find_session_run``).
        """
        self.paths.create()
        mode = effective_mode(self.settings)
        if mode is Mode.EMBEDDED:
            self._spawn_embedded()
        try:
            # Loading data and describing the environment overlap the server's start-up.
            data = self.data = load_titanic(self.settings.data, allow_other=self.settings.allow_other_data)
            if self.settings.gate.baseline:
                read_baseline(self.baseline_path)  # fail before any training when it is unusable
            self.pending = self._context(self._stack_uri(mode), data, describe(self.rootpath))
        except BaseException:
            self.stop()
            raise
        return self.pending

    def open(self) -> SessionContext:
        """Wait for the stack, then create the experiment and the session run."""
        assert self.pending is not None and self.data is not None
        try:
            uri = self.pending.tracking_uri
            if self.server is not None:
                self.server.wait_ready()
            elif uri.startswith(("http://", "https://")):
                wait_for_server(uri, Retry(attempts=self.settings.connect_attempts))
            self.context = self._open_session(self.pending, self.data)
        except BaseException:
            self.stop()
            raise
        return self.context

    def _spawn_embedded(self) -> None:
        backend = self.settings.backend_uri or default_backend_uri(self.paths)
        ensure_database(backend)
        self.server = EmbeddedServer(
            backend_uri=backend, artifacts_dir=self.paths.artifacts,
            log_path=self.paths.server_log, port=self.settings.port,
        ).start()  # fmt: skip
        atexit.register(self.stop)
        self.say(f"titanic-bench: starting MLflow server at {self.server.url} "
                 f"(backend {mask_uri(backend)}, state {self.paths.root})")  # fmt: skip

    def _stack_uri(self, mode: Mode) -> str:
        if self.server is not None:
            return self.server.url
        if mode is Mode.COMPOSE:
            uri = compose_up(self.rootpath)
        elif self.settings.tracking_uri:
            uri = self.settings.tracking_uri
        else:
            raise StackError("no tracking URI to connect to; set MLFLOW_TRACKING_URI.")
        self.say(f"titanic-bench: logging to {mask_uri(uri)}")
        return uri

    def _context(self, tracking_uri: str, data: TitanicData, environment: dict[str, Any]) -> SessionContext:
        return SessionContext(
            session_id=new_session_id(), tracking_uri=tracking_uri, ui_url="",
            experiment_id="", experiment_name=self.settings.experiment, parent_run_id="",
            data_source=data.source, data_digest=data.digest,
            allow_other_data=self.settings.allow_other_data,
            registered_model=self.settings.registered_model,
            pip_requirements=model_requirements(), environment=environment,
            cv_folds=self.settings.cv_folds, cv_repeats=self.settings.cv_repeats,
            baseline_path=str(self.baseline_path) if self.settings.gate.baseline else "",
            gate_metrics=list(self.settings.gate_metrics), gate_alpha=self.settings.gate_alpha,
            gate_min_effect=self.settings.gate_min_effect,
        )  # fmt: skip

    def _open_session(self, pending: SessionContext, data: TitanicData) -> SessionContext:
        import mlflow
        from mlflow.tracking import MlflowClient

        from titanic_bench.tracking import ensure_experiment, log_session_dataset, start_session_run

        uri = pending.tracking_uri
        mlflow.set_tracking_uri(uri)
        client = MlflowClient(uri)
        experiment_id = ensure_experiment(client, self.settings.experiment)
        parent_run_id = start_session_run(client, experiment_id, pending.session_id, pending.environment)
        log_session_dataset(client, parent_run_id, data)
        # The UI link is printed and logged with the leaderboard: never with a password in it.
        http = uri.startswith("http")
        ui_url = f"{mask_uri(uri)}/#/experiments/{experiment_id}" if http else "(no UI: not an HTTP server)"
        return replace(pending, experiment_id=experiment_id, parent_run_id=parent_run_id, ui_url=ui_url)

    def record(self, result: ExperimentResult) -> None:
        """Keep the latest result per test id (a rerun replaces its earlier attempt)."""
        self.results[result.nodeid] = result

    def finish(self, session_failed: bool) -> Leaderboard | None:
        """Promote the winner, write and log the leaderboard, close the session run."""
        if self.context is None:
            return None
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        from titanic_bench.tracking import end_session_run

        results = list(self.results.values())
        promotion = self._promote(results)
        self.gate_failures = [r.gate_failure for r in sorted(results, key=lambda r: r.spec) if r.gate_failed]
        if promotion.blocked and self.settings.gate.champion:
            self.gate_failures.append(f"the session's winner {promotion.reason}")
        if self.settings.update_baseline:
            self._update_baseline(results, session_failed)
        self.leaderboard = Leaderboard.build(self.context.session_id, self.settings.selection_metric,
                                             results, promotion, self.context.ui_url)  # fmt: skip
        self.leaderboard.write(self.paths.reports)
        status = "FAILED" if session_failed or self.gate_failures else "FINISHED"
        tags = {"champion": promotion.version or "none"}
        try:
            end_session_run(MlflowClient(self.context.tracking_uri), self.context.parent_run_id,
                            status, self.leaderboard.files(), tags)  # fmt: skip
        except MlflowException as error:
            raise StackError(f"could not log the leaderboard to MLflow: {error}") from error
        return self.leaderboard

    def _promote(self, results: list[ExperimentResult]) -> Promotion:
        from mlflow.exceptions import MlflowException

        assert self.context is not None
        metric = self.settings.selection_metric
        winner, reason = select_winner(results, metric)
        if winner is None:
            return Promotion(winner=None, reason=reason)
        if not self.settings.promote:
            return Promotion(winner=winner, reason="promotion is off (--bench-no-promote)")
        try:
            checks = compare_with_champion(winner, self.context.registered_model, CHAMPION_ALIAS,
                                           self._plan(), self.data, self._champion_policy())  # fmt: skip
            if any(check.failed for check in checks):
                worse = "; ".join(check.line() for check in checks if check.failed)
                return Promotion(winner=winner, reason=f"{winner.spec} is significantly worse than the "
                                 f"current champion, which keeps @{CHAMPION_ALIAS}: {worse}",
                                 champion_checks=checks)  # fmt: skip
            return promote(winner, self.context.registered_model, CHAMPION_ALIAS,
                           self.context.session_id, metric, reason, checks)  # fmt: skip
        except MlflowException as error:
            raise StackError(f"registering the winner {winner.spec} failed: {error}") from error

    def _plan(self) -> Any:
        from titanic_bench.crossval import CVPlan

        return CVPlan(self.settings.cv_folds, self.settings.cv_repeats)

    def _champion_policy(self) -> GatePolicy:
        metrics = dict.fromkeys([self.settings.selection_metric, *self.settings.gate_metrics])
        return GatePolicy(tuple(metrics), self.settings.gate_alpha, self.settings.gate_min_effect)

    def _update_baseline(self, results: list[ExperimentResult], session_failed: bool) -> None:
        """Write the baseline only from a session that passed: a failure is no reference."""
        if session_failed or not results:
            self.notes.append(f"baseline {self.baseline_path} NOT written: the session failed or ran "
                              "nothing.")  # fmt: skip
            return
        assert self.context is not None
        write_baseline(self.baseline_path, results, self.context.environment, self.context.session_id)
        self.notes.append(f"baseline written: {self.baseline_path} ({len(results)} experiment(s))")

    def stop(self) -> None:
        """Stop the embedded server (whole process group) unless asked to keep it."""
        if self.server is None:
            return
        if self.settings.keep_server:
            group = self.server.process.pid if self.server.process else "?"
            self.say(f"titanic-bench: MLflow server kept running at {self.server.url} "
                     f"(process group {group})")  # fmt: skip
            self.server = None
            return
        self.server.stop()
        self.server = None
