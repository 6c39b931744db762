"""Kling's own API (``/v1/videos/text2video``, ``/v1/videos/image2video``), JWT auth included.

Bodies become a neutral :class:`~takeone.core.task.VideoTask` (``body.py``); answers are
Kling's ``{code, message, request_id, data}`` envelope around its task object (``task.py``),
with Kling's error codes (``codes.py``); ``auth.py`` verifies the HS256 tokens made with a
key's access key and secret key; ``webhook.py`` renders the task object for ``callback_url``.
"""

DIALECT = "kling"
TEXT2VIDEO, IMAGE2VIDEO = "text2video", "image2video"
ROUTES = (TEXT2VIDEO, IMAGE2VIDEO)  # the scopes a key needs, one per kind of task
