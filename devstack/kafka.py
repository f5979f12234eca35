"""A real single-node Apache Kafka broker (KRaft) on 127.0.0.1, for tests and the demo.

The broker runs from Apache Kafka's own jars, resolved from Maven Central with
Maven and cached; no Docker engine and no Kafka download are needed.

Usage::

    python -m devstack.kafka start|stop|status [--home DIR] [--port 9092]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from airflow_spark_streaming.exceptions import SparkStreamingError
from airflow_spark_streaming.jvm import cache_dir, resolve_with_maven
from devstack.errors import LocalStackError, PortInUseError
from devstack.java import check_java, java_executable
from devstack.process import free_port, pid_alive, port_is_free, terminate, wait_for

KAFKA_VERSION = "4.1.1"
KAFKA_SERVER_PACKAGE = f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}"
DEFAULT_PORT = int(os.environ.get("KAFKA_LOCAL_PORT", "9092"))
HOST = "127.0.0.1"

_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka.server.KafkaRaftServer
logger.kafka.level = INFO
"""


@dataclass
class KafkaBroker:
    """A running broker: where it lives and how to reach it."""

    home: str
    port: int
    controller_port: int
    pid: int

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    def is_alive(self) -> bool:
        return pid_alive(self.pid)


def default_home() -> Path:
    return Path(os.environ.get("KAFKA_LOCAL_HOME") or cache_dir() / "kafka-local")


def _state_file(home: Path) -> Path:
    return home / "broker.json"


def read_state(home: Path) -> KafkaBroker | None:
    """The broker recorded in ``home``, if it is still running."""
    try:
        broker = KafkaBroker(**json.loads(_state_file(home).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return broker if broker.is_alive() else None


def _server_properties(home: Path, port: int, controller_port: int) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(home / "data"),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "delete.topic.enable": "true",
        # Tests change retention and delete records; check often.
        "log.retention.check.interval.ms": "1000",
    }
    return "".join(f"{k}={v}\n" for k, v in settings.items())


def _java_command(home: Path, classpath: str, main: str, *args: str) -> list[str]:
    return [
        str(java_executable()),
        "-Xms256m",
        "-Xmx768m",
        "-XX:+UseG1GC",
        f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={home / 'logs'}",
        "-cp",
        classpath,
        main,
        *args,
    ]


def _log_tail(home: Path, lines: int = 15) -> str:
    text = ""
    for name in ("stdout.log", "logs/server.log"):
        path = home / name
        if path.exists():
            text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
    return text.strip()


def start(home: Path | None = None, port: int | None = None, *, timeout: float = 120) -> KafkaBroker:
    """Start a broker in ``home`` (or return the one already running there).

    :param port: the client port; ``0`` picks a free one. The controller port
        is always picked free.
    """
    home = Path(home or default_home())
    running = read_state(home)
    if running:
        return running
    port = DEFAULT_PORT if port is None else port
    port = port or free_port()
    if not port_is_free(HOST, port):
        raise PortInUseError(
            f"Port {port} on {HOST} is already in use by another process, so the local Kafka broker "
            f"cannot listen there; stop that process (for example 'scripts/kafka-local stop') or pick "
            f"another port with KAFKA_LOCAL_PORT=<port>."
        )
    check_java()
    controller_port = free_port()
    jars = resolve_with_maven([KAFKA_SERVER_PACKAGE])
    classpath = os.pathsep.join(str(j) for j in jars)

    home.mkdir(parents=True, exist_ok=True)
    (home / "logs").mkdir(exist_ok=True)
    (home / "server.properties").write_text(_server_properties(home, port, controller_port))
    (home / "log4j2.properties").write_text(_LOG4J2.format(log=home / "logs" / "server.log"))
    if not (home / "data" / "meta.properties").exists():
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        formatted = subprocess.run(
            _java_command(home, classpath, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                          "-c", str(home / "server.properties"), "--ignore-formatted"),
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if formatted.returncode != 0:
            raise LocalStackError(
                f"Formatting the Kafka storage in {home / 'data'} failed: "
                f"{(formatted.stdout + formatted.stderr).strip()[-800:]}; remove {home} and try again."
            )

    with open(home / "stdout.log", "wb") as out:
        process = subprocess.Popen(
            _java_command(home, classpath, "kafka.Kafka", str(home / "server.properties")),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    broker = KafkaBroker(home=str(home), port=port, controller_port=controller_port, pid=process.pid)

    def ready() -> bool:
        if process.poll() is not None:
            raise LocalStackError(
                f"The local Kafka broker exited with code {process.returncode} while starting; "
                f"its log ends with:\n{_log_tail(home)}"
            )
        return not port_is_free(HOST, port) and _broker_answers(broker.bootstrap_servers)

    try:
        wait_for(ready, timeout=timeout, what=f"the Kafka broker on {HOST}:{port}")
    except Exception:
        terminate(process.pid)
        raise
    _state_file(home).write_text(json.dumps(asdict(broker)))
    return broker


def _broker_answers(bootstrap_servers: str) -> bool:
    from confluent_kafka.admin import AdminClient

    try:
        metadata = AdminClient({"bootstrap.servers": bootstrap_servers}).list_topics(timeout=5)
    except Exception:  # the broker is not up yet
        return False
    return bool(metadata.brokers)


def stop(home: Path | None = None) -> bool:
    """Stop the broker recorded in ``home``; return whether one was running."""
    home = Path(home or default_home())
    broker = read_state(home)
    _state_file(home).unlink(missing_ok=True)
    if broker is None:
        return False
    terminate(broker.pid)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kafka-local", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--home", type=Path, default=None, help="broker folder (data, logs, state)")
    parser.add_argument("--port", type=int, default=None, help=f"client port (default {DEFAULT_PORT})")
    args = parser.parse_args(argv)
    home = Path(args.home or default_home())
    try:
        if args.command == "start":
            broker = start(home, args.port)
            print(f"kafka-local: running on {broker.bootstrap_servers} (pid {broker.pid}, home {home})")
        elif args.command == "stop":
            print("kafka-local: stopped" if stop(home) else "kafka-local: was not running")
        else:
            broker = read_state(home)
            print(f"kafka-local: running on {broker.bootstrap_servers}" if broker else "kafka-local: not running")
            return 0 if broker else 3
    except SparkStreamingError as err:
        print(f"kafka-local: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
