"""Find registered model versions and load them safely: skops only, types checked against our allow-list.

Serving and the session's champion check both load models through here, and never
with pickle: the MLmodel file's own list of trusted types is ignored (a crafted model
could trust anything), and what the file really needs is checked against
:data:`~titanic_bench.ml.trusted_types.TRUSTED_TYPES`.

This is the only code that asks the registry for versions and downloads models; an
MLflow failure leaves it as a :class:`~titanic_bench.errors.ModelLoadError` on one
line, with every password masked.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from titanic_bench.errors import ModelLoadError
from titanic_bench.ml.trusted_types import check_allowed
from titanic_bench.stack.backend import mask_secrets
from titanic_bench.tracking.client import client_for, error_text


@dataclass(frozen=True)
class RegisteredVersion:
    """One version of a registered model, with its tags."""

    name: str
    version: str
    tags: Mapping[str, str]


def find_version(
    tracking_uri: str, name: str, *, alias: str | None = None, version: str | None = None
) -> RegisteredVersion:
    """The version ``alias`` points to now, or ``version`` itself, as the registry has it."""
    client = client_for(tracking_uri)
    uri = f"models:/{name}@{alias}" if alias is not None else f"models:/{name}/{version}"
    with _mlflow_errors(uri, tracking_uri):
        if alias is not None:
            found = client.get_model_version_by_alias(name, alias)
        else:
            found = client.get_model_version(name, str(version))
    return RegisteredVersion(name, str(found.version), MappingProxyType(dict(found.tags)))


def load_version(tracking_uri: str, version: RegisteredVersion) -> Any:
    """Download and load a registered version with skops (see :func:`load_model`)."""
    # MLflow 3.17 resolves a models:/ URI with the process-wide registry URI whatever
    # it is given, so ask a client of ours where the version's files are and fetch those.
    client = client_for(tracking_uri)
    with _mlflow_errors(f"models:/{version.name}/{version.version}", tracking_uri):
        location = client.get_model_version_download_uri(version.name, version.version)
    return load_model(location, tracking_uri)


def load_model(artifact_uri: str, tracking_uri: str) -> Any:
    """Download the model folder at ``artifact_uri`` from ``tracking_uri`` and load it with skops."""
    import mlflow.artifacts

    with tempfile.TemporaryDirectory(prefix="titanic-model-") as folder:
        with _mlflow_errors(artifact_uri, tracking_uri):
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=artifact_uri, dst_path=folder, tracking_uri=tracking_uri
            )
        return load_skops_model(Path(local))


def load_skops_model(model_dir: Path) -> Any:
    """Load an MLflow sklearn model folder with skops, allowing only our trusted types.

    The MLmodel file lists the types its author trusted; we ignore that list (a
    crafted model could trust anything) and check what the file really needs
    against :data:`~titanic_bench.ml.trusted_types.TRUSTED_TYPES`.
    """
    import skops.io
    from mlflow.models import Model

    flavor = Model.load(str(model_dir)).flavors.get("sklearn")
    if flavor is None:
        raise ModelLoadError(
            f"the model in {model_dir} has no sklearn flavor; only scikit-learn models are served."
        )
    fmt = flavor.get("serialization_format", "pickle")
    if fmt != "skops":
        raise ModelLoadError(
            f"the model was saved as {fmt!r}; only 'skops' models are loaded, never pickles. "
            "Log it again with mlflow.sklearn.log_model (skops is MLflow's default)."
        )
    path = (model_dir / str(flavor["pickled_model"])).resolve()
    if not path.is_relative_to(model_dir.resolve()):
        raise ModelLoadError(
            f"the MLmodel file points outside the model folder ({flavor['pickled_model']!r})."
        )
    needed = skops.io.get_untrusted_types(file=path)
    check_allowed(needed, what="the served model")
    model = skops.io.load(path, trusted=needed)
    if not hasattr(model, "predict_proba") or 1 not in list(getattr(model, "classes_", [])):
        raise ModelLoadError(
            f"the model ({type(model).__name__}) gives no probability for class 1 (survived)."
        )
    return model


@contextmanager
def _mlflow_errors(what: str, tracking_uri: str) -> Iterator[None]:
    """MLflow's failures as ModelLoadError naming ``what`` and the (masked) server."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as error:
        raise ModelLoadError(
            f"{mask_secrets(what)} on the tracking server {mask_secrets(tracking_uri)}: {error_text(error)}"
        ) from None
