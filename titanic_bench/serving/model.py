"""Find, load and hot-swap the model the API serves.

The served model is one immutable :class:`LoadedModel`, held by a
:class:`ModelSlot`. A background :class:`ChampionWatcher` polls the registry; when
the alias points to a new version it loads that version completely, then swaps it
in with a single reference assignment. A request reads the slot once, so it uses
either the old model or the new one, never a half-loaded one. Versions are found and
loaded (safely, with skops) by :mod:`titanic_bench.tracking.models`.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import sklearn

from titanic_bench.errors import BenchError, ModelLoadError
from titanic_bench.options import CHAMPION_ALIAS, DEFAULT_REGISTERED_MODEL
from titanic_bench.serving.fast.path import Predictor, compile_fast_path
from titanic_bench.serving.schema import CSV_COLUMN_OF_FIELD, Columns, Passenger, passenger_columns, row
from titanic_bench.stack.backend import mask_secrets
from titanic_bench.tracking.client import error_text
from titanic_bench.tracking.models import (
    RegisteredVersion,
    find_version,
    load_model,
    load_version,
)
from titanic_bench.tracking.tags import VersionTag

log = logging.getLogger(__name__)

DEFAULT_MODEL_URI = f"models:/{DEFAULT_REGISTERED_MODEL}@{CHAMPION_ALIAS}"
NO_MODEL_RETRY_SECONDS = 2.0
_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))/?$")


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
                f"model URI {mask_secrets(uri)!r} is not understood: use models:/NAME@ALIAS, "
                "models:/NAME/VERSION, or a runs:/ or artifact URI."
            )
        return cls(uri)

    @property
    def registered(self) -> bool:
        return self.name is not None


@dataclass(frozen=True)
class LoadedModel:
    """A fitted pipeline and what the registry says about it. Never mutated once built."""

    model: Any
    uri: str  # passwords masked: it is shown
    name: str | None
    version: str | None
    alias: str | None
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    fast: Predictor | None = None  # verified equal to model.predict_proba; see fast.path
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def metrics(self) -> dict[str, float]:
        return VersionTag.metrics(self.tags)

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


# Serving reads the training CSV, once per process: the fast path is only used if it
# gives the pipeline's probabilities bit for bit on real passengers, in the very form
# requests take, and every load (each hot swap) checks it on the same rows. The pinned
# file does not change while the API runs, so the columns are cached, not rebuilt.
@functools.cache
def reference_columns() -> Columns:
    """The 891 training passengers as the API turns requests into columns."""
    from titanic_bench.data.loading import load_titanic

    features = load_titanic().features
    records = features.astype(object).where(features.notna(), None).to_dict(orient="records")
    passengers = [
        Passenger(**{field: record[column] for field, column in CSV_COLUMN_OF_FIELD.items()})
        for record in records
    ]
    return passenger_columns([row(passenger) for passenger in passengers])


@dataclass(frozen=True)
class ModelSource:
    """Where the served model comes from: a model URI on a tracking server."""

    ref: ModelRef
    tracking_uri: str
    fast_path: bool = True  # try the verified fast path (see fast.path) for each version

    def current(self) -> RegisteredVersion | None:
        """The registry version the URI points to now (None for a URI outside the registry)."""
        if self.ref.name is None:
            return None
        return find_version(self.tracking_uri, self.ref.name, alias=self.ref.alias, version=self.ref.version)

    def load(self, version: RegisteredVersion | None) -> LoadedModel:
        """Download and load ``version`` (or the plain URI) into a new LoadedModel."""
        if version is None:
            model, uri, tags = load_model(self.ref.uri, self.tracking_uri), mask_secrets(self.ref.uri), {}
        else:
            model, uri = load_version(self.tracking_uri, version), f"models:/{version.name}/{version.version}"
            tags = dict(version.tags)
        fast = compile_fast_path(model, reference_columns()) if self.fast_path else None
        number = version.version if version is not None else None
        return LoadedModel(model, uri, self.ref.name, number, self.ref.alias, MappingProxyType(tags), fast)


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
            found = self.source.current()
            if current is not None and current.version == (found.version if found else None):
                self.slot.problem = None
                return
            loaded = self.source.load(found)
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
    """Why nothing (or nothing newer) is served: shown in /health and 503s, so masked."""
    # A BenchError's message is written for the user; anything else is named by its type.
    reason = (
        error_text(error) if isinstance(error, BenchError) else f"{type(error).__name__}: {error_text(error)}"
    )
    if current is not None:
        return f"still serving version {current.version}; the refresh failed: {reason}"
    return reason
