"""template.yaml as SAM transforms it: which HTTP API routes API Gateway lets through unsigned."""

from __future__ import annotations

import pytest
from cfnlint.decode import cfn_yaml
from samtranslator.translator.transform import transform

from hub_local.language_extensions import expand_language_extensions
from tests.conftest import ROOT

SIGNED_ONLY = {
    "POST /licences",
    "GET /licences/{orderId}",
    "POST /licences/{key}/sites",
    "GET /licence-types",
    "GET /products",
    "POST /erasure",
}


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture(scope="module")
def api_routes():
    template = expand_language_extensions(cfn_yaml.load(str(ROOT / "template.yaml")))
    # The transform checks code locations are S3 URIs, as after `sam package`; where they point does not matter here.
    template["Globals"]["Function"]["CodeUri"] = "s3://bucket/functions.zip"
    template["Resources"]["AdaptersLayer"]["Properties"]["ContentUri"] = "s3://bucket/layer.zip"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
        transformed = transform(template, {"Stage": "test"}, _NoManagedPolicies())
    body = transformed["Resources"]["HubHttpApi"]["Properties"]["Body"]
    return {
        f"{method.upper()} {path}": operation.get("security")
        for path, methods in body["paths"].items()
        for method, operation in methods.items()
    }


def test_the_licence_routes_require_a_sigv4_signature(api_routes):
    assert {route for route, security in api_routes.items() if security == [{"AWS_IAM": []}]} == SIGNED_ONLY


def test_the_website_routes_stay_open_to_browsers(api_routes):
    open_routes = {route for route, security in api_routes.items() if not security}
    assert {"POST /leads", "POST /campaigns", "GET /services", "GET /projects"} <= open_routes
    assert open_routes.isdisjoint(SIGNED_ONLY)
