// Names of organizations, collaborations and studies for showing ids as names: read once per
// login (a consortium has tens of them, not thousands) and again after one changes.
import { html, useEffect, useState } from "./lib.js";
import { Link } from "./router.js";
import { useApp } from "./context.js";

const cache = new WeakMap();
const listeners = new Set();
const KINDS = { organization: "organizations", collaboration: "collaborations", study: "studies" };

async function readAll(api) {
  const read = (path) => api.all(path).catch(() => []);
  const [organizations, collaborations, studies] = await Promise.all(
    [read("organization"), read("collaboration"), read("study")]);
  const byId = (items) => new Map(items.map((item) => [item.id, item]));
  return { organization: byId(organizations), collaboration: byId(collaborations),
           study: byId(studies) };
}

/** The directory of `api`'s user: {organization: Map, collaboration: Map, study: Map}. */
export function getDirectory(api) {
  if (!cache.has(api)) cache.set(api, readAll(api));
  return cache.get(api);
}

/** Forget the names (after an organization, collaboration or study changed). */
export function invalidateDirectory(api) {
  cache.delete(api);
  for (const listener of [...listeners]) listener();
}

export function useDirectory() {
  const { api } = useApp();
  const [directory, setDirectory] = useState(null);
  useEffect(() => {
    let live = true;
    const load = () => getDirectory(api).then((d) => live && setDirectory(d));
    load();
    listeners.add(load);
    return () => { live = false; listeners.delete(load); };
  }, [api]);
  return directory;
}

/** The name of an organization/collaboration/study as a link to it ("#id" when unknown). */
export function Name({ kind, id, link = true }) {
  const directory = useDirectory();
  if (id === null || id === undefined) return "—";
  const item = directory?.[kind]?.get(id);
  const text = item?.name ?? `#${id}`;
  if (!link || !item) return text;
  return html`<${Link} href=${`/${KINDS[kind]}/${id}`}>${text}<//>`;
}
