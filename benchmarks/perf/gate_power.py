"""What the regression gate catches, and how often it cries wolf.

Three steps, each writing JSON under ``benchmarks/perf/results/``:

``null``
    S re-seeded "sessions": session r cross-validates every experiment on new splits
    (CV seed 1000 + r) twice, as the committed spec (the baseline) and re-seeded
    (random_state 2000 + r, the current), and gates the current against the baseline
    exactly as a session does. Nothing changed, so every failure is a false alarm.
``power``
    Degradations of known size, each gated against the committed spec on the same new
    splits in R replicates (new splits, new model seeds and new label flips each time):
    label flips of a fraction of the training labels and one dropped feature (logistic
    regression), and shrunk forests (random_forest_baseline). Each true drop comes from
    a separate large repeated CV (5x20, CV seed 777). The same at ``--cv 10x5``.
``report``
    False alarms per session and per test with Clopper-Pearson 95% intervals for each
    correction, detection rates against the true drop, the plot ``docs/gate_power.png``.

Everything runs in this process with the harness's own functions (one joblib job: the
machine is shared).

    python benchmarks/perf/gate_power.py null --sessions 20
    python benchmarks/perf/gate_power.py power --replicates 20
    python benchmarks/perf/gate_power.py power --cv 10x5 --replicates 10 --only flips,shrink
    python benchmarks/perf/gate_power.py report
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from titanic_bench.data.loading import TitanicData, load_titanic
from titanic_bench.gates.checks import (
    Correction,
    GateCheck,
    GatePolicy,
    GateTest,
    Reference,
    gate_against,
)
from titanic_bench.gates.family import decide_family
from titanic_bench.ml.crossval import CVPlan, CVResult, cross_validate_model
from titanic_bench.ml.experiments import EXPERIMENTS, ExperimentSpec
from titanic_bench.ml.metrics import DEFAULT_GATE_METRICS

RESULTS = Path(__file__).parent / "results"
PLOT = Path(__file__).parents[2] / "docs" / "gate_power.png"
NULL_SPLIT_SEED, NULL_MODEL_SEED, POWER_MODEL_SEED, TRUTH_SPLIT_SEED = 1000, 2000, 3000, 777
TRUTH_PLAN = (5, 20)
#: Estimators whose random_state changes nothing (lbfgs, the SVC): re-seeding them is a no-op.
DETERMINISTIC = ("LogisticRegression", "CalibratedClassifierCV")
SPECS = {spec.name: spec for spec in EXPERIMENTS}


class FlippedLabels(ClassifierMixin, BaseEstimator):
    """``estimator`` trained on labels of which ``fraction`` are flipped (test folds untouched)."""

    def __init__(self, estimator: Any = None, fraction: float = 0.1, seed: int = 0) -> None:
        self.estimator = estimator
        self.fraction = fraction
        self.seed = seed

    def fit(self, features: pd.DataFrame, target: pd.Series) -> FlippedLabels:
        labels = np.asarray(target).copy()
        chosen = np.random.default_rng(self.seed).random(labels.size) < self.fraction
        labels[chosen] = 1 - labels[chosen]
        self.model_ = clone(self.estimator).fit(features, labels)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model_.predict(features))

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model_.predict_proba(features))


class WithoutFeature(ClassifierMixin, BaseEstimator):
    """``estimator`` with ``column`` held at one constant value: the feature is dropped."""

    def __init__(self, estimator: Any = None, column: str = "Fare") -> None:
        self.estimator = estimator
        self.column = column

    def _blank(self, features: pd.DataFrame) -> pd.DataFrame:
        return features.assign(**{self.column: self.constant_})

    def fit(self, features: pd.DataFrame, target: pd.Series) -> WithoutFeature:
        self.constant_ = features[self.column].mode().iloc[0]
        self.model_ = clone(self.estimator).fit(self._blank(features), target)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model_.predict(self._blank(features)))

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model_.predict_proba(self._blank(features)))


#: A degradation: its family, its label, the spec it degrades, and model(replicate seed).
Variant = tuple[str, str, str, Callable[[int], Any]]


def variants() -> list[Variant]:
    logistic, forest = SPECS["logistic_regression"], SPECS["random_forest_baseline"]
    found: list[Variant] = []
    for fraction in (0.02, 0.05, 0.1, 0.2, 0.3, 0.4):
        found.append(("flips", f"flip {fraction:.0%}", logistic.name, _flipped(logistic, fraction)))
    for column in ("Parch", "SibSp", "Fare", "Age", "Pclass", "Sex"):
        found.append(("drop", f"drop {column}", logistic.name, _without(logistic, column)))
    for trees in (30, 10, 5, 3, 2):
        found.append(("shrink", f"forest {trees} trees", forest.name, _shrunk(forest, trees)))
    return found


def _flipped(spec: ExperimentSpec, fraction: float) -> Callable[[int], Any]:
    return lambda seed: FlippedLabels(spec.build(), fraction, seed)


def _without(spec: ExperimentSpec, column: str) -> Callable[[int], Any]:
    return lambda seed: WithoutFeature(spec.build(), column)


def _shrunk(spec: ExperimentSpec, trees: int) -> Callable[[int], Any]:
    return lambda seed: reseeded(spec, seed, n_estimators=trees).build()


def reseeded(spec: ExperimentSpec, seed: int, **params: Any) -> ExperimentSpec:
    return replace(spec, params={**spec.params, "random_state": seed, **params})


def cv(model: Any, data: TitanicData, plan: CVPlan) -> CVResult:
    return cross_validate_model(model, data.features, data.target, plan, n_jobs=1)


def raw_checks(current: CVResult, baseline: CVResult, data: TitanicData, test: GateTest) -> list[GateCheck]:
    """The gate's checks decided alone; the report applies each correction to the family."""
    policy = GatePolicy(DEFAULT_GATE_METRICS, correction=Correction.NONE, test=test)
    reference = Reference("baseline", data.digest, baseline.plan.label, baseline.fold_scores)
    plan = current.plan
    return gate_against(
        current.fold_scores, data.digest, plan.label, plan.test_train_ratio, reference, policy
    )


def null_session(data: TitanicData, plan: CVPlan, index: int) -> dict[str, Any]:
    splits = replace(plan, seed=NULL_SPLIT_SEED + index)
    tests: dict[str, Any] = {}
    for spec in EXPERIMENTS:
        baseline = cv(spec.build(), data, splits)
        if spec.model_type in DETERMINISTIC and index > 0:
            current = baseline  # shown identical in session 0 below
        else:
            current = cv(reseeded(spec, NULL_MODEL_SEED + index).build(), data, splits)
        if spec.model_type in DETERMINISTIC:
            assert current.fold_scores == baseline.fold_scores, f"{spec.name} is not deterministic"
        tests[spec.name] = {
            test.value: [check.to_dict() for check in raw_checks(current, baseline, data, test)]
            for test in GateTest
        }
    return {"session": index, "cv": splits.label, "experiments": tests}


def power_replicate(data: TitanicData, plan: CVPlan, index: int, chosen: list[Variant]) -> dict[str, Any]:
    splits = replace(plan, seed=NULL_SPLIT_SEED + index)
    baselines = {name: cv(SPECS[name].build(), data, splits) for name in {v[2] for v in chosen}}
    found: dict[str, Any] = {}
    for _, label, name, build in chosen:
        current = cv(build(POWER_MODEL_SEED + index), data, splits)
        found[label] = {
            test.value: [c.to_dict() for c in raw_checks(current, baselines[name], data, test)]
            for test in GateTest
        }
    return {"replicate": index, "cv": splits.label, "variants": found}


def true_drops(data: TitanicData, chosen: list[Variant]) -> dict[str, dict[str, float]]:
    """Each variant's mean drop over a large repeated CV (5x20), paired with its spec."""
    plan = CVPlan(*TRUTH_PLAN, seed=TRUTH_SPLIT_SEED)
    baselines = {name: cv(SPECS[name].build(), data, plan) for name in {v[2] for v in chosen}}
    drops: dict[str, dict[str, float]] = {}
    for _, label, name, build in chosen:
        current = cv(build(TRUTH_SPLIT_SEED), data, plan)
        drops[label] = {
            metric: float(np.mean(baselines[name].fold_scores[metric]) - np.mean(current.fold_scores[metric]))
            for metric in DEFAULT_GATE_METRICS
        }
        print(f"  true drop {label}: {drops[label]}", flush=True)
    return drops


def write(path: Path, content: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=1) + "\n")


def header(plan: CVPlan) -> dict[str, Any]:
    policy = GatePolicy()
    return {
        "date": f"{datetime.now(UTC):%Y-%m-%d}",
        "cv": f"{plan.folds}x{plan.repeats}",
        "alpha": policy.alpha,
        "min_effect": policy.min_effect,
        "metrics": list(DEFAULT_GATE_METRICS),
        "machine": "shared 2-core machine, other test runs at the same time; one joblib job",
    }


def run_null(args: argparse.Namespace) -> None:
    data, plan = load_titanic(), parse_plan(args.cv)
    suffix = f"_from{args.first}" if args.first else ""
    path = RESULTS / f"gate_power_null_{args.cv}{suffix}.json"
    content: dict[str, Any] = {**header(plan), "sessions": []}
    for index in range(args.first, args.first + args.sessions):
        started = time.perf_counter()
        content["sessions"].append(null_session(data, plan, index))
        content["seconds_per_session"] = time.perf_counter() - started
        write(path, content)
        print(f"null session {index}: {time.perf_counter() - started:.0f} s", flush=True)


def run_power(args: argparse.Namespace) -> None:
    data, plan = load_titanic(), parse_plan(args.cv)
    chosen = [v for v in variants() if v[0] in args.only.split(",")]
    if args.variants:
        chosen = [v for v in chosen if v[1] in args.variants.split(",")]
    path = RESULTS / f"gate_power_power_{args.cv}.json"
    content: dict[str, Any] = {**header(plan), "variants": [v[:3] for v in chosen], "replicates": []}
    if args.truth:
        content["true_drop"] = true_drops(data, chosen)
        write(path, content)
    for index in range(args.replicates):
        started = time.perf_counter()
        content["replicates"].append(power_replicate(data, plan, index, chosen))
        write(path, content)
        print(f"power replicate {index}: {time.perf_counter() - started:.0f} s", flush=True)


def parse_plan(text: str) -> CVPlan:
    folds, repeats = (int(part) for part in text.lower().split("x"))
    return CVPlan(folds, repeats)


# --- report -----------------------------------------------------------------------------


def clopper_pearson(count: int, total: int) -> tuple[float, float]:
    from scipy.stats import binomtest

    interval = binomtest(count, total).proportion_ci(confidence_level=0.95, method="exact")
    return float(interval.low), float(interval.high)


def rate(count: int, total: int) -> dict[str, Any]:
    low, high = clopper_pearson(count, total) if total else (float("nan"), float("nan"))
    return {"count": count, "total": total, "rate": count / total if total else None, "ci95": [low, high]}


def family(checks: dict[str, list[dict[str, Any]]]) -> list[GateCheck]:
    return [GateCheck.from_dict(c) for name in sorted(checks) for c in checks[name]]


def decided(checks: list[GateCheck], correction: Correction, test: GateTest) -> list[GateCheck]:
    return decide_family(checks, GatePolicy(DEFAULT_GATE_METRICS, correction=correction, test=test))


def null_summary(null: dict[str, Any]) -> dict[str, Any]:
    sessions = null["sessions"]
    summary: dict[str, Any] = {"sessions": len(sessions), "cv": null["cv"]}
    for test in GateTest:
        for correction in Correction:
            alarms = per_test = tests = 0
            for session in sessions:
                checks = decided(
                    family({n: e[test.value] for n, e in session["experiments"].items()}), correction, test
                )
                failed = sum(check.failed for check in checks)
                alarms += failed > 0
                per_test += failed
                tests += len(checks)
            summary[f"{test.value}/{correction.value}"] = {
                "per_session": rate(alarms, len(sessions)),
                "per_test": rate(per_test, tests),
            }
    p_values = [
        c["p_value"]
        for s in sessions
        for e in s["experiments"].values()
        for c in e[GateTest.REGRESSION.value]
        if c["p_value"] is not None
    ]
    summary["raw_p_below_alpha"] = rate(sum(p < GatePolicy().alpha for p in p_values), len(p_values))
    summary["smallest_raw_p"] = min(p_values)
    # Per experiment: the deterministic ones are identical on both sides (variance 0).
    summary["mdd"] = {
        name: mdd_summary([c for s in sessions for c in s["experiments"][name][GateTest.REGRESSION.value]])
        for name in sessions[0]["experiments"]
    }
    return summary


def mdd_summary(checks: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    for metric in DEFAULT_GATE_METRICS:
        values = [c["mdd"] for c in checks if c["metric"] == metric and c["mdd"] is not None]
        if values:
            found[metric] = {
                "median": float(np.median(values)),
                "min": float(np.min(values)),
                "max": float(np.max(values)),
            }
    return found


def in_family(
    replicate_checks: list[dict[str, Any]], spec: str, null_session_: dict[str, Any] | None, test: GateTest
) -> list[GateCheck]:
    """The degraded experiment's checks first, then the other experiments' null checks."""
    others = (
        {}
        if null_session_ is None
        else {n: e[test.value] for n, e in null_session_["experiments"].items() if n != spec}
    )
    return [GateCheck.from_dict(c) for c in replicate_checks] + family(others)


def power_summary(power: dict[str, Any], null: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows = []
    sessions = null["sessions"] if null else []
    for kind, label, spec in power["variants"]:
        for metric_index, metric in enumerate(DEFAULT_GATE_METRICS):
            row: dict[str, Any] = {
                "kind": kind,
                "variant": label,
                "spec": spec,
                "metric": metric,
                "cv": power["cv"],
            }
            row["true_drop"] = power.get("true_drop", {}).get(label, {}).get(metric)
            replicates = power["replicates"]
            observed = [r["variants"][label][GateTest.REGRESSION.value][metric_index] for r in replicates]
            row["mean_observed_drop"] = -float(np.mean([c["delta"] for c in observed]))
            row["median_mdd"] = float(np.median([c["mdd"] for c in observed]))
            for test in GateTest:
                for correction in Correction:
                    if correction is not Correction.NONE and not sessions:
                        continue
                    hits = 0
                    for index, replicate in enumerate(replicates):
                        null_session_ = sessions[index % len(sessions)] if sessions else None
                        checks = in_family(
                            replicate["variants"][label][test.value], spec, null_session_, test
                        )
                        checks = decided(checks, correction, test)
                        hits += checks[metric_index].failed
                    row[f"{test.value}/{correction.value}"] = rate(hits, len(replicates))
            rows.append(row)
    return rows


def caught_at(rows: list[dict[str, Any]], metric: str, key: str, level: float = 0.8) -> float | None:
    """The smallest true drop from which every larger one was detected at ``level`` or more."""
    points = sorted(
        (r["true_drop"], r[key]["rate"])
        for r in rows
        if r["metric"] == metric and r.get(key) and r["true_drop"] is not None
    )
    for index, (drop, _) in enumerate(points):
        if all(hit >= level for _, hit in points[index:]):
            return float(drop)
    return None


def fitted_at(rows: list[dict[str, Any]], metric: str, key: str, level: float = 0.8) -> float | None:
    """The true drop at which a logistic fit of detection on the true drop reaches ``level``."""
    from sklearn.linear_model import LogisticRegression

    drops, outcomes = [], []
    for row in rows:
        if row["metric"] == metric and row.get(key) and row["true_drop"] is not None:
            hits, total = row[key]["count"], row[key]["total"]
            drops += [row["true_drop"]] * total
            outcomes += [1] * hits + [0] * (total - hits)
    if len(set(outcomes)) < 2:
        return None
    fit = LogisticRegression(C=1e6).fit(np.asarray(drops).reshape(-1, 1) * 100, outcomes)
    slope, intercept = float(fit.coef_[0][0]), float(fit.intercept_[0])
    return None if slope <= 0 else (np.log(level / (1 - level)) - intercept) / slope / 100


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4.2))
    for axis, metric in zip(figure.subplots(1, 2), DEFAULT_GATE_METRICS, strict=True):
        for cv_label, key, marker in (
            ("5x3", "regression/none", "o"),
            ("5x3", "regression/holm", "s"),
            ("5x3", "regression/bh", "^"),
            ("10x5", "regression/none", "D"),
        ):
            points = sorted(
                (r["true_drop"], r[key]["rate"])
                for r in rows
                if r["metric"] == metric and r["cv"] == cv_label and r.get(key) and r["true_drop"] is not None
            )
            if points:
                drops, hits = zip(*points, strict=True)
                name = f"{cv_label} {key.split('/')[1]}"
                axis.plot(drops, hits, marker=marker, linestyle="", label=name, alpha=0.7)
        axis.axhline(0.8, color="grey", linestyle=":", linewidth=1)
        axis.axvline(GatePolicy().min_effect, color="grey", linestyle="--", linewidth=1)
        axis.set_xscale("symlog", linthresh=0.01)
        axis.set_xlabel(f"true drop of {metric} (5x20 repeated CV)")
        axis.set_ylabel("detection rate")
        axis.set_title(f"{metric}: alpha 0.05, min effect 0.01")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def merged_null(cv_label: str) -> dict[str, Any] | None:
    """The null sessions of every part file (``null --first``), each session once, in order."""
    parts = [_read(path) for path in sorted(RESULTS.glob(f"gate_power_null_{cv_label}*.json"))]
    if not parts:
        return None
    sessions = {session["session"]: session for part in parts for session in part["sessions"]}
    return {**parts[0], "sessions": [sessions[index] for index in sorted(sessions)]}


def run_report(args: argparse.Namespace) -> None:
    null = merged_null("5x3")
    summary: dict[str, Any] = {"date": f"{datetime.now(UTC):%Y-%m-%d}"}
    if null:
        summary["null"] = null_summary(null)
    rows: list[dict[str, Any]] = []
    for cv_label in ("5x3", "10x5"):
        power = _read(RESULTS / f"gate_power_power_{cv_label}.json")
        if power and power["replicates"]:
            if "true_drop" not in power and cv_label != "5x3":
                power["true_drop"] = _read(RESULTS / "gate_power_power_5x3.json")["true_drop"]
            rows += power_summary(power, null)
    summary["power"] = rows
    summary["caught_with_80_percent"] = {
        f"{cv}/{metric}/{key}": {
            "every_larger_drop": caught_at([r for r in rows if r["cv"] == cv], metric, key),
            "logistic_fit": fitted_at([r for r in rows if r["cv"] == cv], metric, key),
        }
        for cv in ("5x3", "10x5")
        for metric in DEFAULT_GATE_METRICS
        for key in ("regression/none", "regression/holm", "regression/bh")
    }
    write(RESULTS / "gate_power.json", summary)
    if rows:
        plot(rows, PLOT)
    print(json.dumps({k: v for k, v in summary.items() if k != "power"}, indent=1))
    print(markdown(summary))
    for row in rows:
        rates = " ".join(
            f"{key.split('/')[1]} {row[key]['rate']:.2f}"
            for key in ("regression/none", "regression/holm", "regression/bh")
            if key in row
        )
        true = float("nan") if row["true_drop"] is None else row["true_drop"]
        print(
            f"{row['cv']:5} {row['variant']:<18} {row['metric']:<9} true {true:+.4f} "
            f"observed {row['mean_observed_drop']:+.4f} mdd {row['median_mdd']:.4f} | {rates} | "
            f"NI pass {1 - row['noninferiority/none']['rate']:.2f}"
        )


def markdown(summary: dict[str, Any]) -> str:
    """The tables docs/gates.md shows, ready to paste."""

    def share(entry: dict[str, Any]) -> str:
        low, high = entry["ci95"]
        return f"{entry['count']}/{entry['total']} ({low:.1%}-{high:.1%})"

    lines = [
        "| test / correction | sessions with a false alarm (95% CI) | tests with a false alarm (95% CI) |"
    ]
    lines.append("|---|---|---|")
    null = summary.get("null", {})
    for test in GateTest:
        for correction in Correction:
            entry = null.get(f"{test.value}/{correction.value}")
            if entry:
                sessions, tests = share(entry["per_session"]), share(entry["per_test"])
                lines.append(f"| {test.value} / {correction.value} | {sessions} | {tests} |")
    lines += [
        "",
        "| degradation | metric | true drop | median mdd | none | bh | holm | 10x5 none | 10x5 bh |",
    ]
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = summary["power"]
    wide = {(r["variant"], r["metric"]): r for r in rows if r["cv"] == "10x5"}
    for row in (r for r in rows if r["cv"] == "5x3"):
        other = wide.get((row["variant"], row["metric"]), {})

        def cell(source: dict[str, Any], key: str) -> str:
            entry = source.get(key)
            return "" if not entry else f"{entry['rate']:.0%}"

        true = "" if row["true_drop"] is None else f"{row['true_drop']:+.4f}"
        lines.append(
            f"| {row['variant']} | {row['metric']} | {true} | {row['median_mdd']:.4f} | "
            f"{cell(row, 'regression/none')} | {cell(row, 'regression/bh')} | "
            f"{cell(row, 'regression/holm')} | "
            f"{cell(other, 'regression/none')} | {cell(other, 'regression/bh')} |"
        )
    return "\n".join(lines)


def _read(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    steps = parser.add_subparsers(dest="step", required=True)
    null = steps.add_parser("null", help="re-seeded sessions: false alarms")
    null.add_argument("--sessions", type=int, default=20)
    null.add_argument("--first", type=int, default=0, help="index of the first session (to run in parts)")
    null.add_argument("--cv", default="5x3")
    power = steps.add_parser("power", help="injected degradations: detection rates")
    power.add_argument("--replicates", type=int, default=20)
    power.add_argument("--cv", default="5x3")
    power.add_argument("--only", default="flips,drop,shrink", help="variant families to run")
    power.add_argument("--variants", default="", help="comma-separated labels, e.g. 'flip 30%%,drop Age'")
    power.add_argument("--no-truth", dest="truth", action="store_false", help="skip the 5x20 true drops")
    steps.add_parser("report", help="summarise the JSON files and draw the plot")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    {"null": run_null, "power": run_power, "report": run_report}[args.step](args)


if __name__ == "__main__":
    main()
