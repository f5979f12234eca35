"""The SDP example DAG end to end (dag.test): a real Spark Declarative Pipeline from Kafka into a Delta streaming
table on the shared Spark Connect server, its flow's lag, and OPTIMIZE over Connect; then every sensor gives the
same figures for the pipeline's flow as for the same checkpoint read by its path."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.support.streaming_helpers import produce_keyed, read_delta

pytestmark = pytest.mark.kafka

#: What does not depend on how the checkpoint was named: its spelling (file:// from the spec, a plain path) and the
#: time a report was made are left out.
_TIMED = {
    "checkpoint",
    "measured_at",
    "checked_at",
    "commit_age_seconds",
    "seconds_since_last_commit",
    "lease",
    "round_trips",
}


def _figures(payload):
    if isinstance(payload, dict):
        return {
            k: _figures(v)
            for k, v in payload.items()
            if k not in _TIMED and not k.endswith("_at") and "age" not in k and "time" not in k
        }
    if isinstance(payload, list):
        return [_figures(v) for v in payload]
    return payload


def test_sdp_pipeline_dag_runs_and_its_flow_reads_like_its_checkpoint(
    airflow_db, kafka_broker, kafka_topic, kafka_conn, spark_connect_server, spark_connect_conn, tmp_path, monkeypatch
):
    from airflow.dag_processing.dagbag import DagBag

    from airflow_spark_streaming.hooks.delta import DeltaTableHook
    from airflow_spark_streaming.hooks.pipelines import PipelineHook
    from airflow_spark_streaming.pipelines.flows import FlowTarget
    from airflow_spark_streaming.sensors.checkpoint import StreamingProgressSensor
    from airflow_spark_streaming.sensors.kafka_lag import KafkaLagSensor
    from airflow_spark_streaming.sensors.stream_health import StreamHealthSensor
    from airflow_spark_streaming.triggers.events import CheckpointCommitEventTrigger

    kafka_conn("kafka_default")
    spark_connect_conn("spark_connect_default")
    monkeypatch.setenv("AIRFLOW_VAR_SPARK_STREAMING_LAKE_ROOT", str(tmp_path / "lake"))
    topic, table = kafka_topic(partitions=3), f"orders_{uuid.uuid4().hex[:8]}"  # the server's catalog is shared
    produce_keyed(kafka_broker.bootstrap_servers, topic, 90, partitions=3)

    dag = DagBag(dag_folder="example_dags").dags["example_sdp_pipeline"]
    run = dag.test(run_conf={"topic": topic, "table": table})

    assert run.state == "success", {ti.task_id: ti.state for ti in run.get_task_instances()}
    compact = run.get_task_instance("compact").xcom_pull(task_ids="compact")
    # The table was located by the Connect server's catalog: the server's own warehouse, no setting of ours.
    located = Path(spark_connect_server.home).resolve() / "warehouse" / table
    assert compact["table_uri"] == str(located) and compact["spark_transport"] == "connect"
    assert compact["catalog_table"]["name"] == f"spark_catalog.default.{table}"
    assert compact["catalog_table"]["format"] == "delta" and compact["catalog_table"]["location"].startswith("file:")
    rows = read_delta(located)
    assert sorted(int(r["key"].removeprefix("key-")) for r in rows) == list(range(90))
    assert {r["topic"] for r in rows} == {topic}

    # Spark's layout: <storage>/_checkpoints/<catalog>/<database>/<table>/<flow>/<version>, one batch per run.
    spec = tmp_path.resolve() / "lake" / "sdp" / table / "spark-pipeline.yml"
    checkpoint = (
        tmp_path.resolve() / "lake" / "sdp" / table / "storage" / "_checkpoints" / "spark_catalog" / "default" / table
    )
    checkpoint = checkpoint / table / "0"
    assert sorted(p.name for p in (checkpoint / "commits").iterdir() if p.name.isdigit()) == ["0"]
    resolved = PipelineHook().resolve(FlowTarget(flow=table, spec=str(spec)))
    assert resolved.found and resolved.checkpoint == checkpoint.as_uri()  # spark-pipelines wants a file:// storage

    lag = run.get_task_instance("lag_check").xcom_pull(task_ids="lag_check")
    assert lag["checkpoint"] == checkpoint.as_uri() and lag["total_lag"] == 0 and lag["batch_id"] == 0
    assert {(p["partition"], p["checkpoint_offset"]) for p in lag["partitions"]} == {(0, 30), (1, 30), (2, 30)}
    assert DeltaTableHook(str(located)).get_stats().num_files == compact["files_after"]

    # The same checkpoint named two ways: by the pipeline and flow, and by its path. Same figures.
    by_flow = {"pipeline_spec": str(spec), "flow": table}
    by_path = {"checkpoint": str(checkpoint)}
    for make in (
        lambda **where: KafkaLagSensor(task_id="lag", max_total_lag=0, **where),
        lambda **where: StreamingProgressSensor(task_id="progress", target_batch_id=0, **where),
        lambda **where: StreamHealthSensor(
            task_id="health", wait_for=["OK", "LAGGING", "STALLED", "STOPPED"], fail_on=["REWOUND"], **where
        ),
    ):
        flow_sensor, path_sensor = make(**by_flow), make(**by_path)
        context = {"dag_run": run}
        from_flow = flow_sensor.poke(context).xcom_value
        from_path = path_sensor.poke(context).xcom_value
        assert json.loads(json.dumps(_figures(from_flow), default=str)) == json.loads(
            json.dumps(_figures(from_path), default=str)
        ), type(flow_sensor).__name__
    assert from_flow["last_committed_batch"] == 0  # the health report, last in the loop

    # The commit event trigger: the flow's batches, each with the checkpoint version it read.
    by_flow_events = CheckpointCommitEventTrigger(pipeline_storage=str(spec.parent / "storage"), flow=table)
    position, batches, identity = by_flow_events.read_after(-1)
    path_position, path_batches, _ = CheckpointCommitEventTrigger(checkpoint=str(checkpoint)).read_after(-1)
    assert position == path_position == 0
    assert identity == str(checkpoint)  # a full refresh (the next checkpoint version) reads as a new location
    assert [b["batch_id"] for b in batches] == [b["batch_id"] for b in path_batches] == [0]
    assert batches[0]["checkpoint"] == str(checkpoint)  # pipeline_storage given as a plain path
    assert batches[0]["sources"] == path_batches[0]["sources"]
    kind, kwargs = by_flow_events.serialize()
    assert (kwargs["pipeline_storage"], kwargs["flow"], kwargs["checkpoint"]) == (
        str(spec.parent / "storage"),
        table,
        None,
    )
