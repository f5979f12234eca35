"""The store goes away in the middle of a compaction: a named error in bounded time, and nothing half-written.

The fault is injected with a TCP relay in front of the local server: cutting it
makes the store unreachable for the compaction, while the test still reads the
table directly afterwards (the moto server keeps its data only in memory).
"""

from __future__ import annotations

import socket
import threading
import time

import pandas as pd

from airflow_spark_streaming.exceptions import StorageUnreachableError
from airflow_spark_streaming.hooks.delta import DeltaTableHook
from airflow_spark_streaming.hooks.storage import StorageHook


class CuttableRelay:
    """127.0.0.1:<free port> → the server; ``cut()`` drops every connection and refuses new ones."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream, self.requests = upstream, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self.lock:
                self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source, target, counting):
        try:
            while data := source.recv(65536):
                if counting:
                    self.requests += data.count(b"HTTP/1.1\r\n")
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.close()
                except OSError:
                    pass

    def cut(self):
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_store_stopped_mid_compaction_fails_named_and_leaves_the_table_whole(s3_server, s3_bucket, storage_conn):
    from deltalake import DeltaTable, write_deltalake

    direct = StorageHook(storage_conn("direct_s3")).delta_storage_options()
    table = f"s3://{s3_bucket}/small_files"
    for part in range(40):
        write_deltalake(table, pd.DataFrame({"id": range(part * 10, part * 10 + 10)}), mode="append",
                        storage_options=direct)  # fmt: skip
    version_before = DeltaTable(table, storage_options=direct).version()

    host, port = s3_server.endpoint_url.removeprefix("http://").split(":")
    relay = CuttableRelay((host, int(port)))
    relayed = StorageHook(storage_conn("relayed_s3", extra={"endpoint_url": f"http://127.0.0.1:{relay.port}"}))
    hook = DeltaTableHook(table, storage_options=relayed.delta_storage_options())
    hook.get_table()  # the compaction is planned through the relay
    seen = relay.requests
    outcome: dict = {}

    def compact():
        started = time.monotonic()
        try:
            outcome["metrics"] = hook.optimize_native(max_attempts=1)
        except Exception as err:  # noqa: BLE001 - judged below
            outcome["error"] = err
        outcome["seconds"] = time.monotonic() - started

    worker = threading.Thread(target=compact)
    worker.start()
    deadline = time.monotonic() + 30
    while relay.requests < seen + 5 and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.005)  # a few requests into the compaction: it has read some files, committed nothing
    relay.cut()
    worker.join(120)
    assert not worker.is_alive(), "the compaction hung after the store went away"
    assert "error" in outcome, f"the compaction finished before the cut: {outcome}"
    named = relayed.translate(outcome["error"], table)
    assert isinstance(named, StorageUnreachableError), repr(outcome["error"])
    assert outcome["seconds"] < relayed.timeouts.worst_case_seconds, outcome
    print(f"compaction failed {outcome['seconds']:.1f}s after it started, {relay.requests - seen} requests in")

    after = DeltaTable(table, storage_options=direct)
    assert after.version() == version_before  # no commit: nothing half-written into the log
    assert sorted(after.to_pandas()["id"]) == list(range(400))
    log = {o["Key"].rsplit("/", 1)[1] for o in s3_server.client().list_objects_v2(
        Bucket=s3_bucket, Prefix="small_files/_delta_log/")["Contents"]}  # fmt: skip
    assert {f"{v:020d}.json" for v in range(version_before + 1)} <= log
    assert f"{version_before + 1:020d}.json" not in log
