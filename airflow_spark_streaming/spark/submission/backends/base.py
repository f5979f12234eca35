"""What every backend does: prepare, submit, state, kill and release; and the shared cluster deploy-mode submit."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from airflow.sdk.exceptions import AirflowException

from airflow_spark_streaming.exceptions import SparkSubmissionError
from airflow_spark_streaming.runner.protocol import DELETE_SPEC_FILE_ARG, SPEC_URI_ARG, staged_spec_name
from airflow_spark_streaming.spark.submission.models import DriverState, SparkJob, SparkSubmission, SubmissionRequest
from airflow_spark_streaming.spark.submission.private_files import write_private_files
from airflow_spark_streaming.spark.submission.spark_compat import SparkSubmitAdapter

log = logging.getLogger(__name__)


class Prepared(NamedTuple):
    """What :meth:`SubmissionBackend.prepare` made ready for spark-submit."""

    application: str
    submit_kwargs: dict[str, Any]  # for SubmissionBackend.submit
    private_dir: Path | None  # the spec and secrets files, if written locally
    driver_reads_later: bool = False  # the detached driver reads private_dir after spark-submit started it


class SubmissionBackend:
    """Prepare, submit, state and kill for one kind of deployment."""

    deployment: ClassVar[str]

    def __init__(self, spark: SparkSubmitAdapter) -> None:
        self.spark = spark

    def review(self, request: SubmissionRequest) -> SubmissionRequest:
        """Refuse a run this deployment cannot keep safe, or adjust it; before anything is resolved or submitted.

        ``prepare_submission`` asks this; most deployments take every run as it is.
        """
        return request

    def prepare(self, job: SparkJob, *, tag: str, checkpoint) -> Prepared:
        """Write or stage what the driver reads: its spec, secrets and jars."""
        raise NotImplementedError

    def submit(self, application: str, *, tag: str, **record: Any) -> SparkSubmission:
        raise NotImplementedError

    def get_state(self, submission: SparkSubmission) -> DriverState:
        raise NotImplementedError

    def kill(self, submission: SparkSubmission) -> None:
        raise NotImplementedError

    def end_hint(self, submission: SparkSubmission, lines: int = 30) -> str | None:
        """Why the driver ended, as its cluster manager tells it; ``None`` when it tells nothing more."""
        return None

    def release(self, submission: SparkSubmission, checkpoint) -> None:
        """The driver has read its private files (or is gone): remove what is left of them."""

    def discard(self, *, tag: str, checkpoint) -> None:
        """spark-submit failed: remove what :meth:`prepare` staged beside the checkpoint for the driver."""

    def _submission(self, submission_id: str, tag: str, **record: Any) -> SparkSubmission:
        return SparkSubmission(self.deployment, submission_id, tag, self.spark.conn_id, self.spark.master,
                               time.time(), **record)  # fmt: skip


# --- cluster deploy mode ----------------------------------------------------------------------


class ClusterBackend(SubmissionBackend):
    """A driver the cluster manager runs: spark-submit hands it over and returns."""

    #: The Spark setting that, set to ``false``, makes spark-submit return once the manager has the driver.
    wait_for_app_conf: ClassVar[str | None] = None

    @classmethod
    def serves(cls, spark: SparkSubmitAdapter) -> bool:
        """This backend runs cluster-mode drivers of the connection's master."""
        raise NotImplementedError

    def prepare(self, job: SparkJob, *, tag: str, checkpoint) -> Prepared:
        args = list(job.application_args)
        if job.spec is not None:
            # The driver runs on another host: it reads its spec next to its checkpoint, then deletes it.
            uri = checkpoint.stage_file(staged_spec_name(tag), json.dumps(job.spec).encode())
            args = [SPEC_URI_ARG, uri, DELETE_SPEC_FILE_ARG]
        private = Path(tempfile.mkdtemp(prefix="spark-streaming-"))  # spark-submit reads it, then it goes
        _, properties_file = write_private_files(private, secret_conf=job.secret_conf)
        self.spark.set_application(args, properties_file)
        return Prepared(job.application, {}, private)

    def submit(self, application: str, *, tag: str, **record: Any) -> SparkSubmission:
        application = self._before_submit(application, record.pop("launcher_jar", None))
        if self.wait_for_app_conf:
            self.spark.set_conf(self.wait_for_app_conf, "false")
        try:
            self.spark.submit(application)
        except (AirflowException, RuntimeError) as err:
            raise SparkSubmissionError(f"spark-submit to {self.spark.master} failed: {err}") from err
        submission_id = self._submitted_id()
        if not submission_id:
            raise SparkSubmissionError(
                f"spark-submit to {self.spark.master} exited without reporting the driver's id, so the driver could "
                "not be tracked; keep spark-submit's log level at INFO (log4j.logger.org.apache.spark.deploy=INFO)."
            )
        log.info("Submitted %s driver %s", self.deployment, submission_id)
        return self._submission(submission_id, tag, **record)

    def _before_submit(self, application: str, launcher_jar: str | None) -> str:
        """Make spark-submit return once the cluster manager has the driver; return the primary resource."""
        return application

    def _submitted_id(self) -> str | None:
        raise NotImplementedError

    def discard(self, *, tag: str, checkpoint) -> None:
        checkpoint.remove_staged(staged_spec_name(tag))

    def release(self, submission: SparkSubmission, checkpoint) -> None:
        # The runner deletes its staged spec once read; a driver that died first must not leave it behind.
        checkpoint.remove_staged(staged_spec_name(submission.tag))
