"""Delta table maintenance: OPTIMIZE (bin-packing, Z-ORDER) and VACUUM, with a Spark or a native engine."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_spark_streaming.exceptions import (
    DeltaMaintenanceError,
    EngineUnsupportedError,
    InvalidParameterError,
    UnprotectedConcurrentWriteError,
    UnsafeRetentionError,
    VacuumOutsideTableError,
    ZOrderColumnError,
)
from airflow_spark_streaming.storage.locations import (  # noqa: F401 - files_outside_root was defined here first
    files_outside_root,
    has_spark_file_sink_log,
    is_local_uri,
    local_path,
)
from airflow_spark_streaming.utils.redaction import mask_mapping_secrets, mask_secrets

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_spark_streaming.hooks.delta import DeltaTableHook, DeltaTableStats

ENGINES = ("auto", "native", "spark")
#: ``auto`` picks the native engine up to this table size.
DEFAULT_NATIVE_MAX_BYTES = 20 * 1024**3
#: How long OPTIMIZE/VACUUM waits for a live stream runner to run a handed-off request.
DEFAULT_HANDOFF_TIMEOUT = timedelta(minutes=30)
#: What a VACUUM with readers adds to its result, beside ``readers``.
READER_RESULT_KEYS = ("held_back_by", "held_back_seconds", "oldest_reader", "oldest_reader_seconds",
                      "reader_seconds", "log_retention_seconds", "log_retention_warning")  # fmt: skip


def _known_writer(task, stream_checkpoint, no_concurrent_writers, what: str, dry_run: bool = False) -> bool:
    """On S3 the task must know its table's writer (``stream_checkpoint``) or state there is none; checked at parse
    time when ``table_uri`` is literal (a templated one is checked by ``plan_maintenance`` once rendered)."""
    from airflow_spark_streaming.delta.concurrency import unknown_writer_refusal
    from airflow_spark_streaming.utils import params

    params.strict_bool(task.task_id, "no_concurrent_writers", no_concurrent_writers)
    if no_concurrent_writers and stream_checkpoint:
        raise InvalidParameterError(
            f"{task.task_id}: stream_checkpoint names the stream that writes the table, and no_concurrent_writers=True "
            "says nothing else writes it; give one of them."
        )
    uri = task.table_uri
    if not dry_run and isinstance(uri, str) and not params.is_template(uri) and not stream_checkpoint:
        if not no_concurrent_writers and (refusal := unknown_writer_refusal(task.task_id, uri, what)):
            raise UnprotectedConcurrentWriteError(refusal)
    return no_concurrent_writers


class _DeltaMaintenanceOperator(BaseOperator):
    """Shared parts: the hook, engine selection, and the spark-submit of the maintenance job."""

    template_fields: Sequence[str] = ("table_uri",)
    #: ``(parameter, is a checkpoint, optional)`` of each location taken: checked when parsed, or once rendered.
    location_params: ClassVar[tuple[tuple[str, bool, bool], ...]] = (("table_uri", False, False),)

    def __init__(
        self,
        *,
        table_uri: str | None = None,
        engine: str = "auto",
        spark_conn_id: str = "spark_default",
        native_max_bytes: int = DEFAULT_NATIVE_MAX_BYTES,
        storage_options: dict[str, str] | None = None,
        spark_conf: dict[str, str] | None = None,
        extra_packages: Sequence[str] = (),
        extra_jars: Sequence[str] = (),
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        mask_mapping_secrets(storage_options)  # before any check can print a secret into the DAG's import error
        mask_mapping_secrets(spark_conf)
        super().__init__(**kwargs)
        self.storage_conn_id = storage_conn_id
        if engine not in ENGINES:
            raise DeltaMaintenanceError(f"{self.task_id}: engine {engine!r} is not one of {ENGINES}.")
        from airflow_spark_streaming.utils import params

        # None: a pipeline flow's table, located through the Spark Connect server when the task runs.
        self.table_uri = (
            None if table_uri is None else params.unless_template(params.location, self.task_id, "table_uri", table_uri)
        )
        self.engine = engine
        self.spark_conn_id = spark_conn_id
        self.native_max_bytes = params.positive_integer(self.task_id, "native_max_bytes", native_max_bytes)
        self.storage_options = params.mapping(self.task_id, "storage_options", storage_options) or storage_options
        self.spark_conf = params.mapping(self.task_id, "spark_conf", spark_conf)
        self.extra_packages = params.maven_coordinates(self.task_id, "extra_packages", extra_packages)
        self.extra_jars = params.string_list(self.task_id, "extra_jars", extra_jars)
        mask_secrets(self.spark_conf, self.storage_options)  # before anything logs them

    def _check_locations(self, *, rendered: bool) -> None:
        """Every location parameter is an absolute path or URI; templated ones are checked once ``rendered``."""
        from airflow_spark_streaming.utils import params

        for name, checkpoint, optional in self.location_params:
            value = getattr(self, name)
            if rendered or not params.is_template(value):
                params.location(self.task_id, name, value, checkpoint=checkpoint, optional=optional)

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Templated locations are checked once rendered, as literal ones are when the DAG is parsed."""
        super().render_template_fields(context, jinja_env)
        self._check_locations(rendered=True)
        if hasattr(self, "flow"):
            self._writer_target(rendered=True)

    # --- the table's writer: a stream checkpoint, or a Spark Declarative Pipeline's flow ---------------------

    def _set_writer_flow(self, pipeline_spec: Any, pipeline_storage: Any, flow: Any) -> None:
        self.pipeline_spec, self.pipeline_storage, self.flow = pipeline_spec, pipeline_storage, flow
        self._writer_target(rendered=False)

    def _writer_target(self, *, rendered: bool):
        """The pipeline flow writing the table (``None``: ``stream_checkpoint`` or no writer), checked: at most one
        of ``stream_checkpoint`` and a pipeline with its flow."""
        from airflow_spark_streaming.pipelines.flows import flow_target

        return flow_target(self.task_id, checkpoint=self.stream_checkpoint, pipeline_spec=self.pipeline_spec,
                           pipeline_storage=self.pipeline_storage, flow=self.flow, checkpoint_name="stream_checkpoint",
                           optional=True, rendered=rendered)  # fmt: skip

    def _names_writer(self) -> bool:
        """Whether the task names its table's writer (a checkpoint, or a pipeline's flow)."""
        return bool(self.stream_checkpoint or self.pipeline_spec or self.pipeline_storage)

    def _require_table(self) -> None:
        """Without ``table_uri`` the table is the pipeline flow's: refused when no pipeline flow is given."""
        if self.table_uri is None and not (self.pipeline_spec or self.pipeline_storage):
            raise InvalidParameterError(
                f"{self.task_id}: give table_uri (the table's location), or a Spark Declarative Pipeline's flow "
                "(pipeline_spec or pipeline_storage, and flow) with a spark_connect connection as spark_conn_id, "
                "whose catalog then locates the flow's table."
            )

    def _writer_flow(self):
        """The pipeline flow writing the table, resolved now (``None``: ``stream_checkpoint`` or no writer)."""
        target = self._writer_target(rendered=True)
        if target is None:
            return None
        from airflow_spark_streaming.hooks.pipelines import PipelineHook

        resolved = PipelineHook(self.storage_conn_id).resolve(target)
        self.log.info("The table's writer is %s, checkpoint %s", target.describe(), resolved.checkpoint)
        return resolved

    def _writer_checkpoint(self) -> str | None:
        """The writer's checkpoint: ``stream_checkpoint``, or the pipeline flow's, resolved now."""
        resolved = self._writer_flow()
        return self.stream_checkpoint if resolved is None else resolved.checkpoint

    def _locate_flow_table(self) -> None:
        """Without ``table_uri``: ask the Spark Connect server of ``spark_conn_id`` where the pipeline flow's
        destination table lives (``DESCRIBE DETAIL``), and use that location."""
        if self.table_uri is not None:
            return
        from airflow_spark_streaming.hooks.spark_connect import DeltaConnectHook, is_spark_connect_connection
        from airflow_spark_streaming.storage.locations import from_spark_location

        resolved = self._writer_flow()
        if resolved is None or not is_spark_connect_connection(self.spark_conn_id):
            raise InvalidParameterError(
                f"{self.task_id}: without table_uri the table is located through the Spark Connect server that runs "
                f"the pipeline, but spark_conn_id={self.spark_conn_id!r} is not a spark_connect connection; set "
                "spark_conn_id to it, or give table_uri."
            )
        table = DeltaConnectHook(self.spark_conn_id).describe_table(resolved.flow.qualified_table)
        self.table_uri = from_spark_location(table.location)
        self._catalog_table = table.to_dict()
        self.log.info("%s is the table of %s, at %s (from the Spark Connect server %s)", table.name,
                      resolved.flow.flow, self.table_uri, table.server)  # fmt: skip

    #: The operation OpenLineage reports (None: the subclass reports its own lineage).
    lineage_operation: str | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        self._locate_flow_table()
        result = self._maintain(context)
        if getattr(self, "_catalog_table", None):
            result = {**result, "catalog_table": self._catalog_table}
        self._lineage_result = result  # what get_openlineage_facets_on_complete reports
        return result

    def _maintain(self, context: Context) -> dict[str, Any]:
        raise NotImplementedError

    def get_openlineage_facets_on_start(self):
        """The table is this task's input and output (the OpenLineage provider calls this; it is optional).
        A pipeline flow's table is located when the task runs: known on complete only."""
        from airflow_spark_streaming.lineage.datasets import delta_result_lineage

        if self.table_uri is None:
            return None
        return delta_result_lineage(self.table_uri, None, self.lineage_operation)

    def get_openlineage_facets_on_complete(self, task_instance):
        """As on start, with the version written and the files added and removed."""
        from airflow_spark_streaming.lineage.datasets import delta_result_lineage

        if self.table_uri is None:
            return None
        return delta_result_lineage(self.table_uri, getattr(self, "_lineage_result", None), self.lineage_operation)

    def _hook(self) -> DeltaTableHook:
        from airflow_spark_streaming.hooks.delta import DeltaTableHook

        return DeltaTableHook(
            self.table_uri, storage_options=self.storage_options, storage_conn_id=self.storage_conn_id
        )

    def _choose_engine(self, stats: DeltaTableStats) -> str:
        from airflow_spark_streaming.hooks.delta import NATIVE_UNSUPPORTED_WRITER_FEATURES

        blocking = sorted(NATIVE_UNSUPPORTED_WRITER_FEATURES & set(stats.writer_features))
        if self.engine == "native" and blocking:
            raise EngineUnsupportedError(
                f"{self.table_uri} uses writer features {blocking}, which delta-rs (the native engine) cannot write; "
                "use engine='spark' (or 'auto')."
            )
        if self.engine != "auto":
            return self.engine
        if blocking or stats.total_bytes > self.native_max_bytes:
            return "spark"
        return "native"

    def _plan_handoff(self, action: str, hook: DeltaTableHook):
        """On S3: hand the commit to the live stream runner, refuse, or (``None``) run here; before any write."""
        from airflow_spark_streaming.hooks.maintenance_request import plan_maintenance

        return plan_maintenance(table_uri=self.table_uri, action=action, engine=self.engine,
                                stream_checkpoint=self._writer_checkpoint(), table_hook=hook, task_id=self.task_id,
                                no_concurrent_writers=self.no_concurrent_writers,
                                storage_conn_id=self.storage_conn_id,
                                control_conn_id=self.control_conn_id)  # fmt: skip

    def _hand_off(self, target, request: dict[str, Any]) -> dict[str, Any]:
        """Sign the request for the live runner (it expires with ``handoff_timeout``) and wait for its signed result."""
        from airflow_spark_streaming.hooks.maintenance_request import MaintenanceRequestHook

        control = MaintenanceRequestHook(target.checkpoint, getattr(self, "storage_conn_id", None),
                                         control_conn_id=getattr(self, "control_conn_id", None))  # fmt: skip
        request_id = control.submit({**request, "table": self.table_uri, "task": self.task_id}, app_id=target.app_id,
                                    expires_in=self.handoff_timeout.total_seconds() + 60)  # fmt: skip
        self.log.info("%s of %s handed to the live stream runner %s (request %s)", request["action"],
                      self.table_uri, target.app_id, request_id)  # fmt: skip
        return control.wait_for_result(request_id, timeout=self.handoff_timeout.total_seconds())

    def _run_spark_job(self, spec: dict[str, Any]) -> str:
        """The spark engine's job: SQL on a warm Spark Connect server when ``spark_conn_id`` is a ``spark_connect``
        connection, else spark-submit. Returns how it ran (``connect`` or ``spark-submit``)."""
        from airflow_spark_streaming.hooks.spark_connect import is_spark_connect_connection

        if is_spark_connect_connection(self.spark_conn_id):
            self._run_on_connect(spec)
            return "connect"
        self._submit_spark_job(spec)
        return "spark-submit"

    def _run_on_connect(self, spec: dict[str, Any]) -> None:
        """Run the maintenance job's SQL on the Connect server; it reaches storage with its own credentials."""
        from airflow_spark_streaming.exceptions import SparkConnectError
        from airflow_spark_streaming.hooks.spark_connect import DeltaConnectHook
        from airflow_spark_streaming.storage.locations import SPARK, uri_for

        if self.extra_packages or self.extra_jars:
            raise SparkConnectError(
                f"{self.task_id}: extra_packages/extra_jars cannot be loaded through the spark_connect connection "
                f"{self.spark_conn_id!r}; start the Connect server with them instead."
            )
        spec = {**spec, **{key: uri_for(spec[key], SPARK) for key in ("table", "target") if spec.get(key)}}
        ran = DeltaConnectHook(self.spark_conn_id).run(spec, conf=self.spark_conf)
        self.log.info("%s of %s ran on the Spark Connect server %s in %.1fs", spec["action"], spec["table"],
                      ran.server, ran.seconds)  # fmt: skip

    def _submit_spark_job(self, spec: dict[str, Any]) -> None:
        """spark-submit the maintenance job and wait; Spark settings holding secrets go in a private properties file."""
        from airflow_spark_streaming.hooks.submission import StreamingSubmitHook
        from airflow_spark_streaming.runner.jobs import job_path
        from airflow_spark_streaming.spark.submission.preparation import prepare_submission
        from airflow_spark_streaming.storage.locations import SPARK, uri_for

        for key in ("table", "target"):  # Spark reaches S3 through S3A
            if spec.get(key):
                spec[key] = uri_for(spec[key], SPARK)
        run = prepare_submission(
            who=self.task_id, spark_conn_id=self.spark_conn_id, application=job_path("delta_maintenance"),
            application_args=["--spec", json.dumps(spec)], name=f"{self.task_id}-{spec['action']}",
            storage_conn_id=self.storage_conn_id, paths=[spec.get("table"), spec.get("target")],
            conf=self.spark_conf, extra_packages=self.extra_packages, extra_jars=self.extra_jars,
            backend_review=False,  # spark-submit runs here until the job ends: no backend takes the driver
        )  # fmt: skip
        StreamingSubmitHook.for_run(run).run_to_completion(run.job)


class DeltaOptimizeOperator(_DeltaMaintenanceOperator):
    """Compact a Delta table's small files (bin-packing), or Z-ORDER it, and return the metrics.

    OPTIMIZE commits with ``dataChange=false``, so streaming readers skip it and
    an appending stream keeps running; both engines retry when a concurrent
    commit wins.

    :param table_uri: the table location. (templated) Optional with a pipeline flow (``pipeline_spec`` or
        ``pipeline_storage``, and ``flow``) and a ``spark_connect`` connection as ``spark_conn_id``: the server's
        catalog then locates the flow's destination table (``DESCRIBE DETAIL``) when the task runs, and the result
        carries it as ``catalog_table``.
    :param partition_filters: restrict to partitions, as delta-rs filters
        (``[("day", "=", "2026-01-01")]``); partition columns only. (templated)
    :param zorder_by: Z-ORDER by these columns instead of bin-packing.
    :param target_file_bytes: the target file size (delta-rs ``target_size``;
        Spark ``spark.databricks.delta.optimize.maxFileSize``).
    :param engine: ``native`` (delta-rs in the worker, no JVM), ``spark``
        (spark-submit through ``spark_conn_id``, scales with the cluster) or
        ``auto``: native when the table is at most ``native_max_bytes`` and
        delta-rs can write its protocol, else spark.
    :param max_attempts: tries when concurrent commits conflict.
    :param spark_conn_id: the connection for the spark engine: a ``spark`` connection (spark-submit per task) or
        a ``spark_connect`` connection (the same SQL on a warm Spark Connect server; see docs/spark-connect.md).
    :param native_max_bytes: the largest table ``auto`` hands to the native engine.
    :param storage_options: delta-rs object store options for remote tables (override the connection's).
    :param storage_conn_id: an ``aws`` connection for an ``s3://``/``s3a://`` table: delta-rs options for the
        native engine, ``spark.hadoop.fs.s3a.*`` settings (secrets in a 0600 file) and hadoop-aws for Spark.
    :param spark_conf: extra Spark settings for the spark engine.
    :param extra_packages: extra Maven packages for the spark engine.
    :param extra_jars: extra jars for the spark engine.
    :param stream_checkpoint: the checkpoint of the stream that writes this table. On S3 a live stream
        runner then runs the OPTIMIZE in its own driver (the only place a commit is safe beside it); a
        stream that is not running lets it run here. On S3 the task must know its table's writer: without
        ``stream_checkpoint`` or ``no_concurrent_writers=True`` it is refused
        (:class:`UnprotectedConcurrentWriteError`, at parse time when ``table_uri`` is literal). See "Running on S3".
    :param no_concurrent_writers: state that nothing else writes this S3 table while the task runs (no stream,
        no other Spark job), so it may commit here without ``stream_checkpoint``. A streaming commit from the
        last hour still refuses it. Off S3 it changes nothing: the store's create-if-absent guards commits.
    :param pipeline_spec: instead of ``stream_checkpoint``, when a Spark Declarative Pipeline writes the table:
        its ``spark-pipeline.yml`` (path or URI). (templated)
    :param pipeline_storage: instead of ``stream_checkpoint``, that pipeline's storage root. (templated)
    :param flow: with ``pipeline_spec`` or ``pipeline_storage``, the flow (or table) writing this table; its
        checkpoint is resolved when the task runs (docs/sdp-pipelines.md). An SDP flow holds no runner lease, so
        on S3 the maintenance runs here: schedule it between the pipeline's triggered runs. (templated)
    :param handoff_timeout: how long to wait for the stream runner's answer.
    :param control_conn_id: the connection holding the control key in its password (default
        ``spark_streaming_control_default``); the hand-off to a live stream runner needs it: requests are
        signed with it, and the runner's hand-off record and result are verified with it.
    """

    lineage_operation = "OPTIMIZE"
    template_fields: Sequence[str] = (
        "table_uri", "partition_filters", "stream_checkpoint", "pipeline_spec", "pipeline_storage", "flow",
    )  # fmt: skip
    location_params = (("table_uri", False, True), ("stream_checkpoint", True, True))

    def __init__(
        self,
        *,
        partition_filters: list[tuple[str, str, Any]] | None = None,
        zorder_by: Sequence[str] | None = None,
        target_file_bytes: int | None = None,
        max_attempts: int = 5,
        stream_checkpoint: str | None = None,
        pipeline_spec: str | None = None,
        pipeline_storage: str | None = None,
        flow: str | None = None,
        no_concurrent_writers: bool = False,
        handoff_timeout: timedelta = DEFAULT_HANDOFF_TIMEOUT,
        control_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        from airflow_spark_streaming.utils import params

        super().__init__(**kwargs)
        self.stream_checkpoint = stream_checkpoint
        self._set_writer_flow(pipeline_spec, pipeline_storage, flow)
        self.handoff_timeout = params.duration(self.task_id, "handoff_timeout", handoff_timeout)
        self._check_locations(rendered=False)
        self._require_table()
        self.no_concurrent_writers = _known_writer(self, self._names_writer(), no_concurrent_writers, "OPTIMIZE")
        self.control_conn_id = control_conn_id
        self.target_file_bytes = params.positive_integer(
            self.task_id, "target_file_bytes", target_file_bytes, optional=True
        )
        self.max_attempts = params.positive_integer(self.task_id, "max_attempts", max_attempts)
        self.zorder_by = params.string_list(self.task_id, "zorder_by", zorder_by, optional=True) or []
        if not params.is_template(partition_filters):
            params.partition_filters(self.task_id, "partition_filters", partition_filters)
        self.partition_filters = partition_filters

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """A templated ``partition_filters`` is checked at its first render, as a literal one is when parsed."""
        from airflow_spark_streaming.utils import params

        super().render_template_fields(context, jinja_env)
        params.partition_filters(self.task_id, "partition_filters", self.partition_filters)

    def _validate(self, stats: DeltaTableStats, schema_columns: list[str]) -> list[tuple[str, str, Any]] | None:
        unknown = [c for c in self.zorder_by if c not in schema_columns]
        if unknown:
            raise ZOrderColumnError(
                f"Z-ORDER columns {unknown} are not in {self.table_uri} (columns: {', '.join(schema_columns)})."
            )
        partition_zorder = [c for c in self.zorder_by if c in stats.partition_columns]
        if partition_zorder:
            raise ZOrderColumnError(
                f"Z-ORDER columns {partition_zorder} are partition columns of {self.table_uri}; Z-ORDER by data "
                "columns and restrict partitions with partition_filters."
            )
        from airflow_spark_streaming.hooks.delta import check_partition_filters

        filters = check_partition_filters(self.partition_filters)  # operators whitelisted for both engines
        for column, *_ in filters:
            if column not in stats.partition_columns:
                raise DeltaMaintenanceError(
                    f"partition_filters column {column!r} is not a partition column of {self.table_uri} "
                    f"(partition columns: {stats.partition_columns or 'none'})."
                )
        return filters or None

    def _maintain(self, context: Context) -> dict[str, Any]:
        from airflow_spark_streaming.hooks.delta import (
            partition_filters_sql,
            refuse_spark_file_sink_output,
            spark_optimize_metrics,
        )

        refuse_spark_file_sink_output(self.table_uri)
        hook = self._hook()
        before = hook.get_stats()
        filters = self._validate(before, [f.name for f in hook.get_table().schema().fields])
        engine = self._choose_engine(before)
        handoff = self._plan_handoff("optimize", hook)
        engine = "spark" if handoff is not None else engine
        transport = "stream-runner" if handoff is not None else None
        self.log.info("OPTIMIZE %s with the %s engine (%d files, %d bytes)", self.table_uri, engine,
                      before.num_files, before.total_bytes)  # fmt: skip
        if engine == "native":
            metrics = hook.optimize_native(
                partition_filters=filters,
                zorder_by=self.zorder_by,
                target_file_bytes=self.target_file_bytes,
                max_attempts=self.max_attempts,
            )
        else:
            spec = {"action": "optimize", "table": self.table_uri, "where": partition_filters_sql(filters),
                    "zorder_by": self.zorder_by, "max_attempts": self.max_attempts,
                    "table_files": before.num_files}  # fmt: skip
            if handoff is not None:
                self._hand_off(handoff, {**spec, "target_file_bytes": self.target_file_bytes})
            else:
                if self.target_file_bytes:
                    self.spark_conf.setdefault(
                        "spark.databricks.delta.optimize.maxFileSize", str(self.target_file_bytes)
                    )
                transport = self._run_spark_job(spec)
            record = hook.get_stats().last_optimize
            if record is None or record.version <= before.version:
                raise DeltaMaintenanceError(
                    f"The spark OPTIMIZE job of {self.table_uri} finished but committed nothing."
                )
            metrics = {**spark_optimize_metrics(record.metrics), "raw": record.metrics}
        after = hook.get_stats()
        result = {
            "engine": engine,
            "table_uri": self.table_uri,
            "version_before": before.version,
            "version_after": after.version,
            "files_before": before.num_files,
            "files_after": after.num_files,
            "zorder_by": self.zorder_by,
            **metrics,
        }
        if transport:
            result["spark_transport"] = transport
        self.log.info("OPTIMIZE %s: %d files → %d", self.table_uri, before.num_files, after.num_files)
        return json.loads(json.dumps(result, default=str))


class DeltaVacuumOperator(_DeltaMaintenanceOperator):
    """VACUUM a Delta table safely: dry-run first, never below the retention readers need.

    The retention defaults to the table's ``delta.deletedFileRetentionDuration``
    (one week unless set). A shorter retention, or one shorter than
    ``min_retention`` (for example the lag of the slowest downstream stream),
    is refused unless ``i_understand_this_can_break_readers=True``. The dry run
    lists what would be deleted; every path must lie inside the table root, or
    nothing is deleted.

    :param table_uri: the table location. (templated) Optional with a pipeline flow and a ``spark_connect``
        ``spark_conn_id``, as for :class:`DeltaOptimizeOperator`.
    :param retention: how long removed files are kept (a timedelta); default: the table's setting.
    :param min_retention: a floor the retention must not go below, such as the slowest reader's lag.
    :param mode: ``lite`` (files in the log's remove actions) or ``full`` (also orphan files; lists storage).
    :param dry_run: only report what would be deleted.
    :param i_understand_this_can_break_readers: allow a retention below the table's or ``min_retention``.
    :param engine: ``native`` (delta-rs), ``spark`` or ``auto`` (as for :class:`DeltaOptimizeOperator`).
    :param stream_checkpoint: as for :class:`DeltaOptimizeOperator`; a dry run never needs it.
    :param pipeline_spec: as for :class:`DeltaOptimizeOperator`. (templated)
    :param pipeline_storage: as for :class:`DeltaOptimizeOperator`. (templated)
    :param flow: as for :class:`DeltaOptimizeOperator`. (templated)
    :param no_concurrent_writers: as for :class:`DeltaOptimizeOperator`; a dry run never needs it.
    :param handoff_timeout: as for :class:`DeltaOptimizeOperator`.
    :param control_conn_id: as for :class:`DeltaOptimizeOperator`. The stream runner also refuses, by itself, a
        VACUUM below the table's retention unless the signed request carries this task's
        ``i_understand_this_can_break_readers``.
    :param readers: checkpoints of the streams that read this table (``readStream.format("delta")``). VACUUM
        then keeps every file removed after the commit of the version the oldest of them reads next, plus
        ``reader_margin``: the retention becomes the longer of the table's and that age. A checkpoint that
        cannot be read, or does not read this table, is an error. ``i_understand_this_can_break_readers``
        does not waive this; ``exclude_readers`` does, one reader at a time. (templated)
    :param reader_roots: folders to search for more reader checkpoints (a bounded walk); those whose Delta
        source reads this table (its ``reservoirId`` is the table id) count as ``readers``. (templated)
    :param exclude_readers: checkpoints to leave out, such as a stream being reset. (templated)
    :param reader_margin: kept beyond the oldest reader's next version (default one hour): covers removes a
        long OPTIMIZE stamped when it began, and clock skew.
    """

    lineage_operation = "VACUUM"
    template_fields: Sequence[str] = (
        "table_uri", "stream_checkpoint", "pipeline_spec", "pipeline_storage", "flow", "readers", "reader_roots",
        "exclude_readers",
    )  # fmt: skip
    location_params = (("table_uri", False, True), ("stream_checkpoint", True, True))

    def __init__(
        self,
        *,
        retention: timedelta | None = None,
        min_retention: timedelta | None = None,
        mode: str = "lite",
        dry_run: bool = False,
        i_understand_this_can_break_readers: bool = False,
        stream_checkpoint: str | None = None,
        pipeline_spec: str | None = None,
        pipeline_storage: str | None = None,
        flow: str | None = None,
        no_concurrent_writers: bool = False,
        handoff_timeout: timedelta = DEFAULT_HANDOFF_TIMEOUT,
        control_conn_id: str | None = None,
        readers: Sequence[str] | None = None,
        reader_roots: Sequence[str] | None = None,
        exclude_readers: Sequence[str] | None = None,
        reader_margin: timedelta = timedelta(hours=1),
        **kwargs: Any,
    ) -> None:
        from airflow_spark_streaming.utils import params

        super().__init__(**kwargs)
        self.stream_checkpoint = stream_checkpoint
        self._set_writer_flow(pipeline_spec, pipeline_storage, flow)
        self.handoff_timeout = params.duration(self.task_id, "handoff_timeout", handoff_timeout)
        self._check_locations(rendered=False)
        self._require_table()
        self.no_concurrent_writers = _known_writer(
            self, self._names_writer(), no_concurrent_writers, "VACUUM", dry_run=dry_run is True
        )
        self.control_conn_id = control_conn_id
        self.readers = params.absolute_locations(self.task_id, "readers", readers)
        self.reader_roots = params.absolute_locations(self.task_id, "reader_roots", reader_roots)
        self.exclude_readers = params.absolute_locations(self.task_id, "exclude_readers", exclude_readers)
        if not isinstance(reader_margin, timedelta) or reader_margin.total_seconds() < 0:
            raise InvalidParameterError(
                f"{self.task_id}: reader_margin={reader_margin!r} must be a datetime.timedelta of zero or more, "
                "e.g. timedelta(hours=1)."
            )
        self.reader_margin = reader_margin
        if mode not in ("lite", "full"):
            raise DeltaMaintenanceError(f"{self.task_id}: mode must be 'lite' or 'full', got {mode!r}.")
        params.strict_bool(self.task_id, "i_understand_this_can_break_readers", i_understand_this_can_break_readers)
        for name, value in (("retention", retention), ("min_retention", min_retention)):
            if value is not None and not isinstance(value, timedelta):
                raise InvalidParameterError(
                    f"{self.task_id}: {name}={value!r} is not a datetime.timedelta; write it with its unit, "
                    "e.g. timedelta(days=7) (a bare number would hide whether it is hours or seconds)."
                )
            # Zero is what Delta's retentionDurationCheck and delta-rs's enforce_retention_duration=False permit
            # when turned off explicitly; the override plays that part here. Negative is never meaningful.
            zero_allowed = name == "retention" and i_understand_this_can_break_readers
            if value is not None and (value.total_seconds() < 0 or (value.total_seconds() == 0 and not zero_allowed)):
                raise UnsafeRetentionError(
                    f"{self.task_id}: {name} must be positive, got {value}; a zero retention deletes files that "
                    "running readers and uncommitted writers still use. Set i_understand_this_can_break_readers=True "
                    "to allow a zero retention (never a negative one)."
                )
        self.retention = retention
        self.min_retention = min_retention
        self.mode = mode
        self.dry_run = params.strict_bool(self.task_id, "dry_run", dry_run)
        self.i_understand_this_can_break_readers = i_understand_this_can_break_readers

    def _retention_hours(self, hook: DeltaTableHook) -> int:
        table_seconds = hook.get_retention_seconds()
        seconds = self.retention.total_seconds() if self.retention is not None else table_seconds
        floors = [("the table's delta.deletedFileRetentionDuration", table_seconds)]
        if self.min_retention:
            floors.append(("min_retention", self.min_retention.total_seconds()))
        for name, floor in floors:
            if seconds < floor and not self.i_understand_this_can_break_readers:
                raise UnsafeRetentionError(
                    f"VACUUM of {self.table_uri} with retention {seconds / 3600:g}h is shorter than {name} "
                    f"({floor / 3600:g}h): readers and streams that lag behind would lose files. Use a longer "
                    "retention, or set i_understand_this_can_break_readers=True if you are sure."
                )
        hours = int(-(-seconds // 3600))  # whole hours, rounded up (never shorter than asked)
        return hours if self.i_understand_this_can_break_readers else max(hours, 1)

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Templated reader locations are checked once rendered, as literal ones are when parsed."""
        from airflow_spark_streaming.utils import params

        super().render_template_fields(context, jinja_env)
        for name in ("readers", "reader_roots", "exclude_readers"):
            setattr(self, name, params.absolute_locations(self.task_id, name, getattr(self, name)))

    def _reader_retention(self, hook: DeltaTableHook, hours: int) -> dict[str, Any] | None:
        """The readers' positions and the retention they need (``None`` without readers); logs who holds it."""
        if not (self.readers or self.reader_roots):
            return None
        from airflow_spark_streaming.conditions.reader_retention import plan_reader_retention
        from airflow_spark_streaming.hooks.delta_readers import DeltaReadersHook

        readers = DeltaReadersHook(hook, storage_conn_id=self.storage_conn_id).get_readers(
            self.readers, roots=self.reader_roots, exclude=self.exclude_readers
        )
        requested = self.retention.total_seconds() if self.retention is not None else hook.get_retention_seconds()
        plan = plan_reader_retention(
            requested_seconds=requested, requested_hours=hours, readers=readers,
            margin_seconds=self.reader_margin.total_seconds(), log_retention_seconds=hook.get_log_retention_seconds(),
        )  # fmt: skip
        for reader in readers:
            self.log.info("Reader %s: next version %s, %d versions and %.0fs behind", reader.name,
                          reader.next_version, reader.lag_versions, reader.lag_seconds or 0.0)  # fmt: skip
        if plan.held_back_by:
            self.log.warning("VACUUM of %s held back by reader %s: retention %dh instead of %dh (+%.1fh)",
                             self.table_uri, plan.held_back_by, plan.retention_hours, hours,
                             plan.held_back_seconds / 3600)  # fmt: skip
        if plan.log_retention_warning:
            self.log.warning("%s: %s", self.table_uri, plan.log_retention_warning)
        return {"readers": [r.to_dict() for r in readers], **plan.to_dict()}

    def _check_inside_root(self, files: list[str]) -> None:
        from airflow_spark_streaming.storage.locations import DELTA_RS, uri_for

        outside = files_outside_root(uri_for(self.table_uri, DELTA_RS), files)
        if outside:
            raise VacuumOutsideTableError(
                f"VACUUM of {self.table_uri} would delete {len(outside)} files outside the table root, such as "
                f"{outside[0]!r}; nothing was deleted. Check the table's log for absolute paths."
            )

    def _maintain(self, context: Context) -> dict[str, Any]:
        from airflow_spark_streaming.hooks.delta import refuse_spark_file_sink_output

        refuse_spark_file_sink_output(self.table_uri)
        hook = self._hook()
        stats = hook.get_stats()
        hours = self._retention_hours(hook)
        readers = self._reader_retention(hook, hours)
        if readers is not None:
            hours = readers["retention_hours"]  # never shorter than asked: the readers only lengthen it
        engine = self._choose_engine(stats)
        planned = hook.vacuum_native(retention_hours=hours, dry_run=True, full=self.mode == "full")
        self._check_inside_root(planned)
        self.log.info("VACUUM %s (%s, retain %dh): %d files would be deleted", self.table_uri, self.mode, hours,
                      len(planned))  # fmt: skip
        result = {"table_uri": self.table_uri, "engine": engine, "mode": self.mode, "retention_hours": hours,
                  "dry_run": self.dry_run, "files_to_delete": len(planned), "sample": sorted(planned)[:20],
                  "files_deleted": 0}  # fmt: skip
        if readers is not None:
            result["readers"] = readers["readers"]
            result.update({key: readers[key] for key in READER_RESULT_KEYS})
        if self.dry_run or not planned:
            return result
        handoff = self._plan_handoff("vacuum", hook)
        if engine == "native" and handoff is None:
            deleted = hook.vacuum_native(retention_hours=hours, dry_run=False, full=self.mode == "full")
            result["files_deleted"] = len(deleted)
            return result
        version_before = hook.get_table().version()
        if handoff is not None:
            result["engine"] = "spark"
            self._hand_off(handoff, {"action": "vacuum", "retain_hours": hours, "mode": self.mode, "dry_run": False,
                                     "retention_override": self.i_understand_this_can_break_readers})  # fmt: skip
        else:
            result["spark_transport"] = self._run_spark_job({
                "action": "vacuum", "table": self.table_uri, "retain_hours": hours, "mode": self.mode,
                "dry_run": False, "retention_override": self.i_understand_this_can_break_readers,
                "table_files": stats.num_files,
            })  # fmt: skip
        result["files_deleted"] = self._spark_files_deleted(hook, version_before, hours)
        return result

    def _spark_files_deleted(self, hook: DeltaTableHook, version_before: int, hours: int) -> int | None:
        """What Spark's VACUUM deleted: ``numDeletedFiles`` of the VACUUM END commit it logged (the job turns
        VACUUM logging on); ``None``, with a warning, when the table's history has no such commit."""
        from airflow_spark_streaming.hooks.delta import spark_vacuum_metrics

        logged = spark_vacuum_metrics(
            hook.maintenance_commits_after(version_before, ("VACUUM START", "VACUUM END")), hours
        )
        if logged is None or logged["files_deleted"] is None:
            self.log.warning("The history of %s has no VACUUM END commit after version %d, so what VACUUM deleted "
                             "is unknown (files_deleted: null); was VACUUM logging turned off on the cluster?",
                             self.table_uri, version_before)  # fmt: skip
            return None
        self.log.info("VACUUM %s: %d files deleted (VACUUM END, version %d)", self.table_uri,
                      logged["files_deleted"], logged["versions"][1])  # fmt: skip
        return logged["files_deleted"]


class ConvertFileSinkToDeltaOperator(_DeltaMaintenanceOperator):
    """The safe way out of small files in Spark's plain Parquet sink output (``_spark_metadata``).

    Such output cannot be compacted in place (see :class:`PlainParquetSinkError`).
    This operator runs a Spark job that reads the data through the sink's log,
    so files from failed batches are left out, and either

    - ``target_uri`` given: **copy-compacts** into a new Delta table there,
      ``files_per_partition`` files per partition; the source is not touched, so
      readers can be switched over when ready; or
    - no ``target_uri``: runs ``CONVERT TO DELTA`` in place, adding a Delta log
      over the files the sink's log lists and rewriting nothing. Stop the
      stream first; then compact with :class:`DeltaOptimizeOperator` and write
      the stream to a Delta sink.

    :param table_uri: the Parquet file-sink output folder. (templated)
    :param target_uri: where to copy-compact to; must not exist yet. (templated)
    :param partition_by: the output's partition columns (for ``PARTITIONED BY`` / the new table).
    :param files_per_partition: files per partition in the copy.
    """

    def get_openlineage_facets_on_start(self):
        """Spark's Parquet output in, the Delta table out."""
        from airflow_spark_streaming.lineage.datasets import file_sink_conversion_lineage

        return file_sink_conversion_lineage(self.table_uri, self.target_uri)

    def get_openlineage_facets_on_complete(self, task_instance):
        return self.get_openlineage_facets_on_start()

    template_fields: Sequence[str] = ("table_uri", "target_uri")
    location_params = (("table_uri", False, False), ("target_uri", False, True))

    def __init__(
        self,
        *,
        target_uri: str | None = None,
        partition_by: Sequence[str] = (),
        files_per_partition: int = 1,
        **kwargs: Any,
    ) -> None:
        from airflow_spark_streaming.utils import params

        kwargs.setdefault("engine", "spark")
        super().__init__(**kwargs)
        if self.engine != "spark":
            raise DeltaMaintenanceError(
                f"{self.task_id}: conversion needs Spark to read _spark_metadata; use engine='spark'."
            )
        self.target_uri = target_uri
        self._check_locations(rendered=False)
        self.partition_by = params.string_list(self.task_id, "partition_by", partition_by)
        # Not templated, so text ("2") is a mistake here, as is 1.5 (no rounding).
        self.files_per_partition = params.positive_integer(
            self.task_id, "files_per_partition", files_per_partition, text=False
        )

    def _maintain(self, context: Context) -> dict[str, Any]:
        from airflow_spark_streaming.hooks.delta import DeltaTableHook

        if is_local_uri(self.table_uri) and not has_spark_file_sink_log(self.table_uri):
            raise DeltaMaintenanceError(
                f"{self.table_uri} has no _spark_metadata: it is not Spark file-sink output; nothing was converted."
            )
        if self.target_uri and is_local_uri(self.target_uri) and local_path(self.target_uri).exists():
            raise DeltaMaintenanceError(f"{self.target_uri} already exists; copy-compaction needs a new location.")
        transport = self._run_spark_job({"action": "convert", "table": self.table_uri, "target": self.target_uri,
                                         "partition_by": self.partition_by,
                                         "files_per_partition": self.files_per_partition})  # fmt: skip
        stats = DeltaTableHook(
            self.target_uri or self.table_uri,
            storage_options=self.storage_options,
            storage_conn_id=self.storage_conn_id,
        ).get_stats()
        return {"source": self.table_uri, "table_uri": self.target_uri or self.table_uri,
                "mode": "copy" if self.target_uri else "in_place", "files": stats.num_files,
                "rows": stats.num_records, "version": stats.version, "spark_transport": transport}  # fmt: skip
