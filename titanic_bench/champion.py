"""Find, safely load and hot-swap the model the API serves.

The served model is one immutable :class:`LoadedModel`, held by a
:class:`ModelSlot`. A background :class:`ChampionWatcher` polls the registry; when
the alias points to a new version it loads that version completely, then swaps it
in with a single reference assignment. A request reads the slot once, so it uses
either the old model or the new one, never a half-loaded one.
"""

from __future__ import annotations

import functools
import logging
import re
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import sklearn

from titanic_bench.fast_path import Columns, Predictor, compile_fast_path
from titanic_bench.trusted_types import check_allowed

log = logging.getLogger(__name__)

DEFAULT_MODEL_URI = "models:/titanic_survival@champion"
NO_MODEL_RETRY_SECONDS = 2.0
_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))/?$")


class ModelLoadError(Exception):
    """The model cannot be found or loaded; the message says why and what to do."""


@dataclass(frozen=True)
class ModelRef:
    """A model URI, split into its registry parts when it is a ``models:/`` URI."""

    uri: str
    name: str | None = None
    alias: str | None = None
    version: str | None = None

    @classmethod
    def parse(cls, uri: str) -> ModelRef:
        match = _REGISTRY_URI.match(uri)
        if match:
            return cls(uri, match["name"], match["alias"], match["version"])
        if uri.startswith("models:/"):
            raise ModelLoadError(
                f"model URI {uri!r} is not understood: use models:/NAME@ALIAS, models:/NAME/VERSION, "
                "or a runs:/ or artifact URI."
            )
        return cls(uri)

    @property
    def registered(self) -> bool:
        return self.name is not None


@dataclass(frozen=True)
class LoadedModel:
    """A fitted pipeline and what the registry says about it. Never mutated once built."""

    model: Any
    uri: str
    name: str | None
    version: str | None
    alias: str | None
    tags: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))
    fast: Predictor | None = None  # verified equal to model.predict_proba; see fast_path
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def metrics(self) -> dict[str, float]:
        return {key[7:]: float(value) for key, value in self.tags.items() if key.startswith("metric.")}

    def predict(self, columns: Columns) -> tuple[np.ndarray, np.ndarray]:
        """(classes, survival probabilities), the class chosen as scikit-learn's ``predict`` does."""
        # Skipping the finiteness scan is safe: the API refuses NaN and infinity, and
        # missing values are NaN on purpose, for the imputers, which allow them anyway.
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            if self.fast is not None:
                proba = self.fast(columns)
            else:
                proba = self.model.predict_proba(pd.DataFrame(columns, copy=False))
        classes = np.asarray(self.model.classes_)[proba.argmax(axis=1)]
        return classes, proba[:, list(self.model.classes_).index(1)]


@functools.cache
def reference_columns() -> Columns:
    """The training rows exactly as the API turns requests into columns: the fast path's check."""
    from titanic_bench.serving_schema import passenger_columns, row, training_passengers

    return passenger_columns([row(passenger) for passenger in training_passengers()])


def load_skops_model(model_dir: Path) -> Any:
    """Load an MLflow sklearn model folder with skops, allowing only our trusted types.

    The MLmodel file lists the types its author trusted; we ignore that list (a
    crafted model could trust anything) and check what the file really needs
    against :data:`~titanic_bench.trusted_types.TRUSTED_TYPES`.
    """
    import skops.io
    from mlflow.models import Model

    flavor = Model.load(str(model_dir)).flavors.get("sklearn")
    if flavor is None:
        raise ModelLoadError(
            f"the model in {model_dir} has no sklearn flavor; only scikit-learn models are served."
        )
    fmt = flavor.get("serialization_format", "pickle")
    if fmt != "skops":
        raise ModelLoadError(
            f"the model was saved as {fmt!r}; only 'skops' models are loaded, never pickles. "
            "Log it again with mlflow.sklearn.log_model (skops is MLflow's default)."
        )
    path = (model_dir / str(flavor["pickled_model"])).resolve()
    if not path.is_relative_to(model_dir.resolve()):
        raise ModelLoadError(
            f"the MLmodel file points outside the model folder ({flavor['pickled_model']!r})."
        )
    needed = skops.io.get_untrusted_types(file=path)
    check_allowed(needed, what="the served model")
    model = skops.io.load(path, trusted=needed)
    if not hasattr(model, "predict_proba") or 1 not in list(getattr(model, "classes_", [])):
        raise ModelLoadError(
            f"the model ({type(model).__name__}) gives no probability for class 1 (survived)."
        )
    return model


@dataclass(frozen=True)
class ModelSource:
    """Where the served model comes from: a model URI on a tracking server."""

    ref: ModelRef
    tracking_uri: str

    def client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def current_version(self) -> str | None:
        """The registry version the URI points to now (None for a URI outside the registry)."""
        if not self.ref.registered:
            return None
        from mlflow.exceptions import MlflowException

        client = self.client()
        try:
            if self.ref.alias is not None:
                return str(client.get_model_version_by_alias(self.ref.name, self.ref.alias).version)
            return str(client.get_model_version(self.ref.name, self.ref.version).version)
        except MlflowException as error:
            raise ModelLoadError(f"{self.describe()}: {_first_line(error.message)}") from None

    def load(self, version: str | None) -> LoadedModel:
        """Download and load ``version`` (or the plain URI) into a new LoadedModel."""
        import mlflow.artifacts

        uri = f"models:/{self.ref.name}/{version}" if version is not None else self.ref.uri
        # MLflow 3.17 resolves a models:/ URI with the process-wide registry URI whatever
        # it is given, so ask our client where the version's files are and fetch those.
        location = self.client().get_model_version_download_uri(self.ref.name, version) if version else uri
        with tempfile.TemporaryDirectory(prefix="titanic-serve-") as folder:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=location, dst_path=folder, tracking_uri=self.tracking_uri
            )
            model = load_skops_model(Path(local))
        tags: dict[str, str] = {}
        if version is not None:
            tags = dict(self.client().get_model_version(self.ref.name, version).tags)
        fast = compile_fast_path(model, reference_columns())
        return LoadedModel(
            model, uri, self.ref.name, version, self.ref.alias, MappingProxyType(tags), fast=fast
        )

    def describe(self) -> str:
        return f"{self.ref.uri} on the tracking server {self.tracking_uri}"


def _first_line(text: str) -> str:
    return str(text).strip().splitlines()[0] if str(text).strip() else "(no message)"


class ModelSlot:
    """The one place a request finds the model: read :attr:`current` once per request."""

    def __init__(self) -> None:
        self.current: LoadedModel | None = None
        self.problem: str | None = "the model has not been loaded yet (start-up)"


class ChampionWatcher:
    """Polls the model source and swaps each new version into the slot, in a thread."""

    def __init__(self, source: ModelSource, slot: ModelSlot, poll_seconds: float) -> None:
        self.source = source
        self.slot = slot
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> None:
        """Load the version the source points to if it is not the one served."""
        current = self.slot.current
        try:
            version = self.source.current_version()
            if current is not None and current.version == version:
                self.slot.problem = None
                return
            loaded = self.source.load(version)
        except Exception as error:  # the poller must outlive any registry or network fault
            self.slot.problem = _problem(error, current)
            log.warning("model refresh failed: %s", self.slot.problem)
            return
        self.slot.current = loaded  # the swap: one reference assignment
        self.slot.problem = None
        log.info("serving %s version %s", loaded.name or loaded.uri, loaded.version)

    def start(self) -> ChampionWatcher:
        self._thread = threading.Thread(target=self._loop, name="champion-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            if not self.source.ref.registered and self.slot.current is not None:
                return  # a plain URI never changes: nothing to poll
            # With nothing to serve yet, retry sooner: the registry may just be starting.
            idle = self.slot.current is None
            self._stop.wait(min(self.poll_seconds, NO_MODEL_RETRY_SECONDS) if idle else self.poll_seconds)


def _problem(error: Exception, current: LoadedModel | None) -> str:
    reason = (
        str(error)
        if isinstance(error, ModelLoadError)
        else f"{type(error).__name__}: {_first_line(str(error))}"
    )
    if current is not None:
        return f"still serving version {current.version}; the refresh failed: {reason}"
    return reason
