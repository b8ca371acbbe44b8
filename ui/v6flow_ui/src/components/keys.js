// The organization's private key in this tab: choose its PEM file, see which key is loaded,
// forget it; upload its public half when the server has none for the organization.
import { html, useId, useState } from "../lib.js";
import { useApp } from "../context.js";
import { useKeyState } from "../keyring.js";
import { ErrorMessage, Notice } from "./ui.js";

/** The largest file taken for a key (a 4096-bit PEM is about 3.3 KB). */
const MAX_KEY_FILE_BYTES = 64 * 1024;

export function KeyPanel({ reason }) {
  const { api, keyring, me, perms } = useApp();
  const state = useKeyState(keyring);
  const inputId = useId();
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [uploaded, setUploaded] = useState(false);
  const organizationName = me.organization?.name ?? `organization ${me.organizationId}`;
  const mayUpload = perms.reaches("organization", "edit",
    { organizationIds: [me.organizationId], collaborationIds: [...me.collaborationIds] });

  const choose = async (event) => {
    const input = event.currentTarget;
    const file = input.files?.[0];
    input.value = "";
    if (!file) return;
    setError(null);
    setUploaded(false);
    setBusy(true);
    try {
      if (file.size > MAX_KEY_FILE_BYTES) {
        throw new Error(`${file.name} is ${file.size} bytes: not a private key file.`);
      }
      const organization = await api.get(`organization/${me.organizationId}`);
      await keyring.load(await file.text(), { organization, fileName: file.name });
    } catch (err) {
      setError(`The key was not loaded: ${err.message}`);
    } finally {
      setBusy(false);
    }
  };
  const upload = async () => {
    setError(null);
    try {
      await api.patch(`organization/${me.organizationId}`, { public_key: state.key.publicWire });
      keyring.markUploaded();
      setUploaded(true);
    } catch (err) {
      setError(err);
    }
  };

  return html`
    <section class="panel key-panel" aria-labelledby=${`${inputId}-title`}>
      <h2 id=${`${inputId}-title`}>Private key of ${organizationName}</h2>
      ${reason && html`<p>${reason}</p>`}
      <p class="hint">The key stays in this browser tab: it is never sent to the server or
        stored, and it is forgotten when you log out or reload the page.</p>
      <${ErrorMessage} error=${error} />
      ${state ? html`
        <p class="key-status" role="status">
          Key loaded${state.fileName ? html` from <code>${state.fileName}</code>` : ""} (${
            state.key.bits} bits, fingerprint <code>${state.key.fingerprint}</code>).
        </p>
        ${uploaded && html`<${Notice} kind="success">The public key of ${organizationName} is now on
          the server.<//>`}
        ${!state.serverHasKey && html`<${Notice} kind="warning">
          The server has no public key for ${organizationName}, so nobody can encrypt inputs or
          results for it yet.
          ${mayUpload ? html` <button type="button" class="button-secondary"
                                      onClick=${upload}>Upload its public key</button>`
                      : " Ask an administrator of the organization to upload it."}<//>`}
        <button type="button" class="button-secondary" onClick=${() => keyring.forget()}>
          Forget the key</button>`
      : html`
        <div class="field">
          <label for=${inputId}>Private key file (PEM)</label>
          <p class="hint" id=${`${inputId}-hint`}>The file <code>v6flow key generate</code> wrote
            (<code>BEGIN RSA PRIVATE KEY</code>, as in vantage6), or a PKCS#8 key, without
            passphrase.</p>
          <input id=${inputId} type="file" accept=".pem,.key,.txt,application/x-pem-file"
                 aria-describedby=${`${inputId}-hint`} onChange=${choose} disabled=${busy} />
        </div>`}
    </section>`;
}
