"""A real Spark Connect server on 127.0.0.1, from the pyspark wheel, with Delta Lake and the Kafka connector.

The server is Spark's own ``SparkConnectServer`` (``jars/spark-connect_*.jar`` ships in pyspark),
started with ``spark-submit`` in ``local[*]`` mode. Delta and Kafka come from the same coordinates
and resolver every spark-submit of this provider uses (:func:`resolve_jvm_dependencies`), with
Delta's SQL extension and catalog. Clients reach it at ``sc://127.0.0.1:<port>``.

The server holds no storage credentials unless started with them: for S3 tables give it its own
``spark.hadoop.fs.s3a.*`` settings (``--conf``, kept in a 0600 properties file, never on the command line).
Its log (``server.log`` in its home) keeps streaming, planner, Kafka and Delta lines at INFO and the
per-request and per-task ones at WARN (``spark-connect-log4j2.properties`` beside this module).

Usage::

    python -m devstack.spark_connect start|stop|status [--home DIR] [--port 15002] [--conf KEY=VALUE ...]
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from airflow_spark_streaming.spark.jvm import resolve_jvm_dependencies, spark_home
from devstack.java import check_java, spark_script
from devstack.process import (
    check_running,
    claim_port,
    log_tail,
    pid_alive,
    retry_port_race,
    spawn,
    terminated_on_failure,
    wait_for,
)
from devstack.service import Service

HOST = "127.0.0.1"
DEFAULT_PORT = int(os.environ.get("SPARK_CONNECT_LOCAL_PORT", "15002"))  # Spark Connect's own default port
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
#: The server's logging: Spark's default, less the lines every client poll and every task would add.
LOG4J2_CONFIG = Path(__file__).with_name("spark-connect-log4j2.properties")


@dataclass
class SparkConnectServer:
    """A running Spark Connect server."""

    home: str
    port: int
    pid: int

    @property
    def url(self) -> str:
        """The ``sc://`` address clients (and a ``spark_connect`` connection) use."""
        return f"sc://{HOST}:{self.port}"

    def connection_uri(self) -> str:
        """A ``spark_connect`` Airflow connection for this server, as an ``AIRFLOW_CONN_*`` value."""
        return f"spark-connect://{HOST}:{self.port}"

    def is_alive(self) -> bool:
        return pid_alive(self.pid)


# The properties file may hold S3 keys given with --conf.
SERVICE = Service(prog="connect-local", record=SparkConnectServer, state_file="server.json",
                  home_env="SPARK_CONNECT_LOCAL_HOME", folder="spark-connect",
                  home_help="server folder (logs, warehouse, state)", grace=20,
                  leftovers=("server.properties",))  # fmt: skip


def default_home() -> Path:
    return SERVICE.default_home()


def read_state(home: Path | None = None) -> SparkConnectServer | None:
    return SERVICE.read_state(home)


def server_properties(home: Path, port: int, conf: dict[str, str] | None = None) -> dict[str, str]:
    """The server's Spark settings: Delta and Kafka loaded, Delta's catalog, gRPC on ``127.0.0.1:port``."""
    s3 = any(key.startswith("spark.hadoop.fs.s3a.") for key in conf or {})  # hadoop-aws and its SDK for S3A
    dependencies = resolve_jvm_dependencies(delta=True, kafka=True, s3=s3, user_conf=conf)
    settings = dependencies.session_conf()
    settings.update({
        "spark.connect.grpc.binding.address": HOST,
        "spark.connect.grpc.binding.port": str(port),
        "spark.driver.host": HOST,
        "spark.driver.bindAddress": HOST,
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "2",
        "spark.sql.warehouse.dir": str(home / "warehouse"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={home} -Dlog4j2.configurationFile={LOG4J2_CONFIG}",
    })  # fmt: skip
    settings.update(conf or {})
    return settings


def _properties_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def start(
    home: Path | None = None, port: int | None = None, *, conf: dict[str, str] | None = None,
    memory: str = "1g", timeout: float = 180,
) -> SparkConnectServer:  # fmt: skip
    """Start a Connect server in ``home`` (or return the one already running there).

    :param port: the gRPC port; ``0`` picks a free one.
    :param conf: more Spark settings for the server (for example its own ``spark.hadoop.fs.s3a.*``).
    :param memory: the driver's heap (the server runs ``local[*]`` in its driver).
    """

    def launch(home: Path) -> SparkConnectServer:
        check_java()
        home.mkdir(parents=True, exist_ok=True)

        def start_once() -> SparkConnectServer:
            claimed = claim_port(HOST, port, DEFAULT_PORT, service="the local Spark Connect server",
                                 script="scripts/connect-local", env_var="SPARK_CONNECT_LOCAL_PORT")  # fmt: skip
            return _start_once(home, claimed, conf=conf, memory=memory, timeout=timeout)

        return retry_port_race(start_once)

    return SERVICE.start(home, launch)


def _start_once(
    home: Path, port: int, *, conf: dict[str, str] | None, memory: str, timeout: float
) -> SparkConnectServer:
    properties = home / "server.properties"
    properties.touch(mode=0o600)
    os.chmod(properties, 0o600)  # S3 keys given with conf are in it, not on the command line
    properties.write_text(
        "".join(f"{key}={_properties_value(value)}\n" for key, value in server_properties(home, port, conf).items())
    )
    command = [spark_script("spark-submit"), "--master", "local[*]", "--name", "spark-connect-local",
               "--driver-memory", memory, "--properties-file", str(properties), "--class", SERVER_CLASS, "spark-internal"]  # fmt: skip
    env = {**os.environ, "SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": HOST, "PYSPARK_PYTHON": sys.executable}
    server = spawn(command, home / "server.log", env=env, cwd=home)
    record = SparkConnectServer(home=str(home), port=port, pid=server.pid)

    def ready() -> bool:
        check_running(server, "The local Spark Connect server", lambda: log_tail(home / "server.log", 30))
        return _answers(port)

    with terminated_on_failure([server]):
        wait_for(ready, timeout=timeout, what=f"the Spark Connect server on {HOST}:{port}")
    return record


def _answers(port: int) -> bool:
    """The gRPC port accepts connections (the server binds it only once its SparkSession is up)."""
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def stop(home: Path | None = None) -> bool:
    """Stop the server recorded in ``home``; return whether one was running."""
    return SERVICE.stop(home) is not None


def _conf_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--conf needs KEY=VALUE, got {text!r}")
    return key.strip(), value


def main(argv: list[str] | None = None) -> int:
    def options(parser) -> None:
        parser.add_argument("--port", type=int, default=None, help=f"gRPC port (default {DEFAULT_PORT}; 0: free)")
        parser.add_argument("--conf", type=_conf_pair, action="append", default=[], metavar="KEY=VALUE",
                            help="a Spark setting for the server (repeatable)")  # fmt: skip

    def started(args, home: Path) -> list[str]:
        server = start(home, args.port, conf=dict(args.conf))
        return [f"running at {server.url} (pid {server.pid}, home {home})",
                f"connection: AIRFLOW_CONN_SPARK_CONNECT_DEFAULT={server.connection_uri()}"]  # fmt: skip

    return SERVICE.main(argv, doc=__doc__, options=options, start=started,
                        status=lambda server: f"running at {server.url}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
