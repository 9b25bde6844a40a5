// A sortable, filterable table that renders only the rows in view, so 10,000 rows scroll
// as smoothly as ten.

import { sparkline } from "./charts.js";

const ROW = 36; // px, as `.grid tbody tr` in style.css
const OVERSCAN = 10;

// columns: [{id, title, help?, value(row), format?(value), href?(row), spark?(row), numeric?, wide?}]
// loadSeries(rows), when given, fills row.series of the rows in view once they settle; until
// then a row shows the series of the row of the same key(row) before setRows.
export function dataTable(parent, { name, columns, sort, filter, onState, loadSeries, key }) {
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
    if (column.spark) th.className = "trend";
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
    render(true);
  }

  // The rows in the DOM: shown[range[0]] to shown[range[1] - 1], between two spacers. A
  // scroll adds the rows coming into view and removes those leaving it; the rest stay.
  const above = spacer();
  const below = spacer();
  body.append(above, below);
  const rendered = new Map();

  function render(force = false) {
    // Before its rows are in, the scroller is as short as its header: count on its
    // max-height (70vh in style.css).
    const visible = Math.ceil(Math.max(scroller.clientHeight, 0.7 * innerHeight) / ROW);
    const first = Math.max(0, Math.floor(scroller.scrollTop / ROW) - OVERSCAN);
    const last = Math.min(shown.length, first + visible + 2 * OVERSCAN);
    if (!force && first === range[0] && last === range[1]) return;
    if (force) {
      for (const tr of rendered.values()) tr.remove();
      rendered.clear();
    }
    for (const [index, tr] of rendered) {
      if (index < first || index >= last) {
        tr.remove();
        rendered.delete(index);
      }
    }
    const kept = rendered.size ? [Math.max(first, range[0]), Math.min(last, range[1])] : [last, last];
    above.after(rows(first, kept[0]));
    below.before(rows(kept[1], last));
    range = [first, last];
    above.firstChild.style.height = `${first * ROW}px`;
    below.firstChild.style.height = `${(shown.length - last) * ROW}px`;
    if (loadSeries) {
      clearTimeout(seriesTimer);
      seriesTimer = setTimeout(fillSeries, 150);
    }
  }

  function rows(from, to) {
    const fragment = document.createDocumentFragment();
    for (let i = from; i < to; i++) {
      const tr = rowElement(shown[i], i);
      rendered.set(i, tr);
      fragment.append(tr);
    }
    return fragment;
  }

  let seriesTimer = null;
  const asked = new WeakSet();
  async function fillSeries() {
    const missing = shown.slice(range[0], range[1]).filter((row) => !asked.has(row));
    if (!missing.length) return;
    for (const row of missing) asked.add(row);
    try {
      await loadSeries(missing);
    } catch {
      // The rows keep empty sparklines; the view's own refresh reports the error.
    }
    // Only the charts change, so the focus stays where it is.
    for (const [index, tr] of rendered) {
      const row = shown[index];
      if (!missing.includes(row)) continue;
      columns.forEach((column, i) => {
        if (column.spark) tr.children[i].replaceChildren(sparkline(column.spark(row)));
      });
    }
  }

  function spacer() {
    const tr = document.createElement("tr");
    tr.className = "spacer";
    tr.setAttribute("aria-hidden", "true");
    tr.append(document.createElement("td"));
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
        if (!column.numeric) td.title = shownText;
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
      if (loadSeries) {
        const before = new Map(all.map((row) => [key(row), row.series]));
        for (const row of rows) row.series = before.get(key(row));
      }
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
