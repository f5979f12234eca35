"""Test DAG: operators wired to airflow_spark_streaming.lineage the way the provider's operators are,
run with dag.test() while the OpenLineage provider writes its events to a file transport."""

from __future__ import annotations

from airflow.sdk import DAG, BaseOperator, Param

from airflow_spark_streaming.lineage import delta_result_lineage, streaming_job_lineage


class StreamLikeOperator(BaseOperator):
    """Stands in for SparkStreamingSubmitOperator: the same two-line wiring, no Spark job."""

    template_fields = ("spec",)

    def __init__(self, *, spec, **kwargs):
        super().__init__(**kwargs)
        self.spec = spec

    def execute(self, context):
        return "ran"

    def get_openlineage_facets_on_start(self):
        return streaming_job_lineage(spec=self.spec)

    def get_openlineage_facets_on_complete(self, task_instance):
        return streaming_job_lineage(spec=self.spec)


class CompactOperator(BaseOperator):
    """A real delta-rs OPTIMIZE, reported like the Delta maintenance operators."""

    template_fields = ("table_uri",)

    def __init__(self, *, table_uri, **kwargs):
        super().__init__(**kwargs)
        self.table_uri = table_uri
        self._result = None

    def execute(self, context):
        from deltalake import DeltaTable

        metrics = DeltaTable(self.table_uri).optimize.compact()
        self._result = {
            "version_after": DeltaTable(self.table_uri).version(),
            "num_files_added": metrics["numFilesAdded"],
            "num_files_removed": metrics["numFilesRemoved"],
        }
        return self._result

    def get_openlineage_facets_on_start(self):
        return delta_result_lineage(self.table_uri, None, "OPTIMIZE")

    def get_openlineage_facets_on_complete(self, task_instance):
        return delta_result_lineage(self.table_uri, self._result, "OPTIMIZE")


with DAG(
    dag_id="lineage_probe",
    schedule=None,
    params={"table_uri": Param("", type="string"), "sink_uri": Param("", type="string")},
) as dag:
    ingest = StreamLikeOperator(
        task_id="ingest",
        spec={
            "query_name": "orders_to_delta",
            "checkpoint_location": "{{ params.sink_uri }}/_checkpoint",
            "source": {
                "format": "kafka",
                "options": {
                    "kafka.bootstrap.servers": "127.0.0.1:19092,127.0.0.1:19093",
                    "subscribe": "orders,payments",
                },
            },
            "sink": {"format": "delta", "path": "{{ params.sink_uri }}"},
        },
    )
    ingest >> CompactOperator(task_id="compact", table_uri="{{ params.table_uri }}")
