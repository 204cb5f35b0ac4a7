"""What a cold start loads: each handler module imports only what its first request needs (in a fresh interpreter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PATHS = [ROOT / "layers" / "adapters", ROOT / "functions"]


def loaded_after_import(module: str) -> set[str]:
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(path) for path in PATHS), "AWS_DEFAULT_REGION": "eu-west-1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)  # noqa: S603
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        # An SQS consumer: Powertools' Event Handler (and the hub's HTTP error mapping built on it) is dead weight.
        ("loyalty_relay.app", ("aws_lambda_powertools.event_handler", "hub_core.http_api")),
        # API docs calls no AWS service: no boto3 (about 0.2 s) on its cold start. botocore's exceptions, which the
        # one error mapping catches, it may load.
        ("api_docs.app", ("boto3", "hub_core.aws")),
        # Every function reads a partner profile; only the partner it calls is loaded (about 4-8 ms each).
        ("lead_intake.app", ("partners.appsmiles_wire", "partners.mlm", "partners.umbrella")),
        ("campaign_lifecycle.app", ("partners.appsmiles_wire", "partners.mlm", "partners.miimosa")),
        ("donation_ingester.app", ("partners.appsmiles_wire", "partners.mlm", "partners.miimosa")),
        ("licence_issuance.app", ("partners.appsmiles_wire", "partners.umbrella", "partners.miimosa")),
        ("loyalty_relay.app", ("partners.mlm", "partners.umbrella", "partners.miimosa")),
        # Powertools' batch utility, imported after pydantic, builds parser models for four event sources (~25 ms):
        # only the queue invocations of the functions that also serve HTTP load it.
        ("erasure.app", ("aws_lambda_powertools.utilities.batch", "hub_core.batches")),
        ("lead_intake.app", ("aws_lambda_powertools.utilities.batch", "hub_core.batches")),
        ("licence_issuance.app", ("aws_lambda_powertools.utilities.batch", "hub_core.batches")),
        ("donation_ingester.app", ("aws_lambda_powertools.utilities.batch", "hub_core.batches")),
    ],
)
def test_a_handler_module_loads_nothing_its_cold_start_does_not_use(module, absent):
    loaded = loaded_after_import(module)
    assert [name for name in absent if name in loaded] == []
