"""The session's controller side: stack up, experiment and session run, winner, report.

Exactly one Controller exists per pytest session, in the xdist controller or in
the single process of a run without xdist. Workers never build one.
"""

from __future__ import annotations

import atexit
import os
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanic_bench.data.loading import TitanicData, load_titanic
from titanic_bench.errors import ArtifactStoreError, StackError
from titanic_bench.gates.baseline import read_baseline, resolve_path, write_baseline
from titanic_bench.gates.checks import GateCheck
from titanic_bench.gates.family import decide_session
from titanic_bench.options import BenchSettings, Mode
from titanic_bench.paths import HOME_ENV, LEADERBOARD_PICTURE, StatePaths, state_paths
from titanic_bench.session.context import SessionContext
from titanic_bench.session.liveness import controller_alive, this_controller
from titanic_bench.session.progress import Progress
from titanic_bench.session.promotion import Promotion, promote_winner
from titanic_bench.session.quiet import mlflow_output_to, route_mlflow_logging
from titanic_bench.session.report import PICTURE_FOLDER, Leaderboard
from titanic_bench.session.results import ExperimentResult, ranked
from titanic_bench.stack.artifacts import check_bucket, is_s3, take_s3_environment
from titanic_bench.stack.backend import mask_secrets
from titanic_bench.stack.compose import compose_up
from titanic_bench.stack.locks import promotion_lock
from titanic_bench.stack.server import EmbeddedServer, Retry, start_embedded, wait_for_server
from titanic_bench.stack.ui import reopen_command
from titanic_bench.tracking.client import TRACKING_URI_ENV, Tracker
from titanic_bench.tracking.environment import describe, model_requirements
from titanic_bench.tracking.links import SessionLinks
from titanic_bench.tracking.runs import (
    close_dead_sessions,
    end_open_runs,
    end_session_run,
    open_session,
    record_gate_verdicts,
)

if TYPE_CHECKING:
    from titanic_bench.cluster.connect import Cluster
    from titanic_bench.cluster.submission import Submissions
    from titanic_bench.ml.experiments import ExperimentSpec

Say = Callable[[str], None]


def new_session_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def baseline_refusal(
    results: list[ExperimentResult], session_failed: bool, cut_short: str, promotion: Promotion
) -> str:
    """Why this session may not write the baseline, or "" when it may: only a session that
    passed everything (floors, gates and the champion check, gated or not) is a reference."""
    if cut_short:
        return cut_short
    if not results:
        return "the session ran no experiment"
    reasons = []
    if session_failed:
        reasons.append("the session failed")
    if any(result.gate_failed for result in results):
        reasons.append("the regression gate failed")
    if promotion.blocked and promotion.winner is not None:
        reasons.append(f"its winner {promotion.winner.spec} is significantly worse than the current champion")
    return "; ".join(reasons)


class Controller:
    """Owns the tracking stack and the session's results from start to finish."""

    def __init__(self, settings: BenchSettings, rootpath: Path, say: Say) -> None:
        self.settings = settings
        self.rootpath = rootpath
        self.say = say
        self.paths: StatePaths = state_paths(settings.home)
        self.server: EmbeddedServer | None = None
        #: The S3 variables taken out of this process for the embedded server (see stack.artifacts).
        self.s3_environment: dict[str, str] = {}
        #: What workers get before the stack is up, then the opened session.
        self.pending: SessionContext | None = None
        self.context: SessionContext | None = None
        self.results: dict[str, ExperimentResult] = {}
        self.leaderboard: Leaderboard | None = None
        self.data: TitanicData | None = None
        self.tracker: Tracker | None = None
        self.progress = Progress()
        #: Whether xdist workers got the pending context (and so its tracking URI).
        self.handed_out = False
        #: Gate failures that fail the session, one message each, for the terminal summary.
        self.gate_failures: list[str] = []
        self.notes: list[str] = []
        self.baseline_path = resolve_path(settings.baseline, rootpath)
        #: With --bench-dask: the cluster, and the experiments submitted to it.
        self.cluster: Cluster | None = None
        self.submissions: Submissions | None = None

    def begin(self) -> SessionContext:
        """Start the embedded server without waiting for it, or reach the server to connect to;
        prepare what needs no server.

        Returns the context the workers get. Its experiment and session-run ids are
        empty: :meth:`open` creates them while workers start and collect, and workers
        look them up by session id (see ``tracking.find_session_run``). A server to
        connect to is waited for here, before xdist starts any worker: unreachable, it
        fails the session at once.
        """
        self._create_state_folder()
        mode = self.settings.effective_mode
        if mode is Mode.EMBEDDED:
            self._spawn_embedded()
        try:
            uri = self._stack_uri(mode)
            if self.server is None and uri.startswith(("http://", "https://")):
                wait_for_server(uri, Retry(attempts=self.settings.connect_attempts))
            if self.settings.dask is not None:
                self._open_cluster(uri)
            # Loading data and describing the environment overlap the embedded server's start-up.
            data = self.data = load_titanic(self.settings.data, allow_other=self.settings.allow_other_data)
            self.pending = self._context(uri, data, describe(self.rootpath))
        except BaseException:
            self.stop()
            raise
        return self.pending

    def open(self) -> SessionContext:
        """Wait for the stack, then create the experiment and the session run."""
        assert self.pending is not None and self.data is not None
        try:
            if self.server is not None:
                self.server.wait_ready()
                self._follow_the_server()
            route_mlflow_logging(self.paths.session_log)
            with mlflow_output_to(self.paths.session_log):
                self.context = self._open_session(self.pending, self.data)
            if self.cluster is not None:
                from titanic_bench.cluster.submission import Submissions

                self.submissions = Submissions(self.cluster, self.context, self.data)
        except BaseException:
            self.stop()
            raise
        return self.context

    def _open_cluster(self, tracking_uri: str) -> None:
        """Reach or start the cluster, and check it can run this session's tasks."""
        from titanic_bench.cluster.connect import Cluster
        from titanic_bench.cluster.reachability import check_scheduler

        address = self.settings.dask
        assert address is not None
        check_scheduler(tracking_uri, address)
        self.cluster = Cluster.open(address, Retry(attempts=self.settings.connect_attempts))
        self.cluster.check(tracking_uri)
        workers = len(self.cluster.workers())
        self.say(f"titanic-bench: running the experiments on Dask {address.label} ({workers} workers)")

    def submit(self, cases: list[tuple[str, ExperimentSpec]]) -> None:
        """Submit every collected experiment to the cluster at once; test cases wait for theirs."""
        if self.submissions is not None:
            self.submissions.submit_all(cases)

    def _follow_the_server(self) -> None:
        """Use the embedded server's port, which changes when another program took the first."""
        assert self.pending is not None and self.server is not None
        if self.server.url == self.pending.tracking_uri:
            return
        if self.handed_out:
            raise StackError(
                f"another program took {self.pending.tracking_uri} while the MLflow server started, so it "
                f"moved to {self.server.url} after the xdist workers were told the first address. "
                "Rerun the session, or pass a free --bench-port."
            )
        self.pending = replace(self.pending, tracking_uri=self.server.url)

    def _create_state_folder(self) -> None:
        try:
            self.paths.create()
        except OSError as error:
            raise StackError(
                f"the state folder {self.paths.root} cannot be created or written "
                f"({error.strerror or error}): pass a writable folder with --bench-home or {HOME_ENV}."
            ) from None

    def _spawn_embedded(self) -> None:
        artifacts = self.settings.artifacts
        if artifacts and is_s3(artifacts):
            # Before xdist starts any worker: workers inherit this process's environment.
            self.s3_environment = take_s3_environment()
        self.server = start_embedded(
            self.paths,
            self.settings.backend_uri,
            self.settings.port,
            artifacts=artifacts,
            s3_environment=self.s3_environment if self.s3_environment else None,
        )
        atexit.register(self.stop)
        backend, root = mask_secrets(self.server.backend_uri), self.paths.root
        store = self.server.artifacts_uri or self.server.artifacts_dir
        self.say(
            f"titanic-bench: starting MLflow server at {self.server.url} "
            f"(backend {backend}, artifacts {store}, state {root})"
        )

    def _stack_uri(self, mode: Mode) -> str:
        if self.server is not None:
            return self.server.url
        if mode is Mode.COMPOSE:
            uri = compose_up(self.rootpath)
        elif self.settings.tracking_uri:
            uri = self.settings.tracking_uri
        else:
            raise StackError("no tracking URI to connect to; set MLFLOW_TRACKING_URI.")
        self.say(f"titanic-bench: logging to {mask_secrets(uri)}")
        return uri

    def _context(self, tracking_uri: str, data: TitanicData, environment: dict[str, Any]) -> SessionContext:
        settings = self.settings
        return SessionContext(
            session_id=new_session_id(),
            tracking_uri=tracking_uri,
            ui_url="",
            experiment_id="",
            experiment_name=settings.experiment,
            parent_run_id="",
            data_source=data.source,
            data_digest=data.digest,
            allow_other_data=settings.allow_other_data,
            registered_model=settings.registered_model,
            pip_requirements=model_requirements(),
            environment=environment,
            cv=settings.cv,
            policy=settings.policy,
            baseline=read_baseline(self.baseline_path) if settings.gate.baseline else None,
        )

    def _open_session(self, pending: SessionContext, data: TitanicData) -> SessionContext:
        advice = f"Start it, or pass --bench-tracking-uri (or set {TRACKING_URI_ENV})."
        tracker = self.tracker = Tracker.connect(pending.tracking_uri, advice)
        owner = this_controller()
        session = open_session(
            tracker, pending.experiment_name, pending.session_id, pending.environment, data, owner
        )
        closed = close_dead_sessions(tracker, session.experiment_id, pending.session_id, controller_alive)
        if closed:
            sessions = ", ".join(closed)
            self.say(
                f"titanic-bench: ended as FAILED the runs of earlier sessions whose process died: {sessions}"
            )
        # The UI's address is printed and logged with the leaderboard: never with a password in it.
        uri = pending.tracking_uri
        ui_url = f"{mask_secrets(uri).rstrip('/')}/" if uri.startswith("http") else ""
        return replace(
            pending, experiment_id=session.experiment_id, parent_run_id=session.run_id, ui_url=ui_url
        )

    def record(self, result: ExperimentResult) -> None:
        """Keep the latest result per test id (a rerun replaces its earlier attempt)."""
        self.results[result.nodeid] = result

    def finish(self, session_failed: bool, cut_short: str = "") -> Leaderboard | None:
        """Promote the winner, write and log the leaderboard, close the session run.

        A session ``cut_short`` (interrupted, stopped early, a worker lost) promotes
        nothing, writes no baseline, and ends its runs that are still open. What MLflow
        prints meanwhile goes to the session log.
        """
        if self.context is None or self.tracker is None or self.data is None:
            return None
        with mlflow_output_to(self.paths.session_log):
            return self._finish(session_failed, cut_short)

    def _finish(self, session_failed: bool, cut_short: str) -> Leaderboard:
        assert self.context is not None and self.tracker is not None and self.data is not None
        results = self._decide_gate(list(self.results.values()))
        store_lost = "" if cut_short else self._artifact_store_lost()
        cut_short = cut_short or store_lost
        if cut_short:
            self._stop_cluster_work()
            promotion = Promotion(winner=None, reason=cut_short, cut_short=True)
            self.notes.append(f"not promoted: {cut_short}")
            end_open_runs(self.tracker, self.context.experiment_id, self.context.session_id)
        else:
            session_id, name = self.context.session_id, self.settings.registered_model
            backend = self.server.backend_uri if self.server is not None else None
            lock = partial(promotion_lock, backend, self.paths.root, name)
            promotion = promote_winner(self.tracker, results, self.settings, session_id, self.data, lock)
        self.gate_failures = [r.gate_failure for r in sorted(results, key=lambda r: r.spec) if r.gate_failed]
        if promotion.blocked and self.settings.gate.champion:
            self.gate_failures.append(f"the session's winner {promotion.reason}")
        if self.settings.update_baseline:
            self._update_baseline(results, baseline_refusal(results, session_failed, cut_short, promotion))
        self.leaderboard = Leaderboard.build(
            self.context.session_id,
            self.settings.selection_metric,
            results,
            promotion,
            self.context.ui_url,
            self._links(results, promotion),
            self._reopen_note(),
        )
        self.leaderboard.write(self.paths.reports)
        status = "KILLED" if cut_short else "FAILED" if session_failed or self.gate_failures else "FINISHED"
        tags = {"champion": promotion.version or "none"}
        # The picture as written, not drawn again: drawing it costs about a second here.
        pictures = {PICTURE_FOLDER: self.paths.reports / LEADERBOARD_PICTURE} if results else {}
        # A lost store would fail the upload with MLflow's text; the check's message says why.
        files, pictures = ({}, {}) if store_lost else (self.leaderboard.files(), pictures)
        end_session_run(self.tracker, self.context.parent_run_id, status, files, tags, pictures)
        if store_lost:
            raise ArtifactStoreError(
                f"{store_lost}; nothing was promoted, and the leaderboard is only in {self.paths.reports}"
            )
        if self.settings.summary:
            source = "--bench-summary or GITHUB_STEP_SUMMARY"
            self.leaderboard.append_summary(Path(self.settings.summary).expanduser(), source)
        return self.leaderboard

    def _links(self, results: list[ExperimentResult], promotion: Promotion) -> SessionLinks | None:
        assert self.context is not None
        if not self.context.ui_url:
            return None
        order = tuple(r.run_id for r in ranked(results, self.settings.selection_metric))
        context = self.context
        base = context.ui_url.rstrip("/")
        name = self.settings.registered_model
        return SessionLinks(base, context.experiment_id, context.session_id, order, name, promotion.version)

    def _reopen_note(self) -> str:
        """How to see the links again when the embedded server stops with the session."""
        if self.server is None or self.settings.keep_server:
            return ""
        server = self.server
        command = reopen_command(self.paths, server.port, server.backend_uri, server.artifacts_uri)
        return (
            "MLflow UI: the embedded server stops with this session. Reopen it on the same state with\n"
            f"  {command}\n"
            "and these links show the runs again:"
        )

    def _artifact_store_lost(self) -> str:
        """Why the session's S3 bucket can no longer be used, else ""; checked before promoting,
        so a champion never points at a model whose files are gone."""
        destination = self.server.artifacts_uri if self.server is not None else None
        if not destination:
            return ""
        try:
            check_bucket(destination, self.s3_environment)
        except ArtifactStoreError as error:
            return f"the artifact store failed during the session: {error}"
        return ""

    def _decide_gate(self, results: list[ExperimentResult]) -> list[ExperimentResult]:
        """Decide the session's gate tests as one family, and record the verdicts on their runs."""
        if not any(result.gate for result in results):
            return results
        assert self.tracker is not None
        decided = decide_session(results, self.settings.policy)
        for before, after in zip(results, decided, strict=True):
            if after.gate != before.gate:
                checks = [GateCheck.from_dict(check) for check in after.gate]
                record_gate_verdicts(self.tracker, after.run_id, checks)
            self.results[after.nodeid] = after
        return decided

    def _update_baseline(self, results: list[ExperimentResult], refusal: str) -> None:
        """Write the baseline only from a session that passed: a failure is no reference."""
        if refusal:
            self.notes.append(f"baseline {self.baseline_path} NOT written: {refusal}.")
            return
        assert self.context is not None
        write_baseline(self.baseline_path, results, self.context.environment, self.context.session_id)
        self.notes.append(f"baseline written: {self.baseline_path} ({len(results)} experiment(s))")

    def _stop_cluster_work(self) -> None:
        """Cancel the tasks still to come; a local cluster is stopped, so none logs after this."""
        if self.submissions is not None:
            self.submissions.cancel()
        if self.cluster is not None and self.cluster.local is not None:
            self.cluster.close()

    def stop(self) -> None:
        """Stop the cluster the session started, then the embedded server (whole process group)
        unless asked to keep it; give the S3 variables back to this process (its workers are
        gone by now)."""
        os.environ.update(self.s3_environment)
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None
        if self.server is None:
            return
        if self.settings.keep_server:
            group = self.server.process.pid if self.server.process else "?"
            self.say(
                f"titanic-bench: MLflow server kept running at {self.server.url} (process group {group})"
            )
            self.server = None
            return
        self.server.stop()
        self.server = None
