"""One authenticated broker (SASL_PLAINTEXT, SASL_SSL, mutual TLS, ACLs) for the whole session."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def auth_broker(tmp_path_factory, java_major):
    from devstack import kafka

    broker = kafka.start(tmp_path_factory.mktemp("kafka-auth"), port=0, auth=True)
    yield broker
    kafka.stop(Path(broker.home))


@pytest.fixture
def auth_topic(auth_broker):
    """Make a topic as the super user over PLAINTEXT; ``owner`` sets its ``<user>.`` prefix (the ACL scope)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": auth_broker.bootstrap_servers})

    def create(owner: str = "alice", partitions: int = 1) -> str:
        name = f"{owner}.{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(timeout=30)
        return name

    return create


@pytest.fixture
def grant_topic(auth_broker):
    """Allow ``user`` the ACL ``operations`` (``"DESCRIBE"``, ``"READ"``, ...) on one topic, as the super user; returns
    once the user's own client sees the topic (the authorizer applies the ACL from the metadata log)."""
    import time

    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
    )

    admin = AdminClient({"bootstrap.servers": auth_broker.bootstrap_servers})

    def grant(user: str, topic: str, *operations: str) -> None:
        acls = [
            AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, f"User:{user}", "*",
                       getattr(AclOperation, operation), AclPermissionType.ALLOW)
            for operation in operations
        ]  # fmt: skip
        for future in admin.create_acls(acls).values():
            future.result(timeout=30)
        as_user = AdminClient(auth_broker.client_config(user))
        deadline = time.monotonic() + 30
        while True:
            try:
                as_user.describe_topics(TopicCollection([topic]), request_timeout=5)[topic].result(timeout=10)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    return grant


@pytest.fixture
def kafka_connection(monkeypatch):
    """Define a ``kafka`` connection (Airflow env-var connection) holding ``config``; returns its id."""

    def define(conn_id: str, config: dict) -> str:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "kafka", "extra": config}))
        return conn_id

    return define


def produce(config: dict, topic: str, count: int, partitions: int = 1) -> None:
    from confluent_kafka import Producer

    errors = []
    producer = Producer({**config, "linger.ms": 5, "message.timeout.ms": 20_000})
    for i in range(count):
        producer.produce(topic, key=f"key-{i}", value=f"value-{i}", partition=i % partitions,
                         on_delivery=lambda err, _msg: errors.append(err) if err else None)  # fmt: skip
    assert producer.flush(30) == 0 and errors == []
