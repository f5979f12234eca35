"""OpenLineage datasets for streaming jobs and Delta maintenance, computed from what the operators know.

Pure functions: no I/O. Names follow the OpenLineage naming spec:

* Kafka: namespace ``kafka://<first bootstrap host:port>``, name the topic;
* local files: namespace ``file``, name the absolute path;
* object stores: namespace ``s3://<bucket>`` (``s3a``/``s3n`` too), ``gs://<bucket>``,
  ``abfss://<container>@<account>...``, ``hdfs://<host:port>``; name the path in it.

The ``*_lineage`` functions return the OpenLineage provider's ``OperatorLineage``;
the provider and its client are imported inside them, so nothing here costs
anything unless the ``openlineage`` extra is installed and lineage is asked for.
An operator wires them in two lines::

    def get_openlineage_facets_on_start(self):
        return streaming_job_lineage(spec=self.spec, checkpoint_sources=None)
"""

from __future__ import annotations

import functools
import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

DELTA_FACET = "sparkStreaming_deltaCommit"
_FACET_SCHEMA = "urn:airflow-spark-streaming:openlineage-facets:1"


@dataclass(frozen=True)
class DatasetName:
    """An OpenLineage dataset identity, independent of the client library."""

    namespace: str
    name: str
    kind: str  # "kafka", "file", "delta", or the file format
    facets: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def kafka_namespace(bootstrap_servers: str) -> str:
    first = bootstrap_servers.split(",")[0].strip()
    first = re.sub(r"^[A-Za-z_]+://", "", first)  # SASL_SSL://host:9092 → host:9092
    return f"kafka://{first}"


def path_dataset(path: str, kind: str) -> DatasetName:
    """The dataset of a file or table location (``/data/x``, ``file:///x``, ``s3a://b/k``, ``abfss://c@a/p``)."""
    if "://" not in path:
        return DatasetName("file", posixpath.normpath(path) if path.startswith("/") else posixpath.abspath(path), kind)
    parts = urlsplit(path)
    scheme = parts.scheme.lower()
    if scheme == "file":
        return DatasetName("file", posixpath.normpath(parts.path), kind)
    if scheme in ("s3", "s3a", "s3n"):
        scheme = "s3"
    name = parts.path.strip("/") or "/"
    return DatasetName(f"{scheme}://{parts.netloc}", name, kind)


def _kafka_topics_from_options(options: dict[str, str]) -> list[str]:
    if options.get("subscribe"):
        return sorted({t.strip() for t in options["subscribe"].split(",") if t.strip()})
    if options.get("assign"):
        try:
            return sorted(json.loads(options["assign"]))
        except (json.JSONDecodeError, TypeError):
            return []
    if options.get("subscribePattern"):
        return [options["subscribePattern"]]  # the pattern itself: the topics are only known at run time
    return []


def spec_datasets(spec: dict[str, Any]) -> tuple[list[DatasetName], list[DatasetName]]:
    """``(inputs, outputs)`` of a stream runner spec (see :mod:`airflow_spark_streaming.runner.spec`)."""
    inputs: list[DatasetName] = []
    outputs: list[DatasetName] = []
    source, sink = spec.get("source") or {}, spec.get("sink") or {}
    source_format, sink_format = source.get("format"), sink.get("format")
    source_options = {str(k): str(v) for k, v in (source.get("options") or {}).items()}
    sink_options = {str(k): str(v) for k, v in (sink.get("options") or {}).items()}
    if source_format == "kafka" and source_options.get("kafka.bootstrap.servers"):
        namespace = kafka_namespace(source_options["kafka.bootstrap.servers"])
        inputs += [DatasetName(namespace, topic, "kafka") for topic in _kafka_topics_from_options(source_options)]
    elif source.get("path") and source_format:
        inputs.append(path_dataset(source["path"], source_format))
    if sink_format == "kafka" and sink_options.get("kafka.bootstrap.servers") and sink_options.get("topic"):
        outputs.append(
            DatasetName(kafka_namespace(sink_options["kafka.bootstrap.servers"]), sink_options["topic"], "kafka")
        )
    elif sink.get("path") and sink_format:
        outputs.append(path_dataset(sink["path"], sink_format))
    return inputs, outputs


def checkpoint_source_datasets(
    committed_sources: list[Any], *, kafka_bootstrap_servers: str | None = None
) -> list[DatasetName]:
    """Inputs of a user application, from its checkpoint's committed sources.

    The checkpoint names the Kafka topics a batch read (its offsets are keyed by
    topic) but not the brokers, so Kafka inputs need ``kafka_bootstrap_servers``.
    File and Delta sources record no path in their offsets and are left out.
    ``committed_sources`` are ``SourceOffset`` objects or their dicts.
    """
    found: list[DatasetName] = []
    for source in committed_sources:
        data = source if isinstance(source, dict) else vars(source)
        offset = data.get("kafka") or (data.get("offset") if data.get("kind") == "kafka" else None)
        if data.get("kind") == "kafka" and isinstance(offset, dict) and kafka_bootstrap_servers:
            namespace = kafka_namespace(kafka_bootstrap_servers)
            found += [DatasetName(namespace, topic, "kafka") for topic in sorted(offset)]
    return list(dict.fromkeys(found))


# --- OpenLineage objects (the client is imported only here) -------------------------------------


@functools.cache
def _delta_facet_class():
    import attrs
    from openlineage.client.generated.base import DatasetFacet

    @attrs.define
    class DeltaCommitDatasetFacet(DatasetFacet):
        """The Delta commit a task made: table version, operation and the data files it added and removed."""

        version: int | None = attrs.field(default=None)
        operation: str | None = attrs.field(default=None)
        filesAdded: int | None = attrs.field(default=None)  # noqa: N815 (OpenLineage field names are camelCase)
        filesRemoved: int | None = attrs.field(default=None)  # noqa: N815

        @staticmethod
        def _get_schema() -> str:
            return f"{_FACET_SCHEMA}#{DELTA_FACET}"

    return DeltaCommitDatasetFacet


def _to_dataset(dataset: DatasetName, output: bool):
    from openlineage.client.event_v2 import InputDataset, OutputDataset

    cls = OutputDataset if output else InputDataset
    return cls(namespace=dataset.namespace, name=dataset.name, facets=dict(dataset.facets))


def _operator_lineage(inputs: list[DatasetName], outputs: list[DatasetName]):
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(
        inputs=[_to_dataset(d, output=False) for d in inputs],
        outputs=[_to_dataset(d, output=True) for d in outputs],
    )


def streaming_job_lineage(
    *,
    spec: dict[str, Any] | None = None,
    checkpoint_sources: list[Any] | None = None,
    kafka_bootstrap_servers: str | None = None,
    sink_path: str | None = None,
    sink_format: str = "delta",
):
    """``OperatorLineage`` of a ``SparkStreamingSubmitOperator``: from its ``spec`` when it runs the
    declarative runner, else from the checkpoint's ``committed_sources`` (plus ``sink_path`` when known)."""
    if spec:
        inputs, outputs = spec_datasets(spec)
    else:
        inputs = checkpoint_source_datasets(checkpoint_sources or [], kafka_bootstrap_servers=kafka_bootstrap_servers)
        outputs = [path_dataset(sink_path, sink_format)] if sink_path else []
    return _operator_lineage(inputs, outputs)


def spec_with_kafka_servers(spec: dict[str, Any], bootstrap_servers_of) -> dict[str, Any]:
    """``spec`` with ``kafka.bootstrap.servers`` filled in for Kafka sections that name a ``kafka_config_id``.

    ``bootstrap_servers_of(conn_id)`` reads them from the connection: the spec then
    names only the connection, and OpenLineage still needs the brokers for its namespace.
    """
    filled = json.loads(json.dumps(spec))
    for name in ("source", "sink"):
        section = filled.get(name) or {}
        options = section.setdefault("options", {})
        if (
            section.get("format") == "kafka"
            and section.get("kafka_config_id")
            and not options.get("kafka.bootstrap.servers")
        ):
            servers = bootstrap_servers_of(section["kafka_config_id"])
            if servers:
                options["kafka.bootstrap.servers"] = servers
    return filled


def file_sink_conversion_lineage(source_uri: str, target_uri: str | None):
    """``OperatorLineage`` of a file-sink conversion: Spark's Parquet output in, the Delta table out
    (the same location when converted in place)."""
    return _operator_lineage([path_dataset(source_uri, "parquet")], [path_dataset(target_uri or source_uri, "delta")])


def delta_table_lineage(
    table_uri: str,
    *,
    version: int | None = None,
    operation: str | None = None,
    files_added: int | None = None,
    files_removed: int | None = None,
):
    """``OperatorLineage`` of a Delta maintenance task: the table is both its input and its output.

    The output carries the ``version`` facet (the version written) and the
    ``sparkStreaming_deltaCommit`` facet (operation, files added and removed).
    Call with only ``table_uri`` on start, with the commit's figures on complete.
    """
    from openlineage.client.facet_v2 import dataset_version_dataset

    table = path_dataset(table_uri, "delta")
    facets: dict[str, Any] = {}
    if version is not None:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=str(version))
    if operation is not None or files_added is not None or files_removed is not None:
        facets[DELTA_FACET] = _delta_facet_class()(
            version=version, operation=operation, filesAdded=files_added, filesRemoved=files_removed
        )
    output = DatasetName(table.namespace, table.name, "delta", facets)
    return _operator_lineage([table], [output])


def delta_result_lineage(table_uri: str, result: dict[str, Any] | None, operation: str):
    """:func:`delta_table_lineage` from a Delta operator's returned result (OPTIMIZE's
    ``version_after``/``num_files_added``/``num_files_removed``, VACUUM's ``files_deleted``)."""
    result = result or {}
    return delta_table_lineage(
        table_uri,
        version=result.get("version_after", result.get("version")),
        operation=operation,
        files_added=result.get("num_files_added", 0 if operation == "VACUUM" else None),
        files_removed=result.get("num_files_removed", result.get("files_deleted")),
    )
