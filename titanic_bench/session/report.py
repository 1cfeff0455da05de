"""The leaderboard: one table, rendered for the terminal, Markdown and JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from titanic_bench.gates.checks import GateCheck
from titanic_bench.ml.metrics import METRIC_NAMES
from titanic_bench.session.promotion import Promotion
from titanic_bench.session.results import ExperimentResult, ranked

#: Holdout columns; the cross-validated ones (mean ± 95% CI half-width) come first.
COLUMNS: tuple[str, ...] = (*METRIC_NAMES, "fit_seconds")
CV_COLUMNS: tuple[str, ...] = ("roc_auc", "accuracy")
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
    def build(
        cls,
        session_id: str,
        selection_metric: str,
        results: Sequence[ExperimentResult],
        promotion: Promotion,
        ui_url: str,
    ) -> Leaderboard:
        return cls(session_id, selection_metric, tuple(ranked(results, selection_metric)), promotion, ui_url)

    def rows(self) -> list[list[str]]:
        cv_headers = [f"cv_{column} (95% CI)" for column in CV_COLUMNS]
        header = ["experiment", *cv_headers, *COLUMNS, "floors", "gate", "run_id"]
        body = [
            [
                r.spec,
                *(_mean_ci(r, c) for c in CV_COLUMNS),
                *(f"{r.metrics.get(c, float('nan')):.4f}" for c in COLUMNS),
                "PASS" if r.passed else "FAIL",
                _gate_cell(r),
                r.run_id,
            ]
            for r in self.results
        ]
        return [header, *body]

    def gate_rows(self) -> list[list[str]]:
        """One row per gated metric: reference and current CV means, delta, the test, verdict.

        ``mdd`` is the smallest true drop the test catches with 80% power on these folds;
        ``adj. p`` the p-value after the correction over the session's tests.
        """
        header = [
            "experiment",
            "metric",
            "reference",
            "ref mean",
            "current",
            "delta",
            "mdd",
            "p-value",
            "adj. p",
            "test / correction",
            "verdict",
        ]
        body = [_check_row(r.spec, GateCheck.from_dict(c)) for r in self.results for c in r.gate]
        body += [_check_row(f"{c.reference}: winner", c) for c in self.promotion.champion_checks]
        return [header, *body] if body else []

    def gate_family_line(self) -> str:
        """Which test and correction decided the session's gate, over how many tests."""
        tested = [
            GateCheck.from_dict(c) for r in self.results for c in r.gate if c.get("p_value") is not None
        ]
        if not tested:
            return "No gated metric was tested."
        first = tested[0]
        return (
            f"{first.test} test; correction {first.correction} over the session's {len(tested)} tests "
            "(adj. p); mdd: the smallest drop caught with 80% power at alpha on these folds."
        )

    def champion_line(self) -> str:
        promotion = self.promotion
        if promotion.cut_short:
            return f"Champion: not promoted: {promotion.reason}."
        if promotion.winner is None:
            return f"Champion: none promoted, {promotion.reason}."
        if not promotion.version:
            return f"Champion: {promotion.winner.spec} would win, not promoted: {promotion.reason}."
        return (
            f"Champion: {promotion.winner.spec} -> {promotion.model_name} version "
            f"{promotion.version} (@{promotion.alias}), {promotion.reason}."
        )

    def text(self) -> str:
        gate = self.gate_rows()
        title = "Regression gate (corrected resampled t-test on matched folds):"
        gate_lines = ["", title, self.gate_family_line(), *_text_table(gate)]
        return "\n".join(
            [
                *_text_table(self.rows()),
                *(gate_lines if gate else []),
                "",
                self.champion_line(),
                f"MLflow UI: {self.ui_url}",
            ]
        )

    def markdown(self) -> str:
        gate = self.gate_rows()
        gate_part = [
            "## Regression gate",
            "",
            "Corrected resampled t-test (Nadeau & Bengio) on matched folds; delta = current - reference.",
            "",
            self.gate_family_line(),
            "",
            *_markdown_table(gate),
            "",
        ]
        return "\n".join(
            [
                f"# Leaderboard, session {self.session_id}",
                "",
                f"Ranked by cross-validated {self.selection_metric} (mean ± 95% CI half-width); "
                "the other metrics are on the holdout; PASS means every floor was met.",
                "",
                *_markdown_table(self.rows()),
                "",
                *(gate_part if gate else []),
                self.champion_line(),
                "",
                f"MLflow UI: {self.ui_url}",
                "",
            ]
        )

    def as_dict(self) -> dict[str, Any]:
        promotion = self.promotion
        return {
            "session_id": self.session_id,
            "selection_metric": self.selection_metric,
            "ui_url": self.ui_url,
            "results": [json.loads(result.to_json()) for result in self.results],
            "gate": self.gate_family_line(),
            "champion": {
                "spec": promotion.winner.spec if promotion.winner else None,
                "model_name": promotion.model_name or None,
                "version": promotion.version or None,
                "alias": promotion.alias or None,
                "reason": promotion.reason,
                "checks": [check.to_dict() for check in promotion.champion_checks],
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


def _mean_ci(result: ExperimentResult, metric: str) -> str:
    mean = result.metrics.get(f"cv_{metric}_mean")
    if mean is None:
        return "-"
    half = (result.metrics[f"cv_{metric}_ci_high"] - result.metrics[f"cv_{metric}_ci_low"]) / 2
    return f"{mean:.4f} ± {half:.4f}"


def _gate_cell(result: ExperimentResult) -> str:
    if not result.gate:
        return "-"
    if result.gate_failed:
        return "FAIL"
    verdicts = sorted({check["verdict"] for check in result.gate})
    return ", ".join(verdicts)


def _check_row(label: str, check: GateCheck) -> list[str]:
    def number(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    return [
        label,
        check.metric,
        check.reference,
        number(check.baseline, ".4f"),
        number(check.current, ".4f"),
        number(check.delta, "+.4f"),
        number(check.mdd, ".4f"),
        number(check.p_value, ".4g"),
        number(check.p_adjusted, ".4g"),
        f"{check.test} / {check.correction}" if check.tested else "-",
        check.verdict.value,
    ]


def _text_table(rows: list[list[str]]) -> list[str]:
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def _markdown_table(rows: list[list[str]]) -> list[str]:
    if not rows:
        return []
    table = [f"| {' | '.join(rows[0])} |", f"|{'---|' * len(rows[0])}"]
    return table + [f"| {' | '.join(row)} |" for row in rows[1:]]
