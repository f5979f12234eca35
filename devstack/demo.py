"""The demo pipeline: local Kafka → ``kafka_to_delta_incremental`` → a local Delta table → ``delta_maintenance``.

Run through ``./dev demo``. Everything lives under ``.demo/`` in the checkout:
the Airflow home, the Delta table, the checkpoint and the logs. Each run
produces a fresh batch of records, so a second run shows an incremental ingest.

``./dev demo --s3`` puts the lake (table and checkpoint) on the local S3 server
instead, started and stopped like the broker, and hands both DAGs one ``aws``
connection (``lake_s3``) as their ``storage_conn_id``.

The terminal shows the demo's own lines only. Each ``airflow`` command logs to
``.demo/logs/<command>.log``; what this process itself logs (Airflow's line per
connection lookup of the hooks that read the table and checkpoint, the Kafka
client's notes) goes to ``.demo/logs/demo.log``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from airflow_spark_streaming.exceptions import SparkStreamingError
from devstack import kafka, s3

REPO_ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "kafka_to_delta_incremental"
MAINTENANCE_DAG_ID = "delta_maintenance"
# The demo table is small: compact once a partition holds this many small files. Every run writes
# at least 8: 20,000 records at 10,000 per batch is 2 batches or more, each with a file per Kafka
# partition (4). At 10, a run that happened to commit only 2 batches skipped the compaction it shows.
DEMO_MIN_SMALL_FILES = 6
TOPIC = "demo_orders"
PARTITIONS = 4
S3_CONN_ID = "lake_s3"
S3_BUCKET = "demo-lake"


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


def table_stats(table: str, storage_conn_id: str | None = None) -> dict:
    from airflow_spark_streaming.exceptions import NotADeltaTableError
    from airflow_spark_streaming.hooks.delta import DeltaTableHook

    try:
        stats = DeltaTableHook(table, storage_conn_id=storage_conn_id).get_stats()
    except NotADeltaTableError:
        return {"rows": 0, "files": 0, "version": None}
    return {"rows": stats.num_records or 0, "files": stats.num_files, "version": stats.version}


def maintenance_history(table: str, since_version: int, storage_conn_id: str | None = None) -> dict:
    """What the maintenance DAG did, read back from the table history by the provider's DeltaTableHook."""
    from airflow_spark_streaming.hooks.delta import DeltaTableHook

    hook = DeltaTableHook(table, storage_conn_id=storage_conn_id)
    stats = hook.get_stats()
    optimized = stats.last_optimize is not None and stats.last_optimize.version > since_version
    vacuumed = stats.last_vacuum is not None and stats.last_vacuum.version > since_version
    return {
        "optimized": optimized,
        "vacuum_deleted": int(stats.last_vacuum.metrics.get("numDeletedFiles", 0)) if vacuumed else 0,
        "retention_hours": round(hook.get_retention_seconds() / 3600),
    }


def committed_batch(checkpoint: str, storage_conn_id: str | None = None) -> int:
    """The newest committed batch id (-1 before the first run), read by the provider's CheckpointHook."""
    from airflow_spark_streaming.exceptions import CheckpointNotFoundError
    from airflow_spark_streaming.hooks.checkpoint import CheckpointHook

    try:
        committed = (
            CheckpointHook(checkpoint, storage_conn_id=storage_conn_id)
            .get_status(include_state=False)
            .latest_committed_batch
        )
    except CheckpointNotFoundError:
        return -1
    return -1 if committed is None else committed


def kafka_lag(checkpoint: str, records_in_topic: int, storage_conn_id: str | None = None) -> int:
    """Total lag of the ingest query, by the provider's KafkaLagHook; before the first run, the whole topic."""
    from airflow_spark_streaming.exceptions import CheckpointNotFoundError
    from airflow_spark_streaming.hooks.kafka_lag import get_kafka_lag

    try:
        return get_kafka_lag(checkpoint, storage_conn_id=storage_conn_id)["total_lag"]
    except CheckpointNotFoundError:
        return records_in_topic


def airflow_env(work: Path, bootstrap_servers: str, lake_root: str, storage: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            **storage,
            "AIRFLOW_HOME": str(work / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_VAR_SPARK_STREAMING_LAKE_ROOT": lake_root,
            "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
            "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps(
                {"conn_type": "kafka", "extra": {"bootstrap.servers": bootstrap_servers}}
            ),
        }
    )
    # The control key that signs the records the provider acts on (a fresh random one per demo run).
    env.setdefault("AIRFLOW_CONN_SPARK_STREAMING_CONTROL_DEFAULT",
                   json.dumps({"conn_type": "generic", "password": secrets.token_hex(32)}))  # fmt: skip
    return env


def _run_logged(command: list[str], env: dict[str, str], log: Path, what: str) -> None:
    with open(log, "w") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise SparkStreamingError(f"{what} failed (exit {done.returncode}); the end of {log}:\n{tail}")


@contextmanager
def output_to(log: Path) -> Iterator[tuple[TextIO, TextIO]]:
    """Send everything this process writes to stdout and stderr to ``log``; yield the terminal's two streams.

    The redirect is of file descriptors 1 and 2, so it holds whatever writes there: Airflow's
    log handlers (an INFO line per connection lookup), librdkafka, warnings, a traceback.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    terminal = os.dup(1), os.dup(2)
    try:
        with open(log, "ab") as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
        with (open(terminal[0], "w", buffering=1, closefd=False) as out,
              open(terminal[1], "w", buffering=1, closefd=False) as err):  # fmt: skip
            yield out, err
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(terminal[0], 1)
        os.dup2(terminal[1], 2)
        os.close(terminal[0])
        os.close(terminal[1])


class _Steps:
    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.total = 0.0

    def __call__(self, title: str, action):
        print(f"  • {title} …", end="", flush=True, file=self.out)
        started = time.monotonic()
        result = action()
        elapsed = time.monotonic() - started
        self.total += elapsed
        print(f" done ({elapsed:.1f}s)", flush=True, file=self.out)
        return result


def run(work: Path, records: int, keep_broker: bool = False, on_s3: bool = False, out: TextIO | None = None) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(exist_ok=True)

    step = _Steps(out)
    kafka_home, s3_home = work / "kafka", work / "s3"
    was_running = kafka.read_state(kafka_home) is not None
    s3_was_running = s3.read_state(s3_home) is not None
    broker = step("Kafka broker (KRaft) on 127.0.0.1", lambda: kafka.start(kafka_home))
    try:
        storage: dict[str, str] = {}
        if on_s3:
            server = step("S3 server (moto) on 127.0.0.1", lambda: s3.start(s3_home, port=0))
            if S3_BUCKET not in {b["Name"] for b in server.client().list_buckets()["Buckets"]}:
                server.client().create_bucket(Bucket=S3_BUCKET)
            storage = {
                f"AIRFLOW_CONN_{S3_CONN_ID.upper()}": server.connection_uri(),
                "AIRFLOW__SPARK_STREAMING__EXAMPLE_STORAGE_CONN_ID": S3_CONN_ID,
                # hadoop-aws and its SDK (~650 MB) from the Maven cache, not Ivy on every submit
                "AIRFLOW__SPARK_STREAMING__JVM_RESOLVER": "maven",
            }
            os.environ.update(storage)  # this process reads the lake through the same connection
            lake_root = f"s3a://{S3_BUCKET}/lake"
        else:
            lake_root = str(work / "lake")
        return _pipeline(work, step, broker, records, lake_root, storage)
    finally:
        if on_s3 and not s3_was_running and not keep_broker:
            s3.stop(s3_home)
        if not was_running and not keep_broker:
            kafka.stop(kafka_home)


def _pipeline(work: Path, step: _Steps, broker: kafka.KafkaBroker, records: int, lake_root: str,
              storage: dict[str, str]) -> dict:  # fmt: skip
    table, checkpoint = f"{lake_root}/{TOPIC}", f"{lake_root}/_checkpoints/{TOPIC}"
    conn = S3_CONN_ID if storage else None
    step(f"Produce {records:,} orders to '{TOPIC}'", lambda: (_ensure_topic(broker.bootstrap_servers),
                                                              produce_orders(broker.bootstrap_servers, records)))  # fmt: skip
    env = airflow_env(work, broker.bootstrap_servers, lake_root, storage)
    os.environ["AIRFLOW_CONN_KAFKA_DEFAULT"] = env["AIRFLOW_CONN_KAFKA_DEFAULT"]
    before = table_stats(table, conn)
    batch_before = committed_batch(checkpoint, conn)
    in_topic = topic_records(broker.bootstrap_servers)
    lag_before = kafka_lag(checkpoint, in_topic, conn)

    airflow = [sys.executable, "-m", "airflow"]
    step("Airflow metadata database", lambda: _run_logged([*airflow, "db", "migrate"], env,
                                                          work / "logs" / "db-migrate.log", "airflow db migrate"))  # fmt: skip
    conf = {"topic": TOPIC}
    step(f"airflow dags test {DAG_ID}", lambda: _run_logged(
        [*airflow, "dags", "test", DAG_ID, "--conf", json.dumps(conf)], env,
        work / "logs" / f"{DAG_ID}.log", f"airflow dags test {DAG_ID}"))  # fmt: skip
    after = table_stats(table, conn)
    # Naming the stream's checkpoint is what lets maintenance run beside it on S3.
    maintenance = {"table": TOPIC, "stream_checkpoint": checkpoint, "min_small_files": DEMO_MIN_SMALL_FILES}
    step(f"airflow dags test {MAINTENANCE_DAG_ID}", lambda: _run_logged(
        [*airflow, "dags", "test", MAINTENANCE_DAG_ID, "--conf", json.dumps(maintenance)], env,
        work / "logs" / f"{MAINTENANCE_DAG_ID}.log", f"airflow dags test {MAINTENANCE_DAG_ID}"))  # fmt: skip
    compacted = table_stats(table, conn)
    history = maintenance_history(table, after["version"], conn)

    summary = {
        "dag": DAG_ID,
        "topic": TOPIC,
        "records_in_topic": in_topic,
        "rows_before": before["rows"],
        "rows_after": after["rows"],
        "rows_ingested": after["rows"] - before["rows"],
        "lag_before": lag_before,
        "lag_after": kafka_lag(checkpoint, in_topic, conn),
        "delta_version": compacted["version"],
        "files_before_compaction": after["files"],
        "files_after_compaction": compacted["files"],
        "compacted": history["optimized"],
        "vacuum_deleted_files": history["vacuum_deleted"],
        "vacuum_retention_hours": history["retention_hours"],
        "batches_committed": committed_batch(checkpoint, conn) - batch_before,
        "table": _shown(table),
        "logs": _shown(str(work / "logs")),
        "seconds": round(step.total, 1),
    }
    (work / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _shown(table: str) -> str:
    path = Path(table)
    return str(path.relative_to(REPO_ROOT)) if "://" not in table and path.is_relative_to(REPO_ROOT) else table


def print_summary(summary: dict, out: TextIO | None = None) -> None:
    compaction = "compacted" if summary["compacted"] else "not needed"
    lines = [
        "",
        f"Demo summary ({summary['dag']}, {summary['seconds']}s)",
        f"  rows ingested        {summary['rows_ingested']:>10,}   ({summary['rows_before']:,} → {summary['rows_after']:,})",
        f"  kafka lag (records)  {summary['lag_before']:>10,} before → {summary['lag_after']:,} after",
        f"  micro-batches        {summary['batches_committed']:>10,}",
        f"  delta files          {summary['files_before_compaction']:>10,} before → "
        f"{summary['files_after_compaction']:,} after compaction ({compaction})",
        f"  vacuum               {summary['vacuum_deleted_files']:>10,} files removed "
        f"(retention {summary['vacuum_retention_hours']}h keeps files lagging readers need)",
        f"  table version        {summary['delta_version']:>10,}",
        f"  table                {summary['table']}",
    ]
    if "logs" in summary:
        lines.append(f"  logs                 {summary['logs']}")
    print("\n".join(lines), file=out or sys.stdout, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO_ROOT / ".demo")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--keep-broker", action="store_true", help="leave the Kafka broker (and S3 server) running")
    parser.add_argument("--s3", action="store_true", help="keep the lake on the local S3 server, not local disk")
    args = parser.parse_args(argv)
    where = "the local S3 server" if args.s3 else "local disk"
    print(f"airflow-spark-streaming demo: {DAG_ID} then {MAINTENANCE_DAG_ID}, on local Spark, Kafka and Delta "
          f"(lake on {where})", flush=True)  # fmt: skip
    log = args.work / "logs" / "demo.log"
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(f"\ndemo failed: cannot create {log.parent} ({err}); pick a writable folder with --work", file=sys.stderr)
        return 1
    with output_to(log) as (out, err):
        try:
            summary = run(args.work, args.records, args.keep_broker, on_s3=args.s3, out=out)
        except SparkStreamingError as error:
            print(f"\ndemo failed: {error}", file=err)
            return 1
        except Exception as error:  # not one of the provider's: the traceback is for the log
            traceback.print_exc()
            print(f"\ndemo failed: {type(error).__name__}: {error}; the traceback is at the end of {log}", file=err)
            return 1
        print_summary(summary, out)
    return 0 if summary["lag_after"] == 0 and summary["rows_ingested"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
