// Creating a task: collaboration or study, organizations, image, method, arguments as JSON
// (checked while typing), databases. Inputs go through the encryption seam (wire.js).
import { html, useEffect, useId, useState } from "../lib.js";
import { navigate, Link } from "../router.js";
import { useApp } from "../context.js";
import { ErrorMessage, Notice, Page } from "../components/ui.js";
import { KeyPanel } from "../components/keys.js";
import { useKeyState } from "../keyring.js";
import {
  CheckboxGroup, Form, SelectField, TextArea, TextField, errorFor, useForm,
} from "../components/forms.js";
import { encryptInput } from "../wire.js";

/** The parse error of a JSON field that must hold `kind` ("array" | "object"), or null. */
export function jsonError(text, kind) {
  if (!String(text ?? "").trim()) return null;
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `Not valid JSON: ${error.message}`;
  }
  if (kind === "array" && !Array.isArray(value)) return "Must be a JSON list, e.g. [1, \"a\"].";
  if (kind === "object" && (value === null || typeof value !== "object" || Array.isArray(value))) {
    return "Must be a JSON object, e.g. {\"column\": \"age\"}.";
  }
  return null;
}

/** A JSON text area that says whether its text is valid while one types. */
function JsonField({ form, name, label, kind, hint }) {
  const id = useId();
  const live = jsonError(form.values[name], kind);
  const error = errorFor(form.errors, name) ?? live;
  return html`
    <div class=${`field ${error ? "field-invalid" : ""}`}>
      <label for=${id}>${label}</label>
      <p class="hint" id=${`${id}-hint`}>${hint}</p>
      <textarea id=${id} name=${name} rows="3" class="code-input" spellcheck="false"
                value=${form.values[name]} onInput=${(e) => form.set(name, e.currentTarget.value)}
                aria-invalid=${error ? "true" : "false"}
                aria-describedby=${`${id}-hint${error ? ` ${id}-error` : ""}`}></textarea>
      ${error ? html`<p class="field-error" id=${`${id}-error`}>${error}</p>`
              : html`<p class="field-ok">Valid JSON.</p>`}
    </div>`;
}

/** One row per database: its label and an optional query. */
function DatabasesField({ form }) {
  const rows = form.values.databases;
  const error = errorFor(form.errors, "databases");
  const update = (index, key, value) => form.set("databases",
    rows.map((row, i) => (i === index ? { ...row, [key]: value } : row)));
  return html`
    <fieldset class=${`field ${error ? "field-invalid" : ""}`} aria-invalid=${error ? "true" : "false"}>
      <legend>Databases</legend>
      <p class="hint">The labels of the node databases the algorithm reads, in order.</p>
      ${rows.map((row, index) => html`
        <div class="database-row" key=${index}>
          <div class="field">
            <label for=${`db-label-${index}`}>Label ${index + 1}</label>
            <input id=${`db-label-${index}`} value=${row.label}
                   onInput=${(e) => update(index, "label", e.currentTarget.value)} />
          </div>
          <div class="field">
            <label for=${`db-query-${index}`}>Query (optional)</label>
            <input id=${`db-query-${index}`} value=${row.query}
                   onInput=${(e) => update(index, "query", e.currentTarget.value)} />
          </div>
          <button type="button" class="button-secondary"
                  onClick=${() => form.set("databases", rows.filter((_, i) => i !== index))}>
            Remove<span class="visually-hidden"> database ${index + 1}</span></button>
        </div>`)}
      <button type="button" class="button-secondary"
              onClick=${() => form.set("databases", [...rows, { label: "", query: "" }])}>Add database</button>
      ${error && html`<p class="field-error">${error}</p>`}
    </fieldset>`;
}

function validate(values) {
  return {
    collaboration_id: values.collaboration_id ? null : "Choose a collaboration.",
    organizations: values.organizations.length ? null : "Choose at least one organization.",
    image: values.image.trim() ? null : "Enter the algorithm's Docker image.",
    method: values.method.trim() ? null : "Enter the function the algorithm should run.",
    args: jsonError(values.args, "array"),
    kwargs: jsonError(values.kwargs, "object"),
    databases: values.databases.some((d) => !d.label.trim()) ? "Every database needs a label." : null,
  };
}

/** The organizations' public keys as the server has them now (an encrypted task needs them). */
async function withPublicKeys(api, organizations) {
  return Promise.all(organizations.map((organization) => api.get(`organization/${organization.id}`)
    .catch(() => organization)));
}

export function TaskCreatePage({ query }) {
  const { api, perms, keyring, me } = useApp();
  const keyState = useKeyState(keyring);
  const [collaborations, setCollaborations] = useState([]);
  const [loadError, setLoadError] = useState(null);
  const form = useForm({
    collaboration_id: query.get("collaboration") ?? "", study_id: query.get("study") ?? "",
    organizations: [], name: "", description: "", image: "", method: "",
    args: "[]", kwargs: "{}", databases: [{ label: "default", query: "" }],
  }, validate);
  const collaborationId = Number(form.values.collaboration_id) || null;
  const studyId = Number(form.values.study_id) || null;
  const [studies, setStudies] = useState([]);
  const [organizations, setOrganizations] = useState([]);

  useEffect(() => {
    api.all("collaboration").then(
      (items) => setCollaborations(items.filter((c) => perms.canCreateTask(c.id))), setLoadError);
  }, []);
  useEffect(() => {
    setStudies([]);
    if (!collaborationId) return;
    api.all("study", { collaboration_id: collaborationId }).then(setStudies, () => setStudies([]));
  }, [collaborationId]);
  useEffect(() => {
    setOrganizations([]);
    if (!collaborationId) return;
    const params = studyId ? { study_id: studyId } : { collaboration_id: collaborationId };
    api.all("organization", params).then((orgs) => {
      setOrganizations(orgs);
      const ids = new Set(orgs.map((o) => o.id));
      form.set("organizations", form.values.organizations.filter((id) => ids.has(id)));
    }, setLoadError);
  }, [collaborationId, studyId]);

  const collaboration = collaborations.find((c) => c.id === collaborationId);
  const submit = async (values) => {
    const input = { method: values.method.trim(), args: JSON.parse(values.args || "[]"),
                    kwargs: JSON.parse(values.kwargs || "{}") };
    let chosen = organizations.filter((o) => values.organizations.includes(o.id));
    if (collaboration?.encrypted) {
      if (!keyring.state) {
        throw new Error("This collaboration is encrypted: load your organization's private key "
          + "above first. It is needed to read the results.");
      }
      chosen = await withPublicKeys(api, chosen);
    }
    const sealed = await Promise.all(chosen.map((organization) => encryptInput(input, {
      collaboration, organization, senderId: me.organizationId })));
    const body = {
      name: values.name.trim() || undefined,
      description: values.description.trim() || undefined,
      image: values.image.trim(),
      collaboration_id: collaborationId,
      organizations: chosen.map((organization, i) => ({ id: organization.id, input: sealed[i].text })),
      databases: values.databases.map((d) => (d.query.trim()
        ? { label: d.label.trim(), query: d.query.trim() } : { label: d.label.trim() })),
    };
    if (studyId) body.study_id = studyId;
    const task = await api.post("task", body);
    keyring.rememberInputs(task.id, Object.fromEntries(
      chosen.map((organization, i) => [organization.id, sealed[i].nonce])));
    navigate(`/tasks/${task.id}`);
  };

  return html`
    <${Page} title="New task">
      <p class="breadcrumb"><${Link} href="/tasks">All tasks<//></p>
      <${ErrorMessage} error=${loadError} />
      ${collaboration?.encrypted && html`
        <${Notice} kind="info">This collaboration is encrypted: this browser encrypts each
          organization's input for that organization's public key before it is sent, and only
          your organization's key can read the results.<//>
        <${KeyPanel} reason=${keyState ? null : "Load it to create a task here."} />`}
      <${Form} form=${form} onSubmit=${submit} submitLabel="Create task" label="New task"
               onCancel=${() => navigate("/tasks")} className="panel">
        <div class="form-grid">
          <${SelectField} form=${form} name="collaboration_id" label="Collaboration" required
            options=${collaborations.map((c) => ({ value: c.id, label: c.encrypted ? `${c.name} (encrypted)` : c.name }))} />
          <${SelectField} form=${form} name="study_id" label="Study" placeholder="No study (whole collaboration)"
            hint="Optional: run only at the organizations of a study."
            options=${studies.map((s) => ({ value: s.id, label: s.name }))} />
        </div>
        <${CheckboxGroup} form=${form} name="organizations" legend="Organizations" required
          hint="Where the algorithm runs."
          options=${organizations.map((o) => ({ value: o.id, label: o.name }))}
          empty=${collaborationId ? "This collaboration has no organizations." : "Choose a collaboration first."} />
        <div class="form-grid">
          <${TextField} form=${form} name="name" label="Name" />
          <${TextField} form=${form} name="image" label="Image" required
                        hint="The algorithm's Docker image, e.g. v6flow/summary:0.1.0" />
        </div>
        <${TextArea} form=${form} name="description" label="Description" rows="2" />
        <${TextField} form=${form} name="method" label="Method" required
                      hint="The function of the algorithm to run." />
        <div class="form-grid">
          <${JsonField} form=${form} name="args" label="Positional arguments" kind="array"
                        hint="A JSON list." />
          <${JsonField} form=${form} name="kwargs" label="Keyword arguments" kind="object"
                        hint="A JSON object." />
        </div>
        <${DatabasesField} form=${form} />
      <//>
    <//>`;
}
