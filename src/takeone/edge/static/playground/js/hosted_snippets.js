// "Copy as code" for the hosted-queue clients this server also speaks: the request in the
// Segmind form as a `replicate`, a `fal_client` and a `runpod` call, each with only the base
// URL and the key changed. Each names the model (or endpoint) that makes the same video; a
// form value a client has no field for is left out with a comment saying so.

/** `{replicate, fal, runpod}` source texts for the Segmind `slug` form's `body`. */
export function hostedSnippets(origin, slug, body, uploads, keyEnv) {
  const tier = TIER_OF_MODE[body.mode] || "standard";
  return {
    replicate: replicateSnippet(origin, slug, body, uploads, keyEnv, tier),
    fal: falSnippet(origin, slug, body, uploads, keyEnv, tier),
    runpod: runpodSnippet(origin, slug, body, uploads, keyEnv, tier),
  };
}

const TIER_OF_MODE = { std: "fast", pro: "standard", master: "quality" };
// The Segmind image fields, by role.
const FIRST = { "kling-2.1": "image", "kling-2.6": "image_url" };
const LAST = { "kling-2.1": "image_tail" };

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

function replicateSnippet(origin, slug, body, uploads, keyEnv, tier) {
  let model = "kwaivgi/kling-v2.6";
  const names = { prompt: "prompt", negative_prompt: "negative_prompt", duration: "duration",
    aspect_ratio: "aspect_ratio", cfg_scale: "cfg_scale", seed: "seed",
    [FIRST[slug]]: "start_image" };
  const extra = [];
  if (slug === "kling-2.1") {
    names[LAST[slug]] = "end_image";
    model = tier === "quality" ? "kwaivgi/kling-v2.1-master" : "kwaivgi/kling-v2.1";
    if (tier !== "quality") extra.push(["mode", py(tier === "fast" ? "standard" : "pro")]);
  } else {
    names.generate_audio = "generate_audio";
    extra.push(["mode", py("pro")]);
  }
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

function falSnippet(origin, slug, body, uploads, keyEnv, tier) {
  const hasImage = FIRST[slug] in body;
  const kind = hasImage ? "image-to-video" : "text-to-video";
  const level = slug === "kling-2.6" ? "pro" : { fast: "standard", standard: "pro", quality: "master" }[tier];
  const model = `fal-ai/kling-video/${slug === "kling-2.6" ? "v2.6" : "v2.1"}/${level}/${kind}`;
  const names = { prompt: "prompt", negative_prompt: "negative_prompt", cfg_scale: "cfg_scale",
    aspect_ratio: "aspect_ratio", seed: null, [FIRST[slug]]: "image_url" };
  if (slug === "kling-2.1") names[LAST[slug]] = "tail_image_url";
  else names.generate_audio = "generate_audio";
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

${reach}${droppedNote(dropped, "fal's Kling")}result = fal_client.subscribe(${py(model)}, arguments=${pyDict(kept, 0)}, with_logs=True)
print(result["video"]["url"], result["seed"])
`;
}

function runpodSnippet(origin, slug, body, uploads, keyEnv, tier) {
  const names = { prompt: "prompt", negative_prompt: "negative_prompt", duration: "duration",
    aspect_ratio: "aspect_ratio", cfg_scale: "guidance", seed: "seed", generate_audio: "generate_audio",
    [FIRST[slug]]: "image" };
  if (slug === "kling-2.1") names[LAST[slug]] = "last_image";
  const image = (field) => (field in uploads ? `image_file(${py(uploads[field])})` : null);
  const { kept } = rename(body, names, image);
  if (slug === "kling-2.1") kept.push(["generate_audio", "False"]);  // Kling 2.1 makes no sound
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
