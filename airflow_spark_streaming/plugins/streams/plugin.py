"""The Streams page plugin, registered through the ``airflow.plugins`` entry point.

Airflow loads plugins in every component (scheduler, workers, triggerer, DAG processor); only the API
server serves pages, so the FastAPI app is built only there, and this module stays light to import.
"""

from __future__ import annotations

import sys

from airflow.plugins_manager import AirflowPlugin

PLUGIN_NAME = "spark_streaming_streams"
URL_PREFIX = "/spark-streaming"  # the app's (app.URL_PREFIX, repeated here so this module does not import it)


def running_on_api_server(argv: list[str] | None = None) -> bool:
    """Whether this process is ``airflow api-server`` (the only one that mounts plugin apps)."""
    argv = sys.argv if argv is None else argv
    return len(argv) > 1 and argv[1] == "api-server"


def _base_path() -> str:
    """The path part of ``[api] base_url``: the UI fetches the bundle and icons under it."""
    from urllib.parse import urlsplit

    from airflow.configuration import conf

    base_url = conf.get("api", "base_url", fallback="/") or "/"
    path = urlsplit(base_url).path if "://" in base_url else base_url
    return path.rstrip("/")


def build_react_apps() -> list[dict[str, str]]:
    base = _base_path() + URL_PREFIX
    return [
        {
            "name": "Streams",
            "bundle_url": f"{base}/static/streams.js",
            "destination": "nav",
            "url_route": "streams",
            "icon": f"{base}/static/icon.svg",
            "icon_dark_mode": f"{base}/static/icon-dark.svg",
            "category": "browse",
        }
    ]


def build_fastapi_apps() -> list[dict]:
    from airflow_spark_streaming.plugins.streams.app import create_app

    return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Spark Structured Streaming: Streams"}]


class StreamsPlugin(AirflowPlugin):
    """The "Streams" page in Airflow's UI: every query the deployed DAGs name, its status, lag and charts."""

    name = PLUGIN_NAME
    if running_on_api_server():
        fastapi_apps = build_fastapi_apps()
        react_apps = build_react_apps()
