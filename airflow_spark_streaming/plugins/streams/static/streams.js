/*
 * The Streams page of airflow-spark-streaming. Hand-written, no build step: the Airflow UI imports this file
 * (served after uPlot, in one module) and reads globalThis.AirflowPlugin, a function component. React and
 * Chakra UI are the host's (globalThis.React, globalThis.ChakraUI); nothing is fetched from elsewhere.
 */
(function () {
  "use strict";
  var React = globalThis.React;
  var h = React.createElement;
  var Chakra = globalThis.ChakraUI || {};
  var uPlotLib = typeof uPlot !== "undefined" ? uPlot : globalThis.uPlot;
  // The bundle is <prefix>/static/streams.js; the JSON is under <prefix>/api/.
  var here = typeof SCRIPT_URL !== "undefined" ? SCRIPT_URL : document.baseURI;
  var API = new URL("../api/", here).href;
  var CSS = new URL("uPlot.min.css", here).href;
  var REFRESH_MS = 15000;
  var STATUS_COLORS = { OK: "green", LAGGING: "orange", STALLED: "red", STOPPED: "gray", REWOUND: "purple" };
  var PHASES = ["addBatch", "getBatch", "latestOffset", "queryPlanning", "walCommit", "commitOffsets"];
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

  if (!document.querySelector('link[data-streams-css]')) {
    var link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = CSS;
    link.setAttribute("data-streams-css", "1");
    document.head.appendChild(link);
  }

  function el(name, fallback) {
    return Chakra[name] || fallback;
  }
  var Box = el("Box", "div");
  var Heading = el("Heading", "h2");
  var Text = el("Text", "p");
  var Badge = el("Badge", "span");

  function getJson(path) {
    return fetch(API + path, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(
      function (response) {
        if (!response.ok) {
          throw new Error(response.status + " " + response.statusText);
        }
        return response.json();
      }
    );
  }

  function usePolling(path) {
    var state = React.useState({ data: null, error: null });
    var set = state[1];
    React.useEffect(
      function () {
        var live = true;
        function load() {
          getJson(path).then(
            function (data) { if (live) set({ data: data, error: null }); },
            function (error) { if (live) set(function (old) { return { data: old.data, error: String(error) }; }); }
          );
        }
        load();
        var timer = setInterval(load, REFRESH_MS);
        return function () { live = false; clearInterval(timer); };
      },
      [path]
    );
    return state[0];
  }

  function number(value, digits) {
    if (value === null || value === undefined) return "–";
    var d = digits === undefined ? 0 : digits;
    return Number(value).toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: 0 });
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    var s = Math.abs(seconds);
    if (s < 120) return number(seconds, 1) + " s";
    if (s < 7200) return number(seconds / 60, 1) + " min";
    if (s < 172800) return number(seconds / 3600, 1) + " h";
    return number(seconds / 86400, 1) + " d";
  }

  function percent(share) {
    return share === null || share === undefined ? "–" : number(share * 100, 1) + " %";
  }

  function Field(props) {
    return h(
      "div",
      { "data-field": props.name, style: { display: "flex", justifyContent: "space-between", gap: "12px" } },
      h("span", { style: { opacity: 0.7 } }, props.label),
      h("span", { "data-value": "", style: { fontVariantNumeric: "tabular-nums", textAlign: "right" } }, props.value)
    );
  }

  function StatusBadge(props) {
    var status = props.status || (props.unresolved ? "UNRESOLVED" : "UNKNOWN");
    return h(Badge, { colorPalette: STATUS_COLORS[status] || "gray", "data-field": "status", title: props.reason || "" },
      status);
  }

  function cardFields(card) {
    var last = card.last_batch || {};
    var lag = card.lag || {};
    var sink = card.sink || {};
    return [
      h(Field, { key: "batch", name: "batch", label: "last committed batch", value: number(card.latest_committed_batch) }),
      h(Field, { key: "age", name: "commit-age", label: "last commit", value: card.last_commit_age_seconds == null ? "–" : duration(card.last_commit_age_seconds) + " ago" }),
      h(Field, { key: "rows", name: "rows", label: "rows in last batch", value: number(last.input_rows) }),
      h(Field, { key: "rate", name: "rate", label: "input / processed rows/s", value: number(last.input_rows_per_second, 1) + " / " + number(last.processed_rows_per_second, 1) }),
      h(Field, { key: "lease", name: "lease", label: "lease holder", value: card.lease ? (card.lease.holder || card.lease.host || "held") : "none" }),
      h(Field, { key: "lag", name: "lag", label: "total lag (records)", value: number(lag.total) }),
      h(Field, { key: "timelag", name: "time-lag", label: "time lag", value: duration(lag.time_lag_seconds) }),
      h(Field, { key: "headroom", name: "headroom", label: "retention headroom", value: lag.total === 0 ? "nothing unread" : duration(lag.retention_headroom_seconds) }),
      h(Field, { key: "sink", name: "sink", label: "sink table", value: card.sink_table || "–" }),
      h(Field, { key: "small", name: "small-files", label: "small files", value: card.sink ? number(sink.small_files) + " of " + number(sink.files) + " (" + percent(sink.small_file_share) + ")" : "–" }),
    ].concat((sink.readers || []).map(function (reader) {
      var behind = reader.lag_versions ? number(reader.lag_versions) + " versions, " + duration(reader.lag_seconds) + " behind" : "caught up";
      return h(Field, { key: "reader-" + reader.stream_id, name: "table-reader", label: "read by " + (reader.query_name || reader.stream_id), value: behind });
    }));
  }

  function Card(props) {
    var card = props.card;
    var title = card.query_name || card.checkpoint || "unresolved location";
    return h(
      Box,
      {
        "data-testid": "stream-card",
        "data-stream-id": card.stream_id,
        borderWidth: "1px",
        borderRadius: "md",
        p: 4,
        style: { cursor: card.unresolved ? "default" : "pointer", minWidth: "320px", flex: "1 1 360px", maxWidth: "520px" },
        onClick: card.unresolved ? undefined : function () { props.onOpen(card.stream_id); },
      },
      h("div", { style: { display: "flex", justifyContent: "space-between", alignItems: "center", gap: "8px" } },
        h(Heading, { size: "md", as: "h3", "data-field": "title" }, title),
        h(StatusBadge, card)),
      h(Text, { fontSize: "sm", "data-field": "reason", style: { margin: "6px 0" } }, card.reason || ""),
      card.unresolved
        ? h(Text, { fontSize: "sm", "data-field": "template" }, "unresolved: " + (card.template || ""))
        : h(Text, { fontSize: "xs", style: { opacity: 0.7, wordBreak: "break-all" } }, card.checkpoint),
      card.unresolved ? null : h("div", { style: { marginTop: "8px", fontSize: "0.9em" } }, cardFields(card)),
      h(Text, { fontSize: "xs", style: { opacity: 0.7, marginTop: "8px" } },
        (card.tasks || []).map(function (t) { return t.dag_id + "." + t.task_id; }).join(", ")),
      (card.errors || []).length
        ? h(Text, { fontSize: "xs", color: "red.500", "data-field": "errors" },
            card.errors.map(function (e) { return e.part + ": " + e.message; }).join("; "))
        : null
    );
  }

  function Chart(props) {
    var ref = React.useRef(null);
    var series = props.series;
    React.useEffect(
      function () {
        if (!ref.current || !uPlotLib || !series) return undefined;
        var opts = {
          title: props.title,
          width: Math.max(ref.current.clientWidth || 600, 320),
          height: 220,
          scales: props.scales || { x: { time: true } },
          axes: props.axes || [{}, { size: 70 }],
          series: [{ label: "time" }].concat(
            props.lines.map(function (line, i) {
              return { label: line.label, stroke: PALETTE[i % PALETTE.length], width: 2, scale: line.scale || "y", spanGaps: true };
            })
          ),
        };
        var data = [series.time].concat(props.lines.map(function (line) { return series[line.key] || []; }));
        var plot = new uPlotLib(opts, data, ref.current);
        return function () { plot.destroy(); };
      },
      [series]
    );
    return h("div", { ref: ref, "data-testid": "chart", "data-chart": props.name, style: { margin: "12px 0" } });
  }

  function BatchTable(props) {
    var cell = { padding: "4px 8px", borderBottom: "1px solid rgba(128,128,128,0.3)", textAlign: "right" };
    var head = ["batch", "time", "input rows", "input rows/s", "processed rows/s", "duration ms"].concat(PHASES);
    return h("table", { "data-testid": "batch-table", style: { borderCollapse: "collapse", fontSize: "0.85em", width: "100%" } },
      h("thead", null, h("tr", null, head.map(function (name) { return h("th", { key: name, style: cell }, name); }))),
      h("tbody", null, props.rows.map(function (row) {
        return h("tr", { key: row.batch_id, "data-batch-id": row.batch_id },
          h("td", { style: cell }, row.batch_id),
          h("td", { style: cell }, row.time ? new Date(row.time * 1000).toLocaleTimeString() : "–"),
          h("td", { style: cell }, number(row.input_rows)),
          h("td", { style: cell }, number(row.input_rows_per_second, 1)),
          h("td", { style: cell }, number(row.processed_rows_per_second, 1)),
          h("td", { style: cell }, number(row.duration_ms)),
          PHASES.map(function (phase) { return h("td", { key: phase, style: cell }, number(row.phases_ms[phase])); }));
      })));
  }

  function Detail(props) {
    var card = usePolling("streams/" + props.streamId);
    var history = usePolling("streams/" + props.streamId + "/history");
    var data = history.data;
    var series = data ? data.series : null;
    var partitions = data ? data.partitions : [];
    return h(Box, { p: 4, "data-testid": "stream-detail" },
      h("button", { onClick: props.onBack, style: { marginBottom: "12px", textDecoration: "underline" } }, "← all streams"),
      card.data ? h(Card, { card: card.data, onOpen: function () {} }) : h(Text, null, card.error || "Loading…"),
      data && data.batches === 0 ? h(Text, { "data-field": "no-events" }, "No progress events retained for this query.") : null,
      series && data.batches > 0 ? [
        h(Chart, { key: "rows", name: "rows", title: "Input and processed rows/s", series: series, lines: [
          { key: "input_rows_per_second", label: "input rows/s" }, { key: "processed_rows_per_second", label: "processed rows/s" }] }),
        h(Chart, { key: "phases", name: "phases", title: "Batch duration by phase (ms)", series: series,
          lines: PHASES.map(function (p) { return { key: "phase_" + p, label: p }; }) }),
        partitions.length ? h(Chart, { key: "lag", name: "lag", title: "Lag per partition (records, when each batch was planned)", series: series,
          lines: partitions.map(function (p) { return { key: "lag " + p, label: p }; }) }) : null,
        data.stateful ? h(Chart, { key: "state", name: "state", title: "State rows and memory", series: series,
          scales: { x: { time: true }, rows: {}, bytes: {} },
          axes: [{}, { scale: "rows", size: 70 }, { scale: "bytes", side: 1, size: 80, grid: { show: false } }],
          lines: [{ key: "state_rows", label: "state rows", scale: "rows" }, { key: "state_memory_bytes", label: "state memory (bytes)", scale: "bytes" }] }) : null,
        h(Heading, { key: "t", size: "sm", as: "h4", style: { marginTop: "12px" } }, "Last batches"),
        h(BatchTable, { key: "table", rows: data.last_batches }),
      ] : null,
      history.error ? h(Text, { color: "red.500" }, history.error) : null);
  }

  function StreamsPage() {
    var initial = (window.location.hash || "").replace(/^#/, "");
    var selected = React.useState(initial || null);
    var open = function (id) { window.location.hash = id || ""; selected[1](id); };
    var list = usePolling("streams");
    if (selected[0]) {
      return h(Detail, { streamId: selected[0], onBack: function () { open(null); } });
    }
    var streams = list.data ? list.data.streams : null;
    return h(Box, { p: 4, "data-testid": "streams-page" },
      h(Heading, { size: "lg", as: "h2", style: { marginBottom: "12px" } }, "Streams"),
      list.error ? h(Text, { color: "red.500", "data-field": "error" }, list.error) : null,
      streams === null ? h(Text, null, "Loading…")
        : streams.length === 0 ? h(Text, { "data-field": "empty" }, "No deployed DAG names a streaming query you may read.")
        : h("div", { style: { display: "flex", flexWrap: "wrap", gap: "16px" } },
            streams.map(function (card) { return h(Card, { key: card.stream_id, card: card, onOpen: open }); })));
  }

  globalThis.AirflowPlugin = StreamsPage;
})();
