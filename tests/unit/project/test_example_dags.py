"""Every example DAG imports without errors, as the scheduler would parse it."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLE_DAGS = Path(__file__).resolve().parents[3] / "example_dags"


@pytest.fixture(scope="module")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(EXAMPLE_DAGS))


def test_no_import_errors(dag_bag):
    assert dag_bag.import_errors == {}
    assert len(dag_bag.dags) == len(list(EXAMPLE_DAGS.glob("*.py")))


def test_kafka_to_delta_incremental_shape(dag_bag):
    dag = dag_bag.dags["kafka_to_delta_incremental"]
    assert dag.max_active_runs == 1
    assert set(dag.task_dict) == {"build_spec", "ingest", "progress_check", "lag_check", "table_summary"}
    ingest = dag.task_dict["ingest"]
    assert type(ingest).__name__ == "SparkStreamingSubmitOperator" and ingest.application is None
    assert dag.task_dict["progress_check"].upstream_task_ids == {"build_spec", "ingest"}
    assert dag.task_dict["lag_check"].upstream_task_ids == {"build_spec", "ingest"}
    assert dag.task_dict["table_summary"].upstream_task_ids == {"build_spec", "progress_check", "lag_check"}


def test_delta_maintenance_shape(dag_bag):
    dag = dag_bag.dags["delta_maintenance"]
    order = ["small_files_check", "optimize", "vacuum_dry_run", "vacuum"]
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert dag.task_dict[downstream].upstream_task_ids == {upstream}
    assert dag.task_dict["vacuum_dry_run"].dry_run and not dag.task_dict["vacuum"].dry_run
    # On S3 both committing tasks must know the writing stream, or they refuse beside it.
    assert "stream_checkpoint" in dag.params
    for task_id in ("optimize", "vacuum"):
        assert dag.task_dict[task_id].stream_checkpoint == "{{ params.stream_checkpoint }}"


def test_example_sdp_pipeline_names_the_flow_not_a_checkpoint(dag_bag):
    dag = dag_bag.dags["example_sdp_pipeline"]
    order = ["stage_pipeline", "run_pipeline", "lag_check", "compact"]
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert dag.task_dict[downstream].upstream_task_ids == {upstream}
    run = dag.task_dict["run_pipeline"]
    assert type(run).__name__ == "SparkPipelinesOperator" and run._conn_id == "spark_connect_default"
    lag, compact = dag.task_dict["lag_check"], dag.task_dict["compact"]
    for task in (lag, compact):
        assert (task.pipeline_spec, task.flow) == (run.pipeline_spec, "{{ params.table }}")
    assert lag.checkpoint is None and compact.stream_checkpoint is None
    # The checked-in spec is one the pure module reads, and its libraries are beside it.
    from airflow_spark_streaming.pipelines.spec import parse_pipeline_spec

    spec = parse_pipeline_spec((EXAMPLE_DAGS / "sdp_orders" / "spark-pipeline.yml").read_bytes())
    assert spec.configuration == {"spark.sql.sources.default": "delta"}
    assert spec.libraries == ("transformations/**",)
    assert (EXAMPLE_DAGS / "sdp_orders" / "transformations" / "orders.py").is_file()
