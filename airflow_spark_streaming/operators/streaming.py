"""Submit Structured Streaming jobs from DAGs: bounded ``availableNow`` runs, long-running queries, graceful stop."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, ResumableJobMixin

from airflow_spark_streaming.exceptions import (
    CheckpointInUseError,
    CheckpointNotFoundError,
    InvalidStreamSpecError,
    SparkSubmissionError,
    StreamingRunIncompleteError,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


class SparkStreamingSubmitOperator(ResumableJobMixin, BaseOperator):
    """Run a Structured Streaming job with spark-submit and judge it by its checkpoint.

    The job is either the provider's declarative stream runner, described by
    ``spec`` (validated here, before anything is submitted), or your own
    ``application`` (.py or jar) with a ``checkpoint`` location. It is submitted
    through the Spark provider's ``SparkSubmitHook`` and ``spark`` connection;
    ``deploy_mode`` (or the connection's ``deploy-mode`` extra) chooses where the
    driver runs.

    **Bounded mode** (``trigger: {"available_now": true}``, and ``application``
    unless ``long_running``): the job works through the backlog and ends. The
    task succeeds only when the driver exited cleanly and the checkpoint shows
    no uncommitted batch. XCom receives the batches and rows this run
    processed, from the checkpoint and the runner's progress events.

    **Long-running mode** (``trigger: {"processing_time": ...}``, or
    ``long_running=True``): the driver is submitted in cluster deploy mode on a
    standalone, YARN or Kubernetes master, or as a detached local driver in
    client mode. The task succeeds once the query holds the checkpoint's lease
    and has committed a batch, returning the driver's submission id and the
    Spark application id. Stop it with :class:`StopStreamingQueryOperator`.

    **Retries** never start a second driver. The submission is kept in Airflow's
    task state store (``ResumableJobMixin``, ``durable=True``): a retry finds
    the driver still running and reattaches to it. The checkpoint's lease is the
    second guard, for any other starter: a live query on the checkpoint refuses
    a new one, unless it is the one this same task submitted.

    **Secrets** stay off spark-submit's command line, the task log and XCom:
    the spec goes to the driver as a private file (in cluster mode, staged in
    the checkpoint's ``_staging/`` and deleted by the runner once read), and
    Spark settings whose names look like credentials go in a private properties
    file. A standalone Master would put Spark settings on the driver's command
    line, so credentials in ``conf`` are refused there: put them in the spec's
    source or sink options, or in the cluster's own configuration.

    :param spec: the stream runner spec (dict or JSON string). (templated)
    :param application: your own Spark application instead of the runner. (templated)
    :param checkpoint: the checkpoint location of ``application``'s query. (templated)
    :param application_args: arguments for ``application``. (templated)
    :param long_running: run ``application`` as a long-running query (a spec's trigger decides for the runner).
    :param conn_id: the ``spark`` connection.
    :param deploy_mode: ``client`` or ``cluster`` (default: the connection's ``deploy-mode`` extra).
    :param checkpoint_conn_id: the storage connection of the checkpoint, for reading it.
    :param conf: Spark settings. (templated)
    :param kafka: load Spark's Kafka connector (default: when the spec reads or writes Kafka).
    :param extra_packages: more Maven packages for the job.
    :param extra_jars: more jars for the job.
    :param jvm_resolver: ``packages`` or ``maven`` (default: ``[spark_streaming] jvm_resolver``).
    :param name: the Spark application name (default: the query name or task id).
    :param submit_kwargs: more ``SparkSubmitHook`` arguments (``driver_memory``, ``executor_cores``, ...).
    :param startup_timeout: long-running mode: seconds to wait for the query to commit its first batch.
    :param poll_interval: seconds between checks of the driver and the checkpoint.
    :param durable: keep the submission in the task state store, so that a retry reattaches.
    """

    external_id_key = "spark_streaming_submission"
    template_fields: Sequence[str] = ("spec", "application", "checkpoint", "application_args", "conf")
    template_fields_renderers = {"spec": "json", "conf": "json"}

    def __init__(
        self,
        *,
        spec: dict[str, Any] | str | None = None,
        application: str | None = None,
        checkpoint: str | None = None,
        application_args: list[str] | None = None,
        long_running: bool | None = None,
        conn_id: str = "spark_default",
        deploy_mode: str | None = None,
        checkpoint_conn_id: str | None = None,
        conf: dict[str, Any] | None = None,
        kafka: bool | None = None,
        extra_packages: Sequence[str] = (),
        extra_jars: Sequence[str] = (),
        jvm_resolver: str | None = None,
        name: str | None = None,
        submit_kwargs: dict[str, Any] | None = None,
        startup_timeout: float = 600,
        poll_interval: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (spec is None) == (application is None):
            raise InvalidStreamSpecError(
                f"{self.task_id}: give either spec (the stream runner) or application, not both."
            )
        if application is not None and not checkpoint:
            raise InvalidStreamSpecError(
                f"{self.task_id}: application needs checkpoint, the query's checkpoint location."
            )
        if spec is not None and long_running is not None:
            raise InvalidStreamSpecError(
                f"{self.task_id}: long_running is for application; the spec's trigger decides for the runner "
                "(processing_time: long-running, available_now: bounded)."
            )
        if deploy_mode not in (None, "client", "cluster"):
            raise InvalidStreamSpecError(
                f"{self.task_id}: deploy_mode must be 'client' or 'cluster', not {deploy_mode!r}."
            )
        self.spec = spec
        self.application = application
        self.checkpoint = checkpoint
        self.application_args = application_args or []
        self.long_running = long_running
        self.conn_id = conn_id
        self.deploy_mode = deploy_mode
        self.checkpoint_conn_id = checkpoint_conn_id
        self.conf = conf or {}
        self.kafka = kafka
        self.extra_packages = list(extra_packages)
        self.extra_jars = list(extra_jars)
        self.jvm_resolver = jvm_resolver
        self.name = name
        self.submit_kwargs = submit_kwargs or {}
        self.startup_timeout = startup_timeout
        self.poll_interval = poll_interval
        self._hook = None
        self._job: _Job | None = None
        self._submission = None
        self._reattached: bool | None = None
        self._result: dict[str, Any] | None = None
        if isinstance(spec, dict) and not _templated(spec):
            self._validated_spec()  # fail at DAG parse time, not after scheduling

    def _validated_spec(self) -> dict[str, Any]:
        from airflow_spark_streaming.spec import validate_stream_spec

        spec = self.spec
        if isinstance(spec, str):
            try:
                spec = json.loads(spec)
            except json.JSONDecodeError as err:
                raise InvalidStreamSpecError(f"{self.task_id}: spec is not valid JSON ({err.msg}).") from err
        return validate_stream_spec(spec)

    def _checkpoint_hook(self):
        from airflow_spark_streaming.hooks.checkpoint import CheckpointHook

        return CheckpointHook(self._job.checkpoint, conn_id=self.checkpoint_conn_id)

    def _committed(self) -> int:
        """The newest committed batch (-1 for none, or no checkpoint yet)."""
        try:
            status = self._checkpoint_hook().get_status(include_state=False)
        except CheckpointNotFoundError:
            return -1
        return status.latest_committed_batch if status.latest_committed_batch is not None else -1

    # --- execute -------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_spark_streaming.hooks.spark_submission import StreamingSubmitHook
        from airflow_spark_streaming.jvm import resolve_jvm_dependencies
        from airflow_spark_streaming.spec import is_secret_key, redact_spec

        self._submission, self._reattached, self._result = None, None, None
        spec = self._validated_spec() if self.spec is not None else None
        uses_kafka = (
            self.kafka
            if self.kafka is not None
            else bool(spec and "kafka" in (spec["source"]["format"], spec["sink"]["format"]))
        )
        deployment = StreamingSubmitHook(conn_id=self.conn_id, deploy_mode=self.deploy_mode).deployment
        credentials = sorted(k for k in self.conf if is_secret_key(k))
        if credentials and deployment == "standalone":
            raise SparkSubmissionError(
                f"{self.task_id}: conf holds credentials ({', '.join(credentials)}), and a standalone Master "
                "puts Spark settings on the driver's command line. Put them in the spec's source or sink options, "
                "or in the cluster's spark-defaults.conf, or submit in client mode."
            )
        resolver = self.jvm_resolver
        if deployment == "standalone" and resolver != "maven":
            # A standalone cluster-mode driver resolves --packages for itself only, never for its executors;
            # jars resolved here and staged beside the checkpoint reach both.
            self.log.info("Standalone cluster deploy mode: resolving the job's jars with Maven, to stage them")
            resolver = "maven"
        deps = resolve_jvm_dependencies(
            delta=True, kafka=uses_kafka, extra_packages=self.extra_packages, extra_jars=self.extra_jars,
            resolver=resolver, user_conf=self.conf,
        )  # fmt: skip
        submit = deps.submit_kwargs()
        conf = {**submit.pop("conf"), **{k: str(v) for k, v in self.conf.items()}}
        secret_conf = {k: v for k, v in conf.items() if is_secret_key(k)}
        self._hook = StreamingSubmitHook(
            conn_id=self.conn_id, deploy_mode=self.deploy_mode,
            conf={k: v for k, v in conf.items() if k not in secret_conf},
            name=self.name or (spec["query_name"] if spec else self.task_id), **submit, **self.submit_kwargs,
        )  # fmt: skip
        self._job = _Job(
            spec=spec,
            checkpoint=spec["checkpoint_location"] if spec else self.checkpoint,
            long_running=bool(spec and "processing_time" in spec["trigger"]) if spec else bool(self.long_running),
            secret_conf=secret_conf,
            owner=_owner(context, self.task_id),
        )
        if spec:
            self.log.info("Stream spec: %s", json.dumps(redact_spec(spec)))
        if self._job.long_running or self._hook.deployment != "client":
            return self.execute_resumable(context)
        return self._run_here()

    def _run_here(self) -> dict[str, Any]:
        """Bounded run with the driver in this process's spark-submit: wait for it, then read the checkpoint."""
        from airflow_spark_streaming.jobs import job_path

        self._refuse_if_in_use()
        committed_before = self._committed()
        with tempfile.TemporaryDirectory(prefix="spark-streaming-") as private:
            os.chmod(private, 0o700)
            args, properties_file = self._private_args(private)
            self._hook.set_application(args, properties_file)
            self._hook.submit(self.application or job_path("stream_runner"))
        return self._bounded_result(committed_before)

    def _private_args(self, private: str) -> tuple[list[str], str | None]:
        """Application arguments and the properties file, both written into the private folder."""
        args = list(self.application_args)
        if self._job.spec:
            spec_file = os.path.join(private, "spec.json")
            _write_private(spec_file, json.dumps(self._job.spec))
            args = ["--spec-file", spec_file, "--delete-spec-file"]
        properties_file = None
        if self._job.secret_conf:
            properties_file = os.path.join(private, "secret.properties")
            _write_private(properties_file, "".join(f"{k} {_escape(v)}\n" for k, v in self._job.secret_conf.items()))
        return args, properties_file

    def _refuse_if_in_use(self) -> dict[str, Any] | None:
        """Refuse a checkpoint a live query holds; return the submission record if that query is our own."""
        hook = self._checkpoint_hook()
        lease = hook.get_lease()
        if lease is None:
            return None
        record = hook.get_submission()
        if (
            self._job.long_running
            and record
            and lease.submission_tag
            and record.get("tag") == lease.submission_tag
            and record.get("owner") == self._job.owner
        ):
            return record
        raise CheckpointInUseError(
            f"{self.task_id}: checkpoint {self._job.checkpoint} is in use by Spark application {lease.app_id} on "
            f"{lease.host} (heartbeat {lease.heartbeat_age_seconds:.0f}s ago); a second query would corrupt it. "
            f"Stop that query first; a lease left by a dead driver expires after {lease.ttl_seconds:.0f}s."
        )

    # --- ResumableJobMixin: submit, state, wait, result -----------------------------------------

    def submit_job(self, context: Context) -> dict[str, Any]:
        import uuid

        from airflow_spark_streaming.hooks.spark_submission import SparkSubmission, python_launcher_jar
        from airflow_spark_streaming.jobs import job_path
        from airflow_spark_streaming.jvm import cache_dir

        own = self._refuse_if_in_use()
        if own is not None:
            self.log.info(
                "Query on %s is already running as %s; reattaching", self._job.checkpoint, own["submission_id"]
            )
            self._submission = SparkSubmission.from_dict(own)
            self._reattached = True
            return own
        self._reattached = False
        checkpoint = self._checkpoint_hook()
        committed_before = self._committed()
        tag = uuid.uuid4().hex
        hook = self._hook
        application = self.application or job_path("stream_runner")
        launcher_jar = log_path = None
        if hook.deployment == "client":
            # The files outlive this task: the runner deletes the spec once read, and the properties
            # file (secrets) is removed as soon as the driver holds the lease.
            private = cache_dir() / "drivers" / f"{(self._job.spec or {}).get('query_name', self.task_id)}-{tag[:8]}"
            private.mkdir(parents=True, mode=0o700)
            args, properties_file = self._private_args(str(private))
            log_path = private / "driver.log"
            hook.set_application(args, properties_file)
        else:
            args = list(self.application_args)
            if self._job.spec:
                # The driver runs on another host: it reads its spec next to its checkpoint, then deletes it.
                uri = checkpoint.stage_file(f"spec-{tag}.json", json.dumps(self._job.spec).encode())
                args = ["--spec-uri", uri, "--delete-spec-file"]
            if hook.deployment == "standalone":
                hook.stage_jars(checkpoint)
                if application.endswith(".py"):
                    launcher_jar = checkpoint.stage_file("python-driver-launcher.jar", python_launcher_jar())
            private = tempfile.mkdtemp(prefix="spark-streaming-")  # spark-submit reads it, then it goes
            properties_file = None
            if self._job.secret_conf:
                properties_file = os.path.join(private, "secret.properties")
                text = "".join(f"{k} {_escape(v)}\n" for k, v in self._job.secret_conf.items())
                _write_private(properties_file, text)
            hook.set_application(args, properties_file)
        try:
            submission = hook.submit_driver(application, tag=tag, log_path=log_path, launcher_jar=launcher_jar)
        finally:
            if hook.deployment != "client":
                import shutil

                shutil.rmtree(private, ignore_errors=True)
        submission.committed_before = committed_before
        submission.owner = self._job.owner
        checkpoint.put_submission(submission.to_dict())
        self._submission = submission
        return submission.to_dict()

    def get_job_status(self, external_id: Any, context: Context) -> str:
        from airflow_spark_streaming.hooks.spark_submission import SparkSubmission

        return self._hook.get_driver_state(SparkSubmission.from_dict(external_id))

    def is_job_active(self, status: str) -> bool:
        from airflow_spark_streaming.hooks.spark_submission import ACTIVE_STATES

        return status.upper() in ACTIVE_STATES

    def is_job_succeeded(self, status: str) -> bool:
        from airflow_spark_streaming.hooks.spark_submission import SUCCEEDED_STATES

        # A long-running query whose driver ended is not running: the task starts it again.
        return not self._job.long_running and status.upper() in SUCCEEDED_STATES

    def poll_until_complete(self, external_id: Any, context: Context) -> dict[str, Any]:
        """Long-running: wait until the query runs and has committed a batch. Bounded: until the driver ends."""
        from airflow_spark_streaming.hooks.spark_submission import SparkSubmission

        submission = self._submission = SparkSubmission.from_dict(external_id)
        if self._reattached is None:
            self._reattached = True  # the mixin found it in the task state store; submit_job did not run
        try:
            if self._job.long_running:
                self._wait_until_streaming(submission)
            else:
                self._wait_until_finished(submission)
        finally:
            # The runner deletes its staged spec once read; a driver that died first must not leave it behind.
            if submission.deployment != "client":
                self._checkpoint_hook().remove_staged(f"spec-{submission.tag}.json")
        return self.get_job_result(external_id, context)

    def get_job_result(self, external_id: Any, context: Context) -> dict[str, Any]:
        from airflow_spark_streaming.hooks.spark_submission import SparkSubmission

        if self._result is None:
            submission = SparkSubmission.from_dict(external_id)
            if self._job.long_running:
                self._result = self._streaming_result(submission)
            else:
                self._result = {**self._bounded_result(submission.committed_before),
                                "deployment": submission.deployment, "submission_id": submission.submission_id}  # fmt: skip
        return self._result

    def _wait_until_streaming(self, submission) -> None:
        import time

        checkpoint = self._checkpoint_hook()
        deadline = time.monotonic() + self.startup_timeout
        while True:
            state = self._hook.get_driver_state(submission)
            if not self.is_job_active(state):
                raise StreamingRunIncompleteError(
                    f"{self.task_id}: {submission.deployment} driver {submission.submission_id} ended ({state}) before "
                    f"its query made progress; {_driver_log_hint(submission)}"
                )
            lease = checkpoint.get_lease()
            if lease is not None and lease.submission_tag == submission.tag:
                self._forget_secrets(submission)
                if self._committed() > submission.committed_before:
                    return
            if time.monotonic() > deadline:
                self._hook.kill_driver(submission)
                raise StreamingRunIncompleteError(
                    f"{self.task_id}: the query did not commit a batch within {self.startup_timeout:.0f}s, so driver "
                    f"{submission.submission_id} was killed; {_driver_log_hint(submission)}"
                )
            time.sleep(self.poll_interval)

    def _wait_until_finished(self, submission) -> None:
        import time

        while True:
            state = self._hook.get_driver_state(submission)
            if not self.is_job_active(state):
                break
            time.sleep(self.poll_interval)
        if state.upper() not in ("FINISHED", "SUCCEEDED", "EXITED"):
            raise StreamingRunIncompleteError(
                f"{self.task_id}: {submission.deployment} driver {submission.submission_id} ended {state}; "
                f"{_driver_log_hint(submission)}"
            )

    def _forget_secrets(self, submission) -> None:
        """The driver has read its properties file: a detached driver's copy on disk can go."""
        if submission.deployment == "client" and submission.driver_log:
            secret = os.path.join(os.path.dirname(submission.driver_log), "secret.properties")
            if os.path.exists(secret):
                os.unlink(secret)

    def _streaming_result(self, submission) -> dict[str, Any]:
        lease = self._checkpoint_hook().get_lease()
        status = self._checkpoint_hook().get_status(include_state=False)
        return {"mode": "long_running", "reattached": self._reattached, "deployment": submission.deployment,
                "submission_id": submission.submission_id, "app_id": lease.app_id if lease else None,
                "host": lease.host if lease else None, "pid": lease.pid if lease else None,
                "checkpoint": status.checkpoint, "query_id": status.query_id,
                "latest_committed_batch": status.latest_committed_batch,
                "driver_log": submission.driver_log}  # fmt: skip

    def _bounded_result(self, committed_before: int) -> dict[str, Any]:
        checkpoint = self._checkpoint_hook()
        after = checkpoint.get_status(include_state=False)
        if after.has_uncommitted_batch:
            raise StreamingRunIncompleteError(
                f"{self.task_id}: the job exited but batch {after.latest_planned_batch} in {after.checkpoint} is "
                "planned and not committed; the next run will redo it. Check the driver log for the failure."
            )
        committed_after = after.latest_committed_batch if after.latest_committed_batch is not None else -1
        events = checkpoint.get_progress(after_batch=committed_before)
        events = [e for e in events if e.get("batchId", -1) <= committed_after]
        result = {
            "mode": "bounded",
            "query_id": after.query_id,
            "checkpoint": after.checkpoint,
            "batches_committed": committed_after - committed_before,
            "first_batch": committed_before + 1 if committed_after > committed_before else None,
            "last_batch": committed_after if committed_after > committed_before else None,
            "rows_processed": sum(int(e.get("numInputRows", 0)) for e in events),
            "progress_events": len(events),
            "batch_durations_ms": [int(e.get("batchDuration", 0)) for e in events],
            "committed_sources": [s.offset for s in after.committed_sources],
        }
        self.log.info("%s: %d batches, %d rows", self.task_id, result["batches_committed"], result["rows_processed"])
        return result

    def on_kill(self) -> None:
        """A killed task does not leave its job behind.

        A submitted driver is first asked to stop through the same stop marker as
        :class:`StopStreamingQueryOperator`, and killed through its cluster manager
        if it is still running 30 s later; a bounded run in this process's
        spark-submit is killed through the Spark provider's hook.
        """
        import time

        if self._submission is not None and self._job is not None:
            checkpoint = self._checkpoint_hook()
            checkpoint.request_stop()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.is_job_active(self._hook.get_driver_state(self._submission)):
                time.sleep(0.5)
            if self.is_job_active(self._hook.get_driver_state(self._submission)):
                self._hook.kill_driver(self._submission)
            checkpoint.clear_stop_request()
        elif self._hook is not None:
            self._hook.on_kill()


@dataclass
class _Job:
    """What one execution of the submit operator works on, once templates are rendered."""

    spec: dict[str, Any] | None
    checkpoint: str
    long_running: bool
    secret_conf: dict[str, str]
    owner: str


def _owner(context: Context, task_id: str) -> str:
    """Who submitted: the task (across its retries), so another DAG's task never reattaches."""
    ti = context.get("ti") if context else None
    if ti is None:
        return task_id
    return f"{ti.dag_id}.{ti.task_id}[{getattr(ti, 'map_index', -1)}]"


def _driver_log_hint(submission) -> str:
    if submission.driver_log and os.path.exists(submission.driver_log):
        with open(submission.driver_log, errors="replace") as log:
            tail = "\n".join(log.read().splitlines()[-30:])
        return f"the end of {submission.driver_log}:\n{tail}"
    return f"see the driver's log in the cluster manager ({submission.master})."


class StopStreamingQueryOperator(BaseOperator):
    """Stop a stream runner query gracefully: after its current micro-batch, with nothing left uncommitted.

    Writes the stop marker (``<checkpoint>/_stop``) that the runner watches (user
    applications can watch it with ``watch_stop_marker``), then waits until the
    runner has released its lease: the query terminated. After ``timeout``
    seconds it kills the driver (``kill_on_timeout``): through its cluster
    manager (standalone Master, YARN, Kubernetes) when
    :class:`SparkStreamingSubmitOperator` submitted it, which it records in the
    checkpoint's ``_submission``; through its process when it runs on this
    host; otherwise it fails and says what to kill.

    :param checkpoint: the query's checkpoint location. (templated)
    :param checkpoint_conn_id: the checkpoint's storage connection.
    :param conn_id: the ``spark`` connection for the kill (default: the one the driver was submitted with).
    :param timeout: seconds to wait for the graceful stop.
    :param kill_on_timeout: kill a driver that does not stop in time.
    :param poll_interval: seconds between checks.
    """

    template_fields: Sequence[str] = ("checkpoint",)

    def __init__(
        self,
        *,
        checkpoint: str,
        checkpoint_conn_id: str | None = None,
        conn_id: str | None = None,
        timeout: float = 300,
        kill_on_timeout: bool = True,
        poll_interval: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.checkpoint = checkpoint
        self.checkpoint_conn_id = checkpoint_conn_id
        self.conn_id = conn_id
        self.stop_timeout = timeout
        self.kill_on_timeout = kill_on_timeout
        self.poll_interval = poll_interval
        self._submit_hook = None

    def execute(self, context: Context) -> dict[str, Any]:
        import time

        from airflow_spark_streaming.hooks.checkpoint import CheckpointHook

        hook = CheckpointHook(self.checkpoint, conn_id=self.checkpoint_conn_id)
        lease = hook.get_lease()
        record = hook.get_submission()
        ours = (
            record if record and lease and lease.submission_tag and record.get("tag") == lease.submission_tag else None
        )
        killed = False
        if lease is None:
            self.log.info("No live query holds %s; nothing to stop", self.checkpoint)
        else:
            hook.request_stop()
            deadline = time.monotonic() + self.stop_timeout
            while time.monotonic() < deadline and self._still_running(hook, ours):
                time.sleep(self.poll_interval)
            if self._still_running(hook, ours):
                if not self.kill_on_timeout:
                    raise StreamingRunIncompleteError(
                        f"{self.task_id}: the query on {self.checkpoint} ({lease.app_id} on {lease.host}) did not stop "
                        f"within {self.stop_timeout:.0f}s, and kill_on_timeout is off; raise timeout or kill it."
                    )
                self._kill(lease, ours)
                killed = True
            hook.clear_stop_request()
        try:
            status = hook.get_status(include_state=False)
        except CheckpointNotFoundError:
            status = None  # the query never started
        return {"was_running": lease is not None, "app_id": lease.app_id if lease else None, "killed": killed,
                "submission_id": ours["submission_id"] if ours else None,
                "deployment": ours["deployment"] if ours else None,
                "latest_committed_batch": status.latest_committed_batch if status else None,
                "has_uncommitted_batch": status.has_uncommitted_batch if status else False}  # fmt: skip

    def _still_running(self, hook, record: dict[str, Any] | None) -> bool:
        """The lease is held, or (for a driver this provider submitted) its driver has not ended yet.

        The runner releases its lease just before its driver exits; waiting for
        both means the checkpoint read afterwards is the final one.
        """
        if hook.get_lease() is not None:
            return True
        if record is None:
            return False
        from airflow_spark_streaming.hooks.spark_submission import ACTIVE_STATES, SparkSubmission, StreamingSubmitHook

        submission = SparkSubmission.from_dict(record)
        if self._submit_hook is None:
            self._submit_hook = StreamingSubmitHook(conn_id=self.conn_id or submission.conn_id)
        return self._submit_hook.get_driver_state(submission) in ACTIVE_STATES

    def _kill(self, lease, record: dict[str, Any] | None) -> None:
        import signal
        import socket

        if record is not None:
            from airflow_spark_streaming.hooks.spark_submission import SparkSubmission, StreamingSubmitHook

            submission = SparkSubmission.from_dict(record)
            self.log.warning(
                "Graceful stop timed out; killing %s driver %s", submission.deployment, submission.submission_id
            )
            (self._submit_hook or StreamingSubmitHook(conn_id=self.conn_id or submission.conn_id)).kill_driver(
                submission
            )
        elif lease.host == socket.gethostname() and lease.pid:
            self.log.warning("Graceful stop timed out; killing driver pid %s", lease.pid)
            os.kill(lease.pid, signal.SIGKILL)
        else:
            raise StreamingRunIncompleteError(
                f"{self.task_id}: the query on {self.checkpoint} ({lease.app_id} on {lease.host}) did not stop within "
                f"{self.stop_timeout:.0f}s, and it was not submitted by this provider; kill application "
                f"{lease.app_id} with your cluster manager."
            )


def _templated(value: Any) -> bool:
    return "{{" in json.dumps(value, default=str)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _write_private(path: str, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
