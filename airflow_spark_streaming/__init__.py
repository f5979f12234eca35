"""airflow-spark-streaming: an Apache Airflow 3 provider for Spark Structured Streaming.

Importing the package is cheap on purpose: the scheduler imports providers while
it parses DAGs, so no module here imports pyspark, delta, deltalake or
confluent_kafka at module level.
"""

from __future__ import annotations

__version__ = "0.1.0"

from airflow_spark_streaming.utils import moved_modules as _moved_modules

_moved_modules.install()
