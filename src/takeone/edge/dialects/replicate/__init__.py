"""Replicate's predictions API (``/v1/predictions``), as the ``replicate`` Python client calls it.

Inputs become a neutral :class:`~takeone.core.task.VideoTask` (``body.py``); answers are
Replicate's prediction object (``prediction.py``) and errors its problem-details shape
(``errors.py``); ``webhook.py`` renders the ``start``, ``logs``, ``output`` and ``completed``
events that ``webhook_events_filter`` chooses.
"""

DIALECT = "replicate"
ROUTE = "predictions"  # the scope a key needs to create predictions
