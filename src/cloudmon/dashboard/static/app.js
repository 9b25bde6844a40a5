// The dashboard: a router over the URL's hash (#/view/...?range=&q=&sort=), the range
// picker, auto-refresh, and the views.

import { ApiError, Unreachable, get, setToken, timeParams } from "./api.js";
import { rangeChart } from "./charts.js";
import { columnFormatter, duration, formatter, time } from "./format.js";
import { dataTable } from "./table.js";

const REFRESH_MS = 10_000;
const SPARK_POINTS = 30;
const SKEW_WARNING_S = 2; // a node's clock this far from the server's is shown on its page
const PRESETS = ["15m", "1h", "6h", "24h", "7d"];
const enc = encodeURIComponent;

const view = document.getElementById("view");
const status = document.getElementById("status");
const rangeSelect = document.getElementById("range");
const custom = document.getElementById("custom");
const fromInput = document.getElementById("from");
const toInput = document.getElementById("to");
const pauseButton = document.getElementById("pause");
const updated = document.getElementById("updated");

let catalogue = {};
let current = null; // {refresh(), route}
let paused = false;
let busy = null; // the route whose refresh is running

// ---- the URL ----

function parseHash() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const parts = (path || "/").split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(query || "") };
}

function rangeOf(params) {
  const preset = params.get("range") || "1h";
  const from = Number(params.get("from"));
  const to = Number(params.get("to"));
  if (preset === "custom" && from > 0 && to > from) return { from, to };
  return { preset: PRESETS.includes(preset) ? preset : "1h" };
}

function rangeQuery(range) {
  return range.preset ? { range: range.preset } : { range: "custom", from: range.from, to: range.to };
}

// A link to a view keeping the current range.
function link(path, extra = {}) {
  const { params } = parseHash();
  const query = new URLSearchParams({ ...rangeQuery(rangeOf(params)), ...extra });
  return `#${path}?${query}`;
}

// Records table state (sort, filter) in the URL without a history entry.
function remember(changes) {
  const { parts, params } = parseHash();
  for (const [key, value] of Object.entries(changes)) {
    if (value) params.set(key, value);
    else params.delete(key);
  }
  history.replaceState(null, "", `#/${parts.map(enc).join("/")}?${params}`);
}

// ---- status and refresh ----

function showStatus(kind, message) {
  status.className = kind ? `banner ${kind}` : "";
  status.replaceChildren();
  if (message) status.append(message);
}

function tokenForm(message) {
  const form = document.createElement("form");
  form.className = "token";
  const text = document.createElement("span");
  text.textContent = `${message} — the server needs a read token: `;
  const input = document.createElement("input");
  input.type = "password";
  input.setAttribute("aria-label", "Read token");
  const button = document.createElement("button");
  button.textContent = "Use token";
  form.append(text, input, button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setToken(input.value.trim());
    refresh();
  });
  return form;
}

function reportError(error) {
  if (error instanceof Unreachable) {
    showStatus("error", `Cannot reach the cloudmon server at ${location.origin}: ${error.message}. Retrying every 10 s.`);
  } else if (error instanceof ApiError && error.status === 401) {
    showStatus("error", tokenForm(error.message));
  } else if (error instanceof ApiError && error.status === 404) {
    showStatus("error", `Not found: ${error.message}.`);
  } else {
    showStatus("error", `Error: ${error.message}`);
    console.warn(error);
  }
}

async function refresh() {
  if (!current || busy === current) return;
  const route = current;
  busy = route;
  try {
    await route.refresh();
    if (route === current) {
      if (status.classList.contains("error")) showStatus(null, "");
      updated.textContent = `Updated ${new Date().toLocaleTimeString()} · ${paused ? "auto-refresh paused" : "refreshing every 10 s"}`;
    }
  } catch (error) {
    if (route === current) reportError(error);
  } finally {
    if (busy === route) busy = null;
  }
}

setInterval(() => {
  if (!paused && document.visibilityState === "visible") refresh();
}, REFRESH_MS);

pauseButton.addEventListener("click", () => {
  paused = !paused;
  pauseButton.textContent = paused ? "Resume" : "Pause";
  pauseButton.setAttribute("aria-pressed", String(paused));
  updated.textContent = paused ? "Auto-refresh paused" : "Auto-refresh every 10 s";
});
document.getElementById("refresh").addEventListener("click", refresh);
// The skip link's own #view would be taken for a route.
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  view.focus();
});

// ---- range picker ----

function localInput(seconds) {
  const date = new Date(seconds * 1000);
  return new Date(date.getTime() - date.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}

function showRange(range) {
  rangeSelect.value = range.preset || "custom";
  custom.hidden = Boolean(range.preset);
  const to = range.to || Math.floor(Date.now() / 1000);
  const from = range.from || to - 3600;
  fromInput.value = localInput(from);
  toInput.value = localInput(to);
}

function setRange(query) {
  const { parts, params } = parseHash();
  for (const key of ["range", "from", "to"]) params.delete(key);
  for (const [key, value] of Object.entries(query)) params.set(key, value);
  location.hash = `#/${parts.map(enc).join("/")}?${params}`;
}

rangeSelect.addEventListener("change", () => {
  if (rangeSelect.value === "custom") {
    custom.hidden = false;
    fromInput.focus();
  } else {
    setRange({ range: rangeSelect.value });
  }
});
document.getElementById("apply").addEventListener("click", () => {
  const from = Math.floor(new Date(fromInput.value).getTime() / 1000);
  const to = Math.floor(new Date(toInput.value).getTime() / 1000);
  if (from > 0 && to > from) setRange({ range: "custom", from, to });
  else showStatus("error", "Custom range: give a start before its end.");
});

// ---- building blocks ----

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function heading(title, crumbs = []) {
  const nav = el("nav", { class: "crumbs", "aria-label": "Breadcrumb" });
  for (const [text, href] of crumbs) nav.append(el("a", { href, text }), " › ");
  const h1 = el("h1", { tabindex: "-1", text: title });
  view.append(nav, h1);
  return h1;
}

function section(title) {
  const node = el("section", { "aria-label": title }, el("h2", { text: title }));
  view.append(node);
  return node;
}

// Cards of current values: [[title, metric name]]; update(metrics) fills them.
function cards(parent, items) {
  const holder = el("div", { class: "cards" });
  parent.append(holder);
  const values = items.map(([title, name]) => {
    const value = el("span", { class: "value", text: "—" });
    const help = catalogue[name] ? catalogue[name].help : title;
    holder.append(el("div", { class: "card", "data-metric": name, title: help }, el("span", { class: "title", text: title }), value));
    return [name, value];
  });
  return (metrics) => {
    for (const [name, value] of values) {
      const v = metrics[name];
      value.textContent = formatter(catalogue[name] ? catalogue[name].unit : "")(v);
      if (v !== null && v !== undefined) value.dataset.value = String(v);
    }
  };
}

// Range charts: [[title, [metric names]]]; update(series) fills them all.
function charts(parent, groups) {
  const grid = el("div", { class: "charts" });
  parent.append(grid);
  const made = groups.map(([title, names]) => rangeChart(grid, title, names, catalogue));
  return (series) => {
    for (const chart of made) chart.update(series);
  };
}

function metricColumn(id, title, { spark = false, wide = false, notPhone = false, wideTrend = wide } = {}) {
  const unit = catalogue[id].unit;
  const column = {
    id,
    title,
    help: `${catalogue[id].help} (${unit || "count"})`,
    numeric: true,
    wide,
    notPhone,
    value: (row) => row.metrics[id],
    unit,
  };
  if (!spark) return column;
  return [
    column,
    { id: `${id}-trend`, title: `${title} trend`, wide: wideTrend, spark: (row) => (row.series ? row.series[id] : []) },
  ];
}

function table(parent, name, columns) {
  const { params } = parseHash();
  return dataTable(parent, {
    name,
    columns: columns.flat(),
    sort: params.get("sort"),
    filter: params.get("q"),
    onState: remember,
  });
}

// A column of names linking to their pages; a row without that name ("—") has no link.
function nameColumn(id, title, href, { wide = false, notPhone = false } = {}) {
  const value = (row) => row[id];
  return { id, title, value, href: (row) => value(row) !== null && href(row), filterable: true, wide, notPhone };
}

// A pod the agent had no metadata for has only its UID: the dashboard shows its start and
// reaches it through its node, as the API names pods by namespace and name.
const podLabel = (p) => p.name ?? `uid ${p.uid.slice(0, 8)}`;
const podHref = (p) =>
  p.name === null ? link(`/nodes/${enc(p.node)}/pods/${enc(p.uid)}`) : link(`/pods/${enc(p.namespace)}/${enc(p.name)}`);
const nodeHref = (n) => link(`/nodes/${enc(n.node)}`);
const namespaceHref = (n) => link(`/namespaces/${enc(n.namespace)}`);
const deploymentHref = (d) => d.name && link(`/deployments/${enc(d.namespace)}/${enc(d.name)}`);
const podDeploymentHref = (p) => p.deployment && link(`/deployments/${enc(p.namespace)}/${enc(p.deployment)}`);

// The pods' columns but those the page already fixes (a node's pods all have that node).
function podColumns(fixed = []) {
  return [
    { id: "name", title: "Pod", value: (p) => p.name ?? p.uid, label: podLabel, href: podHref, filterable: true },
    nameColumn("namespace", "Namespace", namespaceHref, { notPhone: true }),
    nameColumn("node", "Node", nodeHref, { wide: true }),
    nameColumn("deployment", "Deployment", podDeploymentHref, { wide: true }),
    metricColumn("cpu_cores", "CPU", { spark: true }),
    metricColumn("memory_working_set_bytes", "Memory", { spark: true, notPhone: true, wideTrend: true }),
  ].filter((column) => !fixed.includes(column.id));
}

const POD_METRICS = "cpu_cores,memory_working_set_bytes";
const GROUP_METRICS = "cpu_cores,cpu_request_cores,memory_working_set_bytes,memory_request_bytes,pod_count,network_rx_bps,network_tx_bps";

function groupColumns() {
  return [
    metricColumn("pod_count", "Pods"),
    metricColumn("cpu_cores", "CPU", { spark: true }),
    metricColumn("cpu_request_cores", "CPU requests", { wide: true }),
    metricColumn("memory_working_set_bytes", "Memory", { spark: true, notPhone: true, wideTrend: true }),
    metricColumn("memory_request_bytes", "Memory requests", { wide: true }),
    metricColumn("network_rx_bps", "Net in", { wide: true }),
    metricColumn("network_tx_bps", "Net out", { wide: true }),
  ];
}

function listParams(range, metrics, extra = {}) {
  return { ...timeParams(range, SPARK_POINTS), metrics, ...extra };
}

// A table of a list endpoint; refresh() loads it.
function listTable(parent, name, path, columns, range, metrics, extra = {}) {
  const grid = table(parent, name, columns);
  return async () => grid.setRows((await get(path, listParams(range, metrics, extra))).items);
}

// A table of the pods that reported in the range, but for the columns in `fixed`.
function podTable(parent, path, range, fixed, extra = {}) {
  return listTable(parent, "pods", path, podColumns(fixed), range, POD_METRICS, extra);
}

const WORKLOAD_CHARTS = [
  ["CPU", ["cpu_cores", "cpu_request_cores", "cpu_limit_cores"]],
  ["Memory", ["memory_working_set_bytes", "memory_request_bytes", "memory_limit_bytes"]],
  ["Disk", ["disk_read_bps", "disk_write_bps"]],
  ["Network", ["network_rx_bps", "network_tx_bps"]],
];
const WORKLOAD_CARDS = [
  ["CPU used", "cpu_cores"],
  ["CPU requests", "cpu_request_cores"],
  ["Working set", "memory_working_set_bytes"],
  ["Memory requests", "memory_request_bytes"],
];
// Where a pod is in trouble: throttled, stalled (PSI), OOM killed, restarted.
const TROUBLE_CARDS = [
  ["Throttled", "cpu_throttled_percent"],
  ["Stalled on CPU", "cpu_pressure_some_ratio"],
  ["Stalled on memory", "memory_pressure_some_ratio"],
  ["OOM kills", "memory_oom_kills_total"],
  ["Restarts", "restarts_total"],
  ["Last ended OOM killed", "last_termination_oom_killed"],
];
const STALL_CHART = ["Stalled (PSI)", ["cpu_pressure_some_ratio", "memory_pressure_some_ratio", "io_pressure_some_ratio"]];
const POD_CHARTS = [
  ...WORKLOAD_CHARTS.slice(0, 1),
  ["Memory", ["memory_working_set_bytes", "memory_usage_bytes", "memory_request_bytes", "memory_limit_bytes"]],
  ["Memory by kind", ["memory_working_set_bytes", "memory_anon_bytes", "memory_file_bytes"]],
  ...WORKLOAD_CHARTS.slice(2),
  ["Throttled periods", ["cpu_throttled_percent"]],
  STALL_CHART,
];
// The figures that put a pod on the overview's "Needs attention" list, and from what value.
const ATTENTION = [
  ["restarts_total", 1, (v) => `restarted ${v}×`],
  ["memory_oom_kills_total", 1, (v) => `${v} OOM kill${v === 1 ? "" : "s"}`],
  ["cpu_throttled_percent", 25, (v) => `throttled in ${Math.round(v)} % of periods`],
  ["cpu_pressure_some_ratio", 0.1, (v) => `stalled on CPU ${Math.round(100 * v)} % of the time`],
  ["memory_pressure_some_ratio", 0.01, (v) => `stalled on memory ${Math.round(100 * v)} % of the time`],
];
const ATTENTION_PODS = 10;

// ---- views ----

function overview(range) {
  heading("Cluster");
  const now = section("Now");
  const fillCards = cards(now, [
    ["Nodes", "node_count"],
    ["Pods", "pod_count"],
    ["CPU used", "cpu_cores"],
    ["CPU capacity", "cpu_capacity_cores"],
    ["CPU %", "cpu_percent"],
    ["Memory used", "memory_used_bytes"],
    ["Memory total", "memory_total_bytes"],
    ["Memory %", "memory_percent"],
  ]);
  const counts = el("div", { class: "cards" });
  now.append(counts);
  const countOf = (title) => {
    const value = el("span", { class: "value", text: "—" });
    counts.append(el("div", { class: "card", "data-count": title.toLowerCase() }, el("span", { class: "title", text: title }), value));
    return value;
  };
  const namespaceCount = countOf("Namespaces");
  const deploymentCount = countOf("Deployments");
  const overTime = section("Over the range");
  const fillCharts = charts(overTime, [
    ["CPU used vs capacity", ["cpu_cores", "cpu_capacity_cores"]],
    ["Memory used vs capacity", ["memory_used_bytes", "memory_total_bytes"]],
    ["Disk throughput", ["disk_read_bps", "disk_write_bps"]],
    ["Network throughput", ["network_rx_bps", "network_tx_bps"]],
  ]);
  const busiest = section("Busiest now");
  const lists = el("div", { class: "busiest" });
  busiest.append(lists);
  const top = (title) => {
    const ol = el("ol", { "data-busiest": title.toLowerCase() });
    lists.append(el("div", {}, el("h3", { text: title }), ol));
    return ol;
  };
  const busyNodes = top("Nodes");
  const busyNamespaces = top("Namespaces");
  const busyPods = top("Pods");
  const fill = (ol, items, name, href) => {
    const sorted = items.filter((i) => i.metrics.cpu_cores !== null).sort((a, b) => b.metrics.cpu_cores - a.metrics.cpu_cores);
    const top5 = sorted.slice(0, 5);
    const cpu = columnFormatter("cores", top5.map((item) => item.metrics.cpu_cores));
    ol.replaceChildren(
      ...top5.map((item) =>
        el("li", {}, el("a", { href: href(item), text: name(item) }), " ", el("span", { class: "num", "data-value": item.metrics.cpu_cores, text: cpu(item.metrics.cpu_cores) })),
      ),
    );
  };
  const attention = el("ul", { "data-attention": "" });
  const calm = el("p", { class: "empty", text: "No pod is throttled, stalled, OOM killed or restarted." });
  section("Needs attention").append(attention, calm);
  const empty = el("p", { class: "empty", hidden: "" });
  view.insertBefore(empty, now);

  return async () => {
    const cluster = await get("cluster", timeParams(range));
    const hasData = cluster.timestamp !== undefined && cluster.timestamp !== null;
    empty.hidden = hasData;
    empty.textContent = hasData ? "" : "No data yet: no agent has reported to this server. Start one with `cloudmon agent --server " + location.origin + "`.";
    fillCards(cluster.metrics);
    fillCharts(cluster.series);
    const [nodes, namespaces, deployments, pods] = await Promise.all([
      get("nodes", { metrics: "cpu_cores" }),
      get("namespaces", { metrics: "cpu_cores" }),
      get("deployments", { metrics: "pod_count" }),
      get("pods", { metrics: "cpu_cores", sort: "-cpu_cores", limit: 5 }),
    ]);
    namespaceCount.textContent = String(namespaces.items.length);
    deploymentCount.textContent = String(deployments.items.length);
    fill(busyNodes, nodes.items, (n) => n.node, nodeHref);
    fill(busyNamespaces, namespaces.items, (n) => n.namespace, namespaceHref);
    fill(busyPods, pods.items, (p) => (p.name === null ? podLabel(p) : `${p.namespace}/${p.name}`), podHref);
    await fillAttention(attention, calm);
  };
}

// The pods most in trouble by each figure of ATTENTION, the server sorting all pods by it.
async function fillAttention(list, calm) {
  const found = new Map();
  const answers = await Promise.all(
    ATTENTION.map(([metric]) => get("pods", { metrics: metric, sort: `-${metric}`, limit: ATTENTION_PODS })),
  );
  answers.forEach((answer, at) => {
    const [metric, from, say] = ATTENTION[at];
    for (const pod of answer.items) {
      const value = pod.metrics[metric];
      if (value === null || value < from) continue;
      if (!found.has(pod.uid)) found.set(pod.uid, { pod, reasons: [] });
      found.get(pod.uid).reasons.push(say(value));
    }
  });
  const name = (p) => (p.name === null ? podLabel(p) : `${p.namespace}/${p.name}`);
  list.replaceChildren(
    ...[...found.values()].map(({ pod, reasons }) =>
      el("li", {}, el("a", { href: podHref(pod), text: name(pod) }), ` ${reasons.join(", ")}`),
    ),
  );
  calm.hidden = found.size > 0;
}

function nodeList(range) {
  heading("Nodes", [["Cluster", link("/")]]);
  const columns = [
    nameColumn("node", "Node", nodeHref),
    metricColumn("cpu_cores", "CPU", { spark: true }),
    metricColumn("cpu_percent", "CPU %"),
    metricColumn("memory_used_bytes", "Memory", { spark: true, notPhone: true, wideTrend: true }),
    metricColumn("memory_percent", "Memory %"),
    metricColumn("pod_count", "Pods"),
    metricColumn("network_rx_bps", "Net in", { wide: true }),
    metricColumn("network_tx_bps", "Net out", { wide: true }),
  ];
  const metrics = "cpu_cores,cpu_percent,memory_used_bytes,memory_percent,pod_count,network_rx_bps,network_tx_bps";
  return listTable(view, "nodes", "nodes", columns, range, metrics);
}

function nodePage(range, node) {
  heading(node, [["Cluster", link("/")], ["Nodes", link("/nodes")]]);
  const info = el("p", { class: "info" });
  const warning = el("p", { class: "warning", hidden: "" });
  view.append(info, warning);
  const fillCards = cards(view, [
    ["CPU used", "cpu_cores"],
    ["CPU %", "cpu_percent"],
    ["Memory used", "memory_used_bytes"],
    ["Memory %", "memory_percent"],
    ["Pods", "pod_count"],
    ["Stalled on CPU", "cpu_pressure_some_ratio"],
    ["Stalled on memory", "memory_pressure_some_ratio"],
    ["Stalled on IO", "io_pressure_some_ratio"],
    ["OOM kills", "memory_oom_kills_total"],
  ]);
  const fillCharts = charts(view, [
    ["CPU used vs capacity", ["cpu_cores", "cpu_capacity_cores"]],
    ["Memory used vs total", ["memory_used_bytes", "memory_total_bytes"]],
    ["Disk throughput", ["disk_read_bps", "disk_write_bps"]],
    ["Network throughput", ["network_rx_bps", "network_tx_bps"]],
    ["Load", ["load1", "load5", "load15"]],
    STALL_CHART,
  ]);
  const pods = podTable(section("Pods"), `nodes/${enc(node)}/pods`, range, ["node"]);
  return async () => {
    const answer = await get(`nodes/${enc(node)}`, timeParams(range));
    // Null from agents that do not send the time they send a payload.
    const skew = answer.metrics.clock_skew_seconds ?? 0;
    warning.hidden = Math.abs(skew) < SKEW_WARNING_S;
    warning.textContent = `Clock ${duration(Math.abs(skew))} ${skew > 0 ? "ahead of" : "behind"} the server`;
    const i = answer.info || {};
    const bytes = formatter("bytes");
    info.textContent = [
      i.cpu_count && `${i.cpu_count} CPUs`,
      i.memory_total_bytes && `${bytes(i.memory_total_bytes)} memory`,
      i.kernel && `kernel ${i.kernel}`,
      i.cgroup_version && `cgroup v${i.cgroup_version}`,
      answer.timestamp && `last report ${time(answer.timestamp)}`,
    ]
      .filter(Boolean)
      .join(" · ");
    fillCards(answer.metrics);
    fillCharts(answer.series);
    await pods();
  };
}

function namespaceList(range) {
  heading("Namespaces", [["Cluster", link("/")]]);
  const columns = [nameColumn("namespace", "Namespace", namespaceHref), ...groupColumns()];
  return listTable(view, "namespaces", "namespaces", columns, range, GROUP_METRICS);
}

function namespacePage(range, namespace) {
  heading(namespace, [["Cluster", link("/")], ["Namespaces", link("/namespaces")]]);
  const fillCards = cards(view, [["Pods", "pod_count"], ...WORKLOAD_CARDS]);
  const fillCharts = charts(view, WORKLOAD_CHARTS);
  const base = `namespaces/${enc(namespace)}`;
  const deploymentColumns = [nameColumn("name", "Deployment", deploymentHref), ...groupColumns()];
  const deployments = listTable(section("Deployments"), "deployments", `${base}/deployments`, deploymentColumns, range, GROUP_METRICS);
  const pods = podTable(section("Pods"), `${base}/pods`, range, ["namespace"]);
  return async () => {
    const answer = await get(base, timeParams(range));
    fillCards(answer.metrics);
    fillCharts(answer.series);
    await Promise.all([deployments(), pods()]);
  };
}

function deploymentList(range, params) {
  heading("Deployments", [["Cluster", link("/")]]);
  const columns = [
    nameColumn("name", "Deployment", deploymentHref),
    nameColumn("namespace", "Namespace", namespaceHref),
    ...groupColumns(),
  ];
  const extra = params.get("namespace") ? { namespace: params.get("namespace") } : {};
  return listTable(view, "deployments", "deployments", columns, range, GROUP_METRICS, extra);
}

function deploymentPage(range, namespace, name) {
  heading(name, [
    ["Cluster", link("/")],
    [namespace, link(`/namespaces/${enc(namespace)}`)],
  ]);
  const fillCards = cards(view, [["Pods", "pod_count"], ...WORKLOAD_CARDS]);
  const fillCharts = charts(view, [...WORKLOAD_CHARTS, ["Pods", ["pod_count"]]]);
  const base = `deployments/${enc(namespace)}/${enc(name)}`;
  const pods = podTable(section("Pods"), `${base}/pods`, range, ["namespace", "deployment"]);
  return async () => {
    const answer = await get(base, timeParams(range));
    fillCards(answer.metrics);
    fillCharts(answer.series);
    await pods();
  };
}

function podList(range, params) {
  heading("Pods", [["Cluster", link("/")]]);
  const extra = {};
  for (const key of ["namespace", "node", "deployment"]) if (params.get(key)) extra[key] = params.get(key);
  return podTable(view, "pods", range, Object.keys(extra), extra);
}

function podPage(range, namespace, name) {
  const h1 = heading(name, [
    ["Cluster", link("/")],
    [namespace, link(`/namespaces/${enc(namespace)}`)],
  ]);
  const crumbs = h1.previousElementSibling;
  const info = el("p", { class: "info" });
  view.append(info);
  const fillCards = cards(view, [...WORKLOAD_CARDS, ...TROUBLE_CARDS]);
  const fillCharts = charts(view, POD_CHARTS);
  const containers = podContainers(section("Containers"), range, namespace, name);
  let linked = false;
  return async () => {
    const [answer] = await Promise.all([get(`pods/${enc(namespace)}/${enc(name)}`, timeParams(range)), containers()]);
    if (!linked) {
      linked = true;
      if (answer.deployment) crumbs.append(el("a", { href: podDeploymentHref(answer), text: answer.deployment }), " › ");
      info.replaceChildren(
        "on node ",
        el("a", { href: nodeHref(answer), text: answer.node || "?" }),
        ` · uid ${answer.uid}`,
        answer.workload_kind ? ` · ${answer.workload_kind} ${answer.workload}` : "",
        answer.info && answer.info.qos ? ` · QoS ${answer.info.qos}` : "",
      );
    }
    fillCards(answer.metrics);
    fillCharts(answer.series);
  };
}

// A pod without metadata, found by its UID among its node's pods; the API reaches containers
// only through a pod's name, so they are not shown.
function unnamedPodPage(range, node, uid) {
  heading(podLabel({ name: null, uid }), [
    ["Cluster", link("/")],
    ["Nodes", link("/nodes")],
    [node, nodeHref({ node })],
  ]);
  view.append(
    el("p", { class: "info" }, `uid ${uid} on node `, el("a", { href: nodeHref({ node }), text: node }), " · the agent had no name, namespace or containers for it"),
  );
  const fillCards = cards(view, WORKLOAD_CARDS);
  const fillCharts = charts(view, POD_CHARTS);
  const metrics = [...new Set([...WORKLOAD_CARDS.map(([, name]) => name), ...POD_CHARTS.flatMap(([, names]) => names)])];
  return async () => {
    const { items } = await get(`nodes/${enc(node)}/pods`, { ...timeParams(range), metrics: metrics.join(",") });
    const pod = items.find((p) => p.uid === uid);
    if (!pod) throw new ApiError(404, `no pod of uid ${uid} on node ${node} in this range`);
    fillCards(pod.metrics);
    fillCharts(pod.series);
  };
}

const CONTAINER_METRICS =
  "cpu_cores,cpu_request_cores,cpu_limit_cores,memory_working_set_bytes,memory_usage_bytes,memory_request_bytes,memory_limit_bytes,disk_read_bps,disk_write_bps,cpu_throttled_percent,memory_oom_kills_total,restarts_total";
const CONTAINER_CHARTS = [
  ["CPU", ["cpu_cores", "cpu_request_cores", "cpu_limit_cores"]],
  ["Memory", ["memory_working_set_bytes", "memory_usage_bytes", "memory_request_bytes", "memory_limit_bytes"]],
  ["Disk", ["disk_read_bps", "disk_write_bps"]],
];

// A pod's containers: a table with a sparkline per row and each container's charts, all
// from one call; refresh() loads it.
function podContainers(parent, range, namespace, pod) {
  const base = `pods/${enc(namespace)}/${enc(pod)}/containers`;
  // A container the agent knew no name of goes by its ID, which its route takes too.
  const nameOf = (c) => c.name ?? c.container_id;
  const href = (c) => link(`/pods/${enc(namespace)}/${enc(pod)}/containers/${enc(nameOf(c))}`);
  const columns = [
    { id: "name", title: "Container", value: nameOf, href, filterable: true },
    metricColumn("cpu_cores", "CPU", { spark: true }),
    metricColumn("memory_working_set_bytes", "Memory", { spark: true, wideTrend: true }),
    metricColumn("memory_usage_bytes", "Memory usage", { wide: true }),
    metricColumn("cpu_limit_cores", "CPU limit", { wide: true }),
    metricColumn("memory_limit_bytes", "Memory limit", { wide: true }),
    metricColumn("disk_read_bps", "Disk read", { wide: true }),
    metricColumn("disk_write_bps", "Disk write", { wide: true }),
    metricColumn("cpu_throttled_percent", "Throttled", { wide: true }),
    metricColumn("memory_oom_kills_total", "OOM kills", { wide: true }),
    metricColumn("restarts_total", "Restarts", { wide: true }),
  ];
  const { params } = parseHash();
  const grid = dataTable(parent, {
    name: "containers",
    columns: columns.flat(),
    sort: params.get("sort") || "name",
    filter: params.get("q"),
    onState: remember,
  });
  const holder = el("div", { class: "containers" });
  parent.append(holder);
  const shown = new Map(); // container name -> [its section, fill(series)]
  return async () => {
    const { items } = await get(base, { ...timeParams(range), metrics: CONTAINER_METRICS });
    grid.setRows(items);
    const names = new Set(items.map(nameOf));
    for (const [name, [node]] of shown) {
      if (!names.has(name)) {
        node.remove();
        shown.delete(name);
      }
    }
    for (const item of [...items].sort((a, b) => nameOf(a).localeCompare(nameOf(b)))) {
      const name = nameOf(item);
      if (!shown.has(name)) {
        const node = el("section", { class: "container", "data-container": name, "aria-label": `Container ${name}` });
        node.append(el("h3", {}, el("a", { href: href(item), text: name })));
        holder.append(node);
        shown.set(name, [node, charts(node, CONTAINER_CHARTS)]);
      }
      shown.get(name)[1](item.series);
    }
  };
}

function containerPage(range, namespace, pod, name) {
  heading(name, [
    ["Cluster", link("/")],
    [namespace, link(`/namespaces/${enc(namespace)}`)],
    [pod, link(`/pods/${enc(namespace)}/${enc(pod)}`)],
  ]);
  const info = el("p", { class: "info" });
  view.append(info);
  const fillCards = cards(view, [
    ["CPU", "cpu_cores"],
    ["CPU limit", "cpu_limit_cores"],
    ["Memory", "memory_working_set_bytes"],
    ["Memory usage", "memory_usage_bytes"],
    ["Memory limit", "memory_limit_bytes"],
    ["Throttled", "cpu_throttled_percent"],
    ["OOM kills", "memory_oom_kills_total"],
    ["Restarts", "restarts_total"],
    ["Last ended OOM killed", "last_termination_oom_killed"],
  ]);
  const fillCharts = charts(view, [
    ...CONTAINER_CHARTS,
    ["Memory by kind", ["memory_working_set_bytes", "memory_anon_bytes", "memory_file_bytes"]],
    ["Throttled periods", ["cpu_throttled_percent"]],
  ]);
  return async () => {
    const answer = await get(`pods/${enc(namespace)}/${enc(pod)}/containers/${enc(name)}`, timeParams(range));
    info.replaceChildren(
      `container of pod ${answer.pod} on node `,
      el("a", { href: nodeHref(answer), text: answer.node || "?" }),
      answer.container_id ? ` · id ${answer.container_id.slice(0, 12)}` : "",
      answer.timestamp ? ` · last report ${time(answer.timestamp)}` : "",
    );
    fillCards(answer.metrics);
    fillCharts(answer.series);
  };
}

// Each route's path: fixed words, and * for a name the view is given.
const ROUTES = [
  [[], overview],
  [["nodes"], nodeList],
  [["nodes", "*"], nodePage],
  [["nodes", "*", "pods", "*"], unnamedPodPage],
  [["namespaces"], namespaceList],
  [["namespaces", "*"], namespacePage],
  [["deployments"], deploymentList],
  [["deployments", "*", "*"], deploymentPage],
  [["pods"], podList],
  [["pods", "*", "*"], podPage],
  [["pods", "*", "*", "containers", "*"], containerPage],
];

function match(parts) {
  for (const [pattern, make] of ROUTES) {
    if (pattern.length === parts.length && pattern.every((word, i) => word === "*" || word === parts[i])) {
      return [make, parts.filter((part, i) => pattern[i] === "*")];
    }
  }
  return [null, []];
}

function route() {
  const { parts, params } = parseHash();
  const range = rangeOf(params);
  showRange(range);
  const viewName = parts[0] || "overview";
  for (const a of document.querySelectorAll("header nav a")) {
    const name = a.dataset.view;
    a.href = link(name === "overview" ? "/" : `/${name}`);
    if (name === viewName) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  view.replaceChildren();
  showStatus(null, "");
  const [make, args] = match(parts);
  if (!make) {
    heading("Not found", [["Cluster", link("/")]]);
    current = null;
    return;
  }
  const load = parts.length === 1 ? make(range, params) : make(range, ...args);
  current = { refresh: load };
  document.title = `${parts.length ? parts.join(" / ") : "Cluster"} · cloudmon`;
  refresh();
}

async function start() {
  try {
    const answer = await fetch("assets/catalogue.json");
    catalogue = await answer.json();
  } catch {
    reportError(new Unreachable("no answer"));
    setTimeout(start, REFRESH_MS);
    return;
  }
  window.addEventListener("hashchange", () => {
    route();
    view.querySelector("h1")?.focus({ preventScroll: true });
  });
  route();
}

start();
