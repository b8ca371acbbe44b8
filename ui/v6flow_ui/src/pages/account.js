// The logged-in user's own page: who they are, their roles, changing the password, the
// organization's private key in this tab (encrypted collaborations), and this browser's
// Prefect UI address (for links from tasks to their flow runs).
import { html, useState } from "../lib.js";
import { useApp } from "../context.js";
import { Details, Notice, Page } from "../components/ui.js";
import { Form, TextField, useForm } from "../components/forms.js";
import { KeyPanel } from "../components/keys.js";
import { getPrefectUiUrl, setPrefectUiUrl } from "./task_detail.js";

/** The password policy's minimum length, as the server announces it (8 from an older one). */
export const minPasswordLength = (config) => config?.password_min_length ?? 8;

function PasswordForm() {
  const { api, config } = useApp();
  const min = minPasswordLength(config);
  const [done, setDone] = useState(null);
  const form = useForm({ current_password: "", new_password: "", repeat: "" }, (v) => ({
    current_password: v.current_password ? null : "Enter your current password.",
    new_password: v.new_password.length >= min ? null : `Use at least ${min} characters.`,
    repeat: v.repeat === v.new_password ? null : "The passwords differ.",
  }));
  const submit = async (values) => {
    setDone(null);
    try {
      const answer = await api.patch("password/change", {
        current_password: values.current_password, new_password: values.new_password,
      });
      form.setValues({ current_password: "", new_password: "", repeat: "" });
      setDone(answer?.msg ?? "Your password has been changed.");
    } catch (error) {
      if ((error.status === 401 || error.status === 403) && !Object.keys(error.fields).length) {
        error.fields = { current_password: error.message };
      }
      throw error;
    }
  };
  return html`
    <section aria-labelledby="password-title" class="panel">
      <h2 id="password-title">Change password</h2>
      ${done && html`<${Notice} kind="success">${done}<//>`}
      <${Form} form=${form} onSubmit=${submit} submitLabel="Change password" label="Change password">
        <${TextField} form=${form} name="current_password" label="Current password" type="password"
                      required autocomplete="current-password" />
        <${TextField} form=${form} name="new_password" label="New password" type="password"
                      required autocomplete="new-password" hint=${`At least ${min} characters.`} />
        <${TextField} form=${form} name="repeat" label="New password again" type="password"
                      required autocomplete="new-password" />
      <//>
    </section>`;
}

function PrefectForm() {
  const { config } = useApp();
  const announced = config?.prefect_ui_url ?? "";
  const [saved, setSaved] = useState(false);
  const form = useForm({ url: getPrefectUiUrl() }, (v) => ({
    url: !v.url.trim() || /^https?:\/\/\S+$/.test(v.url.trim())
      ? null : "Enter an address starting with http:// or https://",
  }));
  const submit = async (values) => {
    setPrefectUiUrl(values.url.trim().replace(/\/+$/, ""));
    setSaved(true);
  };
  return html`
    <section aria-labelledby="prefect-title" class="panel">
      <h2 id="prefect-title">Prefect UI</h2>
      <p>Tasks created by a Prefect flow link to their flow run in the Prefect UI at this
         address (kept in this browser only).${announced
           ? html` Leave it empty to use the server's: <code>${announced}</code>.` : ""}</p>
      ${saved && html`<${Notice} kind="success">Saved.<//>`}
      <${Form} form=${form} onSubmit=${submit} submitLabel="Save" label="Prefect UI address">
        <${TextField} form=${form} name="url" label="Prefect UI address" type="url"
                      placeholder=${announced || "http://127.0.0.1:4200"} />
      <//>
    </section>`;
}

export function AccountPage() {
  const { me } = useApp();
  const { user } = me;
  const encrypted = me.collaborations.some((c) => c.encrypted);
  return html`
    <${Page} title="Your account">
      <${Details} items=${[
        ["Username", user.username],
        ["Name", [user.firstname, user.lastname].filter(Boolean).join(" ") || "—"],
        ["Email", user.email || "—"],
        ["Organization", me.organization?.name ?? `#${me.organizationId}`],
        ["Roles", me.roles.map((r) => r.name).join(", ") || "none"],
      ]} />
      <div class="columns">
        <${PasswordForm} />
        <${PrefectForm} />
      </div>
      <${KeyPanel} reason=${encrypted
        ? "Encrypted collaborations need it to encrypt task inputs and to read results."
        : "Needed only in encrypted collaborations (none of yours is)."} />
    <//>`;
}
