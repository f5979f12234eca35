"""Where a real run could show a credential: every process's command line while it runs, what Airflow stored,
and the event log Spark wrote.

Used by the secrets acceptance tests (issue 23) beside ``secret_kinds``: each
reports *which kind* leaked, never the value itself, so a failing test prints no
secret either.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path


def leaked_kinds(needles: dict[str, str], text: str) -> list[str]:
    """The kinds (``needles``: value -> kind) whose value appears in ``text``."""
    return sorted({kind for value, kind in needles.items() if value in text})


class ProcessListWatch:
    """Reads the command line of every process (what ``ps -eo args -ww`` shows) until stopped.

    ``marker`` is a word of this run's command lines (the application's name), so the test
    can tell the run was seen; ``lines`` keeps those command lines for further checks, and
    ``on_run_line`` looks at each while the process lives.
    """

    def __init__(
        self,
        needles: dict[str, str],
        marker: str,
        interval: float = 0.1,
        on_run_line: Callable[[str], None] | None = None,
    ) -> None:
        self.needles = {value.encode(): kind for value, kind in needles.items()}
        self.marker = marker.encode()
        self.interval = interval
        self.on_run_line = on_run_line  # called with each of this run's command lines, at every sample
        self.leaks: set[str] = set()  # the kinds seen on a command line
        self.lines: set[str] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    cmdline = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                self.leaks.update(kind for value, kind in self.needles.items() if value in cmdline)
                if self.marker in cmdline:
                    line = cmdline.replace(b"\0", b" ").decode(errors="replace")
                    self.lines.add(line)
                    if self.on_run_line is not None:
                        self.on_run_line(line)
            self.samples += 1
            self._stop.wait(self.interval)

    @property
    def runs_seen(self) -> int:
        return len(self.lines)

    def __enter__(self) -> ProcessListWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)


def event_log_settings(conf: dict[str, str], folder: Path) -> dict[str, str]:
    """``conf`` with Spark's event log on, uncompressed, in ``folder`` (a real run's record of its settings)."""
    folder.mkdir(parents=True, exist_ok=True)
    return {**conf, "spark.eventLog.enabled": "true", "spark.eventLog.dir": folder.as_uri(),
            "spark.eventLog.compress": "false"}  # fmt: skip


def event_log(folder: Path) -> tuple[str, dict[str, dict[str, str]]]:
    """The text of every event log in ``folder``, and the settings its environment update recorded: "Spark
    Properties" and "Hadoop Properties", each name -> value as Spark wrote it (redacted or not)."""
    files = sorted(path for path in folder.rglob("*") if path.is_file() and not path.name.startswith("."))  # no .crc
    text = "".join(path.read_text(errors="replace") for path in files)
    environment: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if '"SparkListenerEnvironmentUpdate"' in line:
            event = json.loads(line)
            for section in ("Spark Properties", "Hadoop Properties"):
                pairs = event.get(section) or {}
                environment[section] = dict(pairs.items() if isinstance(pairs, dict) else pairs)
    return text, environment


def stored_by_airflow(run) -> dict[str, str]:
    """What the metadata database holds for ``run`` (a ``dag.test()`` DagRun): each task's XCom values and
    rendered template fields (what the UI shows), as JSON text by ``<task>:<what>``."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    stored: dict[str, str] = {}
    with create_session() as session:
        for row in session.scalars(
            select(XComModel).where(XComModel.dag_id == run.dag_id, XComModel.run_id == run.run_id)
        ):
            stored[f"{row.task_id}:xcom:{row.key}"] = json.dumps(row.value, default=str)
        for row in session.scalars(
            select(RenderedTaskInstanceFields).where(
                RenderedTaskInstanceFields.dag_id == run.dag_id, RenderedTaskInstanceFields.run_id == run.run_id
            )
        ):
            stored[f"{row.task_id}:rendered"] = json.dumps(row.rendered_fields, default=str)
    return stored


class CapturedOutput:
    """Everything written to this process's stdout and stderr (file descriptors, so spark-submit's relayed output
    too) and every log record of INFO and above, while the block runs: the task log of an in-process
    ``dag.test()``, for fixtures wider than a test, where ``capfd`` and ``caplog`` are not available."""

    def __init__(self) -> None:
        self.text = ""

    def __enter__(self) -> CapturedOutput:
        import io
        import logging
        import os
        import sys
        import tempfile

        sys.stdout.flush()
        sys.stderr.flush()
        self._file = tempfile.TemporaryFile()
        self._saved = {fd: os.dup(fd) for fd in (1, 2)}
        for fd in (1, 2):
            os.dup2(self._file.fileno(), fd)
        # Python-level writers too (pytest's capture and structlog write to sys.stdout, not to the descriptor).
        self._streams = (sys.stdout, sys.stderr)
        sys.stdout = sys.stderr = io.TextIOWrapper(open(self._file.fileno(), "wb", closefd=False), write_through=True)
        self._records: list[str] = []
        self._handler = logging.Handler(logging.INFO)
        self._handler.emit = lambda record: self._records.append(self._handler.format(record))
        self._root_level = logging.getLogger().level
        logging.getLogger().addHandler(self._handler)
        logging.getLogger().setLevel(min(self._root_level or logging.INFO, logging.INFO))
        return self

    def __exit__(self, *exc) -> None:
        import logging
        import os
        import sys

        sys.stdout.flush()
        sys.stdout, sys.stderr = self._streams
        logging.getLogger().removeHandler(self._handler)
        logging.getLogger().setLevel(self._root_level)
        for fd, saved in self._saved.items():
            os.dup2(saved, fd)
            os.close(saved)
        self._file.seek(0)
        self.text = self._file.read().decode(errors="replace") + "\n".join(self._records)
        self._file.close()
