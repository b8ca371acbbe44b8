// Forms: one state hook and labelled controls whose errors (client checks and the server's
// 400 `errors[].field`) appear on the field that caused them.
import { html, useEffect, useId, useRef, useState } from "../lib.js";
import { ErrorMessage } from "./ui.js";

/** The error of `name` in `errors`, including nested server paths ("organizations.0.id"). */
export function errorFor(errors, name) {
  if (!errors) return null;
  const found = Object.entries(errors)
    .filter(([key]) => key === name || key.startsWith(`${name}.`))
    .map(([key, msg]) => (key === name ? msg : `${key.slice(name.length + 1)}: ${msg}`));
  return found.length ? found.join("; ") : null;
}

/**
 * Form state: values, set(name, value), errors by field, the form-level error, busy, and
 * submit(action): runs `validate(values)` then `action(values)`; an ApiError's field errors
 * land on the fields and the first invalid field gets the focus.
 */
export function useForm(initial, validate = () => ({})) {
  const [values, setValues] = useState(initial);
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const formRef = useRef(null);
  const [focusPending, setFocusPending] = useState(0);

  useEffect(() => {
    if (!focusPending || !formRef.current) return;
    let target = formRef.current.querySelector('[aria-invalid="true"]')
      ?? formRef.current.querySelector(".message-error");
    if (target?.tagName === "FIELDSET") target = target.querySelector("input") ?? target;
    if (target) {
      if (!target.hasAttribute("tabindex") && target.tagName === "P") target.tabIndex = -1;
      target.focus();
    }
  }, [focusPending]);

  function set(name, value) {
    setValues((current) => ({ ...current, [name]: value }));
    setErrors((current) => {
      if (!errorFor(current, name)) return current;
      return Object.fromEntries(Object.entries(current)
        .filter(([key]) => key !== name && !key.startsWith(`${name}.`)));
    });
  }

  async function submit(action) {
    const found = validate(values) ?? {};
    const invalid = Object.fromEntries(Object.entries(found).filter(([, msg]) => msg));
    if (Object.keys(invalid).length) {
      setErrors(invalid);
      setError("Please correct the fields marked below.");
      setFocusPending((n) => n + 1);
      return undefined;
    }
    setBusy(true);
    setError(null);
    setErrors({});
    try {
      return await action(values);
    } catch (err) {
      setErrors(err?.fields ?? {});
      setError(err);
      setFocusPending((n) => n + 1);
      return undefined;
    } finally {
      setBusy(false);
    }
  }

  return { values, set, setValues, errors, setErrors, error, setError, busy, submit, formRef };
}

/** A <form> bound to `form`: no native validation bubbles, the form error above the fields. */
export function Form({ form, onSubmit, children, label, submitLabel = "Save", onCancel,
                       className = "" }) {
  const handle = (event) => {
    event.preventDefault();
    form.submit(onSubmit);
  };
  return html`
    <form ref=${form.formRef} class=${`form ${className}`} onSubmit=${handle} noValidate
          aria-label=${label}>
      <${ErrorMessage} error=${form.error} />
      ${children}
      <div class="form-actions">
        <button type="submit" disabled=${form.busy}>${form.busy ? "Working…" : submitLabel}</button>
        ${onCancel && html`<button type="button" class="button-secondary" onClick=${onCancel}>Cancel</button>`}
      </div>
    </form>`;
}

function useFieldIds(form, name, hint) {
  const id = useId();
  const error = errorFor(form.errors, name);
  const described = [hint && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(" ");
  return { id, error, described: described || undefined };
}

function FieldFrame({ id, label, required, hint, error, children, className = "" }) {
  return html`
    <div class=${`field ${error ? "field-invalid" : ""} ${className}`}>
      <label for=${id}>${label}${required && html`<span class="required" aria-hidden="true"> *</span>`}</label>
      ${hint && html`<p class="hint" id=${`${id}-hint`}>${hint}</p>`}
      ${children}
      ${error && html`<p class="field-error" id=${`${id}-error`}>${error}</p>`}
    </div>`;
}

export function TextField({ form, name, label, type = "text", required = false, hint,
                            autocomplete = "off", inputMode, placeholder, autofocus }) {
  const { id, error, described } = useFieldIds(form, name, hint);
  return html`
    <${FieldFrame} id=${id} label=${label} required=${required} hint=${hint} error=${error}>
      <input id=${id} name=${name} type=${type} value=${form.values[name] ?? ""}
             onInput=${(e) => form.set(name, e.currentTarget.value)}
             aria-invalid=${error ? "true" : "false"} aria-describedby=${described}
             aria-required=${required ? "true" : undefined} autocomplete=${autocomplete}
             inputmode=${inputMode} placeholder=${placeholder} autofocus=${autofocus} />
    <//>`;
}

export function TextArea({ form, name, label, required = false, hint, rows = 4, code = false }) {
  const { id, error, described } = useFieldIds(form, name, hint);
  return html`
    <${FieldFrame} id=${id} label=${label} required=${required} hint=${hint} error=${error}>
      <textarea id=${id} name=${name} rows=${rows} class=${code ? "code-input" : ""}
                spellcheck=${code ? "false" : undefined} value=${form.values[name] ?? ""}
                onInput=${(e) => form.set(name, e.currentTarget.value)}
                aria-invalid=${error ? "true" : "false"} aria-describedby=${described}
                aria-required=${required ? "true" : undefined}></textarea>
    <//>`;
}

/** A select; options: [{value, label}] (values compared as strings). */
export function SelectField({ form, name, label, options, required = false, hint,
                              placeholder = "Choose…" }) {
  const { id, error, described } = useFieldIds(form, name, hint);
  const value = form.values[name];
  return html`
    <${FieldFrame} id=${id} label=${label} required=${required} hint=${hint} error=${error}>
      <select id=${id} name=${name} value=${value == null ? "" : String(value)}
              onChange=${(e) => form.set(name, e.currentTarget.value)}
              aria-invalid=${error ? "true" : "false"} aria-describedby=${described}
              aria-required=${required ? "true" : undefined}>
        <option value="">${placeholder}</option>
        ${options.map((o) => html`<option value=${String(o.value)}>${o.label}</option>`)}
      </select>
    <//>`;
}

export function CheckboxField({ form, name, label, hint }) {
  const { id, error, described } = useFieldIds(form, name, hint);
  return html`
    <div class=${`field field-check ${error ? "field-invalid" : ""}`}>
      <input id=${id} type="checkbox" name=${name} checked=${Boolean(form.values[name])}
             onChange=${(e) => form.set(name, e.currentTarget.checked)}
             aria-invalid=${error ? "true" : "false"} aria-describedby=${described} />
      <label for=${id}>${label}</label>
      ${hint && html`<p class="hint" id=${`${id}-hint`}>${hint}</p>`}
      ${error && html`<p class="field-error" id=${`${id}-error`}>${error}</p>`}
    </div>`;
}

/**
 * Several checkboxes in a fieldset; the value is a list of option values (numbers stay
 * numbers). options: [{value, label, group?}]; grouped options get a sub-heading per group.
 */
export function CheckboxGroup({ form, name, legend, options, hint, required = false,
                                empty = "Nothing to choose from." }) {
  const id = useId();
  const error = errorFor(form.errors, name);
  const chosen = new Set(form.values[name] ?? []);
  const toggle = (value, on) => {
    const next = new Set(chosen);
    if (on) next.add(value); else next.delete(value);
    const offered = new Set(options.map((o) => o.value));
    // values that are not offered here (e.g. rules the editor does not hold) are kept
    const kept = (form.values[name] ?? []).filter((v) => !offered.has(v));
    form.set(name, [...kept, ...options.map((o) => o.value).filter((v) => next.has(v))]);
  };
  const groups = [...new Set(options.map((o) => o.group ?? ""))];
  const described = [hint && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(" ");
  return html`
    <fieldset class=${`field checkbox-group ${error ? "field-invalid" : ""}`}
              aria-describedby=${described || undefined} aria-invalid=${error ? "true" : "false"}>
      <legend>${legend}${required && html`<span class="required" aria-hidden="true"> *</span>`}</legend>
      ${hint && html`<p class="hint" id=${`${id}-hint`}>${hint}</p>`}
      ${options.length === 0 && html`<p class="empty">${empty}</p>`}
      ${groups.map((group) => html`
        <div class="checkbox-set" key=${group}>
          ${group && html`<p class="checkbox-set-title">${group}</p>`}
          ${options.filter((o) => (o.group ?? "") === group).map((o, i) => html`
            <label class="check" key=${String(o.value)}>
              <input type="checkbox" checked=${chosen.has(o.value)}
                     onChange=${(e) => toggle(o.value, e.currentTarget.checked)} />
              <span>${o.label}</span>
            </label>`)}
        </div>`)}
      ${error && html`<p class="field-error" id=${`${id}-error`}>${error}</p>`}
    </fieldset>`;
}
