"""The session's store check runs as a real stack stops: what a test leaves in a table or a DLQ is searched."""

from __future__ import annotations

import json

from hub_local.stack import LocalStack
from tests import canaries, privacy
from tests.conftest import ROOT


def test_a_canary_left_in_a_table_and_a_member_id_in_a_dlq_are_found_when_the_stack_stops(request):
    planted = privacy.LeakDetector(canaries=privacy.named_canaries(canaries.ALL))
    planted.current_test = request.node.nodeid
    stack_options = {"gateway_port": None, "pump_queues": False, "partners": []}
    with privacy.watching(planted), LocalStack(ROOT / "template.yaml", **stack_options) as stack:
        stack.boto3_client("dynamodb").put_item(
            TableName=stack.physical("LoyaltyTable"),
            Item={"pk": {"S": "event#probe"}, "reason": {"S": f"refused {canaries.CANARY_EMAIL}"}},
        )
        stack.boto3_client("dynamodb").put_item(
            TableName=stack.physical("LeadsTable"),
            Item={"lead_id": {"S": "probe"}, "lead": {"M": {"email": {"S": canaries.CANARY_EMAIL}}}},
        )
        body = {"detail-type": "LeadCaptured", "detail": {"lead_id": "probe", "apps_miles_user_id": "member-1"}}
        stack.boto3_client("sqs").send_message(
            QueueUrl=stack.physical("LoyaltyActionsDLQ"), MessageBody=json.dumps(body)
        )
        assert planted.findings == {}
    # Found at the stop, not before; the lead's own e-mail where the lead is kept is allowed.
    assert {(f.canary, f.source) for f in planted.findings} == {
        ("CANARY_EMAIL", "DynamoDB LoyaltyTable attribute 'reason'"),
        ("field 'apps_miles_user_id'", "SQS LoyaltyActionsDLQ message body"),
    }
    assert (planted.items, planted.messages, planted.stacks) == (2, 1, 1)
