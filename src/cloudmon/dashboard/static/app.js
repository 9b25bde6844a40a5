// The dashboard: a router over the URL's hash (#/view/...?range=&q=&sort=), the range
// picker, auto-refresh, and the views.

import { ApiError, Unreachable, get, setToken, timeParams } from "./api.js";
import { rangeChart, usageBars, usageLegend } from "./charts.js";
import { columnFormatter, duration, formatter, percent, plain, time } from "./format.js";
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
let current = null; // {refresh(), every (ms), loadedAt (ms)}
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
    route.loadedAt = Date.now();
    if (route === current) {
      if (status.classList.contains("error")) showStatus(null, "");
      updated.textContent = `Updated ${new Date().toLocaleTimeString()} · ${paused ? "auto-refresh paused" : `refreshing every ${every()}`}`;
    }
  } catch (error) {
    if (route === current) reportError(error);
  } finally {
    if (busy === route) busy = null;
  }
}

const every = () => duration((current ? current.every : REFRESH_MS) / 1000);

// Each view every REFRESH_MS, or its own `every` if longer; one that failed on the next tick.
setInterval(() => {
  if (paused || document.visibilityState !== "visible" || !current) return;
  if (Date.now() - (current.loadedAt ?? 0) < current.every - REFRESH_MS / 2) return;
  refresh();
}, REFRESH_MS);

pauseButton.addEventListener("click", () => {
  paused = !paused;
  pauseButton.textContent = paused ? "Resume" : "Pause";
  pauseButton.setAttribute("aria-pressed", String(paused));
  updated.textContent = paused ? "Auto-refresh paused" : `Auto-refresh every ${every()}`;
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
  const sizing = link(`/rightsize/${enc(namespace)}/Deployment/${enc(name)}`);
  view.append(el("p", { class: "info" }, el("a", { href: sizing, text: "Right-sizing" }), " of its requests and limits"));
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

// ---- right-sizing ----

// GET /api/rightsize reads the usage the upkeep sketches as it rolls each hour up: an answer
// that changes hourly and costs seconds on a large cluster, asked for once a minute.
const RIGHTSIZE_MS = 60_000;
// The workloads a patch can change (rightsizing.patch); other kinds' pods' specs cannot be
// changed in place.
const PATCHED_KINDS = ["Deployment", "StatefulSet", "DaemonSet"];
const RELEASED =
  "Over-provisioned requests less the recommendations, times the replicas running now: what could be released";
const MISSING = "Recommendations above the requests (under-provisioned), times the replicas running now: what is missing";
const SUMS = [
  ["CPU that could be released", "released_cpu_cores", "cores", RELEASED],
  ["Memory that could be released", "released_memory_bytes", "bytes", RELEASED],
  ["CPU missing", "missing_cpu_cores", "cores", MISSING],
  ["Memory missing", "missing_memory_bytes", "bytes", MISSING],
];
// Each finding's name, and whether it wastes (reserved and unused), risks (contention,
// throttling, OOM kills) or leaves a resource unset.
const FINDINGS = {
  over_provisioned: ["Over-provisioned", "waste"],
  under_provisioned: ["Under-provisioned", "risk"],
  near_memory_limit: ["Near memory limit", "risk"],
  throttled: ["Throttled", "risk"],
  oom_killed: ["OOM killed", "risk"],
  no_cpu_request: ["No CPU request", "unset"],
  no_memory_request: ["No memory request", "unset"],
  no_memory_limit: ["No memory limit", "unset"],
};
const RESOURCES = {
  cpu: { name: "CPU", short: "CPU", unit: "cores", figure: "cpu_cores" },
  memory: { name: "Memory", short: "Mem", unit: "bytes", figure: "memory_bytes" },
};
const findingName = (name) => (FINDINGS[name] ? FINDINGS[name][0] : name.replaceAll("_", " "));
const present = (value) => value !== null && value !== undefined;
const utcDay = (seconds) => new Date(seconds * 1000).toISOString().slice(0, 10);
const count = (n, noun) => `${n} ${noun}${n === 1 ? "" : "s"}`;
const workloadLabel = (item) => `${item.workload_kind}/${item.workload}`;
const rightsizeHref = (item) =>
  link(`/rightsize/${enc(item.namespace)}/${enc(item.workload_kind)}/${enc(item.workload)}`);
// The namespaces the last answer for every namespace had, offered by the namespace filter.
const rightsizeNamespaces = new Set();

// A finding in a few words, for a badge: "CPU over", "Mem under", "Near limit".
function findingWords(finding) {
  const resource = RESOURCES[finding.resource];
  if (resource && finding.finding === "over_provisioned") return `${resource.short} over`;
  if (resource && finding.finding === "under_provisioned") return `${resource.short} under`;
  if (finding.finding === "near_memory_limit") return "Near limit";
  return findingName(finding.finding);
}

// A finding in a sentence, with its figure and the risk it runs.
function findingSentence(finding) {
  const resource = RESOURCES[finding.resource];
  let said = findingName(finding.finding);
  if (resource && present(finding[resource.figure])) {
    const figure = finding[resource.figure];
    const amount = formatter(resource.unit)(Math.abs(figure));
    said =
      figure > 0
        ? `${resource.name} over-provisioned: ${amount} could be released`
        : `${resource.name} under-provisioned: ${amount} missing`;
  } else if (finding.finding === "near_memory_limit") {
    said = `Near the memory limit: its peak at ${percent(100 * finding.share)} of it`;
  } else if (finding.finding === "throttled") {
    said = `Throttled in ${percent(100 * finding.share)} of its CFS periods`;
  } else if (finding.finding === "oom_killed") {
    said = `OOM killed ${plain(finding.count)}×`;
  }
  return finding.risk ? `${said} — ${finding.risk}` : said;
}

function findingBadge(finding) {
  const kind = FINDINGS[finding.finding] ? FINDINGS[finding.finding][1] : "risk";
  const attrs = { class: `finding ${kind}`, "data-finding": finding.finding, title: findingSentence(finding) };
  return el("span", { ...attrs, text: findingWords(finding) });
}

// A request or limit now and as recommended, in the column's format: "1000m → 260m", "128 →
// 345 MiB"; once where it would not change or nothing is recommended. data-recommended holds
// the recommendation ("" for none), absent where there is none.
function nowAndThen(now, recommendation, name, format = formatter("")) {
  const node = el("span", { class: "change" });
  const nowNode = el("span", { class: "now", text: format(now) });
  if (present(now)) nowNode.dataset.value = String(now);
  node.append(nowNode);
  if (!recommendation) return node;
  const then = recommendation[name];
  node.dataset.recommended = present(then) ? String(then) : "";
  if (then === now) return node;
  const thenNode = el("span", { class: "recommended", text: format(then) });
  if (present(then)) thenNode.dataset.value = String(then);
  const unit = nowNode.textContent.match(/ \D+$/);
  if (unit && thenNode.textContent.endsWith(unit[0])) nowNode.textContent = nowNode.textContent.slice(0, -unit[0].length);
  node.append(" → ", thenNode);
  return node;
}

function nowAndThenTip(what, now, recommendation, name, format) {
  const said = `${what} now: ${present(now) ? format(now) : "none"}`;
  if (!recommendation) return said;
  return `${said}; recommended: ${present(recommendation[name]) ? format(recommendation[name]) : "none"}`;
}

// A container's CPU and memory bars (usageBars), the recommended requests marked where asked.
function containerBars(container, options) {
  const { cpu, memory } = container;
  const recommended = container.recommendation || {};
  return usageBars(
    [
      { resource: "cpu", label: "CPU", ...cpu, recommended: recommended.cpu_request_cores, format: formatter("cores") },
      { resource: "memory", label: "Mem", ...memory, recommended: recommended.memory_request_bytes, format: formatter("bytes") },
    ],
    options,
  );
}

// A column of a request or limit, now and recommended.
function changeColumn(id, title, resource, figure, recommended, unit, extra = {}) {
  const now = (row) => row.container[resource][figure];
  const what = `${RESOURCES[resource].name} ${figure}`;
  return {
    id,
    title,
    help: `${what} now → recommended`,
    numeric: true,
    unit,
    value: now,
    figures: (row) => [now(row), row.container.recommendation ? row.container.recommendation[recommended] : null],
    cell: (row, format) => nowAndThen(now(row), row.container.recommendation, recommended, format),
    tip: (row) => nowAndThenTip(what, now(row), row.container.recommendation, recommended, formatter(unit)),
    ...extra,
  };
}

function rightsizeColumns() {
  const figure = (id, title, resource, name, unit, help, extra = {}) => ({
    id,
    title,
    help,
    numeric: true,
    unit,
    value: (row) => row.container[resource][name],
    ...extra,
  });
  return [
    {
      id: "workload",
      title: "Workload",
      value: (row) => workloadLabel(row.item),
      href: (row) => rightsizeHref(row.item),
      filterable: true,
    },
    {
      id: "namespace",
      title: "Namespace",
      value: (row) => row.item.namespace,
      href: (row) => link("/rightsize", { namespace: row.item.namespace }),
      filterable: true,
      wide: true,
    },
    { id: "container", title: "Container", value: (row) => row.container.name, filterable: true, notPhone: true },
    {
      id: "pods",
      title: "Pods",
      help: "Pods in the window",
      numeric: true,
      wide: true,
      value: (row) => row.item.pods,
      tip: (row) => `${count(row.item.pods, "pod")} in the window, ${row.item.replicas} running now`,
    },
    figure("cpu_p95", "CPU p95", "cpu", "p95", "cores", "The 95th percentile of its 1 min CPU averages (its busiest pod's)", {
      notPhone: true,
    }),
    changeColumn("cpu_request", "CPU request", "cpu", "request", "cpu_request_cores", "cores"),
    changeColumn("cpu_limit", "CPU limit", "cpu", "limit", "cpu_limit_cores", "cores", { wide: true }),
    figure("memory_max", "Memory max", "memory", "max", "bytes", "The largest 1 min maximum of its working set", { wide: true }),
    changeColumn("memory_request", "Memory request", "memory", "request", "memory_request_bytes", "bytes"),
    changeColumn("memory_limit", "Memory limit", "memory", "limit", "memory_limit_bytes", "bytes", { wide: true }),
    figure("throttled", "Throttled", "cpu", "throttled_share", "ratio", "The share of its CFS periods throttled", { wide: true }),
    {
      id: "findings",
      title: "Findings",
      value: (row) => (row.container.recommendation ? row.container.findings.map(findingWords).join(", ") : "not enough data"),
      cell: (row) => {
        const { findings: found, recommendation } = row.container;
        const node = el("span", { class: "findings" }, ...found.map(findingBadge));
        if (!recommendation) node.prepend(el("span", { class: "finding nodata", text: "not enough data" }));
        return node;
      },
      tip: (row) => [row.container.reason, ...row.container.findings.map(findingSentence)].filter(Boolean).join("\n"),
      notPhone: true,
    },
    {
      id: "usage",
      title: "Usage",
      help: "CPU and memory: p50 to p95, the maximum, the request and the limit (the key is under the table)",
      notPhone: true,
      cell: (row) => containerBars(row.container, { width: 120, labels: 22 }),
    },
  ];
}

// Cards of figures: [[title, key, unit, help]], marked data-`attribute`="key"; update(figures)
// fills them.
function figureCards(parent, items, attribute) {
  const holder = el("div", { class: "cards" });
  parent.append(holder);
  const values = items.map(([title, key, unit, help]) => {
    const value = el("span", { class: "value", text: "—" });
    const card = el("div", { class: "card", [`data-${attribute}`]: key, title: help });
    card.append(el("span", { class: "title", text: title }), value);
    holder.append(card);
    return [key, unit, value];
  });
  return (figures) => {
    for (const [key, unit, value] of values) {
      const v = figures[key];
      value.textContent = formatter(unit)(v);
      if (present(v)) value.dataset.value = String(v);
      else delete value.dataset.value;
    }
  };
}

// The namespace filter: a select of "every namespace" and those known, kept in the URL as
// ?namespace= (as the deployments' and pods' lists take it).
function namespaceFilter(parent, chosen) {
  const select = el("select", { "data-filter": "namespace" });
  parent.append(el("div", { class: "filters" }, el("label", {}, "Namespace ", select)));
  select.addEventListener("change", () => {
    const { parts, params } = parseHash();
    if (select.value) params.set("namespace", select.value);
    else params.delete("namespace");
    location.hash = `#/${parts.map(enc).join("/")}?${params}`;
  });
  return (names) => {
    const wanted = ["", ...[...new Set([...names, ...(chosen ? [chosen] : [])])].sort()];
    if (JSON.stringify([...select.options].map((o) => o.value)) === JSON.stringify(wanted)) return;
    select.replaceChildren(...wanted.map((name) => el("option", { value: name, text: name || "every namespace" })));
    select.value = chosen || "";
  };
}

function rightsizeList(range, params) {
  heading("Right-sizing", [["Cluster", link("/")]]);
  const namespace = params.get("namespace");
  const fillFilter = namespaceFilter(view, namespace);
  fillFilter([]);
  const info = el("p", { class: "info" });
  view.append(info);
  const fillSums = figureCards(view, SUMS, "sum");
  const counts = el("div", { class: "cards counts" });
  view.append(counts);
  const containers = section("Containers");
  const grid = dataTable(containers, {
    name: "containers",
    columns: rightsizeColumns(),
    // The API's order: by namespace, then kind and name.
    sort: params.get("sort") || "namespace",
    filter: params.get("q"),
    onState: remember,
  });
  grid.table.classList.add("rightsize");
  containers.append(usageLegend());
  const refresh = async () => {
    const answer = await get("rightsize", { ...timeParams(range), ...(namespace ? { namespace } : {}) });
    if (!namespace) {
      rightsizeNamespaces.clear();
      for (const name of Object.keys(answer.summary.namespaces)) rightsizeNamespaces.add(name);
    }
    fillFilter(rightsizeNamespaces);
    const rows = answer.items.flatMap((item) => item.containers.map((container) => ({ item, container })));
    info.textContent = rightsizeInfo(answer, `${count(answer.items.length, "workload")}, ${count(rows.length, "container")}`);
    const { cluster } = answer.summary;
    fillSums(cluster);
    const names = [...new Set([...Object.keys(FINDINGS), ...Object.keys(cluster.findings)])];
    const unsized = rows.filter((row) => !row.container.recommendation).length;
    counts.replaceChildren(
      ...names.map((name) => countCard(findingName(name), "finding", name, cluster.findings[name] ?? 0)),
      countCard("Not enough data", "count", "not_enough_data", unsized),
    );
    grid.setRows(rows);
  };
  return { refresh, every: RIGHTSIZE_MS };
}

function countCard(title, attribute, key, number) {
  const card = el("div", { class: number ? "card" : "card zero", [`data-${attribute}`]: key });
  const value = el("span", { class: "value", "data-value": number, text: String(number) });
  card.append(el("span", { class: "title", text: title }), value);
  return card;
}

// What an answer covers and how its figures are made, after `first`.
function rightsizeInfo(answer, first) {
  const [from, to] = [utcDay(answer.start), utcDay(answer.end)];
  const { strategy, autoscalers } = answer;
  return [
    first,
    from === to ? `usage of the UTC day ${from}` : `usage of the UTC days ${from} to ${to}`,
    `CPU request at the p${plain(strategy.cpu_percentile)} of 1 min averages`,
    `memory at the peak + ${percent(100 * strategy.memory_buffer)}`,
    answer.percentiles === "exact"
      ? "percentiles exact (the raw samples cover the window)"
      : `percentiles within ${percent(100 * answer.accuracy)}`,
    autoscalers && !autoscalers.known && `autoscalers unknown: ${autoscalers.reason}`,
  ]
    .filter(Boolean)
    .join(" · ");
}

function rightsizeWorkload(range, namespace, kind, name) {
  heading(`${kind}/${name}`, [
    ["Cluster", link("/")],
    ["Right-sizing", link("/rightsize")],
    [namespace, link("/rightsize", { namespace })],
  ]);
  const info = el("p", { class: "info" });
  view.append(info);
  const containers = section("Containers");
  const holder = el("div");
  containers.append(holder);
  const patch = section("Patch");
  const { params } = parseHash();
  const pods = dataTable(section("Pods"), {
    name: "pods",
    columns: rightsizePodColumns(namespace),
    sort: params.get("sort") || "name",
    filter: params.get("q"),
    onState: remember,
  });
  let shown = null; // the answer's JSON as shown: a refresh that changes nothing keeps a selection
  const refresh = async () => {
    const answer = await get(`rightsize/${enc(namespace)}/${enc(kind)}/${enc(name)}`, timeParams(range));
    pods.setRows(answer.pods_usage || []);
    const json = JSON.stringify({ ...answer, start: utcDay(answer.start), end: utcDay(answer.end) });
    if (json === shown) return;
    shown = json;
    const scaler = answer.autoscaler;
    const first = [`${kind} in ${namespace}`, `${count(answer.pods, "pod")} in the window, ${answer.replicas} running now`];
    if (scaler) first.push(`scaled by ${scaler.name} (${scaler.min_replicas}–${scaler.max_replicas ?? "?"} replicas)`);
    info.replaceChildren(rightsizeInfo(answer, first.join(" · ")));
    if (kind === "Deployment") {
      info.append(" · ", el("a", { href: link(`/deployments/${enc(namespace)}/${enc(name)}`), text: "its usage over time" }));
    }
    holder.replaceChildren(...answer.containers.map(containerSizing));
    patch.replaceChildren(patch.firstChild, ...patchText(answer));
  };
  return { refresh, every: RIGHTSIZE_MS };
}

// A workload's patch, or why it has none.
function patchText(item) {
  if (item.patch) {
    const note = item.patch.note;
    return [
      el("p", { class: "note", text: `${note.charAt(0).toUpperCase()}${note.slice(1)}.` }),
      el("pre", { class: "patch", "data-patch": "" }, el("code", { text: item.patch.command })),
    ];
  }
  const kind = item.workload_kind;
  let why = `No patch for a ${kind}: its pods' specs cannot be changed in place.`;
  if (PATCHED_KINDS.includes(kind)) why = "No patch: no container has a recommendation yet.";
  else if (kind === "Pod") why = "No patch for a bare Pod: its spec cannot be changed in place.";
  return [el("p", { class: "empty", "data-nopatch": "", text: why })];
}

// A container's figures, recommendation, findings and what its autoscaler does with them.
function containerSizing(container) {
  const label = `Container ${container.name ?? "without a name"}`;
  const node = el("section", { class: "container", "data-container": container.name ?? "", "aria-label": label });
  node.append(el("h3", { text: label }));
  node.append(
    el("div", { class: "bars-holder" }, containerBars(container, { width: 480, bar: 16, labels: 40, recommended: true })),
    usageLegend({ recommended: true }),
  );
  node.append(figuresTable(container));
  const { recommendation: r } = container;
  if (r) {
    const [cores, bytes] = [formatter("cores"), formatter("bytes")];
    const cpuLimit = present(r.cpu_limit_cores) ? `CPU limit ${cores(r.cpu_limit_cores)}` : "no CPU limit";
    const memory =
      r.memory_request_bytes === r.memory_limit_bytes
        ? `memory request and limit ${bytes(r.memory_request_bytes)}`
        : `memory request ${bytes(r.memory_request_bytes)}, limit ${bytes(r.memory_limit_bytes)}`;
    const said = `CPU request ${cores(r.cpu_request_cores)}, ${cpuLimit}; ${memory}`;
    node.append(el("p", { class: "recommendation" }, el("strong", { text: "Recommended: " }), said));
  } else {
    node.append(el("p", { class: "warning", "data-reason": "" }, `No recommendation: ${container.reason}`));
  }
  const list = el("ul", { class: "findings" });
  for (const finding of container.findings) {
    list.append(el("li", { "data-finding": finding.finding }, findingBadge(finding), " ", findingSentence(finding)));
  }
  if (container.findings.length) node.append(list);
  else if (r) node.append(el("p", { class: "info", text: "No findings: its requests and limits fit its usage." }));
  for (const said of container.autoscaling || []) node.append(el("p", { class: "info", text: said }));
  return node;
}

// A container's figures, a row per resource.
function figuresTable(container) {
  const { cpu, memory, minutes } = container;
  const r = container.recommendation || {};
  // One unit a row, as a table's column has: "1000m → 260m" beside "259m".
  const cpuFigures = [cpu.p50, cpu.p95, cpu.p99, cpu.max, cpu.request, cpu.limit, r.cpu_request_cores, r.cpu_limit_cores];
  const memoryFigures = [memory.p50, memory.p95, memory.max, memory.request, memory.limit, r.memory_request_bytes, r.memory_limit_bytes];
  const [cores, bytes, ratio] = [columnFormatter("cores", cpuFigures), columnFormatter("bytes", memoryFigures), formatter("ratio")];
  const valued = (value) => (present(value) ? { "data-value": value } : {});
  const cell = (name, value, format) => el("td", { class: "num", "data-figure": name, ...valued(value), text: format(value) });
  const change = (name, now, recommended, format) =>
    el("td", { class: "num", "data-figure": name }, nowAndThen(now, container.recommendation, recommended, format));
  const titles = ["", "p50", "p95", "p99", "max", "request", "limit", "", "minutes"];
  const head = el("tr", {}, ...titles.map((text) => el("th", { scope: "col", text })));
  const pressure = (text, value) => el("td", { class: "num", ...valued(value), text });
  const rows = [
    el(
      "tr",
      { "data-resource": "cpu" },
      el("th", { scope: "row", text: "CPU" }),
      cell("p50", cpu.p50, cores),
      cell("p95", cpu.p95, cores),
      cell("p99", cpu.p99, cores),
      cell("max", cpu.max, cores),
      change("request", cpu.request, "cpu_request_cores", cores),
      change("limit", cpu.limit, "cpu_limit_cores", cores),
      pressure(`${ratio(cpu.throttled_share)} throttled`, cpu.throttled_share),
      cell("minutes", minutes.cpu, plain),
    ),
    el(
      "tr",
      { "data-resource": "memory" },
      el("th", { scope: "row", text: "Memory" }),
      cell("p50", memory.p50, bytes),
      cell("p95", memory.p95, bytes),
      el("td", { class: "num", text: "" }),
      cell("max", memory.max, bytes),
      change("request", memory.request, "memory_request_bytes", bytes),
      change("limit", memory.limit, "memory_limit_bytes", bytes),
      pressure(`peak at ${ratio(memory.limit_share)} of limit`, memory.limit_share),
      cell("minutes", minutes.memory, plain),
    ),
  ];
  const counters = `OOM kills ${formatter("")(container.oom_kills)} · restarts ${formatter("")(container.restarts)}`;
  const table = el("table", { class: "figures" }, el("thead", {}, head), el("tbody", {}, ...rows));
  return el("div", { class: "figures" }, table, el("p", { class: "info", text: counters }));
}

function rightsizePodColumns(namespace) {
  const figure = (id, title, resource, name, unit, extra = {}) => ({
    id,
    title,
    numeric: true,
    unit,
    value: (p) => p[resource][name],
    ...extra,
  });
  return [
    {
      id: "name",
      title: "Pod",
      value: (p) => p.name ?? p.uid,
      href: (p) => p.name !== null && link(`/pods/${enc(namespace)}/${enc(p.name)}`),
      filterable: true,
    },
    nameColumn("node", "Node", nodeHref, { notPhone: true }),
    {
      id: "minutes",
      title: "Minutes",
      help: "Minutes of data in the window",
      numeric: true,
      value: (p) => p.minutes.cpu,
      tip: (p) => `${p.minutes.cpu} minutes of CPU, ${p.minutes.memory} of memory`,
    },
    figure("cpu_p50", "CPU p50", "cpu", "p50", "cores", { wide: true }),
    figure("cpu_p95", "CPU p95", "cpu", "p95", "cores"),
    figure("cpu_max", "CPU max", "cpu", "max", "cores", { notPhone: true }),
    figure("memory_p95", "Memory p95", "memory", "p95", "bytes", { wide: true }),
    figure("memory_max", "Memory max", "memory", "max", "bytes"),
    figure("throttled", "Throttled", "cpu", "throttled_share", "ratio", { wide: true }),
  ];
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
  [["rightsize"], rightsizeList],
  [["rightsize", "*", "*", "*"], rightsizeWorkload],
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
  // A view gives its refresh(), or {refresh, every} to be refreshed less often.
  const made = parts.length === 1 ? make(range, params) : make(range, ...args);
  current = typeof made === "function" ? { refresh: made, every: REFRESH_MS } : made;
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
