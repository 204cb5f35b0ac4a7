"""Fn::ForEach expansion (hub_local.language_extensions): the documented semantics, and agreement with SAM CLI's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from samcli.lib.cfn_language_extensions.sam_integration import expand_language_extensions as sam_expand

from hub_cli.app import main
from hub_local.cfn import TemplateError, load_yaml
from hub_local.language_extensions import expand_language_extensions
from tests.conftest import ROOT

TRANSFORMS = ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"]


def document(resources: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"Transform": list(TRANSFORMS), "Resources": resources, **extra}


def test_each_item_gets_its_keys_strings_and_refs_substituted() -> None:
    loop = [
        "Queue",
        ["Lead-Retry", "Licence"],
        {
            "&{Queue}Alarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "AlarmName": {"Fn::Sub": "hub-${Stage}-${Queue}"},
                    "Queue": {"Ref": "Queue"},
                    "Untouched": {"Ref": "Stage"},
                },
            }
        },
    ]
    expanded = expand_language_extensions(document({"Fn::ForEach::Alarms": loop, "Topic": {"Type": "T"}}))

    assert list(expanded["Resources"]) == ["LeadRetryAlarm", "LicenceAlarm", "Topic"]
    properties = expanded["Resources"]["LeadRetryAlarm"]["Properties"]
    assert properties == {
        "AlarmName": {"Fn::Sub": "hub-${Stage}-Lead-Retry"},
        "Queue": "Lead-Retry",
        "Untouched": {"Ref": "Stage"},
    }
    assert expanded["Transform"] == "AWS::Serverless-2016-10-31"


def test_a_sub_left_without_variables_becomes_its_string_so_that_ref_and_getatt_name_a_resource() -> None:
    loop = [
        "Name",
        ["A"],
        {
            "${Name}Alarm": {
                "Ref": {"Fn::Sub": "${Name}Function"},
                "Att": {"Fn::GetAtt": [{"Fn::Sub": "${Name}"}, "Arn"]},
            }
        },
    ]

    expanded = expand_language_extensions(document({"Fn::ForEach::L": loop}))

    assert expanded["Resources"]["AAlarm"] == {"Ref": "AFunction", "Att": {"Fn::GetAtt": ["A", "Arn"]}}


def test_outside_a_loop_a_sub_without_variables_is_kept() -> None:
    resources = {"R": {"Type": "T", "Properties": {"P": {"Fn::Sub": "plain"}}}}

    assert expand_language_extensions(document(resources))["Resources"] == resources


def test_loops_nest_and_expand_in_outputs_and_conditions_too() -> None:
    inner = ["Kind", ["Depth", "Age"], {"${Queue}${Kind}Alarm": {"Type": "AWS::CloudWatch::Alarm"}}]
    outer = ["Queue", ["Q1", "Q2"], {"Fn::ForEach::Kinds": inner}]
    template = document(
        {"Fn::ForEach::Queues": outer},
        Outputs={"Fn::ForEach::Out": ["Q", ["Q1"], {"${Q}Url": {"Value": {"Ref": "Q"}}}]},
        Conditions={"Fn::ForEach::C": ["S", ["dev"], {"Is${S}": {"Fn::Equals": [{"Ref": "Stage"}, "${S}"]}}]},
    )

    expanded = expand_language_extensions(template)

    assert list(expanded["Resources"]) == ["Q1DepthAlarm", "Q1AgeAlarm", "Q2DepthAlarm", "Q2AgeAlarm"]
    assert expanded["Outputs"] == {"Q1Url": {"Value": "Q1"}}
    assert expanded["Conditions"] == {"Isdev": {"Fn::Equals": [{"Ref": "Stage"}, "dev"]}}


def test_a_key_generated_twice_is_an_error() -> None:
    loop = ["X", ["A", "A"], {"${X}Alarm": {"Type": "T"}}]

    with pytest.raises(ValueError, match="AAlarm is generated twice"):
        expand_language_extensions(document({"Fn::ForEach::L": loop}))


def test_a_generated_key_that_already_exists_is_an_error() -> None:
    loop = ["X", ["A"], {"${X}Alarm": {"Type": "T"}}]

    with pytest.raises(ValueError, match="AAlarm"):
        expand_language_extensions(document({"AAlarm": {"Type": "T"}, "Fn::ForEach::L": loop}))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["X", {"Ref": "Names"}, {"${X}": {}}], "only a literal list of strings"),
        (["X", ["A"]], r"expected \[Identifier, Collection"),
        (["", ["A"], {"${X}": {}}], "identifier must be a non-empty string"),
    ],
)
def test_what_is_not_supported_fails_loudly(arguments: list[Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        expand_language_extensions(document({"Fn::ForEach::L": arguments}))


def test_load_yaml_reports_a_bad_loop_as_a_template_error(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        "Transform: AWS::LanguageExtensions\nResources:\n  Fn::ForEach::L:\n    - X\n    - !Ref Names\n"
        "    - ${X}Alarm: {Type: AWS::CloudWatch::Alarm}\n",
        encoding="utf-8",
    )

    with pytest.raises(TemplateError, match="Fn::ForEach::L: only a literal list"):
        load_yaml(path)
    assert "Fn::ForEach::L" in load_yaml(path, expand=False)["Resources"]


def test_without_the_transform_nothing_is_expanded() -> None:
    loop = ["X", ["A"], {"${X}Alarm": {"Type": "T"}}]
    template = {"Transform": "AWS::Serverless-2016-10-31", "Resources": {"Fn::ForEach::L": loop}}

    assert expand_language_extensions(template) == template


def test_on_template_yaml_it_makes_the_resources_sam_cli_makes() -> None:
    raw = load_yaml(ROOT / "template.yaml", expand=False)
    assert any(key.startswith("Fn::ForEach::") for key in raw["Resources"])
    ours = expand_language_extensions(raw)["Resources"]
    # SAM CLI's expansion (sam build, sam local) also resolves parameters; the references to resources it keeps.
    theirs = sam_expand(raw, {}, enabled=True).expanded_template["Resources"]

    assert list(ours) == list(theirs)
    for name, resource in ours.items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        for key in ("Dimensions", "Metrics", "AlarmActions", "OKActions", "MetricName", "Namespace"):
            assert resource["Properties"].get(key) == theirs[name]["Properties"].get(key), (name, key)


def test_the_command_writes_the_expansion_checkov_scans(tmp_path: Path) -> None:
    output = tmp_path / "scan" / "template.json"

    assert main(["local", "expand", str(ROOT / "template.yaml"), str(output)]) == 0

    written = json.loads(output.read_text(encoding="utf-8"))
    assert written == json.loads(json.dumps(load_yaml(ROOT / "template.yaml")))
    assert all(isinstance(resource, dict) and "Type" in resource for resource in written["Resources"].values())
    assert main(["local", "expand", str(tmp_path / "missing.yaml"), str(output)]) == 2
