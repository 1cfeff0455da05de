"""The 24-experiment grid run five ways on this machine, side by side in one run.

1. ``bare``: benchmarks/perf/grid/bare_grid.py, the same holdout fits and 5x1
   cross-validation over 2 joblib processes, nothing else: the floor.
2. ``serial``: ``pytest GRID -p no:xdist`` (folds over 2 processes, as without xdist).
3. ``xdist_2``: ``pytest GRID -n 2``.
4. ``dask_local_2``: ``pytest GRID --bench-dask local:2`` (the session starts and stops
   its LocalCluster).
5. ``dask_warm``: a long-lived cluster from Dask's own commands (``dask scheduler``,
   ``dask worker --nworkers 2 --nthreads 1``) on 127.0.0.1; one session warms it, the
   second is measured. ``dask_warm_server`` is a third session on the same cluster that
   also connects to a server already running, so it starts no MLflow server either.

Every harness session starts its own embedded server (except the last), runs 5x1 CV and
logs everything it always logs. Wall clock and CPU seconds of the whole process tree
(plus the long-lived cluster's processes over the session), and the peak resident
memory of the scheduler and of the workers, sampled every 0.2 s. Results go to
benchmarks/perf/results/dask_grid.json. The machine is shared: run the variants
together, and read the numbers as orders of magnitude.
Run from the repository root: python benchmarks/perf/dask_grid.py [ROUNDS]
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import psutil

from titanic_bench.paths import state_paths
from titanic_bench.stack.server import free_port, start_embedded, stop_process_group

ROOT = Path(__file__).resolve().parents[2]
GRID = ROOT / "benchmarks" / "perf" / "grid" / "grid_experiments.py"
BARE = ROOT / "benchmarks" / "perf" / "grid" / "bare_grid.py"
RESULTS = ROOT / "benchmarks" / "perf" / "results" / "dask_grid.json"
DASK = str(Path(sys.executable).with_name("dask"))
CV = ("--bench-cv", "5x1")
EXPERIMENTS = 24


def rss_mb(processes: list[psutil.Process]) -> float:
    total = 0
    for process in processes:
        with suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += process.memory_info().rss
    return total / 2**20


def is_worker(process: psutil.Process) -> bool:
    """A LocalCluster worker (multiprocessing spawn), an xdist worker (execnet) or a dask worker."""
    with suppress(psutil.NoSuchProcess, psutil.AccessDenied):
        line = " ".join(process.cmdline())
        return "spawn_main" in line or "exec(eval(sys.stdin.readline()))" in line
    return False


class Sampler(threading.Thread):
    """Peak RSS of the controller (in a LocalCluster, also its scheduler), the workers, and
    an outside scheduler, every 0.2 s."""

    def __init__(self, root: int, scheduler: int | None, outside_workers: int | None) -> None:
        super().__init__(daemon=True)
        self.root, self.scheduler, self.outside = root, scheduler, outside_workers
        self.peaks = {"controller_mb": 0.0, "workers_mb": 0.0, "scheduler_mb": 0.0}
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            with suppress(psutil.NoSuchProcess):
                root = psutil.Process(self.root)
                workers = [p for p in root.children(recursive=True) if is_worker(p)]
                if self.outside is not None:
                    outside = psutil.Process(self.outside)
                    workers += [p for p in outside.children(recursive=True) if is_worker(p)]
                self.peak("controller_mb", rss_mb([root]))
                self.peak("workers_mb", rss_mb(workers))
                if self.scheduler is not None:
                    self.peak("scheduler_mb", rss_mb([psutil.Process(self.scheduler)]))

    def peak(self, key: str, value: float) -> None:
        self.peaks[key] = max(self.peaks[key], round(value, 1))


def cpu_of(pids: list[int]) -> float:
    """CPU seconds of these processes and their children so far."""
    total = 0.0
    for pid in pids:
        with suppress(psutil.NoSuchProcess):
            root = psutil.Process(pid)
            for process in [root, *root.children(recursive=True)]:
                with suppress(psutil.NoSuchProcess):
                    times = process.cpu_times()
                    total += times.user + times.system
    return total


def timed(
    command: list[str], env: dict[str, str], scheduler: int | None = None, workers: int | None = None
) -> dict[str, Any]:
    """Wall and CPU seconds of ``command`` (its tree, plus the outside cluster's processes)."""
    outside = [pid for pid in (scheduler, workers) if pid is not None]
    before, outside_before = resource.getrusage(resource.RUSAGE_CHILDREN), cpu_of(outside)
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sampler = Sampler(process.pid, scheduler, workers)
    sampler.start()
    output, _ = process.communicate()
    wall = time.perf_counter() - started
    sampler.stopped.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu += cpu_of(outside) - outside_before
    if process.returncode != 0:
        log = RESULTS.with_name("dask_grid_failure.log")
        log.write_bytes(output)
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}); its whole output: {log}")
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), **sampler.peaks}


def session_env(home: Path) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("TITANIC_BENCH_", "MLFLOW_"))
    }
    return {**env, "TITANIC_BENCH_HOME": str(home)}


def pytest_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", str(GRID), "-q", "-p", "no:cacheprovider", *CV, *args]


def start_cluster(port: int) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], **quiet
    )
    time.sleep(3)
    worker = subprocess.Popen(
        [
            DASK,
            "worker",
            address,
            "--nworkers",
            "2",
            "--nthreads",
            "1",
            "--no-dashboard",
            "--host",
            "127.0.0.1",
        ],
        **quiet,
    )
    return scheduler, worker


def one_round(folder: Path) -> dict[str, Any]:
    measured: dict[str, Any] = {}
    bare_env = session_env(folder / "bare")
    measured["bare"] = timed([sys.executable, str(BARE), "2"], bare_env)
    measured["serial"] = timed(pytest_command("-p", "no:xdist"), session_env(folder / "serial"))
    measured["xdist_2"] = timed(pytest_command("-n", "2"), session_env(folder / "xdist"))
    measured["dask_local_2"] = timed(pytest_command("--bench-dask", "local:2"), session_env(folder / "local"))
    port = free_port()
    scheduler, worker = start_cluster(port)
    server = None
    try:
        warm = pytest_command("--bench-dask", f"tcp://127.0.0.1:{port}")
        measured["dask_warm_first"] = timed(warm, session_env(folder / "warm"), scheduler.pid, worker.pid)
        measured["dask_warm"] = timed(warm, session_env(folder / "warm"), scheduler.pid, worker.pid)
        server = start_embedded(state_paths(folder / "server"))
        server.wait_ready(timeout=600)
        connect = [*warm, "--bench-tracking-uri", server.url]
        measured["dask_warm_server"] = timed(connect, session_env(folder / "warm"), scheduler.pid, worker.pid)
    finally:
        if server is not None:
            server.stop()
        for process in (worker, scheduler):
            stop_process_group(process.pid, grace=10.0)
            process.wait(timeout=30)
    return measured


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per variant: the rounds, and wall time against bare compute (ratio, per-experiment seconds)."""
    result: dict[str, Any] = {}
    for variant in rounds[0]:
        walls = sorted(r[variant]["wall_s"] for r in rounds)
        wall = walls[len(walls) // 2]
        bare = sorted(r["bare"]["wall_s"] for r in rounds)[len(rounds) // 2]
        result[variant] = {
            "rounds": [r[variant] for r in rounds],
            "median_wall_s": wall,
            "x_bare": round(wall / bare, 2),
            "overhead_per_experiment_s": round((wall - bare) / EXPERIMENTS, 2),
        }
    return result


def main() -> None:
    rounds_wanted = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    with tempfile.TemporaryDirectory() as tmp:
        rounds = [one_round(Path(tmp) / f"round{index}") for index in range(rounds_wanted)]
    report = {
        "experiments": EXPERIMENTS,
        "cv": CV[1],
        "cpu_count": os.cpu_count(),
        "load_average_at_end": [round(value, 1) for value in os.getloadavg()],
        "variants": summary(rounds),
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for name, values in report["variants"].items():
        first = values["rounds"][0]
        print(
            f"{name:18} wall {values['median_wall_s']:7.1f} s  {values['x_bare']:5.2f}x bare  "
            f"cpu {first['cpu_s']:7.1f} s  workers {first['workers_mb']:7.1f} MiB  "
            f"scheduler {first['scheduler_mb']:6.1f} MiB  controller {first['controller_mb']:6.1f} MiB"
        )


if __name__ == "__main__":
    main()
