// Human units for the catalogue's units: cores, bytes, bytes/s, percent, ratio (a share of
// time, 0-1, shown as a percentage), counts.

// Each scaled unit's steps, smallest first: [factor, suffix].
const STEPS = {
  cores: [
    [1e-3, "m"],
    [1, " cores"],
  ],
  bytes: ["B", "KiB", "MiB", "GiB", "TiB"].map((suffix, i) => [1024 ** i, ` ${suffix}`]),
  "bytes/s": ["B/s", "KB/s", "MB/s", "GB/s"].map((suffix, i) => [1000 ** i, ` ${suffix}`]),
};

function fixed(value, digits) {
  return value.toFixed(digits).replace(/\.0+$|(\.\d*[1-9])0+$/, "$1");
}

// The index of the largest step that `value` fills at least once.
function stepOf(steps, value) {
  let index = 0;
  while (index + 1 < steps.length && value >= steps[index + 1][0]) index++;
  return index;
}

// `value` in steps[index]: whole numbers in the smallest step (250m, 512 B), else three
// significant figures.
function scaled(steps, index, value) {
  const [factor, suffix] = steps[index];
  const n = value / factor;
  const text = index === 0 ? String(Math.round(n)) : fixed(n, n < 10 ? 2 : n < 100 ? 1 : 0);
  return text === "1" && suffix === " cores" ? "1 core" : `${text}${suffix}`;
}

export function percent(value) {
  return `${fixed(value, 1)} %`;
}

export function plain(value) {
  return Number.isInteger(value) ? String(value) : fixed(value, 2);
}

function orDash(format) {
  return (value) => (value === null || value === undefined ? "—" : format(value));
}

// The formatter of a catalogue unit, each value in its own step; null and undefined read
// as an em dash.
export function formatter(unit) {
  const steps = STEPS[unit];
  if (steps) return orDash((value) => (value === 0 ? "0" : scaled(steps, stepOf(steps, value), value)));
  if (unit === "ratio") return orDash((value) => percent(100 * value));
  return orDash(unit === "percent" ? percent : plain);
}

// The formatter of a column of values: one step for all, as `kubectl top` keeps one unit.
// It is the largest value's, or the one below where the smallest would read below 1 in it
// and the largest keeps to five digits in that one: 1982m beside 4m, not 1.98 cores beside
// 0 cores; 11366 MiB beside 40 MiB; but 278 KB/s beside 0.02 KB/s.
export function columnFormatter(unit, values) {
  const steps = STEPS[unit];
  const present = values.filter((v) => v !== null && v !== undefined && v > 0);
  if (!steps || !present.length) return formatter(unit);
  const [smallest, largest] = [Math.min(...present), Math.max(...present)];
  let index = stepOf(steps, largest);
  if (index > 0 && smallest < steps[index][0] && largest < 1e5 * steps[index - 1][0]) index--;
  return orDash((value) => (value === 0 ? "0" : scaled(steps, index, value)));
}

// A span of seconds in the largest whole unit that reads well: 63 s, 5 min, 3 h, 2 d.
export function duration(seconds) {
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} d`;
}

export function time(seconds) {
  return new Date(seconds * 1000).toLocaleString();
}
