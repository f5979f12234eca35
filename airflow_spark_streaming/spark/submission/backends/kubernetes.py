"""Kubernetes in cluster deploy mode: the driver pod's phase is its state; deleting the pod kills it."""

from __future__ import annotations

from airflow_spark_streaming.exceptions import ClusterManagerError
from airflow_spark_streaming.spark.submission.backends.base import ClusterBackend
from airflow_spark_streaming.spark.submission.models import DriverState, SparkSubmission
from airflow_spark_streaming.spark.submission.spark_compat import SparkSubmitAdapter


class KubernetesBackend(ClusterBackend):
    """Kubernetes: the driver pod's phase is its state; deleting the pod kills it."""

    deployment = "kubernetes"
    wait_for_app_conf = "spark.kubernetes.submission.waitAppCompletion"

    @classmethod
    def serves(cls, spark: SparkSubmitAdapter) -> bool:
        return spark.is_kubernetes

    def _before_submit(self, application: str, launcher_jar: str | None) -> str:
        self.spark.track_driver_via_k8s_api()  # spark-submit returns before the driver has an exit code
        return application

    def _submitted_id(self) -> str | None:
        pod = self.spark.kubernetes_driver_pod
        return f"{self.spark.namespace}:{pod}" if pod else None

    def get_state(self, submission: SparkSubmission) -> DriverState:
        kube_client = self.spark.kube_client()
        if kube_client is None:
            raise ClusterManagerError("Install apache-airflow-providers-cncf-kubernetes to track Kubernetes drivers.")
        namespace, pod = submission.submission_id.split(":", 1)
        try:
            found = kube_client.get_kube_client().read_namespaced_pod(pod, namespace)
        except kube_client.ApiException as err:
            if err.status == 404:
                return DriverState.NOT_FOUND
            raise ClusterManagerError(
                f"Kubernetes could not report driver pod {submission.submission_id}: {err}"
            ) from err
        return DriverState.parse(found.status.phase or "Pending")

    def kill(self, submission: SparkSubmission) -> None:
        namespace, pod = submission.submission_id.split(":", 1)
        self.spark.delete_driver_pod(namespace, pod)
