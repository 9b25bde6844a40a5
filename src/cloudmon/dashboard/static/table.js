// A sortable, filterable table that renders only the rows in view, so 10,000 rows scroll
// as smoothly as ten.

import { sparkline } from "./charts.js";
import { columnFormatter } from "./format.js";

const ROW = 36; // px, as `.grid tbody tr` in style.css
const OVERSCAN = 10;

// columns: [{id, title, help?, value(row), label?(row), unit?, href?(row), spark?(row), cell?(row,
// format), figures?(row), tip?(row), numeric?, wide?, notPhone?}]. The first column names the
// rows and takes the room the others leave. A column with a unit shows all its figures in one
// unit, chosen from them (its values, or each row's figures(row) where a cell shows several);
// label(row) is the text shown instead of the value, which the cell's tooltip gives whole;
// cell(row, format) is the cell's content as a node, the value still sorting; tip(row) is the
// cell's tooltip. wide and notPhone columns are hidden on narrow screens (style.css).
export function dataTable(parent, { name, columns, sort, filter, onState }) {
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
  let formats = new Map(); // column id -> the formatter of its figures
  let shown = [];
  let range = [-1, -1];

  for (const column of columns) {
    const th = document.createElement("th");
    th.scope = "col";
    th.dataset.column = column.id;
    if (column.numeric) th.className = "num";
    if (column.spark) th.className = "trend";
    if (column.wide) th.classList.add("wide");
    if (column.notPhone) th.classList.add("not-phone");
    if (column === columns[0]) th.classList.add("main");
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
      if (column.help) th.title = column.help;
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
      if (column.notPhone) td.classList.add("not-phone");
      if (column === columns[0]) td.classList.add("main");
      const value = column.value ? column.value(row) : undefined;
      if (column.numeric && value !== null && value !== undefined) td.dataset.value = String(value);
      if (column.spark) {
        td.append(sparkline(column.spark(row)));
      } else if (column.cell) {
        td.append(column.cell(row, formats.get(column.id)));
      } else {
        const format = formats.get(column.id);
        const shownText = column.label ? column.label(row) : format ? format(value) : (value ?? "—");
        if (!column.numeric) td.title = value ?? shownText;
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
      if (column.tip) td.title = column.tip(row);
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
      formats = new Map(
        columns
          .filter((c) => c.unit !== undefined)
          .map((c) => [c.id, columnFormatter(c.unit, rows.flatMap(c.figures || ((row) => [c.value(row)])))]),
      );
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
