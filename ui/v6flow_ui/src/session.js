// The login session: tokens in sessionStorage (this tab only, gone when it closes), refreshed
// before the access token expires; a failed refresh logs out with a message.
import { ApiError, errorFrom, send } from "./api.js";

const STORAGE_KEY = "v6flow.session";
/** Refresh this long before the access token expires. */
const REFRESH_MARGIN_MS = 60_000;
/** After a refresh that could not reach the server, try again after this long. */
const OFFLINE_RETRY_MS = 10_000;
export const EXPIRED_MESSAGE = "Your session has expired. Please log in again.";
export const MFA_CODE_MESSAGE = /two-factor authentication code/i;

/** The claims of a JWT (not verified: the server verifies; the UI only reads `exp`/`sub`). */
export function tokenClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = part + "=".repeat((4 - (part.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return {};
  }
}

function expiresAt(token) {
  const exp = Number(tokenClaims(token).exp);
  return Number.isFinite(exp) ? exp * 1000 : Infinity;
}

function load() {
  try {
    const value = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? "null");
    return value?.access && value?.refresh && value?.userId ? value : null;
  } catch {
    return null;
  }
}

function userIdFrom(body) {
  const fromUrl = /\/user\/(\d+)/.exec(body.user_url ?? "");
  return fromUrl ? Number(fromUrl[1]) : Number(tokenClaims(body.access_token).sub);
}

/**
 * A session: `state` ({access, refresh, userId} or null), `notice` (why it ended),
 * `login`, `logout`, `expire`, `refresh` ("ok" | "expired" | "offline"), `accessToken`,
 * `subscribe(listener)`.
 */
export function createSession() {
  let state = load();
  let notice = null;
  let refreshing = null;
  let timer = null;
  const listeners = new Set();

  function notify() {
    for (const listener of [...listeners]) listener();
  }

  function schedule() {
    clearTimeout(timer);
    if (!state) return;
    const wait = Math.max(5_000, expiresAt(state.access) - Date.now() - REFRESH_MARGIN_MS);
    timer = setTimeout(() => { refresh(); }, Math.min(wait, 2 ** 31 - 1));
  }

  function set(next, message = null) {
    state = next;
    notice = message;
    if (next) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(next));
    else sessionStorage.removeItem(STORAGE_KEY);
    schedule();
    notify();
  }

  function accept(body) {
    set({ access: body.access_token, refresh: body.refresh_token, userId: userIdFrom(body) });
  }

  async function doRefresh() {
    const current = state;
    if (!current) return "expired";
    let response;
    try {
      response = await send("POST", "token/refresh", {
        headers: { Authorization: `Bearer ${current.refresh}` },
      });
    } catch {
      clearTimeout(timer);
      timer = setTimeout(() => { refresh(); }, OFFLINE_RETRY_MS);
      return "offline";
    }
    if (state !== current) return state ? "ok" : "expired"; // logged out or in meanwhile
    if (!response.ok) {
      set(null, EXPIRED_MESSAGE);
      return "expired";
    }
    accept(await response.json());
    return "ok";
  }

  /** Exchange the refresh token for a new pair; concurrent callers share one request. */
  function refresh() {
    refreshing ??= doRefresh().finally(() => { refreshing = null; });
    return refreshing;
  }

  /** The access token, refreshed first when it is about to expire; null when logged out. */
  async function accessToken() {
    if (state && expiresAt(state.access) - Date.now() < REFRESH_MARGIN_MS / 2) {
      await refresh();
    }
    return state?.access ?? null;
  }

  /**
   * Log in. Answers {kind: "ok"}, {kind: "mfa-code", message} when the server asks for the
   * second factor, or {kind: "mfa-setup", qrUri, secret, message} for a first enrolment.
   * Throws ApiError (wrong password or code, locked account, server unreachable).
   */
  async function login(username, password, mfaCode) {
    const body = { username, password };
    if (mfaCode) body.mfa_code = mfaCode;
    const response = await send("POST", "token/user", { body });
    if (!response.ok) throw await errorFrom(response);
    const answer = await response.json();
    if (answer.access_token && answer.refresh_token) {
      accept(answer);
      return { kind: "ok" };
    }
    if (answer.qr_uri || answer.otp_secret) {
      return { kind: "mfa-setup", qrUri: answer.qr_uri ?? "", secret: answer.otp_secret ?? "",
               message: answer.msg ?? "" };
    }
    if (MFA_CODE_MESSAGE.test(answer.msg ?? "") || !mfaCode) {
      return { kind: "mfa-code", message: answer.msg ?? "" };
    }
    throw new ApiError(response.status, answer.msg ?? "The server did not log you in.");
  }

  schedule();
  return {
    get state() { return state; },
    get notice() { return notice; },
    login,
    logout: () => set(null, "You are logged out."),
    expire: () => set(null, EXPIRED_MESSAGE),
    refresh,
    accessToken,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
