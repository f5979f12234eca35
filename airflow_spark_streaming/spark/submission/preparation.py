"""The one spark-submit preparation, shared by the stream operator's driver and the Delta engine's Spark job.

From a task's parameters it works out what spark-submit gets: the storage
connection's Spark settings, the JVM packages and jars, the merged Spark conf,
and which of its settings are credentials (``SparkJob.secret_conf``, written to
the 0600 properties file when the run is prepared; every other setting joins them
there when spark-submit's command is built, so none is on the command line). Spark's
own redaction settings are extended to every credential name the provider knows
(:func:`~airflow_spark_streaming.utils.redaction.spark_redaction_conf`), so its UI,
event log and ``--verbose`` output hide them too. The connection's backend reviews
the run before anything is resolved or submitted.

The storage settings and the JVM resolver are imported on use, to keep this module cheap to import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_spark_streaming.spark.submission.backends import backend_for
from airflow_spark_streaming.spark.submission.models import SparkJob, SubmissionRequest
from airflow_spark_streaming.spark.submission.spark_compat import SparkSubmitAdapter
from airflow_spark_streaming.utils.redaction import is_secret_key, secret_conf, spark_redaction_conf


@dataclass(frozen=True)
class PreparedRun:
    """What to spark-submit, and through which connection: ``StreamingSubmitHook.for_run`` takes it.

    ``conf`` holds no credential: those are ``job.secret_conf``, for the 0600
    properties file. ``deployment`` names the backend that reviewed the run,
    ``None`` when none did.
    """

    spark_conn_id: str
    deploy_mode: str | None
    deployment: str | None
    name: str  # the Spark application name
    job: SparkJob  # the application, its arguments, the runner's spec and the secret settings
    conf: dict[str, str] = field(default_factory=dict)
    packages: tuple[str, ...] = ()  # for --packages (Spark's Ivy)
    jars: tuple[str, ...] = ()
    submit_kwargs: dict[str, Any] = field(default_factory=dict)  # more SparkSubmitHook arguments

    @property
    def secret_conf(self) -> Mapping[str, str]:
        return self.job.secret_conf


def prepare_submission(
    *,
    who: str,
    spark_conn_id: str,
    application: str,
    name: str,
    deploy_mode: str | None = None,
    application_args: Sequence[str] = (),
    spec: Mapping[str, Any] | None = None,
    label: str = "job",
    storage_conn_id: str | None = None,
    paths: Iterable[str | None] = (),
    conf: Mapping[str, Any] | None = None,
    conf_defaults: Mapping[str, str] | None = None,
    kafka: bool = False,
    extra_packages: Sequence[str] = (),
    extra_jars: Sequence[str] = (),
    jvm_resolver: str | None = None,
    submit_kwargs: Mapping[str, Any] | None = None,
    backend_review: bool = True,
) -> PreparedRun:
    """Prepare one spark-submit of ``application`` (Delta Lake always loaded).

    :param who: the task, named in errors.
    :param spec: the stream runner's spec; it reaches the driver as a private file, never as an argument.
    :param label: names a detached driver's private folder.
    :param paths: the storage locations the job touches: on S3 they bring S3A and ``storage_conn_id``'s settings.
    :param conf: the task's own Spark settings; they win over the storage and JVM settings.
    :param conf_defaults: settings that apply where nothing else sets them.
    :param kafka: load Spark's Kafka connector.
    :param submit_kwargs: more ``SparkSubmitHook`` arguments, passed through.
    :param backend_review: let the backend the connection's master and deploy mode call for check and adjust the
        run. ``False`` for a spark-submit that runs here until the job ends (the Delta engine's), which no
        backend takes part in.
    """
    from airflow_spark_streaming.spark.jvm import resolve_jvm_dependencies
    from airflow_spark_streaming.storage.access import spark_storage

    backend = None
    if backend_review:
        spark = SparkSubmitAdapter(spark_conn_id, deploy_mode=deploy_mode)
        backend = backend_for(spark)(spark)
    own_conf = {k: str(v) for k, v in (conf or {}).items()}
    storage = spark_storage(storage_conn_id, paths)
    request = SubmissionRequest(
        who, secret_keys=(*storage.secret_conf, *(k for k in own_conf if is_secret_key(k))), jvm_resolver=jvm_resolver
    )
    if backend is not None:
        request = backend.review(request)  # before anything is resolved, staged or submitted
    jvm = resolve_jvm_dependencies(
        delta=True, kafka=kafka, s3=storage.s3, extra_packages=extra_packages, extra_jars=extra_jars,
        resolver=request.jvm_resolver, user_conf=own_conf,
    )  # fmt: skip
    merged = {**jvm.conf, **storage.conf, **own_conf}
    for key, value in (conf_defaults or {}).items():
        merged.setdefault(key, value)
    merged.update(spark_redaction_conf(merged))  # what the task set is extended, never replaced
    secret_settings = {**storage.secret_conf, **secret_conf(merged)}
    return PreparedRun(
        spark_conn_id=spark_conn_id,
        deploy_mode=deploy_mode,
        deployment=backend.deployment if backend is not None else None,
        name=name,
        job=SparkJob(application, list(application_args), spec=spec, secret_conf=secret_settings, label=label),
        conf={k: v for k, v in merged.items() if k not in secret_settings},
        packages=jvm.packages,
        jars=jvm.jars,
        submit_kwargs=dict(submit_kwargs or {}),
    )
