"""Spark Declarative Pipelines (``pyspark.pipelines``): a pipeline spec and where its flows keep their checkpoints.

Pure, no I/O: :mod:`.spec` reads the text of a ``spark-pipeline.yml`` the caller read, :mod:`.flows` names flows
and computes their checkpoint locations under the spec's ``storage`` root. The listing of a storage root is in
:mod:`airflow_spark_streaming.hooks.pipelines`. See docs/sdp-pipelines.md for the layout and the evidence.
"""
