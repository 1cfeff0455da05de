"""Whether a session ran to its end: the only kind that may promote or write the baseline.

Ctrl-C and SIGTERM end pytest INTERRUPTED; ``-x`` and ``--maxfail`` stop it before every
selected test ran; a crashed xdist worker loses the test it was running (xdist reports
it as failed and goes on). A best run among the ones that happened to finish is not
the session's winner, so each of these cuts promotion off.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest


@dataclass
class Progress:
    """The tests the session selected, the ones that finished, and what cut it short."""

    selected: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)
    crashed: list[str] = field(default_factory=list)

    def select(self, nodeids: Iterable[str]) -> None:
        """The selected tests, once collection (or, under xdist, a worker's) has finished."""
        if not self.selected:
            self.selected = set(nodeids)

    def report(self, report: pytest.TestReport) -> None:
        if report.when == "teardown" or (report.when == "setup" and not report.passed):
            self.finished.add(report.nodeid)

    def cut_short(self, exitstatus: int) -> str:
        """Why the session did not run to its end, or "" when it did."""
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            return "the session was interrupted"
        if self.crashed:
            return f"an xdist worker crashed while running {', '.join(sorted(self.crashed))}"
        missing = self.selected - self.finished
        if missing:
            ran = len(self.selected) - len(missing)
            return f"the session stopped before all its experiments ran ({ran} of {len(self.selected)} ran)"
        return ""
