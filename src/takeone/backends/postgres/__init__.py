"""The cluster store: jobs, keys, the ledger, rate counters and the webhook outbox in PostgreSQL."""
