"""Redaction of keys and personal data from URLs and partner messages."""

from partners.redact import MASK, redact_url, scrub_text


def test_sensitive_query_values_are_masked_and_others_kept():
    url = "https://api.example.org/user/pledges?user_email=ann%40example.org&user_birthdate=1990-01-02&page=2"
    redacted = redact_url(url)
    assert "ann" not in redacted
    assert "1990" not in redacted
    assert "page=2" in redacted
    assert redacted.startswith("https://api.example.org/user/pledges?")


def test_apikey_in_query_and_userinfo_in_netloc_are_removed():
    redacted = redact_url("https://user:pw@umbrella.example/campaign/1?apikey=SECRET123&since=5")
    assert "SECRET123" not in redacted
    assert "pw" not in redacted
    assert "since=5" in redacted


def test_scrub_text_masks_emails_digit_runs_tokens_and_known_secrets():
    text = "lead ann.bee@example.org phone +33 6 12 34 56 78 Bearer abcdef123456 key=hunter2-key"
    scrubbed = scrub_text(text, secrets=["hunter2-key"])
    for leaked in ("ann.bee", "12 34", "abcdef123456", "hunter2-key"):
        assert leaked not in scrubbed
    assert scrubbed.count(MASK) >= 4


def test_scrub_text_keeps_short_numbers_and_caps_length():
    assert scrub_text("field 42 is wrong") == "field 42 is wrong"
    long = scrub_text("x" * 1000)
    assert len(long) == 300
    assert long.endswith("…")
