"""YARN in cluster deploy mode: the ResourceManager's REST API reports and kills."""

from __future__ import annotations

from airflow_spark_streaming.exceptions import ClusterManagerError, SparkSubmissionError
from airflow_spark_streaming.hooks.submission._spark_compat import SparkSubmitAdapter
from airflow_spark_streaming.hooks.submission.backends.base import ClusterBackend
from airflow_spark_streaming.hooks.submission.models import DriverState, SparkSubmission


class YarnBackend(ClusterBackend):
    """YARN: the ResourceManager's REST API reports and kills."""

    deployment = "yarn"
    wait_for_app_conf = "spark.yarn.submit.waitAppCompletion"

    @classmethod
    def serves(cls, spark: SparkSubmitAdapter) -> bool:
        return spark.is_yarn

    def _before_submit(self, application: str, launcher_jar: str | None) -> str:
        try:
            self.spark.check_yarn_rm_address()  # state and kill need it: fail before submitting, not after
        except ValueError as err:
            raise SparkSubmissionError(f"Spark connection {self.spark.conn_id!r}: {err}") from err
        return application

    def _submitted_id(self) -> str | None:
        return self.spark.yarn_application_id

    def get_state(self, submission: SparkSubmission) -> DriverState:
        try:
            return DriverState.parse(self.spark.query_yarn_application_status(submission.submission_id))
        except (RuntimeError, ValueError) as err:
            raise ClusterManagerError(f"YARN could not report application {submission.submission_id}: {err}") from err

    def kill(self, submission: SparkSubmission) -> None:
        self.spark.kill_yarn_application(submission.submission_id)
