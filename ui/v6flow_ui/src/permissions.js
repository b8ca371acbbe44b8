// What the logged-in user may do, derived from their rules (GET /rule?user_id=<me>) exactly
// as the server's services decide it, so the UI hides what the API would refuse. The API
// still refuses it: this is for a clear UI, never for security.

const WIDTH = { OWN: 0, ORGANIZATION: 1, COLLABORATION: 2, GLOBAL: 3 };
const SCOPES = { own: "OWN", org: "ORGANIZATION", col: "COLLABORATION", glo: "GLOBAL" };
const OPERATIONS = { v: "VIEW", e: "EDIT", c: "CREATE", d: "DELETE", s: "SEND", r: "RECEIVE" };

function normalise(value, table) {
  const text = String(value ?? "");
  return table[text.toLowerCase()] ?? text.toUpperCase();
}

/**
 * Permissions of `me` ({userId, organizationId, collaborationIds: Set, partnerOrganizationIds:
 * Set}) holding `rules` (RuleOut items: name, operation, scope).
 */
export function buildPermissions(rules, me) {
  const widest = new Map();
  for (const rule of rules) {
    const key = `${String(rule.name).toLowerCase()}:${normalise(rule.operation, OPERATIONS)}`;
    const scope = normalise(rule.scope, SCOPES);
    if (!(scope in WIDTH)) continue;
    if (!widest.has(key) || WIDTH[scope] > WIDTH[widest.get(key)]) widest.set(key, scope);
  }
  const ruleIds = new Set(rules.map((rule) => rule.id));
  const inMine = (ids) => [...ids].some((id) => me.collaborationIds.has(id));

  /** The widest scope of the rule for `operation` on `resource`, or null. */
  function scope(resource, operation) {
    return widest.get(`${resource}:${operation.toUpperCase()}`) ?? null;
  }

  /** Whether a rule allows `operation` on `resource` at `at` or wider. */
  function can(resource, operation, at = "OWN") {
    const held = scope(resource, operation);
    return held !== null && WIDTH[held] >= WIDTH[at];
  }

  /** server/services/scope.py `reaches`: an object in these collaborations/organizations. */
  function reaches(resource, operation, { collaborationIds = [], organizationIds = [] } = {}) {
    const held = scope(resource, operation);
    if (held === null || held === "OWN") return false;
    if (held === "GLOBAL" || organizationIds.includes(me.organizationId)) return true;
    return held === "COLLABORATION" && inMine(collaborationIds);
  }

  /** server/services/access.py `scope_to_reach`: the scope an object of `organizationId` needs. */
  function scopeToReach(organizationId) {
    if (organizationId != null && organizationId === me.organizationId) return "ORGANIZATION";
    if (organizationId != null && me.partnerOrganizationIds.has(organizationId)) {
      return "COLLABORATION";
    }
    return "GLOBAL";
  }

  /** Any rule for `operation` on `resource` (decides whether a page or button appears). */
  const any = (resource, operation) => scope(resource, operation) !== null;

  return {
    me, ruleIds, scope, can, reaches, scopeToReach, any,
    /** TASK CREATE (services/tasks.py _origin): only in one's own organization's collaborations. */
    canCreateTask(collaborationId) {
      return me.collaborationIds.has(collaborationId) && can("task", "create", "COLLABORATION");
    },
    /** TASK DELETE (services/tasks.py delete_task). */
    canDeleteTask(task) {
      const held = scope("task", "delete");
      return held === "GLOBAL"
        || (held === "COLLABORATION" && me.collaborationIds.has(task.collaborationId))
        || (held !== null && task.initOrganizationId === me.organizationId);
    },
    /** EVENT SEND, which killing needs (services/kill.py _may_send). */
    canKill({ collaborationId, organizationId }) {
      const held = scope("event", "send");
      return held === "GLOBAL"
        || (held === "COLLABORATION" && me.collaborationIds.has(collaborationId))
        || (held !== null && organizationId === me.organizationId);
    },
    /** NODE CREATE (services/nodes.py): own organization, own collaboration, or GLOBAL. */
    canCreateNode(organizationId, collaborationId) {
      const needed = organizationId === me.organizationId ? "ORGANIZATION"
        : me.collaborationIds.has(collaborationId) ? "COLLABORATION" : "GLOBAL";
      return can("node", "create", needed);
    },
    /** USER EDIT/DELETE of a user (services/users.py _require_reach, before the held check). */
    canChangeUser(operation, user) {
      if (user.id === me.userId) return can("user", operation, "OWN");
      return can("user", operation, scopeToReach(user.organizationId));
    },
  };
}
