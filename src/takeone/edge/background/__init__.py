"""What every API process runs beside its routes, on its own schedule: the retention
:mod:`.sweeper`, the :mod:`.presence` heartbeat (and failing the blocking jobs of API
processes that stopped reporting), and :mod:`.webhooks` (signing, the retry schedule, the
guarded POST and the sender that drains the outbox)."""
