"""Fixtures of the stack tests: a real S3-compatible server (SeaweedFS) on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.s3 import S3Server, moto_s3, seaweedfs


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One ``weed mini`` for the whole test run (it takes seconds to start); tests use their own bucket."""
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server, request: pytest.FixtureRequest) -> str:
    """A fresh bucket for this test."""
    return s3_server.create_bucket(request.node.name[:20].strip("_"))


@pytest.fixture(scope="module")
def moto_server() -> Iterator[dict[str, str]]:
    """moto's in-process S3 server (the fast tier): the variables that reach it."""
    with moto_s3() as variables:
        yield variables
