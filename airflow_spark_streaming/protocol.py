"""The stream runner's control protocol, shared by the runner (Spark side) and the hooks (Airflow side).

Stdlib only: the runner imports it inside the Spark driver, where Airflow is not
installed. Everything both sides must agree on lives here: the side files next
to the checkpoint, the lease's JSON, the Spark setting carrying the submission
tag, and the lease's default time-to-live.

Side files, relative to the checkpoint root::

    _lease                 the runner's heartbeat (:class:`LeaseRecord` as JSON)
    _stop                  present: stop the query after its current micro-batch
    _progress/<batch>.json Spark's StreamingQueryProgress JSON, one per batch
    _submission            which driver the provider submitted on this checkpoint
    _staging/              files a cluster-mode driver reads once (spec, jars)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

LEASE_FILE = "_lease"
STOP_FILE = "_stop"
PROGRESS_DIR = "_progress"
SUBMISSION_FILE = "_submission"
STAGING_DIR = "_staging"

#: The Spark setting carrying the submitting task's tag; the runner copies it into its lease.
SUBMISSION_CONF = "spark.airflow_spark_streaming.submission"
#: The lease's time-to-live unless the spec sets ``lease_ttl_seconds``; also judges a torn lease.
DEFAULT_LEASE_TTL_SECONDS = 30
#: Staged in ``_staging/`` for a standalone cluster-mode Python driver (see the standalone backend).
PYTHON_LAUNCHER_JAR = "python-driver-launcher.jar"
#: ``_staging/`` subfolder holding jars resolved for a standalone cluster-mode driver's executors.
STAGED_JARS_DIR = "jars"

#: The runner's command line: where its spec is, and that it deletes the spec once read.
SPEC_FILE_ARG, SPEC_URI_ARG, DELETE_SPEC_FILE_ARG = "--spec-file", "--spec-uri", "--delete-spec-file"


def staged_spec_name(tag: str) -> str:
    """The spec staged in ``_staging/`` for the driver of submission ``tag``; the runner deletes it once read."""
    return f"spec-{tag}.json"


#: Progress files the runner keeps (the newest ones).
PROGRESS_KEEP = 200

FILE_FORMATS = ("json", "csv", "parquet", "text", "orc")
SOURCE_FORMATS = ("kafka", "rate", "delta", *FILE_FORMATS)
PATH_SINKS = ("delta", "parquet", "json", "csv", "orc")
SINK_FORMATS = (*PATH_SINKS, "kafka", "console")


def progress_file(batch_id: int) -> str:
    """The name of batch ``batch_id``'s progress event in ``_progress/``."""
    return f"{batch_id}.json"


def progress_batch(name: str) -> int | None:
    """The batch id of a ``_progress/`` file name, or ``None`` for anything else."""
    stem = name.removesuffix(".json")
    return int(stem) if name.endswith(".json") and stem.isdigit() else None


@dataclass
class LeaseRecord:
    """The JSON body of ``_lease``: who holds the checkpoint, and when it last said so.

    ``owner`` is random per runner, so only the runner that wrote a lease
    deletes it; ``submission`` is the tag from :data:`SUBMISSION_CONF`.
    """

    owner: str | None = None
    host: str | None = None
    pid: int | None = None
    app_id: str | None = None
    ttl_ms: int | None = None
    submission: str | None = None
    heartbeat_ms: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> LeaseRecord:
        """Parse a lease; raise ``ValueError`` for a torn or foreign body (caught by both sides)."""
        data: Any = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"a lease is a JSON object, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        record = cls(**{k: v for k, v in data.items() if k in known})
        record.heartbeat_ms = record.heartbeat_ms or 0
        return record

    def age_ms(self, now_ms: float) -> float:
        return max(0.0, now_ms - self.heartbeat_ms)

    def is_live(self, now_ms: float, default_ttl_ms: int | None = None) -> bool:
        """The heartbeat is younger than the TTL (the lease's own, else ``default_ttl_ms``, else none)."""
        ttl = self.ttl_ms if self.ttl_ms is not None else default_ttl_ms
        return self.age_ms(now_ms) < (ttl or 0)
