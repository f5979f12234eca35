"""Property-based fuzzing of every reader of a file from the lake, run as ``python -m tests.support.lake_fuzz KIND``.

Each kind writes hostile variants of one file (or folder listing) into a real checkpoint on the
local disk and reads it through the provider's real reader. The only acceptable outcomes are a
result or one of the project's named errors: never ``RecursionError``, ``ValueError``,
``TypeError``, ``AttributeError`` or ``MemoryError``. The process caps its address space at
2 GiB first, and prints one JSON line: examples run, the slowest one, and any unnamed error.
"""

from __future__ import annotations

import json
import resource
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

MEMORY_CAP_BYTES = 2 * 1024**3
EXAMPLES = 1_000
DEADLINE_MS = 5_000

# JSON values of every type, a few levels deep: the "wrong types" family.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
deep_nesting = st.integers(min_value=30, max_value=80_000).flatmap(
    lambda n: st.sampled_from(["[" * n, "{" * n, '{"a":' * n + "1" + "}" * n, "[" * n + "]" * n])
)
huge_integers = st.integers(min_value=20, max_value=20_000).map(lambda n: "9" * n)
non_ascii_digits = st.text(alphabet="²³¹٠١٢٣٤٥٦٧٨٩０１２", min_size=1, max_size=6)
hostile_json_text = st.one_of(
    json_values.map(json.dumps),
    deep_nesting,
    huge_integers,
    huge_integers.map(lambda digits: f'{{"logOffset": {digits}}}'),
    st.text(max_size=200),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999999", '"\\ud800"', "{", "[1,]", ""]),
)
hostile_bytes = st.one_of(hostile_json_text.map(str.encode), st.binary(max_size=300))


def _named_errors() -> tuple[type[BaseException], ...]:
    from airflow_spark_streaming.exceptions import SparkStreamingError

    return (SparkStreamingError,)


def _offsets_text(metadata: str, lines: list[str], version: str) -> str:
    return "\n".join([version, metadata, *lines])


offsets_files = st.one_of(
    st.builds(
        _offsets_text,
        hostile_json_text,
        st.lists(hostile_json_text, max_size=3),
        st.sampled_from(["v1", "v2", "v3", "v99999999999", "v²", ""]),
    ),
    st.builds(
        lambda topic, part, offset: _offsets_text(
            '{"batchWatermarkMs":0,"batchTimestampMs":1}', [json.dumps({topic: {part: offset}})], "v1"
        ),
        st.text(max_size=10),
        st.one_of(non_ascii_digits, st.text(max_size=5)),
        json_values,
    ),
    hostile_bytes.map(lambda data: data.decode("utf-8", errors="replace")),
)


def _checkpoint(root: Path) -> Path:
    (root / "offsets").mkdir(parents=True)
    (root / "commits").mkdir()
    (root / "metadata").write_text('{"id":"5f0c1c9e-7c3b-4b8a-9d7e-2f3c0a1b2c3d"}')
    (root / "offsets" / "0").write_text('v1\n{"batchWatermarkMs":0,"batchTimestampMs":1}\n{"logOffset":0}')
    (root / "commits" / "0").write_text('v1\n{"nextBatchWatermarkMs":0}')
    return root


def _read_checkpoint(root: Path) -> object:
    from airflow_spark_streaming.hooks.checkpoint import CheckpointHook

    hook = CheckpointHook(str(root))
    hook.get_status()
    return hook.get_history(last=5)


def kind_offsets(root: Path, text: str) -> None:
    from airflow_spark_streaming.hooks.checkpoint import CheckpointHook

    _checkpoint(root)
    (root / "offsets" / "1").write_text(text, errors="surrogatepass")
    CheckpointHook(str(root)).get_offsets_entry(1)


def kind_commits(root: Path, text: str) -> None:
    from airflow_spark_streaming.checkpoint.parsing import parse_commit_file

    _checkpoint(root)
    (root / "offsets" / "1").write_text((root / "offsets" / "0").read_text())
    (root / "commits" / "1").write_text(text, errors="surrogatepass")
    _read_checkpoint(root)
    parse_commit_file(text, "commits/1")


def kind_metadata(root: Path, text: str) -> None:
    _checkpoint(root)
    (root / "metadata").write_text(text, errors="surrogatepass")
    _read_checkpoint(root)


def kind_source_head(root: Path, data: bytes) -> None:
    _checkpoint(root)
    (root / "sources" / "0").mkdir(parents=True)
    (root / "sources" / "0" / "0").write_bytes(b"\x00v1\n" + data)
    _read_checkpoint(root)


def kind_batch_names(root: Path, names: list[str]) -> None:
    _checkpoint(root)
    for name in names:
        if name not in ("", ".", "..") and "/" not in name and "\x00" not in name:
            (root / "offsets" / name).write_text((root / "offsets" / "0").read_text())
    _read_checkpoint(root)


def kind_lease_record(root: Path, data: bytes) -> None:
    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
    from airflow_spark_streaming.runner import lease

    (root / "_leases").mkdir(parents=True)
    (root / "_leases" / lease.generation_name(7).rsplit("/", 1)[1]).write_bytes(data)
    state = lease.read_lease_state(lease.LocalLeaseStore(str(root)))
    assert state.generation == 7 and (state.held or state.reason in ("released", "stale", "unreadable-stale"))
    RunnerControlHook(str(root)).get_lease()
    # An hour later every planted record is stale or unreadable-stale: the runner must take over or refuse, by name.
    runner = lease.RunnerLease(lease.LocalLeaseStore(str(root)), ttl_ms=1_000, clock=lambda: time.time() + 3_600)
    try:
        runner.acquire(attempts=2, poll=0.01)
    except lease.CheckpointInUse:
        pass  # the runner's own named refusal (the runner imports nothing from Airflow)
    else:
        assert runner.generation == 8


def kind_lease_names(root: Path, names: list[str]) -> None:
    from airflow_spark_streaming.runner import lease

    (root / "_leases").mkdir(parents=True)
    for name in names:
        if name not in ("", ".", "..") and "/" not in name and "\x00" not in name:
            stale = {"owner": "someone", "heartbeat_ms": 1, "ttl_ms": 1000, "released": False}
            (root / "_leases" / name).write_bytes(json.dumps(stale).encode())
    store = lease.LocalLeaseStore(str(root))
    state = lease.read_lease_state(store)
    planted = [n for n in (root / "_leases").iterdir()]
    if planted and not lease.generations([p.name for p in planted]):
        # Nothing the runner wrote, and something there: taken (fail-safe), or a store temporary only.
        foreign = lease.foreign_names([p.name for p in planted])
        assert state.held == bool(foreign), (state, foreign)
    runner = lease.RunnerLease(store, ttl_ms=1_000, clock=lambda: time.time() + 3_600)
    try:
        runner.acquire(attempts=2, poll=0.01)
    except lease.CheckpointInUse:
        return
    assert runner.generation is not None and runner.generation <= lease.MAX_GENERATION


def kind_progress(root: Path, files: list[tuple[str, bytes]]) -> None:
    import logging

    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
    from airflow_spark_streaming.operators._progress_log import BatchProgressLog

    (root / "_progress").mkdir(parents=True)
    for name, data in files:
        if name not in ("", ".", "..") and "/" not in name and "\x00" not in name:
            (root / "_progress" / name).write_bytes(data)
    control = RunnerControlHook(str(root))
    BatchProgressLog(control, logging.getLogger("fuzz"), -1).poll()  # never raises: logging is best effort
    control.get_progress()


def kind_submission(root: Path, data: bytes) -> None:
    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
    from airflow_spark_streaming.runner.control_auth import ControlKey

    root.mkdir(parents=True)
    (root / "_submission").write_bytes(data)
    control = RunnerControlHook(str(root))
    control.get_submission()
    control.query_running()
    control.get_signed_submission(ControlKey.from_text("f" * 32, source="fuzz"))


def kind_maintenance(root: Path, data: bytes) -> None:
    from airflow_spark_streaming.hooks.maintenance_request import MaintenanceRequestHook
    from airflow_spark_streaming.runner.protocol import (
        MAINTENANCE_DIR,
        MAINTENANCE_HANDOFF_FILE,
        maintenance_result_file,
    )

    (root / MAINTENANCE_DIR).mkdir(parents=True)
    (root / MAINTENANCE_DIR / MAINTENANCE_HANDOFF_FILE).write_bytes(data)
    (root / MAINTENANCE_DIR / maintenance_result_file("r1")).write_bytes(data)
    hook = MaintenanceRequestHook(str(root))
    hook.get_handoff()
    hook.get_result("r1")


def kind_pipeline_spec(root: Path, data: bytes) -> None:
    from airflow_spark_streaming.hooks.pipelines import PipelineHook

    root.mkdir(parents=True)
    (root / "spark-pipeline.yml").write_bytes(data)
    PipelineHook().read_spec(str(root / "spark-pipeline.yml"))


def kind_pipeline_names(root: Path, names: list[str]) -> None:
    from airflow_spark_streaming.hooks.pipelines import PipelineHook
    from airflow_spark_streaming.pipelines.flows import FlowTarget

    for level, name in enumerate(names):
        if name not in ("", ".", "..") and "/" not in name and "\x00" not in name:
            parts = ["spark_catalog", "default", "orders", "orders", "0"]
            parts[level % 5] = name
            (root / "_checkpoints").joinpath(*parts).mkdir(parents=True, exist_ok=True)
    PipelineHook().resolve(FlowTarget(flow="orders", storage=str(root)))


pipeline_specs = st.one_of(
    hostile_bytes,
    st.fixed_dictionaries(
        {"name": json_values, "storage": st.one_of(st.just("file:///lake/sdp"), json_values)},
        optional={"catalog": json_values, "database": json_values,
                  "configuration": json_values, "libraries": json_values},
    ).map(lambda spec: json.dumps(spec).encode()),  # JSON is YAML
    st.integers(min_value=1, max_value=3000).map(lambda depth: b"a: " + b"[" * depth + b"]" * depth),
    st.just(b"a: &x [1, 2]\nb: &y [*x, *x, *x, *x]\nc: [*y, *y, *y, *y]\nname: n\nstorage: /s\n"),
)  # fmt: skip

progress_events = st.fixed_dictionaries(
    {"batchId": st.one_of(st.integers(), json_values), "numInputRows": json_values, "durationMs": json_values,
     "sources": st.one_of(json_values, st.lists(st.fixed_dictionaries({"endOffset": json_values,
                                                                        "latestOffset": json_values}), max_size=2))}
)  # fmt: skip
progress_names = st.one_of(
    st.integers(min_value=0, max_value=10**25).map(lambda n: f"{n}.json"), non_ascii_digits.map(lambda d: f"{d}.json"),
    st.text(max_size=12),
)  # fmt: skip

KINDS = {
    "progress": (
        kind_progress,
        st.lists(
            st.tuples(progress_names, st.one_of(progress_events.map(lambda e: json.dumps(e).encode()), hostile_bytes)),
            max_size=4,
        ),
    ),
    "submission": (kind_submission, hostile_bytes),
    "maintenance": (kind_maintenance, hostile_bytes),
    "offsets": (kind_offsets, offsets_files),
    "commits": (kind_commits, hostile_json_text.map(lambda body: f"v1\n{body}")),
    "metadata": (kind_metadata, hostile_json_text),
    "source_head": (kind_source_head, hostile_bytes),
    "batch_names": (
        kind_batch_names,
        st.lists(st.one_of(non_ascii_digits, huge_integers.map(lambda d: d[:60]), st.text(max_size=12)), max_size=4),
    ),
    "lease_record": (kind_lease_record, hostile_bytes),
    "pipeline_spec": (kind_pipeline_spec, pipeline_specs),
    "pipeline_names": (kind_pipeline_names, st.lists(st.one_of(non_ascii_digits, st.text(max_size=12)), max_size=6)),
    "lease_names": (
        kind_lease_names,
        st.lists(
            st.one_of(
                st.integers(min_value=0, max_value=10**22).map(lambda n: f"{n:020d}"),
                non_ascii_digits,
                st.text(max_size=25),
                st.just("99999999999999999999"),
            ),
            max_size=4,
        ),
    ),
}


def run(kind: str) -> dict:
    action, strategy = KINDS[kind]
    named = _named_errors()
    stats = {"kind": kind, "examples": 0, "slowest_s": 0.0, "unnamed": [], "named": 0}

    @seed(20261204)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,  # timed below, so a slow example is reported rather than retried
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def fuzz(value):
        root = Path(tempfile.mkdtemp(prefix="lake-fuzz-"))
        started = time.perf_counter()
        try:
            action(root / "ckpt", value)
        except named:
            stats["named"] += 1
        except BaseException as err:  # noqa: BLE001 - exactly what this harness looks for
            if len(stats["unnamed"]) < 5:
                stats["unnamed"].append(f"{type(err).__name__}: {str(err)[:200]} <- {repr(value)[:200]}")
                stats["unnamed"].append(traceback.format_exc(limit=-3)[-600:])
        finally:
            stats["slowest_s"] = max(stats["slowest_s"], time.perf_counter() - started)
            stats["examples"] += 1
            shutil.rmtree(root, ignore_errors=True)

    fuzz()
    return stats


if __name__ == "__main__":
    import os

    # The control key the maintenance reader verifies with (it refuses to read without one).
    os.environ["AIRFLOW_CONN_SPARK_STREAMING_CONTROL_DEFAULT"] = json.dumps(
        {"conn_type": "generic", "password": "f" * 32}
    )
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP_BYTES, MEMORY_CAP_BYTES))
    print(json.dumps(run(sys.argv[1])))
