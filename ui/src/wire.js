// Wire formats of task inputs and results (v6flow/wire.py): base64 of UTF-8 JSON. The
// encryption seam lives here: `encryptInput` and `decryptResult` are the identity today;
// end-to-end encryption (the private key kept in this browser) replaces their bodies only.

export function bytesToBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

export function base64ToBytes(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** `{method, args, kwargs}` as the text of `organizations[].input`. */
export function encodeInput(input) {
  return bytesToBase64(new TextEncoder().encode(JSON.stringify(input)));
}

/** The input of a run, or null when it cannot be read (e.g. encrypted for another party). */
export function decodeInput(text) {
  try {
    return JSON.parse(new TextDecoder().decode(base64ToBytes(text)));
  } catch {
    return null;
  }
}

/**
 * Encrypt an input for one organization. Identity today (unencrypted collaborations).
 * With encryption: encrypt for `organization.public_key` (v4: `key$iv$msg`).
 */
export async function encryptInput(text, { collaboration }) {
  if (collaboration?.encrypted) {
    throw new Error("This collaboration is encrypted; the web UI cannot encrypt task input yet.");
  }
  return text;
}

/**
 * Decrypt the `result` text of a run with the private key kept in this browser.
 * Identity today: an unencrypted collaboration's result is already plain base64.
 */
export async function decryptResult(text, { collaboration } = {}) {
  void collaboration;
  return text;
}

/** The value of a result: {ok: true, value} or {ok: false, error} (never throws). */
export async function readResult(text, context) {
  if (text === null || text === undefined || text === "") return { ok: true, value: undefined };
  try {
    const plain = await decryptResult(text, context);
    const decoded = new TextDecoder().decode(base64ToBytes(plain));
    return { ok: true, value: JSON.parse(decoded) };
  } catch (error) {
    return { ok: false, error: `The result cannot be read: ${error.message}` };
  }
}
