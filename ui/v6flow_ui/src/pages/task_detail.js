// One task: its runs at each organization changing status live, each run's log as it
// grows, the results (JSON, and a table when tabular; decrypted in this tab in an encrypted
// collaboration; fetched from the blob store when they are there), kill and delete, and the
// Prefect flow run that created it.
import { html, useEffect, useRef, useState } from "../lib.js";
import { idOf } from "../api.js";
import { Link, navigate } from "../router.js";
import { useApp, useEvents, useLiveStatus } from "../context.js";
import { Name } from "../directory.js";
import {
  ConfirmButton, Details, ErrorMessage, JsonView, Loading, Notice, Page, StatusBadge,
  ValueTable, useAsync,
} from "../components/ui.js";
import { KeyPanel } from "../components/keys.js";
import { useKeyState } from "../keyring.js";
import { asTable, formatBytes, formatTime, isFinished } from "../format.js";
import { blobPayloadStream, openInput, readBlobResult, readResult } from "../wire.js";

const PREFECT_UI_KEY = "v6flow.prefectUiUrl";
/** Result blobs up to this size (their stored, base64 text) are shown; larger ones downloaded. */
export const RENDER_LIMIT_BYTES = 2 * 1024 * 1024;

const isHttp = (text) => typeof text === "string" && /^https?:\/\/\S+$/.test(text);

/**
 * The link to the task's Prefect flow run: at the Prefect UI address this browser keeps (the
 * account page), else the one the server announces (`GET /ui/config` `prefect_ui_url`).
 */
export function prefectRunUrl(task, config = {}) {
  const id = typeof task.flow_run_id === "string" ? task.flow_run_id : null;
  if (!id) return null;
  const own = getPrefectUiUrl();
  const base = (isHttp(own) ? own : isHttp(config?.prefect_ui_url) ? config.prefect_ui_url : "")
    .replace(/\/+$/, "");
  return base ? `${base}/runs/flow-run/${encodeURIComponent(id)}` : null;
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

/** A decoded result: a table when tabular, and its JSON. */
function ResultValue({ run, read }) {
  if (!read.ok) return html`<${ErrorMessage} error=${read.error} />`;
  if (read.value === undefined) return html`<p class="empty">This run returned no result.</p>`;
  const label = `Result of run ${run.id}`;
  return html`
    ${read.scheme === "v4" && html`<p class="hint">Encrypted with vantage6 4.x's scheme, which
      cannot detect changes to the result.</p>`}
    <${ValueTable} value=${read.value} caption=${label} />
    <details class="json-details" open=${asTable(read.value) === null}>
      <summary>Result as JSON</summary>
      <${JsonView} value=${read.value} label=${`${label} as JSON`} />
    </details>`;
}

/** The first `limit` bytes of a response, or null (body cancelled) when it has more. */
async function readAtMost(response, limit) {
  const reader = response.body.getReader();
  const parts = [];
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > limit) {
      await reader.cancel();
      return null;
    }
    parts.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

/** Save a stream as a file through an object URL (the page never holds it as text). */
async function saveStream(stream, fileName) {
  const blob = await new Response(stream).blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = fileName;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** A result in the blob store: fetched with the bearer token; shown, or offered as a file. */
function BlobResult({ run, result, context }) {
  const { api } = useApp();
  const [state, setState] = useState({ loading: true });
  const [saving, setSaving] = useState(null);
  const path = `blobstream/${encodeURIComponent(result.result)}`;
  useEffect(() => {
    const controller = new AbortController();
    setState({ loading: true });
    (async () => {
      const response = await api.stream(path, { signal: controller.signal });
      const size = Number(response.headers.get("content-length") ?? NaN);
      const bytes = size > RENDER_LIMIT_BYTES ? null : await readAtMost(response, RENDER_LIMIT_BYTES);
      if (bytes === null) {
        if (response.body && !response.bodyUsed) await response.body.cancel().catch(() => {});
        setState({ large: true, size });
      } else {
        setState({ size: bytes.length, read: await readBlobResult(bytes, context) });
      }
    })().catch((error) => {
      if (error?.name !== "AbortError") setState({ error });
    });
    return () => controller.abort();
  }, [path, context.key]);

  const download = async () => {
    setSaving({ busy: true });
    try {
      const response = await api.stream(path);
      await saveStream(await blobPayloadStream(response.body, context),
        `result-task-${context.task.id}-run-${run.id}.json`);
      setSaving({ done: true });
    } catch (error) {
      setSaving({ error: `The result could not be downloaded: ${error.message}` });
    }
  };

  if (state.loading) return html`<${Loading} label="Fetching the result from the blob store…" />`;
  if (state.error) return html`<${ErrorMessage} error=${state.error} />`;
  if (state.large) {
    return html`
      <p class="blob-size">The result is in the blob store: ${formatBytes(state.size)}, too large
        to show here.</p>
      <button type="button" class="button-secondary" onClick=${download}
              disabled=${saving?.busy}>${saving?.busy ? "Downloading…" : "Download the result"}</button>
      ${saving?.done && html`<p class="hint" role="status">Downloaded.</p>`}
      <${ErrorMessage} error=${saving?.error} />`;
  }
  return html`<p class="hint blob-size">From the blob store (${formatBytes(state.size)}).</p>
    <${ResultValue} run=${run} read=${state.read} />`;
}

function InlineResult({ run, result, context }) {
  const [read, setRead] = useState(null);
  useEffect(() => {
    let live = true;
    readResult(result.result, context).then((value) => live && setRead(value));
    return () => { live = false; };
  }, [result.result, run.input, context.key]);
  if (!read) return html`<${Loading} />`;
  return html`<${ResultValue} run=${run} read=${read} />`;
}

function ResultView({ run, result, context }) {
  if (!result || !result.result) {
    return html`<p class="empty">${result && isFinished(run.status)
      ? "This run returned no result." : "No result yet."}</p>`;
  }
  if (result.blob_storage_used) return html`<${BlobResult} run=${run} result=${result} context=${context} />`;
  return html`<${InlineResult} run=${run} result=${result} context=${context} />`;
}

function RunInput({ run, context }) {
  const [input, setInput] = useState(null);
  useEffect(() => {
    let live = true;
    openInput(run.input, context).then((value) => live && setInput(value));
    return () => { live = false; };
  }, [run.input, context.key]);
  if (!input) return html`<${Loading} />`;
  if (input.reason) return html`<p class="empty">${input.reason}</p>`;
  return html`<${JsonView} value=${input.value} label=${`Input of run ${run.id}`} />`;
}

function RunCard({ run, result, context }) {
  const organizationId = idOf(run.organization);
  const [inputOpen, setInputOpen] = useState(false); // read (and decrypted) only when opened
  const runContext = { ...context, run,
                       sentNonce: context.keyring?.sentNonce(context.task.id, organizationId) };
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
      <details class="run-section run-result" open=${run.status === "completed"}>
        <summary>Result</summary>
        <${ResultView} run=${run} result=${result} context=${runContext} />
      </details>
      ${run.input && html`<details class="run-section"
                                   onToggle=${(e) => setInputOpen(e.currentTarget.open)}>
        <summary>Input</summary>
        ${inputOpen && html`<${RunInput} run=${run} context=${runContext} />`}
      </details>`}
    </article>`;
}

/** What reading this task's encrypted results takes, above the runs. */
function EncryptionNotice({ task, keyState, me }) {
  const initOrganizationId = idOf(task.init_org);
  const mine = initOrganizationId === me.organizationId;
  if (keyState && mine) {
    return html`<${Notice} kind="info">Encrypted collaboration: the results below are decrypted in
      this tab with the key of <${Name} kind="organization" id=${initOrganizationId} link=${false}
      /> (fingerprint <code>${keyState.key.fingerprint}</code>), which never leaves it.<//>`;
  }
  if (keyState) {
    return html`<${Notice} kind="warning">The results of this task are encrypted
      for <${Name} kind="organization" id=${initOrganizationId} link=${false} />, which created it;
      the key in this tab is your organization's.<//>`;
  }
  return html`<${KeyPanel} reason=${mine
    ? "This collaboration is encrypted. Load the key to read the results of this task."
    : "This collaboration is encrypted. The results of this task are encrypted for the organization that created it."} />`;
}

export function TaskDetailPage({ params }) {
  const { api, perms, keyring, me, config } = useApp();
  const keyState = useKeyState(keyring);
  const taskId = Number(params.id);
  const [message, setMessage] = useState(null);
  const live = useLiveStatus();
  const data = useAsync(async () => {
    const task = await api.get(`task/${taskId}`);
    const [runs, results, children, collaboration] = await Promise.all([
      api.all("run", { task_id: taskId, include: "input" }),
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
  const prefectUrl = prefectRunUrl(task, config);
  const context = { collaboration, task, keyring, key: keyState?.key ?? null,
                    keyOrganizationId: keyState?.organizationId ?? null };

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
            : html`<code>${task.flow_run_id}</code> <span class="hint">(set the Prefect UI address on your <${Link} href="/account">account page<//> to get a link)</span>`],
        ]} />
      </div>
      ${collaboration?.encrypted && html`<${EncryptionNotice} task=${task} keyState=${keyState} me=${me} />`}
      <section aria-labelledby="runs-title">
        <h2 id="runs-title">Runs</h2>
        ${runs.length === 0 && html`<p class="empty">This task has no runs.</p>`}
        <div class="runs">
          ${runs.map((run) => html`<${RunCard} key=${run.id} run=${run} result=${results[run.id]}
                                               context=${context} />`)}
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
