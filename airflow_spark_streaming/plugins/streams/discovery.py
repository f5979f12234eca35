"""Which queries the deployed DAGs name: read from the serialized DAGs in Airflow's metadata database.

A query is named by the checkpoint of a :class:`SparkStreamingSubmitOperator` (``checkpoint`` or the spec's
``checkpoint_location``), of the checkpoint, lag and health sensors, of :class:`StopStreamingQueryOperator`,
and of a :class:`CheckpointCommitEventTrigger` watching an asset a DAG is scheduled on. A location the task
templates is resolved as the task resolved it in the DAG's latest run (its rendered template fields); before
any run it stays unresolved and the card shows the template. The Delta table a spec sinks into is kept for
its small-files statistics. Nothing else of a spec is kept: its options can hold secrets.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_PACKAGE = "airflow_spark_streaming"
#: Task classes naming a checkpoint, by the field that holds it.
CHECKPOINT_TASKS = {
    "SparkStreamingSubmitOperator": "checkpoint",
    "StopStreamingQueryOperator": "checkpoint",
    "StreamingProgressSensor": "checkpoint",
    "KafkaLagSensor": "checkpoint",
    "StreamHealthSensor": "checkpoint",
}
COMMIT_TRIGGER = f"{_PACKAGE}.triggers.events.CheckpointCommitEventTrigger"
#: The most characters of a template shown on a card.
TEMPLATE_SHOWN = 200


@dataclass
class TaskRef:
    """One task (or asset watcher) naming a query."""

    dag_id: str
    task_id: str
    kind: str  # the task's class, or the trigger's


@dataclass
class StreamRef:
    """A query the deployment names: its checkpoint (resolved or not), who names it, where it writes."""

    stream_id: str
    checkpoint: str | None  # None: unresolved
    template: str | None = None  # the unresolved template, shortened
    storage_conn_id: str | None = None
    kafka_config_id: str = "kafka_default"
    query_name: str | None = None
    sink_table: str | None = None  # a Delta sink's path
    tasks: list[TaskRef] = field(default_factory=list)

    @property
    def dag_ids(self) -> set[str]:
        return {t.dag_id for t in self.tasks}


def stream_id(key: str) -> str:
    """A stable id for a location (or an unresolved task), safe in a URL."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def shown_location(location: str) -> str:
    """``location`` without the user and password a URI may carry."""
    parts = urlsplit(location)
    if parts.netloc and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return location


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _spec_dict(value: Any) -> dict[str, Any] | None:
    """A spec as a dict: a dict, JSON text, or the ``repr`` Airflow stores for rendered dicts."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str) or _is_template(value):
        return None
    for parse in (json.loads, ast.literal_eval):
        try:
            parsed = parse(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
        if isinstance(parsed, dict):
            return parsed
    return None


@dataclass
class _Named:
    location: str | None
    template: str | None
    query_name: str | None = None
    sink_table: str | None = None
    kafka_config_id: str | None = None
    storage_conn_id: str | None = None


def _from_fields(kind: str, fields: dict[str, Any]) -> _Named | None:
    """The checkpoint a task's (rendered or serialized) template fields name."""
    attribute = CHECKPOINT_TASKS[kind]
    location = fields.get(attribute)
    spec = _spec_dict(fields.get("spec")) if kind == "SparkStreamingSubmitOperator" else None
    named = _Named(None, None)
    if spec is not None:
        sink = spec.get("sink") if isinstance(spec.get("sink"), dict) else {}
        source = spec.get("source") if isinstance(spec.get("source"), dict) else {}
        named.query_name = spec.get("query_name") if isinstance(spec.get("query_name"), str) else None
        if sink.get("format") == "delta" and isinstance(sink.get("path"), str) and not _is_template(sink["path"]):
            named.sink_table = sink["path"]
        if isinstance(source.get("kafka_config_id"), str):
            named.kafka_config_id = source["kafka_config_id"]
        if location is None:
            location = spec.get("checkpoint_location")
    elif kind == "SparkStreamingSubmitOperator" and location is None:
        # A templated spec is shown as its template; any other text is not shown: its options can hold secrets.
        location = fields.get("spec") if _is_template(fields.get("spec")) else None
    if location is None:
        return None
    if not isinstance(location, str) or _is_template(location) or not location.strip():
        named.template = str(location)[:TEMPLATE_SHOWN]
        return named
    named.location = location
    return named


def _watchers(node: Any):
    """Every asset watcher's trigger in a serialized DAG's schedule."""
    if isinstance(node, dict):
        for watcher in node.get("watchers") or []:
            if isinstance(watcher, dict) and isinstance(watcher.get("trigger"), dict):
                yield watcher.get("name") or "", watcher["trigger"]
        for value in node.values():
            yield from _watchers(value)
    elif isinstance(node, list):
        for value in node:
            yield from _watchers(value)


def discover_streams(*, session=None) -> list[StreamRef]:
    """Every query the active DAGs name, one entry per checkpoint (unresolved ones per task).

    Cost: one read of the latest serialized DAGs, one of the DAGs' latest runs, and one of the rendered
    fields of the templated tasks in those runs.
    """
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    if session is None:
        with create_session() as own:
            return discover_streams(session=own)

    active = set(session.scalars(select(DagModel.dag_id).where(DagModel.is_stale.is_(False))))
    found: list[tuple[TaskRef, _Named | None, dict[str, Any]]] = []
    templated: dict[str, list[int]] = {}  # dag_id -> indexes into found
    for dag_id, model in sorted(_latest_serialized(session, SerializedDagModel, active).items()):
        data = model.data or {}
        dag = data.get("dag") or {}
        for name, trigger in _watchers(dag.get("timetable")):
            if trigger.get("classpath") != COMMIT_TRIGGER:
                continue
            kwargs = trigger.get("kwargs") or {}
            location = kwargs.get("checkpoint")
            named = _Named(location if isinstance(location, str) else None, None)
            named.storage_conn_id = (
                kwargs.get("storage_conn_id") if isinstance(kwargs.get("storage_conn_id"), str) else None
            )
            found.append((TaskRef(dag_id, f"asset watcher {name}", "CheckpointCommitEventTrigger"), named, {}))
        for task in model.dag.tasks:
            kind = getattr(task, "task_type", None)
            if kind not in CHECKPOINT_TASKS or not str(getattr(task, "_task_module", "")).startswith(_PACKAGE):
                continue
            fields = {f: getattr(task, f, None) for f in getattr(task, "template_fields", ())}
            named = _from_fields(kind, fields)
            if named is None:
                continue
            found.append((TaskRef(dag_id, task.task_id, kind), named, fields))
            if named.location is None:
                templated.setdefault(dag_id, []).append(len(found) - 1)

    if templated:
        latest_runs = dict(
            session.execute(
                select(DagRun.dag_id, func.max(DagRun.id)).where(DagRun.dag_id.in_(templated)).group_by(DagRun.dag_id)
            ).all()
        )
        run_ids = dict(
            session.execute(select(DagRun.dag_id, DagRun.run_id).where(DagRun.id.in_(latest_runs.values()))).all()
        )
        if run_ids:
            rows = session.execute(
                select(
                    RenderedTaskInstanceFields.dag_id,
                    RenderedTaskInstanceFields.task_id,
                    RenderedTaskInstanceFields.run_id,
                    RenderedTaskInstanceFields.rendered_fields,
                ).where(RenderedTaskInstanceFields.dag_id.in_(run_ids))
            ).all()
            rendered = {
                (dag_id, task_id): fields
                for dag_id, task_id, run_id, fields in rows
                if run_ids.get(dag_id) == run_id and isinstance(fields, dict)
            }
            for dag_id, indexes in templated.items():
                for index in indexes:
                    ref, named, _ = found[index]
                    fields = rendered.get((dag_id, ref.task_id))
                    if fields:
                        again = _from_fields(ref.kind, fields)
                        if again is not None and again.location is not None:
                            found[index] = (ref, again, fields)
    return _group(found)


def _latest_serialized(session, model_class, dag_ids: set[str]) -> dict[str, Any]:
    if not dag_ids:
        return {}
    return {m.dag_id: m for m in model_class.get_latest_serialized_dags(dag_ids=sorted(dag_ids), session=session)}


def _group(found: list[tuple[TaskRef, _Named | None, dict[str, Any]]]) -> list[StreamRef]:
    streams: dict[str, StreamRef] = {}
    for ref, named, _ in found:
        if named is None:
            continue
        if named.location is None:
            key = stream_id(f"unresolved:{ref.dag_id}:{ref.task_id}")
            streams[key] = StreamRef(key, None, template=named.template, tasks=[ref])
            continue
        location = named.location.rstrip("/") or named.location
        key = stream_id(location)
        stream = streams.setdefault(key, StreamRef(key, location))
        stream.tasks.append(ref)
        stream.query_name = stream.query_name or named.query_name
        stream.sink_table = stream.sink_table or named.sink_table
        stream.storage_conn_id = stream.storage_conn_id or named.storage_conn_id
        if named.kafka_config_id:
            stream.kafka_config_id = named.kafka_config_id
    return sorted(streams.values(), key=lambda s: (s.checkpoint is None, s.query_name or "", s.checkpoint or ""))
