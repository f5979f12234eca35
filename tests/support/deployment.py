"""Shared steps of the deployment tests: orders on Kafka, what a checkpoint and a Delta table committed, processes.

Everything here reads the lake and the process table directly, independently of the provider,
so that what the deployment reports (asset events, XComs) is compared with the ground truth.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

REGIONS = ("eu", "us", "apac")


def create_topic(bootstrap_servers: str, partitions: int = 2, prefix: str = "t") -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(timeout=30)
    return name


def produce_orders(bootstrap_servers: str, topic: str, start: int, count: int, partitions: int = 2) -> list[dict]:
    """Orders ``order-<start>`` … as JSON ``{"region", "amount"}``, round-robin over partitions; the orders sent."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap_servers, "linger.ms": 5, "enable.idempotence": True})
    orders = []
    for i in range(start, start + count):
        order = {"order_id": f"order-{i}", "region": REGIONS[i % len(REGIONS)], "amount": i % 7 + 1}
        producer.produce(topic, key=order["order_id"], partition=i % partitions,
                         value=json.dumps({"region": order["region"], "amount": order["amount"]}))  # fmt: skip
        orders.append(order)
    assert producer.flush(30) == 0, "records were left unsent"
    return orders


def by_region(orders: Iterable[dict]) -> dict[str, dict[str, int]]:
    """``{region: {"rows", "amount"}}``, as the example DAG ``downstream_on_commit`` aggregates."""
    totals: dict[str, dict[str, int]] = {}
    for order in orders:
        entry = totals.setdefault(order["region"], {"rows": 0, "amount": 0})
        entry["rows"] += 1
        entry["amount"] += order["amount"]
    return totals


def committed_batches(checkpoint: Path) -> list[int]:
    """The batch ids in the checkpoint's commits log."""
    commits = Path(checkpoint) / "commits"
    if not commits.is_dir():
        return []
    return sorted(int(p.name) for p in commits.iterdir() if p.name.isdigit())


def table_batches(table: Path) -> dict[int, dict]:
    """Batch id → the Delta version the streaming sink wrote for it and its row count (from the commit info)."""
    from deltalake import DeltaTable

    found = {}
    for info in DeltaTable(str(table)).history():
        parameters = info.get("operationParameters") or {}
        if info.get("operation") == "STREAMING UPDATE" and "epochId" in parameters:
            metrics = info.get("operationMetrics") or {}
            found[int(parameters["epochId"])] = {"version": int(info["version"]),
                                                 "rows": int(metrics.get("numOutputRows", 0))}  # fmt: skip
    return found


def table_rows(table: Path) -> list[dict]:
    from deltalake import DeltaTable

    if not (Path(table) / "_delta_log").is_dir():
        return []
    return DeltaTable(str(table)).to_pyarrow_table().to_pylist()


def wait_until(condition: Callable[[], bool], timeout: float, what: str | Callable[[], str], interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what() if callable(what) else what}")
        time.sleep(interval)


def spark_drivers(label: str, marker: str | None = None) -> list[int]:
    """The live driver JVMs (``SparkSubmit``) whose command line names ``label`` (the query's ``--name``, say).

    With ``marker``, only those a deployment started (their environment carries its marker). The
    ``spark-class`` script that becomes the JVM (``exec``), and the launcher JVM it runs first to
    build the command line, name ``SparkSubmit`` too; neither is a driver.
    """
    from devstack.airflow_deployment import MARKER_VAR

    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
            state = (cmdline.parent / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if (
                state == "Z"
                or not args[0].endswith(b"java")
                or b"org.apache.spark.deploy.SparkSubmit" not in args
                or b"org.apache.spark.launcher.Main" in args
                or not any(label.encode() in a for a in args)
            ):
                continue
            if marker and f"{MARKER_VAR}={marker}".encode() not in (cmdline.parent / "environ").read_bytes().split(
                b"\0"
            ):
                continue
        except (OSError, IndexError):
            continue
        found.append(int(cmdline.parent.name))
    return found


class DriverSampler:
    """Samples :func:`spark_drivers` in a thread: every driver pid seen, and the most seen at once."""

    def __init__(self, label: str, marker: str | None = None, interval: float = 0.5) -> None:
        self.label, self.marker, self.interval = label, marker, interval
        self.seen: set[int] = set()
        self.most_at_once = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = spark_drivers(self.label, self.marker)
            self.seen.update(pids)
            self.most_at_once = max(self.most_at_once, len(pids))
            self._stop.wait(self.interval)

    def __enter__(self) -> DriverSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)


class MasterSampler:
    """Samples a standalone Master's JSON state in a thread: the drivers and the applications named ``app_name``.

    Drivers RUNNING when it starts (an earlier test's) are left out. ``drivers_seen`` and
    ``apps_seen`` are every id seen RUNNING; ``most_drivers_at_once`` and ``most_apps_at_once``
    the most seen RUNNING in one sample; ``samples`` counts the samples the Master answered.
    """

    def __init__(self, cluster, app_name: str, interval: float = 0.5) -> None:
        self.cluster, self.app_name, self.interval = cluster, app_name, interval
        self.earlier = {d["id"] for d in cluster.master_state().get("activedrivers", [])}
        self.drivers_seen: set[str] = set()
        self.apps_seen: set[str] = set()
        self.most_drivers_at_once = self.most_apps_at_once = self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        state = self.cluster.master_state()
        drivers = {d["id"] for d in state.get("activedrivers", [])
                   if d.get("state") == "RUNNING" and d["id"] not in self.earlier}  # fmt: skip
        apps = {a["id"] for a in state.get("activeapps", [])
                if a.get("state") == "RUNNING" and a.get("name") == self.app_name}  # fmt: skip
        self.drivers_seen |= drivers
        self.apps_seen |= apps
        self.most_drivers_at_once = max(self.most_drivers_at_once, len(drivers))
        self.most_apps_at_once = max(self.most_apps_at_once, len(apps))
        self.samples += 1

    def active_drivers(self) -> set[str]:
        """The drivers started since this sampler began that the Master still runs or is about to."""
        state = self.cluster.master_state()
        return {d["id"] for d in state.get("activedrivers", []) if d["id"] not in self.earlier}

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except OSError:  # a slow answer: the next sample counts
                pass
            self._stop.wait(self.interval)

    def __enter__(self) -> MasterSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)


def kill_cluster_driver(cluster, driver_id: str) -> None:
    """Ask the Master's REST submission server to kill ``driver_id`` (a test's cleanup, whatever its state)."""
    import urllib.request

    request = urllib.request.Request(f"{cluster.submission_url}/v1/submissions/kill/{driver_id}", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def signal_driver(label: str, marker: str, sig: int) -> list[int]:
    """Send ``sig`` to the process group of each live driver of the deployment named ``label`` (JVM and Python)."""
    pids = spark_drivers(label, marker)
    for pid in pids:
        try:
            os.killpg(os.getpgid(pid), sig)
        except ProcessLookupError:
            pass
    return pids


def kill_drivers(label: str, marker: str) -> None:
    """SIGKILL whatever driver of the deployment named ``label`` is left (resumed first, should a test have paused it)."""
    signal_driver(label, marker, signal.SIGCONT)
    signal_driver(label, marker, signal.SIGKILL)


def log_lines(paths: Iterable[Path], pattern: str) -> list[str]:
    """The lines of ``paths`` matching the regular expression ``pattern``."""
    regex = re.compile(pattern)
    lines = []
    for path in paths:
        try:
            text = Path(path).read_text(errors="replace")
        except OSError:
            continue
        lines += [line for line in text.splitlines() if regex.search(line)]
    return lines
