"""RunPod's serverless endpoint API (``/v2/{endpoint_id}/...``), as the ``runpod`` SDK's
``Endpoint`` calls it, under ``/runpod``.

Inputs become a neutral :class:`~takeone.core.task.VideoTask` (``body.py``); answers are
RunPod's job objects (``job.py``) and errors its ``{"error": ...}`` shape (``errors.py``);
``webhook.py`` renders what ``webhook`` receives when a job ends.
"""

DIALECT = "runpod"
ROUTE = "runpod"  # the scope a key needs to run jobs
PREFIX = "/runpod/v2"  # runpod.endpoint_url_base = "<host>/runpod/v2"
