"""The Streams page through the real deployment: its JSON from the real API server, then the page in Chromium.

The queries are those the deployed DAGs name (the example DAGs and ``dags/``), found by the plugin in the
deployment's metadata database. The orders checkpoint is the real one ``test_live_orders_stream`` ran
(progress events, offsets, commits, the ``orders`` Delta table) when that module ran first in the session;
run alone, this module writes a checkpoint in the same formats over a real topic (no Spark start-up). Every
number the page shows is compared with the lake and the broker, read here without the provider.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.deployment import create_topic, produce_orders
from tests.support.stream_checkpoints import write_kafka_checkpoint

pytestmark = pytest.mark.kafka

PREFIX = "/spark-streaming"
#: Where the browser test also saves its screenshots (the docs' images) when set.
SCREENSHOTS_ENV = "STREAMS_PAGE_SCREENSHOTS"


def _get(base: str, path: str, token: str | None = None) -> tuple[int, str, str]:
    request = urllib.request.Request(base + path)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers.get("content-type", ""), response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("content-type", ""), err.read().decode()


def _batches(folder: Path) -> list[int]:
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []


@pytest.fixture(scope="module")
def orders_checkpoint(lake, kafka_broker) -> dict:
    """The orders checkpoint the deployment's DAGs name: the live stream's, or one written now over a real topic."""
    checkpoint = lake / "_checkpoints" / "orders"
    if not _batches(checkpoint / "commits"):
        topic = create_topic(kafka_broker.bootstrap_servers, partitions=2, prefix="orders")
        produce_orders(kafka_broker.bootstrap_servers, topic, 0, 200)
        # 10+…+17 = 108 of the 200 read, the last commit two hours ago: a stopped query with lag
        write_kafka_checkpoint(checkpoint, batches=8, topic=topic, partitions=2, start=time.time() - 7200)
    table = lake / "orders"
    if not (table / "_delta_log").is_dir():  # the sink the spec names: three appends, three small files
        import pyarrow
        from deltalake import write_deltalake

        for start in (0, 10, 20):
            write_deltalake(str(table), pyarrow.table({"order_id": [f"order-{i}" for i in range(start, start + 10)]}),
                            mode="append")  # fmt: skip
    last = _batches(checkpoint / "commits")[-1]
    event = json.loads((checkpoint / "_progress" / f"{last}.json").read_text())
    ends = {}
    for line in (checkpoint / "offsets" / str(last)).read_text().splitlines()[2:]:
        for topic, parts in json.loads(line).items():
            ends.update({(topic, int(p)): o for p, o in parts.items()})
    return {"path": checkpoint, "last": last, "event": event, "ends": ends, "table": table}


def _broker_lag(bootstrap: str, ends: dict) -> int:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "streams-page-test"})
    try:
        total = 0
        for (topic, partition), end in ends.items():
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
            total += max(high - end, 0)
        return total
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def streams(airflow_deployment, airflow_api, orders_checkpoint) -> list[dict]:
    status, kind, body = _get(airflow_deployment.api_url, f"{PREFIX}/api/streams", airflow_api.token())
    assert status == 200, body[:2000]
    assert kind.startswith("application/json")
    return json.loads(body)["streams"]


def _orders_card(streams: list[dict], checkpoint: Path) -> dict:
    (card,) = [s for s in streams if s["checkpoint"] == str(checkpoint)]
    return card


def test_the_page_lists_every_query_the_deployed_dags_name(streams, orders_checkpoint):
    card = _orders_card(streams, orders_checkpoint["path"])
    named = {(t["dag_id"], t["task_id"]) for t in card["tasks"]}
    assert {("orders_stream_start", "start_stream"), ("orders_stream_stop", "stop_stream"),
            ("deferred_sensors", "caught_up"), ("deferred_sensors", "stream_stopped"),
            ("on_orders_batch", "asset watcher orders_commits")} <= named  # fmt: skip
    assert card["query_name"] == "orders_live" and card["sink_table"].endswith("/orders")
    # Templated through XCom and never run here: shown with the template, read nowhere.
    incremental = [s for s in streams if any(t["dag_id"] == "kafka_to_delta_incremental" for t in s["tasks"])]
    assert incremental and all(s["unresolved"] and "xcom_pull" in s["template"] for s in incremental)
    supervisor = [s for s in streams if any(t["dag_id"] == "streaming_supervisor" for t in s["tasks"])]
    # Resolved for its latest run when test_streaming_supervisor ran it first; unresolved otherwise.
    assert supervisor and all(s["unresolved"] or s["checkpoint"].endswith("_live") for s in supervisor)


def test_the_orders_card_shows_the_checkpoints_and_the_brokers_numbers(streams, orders_checkpoint, kafka_broker):
    card = _orders_card(streams, orders_checkpoint["path"])
    event, last = orders_checkpoint["event"], orders_checkpoint["last"]
    assert card["errors"] == [], card["errors"]
    assert card["latest_committed_batch"] == last
    assert card["last_batch"]["batch_id"] == last and card["last_batch"]["input_rows"] == event["numInputRows"]
    assert card["last_batch"]["processed_rows_per_second"] == pytest.approx(event["processedRowsPerSecond"])
    assert card["lease"] is None and card["reason"]
    assert card["status"] == _expected_status(card)
    assert card["lag"]["total"] == _broker_lag(kafka_broker.bootstrap_servers, orders_checkpoint["ends"])
    # The broker's retention.ms against the oldest unread record; a caught-up query has nothing unread to lose.
    headroom = card["lag"]["retention_headroom_seconds"]
    assert headroom is not None if card["lag"]["total"] > 0 else headroom is None
    assert card["last_commit_age_seconds"] > 0
    from deltalake import DeltaTable

    files = DeltaTable(str(orders_checkpoint["table"])).file_uris()
    assert card["sink"]["files"] == len(files) > 0
    small = [f for f in files if Path(f.removeprefix("file://")).stat().st_size < card["sink"]["small_file_bytes"]]
    assert card["sink"]["small_files"] == len(small)


def _expected_status(card: dict) -> str:
    """No lease: ``STOPPED`` once the last commit is older than the health allowance (30 s for this stream); a
    stream the live-orders test stopped moments ago still judges ``OK`` until then."""
    return (
        "STOPPED" if card["last_commit_age_seconds"] > 120 else card["status"] if card["status"] == "OK" else "STOPPED"
    )


def test_the_history_holds_every_retained_progress_event(airflow_deployment, airflow_api, streams, orders_checkpoint):
    card = _orders_card(streams, orders_checkpoint["path"])
    status, _, body = _get(airflow_deployment.api_url, f"{PREFIX}/api/streams/{card['stream_id']}/history",
                           airflow_api.token())  # fmt: skip
    assert status == 200, body[:2000]
    history = json.loads(body)
    on_disk = _batches_in_progress(orders_checkpoint["path"])
    assert history["series"]["batch_id"] == on_disk
    assert history["last_batches"][0]["batch_id"] == orders_checkpoint["last"]
    assert len(history["partitions"]) == 2


def _batches_in_progress(checkpoint: Path) -> list[int]:
    return sorted(int(p.name.removesuffix(".json")) for p in (checkpoint / "_progress").glob("*.json"))


def test_without_a_token_every_endpoint_answers_401_and_no_answer_holds_a_secret(airflow_deployment, airflow_api,
                                                                                streams):  # fmt: skip
    base = airflow_deployment.api_url
    some = streams[0]["stream_id"]
    paths = [f"{PREFIX}/api/streams", f"{PREFIX}/api/streams/{some}", f"{PREFIX}/api/streams/{some}/history",
             f"{PREFIX}/static/streams.js"]  # fmt: skip
    for path in paths:
        assert _get(base, path)[0] == 401, path
    env = airflow_deployment.env()
    control = json.loads(env["AIRFLOW_CONN_SPARK_STREAMING_CONTROL_DEFAULT"])["password"]
    secrets = [control, airflow_deployment.password, env["AIRFLOW__CORE__FERNET_KEY"],
               env["AIRFLOW__API__SECRET_KEY"], env["AIRFLOW__API_AUTH__JWT_SECRET"]]  # fmt: skip
    token = airflow_api.token()
    bodies = [_get(base, p, token)[2] for p in paths[:3]]
    bodies += [_get(base, f"{PREFIX}/api/streams/{s['stream_id']}", token)[2] for s in streams]
    for body in bodies:
        for secret in secrets:
            assert secret not in body


def test_the_bundle_is_served_as_javascript(airflow_deployment, airflow_api):
    status, kind, body = _get(airflow_deployment.api_url, f"{PREFIX}/static/streams.js", airflow_api.token())
    assert status == 200 and kind.startswith("text/javascript")
    assert "globalThis.AirflowPlugin" in body
    status, _, body = _get(airflow_deployment.api_url, "/api/v2/plugins", airflow_api.token())
    (plugin,) = [p for p in json.loads(body)["plugins"] if p["name"] == "spark_streaming_streams"]
    (page,) = plugin["react_apps"]
    assert page["destination"] == "nav" and page["url_route"] == "streams" and page["icon"]


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-dev-shm-usage"]  # fmt: skip


@pytest.mark.browser
def test_the_page_in_chromium_shows_the_cards_and_charts_with_data(airflow_deployment, airflow_api, streams,
                                                                   orders_checkpoint, tmp_path):  # fmt: skip
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "no chromium on the PATH: ./dev installs Debian's chromium package (apt-get install chromium)"
    card = _orders_card(streams, orders_checkpoint["path"])
    shots = [tmp_path]
    if os.environ.get(SCREENSHOTS_ENV):
        shots.append(Path(os.environ[SCREENSHOTS_ENV]))
    base = airflow_deployment.api_url
    with sync_playwright() as playwright:
        # Playwright gives the browser a fresh profile of its own.
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            # Logged in as the UI logs in: the token in the _token cookie.
            context.add_cookies([{"name": "_token", "value": airflow_api.token(), "url": base}])
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(f"{base}/plugin/streams", wait_until="domcontentloaded", timeout=120_000)
            orders = page.locator(f'[data-testid="stream-card"][data-stream-id="{card["stream_id"]}"]')
            orders.wait_for(timeout=120_000)
            assert page.locator('[data-testid="stream-card"]').count() == len(streams)
            field = lambda name: orders.locator(f'[data-field="{name}"] [data-value]').inner_text()  # noqa: E731
            assert orders.locator('[data-field="status"]').first.inner_text() == _expected_status(card)
            assert field("batch") == f"{orders_checkpoint['last']:,}"
            assert field("rows") == f"{orders_checkpoint['event']['numInputRows']:,}"
            assert field("lag") == f"{card['lag']['total']:,}"
            assert field("lease") == "none"
            _elide_temporary_paths(page)
            for folder in shots:
                page.screenshot(path=str(folder / "streams-page.png"), full_page=True)

            orders.click()
            page.locator('[data-testid="batch-table"] tbody tr').first.wait_for(timeout=60_000)
            page.locator('[data-chart="lag"] canvas').first.wait_for(timeout=60_000)
            assert page.locator('[data-testid="batch-table"] tbody tr').first.get_attribute("data-batch-id") == str(
                orders_checkpoint["last"]
            )
            charts = {name: _painted_pixels(page, name) for name in ("rows", "phases", "lag")}
            assert all(count > 200 for count in charts.values()), charts  # lines drawn, not just axes
            _elide_temporary_paths(page)
            for folder in shots:
                page.screenshot(path=str(folder / "streams-page-detail.png"), full_page=True)
            assert errors == []
        finally:
            browser.close()


def _elide_temporary_paths(page) -> None:
    """Shorten the test's temporary lake folder to ``…/lake`` in the page's text, after the assertions, so the
    screenshots (which the docs publish) show where a query lives without this machine's temporary paths."""
    page.evaluate(
        """() => {
            const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                node.nodeValue = node.nodeValue.replace(/\\/tmp\\/\\S*?\\/lake\\b/g, "…/lake");
            }
        }"""
    )


def _painted_pixels(page, chart: str) -> int:
    """Pixels of the series' colours in a chart's canvas (axes and grid are grey)."""
    return page.evaluate(
        """(chart) => {
            const canvas = document.querySelector(`[data-chart="${chart}"] canvas`);
            const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            let coloured = 0;
            for (let i = 0; i < data.length; i += 4) {
                const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
                if (a > 0 && (Math.max(r, g, b) - Math.min(r, g, b)) > 60) coloured++;
            }
            return coloured;
        }""",
        chart,
    )
