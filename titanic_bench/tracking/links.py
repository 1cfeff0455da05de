"""Links into the MLflow UI that show a session's runs, in the "Model training" view.

The routes are the ones MLflow 3.17's own UI builds (``Routes.getCompareRunPageRoute``,
the experiment page's ``searchFilter`` and ``workflowType`` query parameters,
``getModelVersionPageRoute``). ``#/experiments/ID`` alone opens the GenAI traces
view in a fresh browser, which shows none of the runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from titanic_bench.tracking.tags import RunKind, TagKey

#: The experiment page's value for the classic runs table (the other is "genai").
MACHINE_LEARNING_VIEW = "machine_learning"


def _json_list(values: Sequence[str]) -> str:
    # The UI parses the JSON list after URL-decoding; quoted, a terminal keeps it one link.
    return quote(json.dumps(list(values), separators=(",", ":")), safe="[],")


def session_filter(session_id: str) -> str:
    """The runs-table search that lists a session's experiment runs (not its parent run)."""
    return f"tags.{TagKey.SESSION} = '{session_id}' and tags.{TagKey.KIND} = '{RunKind.EXPERIMENT}'"


@dataclass(frozen=True)
class SessionLinks:
    """The three links a person follows after a session, built on ``base`` (the UI's URL)."""

    base: str
    experiment_id: str
    session_id: str
    run_ids: tuple[str, ...]
    model_name: str
    version: str = ""

    @property
    def compare(self) -> str:
        """The compare page: every run side by side, params, metrics, parallel coordinates."""
        runs, experiments = _json_list(self.run_ids), _json_list([self.experiment_id])
        return f"{self.base}/#/compare-runs?runs={runs}&experiments={experiments}"

    @property
    def runs(self) -> str:
        """The runs table of the experiment, filtered to this session's experiment runs."""
        query = urlencode(
            {"workflowType": MACHINE_LEARNING_VIEW, "searchFilter": session_filter(self.session_id)},
            quote_via=quote,
        )
        return f"{self.base}/#/experiments/{self.experiment_id}/runs?{query}"

    @property
    def registry(self) -> str:
        """The champion's version page, or the registered model's page when none was promoted."""
        model = quote(self.model_name, safe="")
        suffix = f"/versions/{self.version}" if self.version else ""
        return f"{self.base}/#/models/{model}{suffix}"

    def on(self, base: str) -> SessionLinks:
        """The same links on another server address (``titanic-bench ui`` on the same state)."""
        return SessionLinks(
            base.rstrip("/"), self.experiment_id, self.session_id, self.run_ids, self.model_name, self.version
        )

    def labelled(self) -> list[tuple[str, str]]:
        """(what it shows, URL) for each link, in the order a person reads them."""
        champion = "champion in the registry" if self.version else "registered model"
        links = [("compare the runs", self.compare)] if self.run_ids else []
        return [*links, ("runs of this session", self.runs), (champion, self.registry)]

    def to_dict(self) -> dict[str, object]:
        return {
            "base": self.base,
            "experiment_id": self.experiment_id,
            "session_id": self.session_id,
            "run_ids": list(self.run_ids),
            "model_name": self.model_name,
            "version": self.version,
            "compare": self.compare if self.run_ids else "",
            "runs": self.runs,
            "registry": self.registry,
        }

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> SessionLinks:
        run_ids = values.get("run_ids") or []
        assert isinstance(run_ids, list)
        return cls(
            str(values["base"]),
            str(values["experiment_id"]),
            str(values["session_id"]),
            tuple(map(str, run_ids)),
            str(values["model_name"]),
            str(values.get("version") or ""),
        )
