"""Spark Declarative Pipelines on storage: read a pipeline spec, list the flows under its storage root, and resolve
a flow's name to the checkpoint Spark uses for it (the one place sensors, triggers and operators resolve it).

Reads go through :class:`~airflow_spark_streaming.hooks.checkpoint_storage.CheckpointStorageHook`'s bounded
primitives; the walk is bounded in depth (the five levels Spark writes), in entries per folder and in flows.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from airflow.sdk import BaseHook

from airflow_spark_streaming.exceptions import PipelineSpecError, PipelineStorageTooLargeError
from airflow_spark_streaming.pipelines.flows import (
    FlowName,
    FlowTarget,
    SdpFlow,
    checkpoint_versions,
    checkpoints_root,
    expected_flow,
    flow_checkpoint,
    is_flow_part,
    match_flow,
)
from airflow_spark_streaming.pipelines.spec import MAX_SPEC_BYTES, PipelineSpec, parse_pipeline_spec

#: The most entries one folder under ``_checkpoints`` may list before the walk stops with an error.
MAX_ENTRIES_PER_FOLDER = 1000
#: The most flows one listing returns before it stops with an error.
MAX_FLOWS = 1000


@dataclass(frozen=True)
class ResolvedFlow:
    """A pipeline flow resolved to its checkpoint.

    :param storage: the pipeline's storage root.
    :param flow: the flow, with the checkpoint Spark uses for it now.
    :param found: whether the storage holds it (``False``: it has not run yet, and ``flow.checkpoint`` is where
        Spark will write its first checkpoint).
    """

    storage: str
    flow: SdpFlow
    found: bool

    @property
    def checkpoint(self) -> str:
        return self.flow.checkpoint

    def to_dict(self) -> dict[str, Any]:
        return {"storage": self.storage, "flow": self.flow.to_dict(), "found": self.found}


class PipelineHook(BaseHook):
    """Read an SDP pipeline's spec and storage.

    :param storage_conn_id: the Airflow connection of the storage (and of the spec, when it is on object
        storage); not needed for local paths.
    """

    conn_name_attr = "storage_conn_id"
    default_conn_name = None

    def __init__(self, storage_conn_id: str | None = None) -> None:
        super().__init__()
        self.storage_conn_id = storage_conn_id

    def _storage(self, location: str):
        from airflow_spark_streaming.hooks.checkpoint_storage import CheckpointStorageHook

        return CheckpointStorageHook(location, self.storage_conn_id)

    def read_spec(self, spec: str) -> PipelineSpec:
        """The pipeline spec at ``spec`` (a path or URI of ``spark-pipeline.yml``), bounded and validated."""
        folder, name = posixpath.split(spec.rstrip("/"))
        if not folder or not name:
            raise PipelineSpecError(f"pipeline_spec {spec[:120]!r} is not the path of a spark-pipeline.yml file.")
        try:
            data = self._storage(folder).read_bytes(name, limit=MAX_SPEC_BYTES + 1)
        except FileNotFoundError:
            raise PipelineSpecError(
                f"The pipeline spec {spec} does not exist here; give the path of the pipeline's spark-pipeline.yml "
                "as this worker (or triggerer) sees it, or pass pipeline_storage instead."
            ) from None
        except IsADirectoryError:
            raise PipelineSpecError(
                f"The pipeline spec {spec} is a folder; give the spark-pipeline.yml in it."
            ) from None
        return parse_pipeline_spec(data, source=spec)

    def list_flows(
        self, storage: str, *, catalog: str | None = None, database: str | None = None, max_flows: int = MAX_FLOWS
    ) -> list[SdpFlow]:
        """The flows with a checkpoint folder under ``storage`` (``<storage>/_checkpoints/<catalog>/<database>/
        <table>/<flow>``), optionally only those of one catalog and database.

        Bounded: five levels, at most :data:`MAX_ENTRIES_PER_FOLDER` entries a folder and ``max_flows`` flows,
        else :class:`PipelineStorageTooLargeError`. Names that are not plain ASCII names are skipped.
        """
        root = self._storage(checkpoints_root(storage))
        flows: list[SdpFlow] = []

        def listed(*parts: str) -> list[str]:
            try:
                return root.list_names(*parts)
            except NotADirectoryError:  # a file where Spark writes folders: nothing under it
                return []

        def names(*parts: str) -> list[str]:
            found = listed(*parts)
            if len(found) > MAX_ENTRIES_PER_FOLDER:
                raise PipelineStorageTooLargeError(
                    f"{root.describe(*parts)} lists {len(found)} entries, more than the {MAX_ENTRIES_PER_FOLDER} "
                    "read; it is not a pipeline's checkpoint folder, or give a checkpoint path instead."
                )
            return sorted(n for n in found if is_flow_part(n))

        def wanted(name: str, value: str | None) -> bool:
            return value is None or name.lower() == value.lower()

        for cat in (c for c in names() if wanted(c, catalog)):
            for db in (d for d in names(cat) if wanted(d, database)):
                for table in names(cat, db):
                    for flow in names(cat, db, table):
                        versions = checkpoint_versions(listed(cat, db, table, flow)[:MAX_ENTRIES_PER_FOLDER])
                        if len(flows) >= max_flows:
                            raise PipelineStorageTooLargeError(
                                f"{root.describe()} holds more than {max_flows} flows; give a qualified flow name "
                                "(catalog.database.name) or a checkpoint path."
                            )
                        version = versions[-1] if versions else 0
                        flows.append(SdpFlow(cat, db, table, flow, versions,
                                             flow_checkpoint(storage, cat, db, table, flow, version)))  # fmt: skip
        return flows

    def resolve(self, target: FlowTarget) -> ResolvedFlow:
        """The checkpoint of ``target``'s flow: read the spec (if given) for the storage and the default catalog and
        database, list the flows there, and match the name (see :func:`~airflow_spark_streaming.pipelines.flows.
        match_flow`). A flow the storage does not hold yet resolves to where Spark will create it (version 0)."""
        catalog = database = None
        storage = target.storage
        if target.spec:
            spec = self.read_spec(target.spec)
            storage, catalog, database = spec.storage, spec.catalog, spec.database
        assert storage is not None  # flow_target gives a spec or a storage
        wanted = FlowName.parse(target.describe(), target.flow)
        flows = self.list_flows(storage, catalog=wanted.catalog, database=wanted.database)
        where = checkpoints_root(storage)
        found = match_flow(flows, wanted, catalog=catalog, database=database, where=where)
        if found is not None:
            return ResolvedFlow(storage, found, True)
        return ResolvedFlow(storage, expected_flow(storage, wanted, catalog=catalog, database=database), False)


def resolve_flow_checkpoint(target: FlowTarget, storage_conn_id: str | None = None) -> str:
    """The checkpoint location of a pipeline flow: the one place sensors, triggers and operators resolve it."""
    return PipelineHook(storage_conn_id).resolve(target).checkpoint
