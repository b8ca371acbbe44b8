// The REST client: every request goes through here (bearer token, one refresh-and-retry on
// 401, errors turned into ApiError with the server's message and its field errors).

const PREFIX = "/api";
/** Page size when reading every page (the server allows up to 1000). */
export const MAX_PER_PAGE = 500;

/** An answer other than 2xx: `message` is the server's `msg`, `fields` maps a field to its error. */
export class ApiError extends Error {
  constructor(status, message, fields = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.fields = fields;
  }
}

/** Drop the leading "body."/"query." parts: the field path of a form control. */
function fieldName(field) {
  return String(field ?? "").replace(/^(body|query|path)\./, "");
}

/** The ApiError of a failed response (`{"msg", "errors":[{"field","msg"}]}` when JSON). */
export async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const fields = {};
  for (const item of body?.errors ?? []) {
    const name = fieldName(item.field);
    fields[name] = fields[name] ? `${fields[name]}; ${item.msg}` : String(item.msg);
  }
  const fallback = response.status === 403
    ? "You do not have permission to do that."
    : `The server answered ${response.status} ${response.statusText}`.trim();
  let message = typeof body?.msg === "string" && body.msg ? body.msg : fallback;
  if (Object.keys(fields).length) {
    message = "Please correct the fields marked below.";
  }
  return new ApiError(response.status, message, fields);
}

export function buildUrl(path, params = {}) {
  const url = new URL(`${PREFIX}/${String(path).replace(/^\/+(api\/)?/, "")}`, location.origin);
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) {
      url.searchParams.append(key, String(item));
    }
  }
  return url.pathname + url.search;
}

const OFFLINE = "The server cannot be reached. Check your connection and try again.";

/** Plain fetch of the API without a token (login, refresh); network errors become ApiError. */
export async function send(method, path, { body, headers = {}, params, signal } = {}) {
  const init = {
    method,
    headers: { Accept: "application/json", ...headers },
    credentials: "omit",
    cache: "no-store",
    signal,
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  try {
    return await fetch(buildUrl(path, params), init);
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    throw new ApiError(0, OFFLINE);
  }
}

/**
 * The API bound to a session. Methods: get, post, patch, del (JSON or null), page (one page
 * with the total from the `total-count` header), all (every page) and stream (the Response
 * of a GET, its body unread: for blobs).
 */
export function createApi(session) {
  async function request(method, path, options = {}, retried = false) {
    const token = await session.accessToken();
    if (!token) throw new ApiError(401, "Please log in.");
    const response = await send(method, path, {
      ...options, headers: { Authorization: `Bearer ${token}` },
    });
    if (response.status === 401 && !retried) {
      const outcome = await session.refresh();
      if (outcome === "ok") return request(method, path, options, true);
      if (outcome === "expired") throw new ApiError(401, "Your session has expired.");
    }
    if (!response.ok) throw await errorFrom(response);
    return response;
  }

  async function json(method, path, options) {
    const response = await request(method, path, options);
    if (response.status === 204) return null;
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }

  async function page(path, params = {}, options = {}) {
    const response = await request("GET", path, { ...options, params });
    const body = await response.json();
    const total = Number(response.headers.get("total-count") ?? body.data.length);
    return { data: body.data, total, links: body.links ?? {} };
  }

  async function all(path, params = {}, options = {}) {
    const items = [];
    for (let number = 1; ; number += 1) {
      const result = await page(path, { ...params, page: number, per_page: MAX_PER_PAGE }, options);
      items.push(...result.data);
      if (!result.links.next || result.data.length === 0) return items;
    }
  }

  return {
    get: (path, params, options) => json("GET", path, { ...options, params }),
    post: (path, body, options) => json("POST", path, { ...options, body }),
    patch: (path, body, options) => json("PATCH", path, { ...options, body }),
    del: (path, params, options) => json("DELETE", path, { ...options, params }),
    page,
    all,
    stream: (path, options) => request("GET", path, options),
  };
}

/** The id at the end of a HATEOAS link such as "/api/user/7", or of a {id, link} object. */
export function idOf(value) {
  if (value && typeof value === "object") return value.id ?? null;
  const match = /\/(\d+)\/?$/.exec(String(value ?? ""));
  return match ? Number(match[1]) : null;
}
