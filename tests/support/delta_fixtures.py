"""A real Delta table with hundreds of small files, written by a real streaming query."""

from __future__ import annotations

import json
import shutil

import pytest


@pytest.fixture(scope="session")
def small_files_table(spark, tmp_path_factory):
    """A partitioned Delta table (3 partitions) written by two micro-batches of 100 tasks each: ~600 files."""
    base = tmp_path_factory.mktemp("small-files")
    source = base / "input"
    source.mkdir()
    for batch in range(2):
        rows = [{"id": batch * 3000 + i, "region": ["eu", "us", "apac"][i % 3], "amount": i % 97} for i in range(3000)]
        (source / f"batch-{batch}.json").write_text("\n".join(json.dumps(r) for r in rows))
    query = (
        spark.readStream.schema("id LONG, region STRING, amount INT")
        .option("maxFilesPerTrigger", 1)
        .json(str(source))
        .repartition(100)
        .writeStream.format("delta")
        .partitionBy("region")
        .option("checkpointLocation", str(base / "checkpoint"))
        .trigger(availableNow=True)
        .start(str(base / "table"))
    )
    query.awaitTermination()
    return base / "table"


@pytest.fixture
def table_copy(small_files_table, tmp_path):
    target = tmp_path / "table"
    shutil.copytree(small_files_table, target)
    return target


def rows_of(table) -> list[tuple]:
    from deltalake import DeltaTable

    return sorted(
        tuple(r.values())
        for r in DeltaTable(str(table)).to_pyarrow_table(columns=["id", "region", "amount"]).to_pylist()
    )
