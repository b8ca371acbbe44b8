// Logging in: password, then (when the server asks) the second factor, or a first 2FA
// enrolment with a QR code for the authenticator app.
import { html, useState } from "../lib.js";
import { Form, TextField, useForm } from "../components/forms.js";
import { Notice } from "../components/ui.js";
import { QrCode } from "../components/qr.js";
import { useApp } from "../context.js";

const CODE = /^\d{6}$/;

export function LoginPage({ notice }) {
  const { session } = useApp();
  const [step, setStep] = useState({ kind: "password" });
  const form = useForm({ username: "", password: "", mfa_code: "" }, (v) => ({
    username: v.username.trim() ? null : "Enter your username.",
    password: v.password ? null : "Enter your password.",
    mfa_code: step.kind !== "password" && !CODE.test(v.mfa_code.trim())
      ? "Enter the 6-digit code from your authenticator app." : null,
  }));

  const submit = async (values) => {
    const code = step.kind === "password" ? undefined : values.mfa_code.trim();
    try {
      const outcome = await session.login(values.username.trim(), values.password, code);
      if (outcome.kind !== "ok") {
        setStep(outcome);
        form.set("mfa_code", "");
      }
    } catch (error) {
      if (code && error.status === 401 && !Object.keys(error.fields).length) {
        error.fields = { mfa_code: error.message };
      }
      throw error;
    }
  };

  const back = () => {
    setStep({ kind: "password" });
    form.setValues({ ...form.values, password: "", mfa_code: "" });
    form.setErrors({});
    form.setError(null);
  };

  return html`
    <main id="main" class="login" tabindex="-1">
      <div class="login-card">
        <p class="brand brand-large" aria-hidden="true">v6flow</p>
        <h1>${step.kind === "password" ? "Log in" : "Two-factor authentication"}</h1>
        ${notice && step.kind === "password" && html`<${Notice} kind="warning">${notice}<//>`}
        ${step.kind === "mfa-setup" && html`
          <div class="enrol">
            <p>${step.message || "Set up two-factor authentication to continue."}</p>
            <ol>
              <li>Scan this QR code with an authenticator app (or type the key below).</li>
              <li>Enter the 6-digit code the app shows.</li>
            </ol>
            ${step.qrUri && html`<${QrCode} text=${step.qrUri} label="QR code for your authenticator app" />`}
            ${step.secret && html`<p>Key: <code class="secret">${step.secret}</code></p>`}
          </div>`}
        ${step.kind === "mfa-code" && html`
          <p>${step.message || "Enter the code from your authenticator app."}</p>`}
        <${Form} form=${form} onSubmit=${submit} label="Log in"
                 submitLabel=${step.kind === "password" ? "Log in" : "Verify"}>
          ${step.kind === "password" ? html`
            <${TextField} form=${form} name="username" label="Username" required
                          autocomplete="username" autofocus />
            <${TextField} form=${form} name="password" label="Password" type="password" required
                          autocomplete="current-password" />` : html`
            <${TextField} form=${form} name="mfa_code" label="Authentication code" required
                          autocomplete="one-time-code" inputMode="numeric" autofocus />`}
        <//>
        ${step.kind !== "password" && html`
          <button type="button" class="button-link" onClick=${back}>Use another account</button>`}
      </div>
    </main>`;
}
