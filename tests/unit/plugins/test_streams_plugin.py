"""The Streams plugin's registration: once, through the entry point, with its app only in the API server."""

from __future__ import annotations

import json
import subprocess
import sys

from airflow_spark_streaming import get_provider_info as provider_info
from airflow_spark_streaming.plugins.streams.plugin import PLUGIN_NAME, StreamsPlugin, running_on_api_server

# Loads the plugins as the given component would, and prints what Airflow registered.
PROBE = """
import json, sys
sys.argv = ["airflow", sys.argv[1]]
from airflow import plugins_manager
plugins, errors = plugins_manager._get_plugins()
ours = [p for p in plugins if p.name == {name!r}]
apps, _ = plugins_manager.get_fastapi_plugins()
_, react = plugins_manager._get_ui_plugins()
print(json.dumps({{
    "ours": len(ours),
    "errors": {{k: v for k, v in errors.items() if "streams" in (k + v)}},
    "prefixes": [a["url_prefix"] for a in apps],
    "react": [r for r in react if r.get("url_route") == "streams"],
}}))
"""


def _probe(component: str, lazy: bool) -> dict:
    env_lazy = "True" if lazy else "False"
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(name=PLUGIN_NAME), component],
        capture_output=True, text=True, timeout=180, check=False,
        env={**__import__("os").environ, "AIRFLOW__CORE__LAZY_DISCOVER_PROVIDERS": env_lazy},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_api_server_registers_the_plugin_once_with_its_app_and_nav_page_even_without_lazy_discovery():
    for lazy in (True, False):
        found = _probe("api-server", lazy)
        assert found["ours"] == 1, found
        assert found["errors"] == {}, found  # no "already registered"
        assert found["prefixes"].count("/spark-streaming") == 1
        (page,) = found["react"]
        assert page["destination"] == "nav" and page["bundle_url"].endswith("/spark-streaming/static/streams.js")
        assert page["icon"].endswith(".svg")


def test_other_components_load_the_plugin_without_building_its_app():
    found = _probe("scheduler", lazy=False)
    assert found["ours"] == 1 and found["errors"] == {}
    assert "/spark-streaming" not in found["prefixes"] and found["react"] == []
    assert "fastapi_apps" not in StreamsPlugin.__dict__  # this test process is no API server either


def test_only_the_api_server_counts_as_the_api_server():
    assert running_on_api_server(["/venv/bin/airflow", "api-server", "--port", "8080"])
    assert not running_on_api_server(["/venv/bin/airflow", "scheduler"])
    assert not running_on_api_server(["/venv/bin/airflow", "tasks", "run", "api-server"])


def test_provider_info_lists_the_plugin_only_where_the_entry_point_is_missing(monkeypatch):
    assert provider_info._plugin_entry_point_installed()  # the editable install has it
    assert provider_info.get_provider_info()["plugins"] == []
    monkeypatch.setattr(provider_info, "_plugin_entry_point_installed", lambda: False)
    (plugin,) = provider_info.get_provider_info()["plugins"]
    module, _, name = plugin["plugin-class"].rpartition(".")
    assert getattr(__import__(module, fromlist=[name]), name) is StreamsPlugin


def test_importing_what_dags_import_does_not_import_the_plugin():
    code = (
        "import sys\n"
        "import airflow_spark_streaming.operators.streaming, airflow_spark_streaming.sensors.stream_health\n"
        "import airflow_spark_streaming.sensors.kafka_lag, airflow_spark_streaming.triggers.events\n"
        "print(sorted(m for m in sys.modules if 'plugins.streams' in m or m == 'fastapi'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
