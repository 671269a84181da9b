"""The OpenAPI documents' shape, without a server: each is a valid OpenAPI 3.1 document, and documents exactly the
routes its app serves (test_openapi.py then checks the live answers against them)."""

import pytest
import schemathesis

from services.api.app import create_app as create_api
from services.api.openapi import DOCUMENT as API_DOCUMENT
from services.core.config import ApiConfig, WebConfig
from services.web.app import create_app as create_web
from services.web.openapi import DOCUMENT as WEB_DOCUMENT

pytestmark = pytest.mark.unit  # make check: no server, no build

SERVICES = {"web": (WEB_DOCUMENT, lambda: create_web(WebConfig.from_env({}))),
            "api": (API_DOCUMENT, lambda: create_api(ApiConfig.from_env({})))}


@pytest.mark.parametrize("service", SERVICES)
def test_the_document_is_openapi_3_1_that_schemathesis_can_load(service):
    document, _ = SERVICES[service]
    assert document["openapi"] == "3.1.0"
    schema = schemathesis.openapi.from_dict(document)
    assert {operation.ok().path for operation in schema.get_all_operations()} == set(document["paths"])


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_the_app_serves_is_documented_with_its_methods(service):
    document, make_app = SERVICES[service]
    served = {(resource.canonical, route.method.lower()) for resource in make_app().router.resources()
              for route in resource if route.method not in ("HEAD", "*")}
    documented = {(path, method) for path, operations in document["paths"].items() for method in operations}
    static = {(path, method) for path, method in served if path.startswith("/static")}
    assert served - static == documented
