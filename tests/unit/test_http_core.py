"""The HTTP core's pure parts: Retry-After parsing, backoff bounds, origin checks, message extraction."""

import email.utils
import time

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from partners.errors import PartnerBadResponse
from partners.http import PartnerHttp, RetryPolicy, _never_sent, default_message, parse_retry_after


@pytest.mark.parametrize(("value", "expected"), [("7", 7.0), (None, None), ("", None), ("soon", None)])
def test_retry_after_seconds_and_junk(value, expected):
    assert parse_retry_after(value) == expected


def test_retry_after_http_date_counts_down_from_now():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= parse_retry_after(when) <= 31
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert parse_retry_after(past) == 0.0


def test_backoff_is_jittered_and_capped():
    policy = RetryPolicy(backoff_base=0.5, backoff_max=1.0)
    waits = [policy.backoff(attempt) for attempt in range(1, 8) for _ in range(50)]
    assert all(0 <= wait <= 1.0 for wait in waits)
    assert len({round(w, 6) for w in waits}) > 100  # jitter, not a fixed schedule


def test_links_to_another_origin_are_not_followed():
    http = PartnerHttp("p", "https://api.example.org/v1/")
    assert http.url_for("/leads") == "https://api.example.org/v1/leads"
    assert http.url_for("https://api.example.org/projects?page=2") == "https://api.example.org/projects?page=2"
    with pytest.raises(PartnerBadResponse):
        http.url_for("https://evil.example.net/projects?page=2")


def test_never_sent_recognises_refused_connections_only():
    refused = requests.ConnectionError(MaxRetryError(None, "/", NewConnectionError(None, "refused")))
    assert _never_sent(refused)
    assert _never_sent(requests.ConnectTimeout())
    assert not _never_sent(requests.ReadTimeout())
    assert not _never_sent(requests.ConnectionError("connection reset by peer"))


def _response(status, body: bytes, reason="Bad Request"):
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.reason = reason
    return response


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"message": "max sites reached"}', "max sites reached"),
        (b'{"errors": ["code in use", "bad route"]}', "code in use; bad route"),
        (b'{"errors": {"email": ["is invalid"]}}', "email: is invalid"),
        (b'{"errorCode": 3}', "Bad Request"),
        (b"<html>oops</html>", "Bad Request"),
        (b"[1, 2]", "Bad Request"),
    ],
)
def test_default_message_reads_the_partner_words(body, expected):
    assert default_message(_response(400, body)) == expected
