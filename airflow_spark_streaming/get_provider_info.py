"""Provider metadata that Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from airflow_spark_streaming import __version__

#: The Streams page plugin: the ``airflow.plugins`` entry point registers it in every installed wheel.
STREAMS_PLUGIN = {
    "name": "spark_streaming_streams",
    "plugin-class": "airflow_spark_streaming.plugins.streams.plugin.StreamsPlugin",
}


def _plugin_entry_point_installed() -> bool:
    """Whether this distribution declares the plugin's ``airflow.plugins`` entry point (an installed wheel does)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        points = distribution("airflow-spark-streaming").entry_points
    except PackageNotFoundError:
        return False
    return any(p.group == "airflow.plugins" and p.value.endswith(":StreamsPlugin") for p in points)


def plugins() -> list[dict[str, str]]:
    """Provider-info plugins, read only with ``[core] lazy_discover_providers = False``. Listed only when the
    entry point (which Airflow always loads) is missing: the same plugin loaded twice is an import error."""
    return [] if _plugin_entry_point_installed() else [STREAMS_PLUGIN]


def get_provider_info() -> dict:
    return {
        "package-name": "airflow-spark-streaming",
        "name": "Spark Structured Streaming",
        "description": (
            "Spark Structured Streaming for Apache Airflow: bounded and long-running streaming jobs, "
            "checkpoint progress and Kafka lag sensors, and Delta Lake compaction and vacuum."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Spark Structured Streaming",
                "external-doc-url": "https://spark.apache.org/docs/latest/streaming/index.html",
                "tags": ["apache"],
            },
        ],
        "hooks": [
            {
                "integration-name": "Spark Structured Streaming",
                "python-modules": [
                    "airflow_spark_streaming.hooks.checkpoint",
                    "airflow_spark_streaming.hooks.checkpoint_storage",
                    "airflow_spark_streaming.hooks.control_key",
                    "airflow_spark_streaming.hooks.delta",
                    "airflow_spark_streaming.hooks.delta_history",
                    "airflow_spark_streaming.hooks.delta_readers",
                    "airflow_spark_streaming.hooks.kafka_broker",
                    "airflow_spark_streaming.hooks.kafka_lag",
                    "airflow_spark_streaming.hooks.maintenance_request",
                    "airflow_spark_streaming.hooks.pipelines",
                    "airflow_spark_streaming.hooks.runner_control",
                    "airflow_spark_streaming.hooks.spark_connect",
                    "airflow_spark_streaming.hooks.stream_connect",
                    "airflow_spark_streaming.hooks.storage",
                    "airflow_spark_streaming.hooks.stream_health",
                    "airflow_spark_streaming.hooks.submission.hook",
                ],
            },
        ],
        "operators": [
            {
                "integration-name": "Spark Structured Streaming",
                "python-modules": [
                    "airflow_spark_streaming.operators.delta",
                    "airflow_spark_streaming.operators.stop",
                    "airflow_spark_streaming.operators.streaming",
                ],
            },
        ],
        "sensors": [
            {
                "integration-name": "Spark Structured Streaming",
                "python-modules": [
                    "airflow_spark_streaming.sensors.checkpoint",
                    "airflow_spark_streaming.sensors.delta",
                    "airflow_spark_streaming.sensors.kafka_lag",
                    "airflow_spark_streaming.sensors.stream_health",
                ],
            },
        ],
        "triggers": [
            {
                "integration-name": "Spark Structured Streaming",
                "python-modules": [
                    "airflow_spark_streaming.triggers.checkpoint",
                    "airflow_spark_streaming.triggers.events",
                    "airflow_spark_streaming.triggers.kafka_lag",
                    "airflow_spark_streaming.triggers.stream_health",
                ],
            },
        ],
        "config": {
            "spark_streaming": {
                "description": "Settings of the airflow-spark-streaming provider.",
                "options": {
                    "jvm_resolver": {
                        "description": (
                            "How Spark jobs get their JVM packages (Delta, the Kafka connector): "
                            "'packages' lets spark-submit resolve them from Maven Central with Ivy; "
                            "'maven' resolves them with Maven into a local cache first and passes jars."
                        ),
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "maven",
                        "default": "packages",
                    },
                    "yarn_shared_paths": {
                        "description": (
                            "YARN nodes see this worker's Spark installation, Python virtualenv and Maven-resolved "
                            "jars at the same paths (one machine, or identical images): submit them as local: "
                            "paths instead of uploading them with every application."
                        ),
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "True",
                        "default": "False",
                    },
                    "example_storage_conn_id": {
                        "description": (
                            "The 'aws' connection the example DAGs give every operator and sensor as "
                            "storage_conn_id, for a lake root on S3; empty for a lake on local disk."
                        ),
                        "version_added": "0.2.0",
                        "type": "string",
                        "example": "lake_s3",
                        "default": "",
                    },
                },
            },
        },
        "plugins": plugins(),
    }
