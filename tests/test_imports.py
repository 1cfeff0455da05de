"""The package uses its dependencies' public API only, and pytest can load the plugin cheaply."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import titanic_bench

PACKAGE = Path(titanic_bench.__file__).parent


def private_imports(source: str) -> Iterator[str]:
    """``from x import _y`` and ``import x._y`` (and ``x._y.z``) of modules outside the package."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "titanic_bench":
                continue
            parts = node.module.split(".") + [alias.name for alias in node.names]
            if any(part.startswith("_") and part != "__future__" for part in parts):
                yield f"from {node.module} import {', '.join(alias.name for alias in node.names)}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if any(part.startswith("_") for part in alias.name.split(".")):
                    yield f"import {alias.name}"


def test_the_detector_finds_what_it_should() -> None:
    found = list(private_imports("from mlflow.server import _x\nimport mlflow._y\nfrom a._b import c\n"))
    assert found == ["from mlflow.server import _x", "import mlflow._y", "from a._b import c"]
    assert list(private_imports("from __future__ import annotations\nfrom titanic_bench._x import y\n")) == []


def test_no_module_imports_an_underscore_name_from_a_dependency() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): found
        for path in sorted(PACKAGE.rglob("*.py"))
        if (found := list(private_imports(path.read_text())))
    }
    assert offenders == {}


def test_importing_the_plugin_loads_no_scientific_stack() -> None:
    # pytest imports the plugin in every session of every project installed beside it.
    heavy = "{'mlflow', 'sklearn', 'pandas', 'scipy'}"
    probe = f"import sys, titanic_bench.plugin; print(sorted({heavy} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_the_public_api_is_importable_from_the_package() -> None:
    for name in titanic_bench.__all__:
        assert getattr(titanic_bench, name) is not None, name
    from titanic_bench import EXPERIMENTS, ExperimentSpec, FeatureSet, assert_floors

    assert all(isinstance(spec, ExperimentSpec) for spec in EXPERIMENTS)
    assert FeatureSet("seed") is FeatureSet.SEED and callable(assert_floors)
