"""A Spark Declarative Pipeline for tests: the example's Kafka → streaming table flow (``example_dags/sdp_orders``),
staged with its own spec and run by the ``spark-pipelines`` CLI against a Spark Connect server, as the Spark
provider's ``SparkPipelinesOperator`` runs it over a ``spark_connect`` connection (``SPARK_REMOTE`` set,
``python -m pyspark.pipelines.cli``). The operator has no full-refresh option; the CLI's ``--full-refresh`` is it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

EXAMPLE_PIPELINE = Path(__file__).resolve().parents[2] / "example_dags" / "sdp_orders"


def stage_pipeline(folder: Path, *, table: str, topic: str, bootstrap_servers: str, storage: str) -> Path:
    """Copy the example's flow into ``folder`` with a spec writing ``table`` from ``topic``; the spec's path."""
    import yaml

    shutil.copytree(EXAMPLE_PIPELINE / "transformations", folder / "transformations",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    spec = {
        "name": f"sdp_{table}",
        "storage": storage,
        "configuration": {"spark.sql.sources.default": "delta", "sdp.orders.table": table,
                          "sdp.orders.topic": topic, "sdp.orders.bootstrap_servers": bootstrap_servers},
        "libraries": [{"glob": {"include": "transformations/**"}}],
    }  # fmt: skip
    (folder / "spark-pipeline.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder / "spark-pipeline.yml"


def run_pipeline(spec: Path, server_url: str, *options: str, timeout: float = 600) -> float:
    """One triggered run of every flow (``options``: ``--full-refresh <table>`` ...); its wall time in seconds."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pyspark.pipelines.cli", "run", "--spec", str(spec), *options],
        env={**os.environ, "SPARK_REMOTE": server_url}, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return time.monotonic() - started
