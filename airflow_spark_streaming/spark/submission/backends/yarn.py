"""YARN in cluster deploy mode: submit with the settings YARN needs; state, diagnostics and kill through the RM.

What the Spark provider's own YARN tracking lacks for a streaming driver, added here:

- KILLED stays KILLED (not FAILED), and a failed application's diagnostics and the
  end of its driver's stdout (where a Python driver's traceback is) reach the task's error;
- a kill that checks the RM's answer and waits until the application has ended (the RM
  answers 202 and kills asynchronously);
- the Python, pyspark and jar settings of :mod:`airflow_spark_streaming.spark.yarn_conf`,
  and ``spark.yarn.maxAppAttempts=1`` (a second attempt would race the task's own retry
  for the checkpoint's lease), each only where the job's conf does not set it.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from airflow_spark_streaming.exceptions import ClusterManagerError, SparkSubmissionError
from airflow_spark_streaming.spark.submission.backends.base import ClusterBackend
from airflow_spark_streaming.spark.submission.models import DriverState, SparkSubmission
from airflow_spark_streaming.spark.submission.spark_compat import SparkSubmitAdapter

log = logging.getLogger(__name__)

#: Defaults for every YARN submission; a key in the job's conf wins.
YARN_DEFAULT_CONF = {"spark.yarn.maxAppAttempts": "1"}
#: ``[spark_streaming] yarn_shared_paths``: the YARN nodes see this host's Spark, Python and jars at the same paths.
SHARED_PATHS_OPTION = "yarn_shared_paths"
KILL_TIMEOUT_SECONDS = 60.0
_ENDED = {"FINISHED", "FAILED", "KILLED"}


def yarn_driver_state(state: str, final_status: str) -> DriverState:
    """One state from the RM's ``state`` and ``finalStatus``: FINISHED+SUCCEEDED is SUCCEEDED, KILLED is KILLED."""
    if state == "FINISHED":
        return DriverState.SUCCEEDED if final_status == "SUCCEEDED" else DriverState.parse(final_status or "FAILED")
    return DriverState.parse(state)


def _refuse_bare_paths(spec) -> None:
    """YARN resolves a path without a scheme against ``fs.defaultFS`` (HDFS, usually); Airflow reads it locally."""
    if not spec:
        return
    for field, path in (("checkpoint_location", spec.get("checkpoint_location")),
                        ("sink.path", (spec.get("sink") or {}).get("path"))):  # fmt: skip
        if isinstance(path, str) and path.startswith("/"):
            raise SparkSubmissionError(
                f"stream spec {field} {path!r} has no scheme: on YARN the driver resolves it against the "
                "cluster's fs.defaultFS (usually HDFS) while Airflow reads it on the worker. Write it in full: "
                f"'file://{path}' for a file system every node and the worker share, or 'hdfs://...'/'s3a://...'."
            )


RUNNER_SUPPORT_ZIP = "airflow_spark_streaming_runner.zip"


def is_bundled_job(application: str) -> bool:
    from airflow_spark_streaming.runner.jobs import job_path

    return Path(application).parent == Path(job_path("stream_runner")).parent


def write_runner_support_zip(path: Path) -> Path:
    """A ``--py-files`` zip of the standard-library provider modules the bundled jobs import."""
    import zipfile

    from airflow_spark_streaming.runner.jobs import runner_support_files

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, source in runner_support_files().items():
            archive.write(source, name)
    return path


class YarnBackend(ClusterBackend):
    """YARN: the ResourceManager's REST API reports and kills."""

    deployment = "yarn"
    wait_for_app_conf = "spark.yarn.submit.waitAppCompletion"

    @classmethod
    def serves(cls, spark: SparkSubmitAdapter) -> bool:
        return spark.is_yarn

    def prepare(self, job, *, tag: str, checkpoint):
        _refuse_bare_paths(job.spec)
        prepared = super().prepare(job, tag=tag, checkpoint=checkpoint)
        if is_bundled_job(job.application):
            # spark-submit ships the runner's file alone: the provider modules it imports travel beside it,
            # so the containers' Python needs pyspark only, not this provider (nor Airflow).
            support = write_runner_support_zip(prepared.private_dir / RUNNER_SUPPORT_ZIP)
            self.spark.py_files = [*self.spark.py_files, str(support)]
        return prepared

    def _before_submit(self, application: str, launcher_jar: str | None) -> str:
        try:
            self.spark.check_yarn_rm_address()  # state and kill need it: fail before submitting, not after
        except ValueError as err:
            raise SparkSubmissionError(f"Spark connection {self.spark.conn_id!r}: {err}") from err
        self._apply_yarn_settings()
        return application

    def _apply_yarn_settings(self) -> None:
        from airflow.sdk import conf as airflow_conf

        from airflow_spark_streaming.spark.jvm import spark_home
        from airflow_spark_streaming.spark.yarn_conf import yarn_jars, yarn_submit_settings

        shared = airflow_conf.getboolean("spark_streaming", SHARED_PATHS_OPTION, fallback=False)
        environ = {**os.environ, **self.spark.env}
        settings = yarn_submit_settings(
            spark_home=spark_home(), shared_paths=shared, environ=environ,
            local_ip=environ.get("SPARK_LOCAL_IP") if shared else None,
        )  # fmt: skip
        have = self.spark.conf
        for key, value in {**YARN_DEFAULT_CONF, **settings.conf}.items():
            if key not in have:
                self.spark.set_conf(key, value)
        # Only spark-submit's own environment: SparkSubmitHook's env_vars would become appMasterEnv settings,
        # which YARN writes into launch_container.sh.
        self.spark.add_submit_env(settings.env)
        self.spark.jars = yarn_jars(self.spark.jars, shared_paths=shared)

    def _submitted_id(self) -> str | None:
        return self.spark.yarn_application_id

    def _report(self, submission: SparkSubmission) -> dict:
        try:
            return self.spark.yarn_rm_request("GET", f"/apps/{submission.submission_id}")["app"]
        except (RuntimeError, ValueError, KeyError, TypeError) as err:
            raise ClusterManagerError(f"YARN could not report application {submission.submission_id}: {err}") from err

    def get_state(self, submission: SparkSubmission) -> DriverState:
        report = self._report(submission)
        return yarn_driver_state(report.get("state", ""), report.get("finalStatus", ""))

    def kill(self, submission: SparkSubmission) -> None:
        app = submission.submission_id
        try:
            self.spark.yarn_rm_request("PUT", f"/apps/{app}/state", json={"state": "KILLED"})
        except (RuntimeError, ValueError) as err:
            raise ClusterManagerError(f"YARN refused to kill application {app}: {err}") from err
        deadline = time.monotonic() + KILL_TIMEOUT_SECONDS
        while (state := self._report(submission).get("state")) not in _ENDED:
            if time.monotonic() > deadline:
                raise ClusterManagerError(
                    f"YARN accepted the kill of application {app} but it is still {state} after "
                    f"{KILL_TIMEOUT_SECONDS:.0f}s; check the ResourceManager ({self.spark.master})."
                )
            time.sleep(0.5)

    def end_hint(self, submission: SparkSubmission, lines: int = 30) -> str | None:
        """YARN's diagnostics and the end of the driver's stdout (a Python driver's traceback is there)."""
        try:
            report = self._report(submission)
        except ClusterManagerError as err:
            return str(err)
        hint = f"YARN reports {report.get('state')}/{report.get('finalStatus')}: {report.get('diagnostics') or '-'}"
        logs = report.get("amContainerLogs")
        if logs:
            try:
                stdout = self.spark.yarn_container_log(logs, "stdout")
            except RuntimeError as err:
                hint += f"\n(the driver's stdout could not be read: {err}; see {logs})"
            else:
                tail = "\n".join(stdout.splitlines()[-lines:])
                hint += f"\nThe end of the driver's stdout ({logs}):\n{tail}"
        return hint
