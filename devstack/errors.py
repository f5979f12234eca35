"""Errors of the local development stack."""

from __future__ import annotations

from airflow_spark_streaming.exceptions import SparkStreamingError


class LocalStackError(SparkStreamingError):
    """A local service (Kafka broker, Spark master or worker) could not be started."""


class PortInUseError(LocalStackError):
    """The port a local service must listen on is taken by another process."""
