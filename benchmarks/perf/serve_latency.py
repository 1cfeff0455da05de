"""Latency and throughput of our API against ``mlflow models serve``, on one model version.

Run: ``python benchmarks/perf/serve_latency.py [--tracking-uri URI] [--spec NAME]``

Without ``--tracking-uri`` it starts an embedded MLflow server on a temporary folder,
trains ``--spec`` and registers it as ``titanic_survival``. It then serves that same
version with ``titanic-bench serve`` and with ``mlflow models serve --env-manager
local``, and measures, alternating between the two in rounds so that a busy machine
hurts both alike:

- single-row ``/predict`` latency (p50, p99) over sequential keep-alive requests;
- rows per second of a 1,000-row batch;
- whether both give the same predictions.

Everything listens on 127.0.0.1; every process started here is stopped (its whole
process group) before the script exits.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from titanic_bench.data.loading import INPUT_COLUMNS, load_titanic
from titanic_bench.stack.server import EmbeddedServer, free_port, stop_process_group

MODEL_NAME = "titanic_survival"
READY_SECONDS = 180.0
API_FIELDS = ("Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Name", "Embarked", "Cabin", "Ticket")


@dataclass
class Target:
    """One server under test and how to talk to it."""

    label: str
    port: int
    single_path: str
    batch_path: str
    latencies_ms: list[float] = field(default_factory=list)
    batch_ms: list[float] = field(default_factory=list)
    single_labels: dict[int, int] = field(default_factory=dict)
    batch_labels: list[int] = field(default_factory=list)


class Client:
    """A keep-alive HTTP/1.1 connection: the cheapest client, so the server dominates."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, path: str, body: bytes) -> tuple[float, Any]:
        """(ms from sending to the last byte of the answer, the parsed answer).

        Parsing the answer is the client's work, so it is left out of the time, as
        load generators such as wrk do; our answers are longer (three fields a row).
        """
        started = time.perf_counter()
        self.connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        payload = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"POST {path} answered {response.status}: {payload[:300]!r}")
        return elapsed, json.loads(payload)

    def close(self) -> None:
        self.connection.close()


def api_row(record: dict[str, Any]) -> dict[str, Any]:
    return {name.lower(): _clean(record[name]) for name in API_FIELDS}


def mlflow_frame(records: list[dict[str, Any]]) -> dict[str, Any]:
    data = [[_clean(record[column]) for column in INPUT_COLUMNS] for record in records]
    return {"dataframe_split": {"columns": list(INPUT_COLUMNS), "data": data}}


def _clean(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value.item() if hasattr(value, "item") else value


def labels(target: Target, answer: Any) -> list[int]:
    """Predicted classes from either server's answer."""
    if target.label == "ours":
        items = answer if isinstance(answer, list) else [answer]
        return [int(item["survived"]) for item in items]
    return [int(value) for value in answer["predictions"]]


def single_body(target: Target, record: dict[str, Any]) -> bytes:
    body = api_row(record) if target.label == "ours" else mlflow_frame([record])
    return json.dumps(body).encode()


def batch_body(target: Target, records: list[dict[str, Any]]) -> bytes:
    body = [api_row(r) for r in records] if target.label == "ours" else mlflow_frame(records)
    return json.dumps(body).encode()


def measure_singles(target: Target, records: list[dict[str, Any]], start: int, count: int) -> None:
    """``count`` sequential single-row requests on one keep-alive connection."""
    client = Client(target.port)
    try:
        for i in range(start, start + count):
            index = i % len(records)
            elapsed, answer = client.post(target.single_path, single_body(target, records[index]))
            target.latencies_ms.append(elapsed)
            target.single_labels[index] = labels(target, answer)[0]
    finally:
        client.close()


def measure_batches(target: Target, records: list[dict[str, Any]], repeats: int) -> None:
    body = batch_body(target, records)
    client = Client(target.port)
    try:
        for _ in range(repeats):
            elapsed, answer = client.post(target.batch_path, body)
            target.batch_ms.append(elapsed)
            target.batch_labels = labels(target, answer)
    finally:
        client.close()


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def summary(target: Target, batch_rows: int) -> dict[str, Any]:
    batch_median = statistics.median(target.batch_ms)
    return {
        "requests": len(target.latencies_ms),
        "p50_ms": round(percentile(target.latencies_ms, 50), 3),
        "p99_ms": round(percentile(target.latencies_ms, 99), 3),
        "mean_ms": round(statistics.fmean(target.latencies_ms), 3),
        "batch_rows": batch_rows,
        "batch_repeats": len(target.batch_ms),
        "batch_median_ms": round(batch_median, 3),
        "batch_rows_per_second": round(batch_rows / (batch_median / 1000), 1),
    }


def run_rounds(targets: list[Target], records: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Alternate the servers in rounds, so a burst of load elsewhere falls on both."""
    batch = [records[i % len(records)] for i in range(args.batch_rows)]
    for target in targets:  # warm-up: first requests pay for lazy imports and caches
        measure_singles(target, records, 0, 50)
        measure_batches(target, batch, 2)
        target.latencies_ms.clear()
        target.batch_ms.clear()
    per_round = args.requests // args.rounds
    for number in range(args.rounds):
        for target in targets if number % 2 == 0 else reversed(targets):
            measure_singles(target, records, number * per_round, per_round)
            measure_batches(target, batch, max(1, args.batch_repeats // args.rounds))


@contextmanager
def process_group(
    command: list[str], env: dict[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A server in its own session; on exit TERM (then KILL) its whole process group."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop_process_group(process.pid, leader=process)


def wait_ready(target: Target, probe: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Poll ``probe`` until the server answers 200 with a model; fail with its log's tail."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"{target.label} exited ({process.returncode}); {log_path}:\n{_tail(log_path)}"
            )
        try:
            connection = http.client.HTTPConnection("127.0.0.1", target.port, timeout=2)
            connection.request("GET", probe)
            response = connection.getresponse()
            body = response.read()
            connection.close()
            if response.status == 200 and b'"model_loaded":false' not in body:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"{target.label} not ready after {READY_SECONDS:.0f} s; {log_path}:\n{_tail(log_path)}"
    )


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def register_model(tracking_uri: str, spec_name: str) -> str:
    """Train ``spec_name`` and register it the way a benchmark session does; return the version."""
    import mlflow
    from mlflow.models import infer_signature

    from titanic_bench.ml.evaluation import fit_and_score, holdout_split
    from titanic_bench.ml.experiments import EXPERIMENTS
    from titanic_bench.ml.trusted_types import trusted_types_for

    spec = next(spec for spec in EXPERIMENTS if spec.name == spec_name)
    data = load_titanic()
    model = fit_and_score(spec, holdout_split(data)).model
    example = data.features.head(5)
    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run(run_name=f"serve latency {spec.name}"):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(example, model.predict(example)),
            pip_requirements=["scikit-learn"],
            skops_trusted_types=trusted_types_for(model),
        )
    version = mlflow.register_model(info.model_uri, MODEL_NAME, tags={"spec": spec.name})
    return str(version.version)


def champion_version(tracking_uri: str) -> str:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    return str(client.get_model_version_by_alias(MODEL_NAME, "champion").version)


def serve_both(stack: ExitStack, tracking_uri: str, version: str, folder: Path) -> list[Target]:
    """Start our API and ``mlflow models serve`` on the same version; wait for both."""
    uri = f"models:/{MODEL_NAME}/{version}"
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",  # it execs a bare `uvicorn`
        # MLflow 3.17 refuses to load even a skops model without this; ours needs no such switch.
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
    }
    ours = Target("ours", free_port(), "/predict", "/predict/batch")
    theirs = Target("mlflow models serve", free_port(), "/invocations", "/invocations")
    commands = {
        ours.label: [
            sys.executable,
            "-m",
            "titanic_bench.serving.app",
            "--tracking-uri",
            tracking_uri,
            "--model-uri",
            uri,
            "--port",
            str(ours.port),
        ],
        theirs.label: [
            str(Path(bin_dir) / "mlflow"),
            "models",
            "serve",
            "-m",
            uri,
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(theirs.port),
        ],
    }
    started = []
    for target, probe in ((ours, "/health"), (theirs, "/ping")):
        log_path = folder / f"{target.port}.log"
        started.append(
            (target, probe, stack.enter_context(process_group(commands[target.label], env, log_path)))
        )
    for target, probe, process in started:
        wait_ready(target, probe, process, folder / f"{target.port}.log")
    return [ours, theirs]


def parity(ours: Target, theirs: Target) -> dict[str, Any]:
    rows = sorted(set(ours.single_labels) & set(theirs.single_labels))
    single_diff = [i for i in rows if ours.single_labels[i] != theirs.single_labels[i]]
    batch_diff = [
        i for i, (a, b) in enumerate(zip(ours.batch_labels, theirs.batch_labels, strict=True)) if a != b
    ]
    return {
        "single_rows_compared": len(rows),
        "single_rows_differing": single_diff,
        "batch_rows_compared": len(ours.batch_labels),
        "batch_rows_differing": batch_diff,
        "same_predictions": not single_diff and not batch_diff,
    }


def report(results: dict[str, Any]) -> str:
    ours, theirs = results["ours"], results["mlflow_models_serve"]
    lines = [
        f"{'':<22}{'p50 ms':>9}{'p99 ms':>9}{'batch ms':>10}{'rows/s':>10}",
        *(
            f"{label:<22}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['batch_median_ms']:>10.2f}"
            f"{r['batch_rows_per_second']:>10.0f}"
            for label, r in (("titanic-bench serve", ours), ("mlflow models serve", theirs))
        ),
        f"p50 ratio (ours/theirs): {ours['p50_ms'] / theirs['p50_ms']:.2f}   "
        f"throughput ratio: {ours['batch_rows_per_second'] / theirs['batch_rows_per_second']:.2f}x",
        f"same predictions: {results['parity']['same_predictions']}",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tracking-uri", help="serve titanic_survival@champion from here (default: a temp server)"
    )
    parser.add_argument(
        "--version", help="model version to serve (default: the champion, or the one trained)"
    )
    parser.add_argument("--spec", default="logistic_regression", help="spec to train without --tracking-uri")
    parser.add_argument("--requests", type=int, default=2000, help="single-row requests per server")
    parser.add_argument("--rounds", type=int, default=4, help="alternations between the servers")
    parser.add_argument("--batch-rows", type=int, default=1000, help="rows per batch request")
    parser.add_argument("--batch-repeats", type=int, default=20, help="batch requests per server")
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).with_suffix(".json"), help="JSON results file"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    records = load_titanic().features.to_dict(orient="records")
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="serve-latency-")))
        tracking_uri, spec = args.tracking_uri, args.spec
        if tracking_uri is None:
            server = EmbeddedServer(
                f"sqlite:///{folder / 'mlflow.db'}", folder / "artifacts", folder / "mlflow.log"
            )
            stack.callback(server.stop)
            server.start().wait_ready()
            tracking_uri, version = server.url, register_model(server.url, spec)
        else:
            version, spec = args.version or champion_version(tracking_uri), "(registered)"
        targets = serve_both(stack, tracking_uri, version, folder)
        run_rounds(targets, records, args)
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
        "model": {"name": MODEL_NAME, "version": version, "spec": spec},
        "ours": summary(targets[0], args.batch_rows),
        "mlflow_models_serve": summary(targets[1], args.batch_rows),
        "parity": parity(*targets),
    }
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(report(results))
    print(f"written to {args.output}")
    return 0 if results["parity"]["same_predictions"] else 1


if __name__ == "__main__":
    sys.exit(main())
