"""Measure the harness against the seed-style script, on one server, in one run.

1. Start-up of the embedded stack (fresh and already-migrated SQLite): seconds from
   spawn to a 200 on /health, and the server's memory (RSS of its process group).
2. Against one embedded server: the naive script (benchmarks/perf/naive_seed_script.py)
   and `pytest benchmarks -n 4` restricted to the four seed experiments, each as a
   subprocess timed end to end, alternating, REPEATS times each. The harness runs with its
   default 5x3 cross-validation (work the script does not do) and with the smallest, 2x1.

Writes benchmarks/perf/results/harness_vs_script.json and prints a table.
Run from the repository root: python benchmarks/perf/harness_vs_script.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from titanic_bench.stack import EmbeddedServer, group_rss_mb

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "perf" / "results" / "harness_vs_script.json"
SEED_SPECS = ("random_forest_baseline", "random_forest_tuned", "logistic_regression", "svm")
REPEATS = int(os.environ.get("PERF_REPEATS", "3"))


class PeakRss(threading.Thread):
    """Samples a process group's RSS every 0.2 s and keeps the peak."""

    def __init__(self, pgid: int) -> None:
        super().__init__(daemon=True)
        self.pgid, self.peak, self.stopped = pgid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            self.peak = max(self.peak, group_rss_mb(self.pgid))


def start_server(folder: Path) -> tuple[EmbeddedServer, float]:
    server = EmbeddedServer(f"sqlite:///{folder / 'mlflow.db'}", folder / "artifacts", folder / "server.log")
    started = time.perf_counter()
    server.start().wait_ready()
    return server, time.perf_counter() - started


def startup(folder: Path) -> dict[str, float]:
    times = {}
    for label in ("fresh", "migrated"):
        server, seconds = start_server(folder)
        times[label] = seconds
        server.stop()
    return times


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        startups = [startup(folder / f"s{i}") for i in range(REPEATS)]
        server, _ = start_server(folder / "shared")
        assert server.process is not None
        sampler = PeakRss(server.process.pid)
        sampler.start()
        home = str(folder / "home")
        env = {**os.environ, "MLFLOW_TRACKING_URI": server.url, "TITANIC_BENCH_HOME": home}
        harness_cmd = [
            *(sys.executable, "-m", "pytest", "benchmarks", "-n", "4", "-q", "-p", "no:cacheprovider"),
            *("-k", " or ".join(SEED_SPECS)),
        ]
        script_cmd = [sys.executable, str(ROOT / "benchmarks" / "perf" / "naive_seed_script.py")]
        script, harness, harness_min_cv = [], [], []
        try:
            for _ in range(REPEATS):
                script.append(timed(script_cmd, env))
                harness.append(timed(harness_cmd, env))
                # Its own champion: compared with a 5x3 champion, it would re-fit that one.
                small = ["--bench-cv", "2x1", "--bench-registered-model", "titanic_survival_cv2x1"]
                harness_min_cv.append(timed([*harness_cmd, *small], env))
        finally:
            sampler.stopped.set()
            server.stop()
    report = {
        "repeats": REPEATS,
        "cpu_count": os.cpu_count(),
        "stack_ready_seconds_fresh": [s["fresh"] for s in startups],
        "stack_ready_seconds_migrated": [s["migrated"] for s in startups],
        "server_peak_rss_mb": round(sampler.peak, 1),
        "script_seconds": script,
        "harness_seconds": harness,
        "harness_cv_2x1_seconds": harness_min_cv,
        "ratio_harness_to_script": statistics.median(harness) / statistics.median(script),
        "ratio_harness_cv_2x1_to_script": statistics.median(harness_min_cv) / statistics.median(script),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    med = statistics.median
    print(f"stack ready (median of {REPEATS}): fresh {med(report['stack_ready_seconds_fresh']):.1f} s, "
          f"migrated {med(report['stack_ready_seconds_migrated']):.1f} s; server peak RSS "
          f"{report['server_peak_rss_mb']:.0f} MB")  # fmt: skip
    print(f"seed-style script: {med(script):.1f} s")
    print(f"harness -n 4, 5x3 CV: {med(harness):.1f} s (ratio {report['ratio_harness_to_script']:.2f})")
    ratio_min = report["ratio_harness_cv_2x1_to_script"]
    print(f"harness -n 4, 2x1 CV: {med(harness_min_cv):.1f} s (ratio {ratio_min:.2f})")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
