"""Submit Structured Streaming jobs from DAGs: bounded ``availableNow`` runs and long-running queries.

The spark-submit is prepared by :func:`~airflow_spark_streaming.spark.submission.preparation.prepare_submission`,
as the Delta engine's is; the chosen backend applies its cluster manager's rules. Hooks and the preparation
are imported inside methods: they are most of the provider's import cost, and DAG files that only declare
tasks never need them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, ResumableJobMixin

from airflow_spark_streaming.exceptions import (
    CheckpointInUseError,
    InvalidStreamSpecError,
    SparkConnectError,
    SparkConnectUnsupportedError,
    StreamingRunIncompleteError,
)
from airflow_spark_streaming.operators.stop import StopStreamingQueryOperator  # noqa: F401 - its home before 0.2
from airflow_spark_streaming.runner.spec import redact_spec, validate_stream_spec, with_kafka_config_id
from airflow_spark_streaming.utils.deprecation import renamed_parameter
from airflow_spark_streaming.utils.redaction import mask_mapping_secrets, mask_secrets

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
    from airflow_spark_streaming.hooks.stream_connect import StreamConnectHook
    from airflow_spark_streaming.hooks.submission import SparkJob, SparkSubmission, StreamingSubmitHook

ON_KILL_GRACE_SECONDS = 30


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

    **The control key** (the password of ``control_conn_id``) signs the ``_submission`` record and
    reaches the runner only inside its private spec, so the runner signs its lease and checks
    maintenance requests; nobody who merely writes to the lake can make the provider act. A
    long-running query needs it (:class:`ControlKeyMissingError` otherwise, before anything is
    submitted); a bounded run works without it, its records unsigned and never acted on.

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
    :param spark_conn_id: the ``spark`` connection.
    :param deploy_mode: ``client`` or ``cluster`` (default: the connection's ``deploy-mode`` extra).
    :param storage_conn_id: the storage connection of the checkpoint, for reading it.
    :param conf: Spark settings. (templated)
    :param kafka: load Spark's Kafka connector (default: when the spec reads or writes Kafka).
    :param kafka_config_id: the Kafka provider's ``kafka`` connection for the spec's Kafka source and sink that
        name none (``kafka_config_id`` in the section); resolved here, it reaches the driver inside the private spec.
    :param kafka_ignore_keys: keys of that connection that only matter to confluent-kafka clients (the lag hook).
    :param extra_packages: more Maven packages for the job.
    :param extra_jars: more jars for the job.
    :param jvm_resolver: ``packages`` or ``maven`` (default: ``[spark_streaming] jvm_resolver``).
    :param name: the Spark application name (default: the query name or task id).
    :param submit_kwargs: more ``SparkSubmitHook`` arguments (``driver_memory``, ``executor_cores``, ...).
    :param startup_timeout: long-running mode: seconds to wait for the query to commit its first batch.
    :param poll_interval: seconds between checks of the driver and the checkpoint.
    :param durable: keep the submission in the task state store, so that a retry reattaches.
    :param control_conn_id: the connection holding the control key in its password (default
        ``spark_streaming_control_default``); required for long-running mode.
    :param lease_consistency: how the runner takes the checkpoint's lease (sets the spec's ``lease_consistency``).
        ``conditional`` (the default): only with an atomic create-if-absent; on S3 the runner proves the store's
        conditional create first and otherwise refuses to start (:class:`UnsafeLeaseStoreError`).
        ``best_effort``: take it anyway; two runners starting at once are then told apart only at the next
        renewal, and the loser stops. See "Running on S3".
    :param conn_id: deprecated spelling of ``spark_conn_id``.
    :param checkpoint_conn_id: deprecated spelling of ``storage_conn_id``.
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
        spark_conn_id: str | None = None,
        deploy_mode: str | None = None,
        storage_conn_id: str | None = None,
        conf: dict[str, Any] | None = None,
        kafka: bool | None = None,
        kafka_config_id: str | None = None,
        kafka_ignore_keys: Sequence[str] = (),
        extra_packages: Sequence[str] = (),
        extra_jars: Sequence[str] = (),
        jvm_resolver: str | None = None,
        name: str | None = None,
        submit_kwargs: dict[str, Any] | None = None,
        startup_timeout: float = 600,
        control_conn_id: str | None = None,
        poll_interval: float = 2.0,
        lease_consistency: str | None = None,
        conn_id: str | None = None,
        checkpoint_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        for value in (spec, conf, submit_kwargs):
            mask_mapping_secrets(value)  # before any check can print a secret into the DAG's import error
        super().__init__(**kwargs)
        owner = f"{type(self).__name__}({self.task_id})"
        self.spark_conn_id = renamed_parameter(
            owner, "conn_id", "spark_conn_id", conn_id, spark_conn_id, "spark_default"
        )
        self.storage_conn_id = renamed_parameter(
            owner, "checkpoint_conn_id", "storage_conn_id", checkpoint_conn_id, storage_conn_id
        )
        if (spec is None) == (application is None):
            raise InvalidStreamSpecError(
                f"{self.task_id}: give either spec (the stream runner) or application, not both."
            )
        if application is not None and not checkpoint:
            raise InvalidStreamSpecError(
                f"{self.task_id}: application needs checkpoint, the query's checkpoint location."
            )
        from airflow_spark_streaming.utils import params  # parameter checks; templated values are checked once rendered

        if spec is not None and not isinstance(spec, dict | str) and not params.is_template(spec):
            raise InvalidStreamSpecError(
                f"{self.task_id}: spec=<a {type(spec).__name__}, not shown> must be a dict or the text of a JSON "
                "object, e.g. {'query_name': ..., 'checkpoint_location': ..., 'source': ..., 'sink': ...}."
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
        from airflow_spark_streaming.spark.jvm import RESOLVERS

        if checkpoint is not None and not params.is_template(checkpoint):
            params.location(self.task_id, "checkpoint", checkpoint, checkpoint=True)
        self.checkpoint = checkpoint
        self.application_args = application_args or []
        self.long_running = params.strict_bool(self.task_id, "long_running", long_running, optional=True)
        self.deploy_mode = deploy_mode
        self.conf = conf if params.is_template(conf) else params.mapping(self.task_id, "conf", conf)
        self.kafka = params.strict_bool(self.task_id, "kafka", kafka, optional=True)
        self.kafka_config_id = kafka_config_id
        self.kafka_ignore_keys = tuple(params.string_list(self.task_id, "kafka_ignore_keys", kafka_ignore_keys))
        self.extra_packages = params.maven_coordinates(self.task_id, "extra_packages", extra_packages)
        self.extra_jars = params.string_list(self.task_id, "extra_jars", extra_jars)
        self.jvm_resolver = params.choice(self.task_id, "jvm_resolver", jvm_resolver, RESOLVERS, optional=True)
        self.name = name
        self.submit_kwargs = params.mapping(self.task_id, "submit_kwargs", submit_kwargs)
        self.startup_timeout = params.seconds(self.task_id, "startup_timeout", startup_timeout)
        self.poll_interval = params.seconds(self.task_id, "poll_interval", poll_interval)
        self.control_conn_id = control_conn_id
        self.lease_consistency = _lease_consistency(self.task_id, lease_consistency, application)
        self._hook: StreamingSubmitHook | None = None
        self._connect: StreamConnectHook | None = None
        self._run: _Run | None = None
        self._submission: SparkSubmission | None = None
        self._reattached: bool | None = None
        self._result: dict[str, Any] | None = None
        mask_secrets(spec, self.conf)  # before anything renders or logs them
        if not params.is_template(spec) and not _templated(spec):
            self._validated_spec()  # fail at DAG parse time, not after scheduling (a JSON text spec too)

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """A templated ``conf`` is checked at its first render, as a literal one is when the DAG is parsed."""
        from airflow_spark_streaming.utils import params

        if self.kafka_config_id:  # mask the connection's secrets before anything is rendered
            from airflow_spark_streaming.kafka.connection import mask_connection_secrets

            mask_connection_secrets(self.kafka_config_id, ignore_keys=self.kafka_ignore_keys)
        super().render_template_fields(context, jinja_env)
        mask_secrets(self.spec, self.conf)  # templated secrets, before the rendered fields are stored or checked
        self.conf = params.mapping(self.task_id, "conf", self.conf)
        if self.checkpoint is not None:
            params.location(self.task_id, "checkpoint", self.checkpoint, checkpoint=True)

    def get_openlineage_facets_on_start(self):
        """Inputs and output from the spec; for your own application, from its checkpoint once it ran.

        Called by the OpenLineage provider when it is installed; without it nothing here is imported.
        """
        from airflow_spark_streaming.lineage.datasets import spec_with_kafka_servers, streaming_job_lineage

        if self.spec is None:
            return streaming_job_lineage()
        return streaming_job_lineage(spec=spec_with_kafka_servers(self._validated_spec(), _kafka_bootstrap_servers))

    def get_openlineage_facets_on_complete(self, task_instance):
        from airflow_spark_streaming.lineage.datasets import streaming_job_lineage

        if self.spec is not None:
            return self.get_openlineage_facets_on_start()
        from airflow_spark_streaming.hooks.checkpoint import CheckpointHook

        status = CheckpointHook(self.checkpoint, storage_conn_id=self.storage_conn_id).get_status(include_state=False)
        servers = _kafka_bootstrap_servers(self.kafka_config_id) if self.kafka_config_id else None
        return streaming_job_lineage(checkpoint_sources=status.committed_sources, kafka_bootstrap_servers=servers)

    def _validated_spec(self) -> dict[str, Any] | None:
        spec = self.spec
        if spec is None:
            return None
        if isinstance(spec, str):
            try:
                spec = json.loads(spec)
            except json.JSONDecodeError as err:
                raise InvalidStreamSpecError(
                    f"{self.task_id}: spec is not valid JSON ({err.msg}); pass a dict, or a str holding one JSON object."
                ) from err
        if self.lease_consistency is not None and isinstance(spec, dict):
            if spec.get("lease_consistency", self.lease_consistency) != self.lease_consistency:
                raise InvalidStreamSpecError(
                    f"{self.task_id}: lease_consistency={self.lease_consistency!r} contradicts the spec's "
                    f"lease_consistency {spec['lease_consistency']!r}; set it in one place."
                )
            spec = {**spec, "lease_consistency": self.lease_consistency}
        return validate_stream_spec(with_kafka_config_id(spec, self.kafka_config_id))

    def _checkpoint_hook(self) -> RunnerControlHook:
        """The runner's side files beside the checkpoint; ``sibling(CheckpointHook)`` reads its status."""
        from airflow_spark_streaming.hooks.runner_control import RunnerControlHook

        return RunnerControlHook(self._run.checkpoint, storage_conn_id=self.storage_conn_id)

    # --- execute -------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_spark_streaming.hooks.control_key import get_control_key
        from airflow_spark_streaming.hooks.submission import StreamingSubmitHook
        from airflow_spark_streaming.runner.jobs import job_path
        from airflow_spark_streaming.spark.submission.preparation import prepare_submission
        from airflow_spark_streaming.storage.access import spark_spec, spec_paths

        self._submission, self._reattached, self._result = None, None, None
        spec = self._validated_spec() if self.spec is not None else None
        from airflow_spark_streaming.hooks.spark_connect import is_spark_connect_connection

        if is_spark_connect_connection(self.spark_conn_id):
            return self._run_over_connect(context, spec)
        uses_kafka = (
            self.kafka
            if self.kafka is not None
            else bool(spec and "kafka" in (spec["source"]["format"], spec["sink"]["format"]))
        )
        long_running = bool(spec and "processing_time" in spec["trigger"]) if spec else bool(self.long_running)
        control_key = get_control_key(self.control_conn_id, required=long_running,
                                      purpose=f"{self.task_id}: a long-running stream")  # fmt: skip
        kafka_spec = self._resolved_kafka_spec(spec) if spec is not None else None
        spec = spark_spec(spec) if spec else spec  # storage_conn_id gives the job S3A settings and hadoop-aws
        label = spec["query_name"] if spec else self.task_id
        run = prepare_submission(
            who=self.task_id, spark_conn_id=self.spark_conn_id, deploy_mode=self.deploy_mode,
            application=self.application or job_path("stream_runner"), application_args=self.application_args,
            spec=_with_control_key(kafka_spec.spec, control_key) if kafka_spec else None, name=self.name or label,
            label=label,
            storage_conn_id=self.storage_conn_id, paths=[*spec_paths(spec), self.checkpoint, self.application],
            conf=self.conf, kafka=uses_kafka,
            extra_packages=self.extra_packages, extra_jars=self.extra_jars, jvm_resolver=self.jvm_resolver,
            submit_kwargs=self.submit_kwargs,
        )  # fmt: skip
        self._hook = StreamingSubmitHook.for_run(run)
        self._run = _Run(
            job=run.job,
            checkpoint=spec["checkpoint_location"] if spec else self.checkpoint,
            long_running=long_running,
            owner=_owner(context, self.task_id),
            kafka=kafka_spec,
            control_key=control_key,
        )
        if spec:
            self.log.info("Stream spec: %s", json.dumps(redact_spec(spec)))
        if self._run.long_running or run.deployment != "client":
            return self.execute_resumable(context)
        return self._run_here()

    def _resolved_kafka_spec(self, spec: dict[str, Any]):
        """The spec with its Kafka connections' options filled in (``ResolvedKafkaSpec``); logged without secrets."""
        from airflow_spark_streaming.kafka.spec import resolve_kafka_spec

        kafka_spec = resolve_kafka_spec(spec, ignore_keys=self.kafka_ignore_keys)
        for section, options in kafka_spec.redacted_options().items():
            self.log.info("Kafka options of the %s, from its connection: %s", section, json.dumps(options))
        return kafka_spec

    def _run_here(self) -> dict[str, Any]:
        """Bounded run with the driver in this process's spark-submit: wait for it, then read the checkpoint."""
        from airflow_spark_streaming.hooks.submission import latest_committed_batch

        checkpoint = self._checkpoint_hook()
        self._own_submission_or_refuse(checkpoint)
        committed_before = latest_committed_batch(checkpoint)
        from airflow_spark_streaming.operators._progress_log import BatchProgressLog

        with BatchProgressLog(checkpoint, self.log, committed_before).running(self.poll_interval):
            try:
                self._hook.run_to_completion(self._run.job)
            except Exception as err:  # the Spark provider's error ends with the tail of spark-submit's output
                self._raise_kafka_refusal(str(err))
                raise
        return self._bounded_result(committed_before)

    def _run_over_connect(self, context: Context, spec: dict[str, Any] | None) -> dict[str, Any]:
        """Bounded run of the spec on the ``spark_connect`` connection's server (``hooks/stream_connect.py``)."""
        from airflow_spark_streaming.hooks.stream_connect import StreamConnectHook
        from airflow_spark_streaming.hooks.submission import latest_committed_batch
        from airflow_spark_streaming.operators._progress_log import BatchProgressLog
        from airflow_spark_streaming.storage.access import spark_spec

        self._refuse_on_connect(spec)
        kafka_spec = self._resolved_kafka_spec(spec)
        server_spec = spark_spec(spec)  # s3a:// paths: the server reaches S3 with its own settings
        self._run = _Run(job=None, checkpoint=server_spec["checkpoint_location"], long_running=False,
                         owner=_owner(context, self.task_id), kafka=kafka_spec)  # fmt: skip
        self.log.info("Stream spec: %s", json.dumps(redact_spec(server_spec)))
        checkpoint = self._checkpoint_hook()
        lease = checkpoint.get_lease()
        if lease is not None:
            raise self._in_use(lease, holder=str(lease.app_id), left_by="process")
        committed_before = latest_committed_batch(checkpoint)
        self._connect = StreamConnectHook(self.spark_conn_id, poll_interval=min(self.poll_interval, 1.0))
        with BatchProgressLog(checkpoint, self.log, committed_before).running(self.poll_interval):
            try:
                # The session extends the server's SQL redaction to every secret name (SparkConnectHook.session).
                run = self._connect.run_bounded(spark_spec(kafka_spec.spec), checkpoint, conf=self.conf)
            except SparkConnectError as err:
                self._raise_kafka_refusal(str(err))
                raise
        self.log.info("%s: ran on the Spark Connect server at %s in %.1fs", self.task_id, run.server, run.seconds)
        return {**self._bounded_result(committed_before), "spark_transport": "connect", "server": run.server,
                "run_id": run.run_id, "stopped": run.stopped}  # fmt: skip

    def _refuse_on_connect(self, spec: dict[str, Any] | None) -> None:
        """What a ``spark_connect`` connection cannot run, refused before anything starts."""
        problems = []
        if spec is None:
            problems.append("application runs only through spark-submit: give a spec instead")
        elif "processing_time" in spec["trigger"]:
            problems.append(
                "a long-running query (trigger processing_time) would live only as long as the server's session: run "
                "it through a 'spark' connection, or make it a scheduled bounded run (trigger available_now)"
            )
        for name in ("deploy_mode", "extra_packages", "extra_jars", "jvm_resolver", "submit_kwargs", "name"):
            if getattr(self, name):
                problems.append(f"{name} is a spark-submit setting; the server's own start-up settings decide it")
        if problems:
            raise SparkConnectUnsupportedError(
                f"{self.task_id}: spark_conn_id {self.spark_conn_id!r} is a spark_connect connection, which runs "
                f"bounded stream specs on its server; {'; '.join(problems)}."
            )

    def _own_submission_or_refuse(self, checkpoint) -> SparkSubmission | None:
        """Refuse a checkpoint a live query holds; return its submission if that query is this task's own."""
        # Only a long-running query reattaches, and only to a signed record of its own.
        key = self._run.control_key if self._run.long_running else None
        lease, holder = self._hook.get_lease_holder(checkpoint, key=key)
        if lease is None:
            return None
        if self._run.long_running and holder is not None and holder.owner == self._run.owner:
            return holder
        raise self._in_use(lease, holder=f"Spark application {lease.app_id}", left_by="driver")

    def _in_use(self, lease, *, holder: str, left_by: str) -> CheckpointInUseError:
        return CheckpointInUseError(
            f"{self.task_id}: checkpoint {self._run.checkpoint} is in use by {holder} on {lease.host} (heartbeat "
            f"{lease.heartbeat_age_seconds:.0f}s ago); a second query would corrupt it. Stop that query first; a "
            f"lease left by a dead {left_by} expires after {lease.ttl_seconds:.0f}s."
        )

    # --- ResumableJobMixin: submit, state, wait, result -----------------------------------------

    def submit_job(self, context: Context) -> dict[str, Any]:
        checkpoint = self._checkpoint_hook()
        own = self._own_submission_or_refuse(checkpoint)
        if own is not None:
            self.log.info("Query on %s is already running as %s; reattaching", self._run.checkpoint, own.submission_id)
            self._submission, self._reattached = own, True
            return own.to_dict()
        self._reattached = False
        self._submission = self._hook.start_driver(
            self._run.job, checkpoint=checkpoint, owner=self._run.owner, control_key=self._run.control_key
        )
        return self._submission.to_dict()

    def get_job_status(self, external_id: Any, context: Context) -> str:
        from airflow_spark_streaming.hooks.submission import SparkSubmission

        return self._hook.get_driver_state(SparkSubmission.from_dict(external_id))

    def is_job_active(self, status: str) -> bool:
        from airflow_spark_streaming.hooks.submission import DriverState

        return DriverState.parse(status).is_active

    def is_job_succeeded(self, status: str) -> bool:
        from airflow_spark_streaming.hooks.submission import DriverState

        # A long-running query whose driver ended is not running: the task starts it again.
        return not self._run.long_running and DriverState.parse(status).is_success

    def poll_until_complete(self, external_id: Any, context: Context) -> dict[str, Any]:
        """Long-running: wait until the query runs and has committed a batch. Bounded: until the driver ends."""
        from airflow_spark_streaming.hooks.submission import SparkSubmission

        submission = self._submission = SparkSubmission.from_dict(external_id)
        if self._reattached is None:
            self._reattached = True  # the mixin found it in the task state store; submit_job did not run
        try:
            if self._run.long_running:
                self._wait_until_streaming(submission)
            else:
                self._wait_until_finished(submission)
        finally:
            self._hook.release_private_files(submission, self._checkpoint_hook())
        return self.get_job_result(external_id, context)

    def get_job_result(self, external_id: Any, context: Context) -> dict[str, Any]:
        from airflow_spark_streaming.hooks.submission import SparkSubmission

        if self._result is None:
            submission = SparkSubmission.from_dict(external_id)
            if self._run.long_running:
                self._result = self._streaming_result(submission)
            else:
                self._result = {**self._bounded_result(submission.committed_before),
                                "deployment": submission.deployment, "submission_id": submission.submission_id}  # fmt: skip
        return self._result

    def _wait_until_streaming(self, submission: SparkSubmission) -> None:
        from airflow_spark_streaming.hooks.submission import latest_committed_batch
        from airflow_spark_streaming.operators._progress_log import BatchProgressLog

        checkpoint = self._checkpoint_hook()
        progress = BatchProgressLog(checkpoint, self.log, submission.committed_before)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            state = self._hook.get_driver_state(submission)
            if not state.is_active:
                self._raise_kafka_refusal(self._hook.get_driver_log_hint(submission, lines=200))
                raise StreamingRunIncompleteError(
                    f"{self.task_id}: {submission.deployment} driver {submission.submission_id} ended ({state}) before "
                    f"its query made progress; {self._hook.get_driver_log_hint(submission)}"
                )
            if self._hook.holds_lease(submission, checkpoint):
                self._hook.release_private_files(submission, checkpoint)  # the driver has read them
                if latest_committed_batch(checkpoint) > submission.committed_before:
                    progress.poll()  # the first batches, as a bounded run logs them
                    return
            if time.monotonic() > deadline:
                self._hook.kill_driver(submission)
                raise StreamingRunIncompleteError(
                    f"{self.task_id}: the query did not commit a batch within {self.startup_timeout:.0f}s, so driver "
                    f"{submission.submission_id} was killed; {self._hook.get_driver_log_hint(submission)}"
                )
            time.sleep(self.poll_interval)

    def _wait_until_finished(self, submission: SparkSubmission) -> None:
        from airflow_spark_streaming.operators._progress_log import BatchProgressLog

        progress = BatchProgressLog(self._checkpoint_hook(), self.log, submission.committed_before)
        while (state := self._hook.get_driver_state(submission)).is_active:
            progress.poll()
            time.sleep(self.poll_interval)
        progress.poll()
        if not state.is_success:
            self._raise_kafka_refusal(self._hook.get_driver_log_hint(submission, lines=200))
            raise StreamingRunIncompleteError(
                f"{self.task_id}: {submission.deployment} driver {submission.submission_id} ended {state}; "
                f"{self._hook.get_driver_log_hint(submission)}"
            )

    def _raise_kafka_refusal(self, driver_output: str) -> None:
        """Raise the named error of a Kafka broker's refusal the driver reported, if it did (no secret in it);
        or of the runner's refusal of a store without an atomic lease create."""
        _raise_unsafe_lease_store(self.task_id, driver_output)
        if self._run.kafka is not None and self._run.kafka.uses_connections:
            refusal = self._run.kafka.classify(RuntimeError(driver_output))
            if refusal is not None:
                raise refusal from None

    def _streaming_result(self, submission: SparkSubmission) -> dict[str, Any]:
        checkpoint = self._checkpoint_hook()
        lease = checkpoint.get_lease()
        status = _status(checkpoint)
        return {"mode": "long_running", "reattached": self._reattached, "deployment": submission.deployment,
                "submission_id": submission.submission_id, "app_id": lease.app_id if lease else None,
                "host": lease.host if lease else None, "pid": lease.pid if lease else None,
                "checkpoint": status.checkpoint, "query_id": status.query_id,
                "latest_committed_batch": status.latest_committed_batch,
                "driver_log": submission.driver_log}  # fmt: skip

    def _bounded_result(self, committed_before: int) -> dict[str, Any]:
        checkpoint = self._checkpoint_hook()
        after = _status(checkpoint)
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

        A run on a Spark Connect server is stopped within one poll.

        A submitted driver is first asked to stop through the same stop marker as
        :class:`StopStreamingQueryOperator`, and killed through its cluster manager
        if it is still running 30 s later; a bounded run in this process's
        spark-submit is killed through the Spark provider's hook.
        """
        if self._connect is not None:
            self._connect.cancel()
        elif self._submission is not None and self._run is not None:
            self._hook.stop_driver(self._submission, self._checkpoint_hook(), grace_seconds=ON_KILL_GRACE_SECONDS)
        elif self._hook is not None:
            self._hook.on_kill()


@dataclass(frozen=True)
class _Run:
    """What one execution of the submit operator works on, once templates are rendered."""

    job: SparkJob | None  # None for a run on a Spark Connect server
    checkpoint: str
    long_running: bool
    owner: str
    kafka: Any = None  # ResolvedKafkaSpec: which kafka connections the spec uses, to name a refusal
    control_key: Any = field(default=None, repr=False)  # ControlKey: signs _submission, reaches the runner's spec


def _lease_consistency(task_id: str, value: str | None, application: str | None) -> str | None:
    """The ``lease_consistency`` parameter, checked when the DAG is parsed."""
    from airflow_spark_streaming.runner.protocol import LEASE_CONSISTENCY

    if value is None:
        return None
    if value not in LEASE_CONSISTENCY:
        raise InvalidStreamSpecError(
            f"{task_id}: lease_consistency must be one of {', '.join(map(repr, LEASE_CONSISTENCY))}, not {value!r}."
        )
    if application is not None:
        raise InvalidStreamSpecError(
            f"{task_id}: lease_consistency is for the stream runner's lease (spec); an application takes no lease."
        )
    return value


def _raise_unsafe_lease_store(task_id: str, driver_output: str) -> None:
    """The runner refused a store that cannot create the lease atomically: raise its named error with the fix."""
    from airflow_spark_streaming.exceptions import UnsafeLeaseStoreError
    from airflow_spark_streaming.runner.protocol import UNSAFE_LEASE_STORE_MARKER

    at = driver_output.rfind(UNSAFE_LEASE_STORE_MARKER)
    if at >= 0:
        raise UnsafeLeaseStoreError(f"{task_id}: {driver_output[at:].splitlines()[0][:1500]}") from None


def _with_control_key(spec: dict[str, Any], key) -> dict[str, Any]:
    """The spec the runner gets: the control key from its connection, never one written in the DAG."""
    from airflow_spark_streaming.runner.control_auth import SPEC_KEY

    spec = {k: v for k, v in spec.items() if k != SPEC_KEY}
    return {**spec, SPEC_KEY: key.secret.decode()} if key is not None else spec


def _owner(context: Context, task_id: str) -> str:
    """Who submitted: the task (across its retries), so another DAG's task never reattaches."""
    ti = context.get("ti") if context else None
    if ti is None:
        return task_id
    return f"{ti.dag_id}.{ti.task_id}[{getattr(ti, 'map_index', -1)}]"


def _templated(value: Any) -> bool:
    return "{{" in json.dumps(value, default=str)


def _status(control: RunnerControlHook):
    from airflow_spark_streaming.hooks.checkpoint import CheckpointHook

    return control.sibling(CheckpointHook).get_status(include_state=False)


def _kafka_bootstrap_servers(kafka_config_id: str) -> str | None:
    """The brokers of a ``kafka`` connection, for OpenLineage's ``kafka://host:port`` namespace."""
    from airflow_spark_streaming.kafka.connection import get_spark_kafka_options

    return get_spark_kafka_options(kafka_config_id).for_source().get("kafka.bootstrap.servers")
