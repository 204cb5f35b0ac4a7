"""Every events/ file, played as `make invoke FUNCTION=… EVENT=…` plays it: on a fresh stack, its seed first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub_cli.app import main
from hub_local.examples import CALLBACK_TOKEN, ExampleError, Handouts, callback_token, fill
from hub_local.runtime import load_handler
from hub_local.template import load_template
from tests.conftest import EVENTS, ROOT

FUNCTIONS = {
    "campaign_lifecycle": "CampaignLifecycleFunction",
    "donation_ingester": "DonationIngesterFunction",
    "erasure": "ErasureFunction",
    "lead_intake": "LeadIntakeFunction",
    "licence_issuance": "LicenceIssuanceFunction",
    "loyalty_relay": "LoyaltyRelayFunction",
}
# A file named for a failure gives that failure; the name says which.
FAILURE_WORDS = ("_invalid", "_unknown")
FILES = sorted(path for path in EVENTS.glob("*/*.json"))


@pytest.fixture(scope="module", autouse=True)
def _handlers_imported_outside_capture():
    """Powertools binds its log stream at import: import every handler here, not under a test's captured output
    (which is closed after that test, and later tests' logs would go nowhere)."""
    for function in load_template(ROOT / "template.yaml").functions.values():
        load_handler(function.handler)


def test_every_events_folder_belongs_to_a_function_of_the_template():
    folders = {path.name for path in EVENTS.iterdir() if path.is_dir()}
    assert folders == set(FUNCTIONS)
    template = (ROOT / "template.yaml").read_text()
    assert all(f"  {function}:" in template for function in FUNCTIONS.values())


def test_every_seed_belongs_to_an_events_file():
    seeds = sorted(EVENTS.glob("*/given/*.json"))
    assert seeds, "the seeds moved"
    for seed in seeds:
        assert (seed.parent.parent / seed.name).is_file(), seed


def invoke(capsys, path: Path) -> dict:
    capsys.readouterr()
    status = main(
        ["local", "invoke", FUNCTIONS[path.parent.name], str(path), "--template", str(ROOT / "template.yaml")]
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err[-2000:]
    return json.loads(captured.out)


@pytest.mark.parametrize("path", FILES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_the_file_gives_what_its_name_says(capsys, path):
    result = invoke(capsys, path)
    failure = any(word in path.stem for word in FAILURE_WORDS)
    if "statusCode" in result:
        body = json.loads(result["body"])
        if failure:
            assert result["statusCode"] in (400, 422), body
            assert body["problems"], body
        else:
            assert 200 <= result["statusCode"] < 300, body
    elif failure:
        assert result.get("rejected") is True, result
        assert result["problems"], result
    else:
        assert result.get("batchItemFailures", []) == [], result
        assert not result.get("rejected"), result
        assert "errorType" not in result, result


def test_a_callback_file_is_recorded_for_its_seeded_campaign_unflagged(capsys):
    result = invoke(capsys, EVENTS / "donation_ingester/callback_post_json.json")
    body = json.loads(result["body"])
    assert (result["statusCode"], body["status"]) == (200, "recorded")
    assert "flags" not in body


def test_the_reconcile_file_reconciles_its_seeded_campaign(capsys):
    summary = invoke(capsys, EVENTS / "donation_ingester/reconcile_campaign.json")
    assert [(item["campaign"], item["status"]) for item in summary["campaigns"]] == [("1/hjerte/anna50", "ok")]


def test_a_seeded_licence_gets_the_site_of_the_file(capsys):
    result = invoke(capsys, EVENTS / "licence_issuance/post_site.json")
    assert result["statusCode"] == 201
    assert "https://second.example.org" in json.loads(result["body"])["licence"]["sites"]


class _Umbrella:
    def __init__(self, campaigns):
        self.campaigns = campaigns


class _Stack:
    def __init__(self, campaigns=None):
        self.sandboxes = {} if campaigns is None else {"umbrella": _Umbrella(campaigns)}

    def invoke(self, logical_id, event):  # pragma: no cover - fill never invokes
        raise AssertionError(logical_id)


def _campaign(code: str, token: str, *, active: bool = True) -> dict:
    url = f"http://127.0.0.1:3000/donations/callback/1/hjerte/{code}/{token}"
    return {"serviceId": 1, "route": "hjerte", "donationCode": code, "callbackUrl": url, "active": active}


def test_the_callback_token_is_the_active_campaigns_at_umbrella():
    stack = _Stack([_campaign("anna50", "old", active=False), _campaign("bo20", "other"), _campaign("anna50", "k1.x")])
    assert callback_token(stack, "1/hjerte/anna50") == "k1.x"


def test_a_callback_token_nothing_can_give_is_named():
    with pytest.raises(ExampleError, match="does not exist at the Umbrella sandbox"):
        callback_token(_Stack([]), "1/hjerte/anna50")
    with pytest.raises(ExampleError, match="no Umbrella sandbox"):
        callback_token(_Stack(), "1/hjerte/anna50")


def test_an_unfilled_manage_token_is_named_not_sent():
    event = {
        "rawPath": "/campaigns/1/hjerte/anna50",
        "headers": {"authorization": "Bearer REPLACE-WITH-THE-MANAGE-TOKEN"},
    }
    with pytest.raises(ExampleError, match="no seed step handed one out"):
        fill(event, _Stack([]), Handouts())


def test_the_callback_placeholder_is_filled_in_path_and_route():
    event = {
        "rawPath": f"/donations/callback/1/hjerte/anna50/{CALLBACK_TOKEN}",
        "pathParameters": {"serviceId": "1", "route": "hjerte", "donationCode": "anna50", "token": CALLBACK_TOKEN},
    }
    filled = fill(event, _Stack([_campaign("anna50", "k1.mac")]), Handouts())
    assert filled["rawPath"].endswith("/anna50/k1.mac")
    assert filled["pathParameters"]["token"] == "k1.mac"


def test_a_failing_seed_step_stops_the_invoke_in_one_line(capsys, tmp_path):
    (tmp_path / "given").mkdir()
    event = json.loads((EVENTS / "campaign_lifecycle/get_campaign.json").read_text())
    (tmp_path / "get_campaign.json").write_text(json.dumps(event))
    invalid = EVENTS / "campaign_lifecycle/post_campaign_invalid.json"
    (tmp_path / "given/get_campaign.json").write_text(
        json.dumps({"steps": [{"function": "CampaignLifecycleFunction", "event": str(invalid)}]})
    )
    status = main(
        [
            "local",
            "invoke",
            "CampaignLifecycleFunction",
            str(tmp_path / "get_campaign.json"),
            "-t",
            str(ROOT / "template.yaml"),
        ]
    )
    captured = capsys.readouterr()
    assert status == 1
    assert (
        "step 1 (CampaignLifecycleFunction post_campaign_invalid.json) failed: HTTP 422 validation_failed"
        in captured.err
    )
    assert captured.out == ""
