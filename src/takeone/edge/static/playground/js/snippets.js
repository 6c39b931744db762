// "Copy as code": the request in the form as a `requests` script, a `segmind` SDK call and a
// curl command, and as the hosted-queue clients' calls (hosted_snippets.js). Uploaded images are
// read from a file of the same name (raw base64 is accepted).

import { hostedSnippets } from "./hosted_snippets.js";

const KEY_ENV = "TAKEONE_KEY";

/** `{requests, segmind, curl, replicate, fal, runpod}` source texts for POST /v2/{slug} with `body`;
 * `dialects` is the server's /playground/dialects.json (the hosted clients' model ids). */
export function snippets(origin, slug, body, uploads, dialects) {
  return {
    requests: requestsSnippet(origin, slug, body, uploads),
    segmind: segmindSnippet(origin, slug, body, uploads),
    curl: curlSnippet(origin, slug, body, uploads),
    ...hostedSnippets(origin, slug, body, uploads, KEY_ENV, dialects),
  };
}

function pyValue(value) {
  if (value === true) return "True";
  if (value === false) return "False";
  if (value === null || value === undefined) return "None";
  return JSON.stringify(value);  // JSON strings and numbers are Python literals too
}

function pyFields(body, uploads) {
  return Object.entries(body).map(([name, value]) =>
    [name, name in uploads ? `image_file(${JSON.stringify(uploads[name])})` : pyValue(value)]);
}

const PY_IMAGE_HELPER = `

def image_file(path):
    """An image file as base64 (takeone also takes URLs and data: URIs)."""
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()
`;

function pyImports(uploads, extra) {
  const modules = [...(Object.keys(uploads).length ? ["base64"] : []), "os", ...extra];
  return modules.map((m) => `import ${m}`).join("\n");
}

function requestsSnippet(origin, slug, body, uploads) {
  const helper = Object.keys(uploads).length ? PY_IMAGE_HELPER : "";
  const data = pyFields(body, uploads).map(([k, v]) => `    ${JSON.stringify(k)}: ${v},`);
  return `${pyImports(uploads, ["time"])}

import requests

base = ${JSON.stringify(origin)}
headers = {"x-api-key": os.environ["${KEY_ENV}"]}
${helper}
data = {
${data.join("\n")}
}

job = requests.post(f"{base}/v2/${slug}", headers=headers, json=data)
job.raise_for_status()
job = job.json()
while True:
    status = requests.get(job["status_url"], headers=headers).json()
    if status["status"] in ("COMPLETED", "FAILED"):
        break
    time.sleep(1)

result = requests.get(job["response_url"], headers=headers).json()
if result["status"] == "COMPLETED":
    with open("takeone.mp4", "wb") as f:
        f.write(requests.get(result["output"]).content)
    print("saved takeone.mp4, seed", result["metrics"]["seed"])
else:
    print("failed:", result["error"])
`;
}

function segmindSnippet(origin, slug, body, uploads) {
  const helper = Object.keys(uploads).length ? PY_IMAGE_HELPER : "";
  const args = pyFields(body, uploads).map(([k, v]) => `    ${k}=${v},`);
  return `${pyImports(uploads, [])}

from segmind import SegmindClient
${helper}
client = SegmindClient(api_key=os.environ["${KEY_ENV}"], base_url=${JSON.stringify(`${origin}/v1`)},
                       timeout=900)
result = client.run(
    ${JSON.stringify(slug)},
${args.join("\n")}
)
print(result["output"])
`;
}

function curlSnippet(origin, slug, body, uploads) {
  const url = `${origin}/v2/${slug}`;
  const head = `curl -X POST "${url}" \\
  -H "x-api-key: $${KEY_ENV}" \\
  -H "Content-Type: application/json" \\`;
  const poll = `
# then poll the status_url it answers, and read the response_url once COMPLETED:
# curl -H "x-api-key: $${KEY_ENV}" "${origin}/v2/requests/REQUEST_ID/status"`;
  if (!Object.keys(uploads).length) {
    const json = JSON.stringify(body, null, 2).replaceAll("'", `'\\''`);
    return `${head}\n  -d '${json}'\n${poll}\n`;
  }
  // An unquoted here-document expands $(base64 ...); escape what else the shell would expand.
  const marker = (name) => `@@IMAGE_${name}@@`;
  const withMarkers = Object.fromEntries(Object.entries(body).map(([k, v]) =>
    [k, k in uploads ? marker(k) : v]));
  let json = JSON.stringify(withMarkers, null, 2).replace(/[\\$`]/g, (c) => `\\${c}`);
  for (const [name, file] of Object.entries(uploads)) {
    json = json.replace(marker(name), () => `$(base64 < ${shellQuote(file)} | tr -d '\\n')`);
  }
  return `${head}\n  --data @- <<EOF\n${json}\nEOF\n${poll}\n`;
}

function shellQuote(text) {
  return /^[\w./-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}
