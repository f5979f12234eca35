"""Test DAG: the Delta operators' Spark engine with credential settings; none may reach ps, the log or XCom."""

from __future__ import annotations

from airflow.sdk import DAG, Param

from airflow_spark_streaming.operators.delta import DeltaOptimizeOperator

#: Credential settings of S3A and ABFS; the table is local, so Spark never uses them.
SEALED_SECRETS = {
    "spark.hadoop.fs.s3a.access.key": "AKIASEALEDACCESS0001",
    "spark.hadoop.fs.s3a.secret.key": "s3a-secret-sealed-9f2c",
    "spark.hadoop.fs.azure.account.key.lake.dfs.core.windows.net": "YXp1cmUta2V5LXNlYWxlZA==",
}

with DAG("secrets_sealed_delta", schedule=None, params={"table_uri": Param("", type="string")}):
    DeltaOptimizeOperator(
        task_id="optimize", table_uri="{{ params.table_uri }}", engine="spark", spark_conf=dict(SEALED_SECRETS),
        # A value that would end the SQL literal if quotes were doubled and backslashes left alone.
        partition_filters=[("region", "in", ["eu", "x\\' OR 1=1 --"])],
    )  # fmt: skip
