"""The checkov skips: each check skipped everywhere in .checkov.yaml has its reason there, and none is also inline."""

from __future__ import annotations

import re
from typing import Any

import yaml
from cfnlint.decode import cfn_yaml

from hub_local.language_extensions import expand_language_extensions
from tests.conftest import ROOT

CONFIG = ROOT / ".checkov.yaml"


def _config_skips() -> list[str]:
    return list(yaml.safe_load(CONFIG.read_text())["skip-check"])


def _inline_skips() -> dict[str, list[str]]:
    template: dict[str, Any] = expand_language_extensions(cfn_yaml.load(str(ROOT / "template.yaml")))
    found: dict[str, list[str]] = {}
    for name, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            found.setdefault(skip["id"], []).append(name)
            assert skip.get("comment"), f"{name} skips {skip['id']} without a reason"
    return found


def test_every_check_skipped_in_the_config_has_its_reason_there():
    reasons = set(re.findall(r"^# (CKV_\w+) ", CONFIG.read_text(), flags=re.MULTILINE))
    skips = _config_skips()
    assert skips, "the config skips nothing: then it has no reason to exist"
    assert set(skips) <= reasons, f"no reason given in .checkov.yaml for {sorted(set(skips) - reasons)}"


def test_a_check_is_skipped_in_one_place_only():
    inline = _inline_skips()
    both = {check: inline[check] for check in _config_skips() if check in inline}
    assert not both, f"skipped in .checkov.yaml and inline as well: {both}"
