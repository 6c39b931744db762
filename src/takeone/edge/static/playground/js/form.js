// Forms generated from the server's own OpenAPI document: one per `POST /v2/{slug}` operation,
// with the body schema's defaults, allowed values, ranges and descriptions.

import { blobToDataUri } from "./api.js";

const LONG_TEXT = 200;  // strings allowed to be longer than this get a textarea

/** Create an element: `el("p", {class: "help"}, "text", child)`. Text is never parsed as HTML. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === undefined || value === null) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** The generation endpoints the document describes: `[{slug, summary, schema}]`. */
export function endpointsFrom(doc) {
  const found = [];
  for (const [path, item] of Object.entries(doc.paths || {})) {
    const match = /^\/v2\/([^/{}]+)$/.exec(path);
    const ref = item.post?.requestBody?.content?.["application/json"]?.schema?.$ref;
    if (!match || !ref) continue;
    const schema = resolve(doc, ref);
    if (!schema?.properties) continue;
    const summary = (item.post.summary || match[1]).replace(/ \(queued\)$/, "");
    found.push({ slug: match[1], summary, schema: withItems(doc, schema) });
  }
  return found;
}

/** The schema with each array property's `items: {$ref}` resolved (for the JSON fields' help). */
function withItems(doc, schema) {
  const properties = {};
  for (const [name, prop] of Object.entries(schema.properties)) {
    const fix = (node) => (node.items?.$ref ? { ...node, items: resolve(doc, node.items.$ref) } : node);
    properties[name] = prop.anyOf ? { ...prop, anyOf: prop.anyOf.map(fix) } : fix(prop);
  }
  return { ...schema, properties };
}

function resolve(doc, ref) {
  return ref.replace(/^#\//, "").split("/").reduce((node, part) => node?.[part], doc);
}

/** One property, flattened: `anyOf: [X, null]` becomes X, nullable. */
function describe(name, prop, required) {
  const { anyOf, ...outer } = prop;
  const branches = anyOf || [];
  const inner = branches.find((b) => b.type !== "null") || {};
  const spec = { ...inner, ...outer, description: outer.description || inner.description };
  const choices = spec.enum || (spec.const !== undefined ? [spec.const] : null);
  const kind = name === "loras" ? "loras"  // takeone's extension: picked from GET /v1/loras
    : choices ? "enum"
    : spec.format === "uri" ? "image"
    : spec.type === "boolean" ? "boolean"
    : spec.type === "number" ? "number"
    : spec.type === "integer" ? "integer"
    : spec.type === "array" || spec.type === "object" ? "json"
    : (spec.maxLength || 0) > LONG_TEXT ? "text" : "string";
  const nullable = branches.some((b) => b.type === "null");
  return { name, spec, choices, kind, required, nullable, title: spec.title || name };
}

/** What a field starts with: its default, else the schema's first example (2.6's prompt). */
function initialValue(field) {
  const { spec } = field;
  return spec.default ?? (Array.isArray(spec.examples) ? spec.examples[0] : undefined);
}

function helpText(field) {
  const { spec, kind } = field;
  const parts = [spec.description || ""];
  if (kind === "number" || kind === "integer") {
    const range = `${spec.minimum} to ${spec.maximum}`;
    if (spec.minimum !== undefined && spec.maximum !== undefined && !parts[0].includes(range)) {
      parts.push(`From ${range}.`);
    }
  }
  if ((kind === "text" || kind === "string") && spec.maxLength) {
    parts.push(`Up to ${spec.maxLength.toLocaleString("en")} characters.`);
  }
  if (kind === "image") parts.push("An http(s) URL, or a file from this device.");
  if (kind === "json") parts.push("JSON, for example " + jsonExample(spec) + "; leave empty for none.");
  if (spec.default !== undefined && spec.default !== null && kind !== "text") {
    parts.push(`Default: ${JSON.stringify(spec.default)}.`);
  }
  return parts.filter(Boolean).join(" ");
}

// A one-line example of an array-of-objects field from its item schema's required fields and defaults.
function jsonExample(spec) {
  const item = spec.items || {};
  const entry = {};
  for (const [name, prop] of Object.entries(item.properties || {})) {
    entry[name] = prop.default !== undefined ? prop.default : `${name}…`;
  }
  return JSON.stringify(spec.type === "array" ? [entry] : entry);
}

// The seconds a list of shots adds up to, or null (not a list of shots, or a duration that is
// not a whole number: the server then says what is wrong).
function shotsTotal(field, value) {
  const shot = field.spec.items?.properties?.duration;
  if (field.kind !== "json" || !shot || !Array.isArray(value) || !value.length) return null;
  let total = 0;
  for (const item of value) {
    const seconds = Number(item?.duration ?? shot.default);
    if (!Number.isInteger(seconds)) return null;
    total += seconds;
  }
  return total;
}

// The label is the title alone; the API's field name and "(required)" sit beside it (the
// control's `required` attribute tells assistive technology).
function nameParts(field) {
  return [field.title, " ", el("code", { "aria-hidden": "true" }, field.name),
    field.required ? el("span", { class: "required", "aria-hidden": "true" }, " (required)") : null];
}

function labelFor(field, forId) {
  const [title, ...rest] = nameParts(field);
  return el("div", { class: "label-row" }, el("label", { for: forId }, title), ...rest);
}

/** A form for one body schema; `loraChoices` is the key's GET /v1/loras answer (null: none yet). */
export class SchemaForm {
  constructor(container, schema, loraChoices = null) {
    this.container = container;
    const required = new Set(schema.required || []);
    this.fields = Object.entries(schema.properties)
      .map(([name, prop]) => describe(name, prop, required.has(name)));
    this.images = {};
    this.loras = null;
    container.replaceChildren(...this.fields.map((f) => this.render(f)));
    this.setLoraChoices(loraChoices);
  }

  render(field) {
    const id = `f-${field.name}`;
    const describedBy = `${id}-help ${id}-error`;
    const help = el("p", { class: "help", id: `${id}-help` }, helpText(field));
    const error = el("p", { class: "error", id: `${id}-error`, hidden: true });
    if (field.kind === "image") return this.renderImage(field, id, describedBy, help, error);
    if (field.kind === "loras") return this.renderLoras(field, id, help, error);
    let control;
    if (field.kind === "enum") {
      control = el("select", { id, name: field.name, "aria-describedby": describedBy },
        ...field.choices.map((c, i) => el("option", { value: String(i) }, String(c))));
    } else if (field.kind === "boolean") {
      control = el("input", { id, name: field.name, type: "checkbox", "aria-describedby": describedBy });
      field.control = control;
      this.write(field, initialValue(field));
      return el("div", { class: "field check", "data-field": field.name },
        el("div", { class: "row" }, control, labelFor(field, id)), help, error);
    } else if (field.kind === "text" || field.kind === "json") {
      control = el("textarea", { id, name: field.name, rows: 4, "aria-describedby": describedBy,
        required: field.required, spellcheck: field.kind === "json" ? "false" : undefined });
    } else {
      const numeric = field.kind === "number" || field.kind === "integer";
      control = el("input", {
        id, name: field.name, "aria-describedby": describedBy, required: field.required,
        type: numeric ? "number" : "text",
        step: field.kind === "integer" ? "1" : numeric ? "any" : undefined,
        inputmode: field.kind === "integer" ? "numeric" : numeric ? "decimal" : undefined,
        min: field.spec.minimum, max: field.spec.maximum,
        placeholder: field.nullable ? "optional" : undefined,
      });
    }
    field.control = control;
    this.write(field, initialValue(field));
    return el("div", { class: "field", "data-field": field.name }, labelFor(field, id), control,
      help, error);
  }

  renderImage(field, id, describedBy, help, error) {
    const url = el("input", { id, name: field.name, type: "url", inputmode: "url",
      placeholder: "https://…", "aria-describedby": describedBy, required: field.required });
    const file = el("input", { id: `${id}-file`, type: "file", accept: "image/*",
      "aria-describedby": describedBy });
    const note = el("p", { class: "upload-note", id: `${id}-note`, hidden: true });
    const clear = el("button", { type: "button", class: "secondary small", hidden: true,
      "aria-label": `Remove the ${field.title} image` }, "Remove");
    const preview = el("img", { class: "preview", alt: `Preview of ${field.title}`, hidden: true });
    const state = { kind: "none", value: "", filename: "", url, file, note, preview, clear };
    this.images[field.name] = state;
    field.control = url;
    url.addEventListener("change", () => this.useUrl(field.name, url.value.trim()));
    file.addEventListener("change", async () => {
      const chosen = file.files[0];
      if (chosen) this.useFile(field.name, await blobToDataUri(chosen), chosen.name, chosen.size);
    });
    clear.addEventListener("click", () => {
      this.clearImage(field.name);
      url.focus();  // the button hides itself: keep the keyboard user in place
    });
    preview.addEventListener("error", () => {
      preview.hidden = true;
      if (state.kind === "url") showNote(state, "No preview: this browser could not load the URL (the server fetches it itself).");
    });
    preview.addEventListener("load", () => { preview.hidden = false; });
    return el("fieldset", { class: "field image-field", "data-field": field.name },
      el("legend", {}, ...nameParts(field)),
      el("label", { for: id }, "Image URL"), url,
      el("label", { for: `${id}-file` }, "or upload a file"), file,
      note, el("div", { class: "row" }, preview, clear), help, error);
  }

  // The LoRA picker: one row per LoRA (a name from the key's list and a scale), sent as
  // `loras: [{"name": ..., "scale": ...}]`; no rows, no field.
  renderLoras(field, id, help, error) {
    const list = el("ol", { class: "lora-rows", id: `${id}-rows` });
    const add = el("button", { type: "button", class: "secondary small", id: `${id}-add`,
      "aria-describedby": `${id}-note ${id}-error` }, "Add a LoRA");
    const note = el("p", { class: "help", id: `${id}-note` });
    this.loras = { rows: [], list, add, note, choices: [], max: 0, range: [-2, 2], next: 0 };
    field.control = add;
    add.addEventListener("click", () => {
      this.addLora();
      this.loras.rows.at(-1)?.select.focus();
    });
    return el("fieldset", { class: "field lora-field", "data-field": field.name },
      el("legend", {}, ...nameParts(field)), list, add, note, help, error);
  }

  /** The LoRAs the key may use (GET /v1/loras), or null before a key is accepted. */
  setLoraChoices(answer) {
    const picker = this.loras;
    if (!picker) return;
    picker.choices = answer?.data || [];
    picker.max = answer ? answer.max_per_request : 0;
    picker.range = answer?.scale_range || picker.range;
    for (const row of picker.rows) fillLoraOptions(row.select, picker.choices, row.select.value);
    this.updateLoraState();
  }

  updateLoraState() {
    const picker = this.loras;
    const count = picker.choices.length;
    picker.add.disabled = !count || picker.rows.length >= picker.max;
    picker.note.textContent = picker.max === 0 ? "Use a key to list the LoRAs it may use."
      : !count ? "This key may use no LoRA on this server (an operator adds them with takeone loras add)."
      : `${count} ${count === 1 ? "LoRA" : "LoRAs"} available; up to ${picker.max} per request,`
        + ` scale ${picker.range[0]} to ${picker.range[1]}.`;
  }

  addLora(name, scale = 1) {
    const picker = this.loras;
    const n = picker.next++;
    const select = el("select", { id: `f-loras-${n}-name` });
    fillLoraOptions(select, picker.choices, name);
    const scaleInput = el("input", { id: `f-loras-${n}-scale`, type: "number", step: "0.05",
      inputmode: "decimal", min: picker.range[0], max: picker.range[1], value: String(scale) });
    const remove = el("button", { type: "button", class: "secondary small" }, "Remove");
    const item = el("li", { class: "lora-row row", "data-lora-row": String(n) },
      el("label", { for: select.id }, "LoRA"), select,
      el("label", { for: scaleInput.id }, "Scale"), scaleInput, remove);
    const row = { select, scale: scaleInput, item };
    remove.addEventListener("click", () => {
      picker.rows = picker.rows.filter((r) => r !== row);
      item.remove();
      this.updateLoraState();
      picker.add.focus();  // the row is gone: keep the keyboard user in the picker
      this.changed();
    });
    picker.rows.push(row);
    picker.list.append(item);
    this.updateLoraState();
    this.changed();
  }

  useUrl(name, value) {
    const state = this.images[name];
    Object.assign(state, { kind: value ? "url" : "none", value, filename: "" });
    state.file.value = "";
    hideNote(state);
    showPreview(state, value);
    this.changed();
  }

  useFile(name, dataUri, filename, size) {
    const state = this.images[name];
    Object.assign(state, { kind: "file", value: dataUri, filename });
    state.url.value = "";
    const kb = Math.max(1, Math.round((size ?? dataUri.length * 0.75) / 1024));
    showNote(state, `Using the uploaded file ${filename} (${kb} KB).`);
    showPreview(state, dataUri);
    this.changed();
  }

  /** Tell listeners (the code snippets) that an image changed: files are read asynchronously. */
  changed() {
    this.container.dispatchEvent(new Event("imagechange", { bubbles: true }));
  }

  clearImage(name) {
    const state = this.images[name];
    state.url.value = "";
    this.useUrl(name, "");
  }

  /** The JSON body: defaults filled in, empty optional fields left out. A list of shots
   * (items with their own `duration`) sets the top-level `duration` to their total, which
   * the API requires it to be when both are sent. */
  values() {
    const body = {};
    for (const field of this.fields) {
      const value = this.read(field);
      if (value !== undefined) body[field.name] = value;
    }
    for (const field of this.fields) {
      const total = shotsTotal(field, body[field.name]);
      if (total !== null && "duration" in body) body.duration = total;
    }
    return body;
  }

  read(field) {
    const { control, kind, spec } = field;
    if (kind === "loras") {
      const rows = this.loras.rows.map(({ select, scale }) => {
        const typed = scale.value.trim();
        const n = Number(typed);
        return { name: select.value, scale: typed === "" ? 1 : Number.isNaN(n) ? typed : n };
      });
      return rows.length ? rows : undefined;
    }
    if (kind === "image") {
      const state = this.images[field.name];
      const value = state.kind === "file" ? state.value : control.value.trim();
      return value || undefined;
    }
    if (kind === "enum") return field.choices[Number(control.value)];
    if (kind === "boolean") return control.checked;
    const raw = control.value;
    if (kind === "json") {
      if (raw.trim() === "") return undefined;
      try {
        return JSON.parse(raw);
      } catch {
        return raw;  // the server says what is wrong with it
      }
    }
    if (kind === "number" || kind === "integer") {
      const typed = control.validity.badInput ? "not a number" : raw.trim();
      if (typed === "") return undefined;
      const n = Number(typed);
      return Number.isNaN(n) ? typed : n;  // the server says what is wrong with it
    }
    if (raw === "") return typeof spec.default === "string" && spec.default ? "" : undefined;
    return raw;
  }

  write(field, value) {
    const { control, kind } = field;
    if (kind === "image") return;
    if (kind === "loras") {
      for (const row of this.loras.rows) row.item.remove();
      this.loras.rows = [];
      for (const use of Array.isArray(value) ? value : []) this.addLora(use?.name, use?.scale ?? 1);
      this.updateLoraState();
      return;
    }
    if (kind === "enum") {
      const index = field.choices.findIndex((c) => String(c) === String(value));
      control.value = String(Math.max(index, 0));
    } else if (kind === "boolean") {
      control.checked = Boolean(value);
    } else if (kind === "json") {
      control.value = value === undefined || value === null ? "" : JSON.stringify(value);
    } else {
      control.value = value === undefined || value === null ? "" : String(value);
    }
  }

  /** Fill the form from a request's parameters; fields it lacks get their defaults. */
  setValues(params) {
    for (const field of this.fields) {
      if (field.kind === "image") this.clearImage(field.name);
      else this.write(field, field.name in params ? params[field.name] : field.spec.default);
    }
  }

  /** Uploaded images by field, `{image: "photo.png"}`, for the code snippets. */
  uploads() {
    const out = {};
    for (const [name, state] of Object.entries(this.images)) {
      if (state.kind === "file") out[name] = state.filename;
    }
    return out;
  }

  clearErrors() {
    for (const node of this.container.querySelectorAll(".error")) {
      node.hidden = true;
      node.textContent = "";
    }
    for (const node of this.container.querySelectorAll("[aria-invalid]")) {
      node.removeAttribute("aria-invalid");
    }
  }

  /** Show `message` next to each named field; focus the first; false if none is here. */
  showError(names, message) {
    const shown = this.fields.filter((f) => names.includes(f.name));
    for (const field of shown) {
      const node = this.container.querySelector(`#f-${field.name}-error`);
      node.textContent = message;
      node.hidden = false;
      field.control.setAttribute("aria-invalid", "true");
    }
    shown[0]?.control.focus();
    return shown.length > 0;
  }
}

// The key's LoRAs as options, labelled with their surcharge; a name it lacks (a replayed
// request's) stays selectable, and the server says what is wrong with it.
function fillLoraOptions(select, choices, selected) {
  const names = choices.map((c) => c.name);
  const options = choices.map((c) => el("option", { value: c.name },
    c.surcharge ? `${c.name} (+${c.surcharge} credits)` : c.name));
  if (selected && !names.includes(selected)) options.push(el("option", { value: selected }, selected));
  select.replaceChildren(...options);
  if (selected) select.value = selected;
}

function showPreview(state, src) {
  state.preview.hidden = true;
  state.clear.hidden = !src;
  if (/^(https?:|data:image\/|blob:)/i.test(src)) state.preview.src = src;
  else state.preview.removeAttribute("src");
}

function showNote(state, text) {
  state.note.textContent = text;
  state.note.hidden = false;
}

function hideNote(state) {
  state.note.textContent = "";
  state.note.hidden = true;
}
