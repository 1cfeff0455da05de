"""The end of a session: pick the winner, compare it with the champion, promote it.

The champion is compared on the same folds: its logged fold scores when its run saw
the same data and CV plan, else its model, loaded with skops and the allow-list
only, is cross-validated again on this session's folds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from titanic_bench.data.loading import TitanicData
from titanic_bench.gates.checks import GateCheck, GatePolicy, GateTest, Reference, gate_against
from titanic_bench.ml.crossval import cross_validate_model
from titanic_bench.options import CHAMPION_ALIAS, BenchSettings
from titanic_bench.session.results import ExperimentResult
from titanic_bench.tracking.client import Tracker
from titanic_bench.tracking.registry import (
    champion_version,
    load_champion,
    logged_reference,
    move_alias,
    register,
    select_winner,
    version_tags,
)

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion


@dataclass(frozen=True)
class Promotion:
    """What happened to the champion alias this session."""

    winner: ExperimentResult | None
    reason: str
    model_name: str = ""
    version: str = ""
    alias: str = ""
    #: The winner against the current champion on the same folds; empty without a champion.
    champion_checks: tuple[GateCheck, ...] = ()
    #: The session did not run to its end (``reason`` says how), so nothing was promoted.
    cut_short: bool = False

    @property
    def blocked(self) -> bool:
        """The winner is significantly worse than the champion, so the alias stays."""
        return any(check.failed for check in self.champion_checks)


def promote_winner(
    tracker: Tracker,
    results: Sequence[ExperimentResult],
    settings: BenchSettings,
    session_id: str,
    data: TitanicData,
    lock: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> Promotion:
    """Register the winner and move the alias, unless it is worse than the champion.

    The comparison is slow (it may cross-validate the champion), so it runs first; then,
    holding ``lock`` (which serialises promotions where the backend allows), the alias is
    read again, and if another session moved it meanwhile the winner is compared with
    that new champion before the move.
    """
    metric = settings.selection_metric
    winner, reason = select_winner(results, metric)
    if winner is None:
        return Promotion(winner=None, reason=reason)
    if not settings.promote:
        return Promotion(winner=winner, reason="promotion is off (--bench-no-promote)")
    name = settings.registered_model
    champion = champion_version(tracker, name, CHAMPION_ALIAS)
    checks = champion_checks(tracker, winner, champion, settings, data)
    if any(check.failed for check in checks):
        return _blocked(winner, checks)
    with lock():
        latest = champion_version(tracker, name, CHAMPION_ALIAS)
        if _number(latest) != _number(champion):
            checks = champion_checks(tracker, winner, latest, settings, data)
            reason += f"; the champion moved to version {_number(latest)} during the session, compared again"
            if any(check.failed for check in checks):
                return _blocked(winner, checks)
        version = register(tracker, winner.model_uri, name, version_tags(winner, session_id, metric))
        move_alias(tracker, name, CHAMPION_ALIAS, version)
    compared = ", not significantly worse than the champion" if checks else ""
    return Promotion(winner, f"{winner.spec} won: {reason}{compared}", name, version, CHAMPION_ALIAS, checks)


def _number(version: ModelVersion | None) -> str | None:
    return None if version is None else str(version.version)


def _blocked(winner: ExperimentResult, checks: tuple[GateCheck, ...]) -> Promotion:
    worse = "; ".join(check.line() for check in checks if check.failed)
    return Promotion(
        winner=winner,
        reason=f"{winner.spec} is significantly worse than the current champion, which keeps "
        f"@{CHAMPION_ALIAS}: {worse}",
        champion_checks=checks,
    )


def champion_policy(settings: BenchSettings) -> GatePolicy:
    """How the winner is compared with the champion: the regression test on the selection
    metric and the gated ones, decided on its own.

    The session's family correction and a non-inferiority test are for the baseline gate:
    non-inferiority at the default margin fails almost every unchanged comparison, so as
    the champion rule it would keep the alias where it is for good.
    """
    policy = settings.policy.including(settings.selection_metric).alone()
    return replace(policy, test=GateTest.REGRESSION)


def champion_checks(
    tracker: Tracker,
    winner: ExperimentResult,
    champion: ModelVersion | None,
    settings: BenchSettings,
    data: TitanicData,
) -> tuple[GateCheck, ...]:
    """The winner gated against ``champion`` on the same folds; () without a champion."""
    if champion is None:
        return ()
    plan, policy = settings.cv, champion_policy(settings)
    label = f"champion v{champion.version}"
    reference = logged_reference(tracker, champion, label, policy.metrics)
    if reference is None or reference.data_digest != winner.data_digest or reference.cv_plan != plan.label:
        model = load_champion(tracker, champion)
        cv = cross_validate_model(model, data.features, data.target, plan)
        reference = Reference(f"{label} (re-cross-validated)", winner.data_digest, plan.label, cv.fold_scores)
    ratio = plan.test_train_ratio
    return tuple(
        gate_against(winner.fold_scores, winner.data_digest, winner.cv_plan, ratio, reference, policy)
    )
