"""Submit a Spark driver that outlives the task, then find, watch and kill it through its cluster manager.

The Spark provider's ``SparkSubmitHook`` builds the spark-submit command and
parses what spark-submit prints. :class:`StreamingSubmitHook` adds what a
streaming driver needs on top, delegating each deployment to its backend
(:mod:`.backends`):

- submission that returns at once: a detached process in client mode, and
  ``waitAppCompletion=false`` (or the standalone Master's own hand-off) in
  cluster mode;
- one state vocabulary across cluster managers (:class:`DriverState`);
- a kill that reaches the driver wherever it runs;
- the private files that keep the spec and every Spark setting off the command line
  (spark-submit gets flags only, and ``--load-spark-defaults`` keeps the cluster's ``spark-defaults.conf``).
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_spark_streaming.exceptions import (
    CheckpointNotFoundError,
    ControlKeyMissingError,
    DriverProcessMismatchError,
)
from airflow_spark_streaming.runner.protocol import SUBMISSION_CONF
from airflow_spark_streaming.spark.submission.backends import (
    LocalDetachedBackend,
    SubmissionBackend,
    backend_for,
    backend_named,
)
from airflow_spark_streaming.spark.submission.models import DriverState, SparkJob, SparkSubmission
from airflow_spark_streaming.spark.submission.private_files import write_job_files
from airflow_spark_streaming.spark.submission.spark_compat import SparkSubmitAdapter
from airflow_spark_streaming.utils.deprecation import renamed_parameter

if TYPE_CHECKING:
    from airflow_spark_streaming.runner.control_auth import ControlKey
    from airflow_spark_streaming.spark.submission.preparation import PreparedRun


class StreamingSubmitHook(BaseHook):
    """The Spark provider's ``SparkSubmitHook``, for drivers that keep running after the task: submit, state, kill.

    Takes every ``SparkSubmitHook`` argument and uses the same ``spark``
    connection. The ``SparkSubmitHook`` it drives is made on first use, so
    importing this module stays cheap for the scheduler.

    :param spark_conn_id: the ``spark`` connection.
    :param conn_id: deprecated spelling of ``spark_conn_id``.
    """

    conn_name_attr = "spark_conn_id"
    default_conn_name = "spark_default"
    conn_type = "spark"
    hook_name = "Spark Streaming Submit"

    def __init__(
        self, spark_conn_id: str | None = None, *, conn_id: str | None = None, **spark_submit_kwargs: Any
    ) -> None:
        super().__init__()
        self.spark_conn_id = renamed_parameter(
            type(self).__name__, "conn_id", "spark_conn_id", conn_id, spark_conn_id, self.default_conn_name
        )
        self._spark = SparkSubmitAdapter(self.spark_conn_id, **spark_submit_kwargs)

    @classmethod
    def for_run(cls, run: PreparedRun) -> StreamingSubmitHook:
        """The hook that submits ``run`` (from ``prepare_submission``); ``run.job`` is what it submits."""
        return cls(run.spark_conn_id, deploy_mode=run.deploy_mode, conf=run.conf, name=run.name,
                   packages=",".join(run.packages) or None, jars=",".join(run.jars) or None,
                   **run.submit_kwargs)  # fmt: skip

    @property
    def spark_submit(self):
        """The Spark provider's ``SparkSubmitHook``, which builds and parses every spark-submit call."""
        return self._spark.hook

    @property
    def master(self) -> str:
        return self._spark.master

    @property
    def backend(self) -> SubmissionBackend:
        """The backend the connection's master and deploy mode call for."""
        return backend_for(self._spark)(self._spark)

    @property
    def deployment(self) -> str:
        """``client`` (the driver runs on this host), ``standalone``, ``yarn`` or ``kubernetes``."""
        return backend_for(self._spark).deployment

    def _backend_of(self, submission: SparkSubmission) -> SubmissionBackend:
        return backend_named(submission.deployment, submission.submission_id)(self._spark)

    # --- in this process, waiting ----------------------------------------------------------------

    def submit(self, application: str) -> None:
        """Run spark-submit and wait for it, as ``SparkSubmitHook.submit`` does."""
        self._spark.submit(application)

    def run_to_completion(self, job: SparkJob) -> None:
        """spark-submit ``job`` and wait for it; its spec and Spark settings go in private files, removed afterwards."""
        private = Path(tempfile.mkdtemp(prefix="spark-streaming-"))
        try:
            self._spark.set_application(*write_job_files(private, job))
            self._spark.submit(job.application)
        finally:
            shutil.rmtree(private, ignore_errors=True)

    def on_kill(self) -> None:
        self._spark.on_kill()

    def set_application(self, application_args: list[str], properties_file: str | None = None) -> None:
        """Arguments and properties file, for :meth:`submit` and :meth:`submit_driver`."""
        self._spark.set_application(application_args, properties_file)

    # --- drivers that outlive the task -----------------------------------------------------------

    def start_driver(
        self, job: SparkJob, *, checkpoint, owner: str | None = None, control_key: ControlKey | None = None
    ) -> SparkSubmission:
        """Prepare and submit ``job``'s driver, record it beside its checkpoint, and return as soon as it is handed over.

        :param checkpoint: the query's ``RunnerControlHook``: what a cluster-mode
            driver reads is staged there, and a stop finds the submission there.
        :param owner: who submitted (the task), so that only its own retries reattach.
        :param control_key: signs the ``_submission`` record; without it the record is never acted on.
        """
        tag = uuid.uuid4().hex
        committed_before = latest_committed_batch(checkpoint)
        backend = self.backend
        prepared = None
        try:
            prepared = backend.prepare(job, tag=tag, checkpoint=checkpoint)
            submission = self._submit(backend, prepared.application, tag=tag, committed_before=committed_before,
                                      owner=owner, **prepared.submit_kwargs)  # fmt: skip
        except BaseException:
            # The spec and secrets must not outlive a submission that never happened.
            if prepared is not None and prepared.private_dir is not None:
                shutil.rmtree(prepared.private_dir, ignore_errors=True)
            backend.discard(tag=tag, checkpoint=checkpoint)
            raise
        if prepared.private_dir is not None and not prepared.driver_reads_later:
            shutil.rmtree(prepared.private_dir, ignore_errors=True)
        checkpoint.put_submission(submission.to_dict(), key=control_key)
        return submission

    def submit_driver(self, application: str, *, tag: str, **record: Any) -> SparkSubmission:
        """Submit ``application`` (arguments from :meth:`set_application`) and return once its driver is handed over.

        :param tag: written into the driver's Spark conf; the stream runner puts it in its lease.
        :param record: ``log_path`` (client mode: where the detached driver's output goes),
            ``launcher_jar`` (standalone, Python: where workers fetch ``python_launcher_jar()``),
            and :class:`SparkSubmission` fields to record (``committed_before``, ``owner``).
        """
        return self._submit(self.backend, application, tag=tag, **record)

    def _submit(self, backend: SubmissionBackend, application: str, *, tag: str, **record: Any) -> SparkSubmission:
        self._spark.set_conf(SUBMISSION_CONF, tag)
        return backend.submit(application, tag=tag, **record)

    def get_driver_state(self, submission: SparkSubmission) -> DriverState:
        """The driver's state; :attr:`DriverState.is_active` says whether it is alive."""
        return self._backend_of(submission).get_state(submission)

    def kill_driver(self, submission: SparkSubmission) -> None:
        """Kill the driver through whatever runs it."""
        self.log.warning("Killing %s driver %s", submission.deployment, submission.submission_id)
        self._backend_of(submission).kill(submission)

    def stop_driver(self, submission: SparkSubmission, checkpoint, *, grace_seconds: float) -> None:
        """Ask the query to stop through its checkpoint's stop marker; kill the driver if it runs ``grace_seconds`` later."""
        checkpoint.request_stop()
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline and self.get_driver_state(submission).is_active:
            time.sleep(0.5)
        if self.get_driver_state(submission).is_active:
            self.kill_driver(submission)
        checkpoint.clear_stop_request()

    def get_driver_log_hint(self, submission: SparkSubmission, lines: int = 30) -> str:
        """Where to read why the driver ended: the end of its log on this host, or its cluster manager.

        A log is read only inside the provider's own folder for that run (:class:`ControlPathOutsideRunError`).
        """
        hint = self._backend_of(submission).end_hint(submission, lines)
        if hint:
            return hint
        if submission.driver_log and submission.host == socket.gethostname():
            from airflow_spark_streaming.spark.submission.private_files import confined_driver_log

            log_path = confined_driver_log(submission.driver_log, submission.tag)
            try:
                with open(log_path, errors="replace") as log:
                    tail = "\n".join(log.read().splitlines()[-lines:])
            except OSError:
                pass
            else:
                return f"the end of {log_path}:\n{tail}"
        return f"see the driver's log in the cluster manager ({submission.master})."

    def kill_lease_holder(self, lease, *, checkpoint, key: ControlKey | None) -> bool:
        """Kill the local driver that holds ``checkpoint``'s lease, by the pid its lease names; ``False`` if it runs
        elsewhere.

        Only a lease the stream runner signed for this checkpoint is acted on
        (:class:`UntrustedControlRecordError` otherwise), and only when the live process
        carries the lease's submission tag and its recorded start time
        (:class:`DriverProcessMismatchError` otherwise); nothing is killed on a refusal.
        """
        if key is None:
            raise ControlKeyMissingError(
                f"Killing the driver that holds the lease on {checkpoint.checkpoint} needs the control key, to check "
                f"that the lease was written by the provider's runner; connection "
                f"{checkpoint.control_conn_id or 'spark_streaming_control_default'!r} does not exist or holds no "
                "password. Create it (see 'Running streams': the control key), or kill the application yourself."
            )
        body = checkpoint.verified_lease(lease, key)
        tag, pid, started = body.get("submission"), body.get("pid"), body.get("pid_start")
        if body.get("host") != socket.gethostname():
            return False
        if not isinstance(tag, str) or not tag or not isinstance(pid, int) or not isinstance(started, int):
            raise DriverProcessMismatchError(
                f"The lease on {checkpoint.checkpoint} names no submission tag, pid and start time: its driver was "
                "not started by this provider, so it is not killed by pid. Kill the application yourself."
            )
        return LocalDetachedBackend.kill_lease_holder(pid, body.get("host"), tag=tag, started=started)

    def release_private_files(self, submission: SparkSubmission, checkpoint) -> None:
        """The driver has read its spec and secrets, or has ended: remove what is left of them."""
        self._backend_of(submission).release(submission, checkpoint)

    # --- the submission recorded beside the checkpoint -------------------------------------------

    @staticmethod
    def get_submission(checkpoint, key: ControlKey) -> SparkSubmission | None:
        """The submission recorded beside ``checkpoint`` (a ``RunnerControlHook``) if it carries a valid MAC;
        ``None`` when there is none; :class:`UntrustedControlRecordError` when it is unsigned or altered."""
        record = checkpoint.get_signed_submission(key)
        return SparkSubmission.from_dict(record) if record else None

    @classmethod
    def get_lease_holder(cls, checkpoint, *, key: ControlKey | None = None) -> tuple[Any, SparkSubmission | None]:
        """The checkpoint's live lease (or ``None``), and the recorded submission when it is the lease's holder.

        The submission is returned only when it is signed with ``key``. A record that claims the
        lease's tag but is unsigned or altered raises :class:`UntrustedControlRecordError` (before
        anything is done); without ``key`` no submission is ever returned.
        """
        lease = checkpoint.get_lease()
        if lease is None or not lease.submission_tag or key is None:
            return lease, None
        claimed = checkpoint.get_submission()
        if not claimed or claimed.get("tag") != lease.submission_tag:
            return lease, None
        submission = cls.get_submission(checkpoint, key)
        return lease, submission if submission and submission.tag == lease.submission_tag else None

    @staticmethod
    def holds_lease(submission: SparkSubmission, checkpoint) -> bool:
        """``submission``'s driver holds the checkpoint's lease: its query runs."""
        lease = checkpoint.get_lease()
        return lease is not None and lease.submission_tag == submission.tag


def latest_committed_batch(control) -> int:
    """The newest batch committed in ``control``'s checkpoint: -1 for none, or no checkpoint yet."""
    from airflow_spark_streaming.hooks.checkpoint import CheckpointHook

    try:
        status = control.sibling(CheckpointHook).get_status(include_state=False)
    except CheckpointNotFoundError:
        return -1
    return status.latest_committed_batch if status.latest_committed_batch is not None else -1
