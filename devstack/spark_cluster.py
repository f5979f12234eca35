"""A real Spark standalone cluster (one Master, one Worker) on 127.0.0.1, from the pyspark wheel.

Usage::

    python -m devstack.spark_cluster start|stop|status [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from airflow_spark_streaming.exceptions import SparkStreamingError
from airflow_spark_streaming.jvm import cache_dir, spark_home
from devstack.errors import LocalStackError
from devstack.java import check_java
from devstack.process import free_port, pid_alive, terminate, wait_for

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


def spark_class() -> str:
    home = spark_home()
    found = str(home / "bin" / "spark-class") if home else shutil.which("spark-class")
    if not found:
        raise LocalStackError(
            "No 'spark-class' found beside the Python interpreter or on the PATH; install the "
            "pinned pyspark into this environment (pip install -c constraints.txt -e .)."
        )
    return found


def default_home() -> Path:
    return Path(os.environ.get("SPARK_LOCAL_CLUSTER_HOME") or cache_dir() / "spark-cluster")


def _state_file(home: Path) -> Path:
    return home / "cluster.json"


def read_state(home: Path) -> SparkCluster | None:
    try:
        cluster = SparkCluster(**json.loads(_state_file(home).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return cluster if cluster.is_alive() else None


def _spawn(home: Path, name: str, *args: str, env: dict[str, str]) -> subprocess.Popen:
    with open(home / f"{name}.log", "wb") as out:
        return subprocess.Popen(
            [spark_class(), *args], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=env,
        )  # fmt: skip


def start(home: Path | None = None, *, cores: int = 2, memory: str = "3g", timeout: float = 120) -> SparkCluster:
    """Start a Master and a Worker with ``cores`` and ``memory`` (or return the running pair)."""
    home = Path(home or default_home())
    running = read_state(home)
    if running:
        return running
    check_java()
    home.mkdir(parents=True, exist_ok=True)
    (home / "work").mkdir(exist_ok=True)
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
            if process.poll() is not None:
                log = (home / f"{name}.log").read_text(errors="replace").splitlines()[-15:]
                raise LocalStackError(f"The Spark {name} exited while starting; its log ends with:\n" + "\n".join(log))
        try:
            state = cluster.master_state()
        except OSError:
            return False
        return any(w.get("state") == "ALIVE" for w in state.get("workers", []))

    try:
        wait_for(worker_registered, timeout=timeout, what=f"a Spark worker to register with {cluster.master_url}")
    except Exception:
        terminate(worker.pid)
        terminate(master.pid)
        raise
    _state_file(home).write_text(json.dumps(asdict(cluster)))
    return cluster


def stop(home: Path | None = None) -> bool:
    home = Path(home or default_home())
    cluster = read_state(home)
    _state_file(home).unlink(missing_ok=True)
    if cluster is None:
        return False
    terminate(cluster.worker_pid)
    terminate(cluster.master_pid)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spark-cluster", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--home", type=Path, default=None)
    args = parser.parse_args(argv)
    home = Path(args.home or default_home())
    try:
        if args.command == "start":
            cluster = start(home)
            print(f"spark-cluster: master {cluster.master_url}, UI {cluster.ui_url}, REST {cluster.submission_url}")
        elif args.command == "stop":
            print("spark-cluster: stopped" if stop(home) else "spark-cluster: was not running")
        else:
            cluster = read_state(home)
            print(f"spark-cluster: running at {cluster.master_url}" if cluster else "spark-cluster: not running")
            return 0 if cluster else 3
    except SparkStreamingError as err:
        print(f"spark-cluster: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
