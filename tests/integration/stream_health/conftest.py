"""Fixtures of the stream-health tests: topics created with explicit configs on the session's broker."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def admin(kafka_broker):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": kafka_broker.bootstrap_servers})


@pytest.fixture
def make_topic(admin):
    from confluent_kafka.admin import NewTopic

    def create(partitions: int = 1, **config: str) -> str:
        name = f"health-{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(name, partitions, 1, config=config)])[name].result(30)
        return name

    return create
