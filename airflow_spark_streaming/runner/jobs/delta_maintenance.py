"""Delta maintenance with delta-spark, run by spark-submit: OPTIMIZE, VACUUM, and converting file-sink output.

Spec (``--spec JSON``)::

    {"action": "optimize", "table": "s3://lake/orders", "where": "day = '2026-01-01'",
     "zorder_by": ["customer_id"], "max_attempts": 5}
    {"action": "vacuum", "table": "s3://lake/orders", "retain_hours": 168, "mode": "lite", "dry_run": false}
    {"action": "convert", "table": "s3://lake/raw_orders", "target": "s3://lake/orders", "files_per_partition": 1}

Metrics are not printed for Airflow to scrape: OPTIMIZE and VACUUM record them
in the table history, which the Airflow side reads afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def _quote(path: str) -> str:
    return "delta.`" + path.replace("`", "``") + "`"


def optimize(spark, spec: dict) -> None:
    statement = f"OPTIMIZE {_quote(spec['table'])}"
    if spec.get("where"):
        statement += f" WHERE {spec['where']}"
    if spec.get("zorder_by"):
        statement += " ZORDER BY (" + ", ".join(f"`{c}`" for c in spec["zorder_by"]) + ")"
    attempts = int(spec.get("max_attempts", 5))
    for attempt in range(1, attempts + 1):
        try:
            spark.sql(statement).collect()
            return
        except Exception as err:  # delta-spark raises Py4J-wrapped ConcurrentModificationException subclasses
            if "Concurrent" not in str(err) or attempt == attempts:
                raise
            print(f"delta_maintenance: OPTIMIZE conflicted ({attempt}/{attempts}); retrying", file=sys.stderr)
            time.sleep(2 * attempt)


def vacuum(spark, spec: dict) -> None:
    mode = {"lite": " LITE", "full": " FULL"}.get(spec.get("mode", "lite"), "")
    dry = " DRY RUN" if spec.get("dry_run") else ""
    # The Airflow side has already checked the retention against the table and the readers.
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    spark.conf.set("spark.databricks.delta.vacuum.logging.enabled", "true")
    spark.sql(f"VACUUM {_quote(spec['table'])}{mode} RETAIN {float(spec['retain_hours'])} HOURS{dry}").collect()


def convert(spark, spec: dict) -> None:
    """Parquet file-sink output to Delta, reading through its _spark_metadata log.

    With a ``target``: copy-compact into a new Delta table (the source is not
    touched). Without: CONVERT TO DELTA in place, which adds a Delta log over the
    files the sink's log lists (``convert.useMetadataLog``) and rewrites nothing.
    """
    source = spec["table"]
    partition_by = spec.get("partition_by") or []
    if spec.get("target"):
        frame = spark.read.parquet(source)  # a single root path: Spark reads only the files in _spark_metadata
        per_partition = int(spec.get("files_per_partition", 1))
        frame = frame.repartition(per_partition, *partition_by) if partition_by else frame.repartition(per_partition)
        writer = frame.write.format("delta").mode("errorifexists")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.save(spec["target"])
        return
    # NO STATISTICS: Spark's converted-file stats carry -1 counts that delta-rs refuses to read.
    statement = f"CONVERT TO DELTA parquet.`{source.replace('`', '``')}` NO STATISTICS"
    if partition_by:
        schema = spark.read.parquet(source).schema
        columns = ", ".join(f"`{c}` {schema[c].dataType.simpleString()}" for c in partition_by)
        statement += f" PARTITIONED BY ({columns})"
    spark.sql(statement).collect()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="delta_maintenance")
    parser.add_argument("--spec", required=True)
    spec = json.loads(parser.parse_args(argv).spec)
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName(f"delta_{spec['action']}").getOrCreate()
    {"optimize": optimize, "vacuum": vacuum, "convert": convert}[spec["action"]](spark, spec)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
