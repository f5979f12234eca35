"""Dataset naming of airflow_spark_streaming.lineage.datasets (pure functions; no OpenLineage needed)."""

from __future__ import annotations

import subprocess
import sys

from airflow_spark_streaming.lineage.datasets import checkpoint_source_datasets, path_dataset, spec_datasets


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
    code = "import sys, airflow_spark_streaming.lineage.datasets; print(sorted(m for m in sys.modules if 'openlineage' in m))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_submit_operator_names_kafka_from_its_connection(monkeypatch):
    """A spec that names only a kafka connection still reports kafka://host:port inputs (read from the connection)."""
    import json

    from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator

    monkeypatch.setenv(
        "AIRFLOW_CONN_ORDERS_KAFKA",
        json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": "broker-1:9093,broker-2:9093"}}),
    )
    operator = SparkStreamingSubmitOperator(
        task_id="ingest",
        kafka_config_id="orders_kafka",
        spec={
            "query_name": "orders",
            "checkpoint_location": "/lake/_checkpoints/orders",
            "source": {"format": "kafka", "options": {"subscribe": "orders,payments"}},
            "sink": {"format": "delta", "path": "s3a://lake/orders"},
        },
    )
    lineage = operator.get_openlineage_facets_on_start()
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        ("kafka://broker-1:9093", "orders"),
        ("kafka://broker-1:9093", "payments"),
    ]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [("s3://lake", "orders")]


def test_delta_operators_report_the_table_and_the_commit(tmp_path):
    import pandas as pd
    from deltalake import write_deltalake

    from airflow_spark_streaming.operators.delta import ConvertFileSinkToDeltaOperator, DeltaOptimizeOperator

    table = tmp_path / "t"
    write_deltalake(str(table), pd.DataFrame({"id": [1]}))
    optimize = DeltaOptimizeOperator(task_id="compact", table_uri=str(table), engine="native")
    optimize._maintain = lambda context: {"version_after": 4, "num_files_added": 1, "num_files_removed": 6}
    optimize.execute({})
    done = optimize.get_openlineage_facets_on_complete(None)
    (output,) = done.outputs
    assert (output.namespace, output.name, output.facets["version"].datasetVersion) == ("file", str(table), "4")
    assert (done.inputs[0].namespace, done.inputs[0].name) == ("file", str(table))
    convert = ConvertFileSinkToDeltaOperator(
        task_id="convert", table_uri="s3a://lake/raw", target_uri="s3a://lake/orders", engine="spark"
    )
    started = convert.get_openlineage_facets_on_start()
    assert [(d.namespace, d.name) for d in started.inputs] == [("s3://lake", "raw")]
    assert [(d.namespace, d.name) for d in started.outputs] == [("s3://lake", "orders")]
