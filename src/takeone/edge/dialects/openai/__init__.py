"""OpenAI's Videos API (``/v1/videos``), as the ``openai`` Python SDK calls it.

Bodies become a neutral :class:`~takeone.core.task.VideoTask` (``body.py``), answers are the
SDK's Video object (``video.py``) and errors its ``{"error": {...}}`` shape (``errors.py``);
``webhook.py`` renders the ``video.completed`` / ``video.failed`` events.
"""

DIALECT = "openai"
ROUTE = "videos"  # the scope a key needs to create videos
