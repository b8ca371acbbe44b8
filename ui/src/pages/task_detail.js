// One task: its runs at each organization changing status live, each run's log as it
// grows, the results (JSON, and a table when tabular), kill and delete, and the Prefect
// flow run that created it.
import { html, useEffect, useRef, useState } from "../lib.js";
import { idOf } from "../api.js";
import { Link, navigate } from "../router.js";
import { useApp, useEvents, useLiveStatus } from "../context.js";
import { Name } from "../directory.js";
import {
  ConfirmButton, Details, ErrorMessage, JsonView, Loading, Notice, Page, StatusBadge,
  ValueTable, useAsync,
} from "../components/ui.js";
import { asTable, formatTime, isFinished } from "../format.js";
import { decodeInput, readResult } from "../wire.js";

const PREFECT_UI_KEY = "v6flow.prefectUiUrl";

/** The Prefect UI address: the task's own link if the server gives one, else this browser's setting. */
export function prefectRunUrl(task) {
  const id = typeof task.flow_run_id === "string" ? task.flow_run_id : null;
  if (!id) return null;
  if (typeof task.flow_run_url === "string" && /^https?:\/\//.test(task.flow_run_url)) {
    return task.flow_run_url;
  }
  const base = (localStorage.getItem(PREFECT_UI_KEY) ?? "").replace(/\/+$/, "");
  return /^https?:\/\//.test(base) ? `${base}/runs/flow-run/${encodeURIComponent(id)}` : null;
}

export function getPrefectUiUrl() {
  return localStorage.getItem(PREFECT_UI_KEY) ?? "";
}

export function setPrefectUiUrl(value) {
  if (value) localStorage.setItem(PREFECT_UI_KEY, value);
  else localStorage.removeItem(PREFECT_UI_KEY);
}

/** A log that grows; it follows the end unless the reader scrolled up. */
function LogView({ text, label }) {
  const ref = useRef(null);
  const follow = useRef(true);
  useEffect(() => {
    const element = ref.current;
    if (element && follow.current) element.scrollTop = element.scrollHeight;
  }, [text]);
  const onScroll = (event) => {
    const element = event.currentTarget;
    follow.current = element.scrollHeight - element.scrollTop - element.clientHeight < 24;
  };
  if (!text) return html`<p class="empty">No log lines yet.</p>`;
  return html`<pre class="code log" ref=${ref} tabindex="0" aria-label=${label}
                   onScroll=${onScroll}>${text}</pre>`;
}

function ResultView({ run, result, collaboration }) {
  const [read, setRead] = useState(null);
  useEffect(() => {
    let live = true;
    readResult(result?.result, { collaboration, run }).then((value) => live && setRead(value));
    return () => { live = false; };
  }, [result?.result]);
  if (!result) return html`<p class="empty">No result yet.</p>`;
  if (!read) return html`<${Loading} />`;
  if (!read.ok) return html`<${ErrorMessage} error=${read.error} />`;
  if (read.value === undefined) return html`<p class="empty">This run returned no result.</p>`;
  const label = `Result of run ${run.id}`;
  return html`
    <${ValueTable} value=${read.value} caption=${label} />
    <details class="json-details" open=${asTable(read.value) === null}>
      <summary>Result as JSON</summary>
      <${JsonView} value=${read.value} label=${`${label} as JSON`} />
    </details>`;
}

function RunCard({ run, result, collaboration }) {
  const input = run.input ? decodeInput(run.input) : null;
  const organizationId = idOf(run.organization);
  return html`
    <article class="run" data-run-id=${run.id} data-organization-id=${organizationId}
             aria-labelledby=${`run-${run.id}-title`}>
      <header class="run-header">
        <h3 id=${`run-${run.id}-title`}>
          <${Name} kind="organization" id=${organizationId} link=${false} />
          <span class="run-id">run ${run.id}</span>
        </h3>
        <${StatusBadge} status=${run.status} />
      </header>
      <${Details} items=${[
        ["Node", run.node ? html`${run.node.name} <${StatusBadge} status=${run.node.status ?? "offline"} />` : "—"],
        ["Started", formatTime(run.started_at)],
        ["Finished", formatTime(run.finished_at)],
      ]} />
      <details class="run-section" open>
        <summary>Log</summary>
        <${LogView} text=${run.log} label=${`Log of run ${run.id}`} />
      </details>
      <details class="run-section" open=${run.status === "completed"}>
        <summary>Result</summary>
        <${ResultView} run=${run} result=${result} collaboration=${collaboration} />
      </details>
      ${input && html`<details class="run-section">
        <summary>Input</summary>
        <${JsonView} value=${input} label=${`Input of run ${run.id}`} />
      </details>`}
    </article>`;
}

export function TaskDetailPage({ params }) {
  const { api, perms } = useApp();
  const taskId = Number(params.id);
  const [message, setMessage] = useState(null);
  const live = useLiveStatus();
  const data = useAsync(async () => {
    const task = await api.get(`task/${taskId}`);
    const [runs, results, children, collaboration] = await Promise.all([
      api.all("run", { task_id: taskId }),
      api.all("result", { task_id: taskId }).catch(() => []),
      api.all("task", { parent_id: taskId }).catch(() => []),
      api.get(`collaboration/${idOf(task.collaboration)}`).catch(() => null),
    ]);
    runs.sort((a, b) => a.id - b.id);
    return { task, runs, children, collaboration,
             results: Object.fromEntries(results.map((r) => [idOf(r.run) ?? r.id, r])) };
  }, [taskId]);

  const refreshRun = async (runId) => {
    const [run, task] = await Promise.all([api.get(`run/${runId}`), api.get(`task/${taskId}`)]);
    const result = isFinished(run.status) ? await api.get(`result/${runId}`).catch(() => null) : null;
    data.setData((d) => d && {
      ...d, task,
      runs: d.runs.some((r) => r.id === run.id) ? d.runs.map((r) => (r.id === run.id ? run : r))
        : [...d.runs, run].sort((a, b) => a.id - b.id),
      results: result ? { ...d.results, [run.id]: result } : d.results,
    });
  };

  useEvents({
    sync: () => data.reload(),
    run_update: (event) => {
      if (event?.task_id === taskId && event.run_id) refreshRun(event.run_id).catch(() => data.reload());
      else if (event?.task_id && data.data?.children.some((c) => c.id === event.task_id)) data.reload();
    },
    algorithm_log: (event) => {
      if (event?.task_id !== taskId || !Array.isArray(event.lines)) return;
      data.setData((d) => d && { ...d, runs: d.runs.map((r) => (r.id === event.run_id
        ? { ...r, log: (r.log ?? "") + event.lines.map((line) => `${line}\n`).join("") } : r)) });
    },
    new_task: (event) => {
      if (event?.parent_id === taskId) data.reload();
    },
  });

  if (data.error && !data.data) {
    return html`<${Page} title=${`Task ${taskId}`}><${ErrorMessage} error=${data.error} /><//>`;
  }
  if (!data.data) return html`<${Page} title=${`Task ${taskId}`}><${Loading} /><//>`;
  const { task, runs, results, children, collaboration } = data.data;
  const collaborationId = idOf(task.collaboration);
  const initOrganizationId = idOf(task.init_org);
  const finished = isFinished(task.status);
  const canKill = !finished && perms.canKill({ collaborationId, organizationId: initOrganizationId });
  const canDelete = perms.canDeleteTask({ collaborationId, initOrganizationId });
  const prefectUrl = prefectRunUrl(task);

  const kill = async () => {
    const answer = await api.post("kill/task", { id: task.id });
    setMessage(answer?.msg ?? "Kill requested.");
    data.reload();
  };
  const remove = async () => {
    await api.del(`task/${task.id}`);
    navigate("/tasks");
  };
  const actions = html`
    ${live !== "open" && html`<button type="button" class="button-secondary"
      onClick=${() => data.reload()}>Refresh</button>`}
    ${canKill && html`<${ConfirmButton} label="Kill task" title="Kill task" confirmLabel="Kill"
      message=${`Stop every unfinished run of task ${task.id}?`} onConfirm=${kill} />`}
    ${canDelete && html`<${ConfirmButton} label="Delete task" title="Delete task" confirmLabel="Delete"
      message=${`Delete task ${task.id} with its runs, results and subtasks? This cannot be undone.`}
      onConfirm=${remove} />`}`;

  return html`
    <${Page} title=${`Task ${task.id}: ${task.name || "(no name)"}`} actions=${actions} wide>
      <p class="breadcrumb"><${Link} href="/tasks">All tasks<//></p>
      ${message && html`<${Notice} kind="success">${message}<//>`}
      <div class="task-summary">
        <p class="task-status">Status: <${StatusBadge} status=${task.status} /></p>
        <${Details} items=${[
          ["Image", html`<code>${task.image}</code>`],
          ["Collaboration", html`<${Name} kind="collaboration" id=${collaborationId} />`],
          task.study && ["Study", html`<${Name} kind="study" id=${idOf(task.study)} />`],
          ["Created", formatTime(task.created_at)],
          ["Finished", formatTime(task.finished_at)],
          ["Created by", html`<${Name} kind="organization" id=${initOrganizationId} />${task.init_user ? ` (user ${idOf(task.init_user)})` : ""}`],
          ["Job", task.job_id],
          task.parent && ["Parent task", html`<${Link} href=${`/tasks/${idOf(task.parent)}`}>Task ${idOf(task.parent)}<//>`],
          task.description && ["Description", task.description],
          (task.databases ?? []).length > 0 && ["Databases", task.databases.map((d) => d.label).join(", ")],
          task.flow_run_id && ["Prefect flow run", prefectUrl
            ? html`<a href=${prefectUrl} target="_blank" rel="noopener noreferrer">Open flow run ${task.flow_run_id} in Prefect</a>`
            : html`<code>${task.flow_run_id}</code> <span class="hint">(set the Prefect UI address on your account page to get a link)</span>`],
        ]} />
      </div>
      <section aria-labelledby="runs-title">
        <h2 id="runs-title">Runs</h2>
        ${runs.length === 0 && html`<p class="empty">This task has no runs.</p>`}
        <div class="runs">
          ${runs.map((run) => html`<${RunCard} key=${run.id} run=${run} result=${results[run.id]}
                                               collaboration=${collaboration} />`)}
        </div>
      </section>
      ${children.length > 0 && html`
        <section aria-labelledby="children-title">
          <h2 id="children-title">Subtasks</h2>
          <ul class="plain-list">${children.map((child) => html`
            <li key=${child.id}><${Link} href=${`/tasks/${child.id}`}>Task ${child.id}: ${child.name || "(no name)"}<//>
              <${StatusBadge} status=${child.status} /></li>`)}</ul>
        </section>`}
    <//>`;
}
