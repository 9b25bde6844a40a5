// Human units for the catalogue's units: cores, bytes, bytes/s, percent, counts.

const KIB = 1024;
const MIB = KIB * 1024;
const GIB = MIB * 1024;
const TIB = GIB * 1024;

function fixed(value, digits) {
  return value.toFixed(digits).replace(/\.0+$|(\.\d*[1-9])0+$/, "$1");
}

export function cores(value) {
  if (value === 0) return "0";
  if (value < 1) return `${Math.round(value * 1000)}m`;
  const text = fixed(value, value < 10 ? 2 : 1);
  return `${text} ${text === "1" ? "core" : "cores"}`;
}

export function bytes(value) {
  if (value >= TIB) return `${fixed(value / TIB, 2)} TiB`;
  if (value >= GIB) return `${fixed(value / GIB, 2)} GiB`;
  if (value >= MIB) return `${fixed(value / MIB, 1)} MiB`;
  if (value >= KIB) return `${fixed(value / KIB, 1)} KiB`;
  return `${Math.round(value)} B`;
}

export function rate(value) {
  if (value >= 1e9) return `${fixed(value / 1e9, 2)} GB/s`;
  if (value >= 1e6) return `${fixed(value / 1e6, 2)} MB/s`;
  if (value >= 1e3) return `${fixed(value / 1e3, 1)} KB/s`;
  return `${Math.round(value)} B/s`;
}

export function percent(value) {
  return `${fixed(value, 1)} %`;
}

export function plain(value) {
  return Number.isInteger(value) ? String(value) : fixed(value, 2);
}

const BY_UNIT = { cores, bytes, "bytes/s": rate, percent };

// The formatter of a catalogue unit; null and undefined read as an em dash.
export function formatter(unit) {
  const format = BY_UNIT[unit] || plain;
  return (value) => (value === null || value === undefined ? "—" : format(value));
}

// A short label from a catalogue help text: its first clause, capitalised.
export function label(help) {
  const clause = help.split(/[;,(]/)[0].trim();
  return clause.charAt(0).toUpperCase() + clause.slice(1);
}

export function time(seconds) {
  return new Date(seconds * 1000).toLocaleString();
}
