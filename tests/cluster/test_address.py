"""--bench-dask values: a local cluster of N workers, or a scheduler address."""

from __future__ import annotations

import os

import pytest

from titanic_bench.cluster.address import ClusterAddress, is_loopback_host, parse_cluster_address
from titanic_bench.errors import OptionError


def test_local_alone_is_one_worker_per_core() -> None:
    assert parse_cluster_address("--bench-dask", "local") == ClusterAddress(workers=os.cpu_count() or 1)


def test_local_with_a_count_starts_that_many_workers_on_loopback() -> None:
    address = parse_cluster_address("--bench-dask", "local:2")
    assert address == ClusterAddress(workers=2)
    assert address.is_local and address.on_loopback and address.label == "local:2"


@pytest.mark.parametrize(
    ("value", "loopback"),
    [
        ("tcp://scheduler:8786", False),
        ("tcp://10.1.2.3:8786", False),
        ("tls://dask.example.org:8786", False),
        ("tcp://127.0.0.1:8786", True),
        ("tcp://localhost:8786", True),
        ("tcp://[::1]:8786", True),
    ],
)
def test_a_scheduler_address_is_used_as_given(value: str, loopback: bool) -> None:
    address = parse_cluster_address("--bench-dask", value)
    assert address == ClusterAddress(scheduler=value)
    assert not address.is_local and address.on_loopback is loopback and address.label == value


@pytest.mark.parametrize(
    "value", ["", "local:0", "local:x", "remote", "http://scheduler:8786", "scheduler:8786"]
)
def test_anything_else_names_the_source_the_value_and_the_forms(value: str) -> None:
    with pytest.raises(OptionError) as raised:
        parse_cluster_address("TITANIC_BENCH_DASK", value)
    message = str(raised.value)
    assert f"TITANIC_BENCH_DASK={value!r}" in message and "local:N" in message and "tcp://" in message


def test_loopback_hosts() -> None:
    assert all(is_loopback_host(host) for host in ("127.0.0.1", "127.3.4.5", "::1", "[::1]", "LOCALHOST"))
    assert not any(is_loopback_host(host) for host in ("0.0.0.0", "mlflow", "192.168.1.2", ""))
