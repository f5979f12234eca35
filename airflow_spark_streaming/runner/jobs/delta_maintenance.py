"""Delta maintenance with delta-spark, run by spark-submit: OPTIMIZE, VACUUM, and converting file-sink output.

Spec (``--spec JSON``)::

    {"action": "optimize", "table": "s3://lake/orders", "where": "`day` = '2026-01-01'",
     "zorder_by": ["customer_id"], "max_attempts": 5}
    {"action": "vacuum", "table": "s3://lake/orders", "retain_hours": 168, "mode": "lite", "dry_run": false}
    {"action": "convert", "table": "s3://lake/raw_orders", "target": "s3://lake/orders", "files_per_partition": 1}

This program only builds the session: the statements and their checks are
:mod:`airflow_spark_streaming.delta.spark_maintenance`, which the stream runner's hand-off and the
Spark Connect hook run too. Metrics are not printed for Airflow to scrape: OPTIMIZE and VACUUM
record them in the table history, which the Airflow side reads afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    from airflow_spark_streaming.delta import spark_maintenance
except ImportError:  # spark-submit runs this file by path; a driver whose Python lacks the package finds it here
    sys.path.append(str(Path(__file__).resolve().parents[3]))
    from airflow_spark_streaming.delta import spark_maintenance


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="delta_maintenance")
    parser.add_argument("--spec", required=True)
    spec = json.loads(parser.parse_args(argv).spec)
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName(f"delta_{spec['action']}").getOrCreate()
    spark_maintenance.run(spark, spec)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
