"""A real YARN ResourceManager + NodeManager and an HDFS for the whole session, and a connection to it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.support.folder_markers import mark_folder

TIMINGS: dict[str, float] = {}


def pytest_collection_modifyitems(items):
    mark_folder(items, Path(__file__).parent, pytest.mark.yarn)


@pytest.fixture(scope="session")
def yarn_cluster(tmp_path_factory, java_major):
    from devstack import yarn

    reuse = os.environ.get("YARN_LOCAL_HOME")  # a cluster from 'scripts/yarn-local start', kept running
    started = time.monotonic()
    cluster = yarn.start(Path(reuse) if reuse else tmp_path_factory.mktemp("yarn"), hdfs=True)
    TIMINGS["cluster_start_s"] = time.monotonic() - started
    print(f"\nyarn-local up in {TIMINGS['cluster_start_s']:.1f} s: {cluster.rm_url}, {cluster.default_fs}")
    yield cluster
    rss = _rss_mb(cluster.pid)
    print(f"\nyarn-local JVM RSS at the end: {rss} MB; timings: {TIMINGS}")
    if not reuse:
        yarn.stop(Path(cluster.home))


def _rss_mb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    except OSError:
        return None
    return None


@pytest.fixture
def yarn_conn(yarn_cluster, monkeypatch):
    """A ``spark`` connection to the cluster in cluster deploy mode, and the environment a YARN submitter has."""
    for key, value in yarn_cluster.client_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AIRFLOW__SPARK_STREAMING__YARN_SHARED_PATHS", "true")  # one machine: local: jars and python
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    conn = {"conn_type": "spark", "host": "yarn",
            "extra": {"deploy-mode": "cluster", "yarn_resourcemanager_webapp_address": yarn_cluster.rm_url}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_YARN", json.dumps(conn))
    return "spark_yarn"
