// Entry point: session → who is logged in → routes. Mounted by index.html.
import { html, render, useEffect, useMemo, useState } from "./lib.js";
import { createApi } from "./api.js";
import { createSession } from "./session.js";
import { createEventStream } from "./events.js";
import { createKeyring } from "./keyring.js";
import { AppContext, loadMe, useApp } from "./context.js";
import { matchRoute, navigate, useLocation } from "./router.js";
import { Shell, NAVIGATION } from "./shell.js";
import { LoginPage } from "./pages/login.js";
import { AccountPage } from "./pages/account.js";
import { TaskListPage } from "./pages/tasks.js";
import { TaskCreatePage } from "./pages/task_create.js";
import { TaskDetailPage } from "./pages/task_detail.js";
import { RESOURCES } from "./pages/resources.js";
import { ResourceDetailPage, ResourceListPage } from "./pages/resource_pages.js";
import { ErrorMessage, Loading, Page } from "./components/ui.js";

/** [pattern, page, allowed(perms)]; the first match wins. */
const ROUTES = [
  ["/tasks/new", TaskCreatePage, (p) => p.any("task", "create")],
  ["/tasks/:id", TaskDetailPage, (p) => p.any("task", "view")],
  ["/tasks", TaskListPage, (p) => p.any("task", "view")],
  ["/account", AccountPage, () => true],
  ...Object.values(RESOURCES).flatMap((resource) => [
    [`/${resource.path}/:id`, (props) => html`<${ResourceDetailPage} resource=${resource} ...${props} />`,
     resource.allowed],
    [`/${resource.path}`, (props) => html`<${ResourceListPage} resource=${resource} ...${props} />`,
     resource.allowed],
  ]),
];

function NotAllowed() {
  return html`<${Page} title="No access">
    <p class="message message-warning" role="alert">You do not have access to this page.</p>
  <//>`;
}

function NotFound() {
  return html`<${Page} title="Page not found"><p>There is no page at this address.</p><//>`;
}

function home(perms) {
  const first = NAVIGATION.flatMap((g) => g.items).find((item) => item.allowed(perms));
  return first?.href ?? "/account";
}

function Routes() {
  const { path, query } = useLocation();
  const app = useApp();
  useEffect(() => {
    if (path === "/" || path === "/login") navigate(home(app.perms), { replace: true });
  }, [path]);
  for (const [pattern, Component, allowed] of ROUTES) {
    const params = matchRoute(pattern, path);
    if (params) {
      if (!allowed(app.perms)) return html`<${NotAllowed} />`;
      return html`<${Component} key=${pattern} params=${params} query=${query} />`;
    }
  }
  if (path === "/" || path === "/login") return html`<${Loading} />`;
  return html`<${NotFound} />`;
}

function LoggedIn({ session, userId }) {
  const api = useMemo(() => createApi(session), [session]);
  const events = useMemo(() => createEventStream(session), [session, userId]);
  // the private key lives only as long as this login (and this page)
  const keyring = useMemo(() => createKeyring(), [session, userId]);
  useEffect(() => () => keyring.forget(), [keyring]);
  const [state, setState] = useState({ loading: true });
  useEffect(() => {
    let live = true;
    loadMe(api, userId).then((loaded) => live && setState(loaded),
      (error) => live && setState({ error }));
    events.start();
    return () => { live = false; events.stop(); };
  }, [api, events, userId]);
  if (state.error) {
    return html`<main id="main" class="page"><${ErrorMessage} error=${state.error} />
      <button type="button" onClick=${() => session.logout()}>Log out</button></main>`;
  }
  if (state.loading) return html`<main id="main" class="page"><${Loading} /></main>`;
  const value = { api, session, events, keyring, me: state.me, perms: state.perms,
                  config: state.config };
  return html`<${AppContext.Provider} value=${value}>
    <${Shell}><${Routes} /><//>
  <//>`;
}

function App({ session }) {
  const [, setTick] = useState(0);
  useEffect(() => session.subscribe(() => setTick((n) => n + 1)), [session]);
  const state = session.state;
  if (!state) {
    return html`<${AppContext.Provider} value=${{ session }}>
      <${LoginPage} notice=${session.notice} />
    <//>`;
  }
  return html`<${LoggedIn} key=${state.userId} session=${session} userId=${state.userId} />`;
}

// After the first navigation, pages move the focus to their heading (see components/ui.js).
addEventListener("click", (event) => {
  if (event.target.closest?.("a[href^='/']")) document.body.dataset.navigated = "1";
}, { capture: true });
addEventListener("popstate", () => { document.body.dataset.navigated = "1"; });

render(html`<${App} session=${createSession()} />`, document.getElementById("app"));
