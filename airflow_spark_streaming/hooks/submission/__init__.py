"""Submission of drivers that outlive their task: the hook, one backend per cluster manager, and the Spark adapter."""

from __future__ import annotations

from airflow_spark_streaming.hooks.submission.hook import StreamingSubmitHook, latest_committed_batch
from airflow_spark_streaming.spark.submission.backends import python_launcher_jar
from airflow_spark_streaming.spark.submission.models import (
    ACTIVE_STATES,
    SUCCEEDED_STATES,
    DriverState,
    SparkJob,
    SparkSubmission,
)

__all__ = [
    "ACTIVE_STATES",
    "SUCCEEDED_STATES",
    "DriverState",
    "SparkJob",
    "SparkSubmission",
    "StreamingSubmitHook",
    "latest_committed_batch",
    "python_launcher_jar",
]
