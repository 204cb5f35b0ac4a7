"""`hub secrets set` knows every secret the template's functions read, and nothing else."""

from __future__ import annotations

import re

from hub_cli.commands.secrets import SECRETS
from hub_local.cfn import load_yaml
from tests.conftest import ROOT


def test_every_secret_a_function_reads_can_be_set():
    template = load_yaml(ROOT / "template.yaml")
    read = set()
    for resource in template["Resources"].values():
        variables = ((resource.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
        for name, value in variables.items():
            if name.endswith("_PARAM"):
                text = value["Fn::Sub"] if isinstance(value, dict) else value
                found = re.fullmatch(r"/partner-hub/\$\{Stage\}/(.+)", text)
                assert found, f"{name} is not under /partner-hub/${{Stage}}/"
                read.add(found.group(1))
    assert read
    assert read == set(SECRETS)
