"""Where the embedded MLflow server keeps artifacts: a folder (default) or an S3 bucket.

With ``s3://BUCKET[/PREFIX]`` the server alone talks to the object store, with the
endpoint and credentials of the standard variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``MLFLOW_S3_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL``, ...).
Every client (the controller, the xdist workers, ``serve``) reaches artifacts through
the server's proxy (``mlflow-artifacts:`` URIs), so the controller takes those variables
out of its own environment before any worker starts and hands them to the server only
(:func:`take_s3_environment`). The bucket is checked (:func:`check_bucket`) before the
server starts, so a wrong endpoint or bucket stops the session before any training,
in one line that names the endpoint and bucket and never the secret key.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from titanic_bench.errors import ArtifactStoreError
from titanic_bench.stack.backend import mask_secrets

ARTIFACTS_ENV = "TITANIC_BENCH_ARTIFACTS"
S3_SCHEME = "s3"
#: Variables that configure S3 access (botocore's ``AWS_*``, MLflow's ``MLFLOW_S3_*``):
#: the server's business only.
S3_VARIABLE_PREFIXES = ("AWS_", "MLFLOW_S3_")
#: Where the endpoint comes from, in the order MLflow (then botocore) reads them.
ENDPOINT_VARIABLES = ("MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
#: The bucket check must not hang a session start: botocore's defaults are 60 s and retries.
CHECK_TIMEOUT_SECONDS = 5


def is_s3(destination: str | os.PathLike[str]) -> bool:
    return urlsplit(str(destination)).scheme == S3_SCHEME


def check_destination(destination: str) -> str:
    """``destination`` as the server takes it: ``s3://BUCKET[/PREFIX]`` or a folder (made absolute)."""
    parts = urlsplit(destination)
    if parts.scheme == S3_SCHEME:
        if not parts.netloc:
            raise ArtifactStoreError(
                f"the artifact destination {destination!r} names no bucket; write s3://BUCKET or s3://BUCKET/PREFIX."
            )
        return destination
    if parts.scheme in ("", "file") and not parts.netloc:
        return str(Path(parts.path if parts.scheme else destination).expanduser().resolve())
    raise ArtifactStoreError(
        f"the artifact destination {destination!r} is neither a folder nor s3://BUCKET[/PREFIX]; "
        f"pass one of those with --bench-artifacts or {ARTIFACTS_ENV}."
    )


def s3_variables(environ: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in environ.items() if name.startswith(S3_VARIABLE_PREFIXES)}


def take_s3_environment(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Remove the S3 variables from ``environ`` (default: this process's) and return them.

    Processes started afterwards (xdist's workers) inherit the environment without them.
    """
    target = os.environ if environ is None else environ
    taken = s3_variables(target)
    for name in taken:
        del target[name]
    return taken


def endpoint_of(s3_environment: Mapping[str, str]) -> str:
    """The endpoint the server will use, for messages: the variable's value, else AWS's default."""
    chosen = next((s3_environment[name] for name in ENDPOINT_VARIABLES if s3_environment.get(name)), None)
    return mask_secrets(chosen) if chosen else "AWS S3 (no MLFLOW_S3_ENDPOINT_URL or AWS_ENDPOINT_URL set)"


def check_bucket(destination: str, s3_environment: Mapping[str, str]) -> None:
    """Raise :class:`ArtifactStoreError` unless the bucket of ``destination`` answers HEAD with
    the credentials in ``s3_environment`` (read as the server will read them)."""
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
    except ImportError:
        raise ArtifactStoreError(
            f"the artifact destination {destination} needs boto3, which is not installed; "
            "pip install 'titanic-bench[s3]'."
        ) from None

    bucket, endpoint = urlsplit(destination).netloc, endpoint_of(s3_environment)
    where = f"bucket {bucket!r} at {endpoint}"
    secret = s3_environment.get("AWS_SECRET_ACCESS_KEY", "")
    timeouts = Config(
        connect_timeout=CHECK_TIMEOUT_SECONDS,
        read_timeout=CHECK_TIMEOUT_SECONDS,
        retries={"max_attempts": 1, "mode": "standard"},
    )
    try:
        with _environment(s3_environment):
            # MLflow passes MLFLOW_S3_ENDPOINT_URL to boto3; botocore reads AWS_ENDPOINT_URL* itself.
            endpoint_url = s3_environment.get(ENDPOINT_VARIABLES[0]) or None
            # A new session: boto3.client() would reuse the default one and its cached credentials.
            client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=timeouts)
            client.head_bucket(Bucket=bucket)
    except NoCredentialsError:
        raise ArtifactStoreError(
            f"no S3 credentials for {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "in the environment the session starts in."
        ) from None
    except ClientError as error:
        raise ArtifactStoreError(_refusal(where, error, s3_environment)) from None
    except (BotoCoreError, ValueError) as error:
        reason = _without(str(error), secret)
        raise ArtifactStoreError(
            f"the artifact store is unreachable for {where}: {reason}. Start it, or fix "
            "MLFLOW_S3_ENDPOINT_URL (or AWS_ENDPOINT_URL)."
        ) from None


def _refusal(where: str, error: object, s3_environment: Mapping[str, str]) -> str:
    response = getattr(error, "response", {})
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if status == 404:
        return (
            f"{where} does not exist: create it, or pass another bucket with --bench-artifacts "
            f"or {ARTIFACTS_ENV}."
        )
    if status in (401, 403):
        key = s3_environment.get("AWS_ACCESS_KEY_ID", "(none)")
        return (
            f"{where} refused access key {key!r} (HTTP {status}): check AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, and that the key may read and write the bucket."
        )
    code = response.get("Error", {}).get("Code", "unknown")
    return f"{where} answered HTTP {status} ({code}) to a HEAD request; check the store and the bucket."


def _without(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


@contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    """``variables`` in this process's environment for the block, then exactly as before.

    botocore reads credentials, region, profile and CA bundle from the environment, as the
    server will; a variable of this process that the server would not get is hidden too.
    """
    saved = take_s3_environment()
    os.environ.update(variables)
    try:
        yield
    finally:
        take_s3_environment()
        os.environ.update(saved)
