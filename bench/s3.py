"""The provider on S3 (the local moto server): checkpoint status, the lag poke, and compaction.

* checkpoint status: ``CheckpointHook.get_status()`` on an ``s3://`` checkpoint
  with 100, 1,000 and 10,000 retained batches; S3 requests counted by a botocore
  event hook on the s3fs client (every HTTP request, retries included);
* the lag poke: ``KafkaLagHook.get_lag()`` reading an ``s3://`` checkpoint
  (needs the local Kafka broker; started here);
* compaction: ``DeltaOptimizeOperator`` with the native and the Spark engine on
  a table of 2,000 small files on ``s3://`` (the Spark engine through spark-submit,
  hadoop-aws resolved with Maven).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import bench_main

SIZES, SMOKE_SIZES = (100, 1_000, 10_000), (10, 100)
FILES, SMOKE_FILES = 2_000, 120
CONN_ID = "bench_s3"


def upload_tree(client, local: Path, bucket: str, prefix: str) -> int:
    """Upload every file under ``local`` to ``s3://bucket/prefix``; returns the file count."""
    files = [p for p in local.rglob("*") if p.is_file() and not p.name.endswith(".crc")]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda p: client.upload_file(str(p), bucket, f"{prefix}/{p.relative_to(local)}"), files))
    return len(files)


def count_requests(fs) -> Counter:
    """Count the HTTP requests s3fs sends, by operation."""
    calls: Counter[str] = Counter()
    fs.connect()  # s3fs makes its aiobotocore client lazily
    client = fs.s3

    def before_send(request, **_):
        calls[request.context.get("operation_name") or request.method] += 1

    client.meta.events.register("before-send.s3", before_send)
    return calls


def checkpoint_status(server, bucket: str, smoke: bool) -> list[dict]:
    from airflow_spark_streaming.hooks.checkpoint import CheckpointHook
    from bench.checkpoint_status import build_checkpoint

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-s3-ckpt-") as work:
        for batches in SMOKE_SIZES if smoke else SIZES:
            prefix = f"checkpoints/b{batches}"
            upload_tree(server.client(), build_checkpoint(Path(work) / str(batches), batches), bucket, prefix)
            timings, calls = [], Counter()
            for _ in range(3 if smoke else 7):
                hook = CheckpointHook(f"s3://{bucket}/{prefix}", storage_conn_id=CONN_ID)
                hook.root.fs.invalidate_cache()  # no listing cached from the previous round
                calls = count_requests(hook.root.fs)
                calls.clear()
                started = time.perf_counter()
                status = hook.get_status()
                timings.append(time.perf_counter() - started)
            assert status.latest_committed_batch == batches - 1
            rows.append({"case": "checkpoint_status", "size": batches, "s3_requests": sum(calls.values()),
                         "median_ms": round(statistics.median(timings) * 1000, 1),
                         "requests": dict(sorted(calls.items()))})  # fmt: skip
    return rows


def lag_poke(server, bucket: str, smoke: bool) -> list[dict]:
    from airflow_spark_streaming.hooks.kafka_lag import KafkaLagHook
    from bench.kafka_lag import READ_PER_PARTITION, RECORDS_PER_PARTITION, prepare_topic, use_broker, write_checkpoint
    from devstack import kafka

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-s3-lag-") as work:
        broker = kafka.start(Path(work) / "kafka", port=0)
        try:
            conn_id = use_broker(broker.bootstrap_servers)
            partitions = 8
            topic = prepare_topic(broker.bootstrap_servers, partitions)
            write_checkpoint(Path(work) / "ckpt", topic, partitions)
            upload_tree(server.client(), Path(work) / "ckpt", bucket, "lag/ckpt")
            hook = KafkaLagHook(conn_id)
            hook.admin  # connect once, outside the timing  # noqa: B018
            timings, report = [], None
            for _ in range(3 if smoke else 10):
                started = time.perf_counter()
                report = hook.get_lag(f"s3://{bucket}/lag/ckpt", storage_conn_id=CONN_ID)
                timings.append(time.perf_counter() - started)
            assert report.total_lag == partitions * (RECORDS_PER_PARTITION - READ_PER_PARTITION)
            rows.append({"case": "lag_poke", "size": partitions, "median_ms": round(statistics.median(timings) * 1000, 1),
                         "kafka_round_trips": report.round_trips})  # fmt: skip
        finally:
            kafka.stop(Path(work) / "kafka")
    return rows


def compaction(server, bucket: str, smoke: bool) -> list[dict]:
    from airflow_spark_streaming.hooks.delta import DeltaTableHook
    from airflow_spark_streaming.operators.delta import DeltaOptimizeOperator
    from bench.compaction import build_table

    os.environ.setdefault("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))
    os.environ["AIRFLOW__SPARK_STREAMING__JVM_RESOLVER"] = "maven"
    files = SMOKE_FILES if smoke else FILES
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-s3-compaction-") as work:
        build_table(Path(work) / "base", files)
        for engine in ("native", "spark"):
            uri = f"s3://{bucket}/tables/{engine}"
            upload_tree(server.client(), Path(work) / "base", bucket, f"tables/{engine}")
            files_before = DeltaTableHook(uri, storage_conn_id=CONN_ID).get_stats().num_files
            started = time.perf_counter()
            result = DeltaOptimizeOperator(
                task_id=f"bench_{engine}",
                table_uri=uri,
                engine=engine,
                storage_conn_id=CONN_ID,
                no_concurrent_writers=True,  # the benchmark's own table: nothing else writes it
            ).execute({})
            rows.append({"case": f"compaction_{engine}", "size": files_before, "files_after": result["files_after"],
                         "seconds": round(time.perf_counter() - started, 2)})  # fmt: skip
    return rows


def run(args) -> list[dict]:
    from devstack import s3

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as home:
        server = s3.start(Path(home), port=0)
        try:
            os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = server.connection_uri()
            bucket = "bench"
            server.client().create_bucket(Bucket=bucket)
            wanted = set(args.cases or ("status", "lag", "compaction"))
            rows = []
            if "status" in wanted:
                rows += checkpoint_status(server, bucket, args.smoke)
            if "lag" in wanted:
                rows += lag_poke(server, bucket, args.smoke)
            if "compaction" in wanted:
                rows += compaction(server, bucket, args.smoke)
            return rows
        finally:
            s3.stop(Path(home))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    chosen = sorted({args[i + 1] for i, a in enumerate(args[:-1]) if a == "--case"})
    name = "s3" if not chosen or len(chosen) == 3 else "s3-" + "-".join(chosen)  # a partial run keeps the full one
    return bench_main(args, doc=__doc__, name=name, title="The provider on S3 (local moto server)", run=run,
                      hidden_columns=("requests",),
                      add_arguments=lambda parser: parser.add_argument(
                          "--case", dest="cases", action="append", choices=("status", "lag", "compaction")),
                      notes="local moto S3 server on 127.0.0.1 (auth enforced); s3_requests counted with a botocore "
                            "before-send hook on the s3fs client; compaction seconds include spark-submit start-up")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
