"""Schemathesis against the server's own OpenAPI document: no 500, no answer that breaks
the document. The key has few credits, so generated bodies that are valid queue a handful
of tiny jobs and are then refused with 406 rather than flooding the worker."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.harness import Server

# Schema-valid bodies can still be refused for reasons a schema cannot carry (an image URL
# that does not resolve, an exhausted balance), so "positive data acceptance" is not checked.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def _operations(server: Server) -> list[Any]:
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def test_every_operation_is_fuzzed(server: Server) -> None:
    labels = {op.label for op in _operations(server)}
    assert "POST /v2/kling-2.6" in labels and "GET /v2/requests/{request_id}/status" in labels


@pytest.mark.timeout(600)
def test_no_server_errors_and_answers_match_the_document(server: Server) -> None:
    key = server.key(2.0)
    for operation in _operations(server):
        _fuzz(operation, key)


def _fuzz(operation: Any, key: str) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        case.call_and_validate(headers={"x-api-key": key}, checks=CHECKS, timeout=60)

    run()
