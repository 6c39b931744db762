"""Throwaway real services that the benchmarks and the tests both start: a PostgreSQL server,
a SeaweedFS (S3) server, a local Ray cluster, a ``takeone serve`` subprocess and a whole
cluster deployment made of them. Nothing here is part of the product."""
