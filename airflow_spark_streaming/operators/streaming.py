"""Submit Structured Streaming jobs from DAGs: bounded ``availableNow`` runs, long-running queries, graceful stop."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_spark_streaming.exceptions import (
    CheckpointInUseError,
    InvalidStreamSpecError,
    StreamingRunIncompleteError,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


class SparkStreamingSubmitOperator(BaseOperator):
    """Run a Structured Streaming job with spark-submit and judge it by its checkpoint.

    **Bounded mode** (``trigger: {"available_now": true}``, and every ``application``):
    the job works through the backlog and ends; see below. **Long-running mode**
    (a runner spec with ``trigger: {"processing_time": ...}``): the runner is
    started as a detached driver and the task succeeds once the query holds the
    checkpoint's lease and has committed a batch, returning the application id.
    A retry that finds the query still running (its lease is alive) reattaches
    to it instead of starting a second one. Stop it with
    :class:`StopStreamingQueryOperator`.

    The job is either the provider's declarative stream runner, described by
    ``spec`` (validated here, before anything is submitted), or your own
    ``application`` (.py or jar) with a ``checkpoint`` location. It is submitted
    through the Spark provider's ``SparkSubmitHook`` and ``spark`` connection.

    The task succeeds only when the job exited cleanly and the checkpoint shows
    no uncommitted batch. XCom receives the batches and rows this run
    processed, from the checkpoint and the runner's progress events.

    Secrets stay off spark-submit's command line, the task log and XCom: the
    spec goes to spark-submit as a private temporary file, and Spark settings
    whose names look like credentials go in a private properties file.

    :param spec: the stream runner spec (dict or JSON string). (templated)
    :param application: your own Spark application instead of the runner. (templated)
    :param checkpoint: the checkpoint location of ``application``'s query. (templated)
    :param application_args: arguments for ``application``. (templated)
    :param conn_id: the ``spark`` connection.
    :param checkpoint_conn_id: the storage connection of the checkpoint, for reading it.
    :param conf: Spark settings. (templated)
    :param kafka: load Spark's Kafka connector (default: when the spec reads or writes Kafka).
    :param extra_packages: more Maven packages for the job.
    :param extra_jars: more jars for the job.
    :param jvm_resolver: ``packages`` or ``maven`` (default: ``[spark_streaming] jvm_resolver``).
    :param name: the Spark application name (default: the query name or task id).
    :param submit_kwargs: more ``SparkSubmitHook`` arguments (``driver_memory``, ``executor_cores``, ...).
    :param startup_timeout: long-running mode: seconds to wait for the query to commit its first batch.
    """

    template_fields: Sequence[str] = ("spec", "application", "checkpoint", "application_args", "conf")
    template_fields_renderers = {"spec": "json", "conf": "json"}

    def __init__(
        self,
        *,
        spec: dict[str, Any] | str | None = None,
        application: str | None = None,
        checkpoint: str | None = None,
        application_args: list[str] | None = None,
        conn_id: str = "spark_default",
        checkpoint_conn_id: str | None = None,
        conf: dict[str, Any] | None = None,
        kafka: bool | None = None,
        extra_packages: Sequence[str] = (),
        extra_jars: Sequence[str] = (),
        jvm_resolver: str | None = None,
        name: str | None = None,
        submit_kwargs: dict[str, Any] | None = None,
        startup_timeout: float = 600,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.startup_timeout = startup_timeout
        self._submit_hook = None
        self._driver = None
        self._checkpoint_for_kill: str | None = None
        if (spec is None) == (application is None):
            raise InvalidStreamSpecError(
                f"{self.task_id}: give either spec (the stream runner) or application, not both."
            )
        if application is not None and not checkpoint:
            raise InvalidStreamSpecError(
                f"{self.task_id}: application needs checkpoint, the query's checkpoint location."
            )
        self.spec = spec
        self.application = application
        self.checkpoint = checkpoint
        self.application_args = application_args or []
        self.conn_id = conn_id
        self.checkpoint_conn_id = checkpoint_conn_id
        self.conf = conf or {}
        self.kafka = kafka
        self.extra_packages = list(extra_packages)
        self.extra_jars = list(extra_jars)
        self.jvm_resolver = jvm_resolver
        self.name = name
        self.submit_kwargs = submit_kwargs or {}
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

    def _checkpoint_status(self, checkpoint: str):
        from airflow_spark_streaming.exceptions import CheckpointNotFoundError
        from airflow_spark_streaming.hooks.checkpoint import CheckpointHook

        try:
            return CheckpointHook(checkpoint, conn_id=self.checkpoint_conn_id).get_status(include_state=False)
        except CheckpointNotFoundError:
            return None

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

        from airflow_spark_streaming.hooks.checkpoint import CheckpointHook
        from airflow_spark_streaming.jobs import job_path
        from airflow_spark_streaming.jvm import resolve_jvm_dependencies
        from airflow_spark_streaming.spec import is_secret_key, redact_spec

        spec = self._validated_spec() if self.spec is not None else None
        checkpoint = spec["checkpoint_location"] if spec else self.checkpoint
        uses_kafka = (
            self.kafka
            if self.kafka is not None
            else bool(spec and "kafka" in (spec["source"]["format"], spec["sink"]["format"]))
        )
        deps = resolve_jvm_dependencies(
            delta=True, kafka=uses_kafka, extra_packages=self.extra_packages, extra_jars=self.extra_jars,
            resolver=self.jvm_resolver, user_conf=self.conf,
        )  # fmt: skip
        submit = deps.submit_kwargs()
        conf = {**submit.pop("conf"), **{k: str(v) for k, v in self.conf.items()}}
        secret_conf = {k: v for k, v in conf.items() if is_secret_key(k)}
        public_conf = {k: v for k, v in conf.items() if k not in secret_conf}
        long_running = bool(spec and "processing_time" in spec["trigger"])
        lease = CheckpointHook(checkpoint, conn_id=self.checkpoint_conn_id).get_lease()
        if lease is not None and long_running:
            return self._reattach(checkpoint, lease)
        if lease is not None:
            raise CheckpointInUseError(
                f"{self.task_id}: checkpoint {checkpoint} is in use by Spark application {lease.app_id} on "
                f"{lease.host} (heartbeat {lease.heartbeat_age_seconds:.0f}s ago); a second query would corrupt it. "
                f"Stop that query first; a lease left by a dead driver expires after {lease.ttl_seconds:.0f}s."
            )
        before = self._checkpoint_status(checkpoint)
        committed_before = before.latest_committed_batch if before and before.latest_committed_batch is not None else -1
        if spec:
            self.log.info("Stream spec: %s", json.dumps(redact_spec(spec)))

        if long_running:
            return self._start_detached(spec, public_conf, secret_conf, submit, committed_before)

        with tempfile.TemporaryDirectory(prefix="spark-streaming-") as private:
            os.chmod(private, 0o700)
            args = list(self.application_args)
            if spec:
                spec_file = os.path.join(private, "spec.json")
                _write_private(spec_file, json.dumps(spec))
                args = ["--spec-file", spec_file]
            properties_file = None
            if secret_conf:
                properties_file = os.path.join(private, "secret.properties")
                _write_private(properties_file, "".join(f"{k} {_escape(v)}\n" for k, v in secret_conf.items()))
            hook = self._submit_hook = SparkSubmitHook(
                conn_id=self.conn_id,
                conf=public_conf,
                application_args=args,
                name=self.name or (spec["query_name"] if spec else self.task_id),
                properties_file=properties_file,
                **submit,
                **self.submit_kwargs,
            )
            hook.submit(self.application or job_path("stream_runner"))

        after = CheckpointHook(checkpoint, conn_id=self.checkpoint_conn_id).get_status(include_state=False)
        if after.has_uncommitted_batch:
            raise StreamingRunIncompleteError(
                f"{self.task_id}: the job exited but batch {after.latest_planned_batch} in {after.checkpoint} is "
                "planned and not committed; the next run will redo it. Check the driver log for the failure."
            )
        committed_after = after.latest_committed_batch if after.latest_committed_batch is not None else -1
        events = CheckpointHook(checkpoint, conn_id=self.checkpoint_conn_id).get_progress(after_batch=committed_before)
        events = [e for e in events if e.get("batchId", -1) <= committed_after]
        result = {
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

        While a long-running query is still starting, it is asked to stop through
        the same stop marker as :class:`StopStreamingQueryOperator`, then killed
        if it has not stopped within 30 s; a bounded run is killed through the
        Spark provider's hook.
        """
        import time

        if self._driver is not None and self._driver.poll() is None:
            from airflow_spark_streaming.hooks.checkpoint import CheckpointHook

            CheckpointHook(self._checkpoint_for_kill, conn_id=self.checkpoint_conn_id).request_stop()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self._driver.poll() is None:
                time.sleep(0.5)
            _kill_process_group(self._driver)
        elif self._submit_hook is not None:
            self._submit_hook.on_kill()

    # --- long-running mode -----------------------------------------------------------------------

    def _reattach(self, checkpoint: str, lease) -> dict[str, Any]:
        """A retry finds its query still running (its lease is alive): watch it instead of starting another."""
        from airflow_spark_streaming.hooks.checkpoint import CheckpointHook

        self.log.info("Query on %s is already running as %s on %s; reattaching", checkpoint, lease.app_id, lease.host)
        status = CheckpointHook(checkpoint, conn_id=self.checkpoint_conn_id).get_status(include_state=False)
        return {"mode": "long_running", "reattached": True, "app_id": lease.app_id, "host": lease.host,
                "pid": lease.pid, "checkpoint": status.checkpoint, "query_id": status.query_id,
                "latest_committed_batch": status.latest_committed_batch}  # fmt: skip

    def _start_detached(self, spec, public_conf, secret_conf, submit, committed_before) -> dict[str, Any]:
        """Start the runner as a detached driver, and succeed once its query runs and has committed a batch."""
        import subprocess
        import time
        import uuid

        from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

        from airflow_spark_streaming.hooks.checkpoint import CheckpointHook
        from airflow_spark_streaming.jobs import job_path
        from airflow_spark_streaming.jvm import cache_dir

        # The files outlive this task: the runner deletes the spec once read, and the properties
        # file (secrets) is removed as soon as the driver holds the lease.
        private = cache_dir() / "drivers" / f"{spec['query_name']}-{uuid.uuid4().hex[:8]}"
        private.mkdir(parents=True, mode=0o700)
        spec_file, properties_file = private / "spec.json", None
        _write_private(str(spec_file), json.dumps(spec))
        if secret_conf:
            properties_file = str(private / "secret.properties")
            _write_private(properties_file, "".join(f"{k} {_escape(v)}\n" for k, v in secret_conf.items()))
        hook = SparkSubmitHook(
            conn_id=self.conn_id, conf=public_conf, name=self.name or spec["query_name"],
            application_args=["--spec-file", str(spec_file), "--delete-spec-file"],
            properties_file=properties_file, **submit, **self.submit_kwargs,
        )  # fmt: skip
        command = hook._build_spark_submit_command(job_path("stream_runner"))
        log_path = private / "driver.log"
        with open(log_path, "wb") as log:
            driver = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True)  # fmt: skip
        self._driver, self._checkpoint_for_kill = driver, spec["checkpoint_location"]
        self.log.info("Started detached driver pid %s for %s; log %s", driver.pid, spec["query_name"], log_path)
        checkpoint = CheckpointHook(spec["checkpoint_location"], conn_id=self.checkpoint_conn_id)
        deadline = time.monotonic() + self.startup_timeout
        lease = status = None
        while time.monotonic() < deadline:
            if driver.poll() is not None:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
                raise StreamingRunIncompleteError(
                    f"{self.task_id}: the driver exited with code {driver.returncode} before its query made progress; "
                    f"the end of {log_path}:\n{tail}"
                )
            lease = checkpoint.get_lease()
            if lease is not None and properties_file:
                os.unlink(properties_file)
                properties_file = None
            if lease is not None:
                status = self._checkpoint_status(spec["checkpoint_location"])
                if (
                    status
                    and status.latest_committed_batch is not None
                    and status.latest_committed_batch > committed_before
                ):
                    break
            time.sleep(1)
        else:
            _kill_process_group(driver)
            raise StreamingRunIncompleteError(
                f"{self.task_id}: the query did not commit a batch within {self.startup_timeout}s, so its driver "
                f"(pid {driver.pid}) was stopped; see {log_path}."
            )
        return {"mode": "long_running", "reattached": False, "app_id": lease.app_id, "host": lease.host,
                "pid": lease.pid, "submit_pid": driver.pid, "checkpoint": status.checkpoint,
                "query_id": status.query_id, "latest_committed_batch": status.latest_committed_batch,
                "driver_log": str(log_path)}  # fmt: skip


class StopStreamingQueryOperator(BaseOperator):
    """Stop a stream runner query gracefully: after its current micro-batch, with nothing left uncommitted.

    Writes the stop marker (``<checkpoint>/_stop``) that the runner watches, then
    waits until the runner has released its lease (the query terminated). After
    ``timeout`` seconds it falls back to killing the driver when it runs on this
    host (``kill_on_timeout``), and otherwise fails.

    :param checkpoint: the query's checkpoint location. (templated)
    :param checkpoint_conn_id: the checkpoint's storage connection.
    :param timeout: seconds to wait for the graceful stop.
    :param kill_on_timeout: kill a local driver that does not stop in time.
    :param poll_interval: seconds between checks.
    """

    template_fields: Sequence[str] = ("checkpoint",)

    def __init__(
        self,
        *,
        checkpoint: str,
        checkpoint_conn_id: str | None = None,
        timeout: float = 300,
        kill_on_timeout: bool = True,
        poll_interval: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.checkpoint = checkpoint
        self.checkpoint_conn_id = checkpoint_conn_id
        self.stop_timeout = timeout
        self.kill_on_timeout = kill_on_timeout
        self.poll_interval = poll_interval

    def execute(self, context: Context) -> dict[str, Any]:
        import signal
        import socket
        import time

        from airflow_spark_streaming.hooks.checkpoint import CheckpointHook

        hook = CheckpointHook(self.checkpoint, conn_id=self.checkpoint_conn_id)
        lease = hook.get_lease()
        killed = False
        if lease is None:
            self.log.info("No live query holds %s; nothing to stop", self.checkpoint)
        else:
            hook.request_stop()
            deadline = time.monotonic() + self.stop_timeout
            while time.monotonic() < deadline and hook.get_lease() is not None:
                time.sleep(self.poll_interval)
            if hook.get_lease() is not None:
                if not (self.kill_on_timeout and lease.host == socket.gethostname() and lease.pid):
                    raise StreamingRunIncompleteError(
                        f"{self.task_id}: the query on {self.checkpoint} ({lease.app_id} on {lease.host}) did not stop "
                        f"within {self.stop_timeout:.0f}s; kill application {lease.app_id} with your cluster manager."
                    )
                self.log.warning("Graceful stop timed out; killing driver pid %s", lease.pid)
                os.kill(lease.pid, signal.SIGKILL)
                killed = True
            hook.clear_stop_request()
        status = hook.get_status(include_state=False)
        return {"was_running": lease is not None, "app_id": lease.app_id if lease else None, "killed": killed,
                "latest_committed_batch": status.latest_committed_batch,
                "has_uncommitted_batch": status.has_uncommitted_batch}  # fmt: skip


def _kill_process_group(process) -> None:
    import signal

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(15)
            return
        except Exception:  # noqa: BLE001 - still running: escalate
            continue


def _templated(value: Any) -> bool:
    return "{{" in json.dumps(value, default=str)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _write_private(path: str, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
