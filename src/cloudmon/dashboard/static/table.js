// A sortable, filterable table that renders only the rows in view, so 10,000 rows scroll
// as smoothly as ten.

import { sparkline } from "./charts.js";

const ROW = 36; // px, as `.grid tbody tr` in style.css
const OVERSCAN = 10;

// columns: [{id, title, help?, value(row), format?(value), href?(row), spark?(row), numeric?, wide?}]
// loadSeries(rows), when given, fills row.series of the rows in view that lack it.
export function dataTable(parent, { name, columns, sort, filter, onState, loadSeries }) {
  const tools = document.createElement("div");
  tools.className = "table-tools";
  const search = document.createElement("input");
  search.type = "search";
  search.placeholder = `Filter ${name}`;
  search.setAttribute("aria-label", `Filter ${name}`);
  search.value = filter || "";
  const count = document.createElement("span");
  count.className = "count";
  tools.append(search, count);

  const scroller = document.createElement("div");
  scroller.className = "scroller";
  const table = document.createElement("table");
  table.className = "grid";
  table.dataset.name = name;
  const head = table.createTHead().insertRow();
  const body = table.createTBody();
  scroller.append(table);
  const empty = document.createElement("p");
  empty.className = "empty";
  empty.hidden = true;
  parent.append(tools, scroller, empty);

  let state = parseSort(sort, columns);
  let all = [];
  let shown = [];
  let range = [-1, -1];

  for (const column of columns) {
    const th = document.createElement("th");
    th.scope = "col";
    th.dataset.column = column.id;
    if (column.numeric) th.className = "num";
    if (column.wide) th.classList.add("wide");
    if (column.value) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = column.title;
      if (column.help) button.title = column.help;
      button.addEventListener("click", () => {
        const desc = state.id === column.id ? !state.desc : Boolean(column.numeric);
        state = { id: column.id, desc };
        onState({ sort: `${desc ? "-" : ""}${column.id}` });
        apply();
      });
      th.append(button);
    } else {
      th.textContent = column.title;
    }
    head.append(th);
  }

  function text(row) {
    return columns
      .filter((c) => c.filterable)
      .map((c) => c.value(row))
      .join(" ")
      .toLowerCase();
  }

  function apply() {
    const needle = search.value.trim().toLowerCase();
    shown = needle ? all.filter((row) => text(row).includes(needle)) : all.slice();
    const column = columns.find((c) => c.id === state.id);
    if (column) {
      const sign = state.desc ? -1 : 1;
      shown.sort((a, b) => sign * compare(column.value(a), column.value(b)));
    }
    for (const th of head.children) {
      const active = th.dataset.column === state.id;
      if (active) th.setAttribute("aria-sort", state.desc ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    }
    table.setAttribute("aria-rowcount", String(shown.length + 1));
    count.textContent = `${shown.length} of ${all.length}`;
    empty.hidden = shown.length > 0;
    empty.textContent = all.length ? `No ${name} match “${search.value}”.` : `No ${name} in this range.`;
    range = [-1, -1];
    render();
  }

  function render() {
    const visible = Math.ceil((scroller.clientHeight || 600) / ROW);
    const first = Math.max(0, Math.floor(scroller.scrollTop / ROW) - OVERSCAN);
    const last = Math.min(shown.length, first + visible + 2 * OVERSCAN);
    if (first === range[0] && last === range[1]) return;
    range = [first, last];
    const fragment = document.createDocumentFragment();
    fragment.append(spacer(first * ROW));
    for (let i = first; i < last; i++) fragment.append(rowElement(shown[i], i));
    fragment.append(spacer((shown.length - last) * ROW));
    body.replaceChildren(fragment);
    if (loadSeries) {
      clearTimeout(seriesTimer);
      seriesTimer = setTimeout(fillSeries, 100);
    }
  }

  let seriesTimer = null;
  async function fillSeries() {
    const missing = shown.slice(range[0], range[1]).filter((row) => row.series === undefined);
    if (!missing.length) return;
    for (const row of missing) row.series = null;
    try {
      await loadSeries(missing);
    } catch {
      // The rows keep empty sparklines; the view's own refresh reports the error.
    }
    range = [-1, -1];
    render();
  }

  function spacer(height) {
    const tr = document.createElement("tr");
    tr.className = "spacer";
    tr.setAttribute("aria-hidden", "true");
    const td = document.createElement("td");
    td.colSpan = columns.length;
    td.style.height = `${height}px`;
    tr.append(td);
    return tr;
  }

  function rowElement(row, index) {
    const tr = document.createElement("tr");
    tr.dataset.index = String(index);
    tr.setAttribute("aria-rowindex", String(index + 2));
    for (const column of columns) {
      const td = document.createElement("td");
      td.dataset.column = column.id;
      if (column.numeric) td.className = "num";
      if (column.wide) td.classList.add("wide");
      if (column.spark) {
        td.append(sparkline(column.spark(row)));
      } else {
        const value = column.value(row);
        const shownText = column.format ? column.format(value) : (value ?? "—");
        if (column.numeric && value !== null && value !== undefined) td.dataset.value = String(value);
        const href = column.href && column.href(row);
        if (href) {
          const a = document.createElement("a");
          a.href = href;
          a.textContent = shownText;
          td.append(a);
        } else {
          td.textContent = shownText;
        }
      }
      tr.append(td);
    }
    return tr;
  }

  function focusRow(index) {
    if (index < 0 || index >= shown.length) return;
    const top = index * ROW;
    const header = ROW;
    if (top < scroller.scrollTop) scroller.scrollTop = top;
    else if (top + ROW > scroller.scrollTop + scroller.clientHeight - header)
      scroller.scrollTop = top + ROW - scroller.clientHeight + header;
    render();
    body.querySelector(`tr[data-index="${index}"] a`)?.focus();
  }

  let pending = false;
  scroller.addEventListener("scroll", () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      render();
    });
  });
  body.addEventListener("keydown", (event) => {
    const tr = event.target.closest("tr[data-index]");
    if (!tr || (event.key !== "ArrowDown" && event.key !== "ArrowUp")) return;
    event.preventDefault();
    focusRow(Number(tr.dataset.index) + (event.key === "ArrowDown" ? 1 : -1));
  });
  search.addEventListener("input", () => {
    onState({ q: search.value.trim() });
    apply();
  });

  return {
    table,
    setRows(rows) {
      all = rows;
      apply();
    },
  };
}

function parseSort(sort, columns) {
  if (!sort) {
    const first = columns.find((c) => c.numeric && c.value);
    return { id: first ? first.id : null, desc: true };
  }
  const desc = sort.startsWith("-");
  return { id: desc ? sort.slice(1) : sort, desc };
}

function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}
