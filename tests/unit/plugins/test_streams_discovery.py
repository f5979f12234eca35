"""Which location a task's template fields name, as discovery reads them (the database part runs in the deployment tests)."""

from __future__ import annotations

import json

from airflow_spark_streaming.plugins.streams.discovery import _from_fields


def test_a_spec_names_the_checkpoint_the_delta_sink_and_the_query():
    spec = {"query_name": "orders", "checkpoint_location": "/lake/_checkpoints/orders",
            "source": {"format": "kafka", "kafka_config_id": "brokers", "options": {"kafka.sasl.jaas.config": "pw"}},
            "sink": {"format": "delta", "path": "/lake/orders"}}  # fmt: skip
    for rendered in (spec, json.dumps(spec), repr(spec)):  # a dict, JSON, or the repr Airflow stores
        named = _from_fields("SparkStreamingSubmitOperator", {"spec": rendered, "checkpoint": None})
        assert (named.location, named.sink_table, named.query_name, named.kafka_config_id) == (
            "/lake/_checkpoints/orders", "/lake/orders", "orders", "brokers")  # fmt: skip


def test_a_templated_location_stays_unresolved_with_its_template():
    named = _from_fields("KafkaLagSensor", {"checkpoint": "{{ ti.xcom_pull(task_ids='spec', key='checkpoint') }}"})
    assert named.location is None and named.template.startswith("{{ ti.xcom_pull")
    named = _from_fields(
        "SparkStreamingSubmitOperator", {"spec": "{{ ti.xcom_pull(task_ids='spec') }}", "checkpoint": None}
    )
    assert named.location is None and "xcom_pull" in named.template


def test_spec_text_that_is_neither_a_template_nor_a_dict_is_never_shown():
    named = _from_fields("SparkStreamingSubmitOperator", {"spec": "not json, password=hunter2", "checkpoint": None})
    assert named is None
