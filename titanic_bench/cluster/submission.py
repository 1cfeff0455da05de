"""Experiments as Dask tasks: submitted once by the controller, awaited by their test cases.

Each task trains, cross-validates and logs its own run on the session's tracking
server (artifacts go through the server, so a worker needs no shared disk and no
storage credentials) and returns the :class:`ExperimentResult` the controller
records. The validated data is scattered to every worker once, before the first
task, so workers need no copy of the data set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from titanic_bench.cluster.connect import Cluster
from titanic_bench.cluster.versions import check_versions, local_versions
from titanic_bench.errors import ClusterError
from titanic_bench.ml.experiments import ExperimentSpec
from titanic_bench.session.context import SessionContext
from titanic_bench.session.results import ExperimentResult
from titanic_bench.tracking.tags import TagKey

if TYPE_CHECKING:
    from distributed import Future

    from titanic_bench.data.loading import TitanicData


def run_task(
    context: SessionContext,
    spec: ExperimentSpec,
    nodeid: str,
    data: TitanicData,
    versions: Mapping[str, str],
) -> ExperimentResult:
    """One experiment on a worker: train and check it, then log it unless the session ended meanwhile.

    ``versions`` are the controller's: a worker that joined after the controller checked
    the cluster is checked here, before it trains.
    """
    from distributed import get_worker

    from titanic_bench.session.bench import Experiment
    from titanic_bench.tracking.client import Tracker
    from titanic_bench.tracking.runs import session_ended

    check_versions(versions, {get_worker().address: local_versions()})
    tracker = Tracker.connect(context.tracking_uri)
    # One thread per worker process: its cores already run other tasks.
    experiment = Experiment(context, tracker, data, n_jobs=1, run_tags={TagKey.WORKER: get_worker().address})
    record = experiment.record(spec, nodeid)
    # A task cancelled after an interrupt keeps running on a cluster the session does not own.
    if session_ended(tracker, context.parent_run_id):
        raise ClusterError(f"session {context.session_id} ended before {nodeid} was logged; not logged.")
    return experiment.log(record)


def task_key(context: SessionContext, nodeid: str) -> str:
    return f"titanic-bench-{context.session_id}-{nodeid}"


class Submissions:
    """The session's tasks, one per test id, on ``cluster``."""

    def __init__(self, cluster: Cluster, context: SessionContext, data: TitanicData) -> None:
        self.cluster = cluster
        self.context = context
        # One copy on every worker: a worker that dies and comes back gets it from another.
        self.data = cluster.client.scatter(data, broadcast=True)
        self.versions = local_versions()
        self.futures: dict[str, Future[ExperimentResult]] = {}
        self.specs: dict[str, ExperimentSpec] = {}

    def submit_all(self, cases: Iterable[tuple[str, ExperimentSpec]]) -> None:
        for nodeid, spec in cases:
            self.submit(nodeid, spec)

    def submit(self, nodeid: str, spec: ExperimentSpec) -> Future[ExperimentResult]:
        client = self.cluster.client
        key = task_key(self.context, nodeid)
        future = client.submit(
            run_task, self.context, spec, nodeid, self.data, self.versions, key=key, pure=False
        )
        self.futures[nodeid], self.specs[nodeid] = future, spec
        return future

    def result(self, spec: ExperimentSpec, nodeid: str) -> ExperimentResult:
        """The result of ``nodeid``'s task (submitted now if collection did not see this spec);
        the worker's own error if it raised."""
        from distributed import CancelledError, KilledWorker

        future = self.futures.get(nodeid)
        if future is None or self.specs[nodeid] != spec:
            future = self.submit(nodeid, spec)
        try:
            result: ExperimentResult = future.result()
        except CancelledError:
            raise ClusterError(
                f"the task of {nodeid} was cancelled on {self.cluster.address.label}."
            ) from None
        except KilledWorker as error:
            raise ClusterError(
                f"the task of {nodeid} was lost: the workers that ran it died ({error})."
            ) from None
        return result

    def cancel(self) -> None:
        """Cancel every task not done yet; a running one stops before it logs (see run_task)."""
        pending = [future for future in self.futures.values() if not future.done()]
        if pending:
            self.cluster.client.cancel(pending, force=True)
