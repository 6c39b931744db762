// "Copy as code" for the hosted-queue clients this server also speaks: the request in the
// Segmind form as a `replicate`, a `fal_client` and a `runpod` call, each with only the base
// URL and the key changed. Each names the model (or endpoint) that makes the same video; a
// form value a client has no field for is left out with a comment saying so.

/** `{replicate, fal, runpod}` source texts for the Segmind `slug` form's `body`. `dialects` is
 * the server's /playground/dialects.json: the Segmind forms' image fields by role and whether
 * they make sound, and each client's model ids; a client the server gives no data for is left out. */
export function hostedSnippets(origin, slug, body, uploads, keyEnv, dialects) {
  const tier = TIER_OF_MODE[body.mode] || "standard";
  const form = dialects?.segmind?.forms?.[slug] || { images: {}, audio: "generate_audio" in body };
  const texts = {};
  const replicate = dialects?.replicate?.snippet;
  if (replicate) texts.replicate = replicateSnippet(origin, slug, form, replicate, body, uploads, keyEnv, tier);
  const fal = dialects?.fal?.snippet;
  if (fal) texts.fal = falSnippet(origin, slug, form, fal, body, uploads, keyEnv, tier);
  texts.runpod = runpodSnippet(origin, form, body, uploads, keyEnv, tier);
  return texts;
}

const TIER_OF_MODE = { std: "fast", pro: "standard", master: "quality" };

/** The client's model for `slug` at `tier` (from its `models`, else its `default`). */
function modelOf(data, slug, tier) {
  return (data.models?.[slug] || data.default)[tier];
}

/** Segmind image field -> the client's name for it, by role. */
function imageNames(form, clientImages) {
  const names = {};
  for (const [role, field] of Object.entries(form.images)) {
    if (clientImages[role]) names[field] = clientImages[role];
  }
  return names;
}

function py(value) {
  if (value === true) return "True";
  if (value === false) return "False";
  if (value === null || value === undefined) return "None";
  return JSON.stringify(value);
}

/** `name: value` lines of a Python dict, values already Python source. */
function pyDict(entries, indent) {
  const pad = " ".repeat(indent);
  return `{\n${entries.map(([k, v]) => `${pad}    ${JSON.stringify(k)}: ${v},`).join("\n")}\n${pad}}`;
}

/** The form's values under each client's names: `names` maps a Segmind field to the client's
 * (null: the client has no such field), `image(field)` gives the source of an image value. */
function rename(body, names, image) {
  const kept = [];
  const dropped = [];
  for (const [field, value] of Object.entries(body)) {
    if (!(field in names)) continue;
    const name = names[field];
    if (name === null) dropped.push(field);
    else kept.push([name, image(field) ?? py(value)]);
  }
  return { kept, dropped };
}

function droppedNote(dropped, who) {
  return dropped.length ? `# ${who} takes no ${dropped.join(", ")}: left out.\n` : "";
}

function replicateSnippet(origin, slug, form, data, body, uploads, keyEnv, tier) {
  const target = modelOf(data, slug, tier);
  const model = target.model;
  const names = { prompt: "prompt", negative_prompt: "negative_prompt", duration: "duration",
    aspect_ratio: "aspect_ratio", cfg_scale: "cfg_scale", seed: "seed",
    ...imageNames(form, data.images) };
  if (target.audio) names.generate_audio = "generate_audio";
  const extra = Object.entries(target.input).map(([name, value]) => [name, py(value)]);
  const image = (field) => (field in uploads ? `open(${JSON.stringify(uploads[field])}, "rb")` : null);
  const { kept } = rename(body, names, image);
  const files = Object.keys(uploads).length ? ', file_encoding_strategy="base64"' : "";
  return `import os

import replicate

client = replicate.Client(api_token=os.environ["${keyEnv}"], base_url=${py(origin)})
output = client.run(${py(model)}, input=${pyDict([...kept, ...extra], 0)}${files})
print(output)  # the MP4: a link over plain HTTP, a FileOutput (output.read()) over HTTPS
`;
}

function falSnippet(origin, slug, form, data, body, uploads, keyEnv, tier) {
  const images = imageNames(form, data.images);
  const hasImage = Object.keys(images).some((field) => field in body);
  const target = modelOf(data, slug, tier);
  const model = target[hasImage ? "image-to-video" : "text-to-video"];
  const names = { prompt: "prompt", negative_prompt: "negative_prompt", cfg_scale: "cfg_scale",
    aspect_ratio: "aspect_ratio", ...images };
  for (const field of data.dropped || []) names[field] = null;
  if (target.audio) names.generate_audio = "generate_audio";
  const image = (field) => (field in uploads ? `fal_client.encode_file(${py(uploads[field])})` : null);
  const { kept, dropped } = rename(body, names, image);
  if ("duration" in body) kept.push(["duration", py(String(body.duration))]);  // fal: "5" / "10"
  const { host, protocol } = new URL(origin);
  const reach = protocol === "https:" ? "" : `# fal_client speaks HTTPS only; this server is plain HTTP, so point its queue URL here:
fal_client.client.QUEUE_URL_FORMAT = ${py(`${origin}/fal/`)}
`;
  return `import os

os.environ["FAL_QUEUE_RUN_HOST"] = ${py(`${host}/fal`)}  # before fal_client is imported
os.environ["FAL_KEY"] = os.environ["${keyEnv}"]
import fal_client

${reach}${droppedNote(dropped, data.who || "fal")}result = fal_client.subscribe(${py(model)}, arguments=${pyDict(kept, 0)}, with_logs=True)
print(result["video"]["url"], result["seed"])
`;
}

function runpodSnippet(origin, form, body, uploads, keyEnv, tier) {
  const names = { prompt: "prompt", negative_prompt: "negative_prompt", duration: "duration",
    aspect_ratio: "aspect_ratio", cfg_scale: "guidance", seed: "seed", generate_audio: "generate_audio",
    ...imageNames(form, { first_frame: "image", last_frame: "last_image" }) };
  const image = (field) => (field in uploads ? `image_file(${py(uploads[field])})` : null);
  const { kept } = rename(body, names, image);
  if (!form.audio) kept.push(["generate_audio", "False"]);  // the form makes no sound
  const helper = Object.keys(uploads).length ? `

def image_file(path):
    """An image file as base64 (the worker also takes URLs and data: URIs)."""
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()
` : "";
  return `${Object.keys(uploads).length ? "import base64\n" : ""}import os

import runpod

runpod.endpoint_url_base = ${py(`${origin}/runpod/v2`)}
${helper}
endpoint = runpod.Endpoint(${py(tier)}, api_key=os.environ["${keyEnv}"])
output = endpoint.run_sync(${pyDict(kept, 0)}, timeout=900)
print(output["video"], output["seed"])
`;
}
