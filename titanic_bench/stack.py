"""Start, connect to and stop the MLflow tracking server a session logs to.

Three modes: ``embedded`` starts MLflow's server here (:mod:`titanic_bench.server_main`),
``connect`` uses a running server, ``compose`` brings up the docker compose stack and
connects to it. Only the controller process calls this module; workers get the URI it
settles on.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from titanic_bench.backend import mask_secrets, mask_uri, normalize_backend_uri

#: MLflow's job runner (7 huey consumers, ~2.5 GB) serves features we do not use.
LEAN_SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
#: The launcher, like ``mlflow server``, reads the backend store URI from this variable.
BACKEND_URI_ENV = "MLFLOW_BACKEND_STORE_URI"
#: ``mlflow server``'s work in one process (see its docstring for the measured why).
LAUNCHER_MODULE = "titanic_bench.server_main"
STOP_GRACE_SECONDS = 8.0
COMPOSE_SERVICES = ("postgres", "mlflow")


class StackError(Exception):
    """The tracking stack could not be started or reached; the message says why."""


@dataclass(frozen=True)
class Retry:
    """How long to keep trying a server: ``attempts`` tries, backoff doubling to ``cap``."""

    attempts: int = 12
    first_delay: float = 0.5
    cap: float = 8.0

    def delays(self) -> list[float]:
        return [min(self.first_delay * 2**i, self.cap) for i in range(self.attempts - 1)]


def health_url(tracking_uri: str) -> str:
    return tracking_uri.rstrip("/") + "/health"


def probe(tracking_uri: str, timeout: float = 2.0) -> str | None:
    """None when the server answers /health with 200, else what went wrong."""
    try:
        with urllib.request.urlopen(health_url(tracking_uri), timeout=timeout) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code} {error.reason}"
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return f"{type(reason).__name__}: {reason}"


def wait_for_server(
    tracking_uri: str, retry: Retry = Retry(), sleep: Callable[[float], None] = time.sleep
) -> None:
    """Return once the server is healthy; raise StackError after ``retry`` runs out."""
    error = probe(tracking_uri)
    for delay in retry.delays():
        if error is None:
            return
        sleep(delay)
        error = probe(tracking_uri)
    if error is not None:
        raise StackError(
            f"the MLflow tracking server at {mask_uri(tracking_uri)} is unreachable after "
            f"{retry.attempts} attempts over {sum(retry.delays()):.0f} s; last error: {error}. "
            "Start it, fix MLFLOW_TRACKING_URI / --bench-tracking-uri, or drop them to let "
            "the harness start an embedded server."
        )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedServer:
    """MLflow's tracking server as a child in its own process group, lean: one process,
    one worker, no job runner, artifacts proxied to ``artifacts_dir``."""

    backend_uri: str
    artifacts_dir: Path
    log_path: Path
    host: str = "127.0.0.1"
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        if self.port == 0:
            self.port = free_port(self.host)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return server_command(self.artifacts_dir, self.host, self.port)

    def environment(self) -> dict[str, str]:
        """The server's environment: lean, and the backend URI kept off the command line."""
        # A password in argv is visible to every user through ps; the environment is not.
        return {**os.environ, **LEAN_SERVER_ENV, BACKEND_URI_ENV: normalize_backend_uri(self.backend_uri)}

    def start(self) -> EmbeddedServer:
        """Spawn the server and return at once; :meth:`wait_ready` waits for it."""
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.environment(), start_new_session=True,
            )  # fmt: skip
        return self

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Poll /health until 200; fail fast with the log's tail if the server dies."""
        deadline = time.monotonic() + timeout
        while (error := probe(self.url, timeout=1.0)) is not None:
            if self.process is not None and self.process.poll() is not None:
                raise StackError(
                    f"the embedded MLflow server (backend {mask_uri(self.backend_uri)}) exited "
                    f"with code {self.process.returncode} before it was ready. Its log "
                    f"{self.log_path} ends:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise StackError(
                    f"the embedded MLflow server at {self.url} was not ready after {timeout:.0f} s "
                    f"(last error: {error}); see {self.log_path}."
                )
            time.sleep(0.1)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """TERM the whole process group, wait, then KILL what is left."""
        if self.process is None:
            return
        stop_process_group(self.process.pid, grace)
        self.process.wait()
        self.process = None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        # A log line may hold a URI anywhere in it (a traceback, a driver error).
        return mask_secrets("\n".join(text[-lines:]))


def server_command(artifacts_dir: Path, host: str, port: int) -> list[str]:
    """The launcher's command line, equivalent to ``mlflow server --serve-artifacts
    --artifacts-destination DIR --host H --port P --workers 1`` but one process, not two;
    the backend comes from :data:`BACKEND_URI_ENV`."""
    return [
        sys.executable, "-m", LAUNCHER_MODULE,
        "--artifacts-destination", str(artifacts_dir), "--host", host, "--port", str(port),
    ]  # fmt: skip


def stop_process_group(pgid: int, grace: float = STOP_GRACE_SECONDS) -> None:
    """TERM the group, wait up to ``grace`` seconds for all of it, then KILL the rest."""
    if not _signal_group(pgid, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not group_members(pgid):
            return
        time.sleep(0.1)
    _signal_group(pgid, signal.SIGKILL)


@dataclass(frozen=True)
class LiveProcess:
    pid: int
    pgid: int
    command_line: str  # its argv joined by spaces


def live_processes() -> Iterator[LiveProcess]:
    """Live (non-zombie) processes, read from /proc; one that exits while being read is skipped."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            argv = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if fields[0] != "Z":
            command_line = argv.replace(b"\0", b" ").decode(errors="replace").strip()
            yield LiveProcess(int(entry.name), int(fields[2]), command_line)


def group_members(pgid: int) -> list[int]:
    """Live pids whose process group is ``pgid``."""
    return [process.pid for process in live_processes() if process.pgid == pgid]


def group_rss_mb(pgid: int) -> float:
    """Summed resident memory of the group's live processes, in MiB (for the perf scripts)."""
    total_kb = 0
    for pid in group_members(pgid):
        try:
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        total_kb += sum(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return total_kb / 1024


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def compose_up(project_dir: Path, services: Sequence[str] = COMPOSE_SERVICES) -> str:
    """``docker compose up -d --wait`` the tracking services; return the server's URL."""
    try:
        check = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True
        )
    except FileNotFoundError:
        check = subprocess.CompletedProcess([], 127, "", "the docker command is not installed")
    if check.returncode != 0:
        reason = (check.stderr or check.stdout).strip().splitlines()
        raise StackError(
            "compose mode needs a running Docker engine, but `docker info` failed: "
            f"{reason[-1] if reason else 'no output'}. Start Docker, or use "
            "--bench-mode embedded (the default) to run without it."
        )
    result = subprocess.run(
        ["docker", "compose", "up", "-d", "--wait", *services],
        cwd=project_dir, capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        raise StackError(
            f"`docker compose up -d --wait {' '.join(services)}` failed in {project_dir}:\n"
            f"{result.stderr.strip()[-2000:]}"
        )
    return f"http://localhost:{published_port(project_dir, 'mlflow', 5000, 'MLFLOW_PORT')}"


def published_port(project_dir: Path, service: str, port: int, env: str) -> str:
    """The host port compose published ``service``'s ``port`` on.

    Asked of compose itself, since the port variable ``env`` may be set in .env, which
    this process never reads; the environment, then ``port``, are only fallbacks.
    """
    result = subprocess.run(
        ["docker", "compose", "port", service, str(port)], cwd=project_dir, capture_output=True, text=True
    )
    # "0.0.0.0:5050", possibly followed by an IPv6 line "[::]:5050".
    lines = result.stdout.split() if result.returncode == 0 else []
    published = lines[0].rsplit(":", 1)[-1] if lines else ""
    return published if published.isdigit() else os.environ.get(env, str(port))
