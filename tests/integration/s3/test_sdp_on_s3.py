"""A Spark Declarative Pipeline whose storage root is on S3: the shared Connect server writes the flow's checkpoint
to the session's S3 server with its own S3A settings, and the sensors resolve the flow there through the ``aws``
connection and read the same figures as from the checkpoint's own path."""

from __future__ import annotations

import uuid

import pytest

from tests.support.sdp_pipelines import run_pipeline, stage_pipeline
from tests.support.streaming_helpers import produce_keyed

pytestmark = [pytest.mark.kafka]


def test_a_pipeline_with_its_storage_on_s3_is_resolved_and_read_there(
    kafka_broker, kafka_topic, kafka_conn, s3_server, s3_bucket, storage_conn, spark_connect_server, tmp_path
):
    from airflow_spark_streaming.hooks.pipelines import PipelineHook
    from airflow_spark_streaming.pipelines.flows import FlowTarget
    from airflow_spark_streaming.sensors.checkpoint import StreamingProgressSensor
    from airflow_spark_streaming.sensors.kafka_lag import KafkaLagSensor

    conn_id = storage_conn()
    kafka_conn("kafka_default")
    topic, table = kafka_topic(partitions=2), f"on_s3_{uuid.uuid4().hex[:8]}"
    produce_keyed(kafka_broker.bootstrap_servers, topic, 60, partitions=2)
    spec = stage_pipeline(tmp_path, table=table, topic=topic, bootstrap_servers=kafka_broker.bootstrap_servers,
                          storage=f"s3a://{s3_bucket}/sdp")  # fmt: skip

    run_pipeline(spec, spark_connect_server.url)

    flow = f"sdp/_checkpoints/spark_catalog/default/{table}/{table}/0"
    keys = {o["Key"] for o in s3_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert {f"{flow}/metadata", f"{flow}/offsets/0", f"{flow}/commits/0"} <= keys
    resolved = PipelineHook(conn_id).resolve(FlowTarget(flow=table, spec=str(spec)))
    assert resolved.found and resolved.flow.versions == (0,)
    assert resolved.checkpoint == f"s3a://{s3_bucket}/{flow}"

    by_flow = {"pipeline_spec": str(spec), "flow": table, "storage_conn_id": conn_id}
    by_path = {"checkpoint": f"s3://{s3_bucket}/{flow}", "storage_conn_id": conn_id}
    lag_by_flow = KafkaLagSensor(task_id="lag", max_total_lag=0, **by_flow).poke({}).xcom_value
    lag_by_path = KafkaLagSensor(task_id="lag", max_total_lag=0, **by_path).poke({}).xcom_value
    assert {p["partition"]: p["checkpoint_offset"] for p in lag_by_flow["partitions"]} == {0: 30, 1: 30}
    assert (lag_by_flow["total_lag"], lag_by_flow["batch_id"]) == (0, 0)
    # Reports name the checkpoint as the storage hook describes it (s3://<connection>@<bucket>/...): the same one.
    assert lag_by_flow["checkpoint"] == lag_by_path["checkpoint"] and lag_by_flow["checkpoint"].endswith(flow)
    figures = lambda report: [(p["partition"], p["checkpoint_offset"], p["lag"]) for p in report["partitions"]]  # noqa: E731
    assert figures(lag_by_flow) == figures(lag_by_path)

    progress = StreamingProgressSensor(task_id="progress", target_batch_id=0, **by_flow).poke({})
    assert progress.is_done and progress.xcom_value["latest_committed_batch"] == 0
    assert [s["offset"] for s in progress.xcom_value["committed_sources"]] == [{topic: {"0": 30, "1": 30}}]
