// Live updates from GET /api/events. The browser's EventSource cannot send an Authorization
// header, so this reads the Server-Sent Events stream with fetch + ReadableStream and the
// bearer token (no token in the URL). Events only tell the UI *what* to re-read: every value
// shown comes from a REST call, which applies the caller's rules.

/** Reconnect delays (ms), the last one repeating. */
const BACKOFF_MS = [500, 1_000, 2_000, 5_000, 10_000];
/** No byte (event or ": ping") for this long means the connection is dead (server pings 10 s). */
const SILENCE_MS = 35_000;

/**
 * Parse a text/event-stream body; calls `onEvent(name, data)` per event (data parsed as JSON
 * when it is JSON) and `onActivity()` for every chunk, pings included. Resolves at the end.
 */
export async function readEventStream(body, onEvent, onActivity = () => {}) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let name = "";
  let data = [];
  const dispatch = () => {
    if (data.length) {
      const text = data.join("\n");
      let value = text;
      try { value = JSON.parse(text); } catch { /* plain text data */ }
      onEvent(name || "message", value);
    }
    name = "";
    data = [];
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    onActivity();
    let text = buffer + value;
    // a chunk ending in "\r" may be the first half of "\r\n": decide with the next chunk
    const held = text.endsWith("\r") ? "\r" : "";
    if (held) text = text.slice(0, -1);
    const lines = text.split(/\r\n|\r|\n/);
    buffer = lines.pop() + held;
    for (const line of lines) {
      if (line === "") dispatch();
      else if (line.startsWith(":")) continue;
      else {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") name = text;
        else if (field === "data") data.push(text);
      }
    }
  }
}

/**
 * One shared stream per login. `on(name, listener)` subscribes (returns the unsubscribe
 * function; "sync" fires on every (re)connect, when a page should re-read its data);
 * `status` is "idle" | "connecting" | "open" | "retrying" | "forbidden".
 */
export function createEventStream(session) {
  const listeners = new Map();
  const statusListeners = new Set();
  let status = "idle";
  let controller = null;
  let running = false;
  let opened = false;

  function setStatus(next) {
    status = next;
    for (const listener of [...statusListeners]) listener(next);
  }

  function emit(name, data) {
    for (const listener of [...(listeners.get(name) ?? [])]) {
      try { listener(data); } catch (error) { console.error(error); }
    }
  }

  async function connectOnce() {
    const token = await session.accessToken();
    if (!token) return "stop";
    controller = new AbortController();
    const { signal } = controller;
    let watchdog = null;
    const alive = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => controller.abort(), SILENCE_MS);
    };
    try {
      setStatus("connecting");
      alive();
      const response = await fetch("/api/events", {
        headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
        signal, cache: "no-store", credentials: "omit",
      });
      if (response.status === 401) {
        return (await session.refresh()) === "expired" ? "stop" : "retry";
      }
      if (response.status === 403) {
        setStatus("forbidden");
        return "stop";
      }
      if (!response.ok || !response.body) return "retry";
      await readEventStream(response.body, (name, data) => {
        if (name === "sync") {
          opened = true;
          setStatus("open");
        }
        emit(name, data);
      }, alive);
      return "retry";
    } catch {
      return "retry";
    } finally {
      clearTimeout(watchdog);
    }
  }

  async function run() {
    let attempt = 0;
    while (running) {
      opened = false;
      const outcome = await connectOnce();
      if (!running || outcome === "stop") break;
      setStatus("retrying");
      if (opened) attempt = 0;
      const wait = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
      attempt += 1;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    running = false;
    if (status !== "forbidden") setStatus("idle");
  }

  return {
    get status() { return status; },
    start() {
      if (running) return;
      running = true;
      run();
    },
    stop() {
      running = false;
      controller?.abort();
    },
    on(name, listener) {
      if (!listeners.has(name)) listeners.set(name, new Set());
      listeners.get(name).add(listener);
      return () => listeners.get(name).delete(listener);
    },
    onStatus(listener) {
      statusListeners.add(listener);
      return () => statusListeners.delete(listener);
    },
  };
}
