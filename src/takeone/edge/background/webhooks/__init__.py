"""Webhooks for every dialect: Standard Webhooks signatures, the retry schedule, the guarded
POST and the sender that drains the outbox (see :mod:`takeone.core.webhooks`)."""
