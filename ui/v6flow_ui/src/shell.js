// The frame around every page once logged in: skip link, header, navigation, live status.
import { html, useEffect, useState } from "./lib.js";
import { Link, useLocation } from "./router.js";
import { useApp, useLiveStatus } from "./context.js";

/** Navigation entries; each shows only when the user holds a rule that lets them in. */
export const NAVIGATION = [
  { group: "Analysis", items: [
    { href: "/tasks", label: "Tasks", allowed: (p) => p.any("task", "view") },
    { href: "/nodes", label: "Nodes", allowed: (p) => p.any("node", "view") },
  ] },
  { group: "Administration", items: [
    { href: "/collaborations", label: "Collaborations", allowed: (p) => p.any("collaboration", "view") },
    { href: "/studies", label: "Studies", allowed: (p) => p.any("study", "view") },
    { href: "/organizations", label: "Organizations", allowed: (p) => p.any("organization", "view") },
    { href: "/users", label: "Users", allowed: (p) => p.can("user", "view", "ORGANIZATION") },
    { href: "/roles", label: "Roles", allowed: (p) => p.any("role", "view") },
  ] },
];

const LIVE_TEXT = {
  idle: "Live updates off",
  connecting: "Connecting…",
  open: "Live",
  retrying: "Reconnecting…",
  forbidden: "No live updates (no permission)",
};

function LiveStatus() {
  const status = useLiveStatus();
  return html`<span class=${`live live-${status}`} role="status" data-live=${status}>
    <span class="live-dot" aria-hidden="true"></span>${LIVE_TEXT[status] ?? status}</span>`;
}

export function Shell({ children }) {
  const { me, perms, session } = useApp();
  const { path } = useLocation();
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => setMenuOpen(false), [path]);
  const groups = NAVIGATION.map((g) => ({ ...g, items: g.items.filter((i) => i.allowed(perms)) }))
    .filter((g) => g.items.length);
  const name = me.user.firstname || me.user.username;
  return html`
    <a class="skip-link" href="#main">Skip to content</a>
    <header class="topbar">
      <${Link} href="/" class="brand">v6flow<//>
      <button type="button" class="menu-button button-secondary" aria-expanded=${menuOpen}
              aria-controls="site-nav" onClick=${() => setMenuOpen(!menuOpen)}>Menu</button>
      <nav id="site-nav" class=${`site-nav ${menuOpen ? "open" : ""}`} aria-label="Main">
        ${groups.map((g) => html`
          <div class="nav-group" key=${g.group}>
            <span class="nav-group-title">${g.group}</span>
            <ul>${g.items.map((item) => html`
              <li key=${item.href}><${Link} href=${item.href}
                aria-current=${path === item.href || path.startsWith(`${item.href}/`) ? "page" : undefined}
              >${item.label}<//></li>`)}
            </ul>
          </div>`)}
      </nav>
      <div class="account">
        <${LiveStatus} />
        <${Link} href="/account" class="account-link"
                 aria-current=${path === "/account" ? "page" : undefined}>${name}<//>
        <button type="button" class="button-secondary" onClick=${() => session.logout()}>Log out</button>
      </div>
    </header>
    <main id="main" tabindex="-1">${children}</main>`;
}
