// Turning wire values into text people read: times, statuses, tabular results.

/** A wire datetime (naive UTC, ISO) as a Date, or null. */
export function parseTime(text) {
  if (!text) return null;
  const value = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`);
  return Number.isNaN(value.getTime()) ? null : value;
}

export function formatTime(text) {
  const value = parseTime(text);
  return value ? value.toLocaleString() : "—";
}

/** A size in bytes as people read it: "812 bytes", "3.4 MB" (decimal units). */
export function formatBytes(size) {
  if (!Number.isFinite(size) || size < 0) return "unknown size";
  if (size < 1000) return `${size} bytes`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = size / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

const UNITS = [["day", 86_400], ["hour", 3_600], ["minute", 60], ["second", 1]];

/** "3 minutes ago" (or "just now"); `now` is for tests and re-renders. */
export function formatAgo(text, now = Date.now()) {
  const value = parseTime(text);
  if (!value) return "never";
  const seconds = Math.round((now - value.getTime()) / 1000);
  if (seconds < 5) return "just now";
  const format = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  for (const [unit, size] of UNITS) {
    if (seconds >= size) return format.format(-Math.floor(seconds / size), unit);
  }
  return "just now";
}

/** Statuses of runs and tasks (v6flow/status.py), grouped for colour and icon. */
const FINISHED_OK = new Set(["completed"]);
const ACTIVE = new Set(["pending", "initializing", "active"]);
const KILLED = new Set(["killed by user"]);

export function statusKind(status) {
  if (FINISHED_OK.has(status)) return "ok";
  if (ACTIVE.has(status)) return "active";
  if (KILLED.has(status)) return "killed";
  if (status === "online") return "ok";
  if (status === "offline" || !status) return "idle";
  return "failed";
}

export function isFinished(status) {
  return !ACTIVE.has(status);
}

const isScalar = (value) => value === null || ["string", "number", "boolean"].includes(typeof value);

/**
 * A result as a table, when it is tabular: a list of flat objects (records), an object of
 * equally long lists (columns), an object of flat objects (one row per key), one flat object
 * (one row), pandas' "split" form ({columns, data}) or a list of equally long lists.
 * Returns {columns: [...], rows: [[...]]} or null.
 */
export function asTable(value) {
  if (Array.isArray(value) && value.length && value.every((row) => row && typeof row === "object"
      && !Array.isArray(row) && Object.values(row).every(isScalar))) {
    const columns = [...new Set(value.flatMap((row) => Object.keys(row)))];
    return { columns, rows: value.map((row) => columns.map((c) => row[c] ?? null)) };
  }
  if (Array.isArray(value) && value.length && value.every((row) => Array.isArray(row)
      && row.length === value[0].length && row.every(isScalar)) && value[0].length) {
    return { columns: value[0].map((_, i) => `${i}`), rows: value };
  }
  if (value && typeof value === "object" && !Array.isArray(value)) {
    if (Array.isArray(value.columns) && Array.isArray(value.data)
        && value.data.every((row) => Array.isArray(row) && row.every(isScalar))) {
      const columns = Array.isArray(value.index) ? ["", ...value.columns] : value.columns;
      const rows = value.data.map((row, i) => (Array.isArray(value.index)
        ? [value.index[i], ...row] : row));
      return { columns: columns.map(String), rows };
    }
    const entries = Object.entries(value);
    if (entries.length && entries.every(([, row]) => row && typeof row === "object"
        && !Array.isArray(row) && Object.values(row).every(isScalar))) {
      // {key: {column: value}}: one row per key (pandas' to_dict("index"))
      const columns = [...new Set(entries.flatMap(([, row]) => Object.keys(row)))];
      return { columns: ["", ...columns],
               rows: entries.map(([key, row]) => [key, ...columns.map((c) => row[c] ?? null)]) };
    }
    if (entries.length && entries.every(([, cell]) => isScalar(cell))) {
      return { columns: entries.map(([key]) => key), rows: [entries.map(([, cell]) => cell)] };
    }
    const lists = entries.every(([, column]) => Array.isArray(column) && column.every(isScalar));
    if (entries.length && lists) {
      const length = entries[0][1].length;
      if (length && entries.every(([, column]) => column.length === length)) {
        return { columns: entries.map(([key]) => key),
                 rows: Array.from({ length }, (_, i) => entries.map(([, column]) => column[i])) };
      }
    }
  }
  return null;
}

export function cellText(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number" && !Number.isInteger(value)) {
    return String(Math.round(value * 1e6) / 1e6);
  }
  return String(value);
}
