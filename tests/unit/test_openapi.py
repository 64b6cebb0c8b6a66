"""The OpenAPI document describes exactly the app's routes, and every reference in it resolves."""

from __future__ import annotations

from typing import Any

from lagom import Container
from starlette.routing import Route

from domain.media import ClipOptions
from entrypoints.http.api import api_routes
from entrypoints.http.openapi import document

DOC = document("test")
ALWAYS = {("GET", "/health"), ("GET", "/health/detailed"), ("GET", "/metrics"), ("GET", "/openapi.json")}


def _app_operations() -> set[tuple[str, str]]:
    operations = set(ALWAYS)
    for route in api_routes(Container()):
        assert isinstance(route, Route)
        operations |= {(method, route.path) for method in route.methods or () if method != "HEAD"}
    return operations


def _documented() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in DOC["paths"].items() for method in item}


def test_every_route_is_documented_and_nothing_else() -> None:
    assert _documented() == _app_operations()


def test_every_operation_has_an_id_responses_and_a_security_decision() -> None:
    ids = []
    for path, item in DOC["paths"].items():
        for method, operation in item.items():
            ids.append(operation["operationId"])
            assert operation["responses"], (method, path)
            assert "security" in operation, (method, path)
            for name in (p["name"] for p in operation.get("parameters", []) if p["in"] == "path"):
                assert "{" + name + "}" in path
            if operation["security"]:
                assert {"401", "403", "429"} <= set(operation["responses"])
    assert len(ids) == len(set(ids))


def test_every_reference_resolves() -> None:
    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref is not None:
                assert ref.startswith("#/components/schemas/")
                assert ref.rsplit("/", 1)[1] in DOC["components"]["schemas"], ref
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(DOC)


def test_the_bearer_scheme_is_declared() -> None:
    assert DOC["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }


def test_metrics_leave_the_document_when_disabled() -> None:
    assert "/metrics" not in document("test", metrics=False)["paths"]


def test_job_options_document_every_option_with_its_default() -> None:
    schema = DOC["components"]["schemas"]["JobOptions"]["properties"]
    defaults = ClipOptions().to_dict()
    assert set(schema) == set(defaults) | {"captions"}
    for name, value in defaults.items():
        if name != "caption_formats":
            assert schema[name]["default"] == value, name
