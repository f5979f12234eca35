"""A full refresh of a real Spark Declarative Pipeline on the shared Spark Connect server: the flow moves to
checkpoint version 1, and every reader that names the flow (the lag, progress and health sensors, the commit event
trigger) reads version 1's figures, not version 0's."""

from __future__ import annotations

import uuid

import pytest

from tests.support.sdp_pipelines import run_pipeline, stage_pipeline
from tests.support.streaming_helpers import produce_keyed, read_delta

pytestmark = pytest.mark.kafka


def _offsets(report) -> dict[int, int]:
    return {p["partition"]: p["checkpoint_offset"] for p in report["partitions"]}


def test_a_full_refresh_moves_the_flow_to_version_1_and_every_reader_follows(
    kafka_broker, kafka_topic, kafka_conn, spark_connect_server, spark_connect_conn, tmp_path
):
    from deltalake import DeltaTable

    from airflow_spark_streaming.hooks.pipelines import PipelineHook
    from airflow_spark_streaming.hooks.spark_connect import DeltaConnectHook
    from airflow_spark_streaming.pipelines.flows import FlowTarget
    from airflow_spark_streaming.sensors.checkpoint import StreamingProgressSensor
    from airflow_spark_streaming.sensors.kafka_lag import KafkaLagSensor
    from airflow_spark_streaming.sensors.stream_health import StreamHealthSensor
    from airflow_spark_streaming.storage.locations import from_spark_location
    from airflow_spark_streaming.triggers.events import CheckpointCommitEventTrigger

    kafka_conn("kafka_default")
    topic, table = kafka_topic(partitions=2), f"refresh_{uuid.uuid4().hex[:8]}"  # the server's catalog is shared
    produce_keyed(kafka_broker.bootstrap_servers, topic, 60, partitions=2)  # offsets 30 and 30
    storage = tmp_path / "storage"
    spec = stage_pipeline(tmp_path, table=table, topic=topic, bootstrap_servers=kafka_broker.bootstrap_servers,
                          storage=storage.as_uri())  # fmt: skip
    flow = storage / "_checkpoints" / "spark_catalog" / "default" / table / table
    by_flow = {"pipeline_spec": str(spec), "flow": table}

    run_pipeline(spec, spark_connect_server.url)
    lag = KafkaLagSensor(task_id="lag", max_total_lag=0, **by_flow)
    health = StreamHealthSensor(task_id="health", wait_for=["OK"], fail_on=["REWOUND", "STALLED"], **by_flow)
    events = CheckpointCommitEventTrigger(**by_flow)
    before = lag.poke({}).xcom_value
    assert before["checkpoint"] == (flow / "0").as_uri() and before["batch_id"] == 0
    assert (_offsets(before), before["total_lag"]) == ({0: 30, 1: 30}, 0)
    seen_before = health.poke({}).xcom_value  # the sensor keeps its check, and the mark, between pokes
    first = events.read_after(None)
    assert first.position == 0 and first.identity == (flow / "0").as_uri()

    produce_keyed(kafka_broker.bootstrap_servers, topic, 20, partitions=2)  # offsets 40 and 40
    run_pipeline(spec, spark_connect_server.url, "--full-refresh", table)

    resolved = PipelineHook().resolve(FlowTarget(flow=table, spec=str(spec)))
    assert resolved.found and resolved.flow.versions == (0, 1) and resolved.flow.version == 1
    assert resolved.checkpoint == (flow / "1").as_uri()
    assert sorted(p.name for p in (flow / "1" / "commits").iterdir() if p.name.isdigit()) == ["0"]
    assert sorted(p.name for p in (flow / "0" / "commits").iterdir() if p.name.isdigit()) == ["0"]  # kept as it was

    # The same sensor objects, poked again: version 1's batch 0 read every record, so no lag.
    after = lag.poke({}).xcom_value
    assert after["checkpoint"] == (flow / "1").as_uri() and after["batch_id"] == 0
    assert (_offsets(after), after["total_lag"]) == ({0: 40, 1: 40}, 0)
    # Version 0 read by its path is what the sensors no longer use: 20 records behind.
    old = KafkaLagSensor(task_id="old", checkpoint=str(flow / "0"), max_total_lag=100).poke({}).xcom_value
    assert (_offsets(old), old["total_lag"]) == ({0: 30, 1: 30}, 20)

    progress = StreamingProgressSensor(task_id="progress", target_batch_id=0, **by_flow).poke({})
    assert progress.is_done and progress.xcom_value["checkpoint"] == (flow / "1").as_uri()
    committed = progress.xcom_value["committed_sources"]
    assert [s["offset"] for s in committed] == [{topic: {"0": 40, "1": 40}}]

    seen_after = health.poke({}).xcom_value  # the mark from version 0 is carried: no REWOUND
    assert seen_after["status"] == "OK" and seen_after["last_committed_batch"] == 0
    assert seen_after["query_id"] != seen_before["query_id"]  # a new checkpoint is a new query
    assert {p["partition"]: p["lag"] for p in seen_after["partitions"]} == {f"{topic}:0": 0, f"{topic}:1": 0}

    # To the commit event trigger the refresh is a recreated checkpoint (another identity), read from its start:
    # its batch 0 is news (the unit test of the trigger's loop shows it fire, and a restart repeat nothing).
    refreshed = events.read_after(first.position)
    assert refreshed.identity == (flow / "1").as_uri() != first.identity
    batches = events.read_after(-1).commits
    assert [(b["checkpoint_version"], b["batch_id"]) for b in batches] == [(1, 0)]
    assert [s["offset"] for s in batches[0]["sources"]] == [{topic: {"0": 40, "1": 40}}]

    # The refresh truncated the table and read the topic again from its start: each record once, not 60 + 80.
    located = DeltaConnectHook(spark_connect_conn()).describe_table(resolved.flow.qualified_table)
    assert located.format == "delta" and located.name == f"spark_catalog.default.{table}"
    rows = read_delta(from_spark_location(located.location))
    assert sorted((r["kafka_partition"], r["kafka_offset"]) for r in rows) == [
        (p, o) for p in (0, 1) for o in range(40)
    ]
    operations = [c["operation"] for c in DeltaTable(from_spark_location(located.location)).history()]
    assert operations[:4] == ["STREAMING UPDATE", "SET TBLPROPERTIES", "TRUNCATE", "STREAMING UPDATE"]


def test_a_flow_whose_table_the_catalog_does_not_hold_is_a_named_error(spark_connect_conn, tmp_path):
    from airflow_spark_streaming.exceptions import CatalogTableNotFoundError
    from airflow_spark_streaming.hooks.spark_connect import DeltaConnectHook
    from airflow_spark_streaming.operators.delta import DeltaOptimizeOperator

    connect, missing = spark_connect_conn(), f"never_run_{uuid.uuid4().hex[:8]}"
    with pytest.raises(
        CatalogTableNotFoundError, match=rf"has no table default\.{missing} \(TABLE_OR_VIEW_NOT_FOUND\)"
    ):
        DeltaConnectHook(connect).describe_table(f"default.{missing}")
    with pytest.raises(
        CatalogTableNotFoundError, match=r"has no table no_such_db\.orders \((SCHEMA|TABLE_OR_VIEW)_NOT"
    ):
        DeltaConnectHook(connect).describe_table("no_such_db.orders")
    # A flow that has not run: the operator asks for the table Spark will create, and stops before any maintenance.
    task = DeltaOptimizeOperator(task_id="compact", pipeline_storage=tmp_path.as_uri(), flow=missing, engine="spark",
                                 spark_conn_id=connect)  # fmt: skip
    with pytest.raises(CatalogTableNotFoundError, match=rf"has no table spark_catalog\.default\.{missing} "):
        task.execute({})
    assert task.table_uri is None


def test_the_health_mark_of_the_version_before_a_refresh_is_not_compared(
    kafka_broker, kafka_topic, kafka_conn, tmp_path
):
    # A rate-limited flow caught mid-refresh: version 1's batch 0 is below version 0's offsets. That is a new
    # query in a new checkpoint, not an older copy of the old one: no REWOUND. (Spark-format checkpoints, a real
    # broker; no Spark run needed.)
    from airflow_spark_streaming.sensors.stream_health import StreamHealthSensor
    from tests.support.stream_checkpoints import write_kafka_checkpoint

    topic = kafka_topic(partitions=2)
    produce_keyed(kafka_broker.bootstrap_servers, topic, 60, partitions=2)
    flow = tmp_path / "_checkpoints" / "spark_catalog" / "default" / "orders" / "orders"

    def spark_writes(version: int, batches: int) -> None:  # SDP's queries write no runner progress events
        write_kafka_checkpoint(flow / str(version), batches=batches, topic=topic, progress=False)
        (flow / str(version) / "_progress").rmdir()

    spark_writes(0, batches=5)  # batches of 10..14 records: offsets 30 and 30
    health = StreamHealthSensor(task_id="health", pipeline_storage=str(tmp_path), flow="orders",
                                kafka_config_id=kafka_conn(), wait_for=["OK", "LAGGING", "STALLED", "STOPPED"],
                                fail_on=["REWOUND"])  # fmt: skip
    before = health.poke({}).xcom_value
    assert (before["status"], before["last_committed_batch"]) == ("OK", 4)
    assert before["mark"]["offsets"] == {f"{topic}:0": 30, f"{topic}:1": 30}

    spark_writes(1, batches=1)  # the refresh's first batch: 10 records, offsets 5 and 5
    after = health.poke({}).xcom_value  # fail_on=REWOUND would raise
    assert after["status"] == "OK" and after["last_committed_batch"] == 0, after["reason"]
    assert {p["partition"]: p["lag"] for p in after["partitions"]} == {f"{topic}:0": 25, f"{topic}:1": 25}
    assert after["mark"]["offsets"] == {f"{topic}:0": 5, f"{topic}:1": 5}
