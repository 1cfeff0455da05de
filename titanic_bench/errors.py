"""The errors the harness raises for a user's mistake or a problem in their environment.

Every one is a :class:`BenchError`, so each boundary (the pytest plugin, the
``titanic-bench`` commands) catches one type and shows its message as one line, without
a traceback. A message says what was wrong, with the value, and what to do about it;
it never holds a password or key (see :func:`titanic_bench.stack.backend.mask_secrets`).
Anything else that escapes is a bug in the harness, and keeps its traceback.
"""

from __future__ import annotations


class BenchError(Exception):
    """Base of every error a user or their environment can cause."""


class OptionError(BenchError):
    """An option, flag, ini key or environment variable has a value the harness cannot use."""


class DataError(BenchError):
    """The data cannot be used."""


class BaselineError(BenchError):
    """The baseline file cannot be used."""


class GateError(BenchError):
    """The regression gate cannot pair the current and the reference fold scores."""


class StackError(BenchError):
    """The tracking stack could not be started, reached or stopped."""


class BackendError(StackError):
    """The embedded server's backend store cannot be used as given."""


class ArtifactStoreError(StackError):
    """The embedded server's artifact destination (a folder or an S3 bucket) cannot be used."""


class TrackingError(BenchError):
    """A call to the MLflow tracking server or registry failed (names the operation and server)."""


class UntrustedModelError(BenchError):
    """A model needs a type outside the skops allow-list."""


class ModelLoadError(BenchError):
    """A model cannot be found or loaded."""


class ReproduceError(BenchError):
    """A logged run lacks what re-running it needs, or cannot be read."""


class ReportError(BenchError):
    """A report file the options name (the CI summary) cannot be written."""


class ClusterError(BenchError):
    """The Dask cluster cannot be started, reached or used for this session."""
