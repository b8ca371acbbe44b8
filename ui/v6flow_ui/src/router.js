// Client-side routes on the History API; the server answers index.html for any such path.
import { html, useEffect, useState } from "./lib.js";

const listeners = new Set();

function current() {
  return { path: location.pathname, query: new URLSearchParams(location.search) };
}

/** Go to `href` (a path with an optional query) without reloading the page. */
export function navigate(href, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", href);
  else history.pushState(null, "", href);
  for (const listener of [...listeners]) listener(current());
}

addEventListener("popstate", () => {
  for (const listener of [...listeners]) listener(current());
});

/** The current location ({path, query}); re-renders the caller on every navigation. */
export function useLocation() {
  const [location, setLocation] = useState(current);
  useEffect(() => {
    listeners.add(setLocation);
    return () => listeners.delete(setLocation);
  }, []);
  return location;
}

/** Match "/tasks/:id" against a path: the params ({id: "12"}) or null. */
export function matchRoute(pattern, path) {
  const names = [];
  const source = pattern.replace(/\/:([a-z]+)/g, (_, name) => {
    names.push(name);
    return "/([^/]+)";
  });
  const match = new RegExp(`^${source}/?$`).exec(path);
  if (!match) return null;
  return Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(match[i + 1])]));
}

/** A link that navigates in the page; modified clicks (new tab etc.) stay the browser's. */
export function Link({ href, children, ...props }) {
  const onClick = (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey
        || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(href);
  };
  return html`<a href=${href} onClick=${onClick} ...${props}>${children}</a>`;
}

/** The query string of `params` merged into `query` (empty values removed). */
export function withQuery(path, query, params) {
  const next = new URLSearchParams(query);
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") next.delete(key);
    else next.set(key, String(value));
  }
  const text = next.toString();
  return text ? `${path}?${text}` : path;
}
