"""Fuzz every route of the committed OpenAPI document through the local gateway: no 5xx, every 4xx a JSON problem.

Schemathesis generates requests from `functions/api_docs/openapi.json` (positive cases that follow the document and
negative ones that break it) and this module sends them to a `LocalStack` on loopback, partner sandboxes behind it.
Generation is deterministic (hypothesis `derandomize`, no example database) and bounded (`max_examples` per operation
and mode, no shrinking); every request is counted and the total is asserted.

What every answer must be:
- never a 5xx;
- a 4xx is `application/json` with a string `error` and a string `message`;
- a 400 or 422 also lists `problems`, each naming a `field` and a `rule` - except when the partner refused the request
  as a whole (`rejected_by_*`: the partner's message names the problem, there is no field of ours to point at);
- 401, 403, 404, 405, 409, 413 and 415 are about the request as a whole (who calls, what exists, its size or type):
  `error` and `message` name the problem; their `problems` are optional and, when present, checked like above;
- a path that matches no route at all (an empty path segment) gets API Gateway's own fixed 404
  `{"message": "Not Found"}`, which no function can change; it is accepted only when the route table agrees.

AWS_IAM routes are fuzzed like the others: the local gateway treats every caller as signed. The donation callback is
fuzzed as an anonymous caller (only 401/403 may come back) and, for a share of the cases, with the valid token of a
real campaign, so that its payload parsing is fuzzed too. The manage-token routes likewise get a share of cases with
the valid manage token of a real campaign.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from requests.adapters import HTTPAdapter
from schemathesis import GenerationMode

from hub_local.gateway import NOT_FOUND
from hub_local.httpapi import match_route
from hub_local.openapi import DOCUMENT_PATH
from hub_local.stack import LocalStack
from tests.conftest import ROOT, manage_token_from_sms
from tests.integration.conftest import (
    CANARY_MSISDN,
    FUNCTION_OVERRIDES,
    MIIMOSA_KEY,
    MLM_TOKEN,
    UMBRELLA_KEY,
)

pytestmark = pytest.mark.e2e

SCHEMA = schemathesis.openapi.from_path(str(ROOT / DOCUMENT_PATH))
OPERATIONS = {operation.label: operation for operation in (result.ok() for result in SCHEMA.get_all_operations())}
CALLBACK_WITH_TOKEN = "/donations/callback/{serviceId}/{route}/{donationCode}/{token}"
CAMPAIGN = "/campaigns/{serviceId}/{route}/{donationCode}"

# Examples per operation and generation mode. Operations without inputs exhaust their few distinct cases early.
EXAMPLES = 70
# The share of callback and manage-token cases sent with a real campaign's valid token.
AUTHORISED_EXAMPLES = 60
MIN_REQUESTS = 2_000
WHOLE_REQUEST_STATUSES = frozenset({401, 403, 404, 405, 409, 413, 415})
PROBLEM_STATUSES = frozenset({400, 422})


@dataclass
class FuzzRecord:
    """What the fuzz sent and what came back, across the module's tests."""

    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    finished: set[str] = field(default_factory=set)


RECORD = FuzzRecord()


class LoopbackOnly(HTTPAdapter):
    """The fuzz's HTTP transport: anything but 127.0.0.1 is refused before a socket is opened."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        host = urlsplit(request.url or "").hostname
        if host != "127.0.0.1":
            raise AssertionError(f"the fuzz may only call 127.0.0.1, not {host}")
        return super().send(request, *args, **kwargs)


@pytest.fixture(scope="module")
def live() -> Iterator[LocalStack]:
    with LocalStack(
        ROOT / "template.yaml",
        gateway_port=0,
        pump_queues=False,
        environ={"MIIMOSA_API_KEY": MIIMOSA_KEY, "UMBRELLA_API_KEY": UMBRELLA_KEY, "MLM_API_TOKEN": MLM_TOKEN},
        function_overrides=FUNCTION_OVERRIDES,
        async_retry_seconds=0.05,
    ) as stack:
        assert stack.gateway_url is not None
        assert urlsplit(stack.gateway_url).hostname == "127.0.0.1"
        yield stack


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.trust_env = False  # no proxy from the environment: loopback only
        adapter = LoopbackOnly()
        http.mount("http://", adapter)
        http.mount("https://", adapter)
        yield http


@dataclass(frozen=True)
class Campaign:
    service_id: str
    route: str
    code: str
    manage_token: str
    callback_token: str


@pytest.fixture(scope="module")
def campaign(live: LocalStack, session: requests.Session) -> Campaign:
    """A real campaign at Umbrella's sandbox, with its manage token and its callback token."""
    fields = {
        "serviceId": 1,
        "route": "hjerte",
        "donationCode": "fuzz42",
        "amount": 5000,
        "campaignName": "Annas løb",
        "confirmMsisdn": CANARY_MSISDN,
    }
    created = session.post(f"{live.gateway_url}/campaigns", json=fields, timeout=10)
    assert created.status_code == 201, created.text
    # The callback token is in the callbackUrl Umbrella was given (the hub keeps only its hash).
    [at_umbrella] = [c for c in live.sandboxes["umbrella"].campaigns if c["donationCode"] == fields["donationCode"]]
    token = at_umbrella["callbackUrl"].rsplit("/", 1)[1]
    return Campaign("1", "hjerte", "fuzz42", manage_token_from_sms(live.sandboxes["umbrella"], CANARY_MSISDN), token)


# --------------------------------------------------------------------------------------------------- checks


def problems_of(status: int, body: dict[str, Any]) -> list[str]:
    """What is wrong with a 4xx body under the rules in the module's docstring (empty when nothing)."""
    wrong: list[str] = []
    if not isinstance(body.get("error"), str) or not body["error"]:
        wrong.append("no `error` string")
    if not isinstance(body.get("message"), str) or not body["message"]:
        wrong.append("no `message` string")
    problems = body.get("problems")
    needs_problems = status in PROBLEM_STATUSES and not str(body.get("error", "")).startswith("rejected_by_")
    if problems is None:
        if needs_problems:
            wrong.append("no `problems`")
        elif status not in WHOLE_REQUEST_STATUSES | PROBLEM_STATUSES:
            wrong.append(f"a {status} nobody decided on")
        return wrong
    if not isinstance(problems, list) or not problems:
        return [*wrong, "`problems` is not a non-empty list"]
    for problem in problems:
        if not isinstance(problem, dict) or not all(
            isinstance(problem.get(key), str) and problem[key] for key in ("field", "rule")
        ):
            wrong.append(f"a problem without field and rule: {problem!r}")
    return wrong


def verdict(response: Any, method: str) -> str | None:  # noqa: PLR0911 - one return per rule, in order
    """None when the answer is acceptable, else why not."""
    status = response.status_code
    if status >= 500:
        return f"server error {status}: {response.text_lossy()[:300]}"
    if status < 400:
        return None
    path = urlsplit(response.request.url or "").path
    if match_route(LIVE_ROUTES, method, path) is None:
        # API Gateway's own answer for a path no route matches; no function is involved.
        if status == 404 and response.content == NOT_FOUND:
            return None
        return f"unmatched path answered {status} {response.text_lossy()[:200]}"
    content_type = response.headers.get("content-type", [""])[0]
    if not content_type.startswith("application/json"):
        return f"{status} with Content-Type {content_type!r}"
    try:
        body = response.json()
    except ValueError:
        return f"{status} with a body that is not JSON: {response.text_lossy()[:200]!r}"
    if not isinstance(body, dict):
        return f"{status} with a JSON body that is not an object"
    wrong = problems_of(status, body)
    return f"{status} {body.get('error')}: {'; '.join(wrong)}" if wrong else None


LIVE_ROUTES: list[Any] = []


# ---------------------------------------------------------------------------------------------------- fuzz


def run_fuzz(
    live: LocalStack,
    session: requests.Session,
    operation: Any,
    *,
    mode: GenerationMode,
    examples: int,
    tag: str,
    expect: frozenset[int] | None = None,
    **fixed: Any,
) -> None:
    """Send `examples` generated cases of `operation`; fail with every bad answer seen (not only the first)."""
    if not LIVE_ROUTES:
        LIVE_ROUTES.extend(live.template.http_routes)
    failures: Counter[str] = Counter()
    examples_of: dict[str, str] = {}

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode, **fixed), data=st.data())
    def fuzz(case: Any, data: Any) -> None:
        del data
        try:
            response = case.call(base_url=live.gateway_url, session=session, timeout=15)
        except (requests.exceptions.InvalidHeader, ValueError, UnicodeError):
            return  # a case requests itself cannot send (a header with a newline...): nothing reached the API
        RECORD.requests[tag] += 1
        RECORD.statuses[(tag, response.status_code)] += 1
        wrong = verdict(response, case.method)
        if wrong is None and expect is not None and response.status_code not in expect:
            wrong = f"{response.status_code}, expected one of {sorted(expect)}"
        if wrong is not None:
            failures[wrong] += 1
            examples_of.setdefault(wrong, f"{case.method} {urlsplit(response.request.url or '').path[:160]}")

    fuzz()
    report = [f"{count}x {wrong}  (e.g. {examples_of[wrong]})" for wrong, count in failures.most_common(10)]
    assert not failures, f"{tag}: {sum(failures.values())} bad answers:\n" + "\n".join(report)


def breakable(operation: Any) -> bool:
    """Whether negative cases exist: a query, header or body can break the document; a path string cannot."""
    return bool(operation.query or operation.headers or operation.body)


FUZZ_RUNS = [
    (label, mode)
    for label in sorted(OPERATIONS)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or breakable(OPERATIONS[label])
]


@pytest.mark.parametrize(("label", "mode"), FUZZ_RUNS, ids=[f"{mode}-{label}" for label, mode in FUZZ_RUNS])
def test_every_route_answers_json_and_never_5xx(live, session, campaign, label, mode):
    operation = OPERATIONS[label]
    expect = None
    if operation.path.startswith("/donations/callback/"):
        # Without the campaign's token a callback is refused, whatever it carries.
        expect = frozenset({401, 403})
    run_fuzz(live, session, operation, mode=mode, examples=EXAMPLES, tag=f"{label} {mode}", expect=expect)
    RECORD.finished.add(f"{label} {mode}")


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_callback_with_a_valid_token_parses_what_it_is_sent(live, session, campaign, method):
    operation = OPERATIONS[f"{method} {CALLBACK_WITH_TOKEN}"]
    path = {
        "serviceId": campaign.service_id,
        "route": campaign.route,
        "donationCode": campaign.code,
        "token": campaign.callback_token,
    }
    tag = f"{method} {CALLBACK_WITH_TOKEN} with the campaign's token"
    run_fuzz(
        live,
        session,
        operation,
        mode=GenerationMode.POSITIVE,
        examples=AUTHORISED_EXAMPLES,
        tag=tag,
        path_parameters=path,
    )
    # A valid token gets past 401/403: what is left is parsing the donation it carries.
    statuses = {status for (seen, status) in RECORD.statuses if seen == tag}
    assert not statuses & {401, 403}
    if method == "POST":  # its body is documented, so some generated donations are valid and recorded
        assert 200 in statuses, statuses
    RECORD.finished.add(tag)


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_the_manage_routes_with_a_valid_token(live, session, campaign, method):
    label = f"{method} {CAMPAIGN}" if method == "PUT" else f"GET {CAMPAIGN}/donations"
    path = {"serviceId": campaign.service_id, "route": campaign.route, "donationCode": campaign.code}
    tag = f"{label} with the campaign's manage token"
    run_fuzz(
        live,
        session,
        OPERATIONS[label],
        mode=GenerationMode.POSITIVE,
        examples=AUTHORISED_EXAMPLES,
        tag=tag,
        path_parameters=path,
        headers={"Authorization": f"Bearer {campaign.manage_token}"},
    )
    RECORD.finished.add(tag)


def test_the_fuzz_sent_at_least_2000_requests_across_every_route():
    expected = {f"{label} {mode}" for label, mode in FUZZ_RUNS}
    if not expected <= RECORD.finished:
        pytest.skip("only part of the fuzz ran (a selection); the count is checked on a full run")
    total = sum(RECORD.requests.values())
    per_route = Counter[str]()
    for tag, count in RECORD.requests.items():
        per_route[" ".join(tag.split(" ")[:2])] += count
    print(f"\nfuzz: {total} requests; per route: " + json.dumps(dict(sorted(per_route.items())), indent=1))
    assert total >= MIN_REQUESTS
    assert set(per_route) == set(OPERATIONS), "a route got no request"
