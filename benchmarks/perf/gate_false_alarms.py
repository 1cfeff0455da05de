"""How often does the regression gate fail a change that cannot be a regression?

For every experiment whose result depends on ``random_state``, cross-validate it with
the committed seed and with N other seeds, and gate each re-seeded run against the
committed one on the same folds, exactly as ``--bench-gate`` does. A new seed is no
regression, so every failure is a false alarm. Also counts how often p < alpha alone
(without the minimal effect size) would have fired, to show what each criterion buys.

    python benchmarks/perf/gate_false_alarms.py --seeds 10 [--cv 5x3] [--jobs 1]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from titanic_bench.data.loading import load_titanic
from titanic_bench.gates.checks import GatePolicy, Reference, gate_against
from titanic_bench.ml.crossval import CVPlan, CVResult, cross_validate_spec
from titanic_bench.ml.experiments import EXPERIMENTS, ExperimentSpec
from titanic_bench.ml.metrics import DEFAULT_GATE_METRICS

#: Experiments whose random_state changes the model (LogisticRegression/lbfgs and the
#: SVC here are deterministic, so re-seeding them proves nothing).
STOCHASTIC = ("RandomForestClassifier", "GradientBoostingClassifier")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="re-seeded runs per experiment (default 10)")
    parser.add_argument("--cv", default="5x3", help="FOLDSxREPEATS (default 5x3, the session default)")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--min-effect", type=float, default=0.01)
    parser.add_argument("--jobs", type=int, default=1, help="processes for the folds (default 1)")
    parser.add_argument("--output", help="also write the results as JSON here")
    return parser.parse_args()


def timed_cv(spec: ExperimentSpec, data: Any, plan: CVPlan, jobs: int) -> tuple[CVResult, float]:
    started = time.perf_counter()
    result = cross_validate_spec(spec, data.features, data.target, plan, jobs)
    return result, time.perf_counter() - started


def measure(
    spec: ExperimentSpec, data: Any, plan: CVPlan, policy: GatePolicy, args: argparse.Namespace
) -> dict[str, Any]:
    committed, seconds = timed_cv(spec, data, plan, args.jobs)
    reference = Reference("committed seed", data.digest, plan.label, committed.fold_scores)
    seeds = [seed for seed in range(args.seeds + 1) if seed != spec.params["random_state"]][: args.seeds]
    runs = []
    for seed in seeds:
        variant = replace(spec, params={**spec.params, "random_state": seed})
        cv, _ = timed_cv(variant, data, plan, args.jobs)
        checks = gate_against(
            cv.fold_scores, data.digest, plan.label, plan.test_train_ratio, reference, policy
        )
        runs.append(
            {
                "seed": seed,
                "alarm": any(c.failed for c in checks),
                "significant": [c.metric for c in checks if (c.p_value or 1.0) < policy.alpha],
                "checks": {c.metric: {"delta": c.delta, "p": c.p_value} for c in checks},
            }
        )
    return {"spec": spec.name, "cv_seconds": seconds, "runs": runs}


def main() -> None:
    args = parse_args()
    folds, repeats = (int(part) for part in args.cv.lower().split("x"))
    plan, policy = CVPlan(folds, repeats), GatePolicy(DEFAULT_GATE_METRICS, args.alpha, args.min_effect)
    data = load_titanic()
    specs = [spec for spec in EXPERIMENTS if spec.model_type in STOCHASTIC]
    results = [measure(spec, data, plan, policy, args) for spec in specs]
    runs = [run for result in results for run in result["runs"]]
    alarms = sum(run["alarm"] for run in runs)
    tests = len(runs) * len(policy.metrics)
    significant = sum(len(run["significant"]) for run in runs)
    for result in results:
        deltas = " ".join(f"{run['checks']['roc_auc']['delta']:+.4f}" for run in result["runs"])
        spec_alarms = sum(run["alarm"] for run in result["runs"])
        print(
            f"{result['spec']:<30} CV {plan.label}: {result['cv_seconds']:.1f} s; "
            f"alarms {spec_alarms}/{len(result['runs'])}; roc_auc deltas {deltas}"
        )
    print(
        f"\nfalse alarms: {alarms}/{len(runs)} re-seeded runs = {alarms / len(runs):.1%} "
        f"(alpha {policy.alpha:g}, minimal effect {policy.min_effect:g}, metrics {', '.join(policy.metrics)})"
    )
    print(f"p < alpha alone: {significant}/{tests} one-sided tests = {significant / tests:.1%}")
    if args.output:
        summary = {
            "date": f"{datetime.now(UTC):%Y-%m-%d}",
            "cv": plan.label,
            "alpha": policy.alpha,
            "min_effect": policy.min_effect,
            "false_alarms": alarms,
            "runs": len(runs),
            "significant_tests": significant,
            "tests": tests,
            "experiments": results,
        }
        with open(args.output, "w") as handle:
            json.dump(summary, handle, indent=1)


if __name__ == "__main__":
    main()
