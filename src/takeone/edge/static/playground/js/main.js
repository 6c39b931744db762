// The playground page: key, form, one job at a time on screen, history.

import { api, ApiError, fieldsOfError, keyStore } from "./api.js";
import { SchemaForm, el, endpointsFrom } from "./form.js";
import { snippets } from "./snippets.js";

const POLL_MS = 500;
const HISTORY_LIMIT = 20;
const SNIPPET_TITLES = { requests: "Python (requests)", segmind: "Python (segmind SDK)", curl: "curl",
  replicate: "Python (replicate)", fal: "Python (fal_client)", runpod: "Python (runpod)" };

const $ = (id) => document.getElementById(id);
const state = { endpoints: [], form: null, job: null, dialects: {}, loras: null };

init().catch((err) => showFormError(`Could not load the API schema: ${err.message}`));

async function init() {
  setUpKey();
  $("gen-form").addEventListener("submit", submit);
  $("gen-form").addEventListener("input", refreshCode);
  $("gen-form").addEventListener("change", refreshCode);
  $("gen-form").addEventListener("imagechange", refreshCode);
  $("endpoint").addEventListener("change", () => buildForm($("endpoint").value));
  $("reset-form").addEventListener("click", () => buildForm($("endpoint").value));
  $("show-code").addEventListener("click", toggleCode);
  $("cancel").addEventListener("click", cancelJob);
  $("history-refresh").addEventListener("click", loadHistory);
  const [schema, dialects] = await Promise.all([api.openapi(), api.dialects().catch(() => ({}))]);
  state.dialects = dialects;
  state.endpoints = endpointsFrom(schema);
  $("endpoint").replaceChildren(...state.endpoints.map((e) =>
    el("option", { value: e.slug }, e.summary)));
  if (state.endpoints.length) buildForm(state.endpoints[0].slug);
  if (keyStore.get()) await checkKey();
}

// ---- key

function setUpKey() {
  $("api-key").value = keyStore.get();
  $("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = $("api-key").value.trim();
    if (!key) {
      showKeyError("Enter a key first.");
      return;
    }
    keyStore.set(key);
    await checkKey();
  });
  $("key-forget").addEventListener("click", () => {
    keyStore.clear();
    $("api-key").value = "";
    $("key-state").textContent = "Key forgotten.";
    $("history").replaceChildren();
    $("history-state").textContent = "Enter a key to see its requests.";
    setLoras(null);
  });
}

async function checkKey() {
  hideKeyError();
  try {
    const credits = await api.credits();
    $("key-state").textContent = `Key accepted: ${formatNumber(credits.credits)} credits left.`;
    setLoras(await api.loras().catch(() => null));
    await loadHistory();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) keyStore.clear();  // keep it across outages
    $("key-state").textContent = "";
    showKeyError(err instanceof ApiError ? err.message : `Could not reach the server: ${err.message}`);
  }
}

// The LoRAs the key may use, for the form's LoRA picker (null: no key accepted yet).
function setLoras(answer) {
  state.loras = answer;
  state.form?.setLoraChoices(answer);
}

function showKeyError(message) {
  $("api-key-error").textContent = message;
  $("api-key-error").hidden = false;
  $("api-key").setAttribute("aria-invalid", "true");
  $("api-key").focus();
}

function hideKeyError() {
  $("api-key-error").hidden = true;
  $("api-key").removeAttribute("aria-invalid");
}

// ---- form

function buildForm(slug) {
  const endpoint = state.endpoints.find((e) => e.slug === slug);
  $("endpoint").value = slug;
  $("endpoint-help").textContent = `Sent to POST /v2/${slug}, the queued API.`;
  state.form = new SchemaForm($("fields"), endpoint.schema, state.loras);
  hideFormError();
  refreshCode();
}

async function submit(event) {
  event.preventDefault();
  state.form.clearErrors();
  hideFormError();
  if (!keyStore.get()) {
    showKeyError("Enter your API key first.");
    return;
  }
  const slug = $("endpoint").value;
  $("submit").disabled = true;
  try {
    const answer = await api.submit(slug, state.form.values());
    startJob(answer.request_id, true);
  } catch (err) {
    showApiError(err);
  } finally {
    $("submit").disabled = false;
  }
}

function showApiError(err) {
  if (!(err instanceof ApiError)) {
    showFormError(`Could not reach the server: ${err.message}`);
  } else if (err.status === 400) {
    if (!state.form.showError(fieldsOfError(err.message), err.message)) showFormError(err.message);
  } else if (err.status === 401) {
    showKeyError(err.message);
  } else if (err.status === 429 && err.retryAfter) {
    showFormError(`${err.message} (retry in ${err.retryAfter} s)`);
  } else {
    showFormError(`${err.status}: ${err.message}`);
  }
}

function showFormError(message) {
  $("form-error").textContent = message;
  $("form-error").hidden = false;
}

function hideFormError() {
  $("form-error").hidden = true;
  $("form-error").textContent = "";
}

// ---- copy as code

function toggleCode() {
  const open = $("code-panel").hidden;
  $("code-panel").hidden = !open;
  $("show-code").setAttribute("aria-expanded", String(open));
  refreshCode();
}

function refreshCode() {
  if ($("code-panel").hidden || !state.form) return;
  const texts = snippets(location.origin, $("endpoint").value, state.form.values(),
    state.form.uploads(), state.dialects);
  $("snippets").replaceChildren(...Object.entries(texts).map(([kind, text]) => {
    const copy = el("button", { type: "button", class: "secondary small",
      "aria-label": `Copy the ${SNIPPET_TITLES[kind]} code` }, "Copy");
    const code = el("code", {}, text);
    copy.addEventListener("click", () => copyText(code, copy));
    return el("div", { class: "snippet", "data-kind": kind },
      el("div", { class: "snippet-head" }, el("h4", {}, SNIPPET_TITLES[kind]), copy),
      el("pre", { tabindex: "0", "aria-label": `${SNIPPET_TITLES[kind]} code` }, code));
  }));
}

async function copyText(code, button) {
  try {
    await navigator.clipboard.writeText(code.textContent);
  } catch {
    const range = document.createRange();  // no clipboard access: select it for Ctrl+C
    range.selectNodeContents(code);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    document.execCommand("copy");
  }
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = "Copy"; }, 2000);
}

// ---- the job on screen

function startJob(id, submittedHere) {
  if (state.job) clearTimeout(state.job.timer);
  state.job = { id, timer: null, startedAt: submittedHere ? performance.now() : null, last: "" };
  $("job-empty").hidden = true;
  $("job").hidden = false;
  $("job-id").textContent = id;
  $("result").hidden = true;
  $("video").removeAttribute("src");
  $("metrics").replaceChildren();
  $("job-error").hidden = true;
  $("cancel").disabled = false;
  $("cancel").hidden = false;
  setProgress(0);
  setStatus("QUEUED");
  poll(state.job);
}

async function poll(job) {
  if (state.job !== job) return;  // a newer job took the screen
  try {
    const status = await api.status(job.id);
    if (state.job !== job) return;
    if (await showStatus(job, status)) return;
  } catch (err) {
    if (err instanceof ApiError) {
      failJob(job, err.message);
      return;
    }  // a network hiccup: keep polling
  }
  job.timer = setTimeout(() => poll(job), POLL_MS);
}

/** Show one status answer; true once the job has ended. */
async function showStatus(job, status) {
  const metrics = status.metrics || {};
  setStatus(status.status, metrics.queue_position);
  if (status.status === "COMPLETED") {
    setProgress(100);
    await showResult(job);
    return true;
  }
  if (status.status === "FAILED") {
    failJob(job, status.error || "failed");
    return true;
  }
  setProgress(Math.floor((metrics.progress || 0) * 100));
  return false;
}

async function showResult(job) {
  const result = await api.result(job.id);
  if (state.job !== job) return;
  $("video").src = result.output;
  $("download").href = result.output;
  $("download").setAttribute("download", `takeone-${job.id}.mp4`);
  $("result").hidden = false;
  const wall = job.startedAt === null ? null : (performance.now() - job.startedAt) / 1000;
  showMetrics(result.metrics || {}, wall);
  endJob();
}

function failJob(job, error) {
  if (state.job !== job) return;
  setStatus("FAILED");
  const text = error === "cancelled" ? "Cancelled: nothing was charged." : error;
  $("job-error").textContent = text;
  $("job-error").hidden = false;
  endJob();
}

function endJob() {
  $("cancel").hidden = true;
  loadHistory();
  refreshCredits();
}

async function cancelJob() {
  const job = state.job;
  if (!job) return;
  $("cancel").disabled = true;
  try {
    const status = await api.cancel(job.id);
    clearTimeout(job.timer);
    if (!(await showStatus(job, status))) job.timer = setTimeout(() => poll(job), POLL_MS);
  } catch (err) {
    $("cancel").disabled = false;
    showFormError(`Could not cancel: ${err.message}`);
  }
}

function setStatus(status, queuePosition) {
  const badge = $("job-status");
  badge.textContent = status;
  badge.className = `badge status-${status.toLowerCase()}`;
  const queue = status === "QUEUED" && queuePosition ? `Position ${queuePosition} in the queue.`
    : status === "QUEUED" ? "Waiting in the queue."
    : status === "PROCESSING" ? "Generating…" : "";
  $("job-queue").textContent = queue;
  const said = `${status}${queue ? `: ${queue}` : ""}`;
  if (state.job && state.job.last !== said) {
    state.job.last = said;
    $("announce").textContent = said;  // announce changes of state, not every percent
  }
}

function setProgress(percent) {
  $("job-progress").value = percent;
  $("job-progress").textContent = `${percent}%`;
  $("job-progress-text").textContent = `${percent}%`;
}

function showMetrics(metrics, wall) {
  const seconds = (s) => (typeof s === "number" ? `${s.toFixed(2)} s` : null);
  const rows = [
    ["Seed", metrics.seed],
    ["Size", metrics.width && `${metrics.width} × ${metrics.height}`],
    ["Length", metrics.frames && `${metrics.frames} frames at ${metrics.fps} fps (${seconds(metrics.duration_s)})`],
    ["Audio", metrics.has_audio === undefined ? null : metrics.has_audio ? "yes" : "no"],
    ["LoRAs", Array.isArray(metrics.loras) ? metrics.loras.map((u) => `${u.name} at ${u.scale}`).join(", ") : null],
    ["Inference time", seconds(metrics.inference_time)],
    ["Denoising", seconds(metrics.generate_seconds)],
    ["Decode + encode", seconds(metrics.deliver_seconds)],
    ["Submit to video (this page)", seconds(wall)],
  ];
  $("metrics").replaceChildren(...rows.filter(([, v]) => v !== null && v !== undefined)
    .flatMap(([name, value]) => [el("dt", {}, name),
      el("dd", { "data-metric": name.toLowerCase() }, String(value))]));
}

async function refreshCredits() {
  try {
    const credits = await api.credits();
    $("key-state").textContent = `Key accepted: ${formatNumber(credits.credits)} credits left.`;
  } catch {
    // the key's state shows again at the next check
  }
}

// ---- history

async function loadHistory() {
  if (!keyStore.get()) return;
  try {
    const { requests } = await api.history(HISTORY_LIMIT);
    $("history").replaceChildren(...requests.map(historyItem));
    $("history-state").textContent = requests.length
      ? `${requests.length} ${requests.length === 1 ? "request" : "requests"} of this key, newest first, from the server.`
      : "This key has no requests yet.";
  } catch (err) {
    $("history-state").textContent = `Could not load the history: ${err.message}`;
  }
}

// The name on the page of an API a request can come in by (GET /v2/requests lists them all).
const dialectLabel = (name) => state.dialects[name]?.label || name;

function historyItem(item) {
  const short = item.request_id.slice(0, 8);
  const when = new Date(item.created_at * 1000);
  const dialect = item.dialect || "segmind";  // a server from before other dialects were listed
  const segmind = dialect === "segmind";
  const p = item.params;
  const facts = [p.duration && `${p.duration} s`, p.aspect_ratio, p.mode && `mode ${p.mode}`,
    item.seed !== null && `seed ${item.seed}`, Object.keys(item.images).length && "with image",
    Array.isArray(p.loras) && p.loras.length && `LoRAs ${p.loras.map((u) => u.name).join(", ")}`,
    !["COMPLETED", "FAILED"].includes(item.status) && `${Math.floor(item.progress * 100)}%`];
  const replay = el("button", { type: "button", class: "secondary small",
    "aria-label": `Replay request ${short} in the form` }, "Replay");
  const open = el("button", { type: "button", class: "secondary small",
    "aria-label": `Open request ${short}` }, "Open");
  replay.addEventListener("click", () => replayRequest(item));
  open.addEventListener("click", () => startJob(item.request_id, false));
  open.hidden = !segmind;  // the queued API reads its own requests only: the others show here
  const video = item.output
    ? el("a", { href: item.output, "aria-label": `Video of request ${short}` }, "Video") : null;
  return el("li", { class: "history-item", "data-request-id": item.request_id,
    "data-dialect": dialect },
    el("div", { class: "history-line" },
      el("span", { class: `badge status-${item.status.toLowerCase()}` }, item.status),
      el("span", { class: "dialect-tag" }, dialectLabel(dialect)),
      el("strong", {}, item.endpoint),
      el("time", { datetime: when.toISOString() }, when.toLocaleString()),
      el("span", { class: "mono" }, short)),
    item.route ? el("p", { class: "mono history-route" }, item.route) : null,
    p.prompt ? el("p", { class: "history-prompt" }, p.prompt) : null,
    el("p", { class: "help" }, facts.filter(Boolean).join(" · ")),
    item.error ? el("p", { class: "error" }, item.error) : null,
    el("div", { class: "actions" }, replay, open, video));
}

/** The Segmind form a request replays in: null, with the reason, when none makes the same video. */
function replayTarget(item) {
  const slug = item.replay_endpoint === undefined ? item.endpoint : item.replay_endpoint;
  if (slug && state.endpoints.some((e) => e.slug === slug)) return { slug };
  return { slug: null, reason: item.replay_error || `this page has no form for ${item.endpoint}` };
}

async function replayRequest(item) {
  const short = item.request_id.slice(0, 8);
  const { slug, reason } = replayTarget(item);
  if (!slug) {
    showFormError(`Request ${short} cannot be replayed in a Segmind form: ${reason}.`);
    $("request-heading").focus();
    return;
  }
  buildForm(slug);
  const params = { ...item.params };
  if (params.seed === undefined && item.seed !== null) params.seed = item.seed;
  state.form.setValues(params);
  try {
    for (const [name, url] of Object.entries(item.images)) {
      const dataUri = await api.inputImage(url);
      state.form.useFile(name, dataUri, `${name}-${short}.png`);
    }
  } catch (err) {
    showFormError(`Could not load the request's images: ${err.message}`);
  }
  refreshCode();
  const from = (item.dialect || "segmind") === "segmind" ? ""
    : ` (made through ${dialectLabel(item.dialect)}, as ${slug})`;
  $("announce").textContent = `Form filled from request ${short}${from}.`;
  $("request-heading").focus();
}

function formatNumber(value) {
  return Number(value).toLocaleString("en", { maximumFractionDigits: 4 });
}
