"""The Streams page's cost: 50 queries whose checkpoints retain 100 batches and 100 progress events each.

Times what the list endpoint does after authenticating and discovering (``StreamReader.cards``), cold
(every card read through the hooks) and warm (served from the cache), and one query's history (every
retained progress event turned into chart series). The checkpoints are written in Spark's and the
runner's formats on local disk (``tests/support/stream_checkpoints.py``). There is no broker here: the
Kafka parts of a card fail at once on a missing connection, so broker round trips are not in these figures.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench.common import bench_main

STREAMS, BATCHES = 50, 100
SMOKE_STREAMS, SMOKE_BATCHES = 5, 10


def _refs(root: Path, streams: int, batches: int):
    from airflow_spark_streaming.plugins.streams.discovery import StreamRef, TaskRef, stream_id
    from tests.support.stream_checkpoints import write_kafka_checkpoint

    refs = []
    for index in range(streams):
        location = root / f"ckpt-{index}"
        write_kafka_checkpoint(location, batches=batches, topic=f"topic_{index}", stateful=index % 2 == 0)
        refs.append(StreamRef(stream_id(str(location)), str(location), query_name=f"query_{index}",
                              kafka_config_id="bench_no_broker", tasks=[TaskRef("bench", f"t{index}", "KafkaLagSensor")]))  # fmt: skip
    return refs


def run(smoke: bool = False) -> list[dict]:
    from airflow_spark_streaming.plugins.streams.reader import StreamReader

    streams, batches = (SMOKE_STREAMS, SMOKE_BATCHES) if smoke else (STREAMS, BATCHES)
    repeats = 2 if smoke else 5
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as work:
        refs = _refs(Path(work), streams, batches)
        StreamReader().cards(refs[:1])  # imports and the first connection lookup, outside the timings
        cold, warm, history = [], [], []
        for _ in range(repeats):
            reader = StreamReader(ttl=600)
            started = time.perf_counter()
            cards = reader.cards(refs)
            cold.append(time.perf_counter() - started)
            assert [c["latest_committed_batch"] for c in cards] == [batches - 1] * streams
            started = time.perf_counter()
            reader.cards(refs)
            warm.append(time.perf_counter() - started)
            started = time.perf_counter()
            events = reader.history(refs[0])
            history.append(time.perf_counter() - started)
            assert events["batches"] == batches
    return [
        {"streams": streams, "progress_events_each": batches, "what": "list, cold (read through the hooks)",
         "median_s": round(statistics.median(cold), 3), "max_s": round(max(cold), 3)},
        {"streams": streams, "progress_events_each": batches, "what": "list, warm (cached)",
         "median_s": round(statistics.median(warm), 4), "max_s": round(max(warm), 4)},
        {"streams": 1, "progress_events_each": batches, "what": "one history (chart series)",
         "median_s": round(statistics.median(history), 3), "max_s": round(max(history), 3)},
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    return bench_main(argv, doc=__doc__, name="streams_page", title="Streams page: 50 queries, 100 events each",
                      run=lambda args: run(args.smoke),
                      notes="local disk, 8 reader threads; no broker (Kafka parts fail fast on a missing "
                            "connection); 2-core machine shared with other work")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
