"""The demo pipeline: local Kafka → ``kafka_to_delta_incremental`` → a local Delta table → ``delta_maintenance``.

Run through ``./dev demo``. Everything lives under ``.demo/`` in the checkout:
the Airflow home, the Delta table, the checkpoint and the logs. Each run
produces a fresh batch of records, so a second run shows an incremental ingest.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from airflow_spark_streaming.exceptions import SparkStreamingError
from devstack import kafka

REPO_ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "kafka_to_delta_incremental"
MAINTENANCE_DAG_ID = "delta_maintenance"
# The demo table is small: compact once a partition holds this many small files.
DEMO_MIN_SMALL_FILES = 10
TOPIC = "demo_orders"
PARTITIONS = 4


def _ensure_topic(bootstrap_servers: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    if TOPIC in admin.list_topics(timeout=10).topics:
        return
    admin.create_topics([NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=1)])[TOPIC].result(timeout=30)


def produce_orders(bootstrap_servers: str, count: int) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap_servers, "linger.ms": 20, "acks": "all"})
    rng = random.Random()
    for _ in range(count):
        order_id = rng.getrandbits(48)
        order = {"order_id": order_id, "amount": round(rng.uniform(1, 500), 2), "ts": time.time()}
        producer.produce(TOPIC, key=str(order_id), value=json.dumps(order))
    if producer.flush(60):
        raise SparkStreamingError(f"Could not deliver every demo record to {TOPIC} on {bootstrap_servers}.")


def topic_records(bootstrap_servers: str) -> int:
    """Records in the topic: the sum of every partition's high watermark."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": "demo-inspector"})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1] for p in range(PARTITIONS))
    finally:
        consumer.close()


def table_stats(table: Path) -> dict:
    import pyarrow
    from deltalake import DeltaTable

    if not (table / "_delta_log").is_dir():
        return {"rows": 0, "files": 0, "version": None}
    delta = DeltaTable(str(table))
    files = pyarrow.table(delta.get_add_actions(flatten=True)).to_pylist()
    return {"rows": sum(f["num_records"] for f in files), "files": len(files), "version": delta.version()}


def maintenance_history(table: Path, since_version: int) -> dict:
    """What the maintenance DAG did, read back from the table history by the provider's DeltaTableHook."""
    from airflow_spark_streaming.hooks.delta import DeltaTableHook

    hook = DeltaTableHook(str(table))
    stats = hook.get_stats()
    optimized = stats.last_optimize is not None and stats.last_optimize.version > since_version
    vacuumed = stats.last_vacuum is not None and stats.last_vacuum.version > since_version
    return {
        "optimized": optimized,
        "vacuum_deleted": int(stats.last_vacuum.metrics.get("numDeletedFiles", 0)) if vacuumed else 0,
        "retention_hours": round(hook.get_retention_seconds() / 3600),
    }


def committed_batch(checkpoint: Path) -> int:
    """The newest committed batch id (-1 before the first run), read by the provider's CheckpointHook."""
    from airflow_spark_streaming.exceptions import CheckpointNotFoundError
    from airflow_spark_streaming.hooks.checkpoint import CheckpointHook

    try:
        committed = CheckpointHook(str(checkpoint)).get_status(include_state=False).latest_committed_batch
    except CheckpointNotFoundError:
        return -1
    return -1 if committed is None else committed


def kafka_lag(checkpoint: Path, records_in_topic: int) -> int:
    """Total lag of the ingest query, by the provider's KafkaLagHook; before the first run, the whole topic."""
    from airflow_spark_streaming.exceptions import CheckpointNotFoundError
    from airflow_spark_streaming.hooks.kafka_lag import get_kafka_lag

    try:
        return get_kafka_lag(str(checkpoint))["total_lag"]
    except CheckpointNotFoundError:
        return records_in_topic


def airflow_env(work: Path, bootstrap_servers: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(work / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_VAR_SPARK_STREAMING_LAKE_ROOT": str(work / "lake"),
            "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
            "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps(
                {"conn_type": "kafka", "extra": {"bootstrap.servers": bootstrap_servers}}
            ),
        }
    )
    return env


def _run_logged(command: list[str], env: dict[str, str], log: Path, what: str) -> None:
    with open(log, "w") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise SparkStreamingError(f"{what} failed (exit {done.returncode}); the end of {log}:\n{tail}")


class _Steps:
    def __init__(self) -> None:
        self.total = 0.0

    def __call__(self, title: str, action):
        print(f"  • {title} …", end="", flush=True)
        started = time.monotonic()
        result = action()
        elapsed = time.monotonic() - started
        self.total += elapsed
        print(f" done ({elapsed:.1f}s)", flush=True)
        return result


def run(work: Path, records: int, keep_broker: bool = False) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(exist_ok=True)
    table, checkpoint = work / "lake" / TOPIC, work / "lake" / "_checkpoints" / TOPIC

    step = _Steps()
    kafka_home = work / "kafka"
    was_running = kafka.read_state(kafka_home) is not None
    broker = step("Kafka broker (KRaft) on 127.0.0.1", lambda: kafka.start(kafka_home))
    try:
        return _pipeline(work, step, broker, records, table, checkpoint)
    finally:
        if not was_running and not keep_broker:
            kafka.stop(kafka_home)


def _pipeline(work: Path, step: _Steps, broker: kafka.KafkaBroker, records: int, table: Path, checkpoint: Path) -> dict:
    step(f"Produce {records:,} orders to '{TOPIC}'", lambda: (_ensure_topic(broker.bootstrap_servers),
                                                              produce_orders(broker.bootstrap_servers, records)))  # fmt: skip
    env = airflow_env(work, broker.bootstrap_servers)
    os.environ["AIRFLOW_CONN_KAFKA_DEFAULT"] = env["AIRFLOW_CONN_KAFKA_DEFAULT"]
    before = table_stats(table)
    batch_before = committed_batch(checkpoint)
    in_topic = topic_records(broker.bootstrap_servers)
    lag_before = kafka_lag(checkpoint, in_topic)

    airflow = [sys.executable, "-m", "airflow"]
    step("Airflow metadata database", lambda: _run_logged([*airflow, "db", "migrate"], env,
                                                          work / "logs" / "db-migrate.log", "airflow db migrate"))  # fmt: skip
    conf = {"topic": TOPIC}
    step(f"airflow dags test {DAG_ID}", lambda: _run_logged(
        [*airflow, "dags", "test", DAG_ID, "--conf", json.dumps(conf)], env,
        work / "logs" / f"{DAG_ID}.log", f"airflow dags test {DAG_ID}"))  # fmt: skip
    after = table_stats(table)
    maintenance = {"table": TOPIC, "min_small_files": DEMO_MIN_SMALL_FILES}
    step(f"airflow dags test {MAINTENANCE_DAG_ID}", lambda: _run_logged(
        [*airflow, "dags", "test", MAINTENANCE_DAG_ID, "--conf", json.dumps(maintenance)], env,
        work / "logs" / f"{MAINTENANCE_DAG_ID}.log", f"airflow dags test {MAINTENANCE_DAG_ID}"))  # fmt: skip
    compacted = table_stats(table)
    history = maintenance_history(table, after["version"])

    summary = {
        "dag": DAG_ID,
        "topic": TOPIC,
        "records_in_topic": in_topic,
        "rows_before": before["rows"],
        "rows_after": after["rows"],
        "rows_ingested": after["rows"] - before["rows"],
        "lag_before": lag_before,
        "lag_after": kafka_lag(checkpoint, in_topic),
        "delta_version": compacted["version"],
        "files_before_compaction": after["files"],
        "files_after_compaction": compacted["files"],
        "compacted": history["optimized"],
        "vacuum_deleted_files": history["vacuum_deleted"],
        "vacuum_retention_hours": history["retention_hours"],
        "batches_committed": committed_batch(checkpoint) - batch_before,
        "table": str(table.relative_to(REPO_ROOT)) if table.is_relative_to(REPO_ROOT) else str(table),
        "seconds": round(step.total, 1),
    }
    (work / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def print_summary(summary: dict) -> None:
    print()
    print(f"Demo summary ({summary['dag']}, {summary['seconds']}s)")
    print(
        f"  rows ingested        {summary['rows_ingested']:>10,}   ({summary['rows_before']:,} → {summary['rows_after']:,})"
    )
    print(f"  kafka lag (records)  {summary['lag_before']:>10,} before → {summary['lag_after']:,} after")
    print(f"  micro-batches        {summary['batches_committed']:>10,}")
    compaction = "compacted" if summary["compacted"] else "not needed"
    print(
        f"  delta files          {summary['files_before_compaction']:>10,} before → "
        f"{summary['files_after_compaction']:,} after compaction ({compaction})"
    )
    print(
        f"  vacuum               {summary['vacuum_deleted_files']:>10,} files removed "
        f"(retention {summary['vacuum_retention_hours']}h keeps files lagging readers need)"
    )
    print(f"  table version        {summary['delta_version']:>10,}")
    print(f"  table                {summary['table']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO_ROOT / ".demo")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--keep-broker", action="store_true", help="leave the Kafka broker running afterwards")
    args = parser.parse_args(argv)
    print(f"airflow-spark-streaming demo: {DAG_ID} then {MAINTENANCE_DAG_ID}, on local Spark, Kafka and Delta")
    try:
        summary = run(args.work, args.records, args.keep_broker)
    except SparkStreamingError as err:
        print(f"\ndemo failed: {err}", file=sys.stderr)
        return 1
    print_summary(summary)
    return 0 if summary["lag_after"] == 0 and summary["rows_ingested"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
