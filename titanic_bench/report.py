"""The leaderboard: one table, rendered for the terminal, Markdown and JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from titanic_bench.gates import QUALITY_METRICS
from titanic_bench.registry import Promotion
from titanic_bench.results import ExperimentResult

COLUMNS: tuple[str, ...] = (*QUALITY_METRICS, "fit_seconds")
MARKDOWN_FILE = "leaderboard.md"
JSON_FILE = "leaderboard.json"


@dataclass(frozen=True)
class Leaderboard:
    session_id: str
    selection_metric: str
    results: tuple[ExperimentResult, ...]
    promotion: Promotion
    ui_url: str

    @classmethod
    def build(cls, session_id: str, selection_metric: str, results: Sequence[ExperimentResult],
              promotion: Promotion, ui_url: str) -> Leaderboard:  # fmt: skip
        ranked = sorted(results, key=lambda r: (not r.passed, -r.metrics.get(selection_metric, 0.0), r.spec))
        return cls(session_id, selection_metric, tuple(ranked), promotion, ui_url)

    def rows(self) -> list[list[str]]:
        header = ["experiment", *COLUMNS, "floors", "run_id"]
        body = [
            [r.spec, *(f"{r.metrics.get(c, float('nan')):.4f}" for c in COLUMNS),
             "PASS" if r.passed else "FAIL", r.run_id]
            for r in self.results
        ]  # fmt: skip
        return [header, *body]

    def champion_line(self) -> str:
        promotion = self.promotion
        if promotion.winner is None:
            return f"Champion: none promoted, {promotion.reason}."
        if not promotion.version:
            return f"Champion: {promotion.winner.spec} would win, not promoted: {promotion.reason}."
        return (
            f"Champion: {promotion.winner.spec} -> {promotion.model_name} version "
            f"{promotion.version} (@{promotion.alias}), {promotion.reason}."
        )

    def text(self) -> str:
        rows = self.rows()
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * width for width in widths))
        return "\n".join([*lines, "", self.champion_line(), f"MLflow UI: {self.ui_url}"])

    def markdown(self) -> str:
        rows = self.rows()
        table = [f"| {' | '.join(rows[0])} |", f"|{'---|' * len(rows[0])}"]
        table += [f"| {' | '.join(row)} |" for row in rows[1:]]
        return "\n".join([
            f"# Leaderboard, session {self.session_id}", "",
            f"Ranked by {self.selection_metric}; PASS means every floor was met.", "",
            *table, "", self.champion_line(), "", f"MLflow UI: {self.ui_url}", "",
        ])  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        promotion = self.promotion
        return {
            "session_id": self.session_id,
            "selection_metric": self.selection_metric,
            "ui_url": self.ui_url,
            "results": [json.loads(result.to_json()) for result in self.results],
            "champion": {
                "spec": promotion.winner.spec if promotion.winner else None,
                "model_name": promotion.model_name or None,
                "version": promotion.version or None,
                "alias": promotion.alias or None,
                "reason": promotion.reason,
            },
        }

    def files(self) -> dict[str, str]:
        return {MARKDOWN_FILE: self.markdown(), JSON_FILE: json.dumps(self.as_dict(), indent=2)}

    def write(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name, text in self.files().items():
            path = folder / name
            path.write_text(text)
            written.append(path)
        return written
