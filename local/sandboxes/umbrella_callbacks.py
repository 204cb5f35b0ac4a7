"""The Umbrella sandbox as the donor's platform calling back: one donation sent to a callback URL, on loopback only."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode, urlsplit, urlunsplit

from sandboxes.umbrella_rules import DonationRefused, PayloadForm

CALLBACK_TIMEOUT_SECONDS: Final = 5.0
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})


def is_loopback_url(url: str) -> bool:
    """True for an http(s) URL whose host is 127.0.0.1, localhost or ::1: the only callbacks the sandbox makes."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # a garbled port raises here
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and host is not None and host.lower() in LOOPBACK_HOSTS


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A callback is answered where it was sent: a redirect could point off loopback, so it is never followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# No proxies (an HTTP(S)_PROXY in the environment must not carry a loopback callback elsewhere), no redirects.
_CALLBACK_OPENER: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def deliver_callback(url: str, donation: Mapping[str, Any], payload_form: PayloadForm) -> dict[str, Any]:
    """Send one donation to a loopback callback URL; the status it answered, or the error type."""
    if not is_loopback_url(url):
        raise DonationRefused("callbackUrl is not on loopback (127.0.0.1, localhost or ::1)")
    fields = {key: str(value) for key, value in donation.items()}
    data: bytes | None
    if payload_form == "query":
        parts = urlsplit(url)
        query = f"{parts.query}&{urlencode(fields)}" if parts.query else urlencode(fields)
        target, data, headers, method = urlunsplit(parts._replace(query=query)), None, {}, "GET"
    elif payload_form == "form":
        target, method = url, "POST"
        data = urlencode(fields).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    else:
        target, method = url, "POST"
        data = json.dumps(dict(donation), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(target, data=data, headers=headers, method=method)  # noqa: S310 - loopback only
    try:
        with _CALLBACK_OPENER.open(request, timeout=CALLBACK_TIMEOUT_SECONDS) as answer:
            return {"status": answer.status}
    except urllib.error.HTTPError as refused:
        refused.close()
        return {"status": refused.code}
    except urllib.error.URLError as failed:
        reason = failed.reason
        return {"status": None, "error": type(reason).__name__ if isinstance(reason, BaseException) else "URLError"}
    except OSError as failed:  # timeouts and resets after the connection was made
        return {"status": None, "error": type(failed).__name__}
