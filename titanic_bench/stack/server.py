"""Start, reach and stop the MLflow tracking server a session logs to.

``embedded`` runs MLflow's own ``mlflow server`` here, lean (one uvicorn worker, no job
runner), in its own process group; ``connect`` waits for a server that runs elsewhere;
``compose`` (:mod:`titanic_bench.stack.compose`) brings the docker compose stack up and
then connects. Only the controller process, ``titanic-bench ui`` and ``titanic-bench
serve`` call this module; workers get the URI it settles on.
"""

from __future__ import annotations

import base64
import enum
import errno
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn
from urllib.parse import unquote, urlsplit, urlunsplit

import psutil

from titanic_bench.errors import StackError
from titanic_bench.paths import StatePaths
from titanic_bench.stack.artifacts import ARTIFACTS_ENV, check_bucket, check_destination, is_s3, s3_variables
from titanic_bench.stack.backend import (
    BACKEND_ENV,
    check_backend_uri,
    default_backend_uri,
    ensure_database,
    mask_secrets,
    normalize_backend_uri,
)

#: MLflow's job runner (7 huey consumers, ~2.5 GB) serves features we do not use.
LEAN_SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
#: ``mlflow server`` reads ``--backend-store-uri`` from this variable: a password on the
#: command line would show in ``ps`` to every user of the machine, the environment does not.
BACKEND_URI_ENV = "MLFLOW_BACKEND_STORE_URI"
#: ``--registry-store-uri`` defaults to the backend store; set to it anyway, so a registry
#: variable in the user's shell (meant for another server) cannot move ours elsewhere.
REGISTRY_URI_ENV = "MLFLOW_REGISTRY_STORE_URI"
STOP_GRACE_SECONDS = 8.0
#: Free ports tried in all when other programs take the ones chosen before the server binds.
PORT_ATTEMPTS = 3
#: The option that sets the port, named in the error when another program holds it.
DEFAULT_PORT_FLAG = "--bench-port"
#: MLflow and uvicorn log their reason for dying at ERROR level.
_ERROR_LINE = re.compile(r"\bERROR\b")


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


def health_request(tracking_uri: str) -> urllib.request.Request:
    """GET /health with any ``user:password@`` of the URI sent as basic auth.

    urllib would read the userinfo as part of the host name. MLflow's client sends it as
    basic auth (requests does so for URI userinfo, and only with a password), so we do too.
    """
    parts = urlsplit(health_url(tracking_uri))
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    if parts.password is None:
        return urllib.request.Request(bare)
    credentials = f"{unquote(parts.username or '')}:{unquote(parts.password)}".encode()
    token = base64.b64encode(credentials).decode()
    return urllib.request.Request(bare, headers={"Authorization": f"Basic {token}"})


def probe(tracking_uri: str, timeout: float = 2.0) -> str | None:
    """None when the server answers /health with 200, else what went wrong."""
    try:
        with urllib.request.urlopen(health_request(tracking_uri), timeout=timeout) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code} {error.reason}"
    except (urllib.error.URLError, OSError, ValueError) as error:
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
            f"the MLflow tracking server at {mask_secrets(tracking_uri)} is unreachable after "
            f"{retry.attempts} attempts over {sum(retry.delays()):g} s; last error: {mask_secrets(error)}. "
            "Start it, fix MLFLOW_TRACKING_URI / --bench-tracking-uri, or drop them to let "
            "the harness start an embedded server."
        )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """Whether another socket holds ``port``: binding it the way uvicorn does fails."""
    try:
        socket.create_server((host, port)).close()  # SO_REUSEADDR, as uvicorn sets it
    except OSError as error:
        return error.errno == errno.EADDRINUSE
    return False


def group_listens_on(leader: int, port: int) -> bool:
    """Whether the process ``leader`` or one of its descendants listens on ``port``."""
    try:
        process = psutil.Process(leader)
        members = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return False
    for member in members:
        with suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            if any(
                connection.status == psutil.CONN_LISTEN and connection.laddr.port == port
                for connection in member.net_connections(kind="inet")
            ):
                return True
    return False


class Readiness(enum.Enum):
    """Where an embedded server's start stands (see :meth:`EmbeddedServer.readiness`)."""

    STARTING = "starting"
    READY = "ready"  # our server answers /health on the port, from a socket it holds
    TAKEN = "taken"  # another program holds the port
    EXITED = "exited"  # our server died for a reason of its own


@dataclass
class EmbeddedServer:
    """``mlflow server`` as a child in its own process group, lean (one uvicorn worker, no
    job runner), artifacts proxied to ``artifacts_dir``, or to ``artifacts_uri`` when one is
    given (an ``s3://`` bucket, reached with ``s3_environment``). ``port`` 0 picks a free one."""

    backend_uri: str
    artifacts_dir: Path
    log_path: Path
    host: str = "127.0.0.1"
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    port_flag: str = DEFAULT_PORT_FLAG
    artifacts_uri: str | None = None
    #: The S3 variables this server alone gets: the harness keeps them from its workers.
    s3_environment: dict[str, str] = field(default_factory=dict, repr=False)
    #: True when the port is ours to choose, so one another program takes can be swapped.
    any_port: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        if self.port == 0:
            self.port, self.any_port = free_port(self.host), True

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return server_command(self.artifacts_uri or self.artifacts_dir, self.host, self.port)

    def environment(self) -> dict[str, str]:
        """The server's environment: lean, and the store URIs kept off the command line."""
        backend = normalize_backend_uri(self.backend_uri)
        return {
            **os.environ,
            **self.s3_environment,
            **LEAN_SERVER_ENV,
            BACKEND_URI_ENV: backend,
            REGISTRY_URI_ENV: backend,
        }

    def start(self) -> EmbeddedServer:
        """Spawn the server and return at once; :meth:`wait_ready` waits for it."""
        self._claim_port()
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(),
                start_new_session=True,
            )
        return self

    def _claim_port(self) -> None:
        """Before spawning: a port in use is the user's to change, or ours to swap."""
        for _ in range(PORT_ATTEMPTS):
            if not port_in_use(self.host, self.port):
                return
            if not self.any_port:
                break
            self.port = free_port(self.host)
        raise StackError(self._port_taken())

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until *our* server answers /health on its port.

        Another program answering there is never taken for it. When ours exits because
        that program holds the port, a port we chose is swapped for another free one (the
        gap between choosing a port and the server binding it is seconds of imports and
        store set-up), up to :data:`PORT_ATTEMPTS` in all; a port the user chose is an
        error. A server that dies otherwise is reported with the last error of its log.
        """
        deadline, attempts = time.monotonic() + timeout, 1
        while (state := self.readiness()) is not Readiness.READY:
            if state is Readiness.TAKEN and self.any_port and attempts < PORT_ATTEMPTS:
                attempts += 1
                self.stop()  # it has exited: this reaps it
                self.port = free_port(self.host)
                self.start()
                continue
            if state is not Readiness.STARTING or time.monotonic() > deadline:
                self._fail(state, timeout)
            time.sleep(0.1)

    def readiness(self) -> Readiness:
        """Where the start stands. While our server lives it is only waited for, even when
        another program answers: stopped, it could leave its store half migrated; it exits
        by itself once its store is ready and it fails to bind the port."""
        answered = probe(self.url, timeout=1.0) is None
        if self.process is not None and self.process.poll() is None:
            ours = answered and group_listens_on(self.process.pid, self.port)
            return Readiness.READY if ours else Readiness.STARTING
        if answered or port_in_use(self.host, self.port):
            return Readiness.TAKEN
        return Readiness.EXITED

    def _fail(self, state: Readiness, timeout: float) -> NoReturn:
        code = self.process.returncode if self.process is not None else None
        self.stop()
        if state is Readiness.TAKEN:
            raise StackError(self._port_taken())
        if state is Readiness.EXITED:
            raise StackError(
                f"the embedded MLflow server (backend {mask_secrets(self.backend_uri)}) exited with "
                f"code {code} before it was ready: {self.last_error()} (its log: {self.log_path})"
            )
        raise StackError(
            f"the embedded MLflow server at {self.url} was not ready after {timeout:.0f} s; "
            f"see its log {self.log_path}."
        )

    def _port_taken(self) -> str:
        if self.any_port:
            return (
                f"another program took each free port chosen for the embedded MLflow server on "
                f"{self.host} before it could bind one (last: {self.port}); run again, or pass "
                f"{self.port_flag} with a port you keep free"
            )
        return (
            f"port {self.port} on {self.host} is in use by another program; pass another "
            f"{self.port_flag}, or 0 for a free one"
        )

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """TERM the whole process group, wait, then KILL what is left."""
        if self.process is None:
            return
        stop_process_group(self.process.pid, grace, leader=self.process)
        self.process = None

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's log, passwords masked."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        # A log line may hold a URI anywhere in it (a traceback, a driver error).
        return mask_secrets("\n".join(text[-lines:]))

    def last_error(self) -> str:
        """The log's last ERROR line (why the server died), else its last line, masked."""
        lines = [line.strip() for line in self.log_tail(200).splitlines() if line.strip()]
        errors = [line for line in lines if _ERROR_LINE.search(line)]
        return (errors or lines or ["(empty log)"])[-1]


def start_embedded(
    paths: StatePaths,
    backend_uri: str | None = None,
    port: int = 0,
    port_flag: str = DEFAULT_PORT_FLAG,
    artifacts: str | None = None,
    s3_environment: dict[str, str] | None = None,
) -> EmbeddedServer:
    """Spawn the embedded server on the state folder, without waiting for it to be ready.

    The one way the controller, ``titanic-bench ui`` and ``titanic-bench serve`` start it:
    ``backend_uri`` defaults to ``$TITANIC_BENCH_BACKEND_URI``, then SQLite in ``paths``;
    a missing PostgreSQL database is created first. ``artifacts`` defaults to
    ``$TITANIC_BENCH_ARTIFACTS``, then the state folder's; an ``s3://`` bucket is checked
    first, with ``s3_environment`` (default: this process's S3 variables). ``port_flag`` is
    the option that set ``port``, named when another program holds that port.
    """
    backend = backend_uri or os.environ.get(BACKEND_ENV) or default_backend_uri(paths)
    check_backend_uri(backend)
    destination = check_destination(artifacts or os.environ.get(ARTIFACTS_ENV) or str(paths.artifacts))
    s3_env = s3_variables(os.environ) if s3_environment is None else dict(s3_environment)
    if is_s3(destination):
        check_bucket(destination, s3_env)
    ensure_database(backend)
    paths.create()
    server = EmbeddedServer(
        backend,
        paths.artifacts if is_s3(destination) else Path(destination),
        paths.server_log,
        port=port,
        port_flag=port_flag,
        artifacts_uri=destination if is_s3(destination) else None,
        s3_environment=s3_env,
    )
    return server.start()


def server_command(artifacts: str | Path, host: str, port: int) -> list[str]:
    """MLflow's own server CLI, with one worker; the backend comes from :data:`BACKEND_URI_ENV`."""
    return [
        *(sys.executable, "-m", "mlflow", "server"),
        *("--serve-artifacts", "--artifacts-destination", str(artifacts)),
        *("--host", host, "--port", str(port), "--workers", "1"),
    ]


def stop_process_group(
    pgid: int, grace: float = STOP_GRACE_SECONDS, leader: subprocess.Popen[bytes] | None = None
) -> None:
    """TERM the group, wait up to ``grace`` seconds for all of it, then KILL the rest.

    ``leader``, the group leader's Popen when the caller has it, is reaped here: until it
    is, its zombie keeps the group alive for :func:`os.killpg`.
    """
    if _signal_group(pgid, signal.SIGTERM):
        deadline = time.monotonic() + grace
        _reap(leader, grace)
        if not _group_gone_by(pgid, deadline) and _signal_group(pgid, signal.SIGKILL):
            _reap(leader, grace)
            _group_gone_by(pgid, time.monotonic() + grace)
    if leader is not None:
        leader.wait()


def _reap(leader: subprocess.Popen[bytes] | None, timeout: float) -> None:
    if leader is not None:
        with suppress(subprocess.TimeoutExpired):
            leader.wait(timeout=timeout)


def _group_gone_by(pgid: int, deadline: float) -> bool:
    """Poll until the group has no process left or ``deadline`` passes; whether it is gone."""
    while _signal_group(pgid, 0):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` (0: only check) to the group; False when no process of it is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        # macOS refuses to signal a group whose members are all zombies (EPERM, not ESRCH).
        return False
    return True
