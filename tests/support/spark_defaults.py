"""A cluster's ``spark-defaults.conf`` for a test's spark-submits, and the proof that it reached the driver.

``SPARK_CONF_DIR`` points spark-submit at a folder of the test's own whose ``spark-defaults.conf``
sets a marker and turns on Spark's event log. The driver's event log records the Spark
properties the driver runs with (its ``SparkListenerEnvironmentUpdate``): finding the marker
there shows that spark-submit read ``spark-defaults.conf`` beside the provider's properties file.
``spark.sql.shuffle.partitions`` is set there too, for tests whose job sets it: the job's value
must win (spark-submit's rule: ``--properties-file`` over ``spark-defaults.conf``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MARKER_KEY = "spark.airflow_spark_streaming.defaults_marker"
OVERRIDDEN_KEY = "spark.sql.shuffle.partitions"
OVERRIDDEN_DEFAULT = "7"


@dataclass(frozen=True)
class SparkDefaults:
    conf_dir: Path
    events: Path  # the drivers' event logs
    marker: str

    def driver_properties(self) -> list[dict[str, str]]:
        """The Spark properties of each driver that logged events here."""
        found = []
        # One file per application, or a folder of rolled files (eventlog_v2_<app id>/events_<n>_<app id>).
        for log in sorted(path for path in self.events.rglob("*") if path.is_file()):
            with open(log, encoding="utf-8", errors="replace") as events:
                for line in events:
                    if '"SparkListenerEnvironmentUpdate"' not in line:
                        continue
                    properties = json.loads(line)["Spark Properties"]  # an object, or a list of pairs
                    found.append(dict(properties) if isinstance(properties, list) else properties)
                    break
        return found

    def assert_reached_the_driver(self, job_settings: Mapping[str, str] | None = None) -> None:
        """A driver ran with the marker, and with ``job_settings`` (the job's own) over the defaults."""
        drivers = self.driver_properties()
        assert drivers, f"no driver wrote an event log into {self.events}: spark-defaults.conf did not reach it"
        seen = [p for p in drivers if p.get(MARKER_KEY) == self.marker]
        assert seen, f"no driver saw {MARKER_KEY} from spark-defaults.conf: {drivers}"
        for key, value in (job_settings or {}).items():
            assert seen[-1].get(key) == value, (
                f"the driver ran with {key}={seen[-1].get(key)!r}, not the job's {value!r}"
            )


def use_spark_defaults(tmp_path: Path, monkeypatch) -> SparkDefaults:
    """Point the test's spark-submits at a ``spark-defaults.conf`` of its own."""
    conf_dir, events = tmp_path / "spark-conf", tmp_path / "spark-events"
    conf_dir.mkdir()
    events.mkdir()
    marker = uuid.uuid4().hex
    (conf_dir / "spark-defaults.conf").write_text(
        f"{MARKER_KEY} {marker}\n"
        "spark.eventLog.enabled true\n"
        f"spark.eventLog.dir file://{events}\n"
        "spark.eventLog.compress false\n"
        f"{OVERRIDDEN_KEY} {OVERRIDDEN_DEFAULT}\n"
    )
    monkeypatch.setenv("SPARK_CONF_DIR", str(conf_dir))
    return SparkDefaults(conf_dir, events, marker)
