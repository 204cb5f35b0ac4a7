"""The pages' static server: files under web/ only, pointed at the running API, read-only."""

from __future__ import annotations

import socket

import pytest
import requests

from hub_local.web import API_BASE_IN_PAGES, WebServer, swagger_ui_dir
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def web():
    server = WebServer(ROOT / "web", docs_dir=swagger_ui_dir()).start("http://127.0.0.1:9")
    yield server
    server.stop()


def test_pages_name_the_running_api(web):
    response = requests.get(f"{web.url}/lead.html", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert 'action="http://127.0.0.1:9/leads"' in response.text
    assert API_BASE_IN_PAGES not in response.text
    assert requests.get(f"{web.url}/", timeout=5).text.count("<li>") >= 3


def test_scripts_are_served_as_they_are(web):
    response = requests.get(f"{web.url}/hub-forms.js", timeout=5)
    assert response.status_code == 200
    assert "javascript" in response.headers["Content-Type"]
    assert response.content == (ROOT / "web" / "hub-forms.js").read_bytes()


@pytest.mark.parametrize("path", ["/../template.yaml", "/%2e%2e/template.yaml", "/.hidden", "/nothing.html", "/docs"])
def test_nothing_outside_the_folder(web, path):
    if path == "/docs":
        assert requests.get(f"{web.url}{path}", timeout=5).status_code == 200
        return
    assert requests.get(f"{web.url}{path}", timeout=5).status_code == 404


def test_swagger_ui_comes_from_the_package_and_reads_the_apis_document(web):
    page = requests.get(f"{web.url}/docs/", timeout=5)
    assert 'url: "http://127.0.0.1:9/openapi.json"' in page.text
    bundle = requests.get(f"{web.url}/docs/swagger-ui-bundle.js", timeout=5)
    assert bundle.status_code == 200
    assert bundle.content == (swagger_ui_dir() / "swagger-ui-bundle.js").read_bytes()


def test_it_only_reads(web):
    response = requests.post(f"{web.url}/lead.html", data="x", timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert requests.head(f"{web.url}/lead.html", timeout=5).content == b""
    assert "lead" in web.pages()


def test_the_pages_port_follows_the_gateways_unless_told():
    from hub_cli.commands.local.run import pages_port  # noqa: PLC0415

    assert pages_port(4321, 3100) == 4321
    assert pages_port(None, 0) == 0
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        # The port after the gateway's is someone else's: any free one, which the banner prints.
        assert pages_port(None, taken - 1) == 0
