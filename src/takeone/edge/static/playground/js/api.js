// The HTTP calls the page makes: the same queued API any Segmind client uses, on this origin.

const KEY_STORAGE = "takeone.apiKey";

/** A non-2xx answer: `status`, the server's `{"error": ...}` text, and the parsed body. */
export class ApiError extends Error {
  constructor(status, message, body, retryAfter) {
    super(message);
    this.status = status;
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

export const keyStore = {
  get: () => sessionStorage.getItem(KEY_STORAGE) || "",
  set: (key) => sessionStorage.setItem(KEY_STORAGE, key),
  clear: () => sessionStorage.removeItem(KEY_STORAGE),
};

async function call(method, path, { body, okStatuses = [] } = {}) {
  const headers = { "x-api-key": keyStore.get() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (response.ok || okStatuses.includes(response.status)) return data;
  const message = typeof data.error === "string" ? data.error : response.statusText;
  throw new ApiError(response.status, message, data, response.headers.get("Retry-After"));
}

// A FAILED request answers its GETs with 422 and a normal body (Segmind's convention).
const FAILED = [422];

export const api = {
  openapi: () => fetch("/openapi.json").then((r) => r.json()),
  // Each dialect's name on the page and its data for "copy as code" (model ids, field names).
  dialects: () => fetch("/playground/dialects.json").then((r) => (r.ok ? r.json() : {})),
  credits: () => call("GET", "/v1/get-user-credits"),
  loras: () => call("GET", "/v1/loras"),
  submit: (slug, body) => call("POST", `/v2/${encodeURIComponent(slug)}`, { body }),
  status: (id) => call("GET", `/v2/requests/${encodeURIComponent(id)}/status`, { okStatuses: FAILED }),
  result: (id) => call("GET", `/v2/requests/${encodeURIComponent(id)}`, { okStatuses: FAILED }),
  cancel: (id) => call("POST", `/v2/requests/${encodeURIComponent(id)}/cancel`, { okStatuses: FAILED }),
  history: (limit) => call("GET", `/v2/requests?limit=${limit}`),
  /** An image a request was made with (a signed link from the history), as a data: URI. */
  async inputImage(url) {
    const { pathname, search } = new URL(url, location.href);  // this origin, even behind a public URL
    const response = await fetch(pathname + search);
    if (!response.ok) throw new ApiError(response.status, "the image is no longer there", {});
    return blobToDataUri(await response.blob());
  },
};

export function blobToDataUri(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

/** The field names a 400 names: `"cfg_scale: ... (got 2)"`, `"a, b: unknown field(s) ..."`
 * or `"loras[0].name: ..."` (the field is `loras`). */
export function fieldsOfError(message) {
  const name = "[A-Za-z_][\\w.\\[\\]]*";
  const match = new RegExp(`^(${name}(?:, ${name})*): `).exec(message || "");
  return match ? match[1].split(", ").map((field) => field.split(/[.[]/)[0]) : [];
}
