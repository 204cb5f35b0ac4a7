"""What makes a local stack quick to start: one parsed copy of the SDK's models per process, libyaml's loader."""

from __future__ import annotations

from pathlib import Path

import yaml

from hub_local import cfn
from hub_local.resources import aws_session


def test_every_stack_session_shares_one_data_loader_but_has_its_own_credentials():
    first, second = aws_session(), aws_session(session_token=None)
    loader = first._session.get_component("data_loader")
    assert loader is second._session.get_component("data_loader")
    assert first.get_credentials().token is not None
    assert second.get_credentials().token is None


def test_templates_parse_with_libyaml_where_pyyaml_has_it_and_short_tags_still_expand(tmp_path: Path):
    assert issubclass(cfn.CfnLoader, getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    path = tmp_path / "template.yaml"
    path.write_text("Resources:\n  Q:\n    Type: AWS::SQS::Queue\nOutputs:\n  A: {Value: !GetAtt Q.Arn.Part}\n")
    assert cfn.load_yaml(path)["Outputs"]["A"]["Value"] == {"Fn::GetAtt": ["Q", "Arn.Part"]}
