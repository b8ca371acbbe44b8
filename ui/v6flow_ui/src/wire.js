// Wire formats of task inputs and results (v6flow/wire.py): base64 of UTF-8 JSON, or, in an
// encrypted collaboration, sealed with the keys of crypto.js exactly as v6flow's client does
// (v6flow/client/_ops.py encrypt_inputs, open_result). Results may also sit in the blob
// store (`blob_storage_used`): the page fetches their bytes, this module decodes them.
import { idOf } from "./api.js";
import {
  AEAD_TAG, BLOB_HEAD_BYTES, DecryptionError, aeadDecrypt, aeadEncrypt, aeadNonce, b64decode, encryptedBlobHead,
  concat, importPublicKey, inputAad, resultAad, schemeOf, v4BlobDecryptor, v4Decrypt, v4DecryptBlob,
} from "./crypto.js";

export { DecryptionError, schemeOf };

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

const fatalUtf8 = () => new TextDecoder("utf-8", { fatal: true });

/** JSON from UTF-8 bytes, or DecryptionError saying it is not. */
function jsonOf(bytes) {
  try {
    return JSON.parse(fatalUtf8().decode(bytes));
  } catch (error) {
    throw new DecryptionError(`the payload is not UTF-8 JSON (${error.message})`);
  }
}

/** `{method, args, kwargs}` as UTF-8 JSON bytes (what an input's scheme then wraps). */
export function inputBytes(input) {
  return new TextEncoder().encode(JSON.stringify(input));
}

/** `{method, args, kwargs}` as the text of `organizations[].input` (unencrypted). */
export function encodeInput(input) {
  return bytesToBase64(inputBytes(input));
}

/** The input of a run, or null when it cannot be read (encrypted, or in the blob store). */
export function decodeInput(text) {
  try {
    return JSON.parse(new TextDecoder().decode(base64ToBytes(text)));
  } catch {
    return null;
  }
}

/**
 * The text of `organizations[].input` for one organization, and the nonce a result will be
 * bound to (null when unencrypted): sealed with `v6flow-aead-1` for the organization's
 * public key in an encrypted collaboration (`senderId`: the creating user's organization).
 */
export async function encryptInput(input, { collaboration, organization, senderId }) {
  if (!collaboration?.encrypted) return { text: encodeInput(input), nonce: null };
  if (!organization?.public_key) {
    throw new Error(`Organization ${organization?.name ?? organization?.id} has no public key, so `
      + "nothing can be encrypted for it: its node must run with encryption enabled (or its "
      + "administrator must upload the public key).");
  }
  const publicKey = await importPublicKey(organization.public_key);
  const text = await aeadEncrypt(inputBytes(input), publicKey, inputAad({
    collaborationId: collaboration.id, from: senderId, to: organization.id }));
  return { text, nonce: aeadNonce(text) };
}

/**
 * A run's input: {value} when this tab can read it, else {reason}: it is in the blob store,
 * or encrypted for another organization, or no key is loaded. `context`: {collaboration,
 * task, run, key, keyOrganizationId}.
 */
export async function openInput(text, { collaboration, task, run, key, keyOrganizationId } = {}) {
  if (!text) return { reason: "The server sent no input." };
  if (run?.blob_storage_used) return { reason: "The input is in the blob store." };
  const scheme = schemeOf(text);
  if (scheme === "plain") {
    const value = decodeInput(text);
    return value === null ? { reason: "The input is not base64 JSON." } : { value };
  }
  const organizationId = idOf(run?.organization);
  if (!key || organizationId !== keyOrganizationId) {
    return { reason: `The input is encrypted for organization ${organizationId}: only its key `
      + "can read it." };
  }
  try {
    const plain = scheme === "v4" ? await v4Decrypt(text, key) : await aeadDecrypt(text, key,
      inputAad({ collaborationId: collaboration?.id ?? idOf(task?.collaboration),
                 from: idOf(task?.init_org), to: organizationId }));
    return { value: jsonOf(plain) };
  } catch (error) {
    return { reason: `The input cannot be read: ${error.message}.` };
  }
}

/** A readable message about a run's result that cannot be opened. */
function explain(error, { run, task, key, keyOrganizationId }) {
  const organizationId = idOf(run?.organization);
  const where = run ? `The result of run ${run.id} (organization ${organizationId})` : "The result";
  let hint = "";
  const initOrg = idOf(task?.init_org);
  if (error?.kind === "wrong-key" && key && initOrg != null && initOrg !== keyOrganizationId) {
    hint = ` It is encrypted for organization ${initOrg}, which created the task; the key in this `
      + `tab is organization ${keyOrganizationId}'s.`;
  }
  return `${where} cannot be read: ${error?.message ?? error}.${hint}`.replace(/\.\.(\s|$)/, ".$1");
}

/** The nonce of the input a `v6flow-aead-1` result must be bound to (open_result's rule). */
function inputNonceOf({ run, sentNonce }) {
  let stored = null;
  try {
    stored = aeadNonce(run?.input ?? "");
  } catch {
    stored = null;
  }
  if (sentNonce && stored && sentNonce !== stored) {
    throw new DecryptionError("the run's input on the server is not the input this tab sent",
      "tampered");
  }
  const nonce = sentNonce || stored;
  if (!nonce) {
    throw new DecryptionError(`the run's input is not a ${AEAD_TAG} envelope, so its result cannot `
      + "be checked", "tampered");
  }
  return nonce;
}

/**
 * The JSON value of a run's `result` text (inline), decrypted when encrypted. `context`:
 * {collaboration, task, run (with its input), key (crypto.loadPrivateKey), keyOrganizationId,
 * sentNonce (the input nonce this tab sent, if it did)}. Throws DecryptionError.
 */
export async function openResult(text, context = {}) {
  const { collaboration, task, run, key } = context;
  const scheme = schemeOf(text);
  if (scheme === "plain") {
    if (collaboration?.encrypted) {
      throw new DecryptionError(`the result is not encrypted, but collaboration ${collaboration.id} `
        + "is", "tampered");
    }
    return jsonOf(b64decode(text, "the result"));
  }
  if (!key) {
    throw new DecryptionError("it is encrypted: load your organization's private key to read it",
      "no-key");
  }
  if (scheme === "v4") return jsonOf(await v4Decrypt(text, key));
  const aad = resultAad({
    collaborationId: collaboration?.id ?? idOf(task?.collaboration), taskId: task?.id,
    from: idOf(run?.organization), to: idOf(task?.init_org),
    inputNonce: inputNonceOf(context) });
  return jsonOf(await aeadDecrypt(text, key, aad));
}

/**
 * The value of a result: {ok: true, value, scheme} or {ok: false, error, kind} (never throws).
 * `context` as for openResult.
 */
export async function readResult(text, context = {}) {
  if (text === null || text === undefined || text === "") return { ok: true, value: undefined };
  try {
    return { ok: true, value: await openResult(text, context), scheme: schemeOf(text) };
  } catch (error) {
    return { ok: false, error: explain(error, context), kind: error?.kind ?? "malformed" };
  }
}

/**
 * The value of a result blob's bytes (what `GET /blobstream/<uuid>` streams): base64 text of
 * the payload, or in an encrypted collaboration v4's `base64(EK)$base64(IV)$` and raw
 * ciphertext. {ok, value, scheme} or {ok: false, error, kind}, like readResult.
 */
export async function readBlobResult(bytes, context = {}) {
  try {
    const start = encryptedBlobHead(bytes);
    if (start < 0) {
      if (context.collaboration?.encrypted) {
        throw new DecryptionError("the result is not encrypted, but collaboration "
          + `${context.collaboration.id} is`, "tampered");
      }
      const text = new TextDecoder("latin1").decode(bytes).replace(/\s+$/, "");
      if (!text) return { ok: true, value: undefined };
      return { ok: true, value: jsonOf(b64decode(text, "the blob")), scheme: "plain" };
    }
    if (!context.key) {
      throw new DecryptionError("it is encrypted: load your organization's private key to read "
        + "it", "no-key");
    }
    return { ok: true, value: jsonOf(await v4DecryptBlob(bytes, context.key)), scheme: "v4" };
  } catch (error) {
    return { ok: false, error: explain(error, context), kind: error?.kind ?? "malformed" };
  }
}

/** A TransformStream decoding base64 text given in any pieces (whitespace ignored). */
export function base64Decoder() {
  let rest = "";
  const latin1 = new TextDecoder("latin1");
  return new TransformStream({
    transform(chunk, controller) {
      const text = rest + latin1.decode(chunk, { stream: true }).replace(/\s+/g, "");
      const whole = text.length - (text.length % 4);
      rest = text.slice(whole);
      if (whole) controller.enqueue(b64decode(text.slice(0, whole), "the blob"));
    },
    flush() {
      if (rest) throw new DecryptionError(`the blob ends with ${rest.length} stray characters`);
    },
  });
}

/**
 * The payload of a result blob as a stream of bytes, for a download that is never held in
 * the page whole: base64-decoded, or decrypted (v4) a piece at a time. `body` is the
 * response's stream; its first bytes tell which. Throws DecryptionError before any byte
 * when the blob cannot be read (not encrypted in an encrypted collaboration, no key).
 */
export async function blobPayloadStream(body, { key, collaboration } = {}) {
  const reader = body.getReader();
  let head = new Uint8Array(0);
  let done = false;
  while (!done && head.length < BLOB_HEAD_BYTES) {
    const next = await reader.read();
    if (next.done) done = true;
    else head = concat(head, next.value);
  }
  const source = new ReadableStream({
    start(controller) {
      if (head.length) controller.enqueue(head);
      if (done) controller.close();
    },
    async pull(controller) {
      const next = await reader.read();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    cancel(reason) { return reader.cancel(reason); },
  });
  try {
    if (encryptedBlobHead(head) < 0) {
      if (collaboration?.encrypted) {
        throw new DecryptionError("the result is not encrypted, but collaboration "
          + `${collaboration.id} is`, "tampered");
      }
      return source.pipeThrough(base64Decoder());
    }
    if (!key) {
      throw new DecryptionError("it is encrypted: load your organization's private key to "
        + "read it", "no-key");
    }
    return source.pipeThrough(v4BlobDecryptor(key));
  } catch (error) {
    reader.cancel().catch(() => {});
    throw error;
  }
}
