"""Names of the tags the harness writes on runs and registered versions.

Promotion, serving, ``reproduce`` and searches all read them from here, so a tag's
name is written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class TagKey:
    """Tag names every harness run carries; searches and tests use these."""

    KIND = "run_kind"
    SESSION = "session_id"
    SPEC = "spec"
    NODEID = "pytest_nodeid"
    DATASET = "dataset"
    DATA_DIGEST = "data_digest"
    DATA_SOURCE = "data_source"
    #: "true" for the pinned Kaggle file, "false" for data accepted with --bench-allow-other-data.
    DATA_PINNED = "data_pinned"
    TASK = "task"
    FLOORS = "floors"
    GIT_COMMIT = "mlflow.source.git.commit"
    GIT_DIRTY = "git_dirty"
    PYTHON = "python_version"
    SKLEARN = "sklearn_version"
    PLATFORM = "platform"
    CPU_COUNT = "cpu_count"
    #: The whole environment record as compact JSON, so ``reproduce`` needs no artifact access.
    ENVIRONMENT = "environment"
    CV_PLAN = "cv_plan"
    GATE = "gate"
    #: On a session run: the host, pid and start time of its controller, so that a later
    #: session can tell a live session from one whose process died.
    CONTROLLER = "controller"
    #: On a run a later session ended because its session had died: that session's id.
    CLOSED_BY = "closed_by_session"
    #: Session id and test id: the same on every attempt at one test's run, so a retried
    #: attempt (a Dask worker died mid-task) finds the earlier ones.
    RUN_KEY = "run_key"
    #: On an attempt a later attempt of the same run key replaced (and ended FAILED): its run id.
    REPLACED_BY = "replaced_by_run"
    #: The address of the Dask worker that trained and logged the run.
    WORKER = "dask_worker"


class RunKind(StrEnum):
    """The value of :attr:`TagKey.KIND`: a session's parent run or one experiment's run."""

    SESSION = "session"
    EXPERIMENT = "experiment"


class VersionTag:
    """Tags on a registered version of the champion model, written at promotion."""

    SESSION = "session_id"
    SPEC = "spec"
    RUN_ID = "run_id"
    DATA_DIGEST = "data_digest"
    SELECTION_METRIC = "selection_metric"
    #: Each of the winner's metrics is one tag: ``metric.<name>``.
    METRIC_PREFIX = "metric."

    @classmethod
    def metric(cls, name: str) -> str:
        return f"{cls.METRIC_PREFIX}{name}"

    @classmethod
    def metrics(cls, tags: Mapping[str, str]) -> dict[str, float]:
        """The metrics a version's tags hold, by metric name."""
        prefix = cls.METRIC_PREFIX
        return {
            key.removeprefix(prefix): float(value) for key, value in tags.items() if key.startswith(prefix)
        }
