"""Delta maintenance with delta-spark, run by spark-submit: OPTIMIZE (bin-packing or Z-ORDER) and VACUUM.

Spec (``--spec JSON``)::

    {"action": "optimize", "table": "s3://lake/orders", "where": "day = '2026-01-01'",
     "zorder_by": ["customer_id"], "max_attempts": 5}
    {"action": "vacuum", "table": "s3://lake/orders", "retain_hours": 168, "mode": "lite", "dry_run": false}

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="delta_maintenance")
    parser.add_argument("--spec", required=True)
    spec = json.loads(parser.parse_args(argv).spec)
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName(f"delta_{spec['action']}").getOrCreate()
    {"optimize": optimize, "vacuum": vacuum}[spec["action"]](spark, spec)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
