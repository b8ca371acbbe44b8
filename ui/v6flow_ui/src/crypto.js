// End-to-end encryption in the browser, the counterpart of v6flow/crypto.py (docs/security.md).
//
// Keys: an organization's RSA private key, read from a PEM file the user chooses
// (`BEGIN RSA PRIVATE KEY`, PKCS#1, as v4 and `v6flow key generate` write it, or
// `BEGIN PRIVATE KEY`, PKCS#8), parsed here (a small DER reader) and imported into WebCrypto
// as a non-extractable RSA-OAEP key. Public keys come from the API (`public_key`: base64 of
// the PEM SubjectPublicKeyInfo).
//
// Schemes, told apart without a key (schemeOf):
// - `v6flow-aead-1`: RSA-OAEP-SHA256 wraps a 32-byte key, AES-256-GCM with the AAD of
//   docs/security.md seals the payload. All in WebCrypto. The UI writes task inputs in it.
// - `v4` (vantage6 4.x): RSA PKCS#1 v1.5 wraps the key, AES-256-CTR encrypts, no integrity.
//   WebCrypto has no PKCS#1 v1.5 encryption, so the RSA step is done here with BigInt
//   (Chinese remainder theorem, the result checked by re-encrypting) and the padding is
//   checked without data-dependent branches; a bad padding is one "wrong key" error. BigInt
//   arithmetic is not constant-time, but nothing the UI does after a decryption depends on
//   its outcome in a way the server can observe (no request follows a failure), so there is
//   no padding oracle to query. The UI only reads v4 (results of v4 inputs); it never writes it.
//
// Nothing here does I/O. Errors are DecryptionError with `kind` "wrong-key", "tampered",
// "malformed", "no-key" or "key" (an unusable key file).

export const AEAD_TAG = "v6flow-aead-1";
const CONTENT_KEY_BYTES = 32;
const V4_IV_BYTES = 16;
const AEAD_NONCE_BYTES = 12;
const AEAD_TAG_BYTES = 16;
const MIN_KEY_BITS = 2048;
const RSA_OID = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]; // 1.2.840.113549.1.1.1
const OAEP = { name: "RSA-OAEP", hash: "SHA-256" };

export const WRONG_KEY_AEAD = "the content key cannot be unwrapped with this private key: the "
  + "payload was encrypted for another key (wrong private key, or the organization's public "
  + "key changed), or its key part was altered";
export const WRONG_KEY_V4 = "the content key does not unwrap with this private key (bad PKCS#1 "
  + "v1.5 padding): the payload was encrypted for another key (wrong private key, or the "
  + "organization's public key changed), or it was altered";

/** Why a payload or a key cannot be used; `kind` says which case (see the module comment). */
export class DecryptionError extends Error {
  constructor(message, kind = "malformed") {
    super(message);
    this.name = "DecryptionError";
    this.kind = kind;
  }
}

/** WebCrypto, which browsers give only to secure contexts (https://, or http://localhost). */
export function subtle() {
  const value = globalThis.crypto?.subtle;
  if (!value) {
    throw new DecryptionError("Encryption needs the browser's Web Crypto API, which it offers "
      + "only on a secure page: open the UI over https:// (or on localhost).", "key");
  }
  return value;
}

// -- bytes and base64 ---------------------------------------------------------------------
export function b64encode(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

/** Strict standard base64 (with padding) to bytes; DecryptionError naming `what` otherwise. */
export function b64decode(text, what = "the payload") {
  if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4) {
    throw new DecryptionError(`${what} is not base64`);
  }
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    throw new DecryptionError(`${what} is not base64`);
  }
}

const utf8 = new TextEncoder();

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export function bytesToBigInt(bytes) {
  let hex = "0x0";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return BigInt(hex);
}

/** `value` as exactly `length` big-endian bytes (I2OSP). */
export function bigIntToBytes(value, length) {
  const hex = value.toString(16).padStart(length * 2, "0");
  if (hex.length > length * 2) throw new DecryptionError("integer too large", "wrong-key");
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 1) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function bitLength(value) {
  return value === 0n ? 0 : value.toString(2).length;
}

// -- DER ---------------------------------------------------------------------------------
/** One DER element at `at`: {tag, start (of the value), end}. */
function readTlv(der, at) {
  if (at + 2 > der.length) throw new DecryptionError("the key file is truncated", "key");
  const tag = der[at];
  let length = der[at + 1];
  let start = at + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count < 1 || count > 4 || start + count > der.length) {
      throw new DecryptionError("the key file is not valid DER", "key");
    }
    length = 0;
    for (let i = 0; i < count; i += 1) length = length * 256 + der[start + i];
    start += count;
  }
  if (start + length > der.length) throw new DecryptionError("the key file is truncated", "key");
  return { tag, start, end: start + length };
}

/** The elements inside a SEQUENCE's value. */
function children(der, tlv) {
  const items = [];
  for (let at = tlv.start; at < tlv.end;) {
    const item = readTlv(der, at);
    items.push(item);
    at = item.end;
  }
  return items;
}

function expectTag(item, tag, what) {
  if (!item || item.tag !== tag) throw new DecryptionError(`not ${what}`, "key");
  return item;
}

function derLength(length) {
  if (length < 0x80) return [length];
  const bytes = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return [0x80 | bytes.length, ...bytes];
}

function der(tag, content) {
  return concat(Uint8Array.of(tag, ...derLength(content.length)), content);
}

function derInteger(value) {
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Uint8Array.from(hex.match(/../g), (h) => parseInt(h, 16));
  if (bytes[0] & 0x80) bytes = concat(Uint8Array.of(0), bytes);
  return der(0x02, bytes);
}

const RSA_ALGORITHM = der(0x30, concat(der(0x06, Uint8Array.from(RSA_OID)), Uint8Array.of(0x05, 0)));

function isRsaAlgorithm(bytes, tlv) {
  const [oid] = children(bytes, expectTag(tlv, 0x30, "an algorithm identifier"));
  if (!oid || oid.tag !== 0x06) return false;
  const value = bytes.subarray(oid.start, oid.end);
  return value.length === RSA_OID.length && RSA_OID.every((b, i) => value[i] === b);
}

/** The integers of a PKCS#1 RSAPrivateKey. */
function parsePkcs1(bytes) {
  const fields = children(bytes, expectTag(readTlv(bytes, 0), 0x30, "an RSA private key"));
  if (fields.length < 9 || fields.slice(0, 9).some((f) => f.tag !== 0x02)) {
    throw new DecryptionError("not an RSA private key", "key");
  }
  const [, n, e, d, p, q, dp, dq, qinv] = fields.slice(0, 9)
    .map((f) => bytesToBigInt(bytes.subarray(f.start, f.end)));
  return { n, e, d, p, q, dp, dq, qinv };
}

/** The PKCS#1 key inside a PKCS#8 PrivateKeyInfo (refusing other algorithms). */
function unwrapPkcs8(bytes) {
  const [version, algorithm, key] = children(bytes, expectTag(readTlv(bytes, 0), 0x30,
    "a PKCS#8 private key"));
  expectTag(version, 0x02, "a PKCS#8 private key");
  if (!algorithm || !isRsaAlgorithm(bytes, algorithm)) {
    throw new DecryptionError("not an RSA key: v6flow keys are RSA", "key");
  }
  expectTag(key, 0x04, "a PKCS#8 private key");
  return bytes.subarray(key.start, key.end);
}

function pemBlocks(text) {
  const blocks = [];
  const pattern = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (let match = pattern.exec(text); match; match = pattern.exec(text)) {
    blocks.push({ label: match[1], body: match[2] });
  }
  return blocks;
}

function pemBody(body) {
  if (/Proc-Type:\s*4,ENCRYPTED/i.test(body)) {
    throw new DecryptionError("the private key is protected by a passphrase; v6flow (like "
      + "vantage6) needs it without one", "key");
  }
  return b64decode(body.replace(/\s+/g, ""), "the key file");
}

/** PEM of DER bytes, exactly as Python's `cryptography` writes it (64-character lines). */
export function toPem(label, bytes) {
  const lines = b64encode(bytes).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** The SubjectPublicKeyInfo DER of an RSA public key. */
export function spkiOf({ n, e }) {
  const rsaPublicKey = der(0x30, concat(derInteger(n), derInteger(e)));
  return der(0x30, concat(RSA_ALGORITHM, der(0x03, concat(Uint8Array.of(0), rsaPublicKey))));
}

/** {n, e} of an SPKI DER. */
function parseSpki(bytes) {
  const [algorithm, bits] = children(bytes, expectTag(readTlv(bytes, 0), 0x30, "a public key"));
  if (!algorithm || !isRsaAlgorithm(bytes, algorithm)) {
    throw new DecryptionError("not an RSA public key", "key");
  }
  expectTag(bits, 0x03, "a public key");
  const inner = bytes.subarray(bits.start + 1, bits.end);
  const [n, e] = children(inner, expectTag(readTlv(inner, 0), 0x30, "an RSA public key"));
  expectTag(n, 0x02, "an RSA public key");
  expectTag(e, 0x02, "an RSA public key");
  return { n: bytesToBigInt(inner.subarray(n.start, n.end)),
           e: bytesToBigInt(inner.subarray(e.start, e.end)) };
}

// -- keys --------------------------------------------------------------------------------
/**
 * Parse a PEM private key file: {numbers: {n, e, d, p, q, dp, dq, qinv}, pkcs8 (DER), bits}.
 * Throws DecryptionError (kind "key") saying why a file is not usable, never its content.
 */
export function parsePrivateKeyPem(text) {
  const blocks = pemBlocks(String(text ?? ""));
  if (!blocks.length) {
    throw new DecryptionError("not a PEM file (no -----BEGIN ... PRIVATE KEY----- block)", "key");
  }
  const block = blocks.find((b) => /PRIVATE KEY$/.test(b.label)) ?? blocks[0];
  let pkcs1;
  if (block.label === "RSA PRIVATE KEY") {
    pkcs1 = pemBody(block.body);
  } else if (block.label === "PRIVATE KEY") {
    pkcs1 = unwrapPkcs8(pemBody(block.body));
  } else if (block.label === "ENCRYPTED PRIVATE KEY") {
    throw new DecryptionError("the private key is protected by a passphrase; v6flow (like "
      + "vantage6) needs it without one", "key");
  } else if (/PUBLIC KEY|CERTIFICATE/.test(block.label)) {
    throw new DecryptionError("this file holds a public key; choose the private key file",
      "key");
  } else {
    throw new DecryptionError(`not an RSA private key but "${block.label}"`, "key");
  }
  const numbers = parsePkcs1(pkcs1);
  const bits = bitLength(numbers.n);
  if (bits < MIN_KEY_BITS) {
    throw new DecryptionError(`the RSA key has ${bits} bits; at least ${MIN_KEY_BITS} needed`,
      "key");
  }
  if (numbers.p * numbers.q !== numbers.n) {
    throw new DecryptionError("the RSA key is inconsistent (n is not p·q)", "key");
  }
  const version = der(0x02, Uint8Array.of(0));
  const pkcs8 = der(0x30, concat(version, RSA_ALGORITHM, der(0x04, pkcs1)));
  return { numbers, pkcs8, bits };
}

/** `public_key` of the API (base64 of the SPKI PEM) for an RSA public key. */
export function publicKeyToWire(numbers) {
  return b64encode(utf8.encode(toPem("PUBLIC KEY", spkiOf(numbers))));
}

/** {n, e, spki} of an API `public_key`; DecryptionError (kind "key") when it is not one. */
export function publicKeyFromWire(text) {
  let pem;
  try {
    pem = new TextDecoder("utf-8", { fatal: true }).decode(b64decode(String(text ?? ""),
      "the public key"));
  } catch (error) {
    throw new DecryptionError(`not the base64 encoding of a PEM public key (${error.message})`,
      "key");
  }
  const block = pemBlocks(pem).find((b) => b.label === "PUBLIC KEY");
  if (!block) throw new DecryptionError("not the base64 encoding of a PEM public key", "key");
  const spki = b64decode(block.body.replace(/\s+/g, ""), "the public key");
  const { n, e } = parseSpki(spki);
  if (bitLength(n) < MIN_KEY_BITS) {
    throw new DecryptionError(`the RSA key has ${bitLength(n)} bits; at least ${MIN_KEY_BITS} `
      + "needed", "key");
  }
  return { n, e, spki };
}

/** First 16 hex digits of the SHA-256 of an API `public_key` text (as `v6flow key generate`). */
export async function fingerprint(wireText) {
  const digest = new Uint8Array(await subtle().digest("SHA-256", utf8.encode(wireText)));
  return [...digest.subarray(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Load a PEM private key for this tab: {oaep (non-extractable CryptoKey), numbers, bits,
 * publicWire, fingerprint}. Throws DecryptionError (kind "key").
 */
export async function loadPrivateKey(pemText) {
  const { numbers, pkcs8, bits } = parsePrivateKeyPem(pemText);
  let oaep;
  try {
    oaep = await subtle().importKey("pkcs8", pkcs8, OAEP, false, ["decrypt"]);
  } catch (error) {
    if (error instanceof DecryptionError) throw error;
    throw new DecryptionError(`the browser refused the key (${error.message})`, "key");
  }
  const publicWire = publicKeyToWire(numbers);
  return { oaep, numbers, bits, publicWire, fingerprint: await fingerprint(publicWire) };
}

/** Whether an API `public_key` is the public half of a loaded key. */
export function samePublicKey(wireText, key) {
  try {
    const { n, e } = publicKeyFromWire(wireText);
    return n === key.numbers.n && e === key.numbers.e;
  } catch {
    return false;
  }
}

/** An API `public_key` as a WebCrypto RSA-OAEP encryption key. */
export async function importPublicKey(wireText) {
  const { spki } = publicKeyFromWire(wireText);
  return subtle().importKey("spki", spki, OAEP, false, ["encrypt"]);
}

// -- schemes -----------------------------------------------------------------------------
/** "v6flow-aead-1", "v4" or "plain", by form only (v6flow.wire.scheme_of). */
export function schemeOf(text) {
  if (text.startsWith(`${AEAD_TAG}.`)) return AEAD_TAG;
  if (text.includes("$")) return "v4";
  return "plain";
}

/** The AAD of a task input (docs/security.md). */
export function inputAad({ collaborationId, from, to }) {
  return utf8.encode(`${AEAD_TAG};field=input;collaboration=${collaborationId};from=${from};to=${to}`);
}

/** The AAD of a result: bound to its task and to the nonce of the input it was computed on. */
export function resultAad({ collaborationId, taskId, from, to, inputNonce }) {
  return utf8.encode(`${AEAD_TAG};field=result;collaboration=${collaborationId};task=${taskId};`
    + `from=${from};to=${to};input=${inputNonce}`);
}

function aeadParts(text) {
  const parts = String(text).split(".");
  if (parts.length !== 4 || parts[0] !== AEAD_TAG) {
    throw new DecryptionError(`not a ${AEAD_TAG} envelope (${AEAD_TAG}.key.nonce.body)`);
  }
  const [wrapped, nonce, body] = [["the wrapped key", parts[1]], ["the nonce", parts[2]],
    ["the body", parts[3]]].map(([what, part]) => b64decode(part, what));
  if (nonce.length !== AEAD_NONCE_BYTES) {
    throw new DecryptionError(`the nonce has ${nonce.length} bytes, not ${AEAD_NONCE_BYTES}`);
  }
  if (body.length < AEAD_TAG_BYTES || !wrapped.length) {
    throw new DecryptionError("the envelope is truncated");
  }
  return { wrapped, nonce, body };
}

/** The nonce (base64, as written) of a `v6flow-aead-1` envelope, read without a key. */
export function aeadNonce(text) {
  aeadParts(text);
  return text.split(".")[2];
}

/** Seal `data` for `publicKey` (a CryptoKey from importPublicKey) bound to `aad`. */
export async function aeadEncrypt(data, publicKey, aad) {
  const key = crypto.getRandomValues(new Uint8Array(CONTENT_KEY_BYTES));
  const nonce = crypto.getRandomValues(new Uint8Array(AEAD_NONCE_BYTES));
  const aes = await subtle().importKey("raw", key, "AES-GCM", false, ["encrypt"]);
  const body = new Uint8Array(await subtle().encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 }, aes, data));
  const wrapped = new Uint8Array(await subtle().encrypt({ name: "RSA-OAEP" }, publicKey, key));
  key.fill(0);
  return [AEAD_TAG, b64encode(wrapped), b64encode(nonce), b64encode(body)].join(".");
}

/** Open a `v6flow-aead-1` envelope with a loaded key; `aad` must be the one it was sealed with. */
export async function aeadDecrypt(text, key, aad) {
  const { wrapped, nonce, body } = aeadParts(text);
  let contentKey;
  try {
    contentKey = new Uint8Array(await subtle().decrypt({ name: "RSA-OAEP" }, key.oaep, wrapped));
  } catch {
    throw new DecryptionError(WRONG_KEY_AEAD, "wrong-key");
  }
  if (contentKey.length !== CONTENT_KEY_BYTES) {
    throw new DecryptionError(`the content key has ${contentKey.length} bytes, not `
      + `${CONTENT_KEY_BYTES}`, "tampered");
  }
  const aes = await subtle().importKey("raw", contentKey, "AES-GCM", false, ["decrypt"]);
  contentKey.fill(0);
  try {
    return new Uint8Array(await subtle().decrypt(
      { name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 }, aes, body));
  } catch {
    const field = new TextDecoder().decode(aad).includes(";field=result;") ? "result" : "input";
    throw new DecryptionError("authentication failed: the payload was altered, or it belongs "
      + `to another ${field === "result" ? "task, " : ""}organization or collaboration than `
      + `this ${field}`, "tampered");
  }
}

// -- v4: RSA PKCS#1 v1.5 with BigInt, AES-256-CTR with WebCrypto ---------------------------
function modPow(base, exponent, modulus) {
  let result = 1n;
  let b = base % modulus;
  for (const bit of exponent.toString(2)) {
    result = (result * result) % modulus;
    if (bit === "1") result = (result * b) % modulus;
  }
  return result;
}

/**
 * RSAES-PKCS1-v1_5 decryption of the wrapped content key: the message, or DecryptionError
 * ("wrong-key") for a ciphertext that does not decrypt to a well-padded block. The padding is
 * checked over the whole block with one decision at the end (no early exit on its content).
 */
export function rsaPkcs1v15Decrypt(wrapped, numbers) {
  const { n, e, p, q, dp, dq, qinv } = numbers;
  const k = Math.ceil(bitLength(n) / 8);
  const c = bytesToBigInt(wrapped);
  if (wrapped.length !== k || c >= n) throw new DecryptionError(WRONG_KEY_V4, "wrong-key");
  const m1 = modPow(c, dp, p);
  const m2 = modPow(c, dq, q);
  const h = (qinv * (((m1 - m2) % p) + p)) % p;
  const m = m2 + h * q;
  if (modPow(m, e, n) !== c) {
    throw new DecryptionError("the private key is inconsistent (its RSA numbers do not agree)",
      "key");
  }
  const block = bigIntToBytes(m, k);
  // 0x00 0x02 PS(>= 8 non-zero bytes) 0x00 M
  let bad = block[0] | (block[1] ^ 0x02);
  let found = 0;
  let separator = 0;
  for (let i = 2; i < k; i += 1) {
    const zero = ((block[i] - 1) >>> 31) & 1; // 1 when the byte is 0
    const first = zero & (found ^ 1);
    separator |= (-first) & i;
    found |= zero;
  }
  bad |= found ^ 1;
  bad |= ((separator - 10) >>> 31) & 1; // fewer than 8 padding bytes
  if (bad !== 0) throw new DecryptionError(WRONG_KEY_V4, "wrong-key");
  const message = block.slice(separator + 1);
  block.fill(0);
  return message;
}

/** The content key of v4: 32 bytes, or (v4's web UI) the base64 text of 32 bytes. */
function v4ContentKey(wrapped, key) {
  const raw = rsaPkcs1v15Decrypt(wrapped, key.numbers);
  if (raw.length === CONTENT_KEY_BYTES) return raw;
  try {
    const decoded = b64decode(new TextDecoder().decode(raw), "the content key");
    if (decoded.length === CONTENT_KEY_BYTES) return decoded;
  } catch {
    // fall through
  }
  throw new DecryptionError(WRONG_KEY_V4, "wrong-key");
}

function addToCounter(iv, blocks) {
  const counter = bytesToBigInt(iv) + BigInt(blocks);
  return bigIntToBytes(counter % (1n << 128n), V4_IV_BYTES);
}

async function aesCtr(contentKey, iv, body) {
  const aes = await subtle().importKey("raw", contentKey, "AES-CTR", false, ["decrypt"]);
  return new Uint8Array(await subtle().decrypt({ name: "AES-CTR", counter: iv, length: 128 },
    aes, body));
}

/** v4's plaintext: JSON bytes, or (v4's web UI) base64 text of them. */
function v4Plaintext(data) {
  try {
    JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
    return data;
  } catch {
    // not JSON: maybe base64 of JSON
  }
  try {
    return data.length ? b64decode(new TextDecoder().decode(data)) : data;
  } catch {
    return data;
  }
}

function v4Parts(text) {
  const first = text.indexOf("$");
  const second = first < 0 ? -1 : text.indexOf("$", first + 1);
  if (first < 0 || second < 0) throw new DecryptionError("not a v4 payload (base64 key$iv$body)");
  const wrapped = b64decode(text.slice(0, first), "the wrapped key");
  const iv = b64decode(text.slice(first + 1, second), "the IV");
  if (iv.length !== V4_IV_BYTES) {
    throw new DecryptionError(`the IV has ${iv.length} bytes, not ${V4_IV_BYTES}`);
  }
  return { wrapped, iv, rest: second + 1 };
}

/** Open a v4 payload `base64(EK)$base64(IV)$base64(C)` with a loaded key (no integrity check). */
export async function v4Decrypt(text, key) {
  const { wrapped, iv, rest } = v4Parts(text);
  const body = b64decode(text.slice(rest), "the body");
  const contentKey = v4ContentKey(wrapped, key);
  const plain = await aesCtr(contentKey, iv, body);
  contentKey.fill(0);
  return v4Plaintext(plain);
}

/** The bytes of a blob that tell whether it is encrypted (v4's proxy reads as many). */
export const BLOB_HEAD_BYTES = 1100;

/**
 * Where the raw ciphertext of an encrypted blob starts, -1 for a plain (base64) blob, or null
 * when the first `bytes` do not tell yet (`final`: there are no more).
 */
export function encryptedBlobHead(bytes, final = true) {
  const head = new TextDecoder("latin1").decode(bytes.subarray(0, BLOB_HEAD_BYTES));
  const first = head.indexOf("$");
  const second = first < 0 ? -1 : head.indexOf("$", first + 1);
  if (second >= 0) return second + 1;
  if (!final && bytes.length < BLOB_HEAD_BYTES) return null;
  if (first < 0) return -1;
  throw new DecryptionError("not a v4 blob (base64(key)$base64(iv)$ciphertext)");
}

/**
 * A decryptor of a v4 blob (`base64(EK)$base64(IV)$` then raw ciphertext) fed in pieces, as
 * a TransformStream of bytes: AES-CTR is applied a piece at a time, each piece with the counter
 * of its offset, so a large blob is never held whole.
 */
export function v4BlobDecryptor(key) {
  let head = new Uint8Array(0);
  let contentKey = null;
  let iv = null;
  let offset = 0;
  let pending = new Uint8Array(0);
  let aes = null;

  async function decrypt(data, controller) {
    if (!data.length) return;
    const counter = addToCounter(iv, offset / 16);
    const plain = await subtle().decrypt({ name: "AES-CTR", counter, length: 128 }, aes, data);
    offset += data.length;
    controller.enqueue(new Uint8Array(plain));
  }

  return new TransformStream({
    async transform(chunk, controller) {
      if (!aes) {
        head = concat(head, chunk);
        const start = encryptedBlobHead(head, false);
        if (start === null) return;
        if (start < 0) throw new DecryptionError("the blob is not encrypted");
        const parts = v4Parts(new TextDecoder("latin1").decode(head.subarray(0, start)));
        contentKey = v4ContentKey(parts.wrapped, key);
        iv = parts.iv;
        aes = await subtle().importKey("raw", contentKey, "AES-CTR", false, ["decrypt"]);
        contentKey.fill(0);
        chunk = head.subarray(start);
        head = null;
      }
      const data = concat(pending, chunk);
      const whole = data.length - (data.length % 16);
      pending = data.slice(whole);
      await decrypt(data.subarray(0, whole), controller);
    },
    async flush(controller) {
      if (!aes) throw new DecryptionError("the blob ends before its ciphertext, or is not encrypted");
      await decrypt(pending, controller);
    },
  });
}

/** A whole (small) v4 blob decrypted: the plaintext bytes. */
export async function v4DecryptBlob(bytes, key) {
  const start = encryptedBlobHead(bytes);
  if (start < 0) throw new DecryptionError("the blob is not encrypted");
  const { wrapped, iv } = v4Parts(new TextDecoder("latin1").decode(bytes.subarray(0, start)));
  const contentKey = v4ContentKey(wrapped, key);
  const plain = await aesCtr(contentKey, iv, bytes.subarray(start));
  contentKey.fill(0);
  return v4Plaintext(plain);
}
