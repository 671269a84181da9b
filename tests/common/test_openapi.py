"""Both services against their own OpenAPI documents, on the real stack (Kafka and FerretDB behind them).

schemathesis generates requests from each document (valid ones, and ones the document forbids) and checks every
answer: documented status and content type, body and headers matching their schemas, and no 5xx but a 503.
Examples are bounded; the counts are printed (-s).
"""

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

MAX_EXAMPLES = 40  # per operation and generation mode


def no_server_error_but_503(ctx, response, case):
    """A 5xx is a bug, except 503 (a dependency unavailable: retry later)."""
    assert response.status_code < 500 or response.status_code == 503, \
        f"server error {response.status_code}: {response.text[:500]}"


CHECKS = [no_server_error_but_503, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]


def has_inputs(operation) -> bool:
    return bool(operation.body or operation.path_parameters or operation.query or operation.headers)


def examples(operation, mode: GenerationMode, base_url: str, session: requests.Session, sent: dict[str, int]):
    """A hypothesis test of one operation in one generation mode: each case sent, its answer checked."""
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def call(case):
        sent[operation.label] = sent.get(operation.label, 0) + 1
        case.call_and_validate(base_url=base_url, session=session, checks=CHECKS, timeout=15)
    return call


def test_both_documents_are_openapi_3_1_and_name_every_route(running_system):
    for url, paths in ((running_system.web_url, {"/api/buy", "/api/user/{userId}/purchases", "/openapi.json"}),
                       (running_system.api_url, {"/api/purchases", "/api/purchases/{userId}", "/readyz"})):
        doc = requests.get(f"{url}/openapi.json", timeout=5).json()
        assert doc["openapi"] == "3.1.0" and paths <= set(doc["paths"])


@pytest.mark.parametrize("service", ["web", "api"])
def test_every_answer_conforms_to_the_services_own_document(running_system, service):
    base_url = running_system.web_url if service == "web" else running_system.api_url
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    sent: dict[str, int] = {}
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    examples(operation, mode, base_url, session, sent)()
                except Unsatisfiable:
                    # Nothing the document forbids can be sent to an operation without inputs (GET /healthz).
                    assert mode is GenerationMode.NEGATIVE and not has_inputs(operation)
    print(f"\n[schemathesis] {service}: {sum(sent.values())} cases over {len(sent)} operations: {sent}")
    documented = {f"{method.upper()} {path}" for path, item in schema.raw_schema["paths"].items() for method in item}
    assert documented - set(sent) <= {"GET /openapi.json"}, "operations schemathesis never called"
