"""The committed baseline file: each experiment's metrics, fold scores, data and versions.

Written by ``--bench-update-baseline`` at the end of a session that passed, read by the
gate in every worker. Entries of experiments the session did not run are kept, so a
session over a subset of the benchmarks updates only that subset.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from titanic_bench.errors import BaselineError
from titanic_bench.gates.checks import Reference
from titanic_bench.session.results import ExperimentResult

FORMAT = 1
LABEL = "baseline"


def resolve_path(path: str, rootpath: Path) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else rootpath / candidate


def read_baseline(path: Path) -> dict[str, Any]:
    """The parsed file; raise BaselineError when it is missing or not a baseline."""
    try:
        content = json.loads(path.read_text())
    except FileNotFoundError:
        raise BaselineError(
            f"the baseline file {path} does not exist; write it with a session run with "
            "--bench-update-baseline, or point --bench-baseline at it."
        ) from None
    except (OSError, ValueError) as error:
        raise BaselineError(f"the baseline file {path} is not readable JSON: {error}.") from None
    found = content.get("format") if isinstance(content, dict) else None
    if found != FORMAT:
        raise BaselineError(
            f"the baseline file {path} has format {found}, expected {FORMAT}; "
            "regenerate it with --bench-update-baseline."
        )
    return dict(content)


def reference_for(baseline: Mapping[str, Any], spec_name: str) -> Reference | None:
    """The gate's reference for one experiment, or None when the baseline lacks it."""
    entry = baseline.get("experiments", {}).get(spec_name)
    if entry is None:
        return None
    return Reference(LABEL, entry["data_digest"], entry["cv_plan"], entry["fold_scores"])


def entry(result: ExperimentResult) -> dict[str, Any]:
    """What the baseline keeps of one result (timings excluded: they are not reproducible)."""
    return {
        "data_digest": result.data_digest,
        "cv_plan": result.cv_plan,
        "params": result.params,
        "run_id": result.run_id,
        "metrics": {
            name: value for name, value in sorted(result.metrics.items()) if not name.endswith("_seconds")
        },
        "fold_scores": result.fold_scores,
    }


def write_baseline(
    path: Path, results: Sequence[ExperimentResult], environment: Mapping[str, Any], session_id: str
) -> Path:
    """Merge ``results`` into the file at ``path`` (created if missing) and return it."""
    try:
        existing = read_baseline(path).get("experiments", {})
    except BaselineError:
        existing = {}
    experiments = {**existing, **{result.spec: entry(result) for result in results}}
    content = {
        "format": FORMAT,
        "written_at": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}",
        "session_id": session_id,
        "environment": {key: environment.get(key) for key in ("python", "platform", "packages", "git")},
        "experiments": dict(sorted(experiments.items())),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=1) + "\n")
    return path
