"""Where a Spark Declarative Pipeline keeps each flow's streaming checkpoint, and which flow a name means.

Spark 4.2 (``FlowSystemMetadata`` in the ``spark-pipelines`` module) puts a streaming flow's checkpoint at::

    <storage>/_checkpoints/<catalog>/<database>/<table>/<flow>/<version>

``<catalog>/<database>/<table>`` is the flow's destination table (its name parts), ``<flow>`` the flow's own
name (a ``@dp.table`` flow is named after its table; an ``append_flow`` has its own), and ``<version>`` a number:
Spark uses the largest one and starts a new one (N + 1) when the flow is fully refreshed. Pure: the caller
lists the folders (``hooks/pipelines.py``) and these functions decide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from airflow_spark_streaming.exceptions import AmbiguousPipelineFlowError, InvalidPipelineFlowError

#: The folder under ``storage`` holding every flow's checkpoints.
CHECKPOINTS_DIR = "_checkpoints"
#: What an unqualified name means when the spec sets no default (Spark's session defaults).
DEFAULT_CATALOG = "spark_catalog"
DEFAULT_DATABASE = "default"
#: Longest name part (a catalog, database, table or flow name).
MAX_NAME_CHARS = 255
#: Longest flow name given to a sensor, an operator or a trigger.
MAX_FLOW_CHARS = 3 * MAX_NAME_CHARS + 2
#: A name part the provider reads from storage or puts in a path: ASCII letters, digits, ``_`` and ``-``.
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")
#: A checkpoint version folder: a non-negative integer as Spark writes it.
_VERSION = re.compile(r"^[0-9]{1,9}$")


def check_identifier(value: str) -> str | None:
    """Why ``value`` cannot be one name part of a path under ``_checkpoints``, or ``None`` when it can."""
    if not value:
        return "is empty"
    if len(value) > MAX_NAME_CHARS:
        return f"is longer than {MAX_NAME_CHARS} characters"
    if not _NAME.match(value):
        return "is not a plain name (ASCII letters, digits, '_' and '-'; no '/', '.', spaces or quotes)"
    return None


@dataclass(frozen=True)
class FlowName:
    """A flow or table name as a user gives it: ``name``, ``database.name`` or ``catalog.database.name``.

    :param name: the flow's name, or its destination table's.
    :param database: the database, when the name is qualified.
    :param catalog: the catalog, when the name is fully qualified.
    """

    name: str
    database: str | None = None
    catalog: str | None = None

    @classmethod
    def parse(cls, owner: str, value: Any) -> FlowName:
        """The name from ``flow=``, else :class:`InvalidPipelineFlowError` naming ``owner``."""
        if not isinstance(value, str) or not value.strip():
            kind = "an empty str" if isinstance(value, str) else f"a value of type {type(value).__name__}"
            raise InvalidPipelineFlowError(f"{owner}: flow must be a flow or table name, got {kind}.")
        if len(value) > MAX_FLOW_CHARS:
            raise InvalidPipelineFlowError(f"{owner}: flow is longer than {MAX_FLOW_CHARS} characters.")
        parts = value.split(".")
        if len(parts) > 3:
            raise InvalidPipelineFlowError(
                f"{owner}: flow {value[:120]!r} has more than three parts; write name, database.name or "
                "catalog.database.name."
            )
        for part in parts:
            problem = check_identifier(part)
            if problem:
                raise InvalidPipelineFlowError(f"{owner}: flow {value[:120]!r}: {part[:64]!r} {problem}.")
        parts = [None] * (3 - len(parts)) + parts
        return cls(name=parts[2], database=parts[1], catalog=parts[0])

    def __str__(self) -> str:
        return ".".join(p for p in (self.catalog, self.database, self.name) if p)


@dataclass(frozen=True)
class SdpFlow:
    """One flow found under a pipeline's storage.

    :param catalog: its destination table's catalog.
    :param database: its destination table's database.
    :param table: its destination table.
    :param flow: the flow's name.
    :param versions: the checkpoint versions found, ascending (a full refresh adds one).
    :param checkpoint: the checkpoint Spark uses now: the largest version's folder.
    """

    catalog: str
    database: str
    table: str
    flow: str
    versions: tuple[int, ...]
    checkpoint: str

    @property
    def qualified_table(self) -> str:
        return f"{self.catalog}.{self.database}.{self.table}"

    @property
    def version(self) -> int:
        """The checkpoint version Spark uses now (``0`` before the flow's first run)."""
        return self.versions[-1] if self.versions else 0

    def to_dict(self) -> dict[str, Any]:
        return {"catalog": self.catalog, "database": self.database, "table": self.table, "flow": self.flow,
                "versions": list(self.versions), "checkpoint": self.checkpoint}  # fmt: skip


def checkpoints_root(storage: str) -> str:
    """``<storage>/_checkpoints``, in the storage's own spelling (a path or a URI)."""
    return f"{storage.rstrip('/')}/{CHECKPOINTS_DIR}"


def flow_checkpoint(storage: str, catalog: str, database: str, table: str, flow: str, version: int) -> str:
    """The checkpoint location of one version of a flow: what Spark passes as ``checkpointLocation``."""
    for part in (catalog, database, table, flow):
        problem = check_identifier(part)
        if problem:
            raise InvalidPipelineFlowError(f"The name part {part[:64]!r} {problem}.")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise InvalidPipelineFlowError(f"A checkpoint version is a non-negative integer, got {version!r}.")
    return f"{checkpoints_root(storage)}/{catalog}/{database}/{table}/{flow}/{version}"


def checkpoint_versions(names: list[str]) -> tuple[int, ...]:
    """The version folders among a flow folder's entries, ascending; other names are ignored, as Spark does."""
    return tuple(sorted({int(n) for n in names if _VERSION.match(n)}))


def is_flow_part(name: str) -> bool:
    """Whether a folder name under ``_checkpoints`` is one the provider reads (others are skipped)."""
    return check_identifier(name) is None


def expected_flow(storage: str, wanted: FlowName, *, catalog: str | None, database: str | None) -> SdpFlow:
    """Where a flow that has not run yet will keep its checkpoint: a ``@dp.table`` flow (named after its table)
    in the name's catalog and database, else the spec's defaults, else Spark's (``spark_catalog.default``)."""
    cat = wanted.catalog or catalog or DEFAULT_CATALOG
    db = wanted.database or database or DEFAULT_DATABASE
    return SdpFlow(cat, db, wanted.name, wanted.name, (),
                   flow_checkpoint(storage, cat, db, wanted.name, wanted.name, 0))  # fmt: skip


def match_flow(
    flows: list[SdpFlow], wanted: FlowName, *, catalog: str | None = None, database: str | None = None,
    where: str = "the pipeline storage",
) -> SdpFlow | None:  # fmt: skip
    """The one flow ``wanted`` names among those found, or ``None`` when none matches.

    A flow's own name is matched first, then its destination table's (a table written by one flow); names
    compare case-insensitively, as Spark's session catalog does. A qualified name must match the
    catalog/database; among several matches those in the spec's default ``catalog``/``database`` win.
    Still more than one is :class:`AmbiguousPipelineFlowError`, listing them.

    :param flows: what the storage holds.
    :param wanted: the name given.
    :param catalog: the spec's default catalog, if any.
    :param database: the spec's default database, if any.
    :param where: the storage, as errors name it.
    """

    def qualified(flow: SdpFlow) -> bool:
        return (wanted.catalog is None or flow.catalog.lower() == wanted.catalog.lower()) and (
            wanted.database is None or flow.database.lower() == wanted.database.lower()
        )

    name = wanted.name.lower()
    candidates = [f for f in flows if qualified(f) and f.flow.lower() == name]
    if not candidates:
        candidates = [f for f in flows if qualified(f) and f.table.lower() == name]
    if len(candidates) > 1 and (catalog or database):
        preferred = [f for f in candidates if (catalog is None or f.catalog.lower() == catalog.lower())
                     and (database is None or f.database.lower() == database.lower())]  # fmt: skip
        candidates = preferred or candidates
    if len(candidates) > 1:
        listed = ", ".join(sorted(f"{f.qualified_table} (flow {f.flow})" for f in candidates)[:10])
        raise AmbiguousPipelineFlowError(
            f"flow {str(wanted)!r} matches {len(candidates)} flows in {where}: {listed}. Give the flow's own name, "
            "qualified as catalog.database.name when two databases hold it."
        )
    return candidates[0] if candidates else None


@dataclass(frozen=True)
class FlowTarget:
    """A flow of a pipeline, as a sensor, trigger or operator was given it: exactly one of ``spec`` (the path of
    ``spark-pipeline.yml``) and ``storage`` (its storage root), and the flow's name.

    :param flow: the flow or table name, as given (``[catalog.][database.]name``).
    :param spec: the pipeline spec's path or URI.
    :param storage: the pipeline's storage root.
    """

    flow: str
    spec: str | None = None
    storage: str | None = None

    def to_kwargs(self) -> dict[str, Any]:
        """The fields under the parameter names sensors, triggers and operators take."""
        return {"pipeline_spec": self.spec, "pipeline_storage": self.storage, "flow": self.flow}

    def describe(self) -> str:
        """The flow as messages name it."""
        return (
            f"flow {self.flow!r} of the pipeline {'spec ' + self.spec if self.spec else 'storage ' + str(self.storage)}"
        )


def flow_target(
    owner: str, *, checkpoint: Any, pipeline_spec: Any, pipeline_storage: Any, flow: Any,
    checkpoint_name: str = "checkpoint", optional: bool = False, rendered: bool = True,
) -> FlowTarget | None:  # fmt: skip
    """Check that a task was given exactly one of a checkpoint and a pipeline (``pipeline_spec`` or
    ``pipeline_storage``) with its ``flow``, and return the pipeline's flow (``None`` when a checkpoint was given).

    Refusals are :class:`InvalidPipelineFlowError` naming ``owner``. Locations are only checked to be absolute
    here; values still templated (``rendered=False`` and a Jinja string) are checked for presence only.

    :param checkpoint_name: the checkpoint parameter's name, as errors name it (``stream_checkpoint`` ...).
    :param optional: whether giving neither is allowed (an operator's optional writer checkpoint).
    :param rendered: whether templates have been rendered.
    """
    from airflow_spark_streaming.storage.locations import is_absolute_location
    from airflow_spark_streaming.utils.params import is_template

    given = {name: value for name, value in (("pipeline_spec", pipeline_spec), ("pipeline_storage", pipeline_storage))
             if value not in (None, "")}  # fmt: skip
    has_checkpoint = checkpoint not in (None, "")
    if len(given) > 1:
        raise InvalidPipelineFlowError(
            f"{owner}: give pipeline_spec (the spark-pipeline.yml) or pipeline_storage (its storage root), not both."
        )
    if has_checkpoint and (given or flow not in (None, "")):
        raise InvalidPipelineFlowError(
            f"{owner}: give {checkpoint_name} (a checkpoint path) or a pipeline with its flow "
            "(pipeline_spec or pipeline_storage, and flow), not both."
        )
    if has_checkpoint:
        return None
    if not given and flow in (None, ""):
        if optional:
            return None
        raise InvalidPipelineFlowError(
            f"{owner}: give {checkpoint_name} (a checkpoint path), or an SDP pipeline (pipeline_spec or "
            "pipeline_storage) with flow (the flow or table name)."
        )
    if not given:
        raise InvalidPipelineFlowError(
            f"{owner}: flow={str(flow)[:120]!r} names a flow of an SDP pipeline; give the pipeline too, as "
            "pipeline_spec (its spark-pipeline.yml) or pipeline_storage (its storage root)."
        )
    ((name, location),) = given.items()
    if flow in (None, ""):
        raise InvalidPipelineFlowError(
            f"{owner}: {name} needs flow, the flow or table name whose checkpoint to read (e.g. flow='orders')."
        )
    if rendered or not any(is_template(v) for v in (location, flow)):
        if not isinstance(location, str) or not is_absolute_location(location):
            raise InvalidPipelineFlowError(
                f"{owner}: {name} must be an absolute path or a URI with a scheme, got "
                f"{location[:120]!r}." if isinstance(location, str) else
                f"{owner}: {name} must be a path or URI string, got a {type(location).__name__}."
            )  # fmt: skip
        FlowName.parse(owner, flow)
    elif not isinstance(location, str) or not isinstance(flow, str):
        raise InvalidPipelineFlowError(f"{owner}: {name} and flow must be strings (or templates).")
    spec, storage = (location, None) if name == "pipeline_spec" else (None, location)
    return FlowTarget(flow=flow, spec=spec, storage=storage)
