"""Whether the tests run in CI, where a missing service is a broken CI, not a reason to skip."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

CI_ENV = "CI"


def in_ci() -> bool:
    """``CI`` set to a true value, as CI services (and ``.ci/run``) set it."""
    return os.environ.get(CI_ENV, "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """Fail in CI, skip with the reason elsewhere: for a service or tool a test needs."""
    if in_ci():
        pytest.fail(f"{reason} ({CI_ENV}=true: this test must run here)", pytrace=False)
    pytest.skip(reason)
