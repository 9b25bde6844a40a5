// Range charts (uPlot) and the small per-row charts of tables (SVG polylines).

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
