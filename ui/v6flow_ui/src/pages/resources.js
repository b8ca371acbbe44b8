// The administration resources: what each lists, shows and edits, and which rule allows
// what (mirroring server/services/*). The generic pages in resource_pages.js render them.
// `names: true`: the resource's names appear elsewhere (directory.js), re-read after a change.
import { html } from "../lib.js";
import { idOf } from "../api.js";
import { Link } from "../router.js";
import { Name } from "../directory.js";
import { ConfirmButton, LastSeen, StatusBadge } from "../components/ui.js";
import { formatTime } from "../format.js";
import { minPasswordLength } from "./account.js";

/** A related list, or undefined when the rules hide it (403), or the Error to show. */
const settle = (promise) => promise.catch((error) => (error.status === 403 ? undefined : error));
const ids = (items) => (Array.isArray(items) ? items.map((item) => item.id) : []);
const toIds = (values) => (values ?? []).map(Number);
const text = (value) => (typeof value === "string" ? value.trim() : value);
const optional = (value) => (text(value) ? text(value) : null);

function pick(values, keys) {
  return Object.fromEntries(keys.map((key) => [key, text(values[key]) ?? ""]));
}

const nameLink = (path) => (row) => html`<${Link} href=${`/${path}/${row.id}`}>${row.name ?? row.username}<//>`;

const orgOptions = (filter = () => true) => async ({ api }) => (await api.all("organization"))
  .filter(filter).map((o) => ({ value: o.id, label: o.name }));

const ORG_KEYS = ["name", "domain", "address1", "address2", "zipcode", "country"];
const ORG_FIELDS = [
  { name: "name", label: "Name", required: true },
  { name: "domain", label: "Domain" },
  { name: "address1", label: "Address line 1" },
  { name: "address2", label: "Address line 2" },
  { name: "zipcode", label: "Postal code" },
  { name: "country", label: "Country" },
];

const organization = {
  path: "organizations", api: "organization", title: "Organizations", singular: "Organization",
  allowed: (p) => p.any("organization", "view"),
  search: { param: "name", label: "Search organizations by name" },
  label: (o) => o.name,
  columns: [
    { key: "name", label: "Name" }, { key: "country", label: "Country" },
    { key: "domain", label: "Domain" }, { key: "id", label: "Id" },
  ],
  canCreate: (p) => p.can("organization", "create", "GLOBAL"),
  createFields: () => ORG_FIELDS,
  names: true,
  createBody: (v) => pick(v, ORG_KEYS),
  loadRelated: async (api, o) => ({
    collaborations: await settle(api.all("collaboration", { organization_id: o.id })),
    nodes: await settle(api.all("node", { organization_id: o.id })),
    users: await settle(api.all("user", { organization_id: o.id })),
  }),
  details: (o) => [
    ["Id", o.id], ["Name", o.name], ["Domain", o.domain || "—"],
    ["Address", [o.address1, o.address2, o.zipcode].filter(Boolean).join(", ") || "—"],
    ["Country", o.country || "—"],
    ["Public key", o.public_key ? "Set (encrypted collaborations)" : "Not set"],
  ],
  canEdit: (p, o, r) => p.reaches("organization", "edit",
    { organizationIds: [o.id], collaborationIds: ids(r.collaborations) }),
  editFields: () => ORG_FIELDS,
  editInitial: (o) => pick(o, ORG_KEYS),
  editBody: (v) => pick(v, ORG_KEYS),
  canDelete: (p) => p.can("organization", "delete", "GLOBAL"),
  deleteDependents: "Also delete its users, roles, nodes and tasks",
  related: [
    { key: "collaborations", title: "Collaborations",
      columns: [{ key: "name", label: "Name", render: nameLink("collaborations") },
                { key: "encrypted", label: "Encrypted", render: (c) => (c.encrypted ? "yes" : "no") }] },
    { key: "nodes", title: "Nodes", columns: NODE_COLUMNS() },
    { key: "users", title: "Users",
      columns: [{ key: "username", label: "Username", render: nameLink("users") },
                { key: "email", label: "Email" }] },
  ],
};

const collaboration = {
  path: "collaborations", api: "collaboration", title: "Collaborations", singular: "Collaboration",
  allowed: (p) => p.any("collaboration", "view"),
  search: { param: "name", label: "Search collaborations by name" },
  label: (c) => c.name,
  columns: [
    { key: "name", label: "Name" },
    { key: "encrypted", label: "Encrypted", render: (c) => (c.encrypted ? "yes" : "no") },
    { key: "id", label: "Id" },
  ],
  canCreate: (p) => p.can("collaboration", "create", "GLOBAL"),
  createInitial: () => ({ name: "", encrypted: false, organization_ids: [] }),
  createFields: () => [
    { name: "name", label: "Name", required: true },
    { name: "encrypted", label: "Encrypted", type: "checkbox",
      hint: "Inputs and results are encrypted end to end; the web UI encrypts and decrypts them with your organization's private key (Account page)." },
    { name: "organization_ids", label: "Organizations", type: "checkboxes", options: orgOptions(),
      empty: "No organizations yet." },
  ],
  names: true,
  createBody: (v) => ({ name: text(v.name), encrypted: Boolean(v.encrypted),
                        organization_ids: toIds(v.organization_ids) }),
  loadRelated: async (api, c) => ({
    organizations: await settle(api.all("organization", { collaboration_id: c.id })),
    nodes: await settle(api.all("node", { collaboration_id: c.id })),
    studies: await settle(api.all("study", { collaboration_id: c.id })),
  }),
  liveEvents: ["node_status"],
  details: (c) => [["Id", c.id], ["Name", c.name], ["Encrypted", c.encrypted ? "yes" : "no"]],
  canEdit: (p, c) => p.reaches("collaboration", "edit", { collaborationIds: [c.id] }),
  editFields: ({ perms }) => [
    { name: "name", label: "Name", required: true },
    { name: "encrypted", label: "Encrypted", type: "checkbox" },
    ...(perms.can("collaboration", "edit", "GLOBAL") ? [
      { name: "organization_ids", label: "Organizations", type: "checkboxes",
        options: orgOptions() }] : []),
  ],
  editInitial: (c, r) => ({ name: c.name, encrypted: c.encrypted,
                            organization_ids: ids(r.organizations) }),
  editBody: (v, _c, { perms }) => {
    const body = { name: text(v.name), encrypted: Boolean(v.encrypted) };
    if (perms.can("collaboration", "edit", "GLOBAL")) body.organization_ids = toIds(v.organization_ids);
    return body;
  },
  canDelete: (p, c) => p.reaches("collaboration", "delete", { collaborationIds: [c.id] }),
  deleteDependents: "Also delete its nodes, studies and tasks",
  actions: ({ perms }, c) => perms.canCreateTask(c.id) && html`
    <${Link} class="button" href=${`/tasks/new?collaboration=${c.id}`}>New task<//>`,
  related: [
    { key: "organizations", title: "Organizations",
      columns: [{ key: "name", label: "Name", render: nameLink("organizations") },
                { key: "country", label: "Country" }] },
    { key: "nodes", title: "Nodes", columns: NODE_COLUMNS() },
    { key: "studies", title: "Studies",
      columns: [{ key: "name", label: "Name", render: nameLink("studies") }] },
  ],
};

function studyOrganizationOptions({ api }, values) {
  const collaborationId = Number(values.collaboration_id);
  if (!collaborationId) return Promise.resolve([]);
  return api.all("organization", { collaboration_id: collaborationId })
    .then((orgs) => orgs.map((o) => ({ value: o.id, label: o.name })));
}

const study = {
  path: "studies", api: "study", title: "Studies", singular: "Study",
  allowed: (p) => p.any("study", "view"),
  search: { param: "name", label: "Search studies by name" },
  label: (s) => s.name,
  columns: [
    { key: "name", label: "Name" },
    { key: "collaboration", label: "Collaboration",
      render: (s) => html`<${Name} kind="collaboration" id=${idOf(s.collaboration)} />` },
    { key: "id", label: "Id" },
  ],
  canCreate: (p) => p.can("study", "create", "COLLABORATION"),
  createInitial: () => ({ name: "", collaboration_id: "", organization_ids: [] }),
  createFields: () => [
    { name: "name", label: "Name", required: true },
    { name: "collaboration_id", label: "Collaboration", type: "select", required: true,
      options: async ({ api, perms }) => (await api.all("collaboration"))
        .filter((c) => perms.reaches("study", "create", { collaborationIds: [c.id] }))
        .map((c) => ({ value: c.id, label: c.name })) },
    { name: "organization_ids", label: "Organizations", type: "checkboxes", required: true,
      dependsOn: ["collaboration_id"], options: studyOrganizationOptions,
      empty: "Choose a collaboration first." },
  ],
  names: true,
  createBody: (v) => ({ name: text(v.name), collaboration_id: Number(v.collaboration_id),
                        organization_ids: toIds(v.organization_ids) }),
  loadRelated: async (api, s) => ({
    organizations: await settle(api.all("organization", { study_id: s.id })),
  }),
  details: (s) => [["Id", s.id], ["Name", s.name],
    ["Collaboration", html`<${Name} kind="collaboration" id=${idOf(s.collaboration)} />`]],
  canEdit: (p, s, r) => p.reaches("study", "edit", { collaborationIds: [idOf(s.collaboration)],
                                                     organizationIds: ids(r.organizations) }),
  editFields: (_ctx, s) => [
    { name: "name", label: "Name", required: true },
    { name: "organization_ids", label: "Organizations", type: "checkboxes", required: true,
      options: (ctx) => studyOrganizationOptions(ctx, { collaboration_id: idOf(s.collaboration) }) },
  ],
  editInitial: (s, r) => ({ name: s.name, organization_ids: ids(r.organizations) }),
  editBody: (v) => ({ name: text(v.name), organization_ids: toIds(v.organization_ids) }),
  canDelete: (p, s, r) => p.reaches("study", "delete", { collaborationIds: [idOf(s.collaboration)],
                                                         organizationIds: ids(r.organizations) }),
  deleteDependents: "Also delete its tasks",
  actions: ({ perms }, s) => perms.canCreateTask(idOf(s.collaboration)) && html`
    <${Link} class="button" href=${`/tasks/new?collaboration=${idOf(s.collaboration)}&study=${s.id}`}>New task<//>`,
  related: [
    { key: "organizations", title: "Organizations",
      columns: [{ key: "name", label: "Name", render: nameLink("organizations") }] },
  ],
};

function NODE_COLUMNS() {
  return [
    { key: "name", label: "Name", render: nameLink("nodes") },
    { key: "status", label: "Status", render: (n) => html`<${StatusBadge} status=${n.status ?? "offline"} />` },
    { key: "last_seen", label: "Last seen", render: (n) => html`<${LastSeen} node=${n} />` },
    { key: "organization", label: "Organization",
      render: (n) => html`<${Name} kind="organization" id=${idOf(n.organization)} />` },
    { key: "collaboration", label: "Collaboration",
      render: (n) => html`<${Name} kind="collaboration" id=${idOf(n.collaboration)} />` },
  ];
}

const node = {
  path: "nodes", api: "node", title: "Nodes", singular: "Node",
  allowed: (p) => p.any("node", "view"),
  search: { param: "name", label: "Search nodes by name" },
  label: (n) => n.name,
  columns: NODE_COLUMNS().map((c) => (c.key === "name" ? { key: "name", label: "Name" } : c)),
  liveEvents: ["node_status"],
  canCreate: (p) => p.any("node", "create"),
  createInitial: ({ me }) => ({ collaboration_id: "", organization_id: String(me.organizationId), name: "" }),
  createFields: () => [
    { name: "collaboration_id", label: "Collaboration", type: "select", required: true,
      options: async ({ api }) => (await api.all("collaboration"))
        .map((c) => ({ value: c.id, label: c.name })) },
    { name: "organization_id", label: "Organization", type: "select", required: true,
      dependsOn: ["collaboration_id"],
      options: async ({ api, perms }, values) => {
        const collaborationId = Number(values.collaboration_id);
        if (!collaborationId) return [];
        return (await api.all("organization", { collaboration_id: collaborationId }))
          .filter((o) => perms.canCreateNode(o.id, collaborationId))
          .map((o) => ({ value: o.id, label: o.name }));
      } },
    { name: "name", label: "Name", hint: "Optional; the server makes one up when empty." },
  ],
  createBody: (v) => ({ collaboration_id: Number(v.collaboration_id),
                        organization_id: Number(v.organization_id), name: optional(v.name) ?? undefined }),
  afterCreate: (created) => created.api_key && html`
    <p>Its API key is shown only this once: put it in the node's configuration file
       (<code>api_key</code>).</p>
    <p><code class="secret" data-testid="api-key">${created.api_key}</code></p>`,
  details: (n) => [
    ["Id", n.id], ["Name", n.name],
    ["Status", html`<${StatusBadge} status=${n.status ?? "offline"} />`],
    ["Last seen", html`<${LastSeen} node=${n} />`],
    ["Address", n.ip || "—"],
    ["Organization", html`<${Name} kind="organization" id=${idOf(n.organization)} />`],
    ["Collaboration", html`<${Name} kind="collaboration" id=${idOf(n.collaboration)} />`],
    ...(n.config ?? []).map((item) => [`Config: ${item.key}`, item.value]),
  ],
  canEdit: (p, n) => p.reaches("node", "edit", { collaborationIds: [idOf(n.collaboration)],
                                                 organizationIds: [idOf(n.organization)] }),
  editFields: () => [{ name: "name", label: "Name", required: true }],
  editInitial: (n) => ({ name: n.name }),
  editBody: (v) => ({ name: text(v.name) }),
  canDelete: (p, n) => p.reaches("node", "delete", { collaborationIds: [idOf(n.collaboration)],
                                                     organizationIds: [idOf(n.organization)] }),
  actions: ({ api, perms }, n, _r, reload) => perms.canKill({
    collaborationId: idOf(n.collaboration), organizationId: idOf(n.organization) }) && html`
    <${ConfirmButton} label="Kill its runs" title="Kill runs"
      message=${`Stop every unfinished run of node “${n.name}”?`} confirmLabel="Kill runs"
      onConfirm=${async () => { await api.post("kill/node/tasks", { id: n.id }); reload(); }} />`,
};

const roleOptions = async ({ api }, values) => {
  const organizationId = Number(values.organization_id);
  if (!organizationId) return [];
  const roles = await api.all("role", { organization_id: organizationId, include_root: true });
  return roles.map((r) => ({ value: r.id, label: r.organization ? r.name : `${r.name} (default)` }));
};

const user = {
  path: "users", api: "user", title: "Users", singular: "User",
  allowed: (p) => p.can("user", "view", "ORGANIZATION"),
  search: { param: "username", label: "Search users by username" },
  label: (u) => u.username,
  columns: [
    { key: "username", label: "Username" },
    { key: "name", label: "Name", render: (u) => [u.firstname, u.lastname].filter(Boolean).join(" ") },
    { key: "email", label: "Email" },
    { key: "organization", label: "Organization",
      render: (u) => html`<${Name} kind="organization" id=${idOf(u.organization)} />` },
  ],
  canCreate: (p) => p.can("user", "create", "ORGANIZATION"),
  createInitial: ({ me }) => ({ organization_id: String(me.organizationId), roles: [] }),
  createFields: ({ config }) => [
    { name: "username", label: "Username", required: true },
    { name: "password", label: "Password", type: "password", required: true,
      autocomplete: "new-password",
      hint: `At least ${minPasswordLength(config)} characters.` },
    { name: "firstname", label: "First name" },
    { name: "lastname", label: "Last name" },
    { name: "email", label: "Email", type: "email" },
    { name: "organization_id", label: "Organization", type: "select", required: true,
      options: async (ctx) => (await orgOptions()(ctx)).filter(
        (o) => ctx.perms.can("user", "create", ctx.perms.scopeToReach(o.value))) },
    { name: "roles", label: "Roles", type: "checkboxes", dependsOn: ["organization_id"],
      options: roleOptions, empty: "Choose an organization first." },
  ],
  createBody: (v) => ({
    username: text(v.username), password: v.password, firstname: optional(v.firstname),
    lastname: optional(v.lastname), email: optional(v.email),
    organization_id: Number(v.organization_id), roles: toIds(v.roles),
  }),
  loadRelated: async (api, u) => ({ roles: await settle(api.all("role", { user_id: u.id })) }),
  details: (u) => [
    ["Id", u.id], ["Username", u.username],
    ["Name", [u.firstname, u.lastname].filter(Boolean).join(" ") || "—"],
    ["Email", u.email || "—"],
    ["Organization", html`<${Name} kind="organization" id=${idOf(u.organization)} />`],
    ["Last seen", u.last_seen ? formatTime(u.last_seen) : "never"],
  ],
  canEdit: (p, u) => p.canChangeUser("edit", { id: u.id, organizationId: idOf(u.organization) }),
  editFields: ({ me }, u) => [
    ...(u.id === me.userId ? [{ name: "username", label: "Username", required: true }] : []),
    { name: "firstname", label: "First name" },
    { name: "lastname", label: "Last name" },
    { name: "email", label: "Email", type: "email" },
    ...(u.id === me.userId ? [] : [{ name: "roles", label: "Roles", type: "checkboxes",
      options: (ctx) => roleOptions(ctx, { organization_id: idOf(u.organization) }) }]),
  ],
  editInitial: (u, r) => ({ username: u.username, firstname: u.firstname ?? "",
                            lastname: u.lastname ?? "", email: u.email ?? "", roles: ids(r.roles) }),
  editBody: (v, u, { me }) => {
    const body = { firstname: text(v.firstname), lastname: text(v.lastname),
                   email: optional(v.email) ?? undefined };
    if (u.id === me.userId) body.username = text(v.username);
    else body.roles = toIds(v.roles);
    return body;
  },
  canDelete: (p, u) => u.id !== p.me.userId
    && p.canChangeUser("delete", { id: u.id, organizationId: idOf(u.organization) }),
  deleteDependents: "Also delete what depends on this user (such as their tasks)",
  related: [
    { key: "roles", title: "Roles",
      columns: [{ key: "name", label: "Name", render: nameLink("roles") },
                { key: "description", label: "Description" }] },
  ],
};

const ruleOptions = async ({ api, perms }) => (await api.all("rule"))
  .filter((rule) => perms.ruleIds.has(rule.id))
  .map((rule) => ({ value: rule.id, group: rule.name,
                    label: `${rule.operation.toLowerCase()} · ${rule.scope.toLowerCase()}` }));

const role = {
  path: "roles", api: "role", title: "Roles", singular: "Role",
  allowed: (p) => p.any("role", "view"),
  search: { param: "name", label: "Search roles by name" },
  label: (r) => r.name,
  columns: [
    { key: "name", label: "Name" }, { key: "description", label: "Description" },
    { key: "organization", label: "Organization", render: (r) => (r.organization
      ? html`<${Name} kind="organization" id=${idOf(r.organization)} />` : "Default role") },
  ],
  canCreate: (p) => p.can("role", "create", "ORGANIZATION"),
  createInitial: ({ me }) => ({ organization_id: String(me.organizationId), rules: [] }),
  createFields: () => [
    { name: "name", label: "Name", required: true },
    { name: "description", label: "Description", type: "textarea" },
    { name: "organization_id", label: "Organization", type: "select", required: true,
      options: async (ctx) => (await orgOptions()(ctx)).filter(
        (o) => ctx.perms.can("role", "create", ctx.perms.scopeToReach(o.value))) },
    { name: "rules", label: "Rules (only rules you hold can be given)", type: "checkboxes",
      options: ruleOptions },
  ],
  createBody: (v) => ({ name: text(v.name), description: optional(v.description),
                        organization_id: Number(v.organization_id), rules: toIds(v.rules) }),
  loadRelated: async (api, r) => ({ rules: await settle(api.all(`role/${r.id}/rule`)) }),
  details: (r) => [
    ["Id", r.id], ["Name", r.name], ["Description", r.description || "—"],
    ["Organization", r.organization ? html`<${Name} kind="organization" id=${idOf(r.organization)} />`
      : "Default role (all organizations; cannot be changed)"],
  ],
  canEdit: (p, r) => Boolean(r.organization)
    && p.can("role", "edit", p.scopeToReach(idOf(r.organization))),
  editFields: () => [
    { name: "name", label: "Name", required: true },
    { name: "description", label: "Description", type: "textarea" },
    { name: "rules", label: "Rules (only rules you hold can be given)", type: "checkboxes",
      options: ruleOptions },
  ],
  editInitial: (r, related) => ({ name: r.name, description: r.description ?? "",
                                  rules: ids(related.rules) }),
  editBody: (v) => ({ name: text(v.name), description: text(v.description), rules: toIds(v.rules) }),
  canDelete: (p, r) => Boolean(r.organization)
    && p.can("role", "delete", p.scopeToReach(idOf(r.organization))),
  related: [
    { key: "rules", title: "Rules",
      columns: [{ key: "name", label: "Resource" }, { key: "operation", label: "Operation" },
                { key: "scope", label: "Scope" }] },
  ],
};

export const RESOURCES = { node, collaboration, study, organization, user, role };
