"""The versions that must be equal on the controller and every worker for results to reproduce."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from importlib import metadata

from titanic_bench.errors import ClusterError

#: Distributions whose version changes what an experiment computes or how it travels.
PACKAGES = ("titanic-bench", "scikit-learn", "numpy", "scipy", "mlflow", "distributed", "cloudpickle")
PYTHON = "python"


def local_versions() -> dict[str, str]:
    """This process's Python and package versions, as the installed metadata says."""
    versions = {PYTHON: platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def differences(controller: Mapping[str, str], workers: Mapping[str, Mapping[str, str]]) -> list[str]:
    """One line per worker and package that differs from the controller, sorted."""
    lines = []
    for worker, versions in sorted(workers.items()):
        for name, expected in controller.items():
            found = versions.get(name, "not reported")
            if found != expected:
                lines.append(f"{name} {found} on {worker} (controller: {expected})")
    return lines


def check_versions(controller: Mapping[str, str], workers: Mapping[str, Mapping[str, str]]) -> None:
    """Stop before any task runs when a worker would compute with other versions."""
    found = differences(controller, workers)
    if found:
        raise ClusterError(
            "the Dask workers do not run the controller's versions, so their results would not "
            f"reproduce: {'; '.join(found)}. Install the same versions on the workers "
            "(pip install titanic-bench[dask] with the same pins, or the same image)."
        )
