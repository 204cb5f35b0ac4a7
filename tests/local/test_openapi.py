"""The committed OpenAPI document: current, complete for the template's routes, and checked by `hub local openapi`."""

from __future__ import annotations

import json

import pytest

from hub_cli.app import main
from hub_local.openapi import DOCUMENT_PATH, OpenApiError, build_document, render
from hub_local.template import load_template
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def document():
    return build_document(ROOT / "template.yaml")


def test_the_committed_document_is_current(document):
    committed = (ROOT / DOCUMENT_PATH).read_text(encoding="utf-8")
    assert committed == render(document), "openapi.json is stale: run make openapi and commit it"
    assert (ROOT / "openapi.json").resolve() == (ROOT / DOCUMENT_PATH).resolve()


def test_every_template_route_is_documented_and_iam_routes_are_signed(document):
    routes = load_template(ROOT / "template.yaml").http_routes
    assert routes
    documented = {(path, method) for path, methods in document["paths"].items() for method in methods}
    assert documented == {(route.path, route.method.lower()) for route in routes}
    for route in routes:
        operation = document["paths"][route.path][route.method.lower()]
        assert operation["tags"] == [route.function]
        signed = operation.get("security") == [{"sigv4": []}]
        assert signed == (route.authorizer == "AWS_IAM"), route.route_key


def test_request_bodies_carry_the_rules(document):
    lead = document["paths"]["/leads"]["post"]["requestBody"]
    assert lead["required"] is True
    schema = lead["content"]["application/x-www-form-urlencoded"]["schema"]
    assert set(schema["required"]) >= {"email", "firstname", "lastname", "phone", "collect_type"}
    assert schema["additionalProperties"] is False
    assert schema["properties"]["collect_type"]["enum"] == ["donation", "lending"]
    # Internationalised addresses are accepted (MiiMOSA's field is a plain string): a format, not an ASCII pattern.
    assert schema["properties"]["email"]["format"] == "email"
    campaign = document["paths"]["/campaigns"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert campaign["properties"]["donationCode"]["pattern"] == "^[A-Za-z0-9]{2,20}$"
    assert campaign["properties"]["serviceId"]["type"] == "integer"
    licence = document["paths"]["/licences"]["post"]["requestBody"]["content"]
    assert list(licence) == ["application/json"]  # its integers are strict: no form post


def test_errors_use_the_hubs_shape_not_powertools(document):
    text = json.dumps(document)
    assert "HTTPValidationError" not in text
    error = document["paths"]["/leads"]["post"]["responses"]["422"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/Error"}
    assert document["components"]["schemas"]["Error"]["required"] == ["error", "message"]
    put = document["paths"]["/campaigns/{serviceId}/{route}/{donationCode}"]["put"]
    assert put["security"] == [{"manageToken": []}]


def test_a_template_route_without_a_handler_route_is_an_error(tmp_path):
    template = (ROOT / "template.yaml").read_text(encoding="utf-8")
    extra = """        GetNowhere:
          Type: HttpApi
          Properties:
            ApiId: !Ref HubHttpApi
            Path: /nowhere
            Method: GET
        ListProjects:
"""
    changed = tmp_path / "template.yaml"
    changed.write_text(template.replace("        ListProjects:\n", extra, 1), encoding="utf-8")
    with pytest.raises(OpenApiError, match="GET /nowhere"):
        build_document(changed)


def test_the_command_writes_then_checks(tmp_path, capsys):
    output = tmp_path / "openapi.json"
    template = str(ROOT / "template.yaml")
    assert main(["local", "openapi", "--template", template, "--output", str(output), "--check"]) == 1
    assert "stale" in capsys.readouterr().err
    assert main(["local", "openapi", "--template", template, "--output", str(output)]) == 0
    assert json.loads(output.read_text(encoding="utf-8"))["openapi"] == "3.1.0"
    assert main(["local", "openapi", "--template", template, "--output", str(output), "--check"]) == 0
    assert main(["local", "openapi", "--template", str(tmp_path / "missing.yaml")]) == 2
