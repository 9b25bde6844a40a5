// GET /api/... with the range's time parameters; errors say whether the server answered.

export class Unreachable extends Error {}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const TOKEN_KEY = "cloudmon.readToken";

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// The query parameters of a range: {preset} or {from, to} in unix seconds.
export function timeParams(range, points) {
  const params = {};
  let seconds;
  if (range.preset) {
    params.window = range.preset;
    seconds = { "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800 }[range.preset];
  } else {
    params.start = String(range.from);
    params.end = String(range.to);
    seconds = range.to - range.from;
  }
  if (points) params.step = `${stepFor(seconds, points)}s`;
  return params;
}

// About `points` steps, each a multiple of the coarsest resolution the server keeps (1 h,
// 1 min, 10 s) that still gives a quarter of them, so long ranges are read from rollups.
export function stepFor(seconds, points) {
  for (const resolution of [3600, 60, 10]) {
    const step = Math.max(resolution, Math.ceil(seconds / points / resolution) * resolution);
    if (seconds / step >= points / 4) return step;
  }
  return 10;
}

export async function get(path, params = {}) {
  const query = new URLSearchParams(params).toString();
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(`api/${path}${query ? `?${query}` : ""}`, { headers });
  } catch {
    throw new Unreachable("no answer");
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new Unreachable(`the server answered ${response.status} without JSON`);
  }
  if (!response.ok) throw new ApiError(response.status, body.error || response.statusText);
  return body;
}
