// The organization's private key, held in this tab's memory for the session only: loaded
// from a file the user chooses, never sent to the server, never written to any storage, and
// dropped when the user logs out (main.js) or the page is reloaded. Also remembers the nonces
// of the inputs this tab encrypted, so a result bound to another input is caught (like
// v6flow's client).
import { useEffect, useState } from "./lib.js";
import { DecryptionError, loadPrivateKey, samePublicKey } from "./crypto.js";

/**
 * A keyring for one logged-in user: `state` (null or {key, organizationId, fileName,
 * serverHasKey}), `load(file, organization)`, `forget()`, `rememberInputs(taskId, nonces)`,
 * `sentNonce(taskId, organizationId)`, `subscribe(listener)`.
 */
export function createKeyring() {
  let state = null;
  const sent = new Map();
  const listeners = new Set();
  const notify = () => { for (const listener of [...listeners]) listener(state); };

  return {
    get state() { return state; },

    /**
     * Load the key of `organization` ({id, name, public_key} as the server has it now) from a
     * PEM `text`. Refused when the server holds another public key for the organization.
     */
    async load(text, { organization, fileName = "" }) {
      const key = await loadPrivateKey(text);
      const serverHasKey = Boolean(organization.public_key);
      if (organization.public_key && !samePublicKey(organization.public_key, key)) {
        throw new DecryptionError(`This is not the key of ${organization.name}: the server holds `
          + `another public key for it. Choose ${organization.name}'s private key (fingerprint of `
          + `this one: ${key.fingerprint}).`, "key");
      }
      state = { key, organizationId: organization.id, fileName, serverHasKey };
      notify();
      return state;
    },

    /** After the organization's public key was uploaded from this key. */
    markUploaded() {
      if (state) {
        state = { ...state, serverHasKey: true };
        notify();
      }
    },

    forget() {
      state = null;
      sent.clear();
      notify();
    },

    rememberInputs(taskId, nonces) {
      for (const [organizationId, nonce] of Object.entries(nonces)) {
        if (nonce) sent.set(`${taskId}:${organizationId}`, nonce);
      }
    },

    sentNonce(taskId, organizationId) {
      return sent.get(`${taskId}:${organizationId}`) ?? null;
    },

    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/** The keyring's state, re-rendering the caller when a key is loaded or forgotten. */
export function useKeyState(keyring) {
  const [state, setState] = useState(keyring?.state ?? null);
  useEffect(() => keyring?.subscribe(setState), [keyring]);
  return state;
}
