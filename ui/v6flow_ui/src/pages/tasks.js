// The task list: newest first, filtered by collaboration, status and name; live.
import { html, useEffect, useRef, useState } from "../lib.js";
import { idOf } from "../api.js";
import { Link, navigate, withQuery } from "../router.js";
import { useApp, useEvents } from "../context.js";
import { Name, useDirectory } from "../directory.js";
import { DataTable, ErrorMessage, Loading, Page, Pager, StatusBadge, useAsync } from "../components/ui.js";
import { formatTime } from "../format.js";

const PER_PAGE = 20;
export const STATUSES = ["pending", "initializing", "active", "completed", "failed",
  "start failed", "non-existing Docker image", "crashed", "killed by user", "not allowed",
  "unknown error"];

/**
 * Page `n` (1 = newest) of a list the server orders by id ascending: the total first, then
 * the one or two server pages that hold that window, newest first.
 */
export async function newestFirst(api, path, params, n, per) {
  const { total } = await api.page(path, { ...params, page: 1, per_page: 1 });
  const end = Math.max(0, total - (n - 1) * per);
  const start = Math.max(0, end - per);
  if (end === 0) return { data: [], total };
  const first = Math.floor(start / per) + 1;
  const last = Math.floor((end - 1) / per) + 1;
  const pages = [];
  for (let p = first; p <= last; p += 1) pages.push(api.page(path, { ...params, page: p, per_page: per }));
  const items = (await Promise.all(pages)).flatMap((page) => page.data);
  const offset = (first - 1) * per;
  return { data: items.slice(start - offset, end - offset).reverse(), total };
}

function useDebouncedReload(reload) {
  const timer = useRef(null);
  useEffect(() => () => clearTimeout(timer.current), []);
  return () => {
    clearTimeout(timer.current);
    timer.current = setTimeout(reload, 300);
  };
}

export function TaskListPage({ query }) {
  const { api, perms, me } = useApp();
  const directory = useDirectory();
  const page = Math.max(1, Number(query.get("page") ?? 1) || 1);
  const filters = {
    collaboration_id: query.get("collaboration") ?? "",
    status: query.get("status") ?? "",
    name: query.get("name") ?? "",
  };
  const [draft, setDraft] = useState(filters);
  useEffect(() => setDraft(filters), [query.toString()]);
  const list = useAsync(() => newestFirst(api, "task", {
    collaboration_id: filters.collaboration_id || undefined,
    status: filters.status || undefined,
    name: filters.name ? `%${filters.name}%` : undefined,
  }, page, PER_PAGE), [query.toString()]);
  const reload = useDebouncedReload(list.reload);
  useEvents({ sync: reload, new_task: reload, run_update: reload });

  const apply = (event) => {
    event.preventDefault();
    navigate(withQuery("/tasks", query, { collaboration: draft.collaboration_id,
                                          status: draft.status, name: draft.name.trim(), page: "" }));
  };
  const collaborations = directory ? [...directory.collaboration.values()] : [];
  const columns = [
    { key: "id", label: "Id", render: (t) => html`<${Link} href=${`/tasks/${t.id}`}>${t.id}<//>` },
    { key: "name", label: "Name", render: (t) => html`<${Link} href=${`/tasks/${t.id}`}>${t.name || "(no name)"}<//>` },
    { key: "status", label: "Status", render: (t) => html`<${StatusBadge} status=${t.status} />` },
    { key: "collaboration", label: "Collaboration",
      render: (t) => html`<${Name} kind="collaboration" id=${idOf(t.collaboration)} />` },
    { key: "image", label: "Image", className: "cell-code" },
    { key: "created_at", label: "Created", render: (t) => formatTime(t.created_at) },
  ];
  return html`
    <${Page} title="Tasks" actions=${[...me.collaborationIds].some((id) => perms.canCreateTask(id)) && html`
      <${Link} class="button" href="/tasks/new">New task<//>`}>
      <form class="filters" role="search" aria-label="Filter tasks" onSubmit=${apply}>
        <div class="field">
          <label for="filter-collaboration">Collaboration</label>
          <select id="filter-collaboration" value=${draft.collaboration_id}
                  onChange=${(e) => setDraft({ ...draft, collaboration_id: e.currentTarget.value })}>
            <option value="">All</option>
            ${collaborations.map((c) => html`<option value=${String(c.id)}>${c.name}</option>`)}
          </select>
        </div>
        <div class="field">
          <label for="filter-status">Status</label>
          <select id="filter-status" value=${draft.status}
                  onChange=${(e) => setDraft({ ...draft, status: e.currentTarget.value })}>
            <option value="">All</option>
            ${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
          </select>
        </div>
        <div class="field">
          <label for="filter-name">Name</label>
          <input id="filter-name" type="search" value=${draft.name}
                 onInput=${(e) => setDraft({ ...draft, name: e.currentTarget.value })} />
        </div>
        <button type="submit" class="button-secondary">Filter</button>
      </form>
      <${ErrorMessage} error=${list.error} />
      ${list.data === undefined && !list.error ? html`<${Loading} />` : list.data && html`
        <${DataTable} caption="Tasks, newest first" columns=${columns} rows=${list.data.data}
                      empty="No tasks match." />
        <${Pager} page=${page} perPage=${PER_PAGE} total=${list.data.total}
                  onPage=${(n) => navigate(withQuery("/tasks", query, { page: n }))} />`}
    <//>`;
}
