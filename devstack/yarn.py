"""A real YARN ResourceManager and NodeManager (and an HDFS) on 127.0.0.1, from Hadoop's minicluster jar.

One JVM runs Hadoop's ``MiniYARNCluster`` and ``MiniDFSCluster`` (Hadoop 3.5.0, the client version
inside the pyspark wheel) behind a small launcher, ``devstack/YarnLocal.java``, compiled with javac
on first start and cached. The jars come from Maven Central through Maven, as for the Kafka broker.
Every port is picked free, so several clusters can run beside each other. Clients point
``HADOOP_CONF_DIR`` at :attr:`YarnCluster.conf_dir`.

Usage::

    python -m devstack.yarn start|stop|status [--home DIR] [--no-hdfs]
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from airflow_spark_streaming.spark.jvm import cache_dir, resolve_with_maven
from devstack.errors import LocalStackError
from devstack.java import check_java, java_executable
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

HADOOP_VERSION = "3.5.0"
MINICLUSTER_PACKAGES = [
    f"org.apache.hadoop:hadoop-client-minicluster:{HADOOP_VERSION}",
    # MiniYARNCluster checks its work dir with JUnit's Assertions; the minicluster pom does not pull it in.
    "org.junit.jupiter:junit-jupiter-api:5.10.2",
    # The ResourceManager calls log4j 1 directly (Hadoop ships reload4j); slf4j logs through it too.
    "ch.qos.reload4j:reload4j:1.2.25",
    "org.slf4j:slf4j-reload4j:1.7.36",
    # The ResourceManager's web proxy CA.
    "org.bouncycastle:bcprov-jdk18on:1.78.1",
    "org.bouncycastle:bcpkix-jdk18on:1.78.1",
]
_LOG4J = """\
log4j.rootLogger=WARN, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=%d{ISO8601} %p %c{2}: %m%n
log4j.logger.org.apache.hadoop.yarn.server.resourcemanager.RMAuditLogger=INFO
log4j.logger.org.apache.hadoop.yarn.server.resourcemanager.rmapp.RMAppImpl=INFO
"""
HOST = "127.0.0.1"
LAUNCHER_SOURCE = Path(__file__).with_name("YarnLocal.java")
# Sized for a 2-core, 24 GiB machine: room for a cluster-mode driver (the AM) and one or two executors
# of two applications at once; vcores are virtual (only memory is scheduled by the default calculator).
NODE_MEMORY_MB = 8192
NODE_VCORES = 4
_JVM_OPENS = [
    f"--add-opens=java.base/{package}=ALL-UNNAMED"
    for package in ("java.lang", "java.lang.reflect", "java.io", "java.net", "java.nio", "java.util",
                    "java.util.concurrent", "sun.nio.ch", "sun.security.action")
]  # fmt: skip


@dataclass
class YarnCluster:
    """A running local YARN (and HDFS): where its configuration is and how to reach it."""

    home: str
    pid: int
    rm_port: int
    rm_webapp_port: int
    default_fs: str
    webhdfs_address: str = ""  # the NameNode's HTTP address, for fsspec/ObjectStoragePath "webhdfs://"

    @property
    def conf_dir(self) -> str:
        """The ``HADOOP_CONF_DIR`` (and ``YARN_CONF_DIR``) for spark-submit and Hadoop clients."""
        return str(Path(self.home) / "conf")

    @property
    def rm_url(self) -> str:
        """The ResourceManager's web address, as the ``spark`` connection's ``yarn_resourcemanager_webapp_address``."""
        return f"http://{HOST}:{self.rm_webapp_port}"

    @property
    def hdfs(self) -> bool:
        return self.default_fs.startswith("hdfs://")

    @property
    def nodemanager_dirs(self) -> Path:
        """Where the NodeManager keeps container work dirs, launch scripts and logs."""
        return Path(self.home) / "work" / "target"  # MiniYARNCluster's ./target/test/data/yarn-local/...

    def is_alive(self) -> bool:
        return pid_alive(self.pid)

    def client_env(self) -> dict[str, str]:
        """Environment variables spark-submit needs to find this cluster."""
        return {"HADOOP_CONF_DIR": self.conf_dir, "YARN_CONF_DIR": self.conf_dir}

    # --- the ResourceManager's REST API (/ws/v1/cluster) ---------------------------------------

    def rm_get(self, path: str) -> dict:
        with urllib.request.urlopen(f"{self.rm_url}/ws/v1/cluster{path}", timeout=10) as response:
            return json.load(response)

    def application(self, app_id: str) -> dict:
        """The RM's application report: state, finalStatus, diagnostics, ..."""
        return self.rm_get(f"/apps/{app_id}")["app"]

    def applications(self, **filters: str) -> list[dict]:
        query = "&".join(f"{k}={v}" for k, v in filters.items())
        apps = self.rm_get(f"/apps{'?' + query if query else ''}").get("apps") or {}
        return apps.get("app", [])

    def am_container_log(self, app_id: str, name: str = "stdout") -> str:
        """A log file of the application's AM (the driver, in cluster mode) from the NodeManager's REST API.

        A Python driver's traceback is in ``stdout``: Spark's PythonRunner copies the Python process's
        output there, while the RM's diagnostics only say "User application exited with status 1".
        """
        logs = urllib.parse.urlsplit(self.application(app_id)["amContainerLogs"])  # .../containerlogs/<id>/<user>
        container = logs.path.split("/")[3]
        url = f"{logs.scheme}://{logs.netloc}/ws/v1/node/containers/{container}/logs/{name}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read().decode(errors="replace")

    def kill(self, app_id: str) -> int:
        """Ask the RM to kill ``app_id`` (as ``yarn application -kill`` does); return the HTTP status."""
        request = urllib.request.Request(
            f"{self.rm_url}/ws/v1/cluster/apps/{app_id}/state", data=b'{"state": "KILLED"}', method="PUT",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as err:
            return err.code


# A throwaway cluster: its orderly shutdown waits about 20 s for container clean-up that nobody needs.
SERVICE = Service(prog="yarn-local", record=YarnCluster, state_file="cluster.json", home_env="YARN_LOCAL_HOME",
                  folder="yarn-local", grace=3)  # fmt: skip


def default_home() -> Path:
    return SERVICE.default_home()


def read_state(home: Path | None = None) -> YarnCluster | None:
    return SERVICE.read_state(home)


def _site_xml(settings: dict[str, object]) -> str:
    props = "".join(
        f"<property><name>{escape(k)}</name><value>{escape(str(v))}</value></property>\n" for k, v in settings.items()
    )
    return f'<?xml version="1.0"?>\n<configuration>\n{props}</configuration>\n'


def site_settings(rm_ports: dict[str, int]) -> dict[str, object]:
    """The launcher's Hadoop settings: loopback addresses, free ports, resources for this machine."""
    settings: dict[str, object] = {
        # Our own addresses on 127.0.0.1, instead of MiniYARNCluster's "<hostname>:0".
        "yarn.minicluster.fixed.ports": "true",
        "yarn.resourcemanager.hostname": HOST,
        "yarn.nodemanager.hostname": HOST,
        "yarn.nodemanager.address": f"{HOST}:0",
        "yarn.nodemanager.localizer.address": f"{HOST}:{free_port()}",
        "yarn.nodemanager.webapp.address": f"{HOST}:0",
        "yarn.nodemanager.collector-service.address": f"{HOST}:0",
        "yarn.minicluster.yarn.nodemanager.resource.memory-mb": NODE_MEMORY_MB,
        "yarn.nodemanager.resource.memory-mb": NODE_MEMORY_MB,
        "yarn.nodemanager.resource.cpu-vcores": NODE_VCORES,
        "yarn.scheduler.minimum-allocation-mb": 128,
        "yarn.scheduler.maximum-allocation-mb": NODE_MEMORY_MB,
        "yarn.scheduler.maximum-allocation-vcores": NODE_VCORES,
        "yarn.nodemanager.vmem-check-enabled": "false",
        "yarn.nodemanager.pmem-check-enabled": "false",
        # The capacity scheduler's default lets AMs use 10% of the cluster: one cluster-mode driver at most.
        "yarn.scheduler.capacity.maximum-am-resource-percent": "0.9",
        "yarn.scheduler.capacity.root.queues": "default",
        "yarn.scheduler.capacity.root.default.capacity": 100,
        "yarn.scheduler.capacity.root.default.maximum-capacity": 100,
        # A nearly full shared disk must not mark the only node unhealthy: the RM would then leave every
        # application ACCEPTED, never scheduled. At 100 the check fires only on a disk that is really full.
        "yarn.nodemanager.disk-health-checker.max-disk-utilization-per-disk-percentage": "100.0",
        # Keep finished containers' dirs (launch_container.sh, logs) for inspection; removed with the home.
        "yarn.nodemanager.delete.debug-delay-sec": 3600,
        "yarn.log-aggregation-enable": "false",
        "yarn.nodemanager.aux-services": "",
        "yarn.timeline-service.enabled": "false",
        # HDFS (when started): loopback only, one replica.
        "dfs.namenode.http-address": f"{HOST}:0",
        "dfs.datanode.address": f"{HOST}:0",
        "dfs.datanode.http.address": f"{HOST}:0",
        "dfs.datanode.ipc.address": f"{HOST}:0",
        "dfs.replication": 1,
        "dfs.permissions.enabled": "false",
    }
    names = {
        "address": "yarn.resourcemanager.address",
        "scheduler": "yarn.resourcemanager.scheduler.address",
        "tracker": "yarn.resourcemanager.resource-tracker.address",
        "admin": "yarn.resourcemanager.admin.address",
        "webapp": "yarn.resourcemanager.webapp.address",
    }
    settings.update({names[k]: f"{HOST}:{port}" for k, port in rm_ports.items()})
    return settings


def launcher_classes(classpath: str) -> Path:
    """Compile YarnLocal.java once per source and jar set; return the folder with its class."""
    source = LAUNCHER_SOURCE.read_bytes()
    key = hashlib.sha256(source + classpath.encode()).hexdigest()[:16]
    target = cache_dir() / "yarn-launcher" / key
    if (target / "YarnLocal.class").is_file():
        return target
    javac = java_executable().resolve().with_name("javac")
    if not javac.is_file():
        found = shutil.which("javac")
        if not found:
            raise LocalStackError("The local YARN launcher needs 'javac' (a JDK, not a JRE); install a JDK 17+.")
        javac = Path(found)
    staging = target.with_name(key + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    done = subprocess.run(
        [str(javac), "-nowarn", "-cp", classpath, "-d", str(staging), str(LAUNCHER_SOURCE)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise LocalStackError(f"Compiling {LAUNCHER_SOURCE.name} failed: {(done.stdout + done.stderr)[-1500:]}")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    return target


def start(home: Path | None = None, *, hdfs: bool = True, timeout: float = 180) -> YarnCluster:
    """Start YARN (and HDFS) in ``home``, or return the cluster already running there."""
    return SERVICE.start(home, lambda home: retry_port_race(lambda: _start_once(home, hdfs=hdfs, timeout=timeout)))


def _start_once(home: Path, *, hdfs: bool, timeout: float) -> YarnCluster:
    java = check_java() and java_executable()
    jars = resolve_with_maven(MINICLUSTER_PACKAGES)
    classpath = os.pathsep.join(str(j) for j in jars)
    classes = launcher_classes(classpath)
    for stale in ("conf", "work"):
        shutil.rmtree(home / stale, ignore_errors=True)
    (home / "work").mkdir(parents=True)
    rm_ports = {k: free_port() for k in ("address", "scheduler", "tracker", "admin", "webapp")}
    (home / "log4j.properties").write_text(_LOG4J)
    (home / "launcher-site.xml").write_text(_site_xml(site_settings(rm_ports)))
    hdfs_port = free_port() if hdfs else 0
    env = {
        **os.environ,
        # Containers run "$JAVA_HOME/bin/java"; the NodeManager passes its own JAVA_HOME on to them.
        "JAVA_HOME": os.environ.get("JAVA_HOME") or str(Path(java).resolve().parent.parent),
    }
    command = [
        str(java), "-Xms128m", "-Xmx768m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", *_JVM_OPENS,
        "-Djava.net.preferIPv4Stack=true", f"-Djava.io.tmpdir={home / 'work'}",  # Jetty's unpacked web apps
        f"-Dlog4j.configuration=file:{home / 'log4j.properties'}", "-cp", os.pathsep.join([str(classes), classpath]), "YarnLocal",
        str(home / "launcher-site.xml"), str(home / "conf"), str(home / "work"), str(hdfs_port),
    ]  # fmt: skip
    process = spawn(command, home / "yarn.log", cwd=home / "work", env=env)

    def ready() -> bool:
        check_running(process, "The local YARN", lambda: log_tail(home / "yarn.log", lines=25))
        return (home / "work" / "ready").is_file()

    with terminated_on_failure([process]):
        wait_for(ready, timeout=timeout, what=f"the local YARN in {home}")
    default_fs, webhdfs_address = [*(home / "work" / "ready").read_text().splitlines(), ""][:2]
    return YarnCluster(str(home), process.pid, rm_ports["address"], rm_ports["webapp"], default_fs, webhdfs_address)


def stop(home: Path | None = None) -> bool:
    """Stop the cluster recorded in ``home``; return whether one was running."""
    return SERVICE.stop(home) is not None


def main(argv: list[str] | None = None) -> int:
    def options(parser) -> None:
        parser.add_argument("--no-hdfs", action="store_true", help="YARN only, with the local file system as default")

    def started(args, home: Path) -> list[str]:
        cluster = start(home, hdfs=not args.no_hdfs)
        return [
            f"ResourceManager {cluster.rm_url}, file system {cluster.default_fs}",
            f"export HADOOP_CONF_DIR={cluster.conf_dir} YARN_CONF_DIR={cluster.conf_dir}",
        ]

    return SERVICE.main(argv, doc=__doc__, options=options, start=started,
                        status=lambda cluster: f"running, ResourceManager {cluster.rm_url}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
