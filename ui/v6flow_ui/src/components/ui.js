// Building blocks every page uses: page frame, messages, tables, pager, badges, dialogs.
import { html, useCallback, useEffect, useRef, useState } from "../lib.js";
import { asTable, cellText, formatAgo, formatTime, statusKind } from "../format.js";

/** A page: its heading (focused after a navigation, for screen readers) and actions. */
export function Page({ title, actions, children, wide = false }) {
  const heading = useRef(null);
  useEffect(() => {
    document.title = `${title} · v6flow`;
    if (document.body.dataset.navigated) heading.current?.focus({ preventScroll: false });
  }, [title]);
  return html`
    <section class=${`page${wide ? " page-wide" : ""}`} aria-labelledby="page-title">
      <header class="page-header">
        <h1 id="page-title" tabindex="-1" ref=${heading}>${title}</h1>
        ${actions && html`<div class="page-actions">${actions}</div>`}
      </header>
      ${children}
    </section>`;
}

/** An error next to what caused it (role=alert: read out when it appears). */
export function ErrorMessage({ error, id }) {
  if (!error) return null;
  const text = typeof error === "string" ? error : error.message;
  return html`<p class="message message-error" role="alert" id=${id}>${text}</p>`;
}

export function Notice({ children, kind = "info" }) {
  return html`<p class=${`message message-${kind}`}>${children}</p>`;
}

export function Loading({ label = "Loading…" }) {
  return html`<p class="loading" role="status" aria-live="polite">${label}</p>`;
}

/** Text and colour for a status: never colour alone. */
export function StatusBadge({ status, label }) {
  const kind = statusKind(status);
  return html`<span class=${`badge badge-${kind}`} data-status=${status}>
    <span class="badge-dot" aria-hidden="true"></span>${label ?? status ?? "unknown"}</span>`;
}

/**
 * A table that turns into labelled cards on a narrow screen.
 * columns: [{key, label, render(row)?, className?}]
 */
export function DataTable({ caption, columns, rows, empty = "Nothing to show.", rowKey = "id" }) {
  if (!rows?.length) return html`<p class="empty">${empty}</p>`;
  return html`
    <div class="table-wrap">
      <table class="data-table">
        <caption class="visually-hidden">${caption}</caption>
        <thead><tr>${columns.map((c) => html`<th scope="col" class=${c.className}>${c.label}</th>`)}</tr></thead>
        <tbody>
          ${rows.map((row) => html`
            <tr key=${row[rowKey]}>
              ${columns.map((c) => html`
                <td data-label=${c.label} class=${c.className}>
                  ${c.render ? c.render(row) : cellText(row[c.key])}
                </td>`)}
            </tr>`)}
        </tbody>
      </table>
    </div>`;
}

/** Previous/next paging with "page x of y". */
export function Pager({ page, perPage, total, onPage }) {
  const pages = Math.max(1, Math.ceil(total / perPage));
  if (pages <= 1) return null;
  return html`
    <nav class="pager" aria-label="Pages">
      <button type="button" class="button-secondary" disabled=${page <= 1}
              onClick=${() => onPage(page - 1)}>Previous</button>
      <span>Page ${page} of ${pages} (${total} in all)</span>
      <button type="button" class="button-secondary" disabled=${page >= pages}
              onClick=${() => onPage(page + 1)}>Next</button>
    </nav>`;
}

/** Data from an async function, re-read when `deps` change or `reload()` is called. */
export function useAsync(load, deps) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true });
  const generation = useRef(0);
  const reload = useCallback(async () => {
    const mine = ++generation.current;
    setState((s) => ({ ...s, loading: true }));
    try {
      const data = await load();
      if (mine === generation.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (mine === generation.current) setState((s) => ({ ...s, error, loading: false }));
    }
  }, deps);
  useEffect(() => { reload(); }, [reload]);
  const setData = useCallback((update) => setState((s) => ({
    ...s, data: typeof update === "function" ? update(s.data) : update })), []);
  return { ...state, reload, setData };
}

/**
 * A button that asks first in a modal dialog (native <dialog>: focus stays inside, Escape
 * cancels, focus returns to the button). `onConfirm(extra)` may throw: its error is shown in
 * the dialog. `extra` renders more controls (e.g. "also delete dependents") given a setter.
 */
export function ConfirmButton({ label, title, message, confirmLabel, onConfirm, danger = true,
                                extra, className = "" }) {
  const dialog = useRef(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [options, setOptions] = useState({});
  const open = () => {
    setError(null);
    setOptions({});
    dialog.current?.showModal();
  };
  const confirm = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await onConfirm(options);
      dialog.current?.close();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const buttonClass = `${danger ? "button-danger" : "button-secondary"} ${className}`;
  return html`
    <button type="button" class=${buttonClass} onClick=${open}>${label}</button>
    <dialog ref=${dialog} class="dialog" aria-labelledby=${`${title}-title`.replace(/\W/g, "-")}>
      <form method="dialog" onSubmit=${confirm}>
        <h2 id=${`${title}-title`.replace(/\W/g, "-")}>${title}</h2>
        <p>${message}</p>
        ${extra && extra(options, setOptions)}
        <${ErrorMessage} error=${error} />
        <div class="dialog-actions">
          <button type="button" class="button-secondary" onClick=${() => dialog.current?.close()}>Cancel</button>
          <button type="submit" class=${danger ? "button-danger" : ""} disabled=${busy}>
            ${busy ? "Working…" : confirmLabel ?? label}
          </button>
        </div>
      </form>
    </dialog>`;
}

const scalar = (value) => value === null || typeof value !== "object";

/** JSON indented by level, with lists of plain values kept on one line. */
export function prettyJson(value, indent = "") {
  if (Array.isArray(value)) {
    if (value.every(scalar)) return `[${value.map((item) => JSON.stringify(item)).join(", ")}]`;
    const inner = `${indent}  `;
    return `[\n${value.map((item) => inner + prettyJson(item, inner)).join(",\n")}\n${indent}]`;
  }
  if (value && typeof value === "object") {
    const entries = Object.entries(value);
    if (!entries.length) return "{}";
    const inner = `${indent}  `;
    return `{\n${entries.map(([key, item]) => `${inner}${JSON.stringify(key)}: ${prettyJson(item, inner)}`)
      .join(",\n")}\n${indent}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** JSON, pretty-printed, in a scrollable block. */
export function JsonView({ value, label }) {
  return html`<pre class="code" tabindex="0" aria-label=${label}>${prettyJson(value)}</pre>`;
}

/** A tabular value as a table (see format.asTable), else null. */
export function ValueTable({ value, caption }) {
  const table = asTable(value);
  if (!table) return null;
  return html`
    <div class="table-wrap result-table" tabindex="0" role="region" aria-label=${caption}>
      <table class="data-table data-table-plain">
        <caption class="visually-hidden">${caption}</caption>
        <thead><tr>${table.columns.map((c) => html`<th scope="col">${c}</th>`)}</tr></thead>
        <tbody>${table.rows.map((row) => html`
          <tr>${row.map((cell) => html`<td>${cellText(cell)}</td>`)}</tr>`)}
        </tbody>
      </table>
    </div>`;
}

/** A description list of label/value pairs. */
export function Details({ items }) {
  return html`
    <dl class="details">
      ${items.filter(Boolean).map(([label, value]) => html`
        <div class="details-row"><dt>${label}</dt><dd>${value ?? "—"}</dd></div>`)}
    </dl>`;
}

/** Re-render every `ms` (for relative times such as "3 minutes ago"). */
export function useNow(ms = 30_000) {
  const [now, setNow] = useState(Date.now);
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

/** When a node was last seen: "now" while it is online, else how long ago (kept current). */
export function LastSeen({ node }) {
  const now = useNow();
  const online = node.status === "online";
  const title = node.last_seen ? `${online ? "Connected" : "Last seen"} ${formatTime(node.last_seen)}` : undefined;
  return html`<time datetime=${node.last_seen} title=${title}>
    ${online ? "now" : formatAgo(node.last_seen, now)}</time>`;
}
