// Range charts (uPlot), the small per-row charts of tables (SVG polylines) and bars of usage
// against requests and limits (SVG).

import { columnFormatter, formatter } from "./format.js";

// One colour per meaning on every chart; what bounds usage (requests, limits, capacity) is
// also dashed, for readers who do not tell the colours apart.
const USED = { stroke: "#3b82f6" };
const REQUEST = { stroke: "#10b981", dash: [6, 3] };
const LIMIT = { stroke: "#ef4444", dash: [2, 3] };
const CAPACITY = { stroke: "#6b7280", dash: [8, 4] };
const SECOND = { stroke: "#a855f7" };
const IN = { stroke: "#0ea5e9" };
const OUT = { stroke: "#f59e0b" };
const LINES = {
  cpu_cores: USED,
  memory_used_bytes: USED,
  memory_working_set_bytes: USED,
  memory_usage_bytes: SECOND,
  cpu_request_cores: REQUEST,
  memory_request_bytes: REQUEST,
  cpu_limit_cores: LIMIT,
  memory_limit_bytes: LIMIT,
  cpu_capacity_cores: CAPACITY,
  memory_total_bytes: CAPACITY,
  disk_read_bps: IN,
  network_rx_bps: IN,
  disk_write_bps: OUT,
  network_tx_bps: OUT,
  load1: USED,
  load5: SECOND,
  load15: CAPACITY,
  memory_anon_bytes: IN,
  memory_file_bytes: OUT,
  cpu_throttled_percent: OUT,
  cpu_pressure_some_ratio: USED,
  memory_pressure_some_ratio: SECOND,
  io_pressure_some_ratio: OUT,
};

// Axis steps that read as round numbers in each unit: bytes by powers of two (512 MiB, 1 GiB),
// rates by 1, 2 and 5 times a power of ten, neither below 1 (no "0.5 B").
const INCREMENTS = {
  bytes: Array.from({ length: 60 }, (_, i) => 2 ** i),
  "bytes/s": Array.from({ length: 45 }, (_, i) => [1, 2, 5][i % 3] * 10 ** Math.floor(i / 3)),
};

function themed(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// A titled chart of some metrics of one series; update(series) sets its data.
export function rangeChart(parent, title, names, catalogue) {
  const figure = document.createElement("figure");
  figure.className = "chart";
  figure.dataset.metrics = names.join(",");
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  const holder = document.createElement("div");
  holder.className = "plot";
  const nodata = document.createElement("p");
  nodata.className = "nodata";
  nodata.textContent = "No data in this range";
  figure.append(caption, nodata, holder);
  parent.append(figure);
  const unit = catalogue[names[0]].unit;
  const format = formatter(unit);
  const axis = { stroke: themed("--fg-dim"), grid: { stroke: themed("--grid") }, ticks: { show: false } };
  let plot = null;

  function options(width) {
    return {
      width,
      height: 180,
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales: { y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        { ...axis, space: 90 },
        { ...axis, size: 70, incrs: INCREMENTS[unit], values: (u, ticks) => ticks.map(columnFormatter(unit, ticks)) },
      ],
      series: [
        {},
        ...names.map((name) => ({
          label: catalogue[name].label,
          ...(LINES[name] || USED),
          width: 1.5,
          value: (u, v) => format(v),
          spanGaps: false,
        })),
      ],
    };
  }

  const resize = new ResizeObserver(() => {
    if (plot) plot.setSize({ width: holder.clientWidth, height: 180 });
  });
  resize.observe(holder);

  return {
    figure,
    update(series) {
      const data = [series.timestamps, ...names.map((n) => series[n] || series.timestamps.map(() => null))];
      if (!plot) plot = new uPlot(options(holder.clientWidth || 300), data, holder);
      else plot.setData(data);
      const points = names.reduce((sum, n) => sum + (series[n] || []).filter((v) => v !== null).length, 0);
      figure.dataset.points = String(points);
      nodata.hidden = points > 0;
    },
  };
}

const SVG = "http://www.w3.org/2000/svg";

// A tiny line chart of values (nulls are gaps) as an SVG element.
export function sparkline(values, width = 96, height = 22) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("class", "spark");
  svg.setAttribute("aria-hidden", "true");
  let max = 0;
  for (const v of values) if (v !== null && v > max) max = v;
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const paths = [];
  let current = "";
  values.forEach((v, i) => {
    if (v === null) {
      if (current) paths.push(current);
      current = "";
      return;
    }
    const x = (i * step).toFixed(1);
    const y = (height - 1 - (max > 0 ? (v / max) * (height - 2) : 0)).toFixed(1);
    current += `${current ? "L" : "M"}${x},${y}`;
  });
  if (current) paths.push(current);
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", paths.join(""));
  svg.append(path);
  svg.dataset.points = String(values.filter((v) => v !== null).length);
  return svg;
}

const present = (value) => value !== null && value !== undefined;

function svgElement(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

// A triangle of `size` whose tip touches (x, y), pointing down (dir 1) or up (dir -1).
function triangle(x, y, size, dir) {
  const [left, right, base] = [x - size * 0.8, x + size * 0.8, y - dir * size].map((v) => v.toFixed(1));
  return `M${left},${base}L${right},${base}L${x.toFixed(1)},${y.toFixed(1)}Z`;
}

// Usage against what bounds it: a bar per resource, each on its own scale from 0 to the
// largest of its figures. p50 to p95 is filled, the maximum is a tick, the request a thin line
// under a filled triangle (▼), the limit a thick wall, and the recommended request (where
// `recommended`) a hollow triangle under the bar (△): shapes that differ besides their colours
// (the range charts': usage blue, requests green, limits red). Hovering a bar gives its figures.
// bars: [{resource, label, p50, p95, max, request, limit, recommended?, format}].
export function usageBars(bars, { width = 144, bar = 9, labels = 26, recommended = false } = {}) {
  const cap = Math.round(bar * 0.45) + 1; // room above a bar for the request's triangle
  const below = recommended ? cap + 1 : 0;
  const row = cap + bar + below + 3;
  const svg = svgElement("svg", { width, height: row * bars.length, viewBox: `0 0 ${width} ${row * bars.length}` });
  svg.classList.add("bars");
  svg.setAttribute("role", "img");
  const said = [];
  bars.forEach((b, index) => {
    const g = svgElement("g", { "data-resource": b.resource });
    const top = index * row + cap;
    const bottom = top + bar;
    const figures = [b.p50, b.p95, b.max, b.request, b.limit, recommended ? b.recommended : null];
    const scale = Math.max(0, ...figures.filter(present)) * 1.06 || 1;
    const x = (value) => labels + (value / scale) * (width - labels - 4);
    g.append(svgElement("text", { x: 0, y: (top + bottom) / 2, class: "label", "dominant-baseline": "central" }));
    g.lastChild.textContent = b.label;
    g.append(svgElement("rect", { x: labels, y: top, width: width - labels - 4, height: bar, class: "track" }));
    const mark = (name, value) => {
      if (present(value)) g.dataset[name] = String(value);
      return present(value);
    };
    if (mark("p50", b.p50) && mark("p95", b.p95)) {
      const span = Math.max(1.5, x(b.p95) - x(b.p50));
      g.append(svgElement("rect", { x: x(b.p50).toFixed(1), y: top + 1, width: span.toFixed(1), height: bar - 2, class: "used" }));
    }
    if (mark("max", b.max)) {
      g.append(svgElement("line", { x1: x(b.max).toFixed(1), x2: x(b.max).toFixed(1), y1: top + 1, y2: bottom - 1, class: "max" }));
    }
    if (mark("limit", b.limit)) {
      const at = x(b.limit).toFixed(1);
      g.append(svgElement("line", { x1: at, x2: at, y1: top - cap + 1, y2: bottom + 1, class: "limit" }));
    }
    if (mark("request", b.request)) {
      const at = x(b.request);
      g.append(svgElement("line", { x1: at.toFixed(1), x2: at.toFixed(1), y1: top, y2: bottom, class: "request" }));
      g.append(svgElement("path", { d: triangle(at, top, cap - 0.5, 1), class: "request" }));
    }
    if (recommended && mark("recommended", b.recommended)) {
      g.append(svgElement("path", { d: triangle(x(b.recommended), bottom + 1, cap - 0.5, -1), class: "recommended" }));
    }
    const f = b.format;
    const text = present(b.max)
      ? [
          `${b.label}: p50 ${f(b.p50)}, p95 ${f(b.p95)}, max ${f(b.max)}`,
          `request ${present(b.request) ? f(b.request) : "none"}`,
          `limit ${present(b.limit) ? f(b.limit) : "none"}`,
          ...(recommended ? [`recommended request ${present(b.recommended) ? f(b.recommended) : "none"}`] : []),
        ].join("; ")
      : `${b.label}: no usage`;
    const title = svgElement("title");
    title.textContent = text;
    g.prepend(title);
    said.push(text);
    svg.append(g);
  });
  svg.setAttribute("aria-label", said.join(". "));
  return svg;
}

// The key to usageBars: each mark drawn as the bars draw it, and what it stands for.
export function usageLegend({ recommended = false } = {}) {
  const p = document.createElement("p");
  p.className = "legend";
  const key = (text, ...marks) => {
    const svg = svgElement("svg", { width: 14, height: 14, viewBox: "0 0 14 14", "aria-hidden": "true" });
    svg.classList.add("bars");
    svg.append(...marks);
    p.append(svg, ` ${text} `);
  };
  key("p50 to p95", svgElement("rect", { x: 1, y: 3, width: 12, height: 8, class: "used" }));
  key("max", svgElement("line", { x1: 7, x2: 7, y1: 2, y2: 12, class: "max" }));
  key(
    "request",
    svgElement("line", { x1: 7, x2: 7, y1: 6, y2: 13, class: "request" }),
    svgElement("path", { d: triangle(7, 6, 5, 1), class: "request" }),
  );
  key("limit", svgElement("line", { x1: 7, x2: 7, y1: 1, y2: 13, class: "limit" }));
  if (recommended) key("recommended request", svgElement("path", { d: triangle(7, 3, 6, -1), class: "recommended" }));
  return p;
}
