"""The hub over the two readings of "stopped": the stop reconciles first, so what Umbrella listed is counted once
under either; reconciliation afterwards calls a campaign Umbrella no longer shows "gone", never an error nor a
doubled donation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hub_core.caches import reset_all
from hub_local.stack import LocalStack
from sandboxes.umbrella import UmbrellaSandbox
from tests.integration.conftest import response_json, stack, umbrella  # noqa: F401 - the stack's fixtures
from tests.integration.test_campaign_lifecycle import campaign_event, create, invoke

UMBRELLA_FUNCTIONS = ("CampaignLifecycleFunction", "DonationIngesterFunction")


@pytest.fixture
def reading(stack: LocalStack, umbrella: UmbrellaSandbox) -> Iterator[Any]:  # noqa: F811 - the fixtures above
    """`reading(mode)`: Umbrella plays that stop reading and the hub's profile says so; defaults afterwards."""
    before = {name: stack.function_env(name).get("UMBRELLA_PROFILE", "{}") for name in UMBRELLA_FUNCTIONS}

    def play(mode: str) -> None:
        umbrella.set_modes(stopped_campaign=mode)
        for name in UMBRELLA_FUNCTIONS:
            stack.set_function_env(name, {"UMBRELLA_PROFILE": f'{{"stopped_campaign": "{mode}"}}'})
        reset_all()  # a configuration update: new containers

    yield play
    umbrella.set_modes(stopped_campaign="not_found")
    for name, profile in before.items():
        stack.set_function_env(name, {"UMBRELLA_PROFILE": profile})
    reset_all()


def reconcile(stack: LocalStack, ref: str) -> dict[str, Any]:  # noqa: F811
    summary = stack.invoke("DonationIngesterFunction", {"reconcile": {"campaigns": [ref]}})
    return summary["campaigns"][0]


@pytest.mark.parametrize("mode", ["not_found", "readable"])
def test_reconciliation_after_a_stop_under_both_readings(
    stack: LocalStack,  # noqa: F811
    umbrella: UmbrellaSandbox,  # noqa: F811
    reading: Any,
    mode: str,
) -> None:
    reading(mode)
    fields, body = create(stack)
    ref = f"{fields['serviceId']}/{fields['route']}/{fields['donationCode']}"
    for amount in (5000, 2500):  # the callbacks never came
        umbrella.donate(fields["serviceId"], fields["route"], fields["donationCode"], amount=amount, deliver=False)
    stopped = invoke(stack, campaign_event("delete_campaign.json", fields, body["manageToken"]))
    assert stopped["statusCode"] == 200, stopped["body"]

    first = reconcile(stack, ref)
    stack.drain_events(timeout=20)
    stack.drain("DonationTotalsQueue", timeout=20)
    again = reconcile(stack, ref)

    # The stop reconciled first, while Umbrella still answered for the campaign: both donations are counted already.
    if mode == "readable":
        assert (first["status"], first["recovered"]) == ("ok", 0)
        assert (again["recovered"], again["partner_amount"], again["ledger_amount"]) == (0, 7500, 7500)
    else:
        # Umbrella shows a stopped campaign no more: "gone", with nothing more recovered and nothing counted twice.
        assert (first["status"], first["recovered"]) == ("gone", 0)
        assert (again["status"], again["recovered"]) == ("gone", 0)
    shown = response_json(invoke(stack, campaign_event("get_campaign.json", fields)))
    assert shown["collected"]["amount"] == 7500
