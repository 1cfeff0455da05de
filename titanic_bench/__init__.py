"""titanic-bench: a pytest-based, reproducible ML benchmark harness on MLflow."""

from __future__ import annotations

__version__ = "0.1.0"
