"""A real YARN ResourceManager + NodeManager and an HDFS for the whole session, and raw spark-submit on it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from airflow_spark_streaming.jvm import DELTA_SPARK_CONF, resolve_jvm_dependencies, spark_home
from airflow_spark_streaming.yarn_conf import yarn_jars, yarn_submit_settings

APPS = Path(__file__).parent / "apps"
TIMINGS: dict[str, float] = {}


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.yarn)


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


@dataclass
class Submitted:
    returncode: int
    output: str
    app_id: str | None
    seconds: float


@pytest.fixture(scope="session")
def yarn_submit(yarn_cluster, tmp_path_factory):
    """Run spark-submit --master yarn --deploy-mode cluster with the conf of yarn_conf."""
    import re

    home = spark_home()
    settings = yarn_submit_settings(
        spark_home=home, environ={**os.environ, **yarn_cluster.client_env()}, local_ip="127.0.0.1"
    )
    deps = resolve_jvm_dependencies(delta=True, kafka=False, resolver="maven")
    jars = yarn_jars(deps.jars)
    ivy_home = tmp_path_factory.mktemp("ivy")

    def submit(
        app_args: list[str],
        *,
        wait: bool = True,
        properties_file: str | None = None,
        extra_conf: dict[str, str] | None = None,
        timeout: float = 300,
    ) -> Submitted:
        conf = {
            **settings.conf, **DELTA_SPARK_CONF,
            "spark.yarn.submit.waitAppCompletion": str(wait).lower(),
            "spark.yarn.maxAppAttempts": "1",
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "2",
            "spark.jars.ivy": str(ivy_home),
            **(extra_conf or {}),
        }  # fmt: skip
        command = [str(Path(home) / "bin" / "spark-submit"), "--master", "yarn", "--deploy-mode", "cluster",
                   "--driver-memory", "768m", "--executor-memory", "768m", "--num-executors", "1",
                   "--executor-cores", "1", "--jars", ",".join(jars)]  # fmt: skip
        for key, value in conf.items():
            command += ["--conf", f"{key}={value}"]
        if properties_file:
            command += ["--properties-file", properties_file]
        command += [str(APPS / "files_to_delta.py"), *app_args]
        env = {**os.environ, **settings.env, "PYSPARK_PYTHON": sys.executable}
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, check=False)
        output = done.stdout + done.stderr
        found = re.findall(r"application_\d+_\d+", output)
        return Submitted(done.returncode, output, found[0] if found else None, time.monotonic() - started)

    return submit
