"""`hub local run --host`: what moto, the gateway and the sandboxes listen on; their URLs name 127.0.0.1 regardless."""

from __future__ import annotations

import pytest
import requests

from hub_cli.app import main
from hub_local.stack import LocalStack
from tests.conftest import ROOT


def _listening(stack: LocalStack) -> dict[str, str]:
    addresses = {"gateway": stack._gateway._server.server_address[0]}
    addresses |= {name: sandbox._serving[0].server_address[0] for name, sandbox in stack.sandboxes.items()}
    addresses["moto"] = stack._moto._server.server_address[0]
    return addresses


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])  # noqa: S104 - the opt-in under test
def test_every_server_listens_where_asked_and_answers_on_loopback(host):
    with LocalStack(ROOT / "template.yaml", gateway_port=0, pump_queues=False, bind_host=host) as stack:
        assert set(_listening(stack).values()) == {host}
        assert stack.gateway_url.startswith("http://127.0.0.1:")
        services = requests.get(f"{stack.gateway_url}/services", timeout=10)
        assert services.status_code == 200, services.text


def test_only_loopback_or_every_address_is_accepted(capsys):
    assert main(["local", "run", "--host", "192.0.2.1"]) == 2
    assert "'192.0.2.1' is not one of" in capsys.readouterr().err
