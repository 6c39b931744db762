"""The slug ``takeone --help`` shows in its first example: one that takes a prompt alone, so the
example runs as written. A bare constant, so printing the help imports no dialect code (a unit
test checks it against :data:`takeone.edge.dialects.segmind.registry.ENDPOINTS`)."""

PROMPT_ONLY_SLUG = "kling-2.6"
