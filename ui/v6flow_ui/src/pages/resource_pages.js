// Generic list and detail pages for the administration resources described in resources.js:
// list, search, page, view, create, edit and delete, each shown only when the rules allow it.
import { html, useEffect, useRef, useState } from "../lib.js";
import { Link, navigate, withQuery } from "../router.js";
import { useApp, useEvents } from "../context.js";
import { invalidateDirectory } from "../directory.js";
import {
  ConfirmButton, DataTable, Details, ErrorMessage, Loading, Notice, Page, Pager, useAsync,
} from "../components/ui.js";
import {
  CheckboxField, CheckboxGroup, Form, SelectField, TextArea, TextField, useForm,
} from "../components/forms.js";

const PER_PAGE = 20;

/** Re-run `fn` at most once per `ms` while events arrive (a burst becomes one reload). */
function useDebounced(fn, ms = 300) {
  const timer = useRef(null);
  const latest = useRef(fn);
  latest.current = fn;
  useEffect(() => () => clearTimeout(timer.current), []);
  return () => {
    clearTimeout(timer.current);
    timer.current = setTimeout(() => latest.current(), ms);
  };
}

/** A control for one field spec ({name, label, type, options(ctx, values)?, ...}). */
function SpecField({ spec, form, ctx }) {
  const deps = (spec.dependsOn ?? []).map((name) => form.values[name]);
  const [options, setOptions] = useState(Array.isArray(spec.options) ? spec.options : []);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (typeof spec.options !== "function") return undefined;
    let live = true;
    spec.options(ctx, form.values).then((loaded) => {
      if (!live) return;
      setOptions(loaded);
      const value = form.values[spec.name];
      if (spec.type === "select" && value !== "" && value != null
          && !loaded.some((o) => String(o.value) === String(value))) {
        form.set(spec.name, ""); // a default (e.g. one's own organization) that is not offered
      }
    }, (e) => live && setError(e));
    return () => { live = false; };
  }, deps);
  const common = { form, name: spec.name, label: spec.label, hint: spec.hint,
                   required: spec.required };
  if (error) return html`<${ErrorMessage} error=${error} />`;
  switch (spec.type) {
    case "checkbox": return html`<${CheckboxField} ...${common} />`;
    case "select": return html`<${SelectField} ...${common} options=${options} />`;
    case "checkboxes": return html`<${CheckboxGroup} ...${common} legend=${spec.label}
                                     options=${options} empty=${spec.empty} />`;
    case "textarea": return html`<${TextArea} ...${common} />`;
    default: return html`<${TextField} ...${common} type=${spec.type ?? "text"}
                           autocomplete=${spec.autocomplete ?? "off"} />`;
  }
}

function requiredErrors(fields, values) {
  return Object.fromEntries(fields.filter((f) => f.required).map((f) => {
    const value = values[f.name];
    const missing = value === undefined || value === null || value === ""
      || (Array.isArray(value) && value.length === 0);
    return [f.name, missing ? `${f.label} is required.` : null];
  }));
}

/** A form built from field specs; `onSubmit(values)` returns what the API answered. */
export function SpecForm({ fields, initial, onSubmit, submitLabel, onCancel, label, ctx }) {
  const form = useForm(initial, (values) => requiredErrors(fields, values));
  return html`
    <${Form} form=${form} onSubmit=${onSubmit} submitLabel=${submitLabel} onCancel=${onCancel}
             label=${label} className="panel">
      ${fields.map((spec) => html`<${SpecField} key=${spec.name} spec=${spec} form=${form} ctx=${ctx} />`)}
    <//>`;
}

function linkColumn(resource, column) {
  return { ...column, render: (row) => html`
    <${Link} href=${`/${resource.path}/${row.id}`}>${column.render ? column.render(row) : row[column.key]}<//>` };
}

export function ResourceListPage({ resource, query }) {
  const ctx = useApp();
  const { api, perms } = ctx;
  const q = query.get("q") ?? "";
  const page = Math.max(1, Number(query.get("page") ?? 1) || 1);
  const [search, setSearch] = useState(q);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState(null);
  useEffect(() => setSearch(q), [q]);
  const list = useAsync(() => api.page(resource.api, {
    [resource.search.param]: q ? `%${q}%` : undefined, page, per_page: PER_PAGE,
  }), [q, page]);
  const reload = useDebounced(list.reload);
  useEvents(Object.fromEntries(["sync", ...(resource.liveEvents ?? [])].map((n) => [n, reload])));
  const href = (params) => withQuery(`/${resource.path}`, query, params);
  const canCreate = resource.canCreate?.(perms);
  const columns = resource.columns.map((c, i) => (i === 0 ? linkColumn(resource, c) : c));

  const create = async (values) => {
    const answer = await api.post(resource.api, await resource.createBody(values, ctx));
    if (resource.names) invalidateDirectory(api);
    setCreating(false);
    setCreated(answer);
    list.reload();
  };

  return html`
    <${Page} title=${resource.title} actions=${canCreate && !creating && html`
      <button type="button" onClick=${() => { setCreated(null); setCreating(true); }}>
        New ${resource.singular.toLowerCase()}</button>`}>
      ${created && html`<div class="message message-success" role="status">
        ${resource.singular} <${Link} href=${`/${resource.path}/${created.id}`}>${resource.label(created)}<//> created.
        ${resource.afterCreate?.(created)}</div>`}
      ${creating && html`
        <h2>New ${resource.singular.toLowerCase()}</h2>
        <${SpecForm} fields=${resource.createFields(ctx)} initial=${resource.createInitial?.(ctx) ?? {}}
                     onSubmit=${create} submitLabel="Create" onCancel=${() => setCreating(false)}
                     label=${`New ${resource.singular.toLowerCase()}`} ctx=${ctx} />`}
      <form role="search" class="search" onSubmit=${(e) => { e.preventDefault(); navigate(href({ q: search.trim(), page: "" })); }}>
        <label for="search">${resource.search.label}</label>
        <input id="search" type="search" value=${search} onInput=${(e) => setSearch(e.currentTarget.value)} />
        <button type="submit" class="button-secondary">Search</button>
      </form>
      <${ErrorMessage} error=${list.error} />
      ${list.data === undefined && !list.error ? html`<${Loading} />` : list.data && html`
        <${DataTable} caption=${resource.title} columns=${columns} rows=${list.data.data}
                      empty=${q ? "Nothing matches this search." : `No ${resource.title.toLowerCase()} yet.`} />
        <${Pager} page=${page} perPage=${PER_PAGE} total=${list.data.total}
                  onPage=${(n) => navigate(href({ page: n }))} />`}
    <//>`;
}

function DeleteButton({ resource, item }) {
  const { api } = useApp();
  const remove = async ({ dependents }) => {
    await api.del(`${resource.api}/${item.id}`, dependents ? { delete_dependents: true } : {});
    if (resource.names) invalidateDirectory(api);
    navigate(`/${resource.path}`);
  };
  return html`<${ConfirmButton} label="Delete" title=${`Delete ${resource.singular.toLowerCase()}`}
    message=${`Delete ${resource.singular.toLowerCase()} “${resource.label(item)}”? This cannot be undone.`}
    onConfirm=${remove}
    extra=${resource.deleteDependents && ((options, setOptions) => html`
      <label class="check"><input type="checkbox" checked=${Boolean(options.dependents)}
        onChange=${(e) => setOptions({ dependents: e.currentTarget.checked })} />
        <span>${resource.deleteDependents}</span></label>`)} />`;
}

export function ResourceDetailPage({ resource, params }) {
  const ctx = useApp();
  const { api, perms } = ctx;
  const [editing, setEditing] = useState(false);
  const [saved, setSaved] = useState(false);
  const detail = useAsync(async () => {
    const item = await api.get(`${resource.api}/${params.id}`);
    const related = resource.loadRelated ? await resource.loadRelated(api, item, ctx) : {};
    return { item, related };
  }, [params.id]);
  const reload = useDebounced(detail.reload);
  useEvents(Object.fromEntries(["sync", ...(resource.liveEvents ?? [])].map((n) => [n, reload])));

  if (detail.error && !detail.data) {
    return html`<${Page} title=${`${resource.singular} ${params.id}`}><${ErrorMessage} error=${detail.error} /><//>`;
  }
  if (!detail.data) return html`<${Page} title=${resource.singular}><${Loading} /><//>`;
  const { item, related } = detail.data;
  const canEdit = resource.canEdit?.(perms, item, related);
  const canDelete = resource.canDelete?.(perms, item, related);
  const save = async (values) => {
    await api.patch(`${resource.api}/${item.id}`, await resource.editBody(values, item, ctx));
    if (resource.names) invalidateDirectory(api);
    setEditing(false);
    setSaved(true);
    detail.reload();
  };
  const actions = html`
    ${canEdit && !editing && html`<button type="button" onClick=${() => { setSaved(false); setEditing(true); }}>Edit</button>`}
    ${resource.actions?.(ctx, item, related, detail.reload)}
    ${canDelete && html`<${DeleteButton} resource=${resource} item=${item} />`}`;
  return html`
    <${Page} title=${`${resource.singular}: ${resource.label(item)}`} actions=${actions}>
      <p class="breadcrumb"><${Link} href=${`/${resource.path}`}>All ${resource.title.toLowerCase()}<//></p>
      ${saved && html`<${Notice} kind="success">Changes saved.<//>`}
      ${editing && html`
        <h2>Edit</h2>
        <${SpecForm} fields=${resource.editFields(ctx, item, related)}
                     initial=${resource.editInitial(item, related)} onSubmit=${save}
                     submitLabel="Save" onCancel=${() => setEditing(false)}
                     label=${`Edit ${resource.singular.toLowerCase()}`} ctx=${ctx} />`}
      <${Details} items=${resource.details(item, related, ctx)} />
      ${(resource.related ?? []).map((section) => {
        const rows = related[section.key];
        if (rows === undefined) return null;
        return html`<section class="related" key=${section.key}>
          <h2>${section.title}</h2>
          ${rows instanceof Error ? html`<${ErrorMessage} error=${rows} />` : html`
            <${DataTable} caption=${section.title} rows=${rows} empty=${section.empty ?? "None."}
                          columns=${section.columns} />`}
        </section>`;
      })}
    <//>`;
}
