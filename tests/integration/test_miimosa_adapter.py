"""The MiiMOSA adapter and the HTTP core against the MiiMOSA sandbox over loopback HTTP: every failure mode."""

import logging
import socket

import pytest

from partners.errors import (
    PartnerAuthError,
    PartnerBadResponse,
    PartnerNotFound,
    PartnerRejected,
    PartnerUnavailable,
)
from partners.http import RetryPolicy, Timeouts, reset_sessions
from partners.miimosa import IdentityMismatch, MiimosaClient
from sandboxes.miimosa import SEED_USERS, MiimosaSandbox

KEY = "sk-test-miimosa-0123456789"
LEAD = {
    "email": "dora.fenn@example.org",
    "firstname": "Dora",
    "lastname": "Fenn",
    "phone": "+33612345678",
    "collect_type": "lending",
    "project_description": "Serre",
    "project_total_budget": "9000",
    "publication_timeframe": "next_months",
}


@pytest.fixture(scope="module")
def sandbox():
    with MiimosaSandbox(api_key=KEY, per_page=10) as server:
        yield server


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(sandbox, sleeps):
    sandbox.faults.clear()
    sandbox.clear_requests()
    reset_sessions()
    return MiimosaClient(
        sandbox.url,
        api_key=lambda: KEY,
        timeouts=Timeouts(connect=0.5, read=0.3),
        retry=RetryPolicy(max_attempts=3, max_retry_after=2.0),
        sleep=sleeps.append,
    )


def test_a_lead_is_created_once_with_the_key_in_the_authorization_header(client, sandbox):
    receipt = client.create_lead({**LEAD, "siret": None, "city": ""})
    assert receipt.reference is not None
    assert sandbox.leads[-1]["email"] == LEAD["email"]
    assert "siret" not in sandbox.leads[-1]
    assert "city" not in sandbox.leads[-1]
    assert [r.path for r in sandbox.requests] == ["/leads"]


def test_invalid_record_is_final_and_carries_the_partner_message(client, sandbox):
    with pytest.raises(PartnerRejected) as caught:
        client.create_lead({**LEAD, "collect_type": "gift"})
    assert caught.value.status == 400
    assert "collect_type" in caught.value.message
    assert len(sandbox.requests) == 1


def test_wrong_key_is_an_auth_error(sandbox):
    wrong = MiimosaClient(sandbox.url, api_key=lambda: "nope")
    with pytest.raises(PartnerAuthError):
        wrong.create_lead(LEAD)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_5xx_on_post_is_not_retried_and_is_ambiguous(client, sandbox, status):
    sandbox.faults.add("status", status=status, count=1)
    with pytest.raises(PartnerUnavailable) as caught:
        client.create_lead(LEAD)
    assert caught.value.ambiguous
    assert len(sandbox.requests) == 1


def test_a_read_timeout_on_post_is_not_retried(client, sandbox):
    sandbox.faults.add("slow", delay=1.0, count=1)
    with pytest.raises(PartnerUnavailable) as caught:
        client.create_lead(LEAD)
    assert caught.value.ambiguous
    assert caught.value.message == "read timeout"
    assert len(sandbox.requests) == 1


def test_429_on_post_is_not_retried_but_says_when(client, sandbox):
    sandbox.faults.add("rate_limit", retry_after=7, count=1)
    with pytest.raises(PartnerUnavailable) as caught:
        client.create_lead(LEAD)
    assert caught.value.status == 429
    assert caught.value.retry_after == 7
    assert not caught.value.ambiguous


def test_a_refused_connection_is_retried_even_for_post_because_nothing_was_sent(sleeps):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = MiimosaClient(
        f"http://127.0.0.1:{port}", api_key=lambda: KEY, retry=RetryPolicy(max_attempts=3), sleep=sleeps.append
    )
    with pytest.raises(PartnerUnavailable) as caught:
        closed.create_lead(LEAD)
    assert not caught.value.ambiguous
    assert len(sleeps) == 2


def test_idempotent_reads_retry_5xx_with_backoff_then_succeed(client, sandbox, sleeps):
    sandbox.faults.add("status", status=503, count=2, path_prefix="/projects")
    page = client.list_projects(category="apiculture")
    assert page.projects
    assert len(sleeps) == 2
    assert all(0 <= s <= 2.0 for s in sleeps)
    assert len(sandbox.requests) == 3


def test_reads_honour_retry_after(client, sandbox, sleeps):
    sandbox.faults.add("rate_limit", retry_after=1, count=1)
    client.get_project(1)
    assert sleeps == [1.0]


def test_a_retry_after_beyond_the_cap_is_not_slept_in_lambda(client, sandbox, sleeps):
    sandbox.faults.add("rate_limit", retry_after=60, count=1)
    with pytest.raises(PartnerUnavailable) as caught:
        client.get_project(1)
    assert caught.value.retry_after == 60
    assert sleeps == []


def test_reads_give_up_after_max_attempts(client, sandbox):
    sandbox.faults.add("slow", delay=1.0, count=3)
    with pytest.raises(PartnerUnavailable):
        client.get_project(1)
    assert len(sandbox.requests) == 3


def test_a_dropped_connection_is_unavailable(client, sandbox):
    sandbox.faults.add("drop", count=3)
    with pytest.raises(PartnerUnavailable):
        client.get_project(1)


def test_a_malformed_body_is_a_bad_response_on_reads(client, sandbox):
    sandbox.faults.add("malformed", count=1, path_prefix="/projects")
    with pytest.raises(PartnerBadResponse):
        client.get_project(1)


def test_a_malformed_body_after_a_created_lead_is_still_success(client, sandbox):
    sandbox.faults.add("malformed", count=1)
    assert client.create_lead(LEAD).reference is None


def test_project_not_found(client):
    with pytest.raises(PartnerNotFound):
        client.get_project(999999)


def test_projects_follow_link_pagination_and_the_cap(client, sandbox):
    everything = client.list_projects(max_pages=50)
    assert not everything.truncated
    ids = [p["id"] for p in everything.projects]
    assert len(ids) == len(set(ids)) > 10
    capped = client.list_projects(max_pages=1)
    assert capped.truncated
    assert len(capped.projects) == 10


def test_filters_reach_the_partner(client):
    page = client.list_projects(category="viticulture", type="lending", order="recent")
    assert page.projects
    assert all(p["category"] == "viticulture" and p["type"] == "lending" for p in page.projects)


def test_an_invalid_filter_is_a_rejection(client):
    with pytest.raises(PartnerRejected):
        client.list_projects(order="bogus")  # type: ignore[arg-type]


def test_pledges_and_wallet_with_identity_checks(client):
    user = SEED_USERS[0]
    assert isinstance(client.user_pledges(user.email, user.birthdate), list)
    assert isinstance(client.user_wallet(user.email, user.birthdate), dict)
    with pytest.raises(IdentityMismatch):
        client.user_wallet(user.email, "1900-01-01")
    with pytest.raises(PartnerNotFound):
        client.user_pledges("nobody@example.org", "1900-01-01")


def test_log_lines_carry_no_key_url_query_or_personal_data(client, caplog):
    user = SEED_USERS[0]
    caplog.set_level(logging.INFO, logger="partners")
    client.create_lead(LEAD)
    with pytest.raises(IdentityMismatch):
        client.user_wallet(user.email, "1900-01-01")
    rendered = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "partner call" in rendered
    for secret in (KEY, LEAD["email"], user.email, "1900-01-01", "user_email"):
        assert secret not in rendered
