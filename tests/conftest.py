"""Shared test helpers: the real events/ files, and a fresh 'container' for every test."""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from hub_core.caches import reset_all
from partners.http import reset_sessions
from tests import canaries, privacy

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
_PRIVACY = pytest.StashKey[privacy.LeakDetector]()


# The suite creates many campaigns from 127.0.0.1 with one canary number, and credits one example member again and
# again: stacks that are not about these limits raise them (tests/integration/test_creation_limits.py and the cap
# tests of test_loyalty_relay.py run with the template's own values or their own).
SUITE_LIMITS = {
    "CREATE_LIMIT_PER_MSISDN": "100000",
    "CREATE_LIMIT_PER_IP": "100000",
    "MEMBER_ACTIONS_PER_DAY": "100000",
}
_MANAGE_TOKEN = re.compile(r"[A-Za-z0-9_-]{40,}")


def manage_token_from_sms(umbrella: Any, msisdn: str) -> str:
    """The manage token in the last confirm SMS the Umbrella sandbox sent to `msisdn`: as its owner reads it."""
    confirms = [sms for sms in umbrella.sent_sms(msisdn) if sms["kind"] == "confirm"]
    assert confirms, "no confirm SMS was sent to this number"
    found = _MANAGE_TOKEN.findall(confirms[-1]["text"])
    assert len(found) == 1, "the confirm SMS holds no manage token"
    return found[0]


def site_key_ring(stack: Any) -> str:
    """The member signing keys the stack's SSM holds, as the organisation's site would read them."""
    name = stack.function_env("LeadIntakeFunction")["MEMBER_SIGNING_KEY_PARAM"]
    return str(stack.boto3_client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])


def member_signature(stack: Any, member_id: str, *, valid_for: int = 3600, now: float | None = None) -> str:
    """What the organisation's site puts next to a logged-in member's id (hub_core.member_signature)."""
    from hub_core.member_signature import sign  # noqa: PLC0415 - functions/ is on the path once pytest runs

    return sign(member_id, int(time.time() if now is None else now) + valid_for, site_key_ring(stack))


@contextmanager
def in_process_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's mock_aws in this process, with dummy credentials and no endpoint override: no request leaves it."""
    for name, value in {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


def create_hash_table(name: str, hash_key: str) -> None:
    """An on-demand DynamoDB table keyed by one string attribute (inside in_process_aws)."""
    boto3.client("dynamodb").create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": hash_key, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": hash_key, "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )


def load_event(relative: str) -> dict[str, Any]:
    """A deep copy of an events/ file, so a test can change it freely."""
    return copy.deepcopy(json.loads((EVENTS / relative).read_text()))


@pytest.fixture(autouse=True)
def fresh_container():
    """Each test starts like a cold Lambda container: no cached settings, clients, secrets or sessions."""
    reset_all()
    reset_sessions()
    yield
    reset_all()
    reset_sessions()


# ------------------------------------------------------------------ the privacy check over the whole session


def pytest_configure(config: pytest.Config) -> None:
    detector = privacy.LeakDetector(canaries=privacy.named_canaries(canaries.ALL))
    privacy.install(detector)
    privacy.track_issued_tokens(detector)
    config.stash[_PRIVACY] = detector


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    detector = privacy.session_detector()
    if detector is not None:
        detector.current_test = nodeid


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    detector = privacy.session_detector()
    if detector is not None:
        detector.current_test = f"(after {nodeid})"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    detector = session.config.stash.get(_PRIVACY, None)
    workeroutput = getattr(session.config, "workeroutput", None)
    if detector is not None and workeroutput is not None:
        # An xdist worker: its tally goes to the controller (pytest_testnodedown), which reports and fails.
        workeroutput["privacy"] = privacy.tally(detector)
        return
    if detector is not None and detector.findings and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist's controller: add a finished worker's privacy tally to the session's."""
    detector = node.config.stash.get(_PRIVACY, None)
    tally = getattr(node, "workeroutput", {}).get("privacy")
    if detector is not None and tally is not None:
        privacy.merge(detector, tally)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    detector = config.stash.get(_PRIVACY, None)
    if detector is None:
        return
    suites = ", ".join(f"{suite} {count}" for suite, count in sorted(detector.records.items()))
    scanned = (
        f"{sum(detector.records.values())} log records ({suites}), {detector.outputs} process outputs, "
        f"{detector.items} DynamoDB items and {detector.messages} DLQ messages of {detector.stacks} stacks"
    )
    if detector.findings:
        terminalreporter.section("privacy check: FAILED", sep="=", red=True, bold=True)
        terminalreporter.write_line(f"searched {scanned}; found:")
        for line in detector.report():
            terminalreporter.write_line(f"  {line}")
    else:
        terminalreporter.write_line(f"privacy check: searched {scanned}; no canary found")


def pytest_unconfigure(config: pytest.Config) -> None:
    privacy.uninstall()
