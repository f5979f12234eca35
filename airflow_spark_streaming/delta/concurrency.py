"""Who may commit to a Delta table at the same time: the rule the maintenance operators check when parsed.

On S3, delta-spark's log store commits atomically within one driver JVM only
(docs/s3.md), so maintenance from another process must know the table's
writer: hand off to the stream that writes it (``stream_checkpoint``), or be
told that nothing else writes it (``no_concurrent_writers=True``). Light on
purpose: the operators' constructors import it at DAG parse time.
"""

from __future__ import annotations

from airflow_spark_streaming.storage.locations import is_s3_uri


def unknown_writer_refusal(task_id: str, table_uri: str, what: str) -> str | None:
    """Why a ``what`` (OPTIMIZE, VACUUM) on ``table_uri`` that knows no writer is refused; ``None`` off S3."""
    if not is_s3_uri(table_uri):
        return None  # HDFS, local disk, ABFS, GCS: the store's own create-if-absent makes commits atomic
    return (
        f"{task_id}: {table_uri} is on S3, where a {what} from this task could overwrite the commits of any other "
        "Spark writer (Delta's S3 log store is safe within one driver only), and this task knows of no writer. Set "
        "stream_checkpoint to the checkpoint of the stream that writes the table (a live stream runner then runs "
        f"the {what} itself; a stopped one lets it run here), or no_concurrent_writers=True if nothing else writes "
        "the table while this task runs. Nothing was written."
    )
