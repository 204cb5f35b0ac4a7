"""The session's privacy check can fail: planted canaries are found (in a detector of their own, so the session
itself stays green), named with their logger and test, and never echoed."""

from __future__ import annotations

import json
import logging

import pytest
from aws_lambda_powertools import Logger

from hub_core.tokens import new_callback_token, new_manage_token
from tests import canaries, privacy


@pytest.fixture
def detector(request):
    planted = privacy.LeakDetector(canaries=privacy.named_canaries(canaries.ALL))
    planted.current_test = request.node.nodeid
    with privacy.watching(planted):
        yield planted


def test_the_session_check_is_installed_on_every_logger():
    assert logging.Logger.handle is privacy._handle
    assert privacy.session_detector() is not None


def test_a_canary_in_a_powertools_extra_is_found_and_named_not_echoed(detector, request):
    probe = Logger(service="privacy-probe")
    probe.info("lead stored", extra={"contact": canaries.CANARY_EMAIL})
    report = "\n".join(detector.report())
    assert f"CANARY_EMAIL in logger 'privacy-probe' (INFO) during {request.node.nodeid}" in report
    assert canaries.CANARY_EMAIL not in report


def test_appended_keys_and_tracebacks_are_searched_too(detector):
    probe = Logger(service="privacy-probe-keys")
    probe.append_keys(donor=canaries.CANARY_MSISDN)
    try:
        raise ValueError(f"bad birthdate {canaries.CANARY_BIRTHDATE}")
    except ValueError:
        probe.exception("failed")
    names = {finding.canary for finding in detector.findings}
    assert names == {"CANARY_MSISDN", "CANARY_BIRTHDATE"}


def test_a_logger_that_does_not_propagate_is_seen(detector):
    adapter = logging.getLogger("partners.privacy-probe")
    adapter.propagate = False
    adapter.setLevel(logging.INFO)
    adapter.warning("calling with key %s", canaries.UMBRELLA_KEY)
    assert {f.canary for f in detector.findings} == {"UMBRELLA_KEY", "seeded secret"}


def test_debug_lines_and_local_stand_ins_are_outside_the_check(detector):
    botocore = logging.getLogger("botocore.privacy-probe")
    botocore.setLevel(logging.DEBUG)
    botocore.debug("Response body: %s", canaries.MLM_TOKEN)
    logging.getLogger("sandboxes.privacy-probe").warning("received %s", canaries.CANARY_PHONE)
    assert not detector.findings


def test_issued_tokens_jwts_and_licence_keys_are_canaries(detector):
    manage = new_manage_token()
    callback = new_callback_token()
    probe = logging.getLogger("privacy-probe-shapes")
    probe.warning("token %s", manage)
    probe.warning("url …/%s", callback)
    probe.warning("auth eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl")
    probe.warning("key 0F8FAD5B-D9CB-469F-A165-70867728950E-%s", "a" * 43)
    names = {finding.canary for finding in detector.findings}
    assert names == {"issued manage token", "issued callback token", "JWT", "licence key"}


def test_a_started_process_is_searched_by_its_log_lines(detector):
    output = "\n".join(
        [
            "gateway: POST /leads -> 201",
            '{"level":"INFO","message":"lead stored","email":"' + canaries.CANARY_EMAIL + '"}',
        ]
    )
    detector.scan_output(output, "hub local run")
    (finding,) = detector.findings
    assert finding.canary == "CANARY_EMAIL"
    assert finding.source == "output of hub local run"
    assert detector.outputs == 1


# ------------------------------------------------------------------ what rests in tables and DLQs


class _Spec:
    def __init__(self, name: str, url: str = "") -> None:
        self.name = name
        self.url = url or name


class _Template:
    def __init__(self, tables: dict[str, list[dict]], queues: dict[str, list[str]]) -> None:
        self.tables = {logical_id: _Spec(f"stack-{logical_id}") for logical_id in tables}
        self.queues = {logical_id: _Spec(f"stack-{logical_id}", f"http://q/{logical_id}") for logical_id in queues}


class _Pages:
    def __init__(self, items: dict[str, list[dict]]) -> None:
        self.items = items

    def paginate(self, TableName: str):
        yield {"Items": self.items[TableName.removeprefix("stack-")]}


class _Clients:
    """moto as scan_stores sees it: Scan pages, and queues that hand each message out once."""

    def __init__(self, tables: dict[str, list[dict]], queues: dict[str, list[str]]) -> None:
        self.tables = tables
        self.queues = {logical_id: list(bodies) for logical_id, bodies in queues.items()}
        self.received: list[str] = []

    def get_paginator(self, name: str) -> _Pages:
        assert name == "scan"
        return _Pages(self.tables)

    def receive_message(self, QueueUrl: str, **_: object) -> dict:
        logical_id = QueueUrl.rsplit("/", 1)[1]
        self.received.append(logical_id)
        bodies, self.queues[logical_id] = self.queues[logical_id][:10], self.queues[logical_id][10:]
        return {"Messages": [{"Body": body} for body in bodies]}


class _Stack:
    def __init__(self, tables: dict[str, list[dict]], queues: dict[str, list[str]]) -> None:
        self.template = _Template(tables, queues)
        self.clients = _Clients(tables, queues)

    def boto3_client(self, service: str) -> _Clients:
        return self.clients


def test_a_canary_in_a_table_attribute_not_on_the_allow_list_is_found_and_named_not_echoed(detector):
    stack = _Stack(
        {
            "LeadsTable": [
                {"lead_id": {"S": "l-1"}, "lead": {"M": {"email": {"S": canaries.CANARY_EMAIL}}}},
                {"lead_id": {"S": "l-2"}, "message": {"S": f"MiiMOSA refused {canaries.CANARY_EMAIL}"}},
            ],
            "LoyaltyTable": [{"pk": {"S": "event#1"}, "reason": {"S": canaries.CANARY_LASTNAME}}],
        },
        {},
    )
    privacy.scan_stores(detector, stack)
    report = "\n".join(detector.report())
    # The lead's own fields are allowed where the lead is kept; the same address in a message is not.
    assert {(f.canary, f.source) for f in detector.findings} == {
        ("CANARY_EMAIL", "DynamoDB LeadsTable attribute 'message'"),
        ("CANARY_LASTNAME", "DynamoDB LoyaltyTable attribute 'reason'"),
    }
    assert canaries.CANARY_EMAIL not in report
    assert detector.items == 3


def test_every_dlq_body_and_the_erasure_retry_queue_are_searched_and_other_queues_are_not(detector):
    licence_key = "0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D-" + "a" * 43
    stack = _Stack(
        {},
        {
            "LoyaltyActionsDLQ": ['{"detail": {"lead_id": "l-1", "apps_miles_member": true}}'] * 10
            + ['{"detail": {"lead_id": "l-2", "apps_miles_user_id": "member-9"}}'],
            "LicenceRequestDLQ": [
                f'{{"requestPayload": {{"detail": {{"customer_reference": "c-1", "licence": "{licence_key}"}}}}}}'
            ],
            "ErasureRetryQueue": [f'{{"email": "{canaries.CANARY_EMAIL}"}}'],
            "LoyaltyActionsQueue": [f'{{"email": "{canaries.CANARY_EMAIL}"}}'],
        },
    )
    privacy.scan_stores(detector, stack)
    assert {(f.canary, f.source) for f in detector.findings} == {
        ("licence key", "SQS LicenceRequestDLQ message body"),
        ("CANARY_EMAIL", "SQS ErasureRetryQueue message body"),
        # A member id that is no canary is still found by its field; the shop's own reference is allowed there.
        ("field 'apps_miles_user_id'", "SQS LoyaltyActionsDLQ message body"),
    }
    assert detector.messages == 13
    assert "LoyaltyActionsQueue" not in stack.clients.received


def test_the_store_check_runs_as_every_local_stack_stops():
    from hub_local.stack import LocalStack  # noqa: PLC0415

    assert privacy._scan_stopping_stack in LocalStack.before_moto_stops


def test_each_allowed_attribute_is_a_table_of_the_template_with_its_reason():
    from hub_local.template import load_template  # noqa: PLC0415
    from tests.conftest import ROOT  # noqa: PLC0415

    tables = load_template(ROOT / "template.yaml").tables
    for (table, attribute), reason in privacy.STORED_ON_PURPOSE.items():
        assert table in tables, table
        assert attribute, table
        assert len(reason) > 20, (table, attribute)
    queues = load_template(ROOT / "template.yaml").queues
    for (queue, field), reason in privacy.QUEUED_ON_PURPOSE.items():
        assert queue in queues, queue
        assert field in privacy.PERSONAL_FIELDS, field
        assert len(reason) > 20, (queue, field)


def test_a_workers_findings_and_counts_reach_the_controller(detector, request):
    # Under xdist each worker has its own detector: what it found must fail the controller's session too.
    probe = Logger(service="privacy-probe-worker")
    probe.info("lead stored", extra={"contact": canaries.CANARY_EMAIL})
    controller = privacy.LeakDetector(canaries=privacy.named_canaries(canaries.ALL))
    controller.records["unit"] = 2
    tally = privacy.tally(detector)
    privacy.merge(controller, json.loads(json.dumps(tally)))  # execnet carries plain data only
    assert controller.records["unit"] == 2 + detector.records["unit"]
    report = "\n".join(controller.report())
    assert f"CANARY_EMAIL in logger 'privacy-probe-worker' (INFO) during {request.node.nodeid}" in report
    assert canaries.CANARY_EMAIL not in report
