"""What every local service shares: its home, its state file, start-once, stop and the ``start|stop|status`` CLI.

A service module (:mod:`devstack.kafka`, :mod:`devstack.s3`, :mod:`devstack.spark_cluster`,
:mod:`devstack.yarn`) describes itself once as a :class:`Service` and keeps only what is its own:
how to launch its processes and what its CLI prints. The base does the rest the same way for all:

* the home is the ``home`` argument, else ``$<HOME_ENV>``, else ``<cache>/<folder>``;
* a started service is recorded as JSON in ``<home>/<state file>`` (mode 0600 when it holds
  passwords); a record whose processes died counts as nothing running;
* :meth:`Service.start` returns the service already running in the home, else launches one and records it;
* :meth:`Service.stop` terminates the recorded processes in order and forgets the record;
* :meth:`Service.main` parses ``start|stop|status [--home DIR]`` plus the service's own options and
  prints ``<prog>: <line>``; errors go to stderr without a traceback (exit 1), ``status`` exits 3
  when nothing runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from airflow_spark_streaming.exceptions import SparkStreamingError
from airflow_spark_streaming.spark.jvm import cache_dir
from devstack.process import terminate


class Record(Protocol):
    """A running service as its state file holds it: a dataclass with its home and a liveness check."""

    home: str

    def is_alive(self) -> bool: ...


R = TypeVar("R", bound=Record)


def _own_pid(record: Any) -> list[int]:
    return [record.pid]


@dataclass(frozen=True)
class Service(Generic[R]):
    """One local service: its CLI name, its record type and where its state lives.

    :param prog: the CLI's name, the prefix of every line it prints (``kafka-local``).
    :param record: the dataclass recorded in the state file.
    :param state_file: the state file's name inside the home (``broker.json``).
    :param home_env: the environment variable naming the default home (``KAFKA_LOCAL_HOME``).
    :param folder: the default home's folder under the cache dir (``kafka-local``).
    :param home_help: the ``--home`` option's help text.
    :param private: the record holds passwords: its state file is mode 0600.
    :param pids: the record's processes, in the order :meth:`stop` terminates them.
    :param grace: seconds each process has to exit on SIGTERM before SIGKILL.
    :param leftovers: files in the home that :meth:`stop` removes once it stopped a service.
    """

    prog: str
    record: type[R]
    state_file: str
    home_env: str
    folder: str
    home_help: str | None = None
    private: bool = False
    pids: Callable[[R], Iterable[int]] = _own_pid
    grace: float = 30
    leftovers: tuple[str, ...] = ()

    def default_home(self) -> Path:
        return Path(os.environ.get(self.home_env) or cache_dir() / self.folder)

    def home(self, home: Path | str | None = None) -> Path:
        """``home``, or the default home when it is ``None``."""
        return Path(home or self.default_home())

    def state_path(self, home: Path | str | None = None) -> Path:
        return self.home(home) / self.state_file

    def read_state(self, home: Path | str | None = None) -> R | None:
        """The service recorded in ``home``, if it is still running (its record's ``is_alive()``)."""
        try:
            record = self.record(**json.loads(self.state_path(home).read_text()))
        except (OSError, ValueError, TypeError):
            return None
        return record if record.is_alive() else None

    def write_state(self, record: R) -> None:
        """Record a running service in its home's state file."""
        path = self.state_path(record.home)
        if self.private:
            path.touch(mode=0o600)
            os.chmod(path, 0o600)
        path.write_text(json.dumps(asdict(record)))

    def start(self, home: Path | str | None, launch: Callable[[Path], R]) -> R:
        """The service running in ``home``, else ``launch(home)``'s, recorded once it is up.

        ``launch`` must leave nothing running when it raises (:func:`devstack.process.terminated_on_failure`).
        """
        home = self.home(home)
        running = self.read_state(home)
        if running is not None:
            return running
        record = launch(home)
        self.write_state(record)
        return record

    def stop(self, home: Path | str | None = None) -> R | None:
        """Terminate the processes of the service recorded in ``home`` and forget it.

        Returns the record, or ``None`` when nothing was running.
        """
        home = self.home(home)
        record = self.read_state(home)
        self.state_path(home).unlink(missing_ok=True)
        if record is not None:
            for pid in self.pids(record):
                terminate(pid, grace=self.grace)
            for name in self.leftovers:
                (home / name).unlink(missing_ok=True)
        return record

    def parser(self, doc: str) -> argparse.ArgumentParser:
        """The ``start|stop|status [--home DIR]`` parser; the service adds its own options to it."""
        parser = argparse.ArgumentParser(prog=self.prog, description=doc.splitlines()[0])
        parser.add_argument("command", choices=["start", "stop", "status"])
        parser.add_argument("--home", type=Path, default=None, help=self.home_help)
        return parser

    def main(
        self, argv: Sequence[str] | None, *, doc: str, start: Callable[[argparse.Namespace, Path], Iterable[str]],
        status: Callable[[R], str], options: Callable[[argparse.ArgumentParser], None] | None = None,
    ) -> int:  # fmt: skip
        """Run the CLI: ``start`` prints ``start(args, home)``'s lines, ``status`` prints ``status(record)``.

        :param doc: the module's docstring; its first line describes the CLI.
        :param options: adds the service's own options to the parser.
        """
        parser = self.parser(doc)
        if options is not None:
            options(parser)
        args = parser.parse_args(argv)
        home = self.home(args.home)
        try:
            if args.command == "start":
                for line in start(args, home):
                    print(f"{self.prog}: {line}")
            elif args.command == "stop":
                print(f"{self.prog}: stopped" if self.stop(home) is not None else f"{self.prog}: was not running")
            else:
                running = self.read_state(home)
                print(f"{self.prog}: {status(running)}" if running else f"{self.prog}: not running")
                return 0 if running else 3
        except SparkStreamingError as err:
            print(f"{self.prog}: {err}", file=sys.stderr)
            return 1
        return 0
