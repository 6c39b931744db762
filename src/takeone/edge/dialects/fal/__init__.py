"""fal's queue API (``queue.fal.run``), as ``fal_client`` calls it, under ``/fal``.

Inputs become a neutral :class:`~takeone.core.task.VideoTask` (``body.py``), for the Kling and
LTX-2 model ids fal serves; answers are fal's queue and status objects (``queue.py``), errors
its ``{"detail": ...}`` shape (``errors.py``); keys come as ``Authorization: Key <key>``
(``auth.py``); ``webhook.py`` renders what ``fal_webhook`` receives.
"""

DIALECT = "fal"
ROUTE = "fal"  # the scope a key needs to submit requests
PREFIX = "/fal"  # the queue host's root: FAL_QUEUE_RUN_HOST=<host>/fal
