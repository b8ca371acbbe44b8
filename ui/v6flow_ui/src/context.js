// What every page gets: the API, the session, the event stream and who is logged in.
import { createContext, useContext, useEffect, useRef, useState } from "./lib.js";
import { idOf } from "./api.js";
import { buildPermissions } from "./permissions.js";

export const AppContext = createContext(null);

/** {api, session, events, keyring, me, perms, config} */
export function useApp() {
  return useContext(AppContext);
}

/**
 * Subscribe to events while mounted: `handlers` maps an event name ("sync", "run_update",
 * ...) to a listener. Listeners always see the latest render's closures.
 */
export function useEvents(handlers) {
  const { events } = useApp();
  const latest = useRef(handlers);
  latest.current = handlers;
  const names = Object.keys(handlers).sort().join(",");
  useEffect(() => {
    const offs = names.split(",").filter(Boolean)
      .map((name) => events.on(name, (data) => latest.current[name]?.(data)));
    return () => offs.forEach((off) => off());
  }, [events, names]);
}

/** The event stream's status ("open" when live updates arrive). */
export function useLiveStatus() {
  const { events } = useApp();
  const [status, setStatus] = useState(events.status);
  useEffect(() => events.onStatus(setStatus), [events]);
  return status;
}

const none = () => [];

/**
 * Who is logged in and what they may do (user, organization, rules, collaborations), and the
 * server's settings for the UI (`GET /ui/config`; {} from a server without it).
 */
export async function loadMe(api, userId) {
  const user = await api.get(`user/${userId}`);
  const organizationId = idOf(user.organization);
  const [rules, organization, collaborations, roles, config] = await Promise.all([
    api.all("rule", { user_id: userId }).catch(none),
    api.get(`organization/${organizationId}`).catch(() => null),
    api.all("collaboration", { organization_id: organizationId }).catch(none),
    api.all("role", { user_id: userId }).catch(none),
    api.get("ui/config").catch(() => ({})),
  ]);
  const partners = await Promise.all(collaborations.map(
    (c) => api.all("organization", { collaboration_id: c.id }).catch(none)));
  const me = {
    userId,
    user,
    organizationId,
    organization,
    roles,
    collaborations,
    collaborationIds: new Set(collaborations.map((c) => c.id)),
    partnerOrganizationIds: new Set(partners.flat().map((o) => o.id)),
  };
  return { me, perms: buildPermissions(rules, me), config: config ?? {} };
}
