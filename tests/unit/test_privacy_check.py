"""The session's privacy check can fail: planted canaries are found (in a detector of their own, so the session
itself stays green), named with their logger and test, and never echoed."""

from __future__ import annotations

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
    detector.scan_output(output, "python -m hub_local run")
    (finding,) = detector.findings
    assert finding.canary == "CANARY_EMAIL"
    assert finding.source == "output of python -m hub_local run"
    assert detector.outputs == 1
