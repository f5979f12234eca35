"""A real Spark standalone cluster (one Master, one Worker) on 127.0.0.1, from the pyspark wheel.

Usage::

    python -m devstack.spark_cluster start|stop|status [--home DIR]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from airflow_spark_streaming.spark.jvm import spark_home
from devstack.java import check_java, spark_script
from devstack.process import (
    check_running,
    free_port,
    log_tail,
    pid_alive,
    retry_port_race,
    spawn,
    terminated_on_failure,
    wait_for,
)
from devstack.service import Service

HOST = "127.0.0.1"


@dataclass
class SparkCluster:
    """A running standalone cluster."""

    home: str
    master_port: int
    master_ui_port: int
    master_pid: int
    worker_pid: int
    rest_port: int = 0

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.master_port}"

    @property
    def ui_url(self) -> str:
        return f"http://{HOST}:{self.master_ui_port}"

    @property
    def submission_url(self) -> str:
        """The Master's REST submission server (cluster-mode submit, status and kill of drivers)."""
        return f"http://{HOST}:{self.rest_port}"

    def is_alive(self) -> bool:
        return pid_alive(self.master_pid) and pid_alive(self.worker_pid)

    def master_state(self) -> dict:
        """The Master's JSON status page: workers, active and completed apps and drivers."""
        with urllib.request.urlopen(f"{self.ui_url}/json/", timeout=5) as response:
            return json.load(response)


# stop() ends the worker before the master.
SERVICE = Service(prog="spark-cluster", record=SparkCluster, state_file="cluster.json",
                  home_env="SPARK_LOCAL_CLUSTER_HOME", folder="spark-cluster",
                  pids=lambda cluster: [cluster.worker_pid, cluster.master_pid])  # fmt: skip


def default_home() -> Path:
    return SERVICE.default_home()


def read_state(home: Path | None = None) -> SparkCluster | None:
    return SERVICE.read_state(home)


def _spawn(home: Path, name: str, *args: str, env: dict[str, str]) -> subprocess.Popen:
    return spawn([spark_script("spark-class"), *args], home / f"{name}.log", env=env)


def start(home: Path | None = None, *, cores: int = 2, memory: str = "3g", timeout: float = 120) -> SparkCluster:
    """Start a Master and a Worker with ``cores`` and ``memory`` (or return the running pair)."""

    def launch(home: Path) -> SparkCluster:
        check_java()
        home.mkdir(parents=True, exist_ok=True)
        (home / "work").mkdir(exist_ok=True)
        return retry_port_race(lambda: _start_once(home, cores=cores, memory=memory, timeout=timeout))

    return SERVICE.start(home, launch)


def _start_once(home: Path, *, cores: int, memory: str, timeout: float) -> SparkCluster:
    master_port, master_ui_port, worker_ui_port, rest_port = free_port(), free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": HOST,
        "SPARK_LOG_DIR": str(home),
        "SPARK_NO_DAEMONIZE": "1",
        # The REST submission server lets cluster-mode drivers be submitted, tracked and killed.
        "SPARK_MASTER_OPTS": f"-Dspark.master.rest.enabled=true -Dspark.master.rest.port={rest_port}",
    }
    master = _spawn(
        home, "master", "org.apache.spark.deploy.master.Master",
        "--host", HOST, "--port", str(master_port), "--webui-port", str(master_ui_port), env=env,
    )  # fmt: skip
    worker = _spawn(
        home, "worker", "org.apache.spark.deploy.worker.Worker", f"spark://{HOST}:{master_port}",
        "--host", HOST, "--cores", str(cores), "--memory", memory, "--webui-port", str(worker_ui_port),
        "--work-dir", str(home / "work"), env=env,
    )  # fmt: skip
    cluster = SparkCluster(str(home), master_port, master_ui_port, master.pid, worker.pid, rest_port)

    def worker_registered() -> bool:
        for process, name in ((master, "master"), (worker, "worker")):
            check_running(process, f"The Spark {name}", lambda name=name: log_tail(home / f"{name}.log"))
        try:
            state = cluster.master_state()
        except OSError:
            return False
        return any(w.get("state") == "ALIVE" for w in state.get("workers", []))

    with terminated_on_failure([worker, master]):
        wait_for(worker_registered, timeout=timeout, what=f"a Spark worker to register with {cluster.master_url}")
    return cluster


def stop(home: Path | None = None) -> bool:
    """Stop the cluster recorded in ``home`` (the worker first); return whether one was running."""
    return SERVICE.stop(home) is not None


def main(argv: list[str] | None = None) -> int:
    def started(args, home: Path) -> list[str]:
        cluster = start(home)
        return [f"master {cluster.master_url}, UI {cluster.ui_url}, REST {cluster.submission_url}"]

    return SERVICE.main(argv, doc=__doc__, start=started, status=lambda cluster: f"running at {cluster.master_url}")


if __name__ == "__main__":
    sys.exit(main())
