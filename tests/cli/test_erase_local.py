"""`hub erase` against a running local stack: a person seeded in every table, erased, erased again; the operator's
mistakes, no stack, and app's miles down, each one clear line and a non-zero exit."""

from __future__ import annotations

import io
import socket
import uuid

import pytest

from tests.canaries import CANARY_APPSMILES_USER
from tests.cli.conftest import one_line_error
from tests.integration.test_erasure import appsmiles_user, break_multidelete, multideletes, stack_with_appsmiles

CANARY_USER = CANARY_APPSMILES_USER


@pytest.fixture(scope="module")
def live_and_appsmiles():
    with stack_with_appsmiles(gateway_port=0, pump_queues=False) as both:
        yield both


@pytest.fixture(scope="module")
def live(live_and_appsmiles):
    return live_and_appsmiles[0]


@pytest.fixture
def appsmiles(live_and_appsmiles):
    sandbox = live_and_appsmiles[1]
    sandbox.reset()
    yield sandbox
    sandbox.reset()


@pytest.fixture
def local(live, hub):
    return lambda *args: hub("--url", live.gateway_url, *args)


def seed(live, appsmiles, user_id: str, msisdn: str = "4511223344") -> None:
    dynamodb = live.boto3_client("dynamodb")
    dynamodb.put_item(
        TableName=live.physical("DonationsTable"),
        Item={"pk": {"S": f"donation#{uuid.uuid4()}"}, "amount": {"N": "700"}, "msisdn": {"S": msisdn}},
    )
    dynamodb.put_item(
        TableName=live.physical("LoyaltyTable"), Item={"pk": {"S": f"event#{uuid.uuid4()}"}, "user_id": {"S": user_id}}
    )
    appsmiles_user(appsmiles, user_id)


def rows(outcome) -> dict[str, list[str]]:
    found = {}
    for line in outcome.out.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 3:
            found[cells[0]] = cells[1:]
    return found


def test_erase_shows_what_was_erased_where_then_a_repeat_finds_nothing(live, local, appsmiles):
    seed(live, appsmiles, CANARY_USER)

    outcome = local("erase", "--msisdn", "4511223344", "--user", CANARY_USER, "--yes")

    assert outcome.status == 0, outcome.err
    table = rows(outcome)
    assert table["DonationsTable"][0] == "1"
    assert table["LoyaltyTable"][0] == "1"
    assert table["LeadsTable"] == ["0", "nothing found"]
    assert table["app's miles"][1] == "user deleted"

    again = local("erase", "--msisdn", "4511223344", "--user", CANARY_USER, "--yes")

    assert again.status == 0, again.err
    assert rows(again)["DonationsTable"] == ["0", "nothing found"]
    assert rows(again)["app's miles"][1] == "no such user (erased before?)"


def test_erase_by_email_notes_that_miimosa_must_be_asked(local, appsmiles):
    outcome = local("erase", "--email", "nobody@example.org", "--yes", "--json")

    assert outcome.status == 0, outcome.err
    assert '"appsmiles": "not_asked"' in outcome.out
    assert "MiiMOSA" in outcome.out


def test_erase_asks_for_confirmation(live, local, appsmiles, monkeypatch):
    seed(live, appsmiles, "amu-confirm-1")
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))

    line = one_line_error(local("erase", "--user", "amu-confirm-1"))

    assert line.endswith("hub: not confirmed: nothing was erased")
    assert multideletes(appsmiles) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert local("erase", "--user", "amu-confirm-1").status == 0
    assert "amu-confirm-1" not in appsmiles.users


def test_no_answer_to_the_confirmation_erases_nothing(local, appsmiles, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))

    line = one_line_error(local("erase", "--user", "amu-confirm-2"))

    assert "pass --yes in scripts" in line
    assert multideletes(appsmiles) == 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "hub: give at least one of --email, --msisdn, --user"),
        (("--email", "not-an-address"), "email: must be an e-mail address such as name@example.org (email_syntax)"),
        (("--msisdn", "12"), "msisdn: must be a mobile number in msisdn form"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(local, appsmiles, args, expected):
    outcome = local("erase", *args, "--yes")

    assert outcome.status == 2
    assert expected in one_line_error(outcome)
    assert multideletes(appsmiles) == 0


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        ("status", "once app's miles is back"),
        ("401", "once app's miles' refusal is resolved"),
    ],
)
def test_app_s_miles_down_erases_locally_and_says_run_again(live, local, appsmiles, failure, expected):
    seed(live, appsmiles, "amu-down-1", msisdn="4511229999")
    break_multidelete(appsmiles, failure)

    outcome = local("erase", "--msisdn", "4511229999", "--user", "amu-down-1", "--yes")

    line = one_line_error(outcome)
    assert outcome.status == 1
    assert "erased from the hub's tables, not at app's miles" in line
    assert expected in line
    assert rows(outcome)["DonationsTable"][0] == "1"


def test_no_running_stack_is_one_line(hub):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    line = one_line_error(hub("--url", f"http://127.0.0.1:{port}", "erase", "--user", "amu-1", "--yes"))

    assert "no local stack answers" in line
