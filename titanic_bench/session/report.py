"""The leaderboard: one table, rendered for the terminal, Markdown and JSON."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanic_bench.errors import ReportError
from titanic_bench.gates.checks import GateCheck
from titanic_bench.ml.metrics import METRIC_NAMES
from titanic_bench.paths import LEADERBOARD_JSON, LEADERBOARD_MARKDOWN, LEADERBOARD_PICTURE
from titanic_bench.session.promotion import Promotion
from titanic_bench.session.results import ExperimentResult, ranked
from titanic_bench.tracking.links import SessionLinks

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Holdout columns; the cross-validated ones (mean ± 95% CI half-width) come first.
COLUMNS: tuple[str, ...] = (*METRIC_NAMES, "fit_seconds")
CV_COLUMNS: tuple[str, ...] = ("roc_auc", "accuracy")
#: The folder of the session run's artifacts the picture goes to.
PICTURE_FOLDER = "plots"
#: The terminal's default width: the compact tables and the prose fit in it.
TERMINAL_WIDTH = 120
#: Columns of the compact gate table, by header; headers the gate rows lack are left out.
COMPACT_GATE_COLUMNS: tuple[str, ...] = (
    "experiment",
    "metric",
    "reference",
    "delta",
    "mdd",
    "p-value",
    "adj. p",
    "verdict",
)
#: Characters of a run id the compact table shows (the full ids are in the Markdown and JSON).
SHORT_RUN_ID = 8


def cv_header(metric: str) -> str:
    return f"cv_{metric} (95% CI)"


def compact_columns(selection_metric: str) -> dict[str, str]:
    """The compact leaderboard's columns: header in :meth:`Leaderboard.rows` -> shorter header."""
    return {
        "experiment": "experiment",
        cv_header(selection_metric): f"cv {selection_metric} ± CI",
        cv_header("accuracy"): "cv accuracy ± CI",
        "accuracy": "holdout acc",
        "floors": "floors",
        "gate": "gate",
        "run_id": "run",
    }


@dataclass(frozen=True)
class Leaderboard:
    session_id: str
    selection_metric: str
    results: tuple[ExperimentResult, ...]
    promotion: Promotion
    ui_url: str
    links: SessionLinks | None = None
    #: Said before the links when the server stops with the session: how to reopen the UI.
    reopen: str = ""

    @classmethod
    def build(
        cls,
        session_id: str,
        selection_metric: str,
        results: Sequence[ExperimentResult],
        promotion: Promotion,
        ui_url: str,
        links: SessionLinks | None = None,
        reopen: str = "",
    ) -> Leaderboard:
        order = tuple(ranked(results, selection_metric))
        return cls(session_id, selection_metric, order, promotion, ui_url, links, reopen)

    @property
    def cv_columns(self) -> tuple[str, ...]:
        """The cross-validated columns: the selection metric's first, then :data:`CV_COLUMNS`."""
        return tuple(dict.fromkeys((self.selection_metric, *CV_COLUMNS)))

    def rows(self) -> list[list[str]]:
        cv_headers = [cv_header(column) for column in self.cv_columns]
        header = ["experiment", *cv_headers, *COLUMNS, "floors", "gate", "run_id"]
        body = [
            [
                r.spec,
                *(_mean_ci(r, c) for c in self.cv_columns),
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

    def compact_rows(self) -> list[list[str]]:
        """The leaderboard's chosen columns under short headers, run ids cut short."""
        columns = compact_columns(self.selection_metric)
        rows = _columns(self.rows(), columns)
        run = rows[0].index("run")
        return [rows[0], *([*row[:run], row[run][:SHORT_RUN_ID], *row[run + 1 :]] for row in rows[1:])]

    def text(self, wide: bool = False) -> str:
        """The terminal report: compact tables fitting :data:`TERMINAL_WIDTH`, or every column."""
        gate = self.gate_rows()
        if gate and not wide:
            gate = _columns(gate, {name: name for name in COMPACT_GATE_COLUMNS})
        width = 10_000 if wide else TERMINAL_WIDTH
        title = "Regression gate (corrected resampled t-test on matched folds):"
        gate_lines = ["", title, _wrapped(self.gate_family_line(), width), *_text_table(gate)]
        prose = [self.champion_line(), *(self.link_lines())]
        return "\n".join(
            [
                *_text_table(self.rows() if wide else self.compact_rows()),
                *(gate_lines if gate else []),
                "",
                *(_wrapped(line, width) for line in prose),
            ]
        )

    def link_lines(self) -> list[str]:
        """Where to see the runs: the links (URLs are never wrapped), and how to reopen the UI."""
        if self.links is None:
            return [f"MLflow UI: {self.ui_url}"] if self.ui_url else []
        intro = self.reopen.splitlines() if self.reopen else ["MLflow UI:"]
        return [*intro, *(f"  {label}: {url}" for label, url in self.links.labelled())]

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
                *self.link_lines(),
                "",
            ]
        )

    def as_dict(self) -> dict[str, Any]:
        promotion = self.promotion
        return {
            "session_id": self.session_id,
            "selection_metric": self.selection_metric,
            "ui_url": self.ui_url,
            "links": self.links.to_dict() if self.links else None,
            "reopen": self.reopen,
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
        return {LEADERBOARD_MARKDOWN: self.markdown(), LEADERBOARD_JSON: json.dumps(self.as_dict(), indent=2)}

    def append_summary(self, path: Path, source: str) -> None:
        """Append the Markdown leaderboard to a CI's summary file (``source`` named it)."""
        try:
            with path.open("a", encoding="utf-8") as summary:
                summary.write(self.markdown() + "\n")
        except OSError as error:
            raise ReportError(
                f"the summary file {path} ({source}) cannot be written ({error.strerror or error}): "
                "pass a writable path, or unset it."
            ) from None

    def figure(self) -> Figure:
        """The picture: each run's CV mean and interval per CV column, floors, the champion."""
        from titanic_bench.ml.figures import BoardEntry, leaderboard_figure

        promotion = self.promotion
        champion = promotion.winner.spec if promotion.winner and promotion.version else None
        entries = [
            BoardEntry(
                r.spec,
                {c: _interval(r, c) for c in self.cv_columns if f"cv_{c}_mean" in r.metrics},
                {c: floor for c, floor in r.floors.items() if c in self.cv_columns},
                r.spec == champion,
            )
            for r in self.results
        ]
        return leaderboard_figure(entries, self.cv_columns)

    def write(self, folder: Path) -> list[Path]:
        """Write the Markdown, the JSON and, when there are results, the picture."""
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name, text in self.files().items():
            path = folder / name
            path.write_text(text)
            written.append(path)
        if self.results:
            self.figure().savefig(folder / LEADERBOARD_PICTURE)
            written.append(folder / LEADERBOARD_PICTURE)
        return written


def _mean_ci(result: ExperimentResult, metric: str) -> str:
    mean = result.metrics.get(f"cv_{metric}_mean")
    if mean is None:
        return "-"
    half = (result.metrics[f"cv_{metric}_ci_high"] - result.metrics[f"cv_{metric}_ci_low"]) / 2
    return f"{mean:.4f} ± {half:.4f}"


def finished_line(result: ExperimentResult, selection_metric: str) -> str:
    """The one line ``-v`` prints when an experiment's run is logged."""
    gate = _gate_cell(result)
    return (
        f"titanic-bench: {result.spec} finished: cv {selection_metric} {_mean_ci(result, selection_metric)}, "
        f"holdout accuracy {result.metrics.get('accuracy', float('nan')):.4f}, "
        f"floors {'PASS' if result.passed else 'FAIL'}"
        + ("" if gate == "-" else f", gate {gate}")
        + f", run {result.run_id[:SHORT_RUN_ID]}"
    )


def _interval(result: ExperimentResult, metric: str) -> tuple[float, float, float]:
    values = result.metrics
    return values[f"cv_{metric}_mean"], values[f"cv_{metric}_ci_low"], values[f"cv_{metric}_ci_high"]


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


def _columns(rows: list[list[str]], chosen: Mapping[str, str]) -> list[list[str]]:
    """The ``chosen`` columns of ``rows`` (by header, renamed to its value); absent ones skipped."""
    header = rows[0]
    picked = [(header.index(name), shown) for name, shown in chosen.items() if name in header]
    return [[shown for _, shown in picked], *([row[i] for i, _ in picked] for row in rows[1:])]


def _wrapped(line: str, width: int) -> str:
    # URLs and indented commands stay whole, to be clicked or copied.
    if len(line) <= width or "://" in line or line.startswith(" "):
        return line
    return textwrap.fill(line, width=width, subsequent_indent="  ", break_on_hyphens=False)


def _markdown_table(rows: list[list[str]]) -> list[str]:
    if not rows:
        return []
    table = [f"| {' | '.join(rows[0])} |", f"|{'---|' * len(rows[0])}"]
    return table + [f"| {' | '.join(row)} |" for row in rows[1:]]
