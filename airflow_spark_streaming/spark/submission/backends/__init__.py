"""One backend per cluster manager: how a driver that outlives its task is prepared, submitted, watched and killed.

A backend's ``deployment`` name is stored in each :class:`SparkSubmission`, so
a later task (a retry, a stop) finds the backend that owns the driver.
:func:`backend_for` picks the one a ``spark`` connection's master and deploy
mode call for. Its ``review`` applies the cluster manager's own rules to a run
before ``prepare_submission`` resolves anything (the standalone Master's, say).
To add a cluster manager, subclass :class:`ClusterBackend` in a module of its
own and list it in :data:`CLUSTER_BACKENDS`.
"""

from __future__ import annotations

from airflow_spark_streaming.exceptions import ClusterManagerError, SparkSubmissionError
from airflow_spark_streaming.spark.submission.backends.base import ClusterBackend, Prepared, SubmissionBackend
from airflow_spark_streaming.spark.submission.backends.kubernetes import KubernetesBackend
from airflow_spark_streaming.spark.submission.backends.local import LocalDetachedBackend
from airflow_spark_streaming.spark.submission.backends.standalone import StandaloneBackend, python_launcher_jar
from airflow_spark_streaming.spark.submission.backends.yarn import YarnBackend
from airflow_spark_streaming.spark.submission.spark_compat import SparkSubmitAdapter

#: Cluster-mode backends, asked in this order whether they serve the connection's master.
CLUSTER_BACKENDS: tuple[type[ClusterBackend], ...] = (KubernetesBackend, YarnBackend, StandaloneBackend)


def backend_for(spark: SparkSubmitAdapter) -> type[SubmissionBackend]:
    """The backend a connection's master and deploy mode call for."""
    if spark.deploy_mode != "cluster":
        return LocalDetachedBackend
    for backend in CLUSTER_BACKENDS:
        if backend.serves(spark):
            return backend
    raise SparkSubmissionError(
        f"Spark connection {spark.conn_id!r}: deploy mode 'cluster' is not supported on master {spark.master}; "
        "use a spark://, yarn or k8s:// master, or deploy mode 'client'."
    )


BACKENDS: dict[str, type[SubmissionBackend]] = {b.deployment: b for b in (LocalDetachedBackend, *CLUSTER_BACKENDS)}


def backend_named(deployment: str, submission_id: str) -> type[SubmissionBackend]:
    try:
        return BACKENDS[deployment]
    except KeyError:
        raise ClusterManagerError(f"Unknown deployment {deployment!r} in submission {submission_id}.") from None


__all__ = [
    "BACKENDS",
    "CLUSTER_BACKENDS",
    "ClusterBackend",
    "KubernetesBackend",
    "LocalDetachedBackend",
    "Prepared",
    "StandaloneBackend",
    "SubmissionBackend",
    "YarnBackend",
    "backend_for",
    "backend_named",
    "python_launcher_jar",
]
