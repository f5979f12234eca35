"""Dataset naming of airflow_spark_streaming.lineage (pure functions; no OpenLineage needed)."""

from __future__ import annotations

import subprocess
import sys

from airflow_spark_streaming.lineage import checkpoint_source_datasets, path_dataset, spec_datasets


def key(dataset):
    return dataset.namespace, dataset.name


def test_dataset_naming():
    assert key(path_dataset("s3a://lake/tables/orders/", "delta")) == ("s3://lake", "tables/orders")
    assert key(path_dataset("file:///data/x/", "delta")) == ("file", "/data/x")
    assert key(path_dataset("abfss://c@acct.dfs.core.windows.net/t", "delta")) == (
        "abfss://c@acct.dfs.core.windows.net",
        "t",
    )
    inputs, outputs = spec_datasets(
        {
            "source": {"format": "json", "path": "gs://raw/events", "options": {}},
            "sink": {"format": "kafka", "options": {"kafka.bootstrap.servers": "SSL://k1:9093", "topic": "clean"}},
        }
    )
    assert [(d.namespace, d.name, d.kind) for d in inputs] == [("gs://raw", "events", "json")]
    assert [(d.namespace, d.name, d.kind) for d in outputs] == [("kafka://k1:9093", "clean", "kafka")]
    committed = [
        {"index": 0, "source_id": "0", "kind": "kafka", "offset": {"b": {"0": 5}, "a": {"0": 1}},
         "kafka": {"b": {"0": 5}, "a": {"0": 1}}},
        {"index": 1, "source_id": "1", "kind": "file", "offset": {"logOffset": 3}},
    ]  # fmt: skip
    found = checkpoint_source_datasets(committed, kafka_bootstrap_servers="broker:9092")
    assert [(d.namespace, d.name) for d in found] == [("kafka://broker:9092", "a"), ("kafka://broker:9092", "b")]
    assert checkpoint_source_datasets(committed) == []  # no brokers known: no Kafka dataset guessed


def test_importing_lineage_imports_no_openlineage():
    code = "import sys, airflow_spark_streaming.lineage; print(sorted(m for m in sys.modules if 'openlineage' in m))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
