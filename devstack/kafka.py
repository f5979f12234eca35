"""A real single-node Apache Kafka broker (KRaft) on 127.0.0.1, for tests and the demo.

The broker runs from Apache Kafka's own jars, resolved from Maven Central with
Maven and cached; no Docker engine and no Kafka download are needed.

With ``auth=True`` (``--auth``) the broker also listens with SASL_PLAINTEXT,
SASL_SSL and mutual-TLS SSL, enforces ACLs and has users; see
:mod:`devstack.kafka_auth`.

Usage::

    python -m devstack.kafka start|stop|status [--home DIR] [--port 9092] [--auth]
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from airflow_spark_streaming.spark.jvm import resolve_with_maven
from devstack.errors import LocalStackError
from devstack.java import check_java, java_executable
from devstack.process import (
    check_running,
    claim_port,
    free_port,
    log_tail,
    pid_alive,
    port_is_free,
    retry_port_race,
    spawn,
    terminated_on_failure,
    wait_for,
)
from devstack.service import Service

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
    """A running broker: where it lives and how to reach it.

    ``port`` is the PLAINTEXT listener. An authenticated broker (``auth``) also
    has ``listeners`` (security protocol -> port), a CA file clients trust,
    ``passwords`` per user (``admin`` is the super user; ``alice`` and ``bob``
    may only use topics and groups named ``<user>.*``) and PEM client
    certificates/keys per test user for mutual TLS.
    """

    home: str
    port: int
    controller_port: int
    pid: int
    auth: bool = False
    listeners: dict[str, int] = field(default_factory=dict)
    ca_file: str | None = None
    other_ca_file: str | None = None
    passwords: dict[str, str] = field(default_factory=dict, repr=False)
    client_certificates: dict[str, str] = field(default_factory=dict)
    client_keys: dict[str, str] = field(default_factory=dict)

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    def bootstrap(self, protocol: str = "PLAINTEXT") -> str:
        """``host:port`` of the listener with this security protocol."""
        port = self.port if protocol == "PLAINTEXT" else self.listeners.get(protocol)
        if port is None:
            raise LocalStackError(f"The broker in {self.home} has no {protocol} listener; start it with auth=True.")
        return f"{HOST}:{port}"

    def client_config(self, user: str, protocol: str = "SASL_PLAINTEXT", mechanism: str = "SCRAM-SHA-512") -> dict:
        """A confluent-kafka config (a ``kafka`` connection's extra) for ``user`` over ``protocol``."""
        config = {"bootstrap.servers": self.bootstrap(protocol), "security.protocol": protocol}
        if protocol.startswith("SASL_"):
            config.update({"sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": self.passwords[user]})
        if protocol.endswith("SSL"):
            config["ssl.ca.location"] = self.ca_file
        if protocol == "SSL":
            config.update({"ssl.certificate.location": self.client_certificates[user],
                           "ssl.key.location": self.client_keys[user]})  # fmt: skip
        return config

    def is_alive(self) -> bool:
        return pid_alive(self.pid)


# broker.json is private: it holds the throwaway users' passwords.
SERVICE = Service(prog="kafka-local", record=KafkaBroker, state_file="broker.json", home_env="KAFKA_LOCAL_HOME",
                  folder="kafka-local", home_help="broker folder (data, logs, state)", private=True)  # fmt: skip


def default_home() -> Path:
    return SERVICE.default_home()


def read_state(home: Path | None = None) -> KafkaBroker | None:
    """The broker recorded in ``home``, if it is still running."""
    return SERVICE.read_state(home)


def _properties_value(value: str) -> str:
    """Escape a value for java.util.Properties (backslashes and line breaks)."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def _server_properties(
    home: Path, port: int, controller_port: int, listeners: dict[str, int] | None = None, extra=None
) -> str:
    client = {"PLAINTEXT": port, **(listeners or {})}
    advertised = ",".join(f"{name}://{HOST}:{p}" for name, p in client.items())
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{controller_port}",
        "listeners": f"{advertised},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": advertised,
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": ",".join(f"{n}:{n}" for n in client) + ",CONTROLLER:PLAINTEXT",
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
        **(extra or {}),
    }
    return "".join(f"{k}={_properties_value(v)}\n" for k, v in settings.items())


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


def _log_tail(home: Path) -> str:
    return "\n".join(filter(None, (log_tail(home / "stdout.log"), log_tail(home / "logs" / "server.log"))))


def new_cluster_id() -> str:
    """A KRaft cluster id: URL-safe base64 of a random UUID, like Kafka's ``Uuid.randomUuid``.

    One id in 64 would start with ``-``, which the storage tool's argument parser reads as an
    option; Kafka's own generator draws again in that case, and so does this.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def start(
    home: Path | None = None, port: int | None = None, *, auth: bool = False, timeout: float = 120
) -> KafkaBroker:
    """Start a broker in ``home`` (or return the one already running there).

    :param port: the PLAINTEXT client port; ``0`` picks a free one. The
        controller port and the authenticated listeners' ports are always picked free.
    :param auth: also listen with SASL_PLAINTEXT, SASL_SSL and SSL (mutual
        TLS), with throwaway TLS material, users and ACLs made at start.
    """

    def launch(home: Path) -> KafkaBroker:
        check_java()
        jars = resolve_with_maven([KAFKA_SERVER_PACKAGE])
        classpath = os.pathsep.join(str(j) for j in jars)

        def start_once() -> KafkaBroker:
            claimed = claim_port(HOST, port, DEFAULT_PORT, service="the local Kafka broker",
                                 script="scripts/kafka-local", env_var="KAFKA_LOCAL_PORT")  # fmt: skip
            return _start_once(home, classpath, claimed, auth=auth, timeout=timeout)

        return retry_port_race(start_once)

    return SERVICE.start(home, launch)


def _start_once(home: Path, classpath: str, port: int, *, auth: bool, timeout: float) -> KafkaBroker:
    controller_port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    (home / "logs").mkdir(exist_ok=True)
    listeners: dict[str, int] = {}
    extra: dict[str, str] = {}
    tls = passwords = None
    if auth:
        from devstack import kafka_auth

        listeners = {name: free_port() for name in ("SASL_PLAINTEXT", "SASL_SSL", "SSL")}
        tls, passwords = kafka_auth.make_tls(home), kafka_auth.new_passwords()
        extra = kafka_auth.server_settings(tls, passwords)
    properties = home / "server.properties"
    properties.touch(mode=0o600)
    os.chmod(properties, 0o600)  # PLAIN users' passwords are in it
    properties.write_text(_server_properties(home, port, controller_port, listeners, extra))
    (home / "log4j2.properties").write_text(_LOG4J2.format(log=home / "logs" / "server.log"))
    if not (home / "data" / "meta.properties").exists():
        cluster_id = new_cluster_id()
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

    server = spawn(_java_command(home, classpath, "kafka.Kafka", str(home / "server.properties")), home / "stdout.log")
    broker = KafkaBroker(home=str(home), port=port, controller_port=controller_port, pid=server.pid, auth=auth,
                         listeners=listeners)  # fmt: skip
    if tls is not None:
        broker.ca_file, broker.other_ca_file, broker.passwords = tls.ca_file, tls.other_ca_file, passwords
        broker.client_certificates, broker.client_keys = tls.client_certificates, tls.client_keys

    def ready() -> bool:
        check_running(server, "The local Kafka broker", lambda: _log_tail(home))
        return not port_is_free(HOST, port) and _broker_answers(broker.bootstrap_servers)

    with terminated_on_failure([server]):
        wait_for(ready, timeout=timeout, what=f"the Kafka broker on {HOST}:{port}")
        if auth:
            from devstack import kafka_auth

            kafka_auth.provision(broker.bootstrap_servers, broker.passwords)
            wait_for(lambda: _broker_answers(broker.bootstrap("SASL_PLAINTEXT"), broker.client_config("alice")),
                     timeout=timeout, what="SCRAM login of the test user")  # fmt: skip
    return broker


def _broker_answers(bootstrap_servers: str, config: dict | None = None) -> bool:
    from confluent_kafka.admin import AdminClient

    try:
        metadata = AdminClient({**(config or {}), "bootstrap.servers": bootstrap_servers}).list_topics(timeout=5)
    except Exception:  # the broker is not up yet
        return False
    return bool(metadata.brokers)


def stop(home: Path | None = None) -> bool:
    """Stop the broker recorded in ``home``; return whether one was running."""
    return SERVICE.stop(home) is not None


def main(argv: list[str] | None = None) -> int:
    def options(parser) -> None:
        parser.add_argument("--port", type=int, default=None, help=f"client port (default {DEFAULT_PORT})")
        parser.add_argument("--auth", action="store_true",
                            help="add SASL_PLAINTEXT, SASL_SSL and mTLS listeners + ACLs")  # fmt: skip

    def started(args, home: Path) -> list[str]:
        broker = start(home, args.port, auth=args.auth)
        lines = [f"running on {broker.bootstrap_servers} (pid {broker.pid}, home {home})"]
        lines += [f"{name} on {HOST}:{listener_port}" for name, listener_port in broker.listeners.items()]
        if broker.auth:
            lines.append(f"CA {broker.ca_file}; users and passwords in {SERVICE.state_path(home)}")
        return lines

    return SERVICE.main(argv, doc=__doc__, options=options, start=started,
                        status=lambda broker: f"running on {broker.bootstrap_servers}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
