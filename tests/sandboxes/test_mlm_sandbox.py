"""The Pimenko MLM sandbox behaves like the partner's documentation says, and fails on demand as asked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from requests import Response

from sandboxes.mlm import (
    DEFAULT_API_TOKEN,
    INTERNAL_ERROR,
    INVALID_DATA,
    KEY_PATTERN,
    LICENCE_NOT_FOUND,
    MAX_SITES_REACHED,
    SEED_LICENCE_TYPES,
    SEED_PRODUCTS,
    TIMESTAMP_FORMAT,
    LicenceType,
    MlmSandbox,
    Product,
    expiry_after,
    main,
    new_licence_key,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-mlm-token"
TIMEOUT = 5.0
SITE = "https://moodle.example.org"
VALID = {"licence_type": 1, "product_id": 2, "url": SITE}
LICENCE_FIELDS = {"id", "product_id", "key", "status", "expires_at", "licence_type_id"}
DOC_KEY = "550E8400-E29B-41D4-A716-446655440000-2Q7x9VxvR3m9y5m1n8W4k1qQ9aXhY2Z0mJfP8cT1eUo"
# A value no rule message could contain by chance: if it shows up in an answer, the answer echoes input.
CANARY = "zz-canary-9b2e"


@pytest.fixture(scope="module")
def running() -> Iterator[MlmSandbox]:
    with MlmSandbox(api_token=TOKEN) as server:
        yield server


@pytest.fixture
def sandbox(running: MlmSandbox) -> MlmSandbox:
    running.reset()
    return running


def call(server: MlmSandbox, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> Response:
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"} if auth else {}
    headers.update(kwargs.pop("headers", {}))
    timeout = kwargs.pop("timeout", TIMEOUT)
    return requests.request(method, f"{server.url}{path}", headers=headers, timeout=timeout, **kwargs)


def create(server: MlmSandbox, **changes: Any) -> Response:
    return call(server, "POST", "/licence/create", json=VALID | changes)


def add_site(server: MlmSandbox, key: str, url: str = "https://other.example.org") -> Response:
    return call(server, "POST", f"/licences/{key}/sites", json={"url": url})


# --- authentication ---------------------------------------------------------------------------------------

ROUTES = [
    ("GET", "/licences"),
    ("POST", "/licence/create"),
    ("POST", f"/licences/{DOC_KEY}/sites"),
    ("GET", "/licencestypes"),
    ("GET", "/products"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", TOKEN, f"Token {TOKEN}", f"Bearer {TOKEN}x"])
def test_every_route_needs_the_bearer_token(
    sandbox: MlmSandbox, method: str, path: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    response = call(sandbox, method, path, auth=False, headers=headers, json=VALID)

    assert response.status_code == 401
    assert response.json() == {"message": "Unauthenticated."}
    assert sandbox.licences == []


def test_default_token() -> None:
    with MlmSandbox() as server:
        response = requests.get(
            f"{server.url}/products", headers={"Authorization": f"Bearer {DEFAULT_API_TOKEN}"}, timeout=TIMEOUT
        )

    assert response.status_code == 200


# --- catalogue --------------------------------------------------------------------------------------------


def test_licence_types_and_products_as_documented(sandbox: MlmSandbox) -> None:
    types = call(sandbox, "GET", "/licencestypes")
    products = call(sandbox, "GET", "/products")

    assert types.status_code == products.status_code == 200
    assert types.json() == [{"id": t.id, "name": t.name, "max_sites": t.max_sites} for t in SEED_LICENCE_TYPES]
    assert {t["name"]: t["max_sites"] for t in types.json()} == {"Standard": 5, "Solo": 1, "Campus": 20}
    assert all(set(p) == {"id", "name", "slug", "description", "created_at", "updated_at"} for p in products.json())
    assert [p["id"] for p in products.json()] == [p.id for p in SEED_PRODUCTS]
    for product in SEED_PRODUCTS:
        assert datetime.strptime(product.created_at, TIMESTAMP_FORMAT) <= datetime.strptime(
            product.updated_at, TIMESTAMP_FORMAT
        )


def test_a_catalogue_of_ones_own() -> None:
    kinds = [LicenceType(7, "Trio", 3)]
    catalogue = [Product(9, "Quiz", "quiz", "Un quiz", "2024-01-01T00:00:00.000000Z", "2024-01-01T00:00:00.000000Z")]
    with MlmSandbox(api_token=TOKEN, licence_types=kinds, products=catalogue) as server:
        types = call(server, "GET", "/licencestypes").json()
        created = create(server, licence_type=7, product_id=9)
        refused = create(server)

    assert types == [{"id": 7, "name": "Trio", "max_sites": 3}]
    assert created.status_code == 201
    assert refused.status_code == 422


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"licence_types": [LicenceType(1, "A", 1), LicenceType(1, "B", 2)]}, "ids must be unique"),
        ({"products": [SEED_PRODUCTS[0], SEED_PRODUCTS[0]]}, "ids must be unique"),
        ({"validity_days": -1}, "validity_days must be >= 0"),
    ],
)
def test_constructor_arguments_are_checked(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        MlmSandbox(**options)


# --- licences ---------------------------------------------------------------------------------------------


def test_a_licence_is_created_with_its_first_site(sandbox: MlmSandbox) -> None:
    before = expiry_after(365)
    response = create(sandbox)
    after = expiry_after(365)

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"licence", "site"}
    licence = body["licence"]
    assert set(licence) == LICENCE_FIELDS
    assert (licence["id"], licence["product_id"], licence["licence_type_id"]) == (1, 2, 1)
    assert licence["status"] == "active"
    assert KEY_PATTERN.fullmatch(licence["key"])
    assert licence["expires_at"] in {before, after}
    assert body["site"] == {"id": 1, "url": SITE}
    assert sandbox.licences == [{**licence, "sites": [{"id": 1, "licence_id": 1, "url": SITE}]}]


def test_keys_have_the_documented_form() -> None:
    keys = {new_licence_key() for _ in range(200)}

    assert KEY_PATTERN.fullmatch(DOC_KEY)
    assert len(keys) == 200
    assert all(KEY_PATTERN.fullmatch(key) for key in keys)
    assert all(len(key) == len(DOC_KEY) for key in keys)


def test_expiry_is_midnight_utc_in_the_documented_format() -> None:
    late_evening = datetime(2026, 6, 1, 23, 59, 59, tzinfo=UTC)
    paris_after_midnight = datetime(2026, 6, 2, 0, 30, tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))

    assert expiry_after(366, late_evening) == "2027-06-02T00:00:00.000000Z"
    assert expiry_after(0, paris_after_midnight) == "2026-06-02T00:00:00.000000Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT00:00:00\.000000Z", expiry_after(365))


def test_validity_days_set_the_expiry() -> None:
    with MlmSandbox(api_token=TOKEN, validity_days=30) as server:
        licence = create(server).json()["licence"]

    expires = datetime.strptime(licence["expires_at"], TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)


def test_ids_grow_and_the_list_shows_licences_without_sites(sandbox: MlmSandbox) -> None:
    first = create(sandbox).json()
    second = create(sandbox, licence_type=2, product_id=3).json()

    listing = call(sandbox, "GET", "/licences")

    assert (first["licence"]["id"], second["licence"]["id"]) == (1, 2)
    assert (first["site"]["id"], second["site"]["id"]) == (1, 2)
    assert first["licence"]["key"] != second["licence"]["key"]
    assert listing.status_code == 200
    assert listing.json() == [first["licence"], second["licence"]]


def test_licences_are_copies(sandbox: MlmSandbox) -> None:
    create(sandbox)
    snapshot = sandbox.licences
    snapshot[0]["status"] = "revoked"
    snapshot[0]["sites"].append({"id": 99})

    assert sandbox.licences[0]["status"] == "active"
    assert len(sandbox.licences[0]["sites"]) == 1


def assert_invalid(response: Response, errors: dict[str, list[str]]) -> None:
    assert response.status_code == 422
    assert response.json() == {"message": INVALID_DATA, "errors": errors}
    assert CANARY not in response.text


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"licence_type": None}, {"licence_type": ["The licence type field is required."]}),
        ({"product_id": ""}, {"product_id": ["The product id field is required."]}),
        ({"licence_type": "1"}, {"licence_type": ["The licence type field must be an integer."]}),
        ({"licence_type": True}, {"licence_type": ["The licence type field must be an integer."]}),
        ({"product_id": 2.0}, {"product_id": ["The product id field must be an integer."]}),
        ({"product_id": [CANARY]}, {"product_id": ["The product id field must be an integer."]}),
        ({"licence_type": 99}, {"licence_type": ["The selected licence type is invalid."]}),
        ({"product_id": 0}, {"product_id": ["The selected product id is invalid."]}),
        ({"url": None}, {"url": ["The url field is required."]}),
        ({"url": "  "}, {"url": ["The url field is required."]}),
        ({"url": f"ftp://{CANARY}.example.org"}, {"url": ["The url field must be a valid URL."]}),
        ({"url": f"{CANARY}.example.org"}, {"url": ["The url field must be a valid URL."]}),
        ({"url": "https://"}, {"url": ["The url field must be a valid URL."]}),
        ({"url": f"https://{CANARY} x.org"}, {"url": ["The url field must be a valid URL."]}),
        ({"url": "https://example.org:99999"}, {"url": ["The url field must be a valid URL."]}),
        ({"url": 42}, {"url": ["The url field must be a valid URL."]}),
        ({"url": "https://a.org/" + "x" * 250}, {"url": ["The url field must not be greater than 255 characters."]}),
    ],
)
def test_create_validates_like_laravel(
    sandbox: MlmSandbox, changes: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    assert_invalid(create(sandbox, **changes), errors)
    assert sandbox.licences == []


@pytest.mark.parametrize("body", [b"", b"[]", b"null", b"{nope", b'"licence"'])
def test_create_without_an_object_reports_every_field(sandbox: MlmSandbox, body: bytes) -> None:
    response = call(sandbox, "POST", "/licence/create", data=body, headers={"Content-Type": "application/json"})

    assert_invalid(
        response,
        {
            "licence_type": ["The licence type field is required."],
            "product_id": ["The product id field is required."],
            "url": ["The url field is required."],
        },
    )


# --- sites ------------------------------------------------------------------------------------------------


def test_a_site_is_added_to_a_licence(sandbox: MlmSandbox) -> None:
    licence = create(sandbox).json()["licence"]
    create(sandbox)  # site ids are global: this one takes id 2

    response = add_site(sandbox, licence["key"], "http://second.example.org/moodle")

    assert response.status_code == 201
    assert response.json() == {"site": {"id": 3, "licence_id": 1, "url": "http://second.example.org/moodle"}}
    assert [s["url"] for s in sandbox.licences[0]["sites"]] == [SITE, "http://second.example.org/moodle"]


def test_a_percent_encoded_key_is_the_same_key(sandbox: MlmSandbox) -> None:
    key = create(sandbox).json()["licence"]["key"]

    response = add_site(sandbox, key.replace("-", "%2D"))

    assert response.status_code == 201


@pytest.mark.parametrize("key", [DOC_KEY, "ABC123", "x"])
def test_an_unknown_key_is_404(sandbox: MlmSandbox, key: str) -> None:
    create(sandbox)

    response = add_site(sandbox, key)

    assert response.status_code == 404
    assert response.json() == {"message": LICENCE_NOT_FOUND}


@pytest.mark.parametrize(("licence_type", "max_sites"), [(2, 1), (1, 5)])
def test_max_sites_is_enforced(sandbox: MlmSandbox, licence_type: int, max_sites: int) -> None:
    key = create(sandbox, licence_type=licence_type).json()["licence"]["key"]

    added = [add_site(sandbox, key, f"https://site{n}.example.org").status_code for n in range(max_sites - 1)]
    refused = add_site(sandbox, key, "https://one-too-many.example.org")

    assert added == [201] * (max_sites - 1)
    assert refused.status_code == 422
    assert refused.json() == {"message": MAX_SITES_REACHED}
    assert len(sandbox.licences[0]["sites"]) == max_sites


def test_an_invalid_site_url(sandbox: MlmSandbox) -> None:
    key = create(sandbox).json()["licence"]["key"]

    assert_invalid(add_site(sandbox, key, f"mailto:{CANARY}"), {"url": ["The url field must be a valid URL."]})
    assert len(sandbox.licences[0]["sites"]) == 1


def test_concurrent_requests_keep_ids_unique_and_the_cap(sandbox: MlmSandbox) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        created = list(pool.map(lambda _: create(sandbox).json()["licence"], range(16)))
    key = created[0]["key"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda n: add_site(sandbox, key, f"https://s{n}.example.org").status_code, range(10)))

    assert sorted(licence["id"] for licence in created) == list(range(1, 17))
    assert len({licence["key"] for licence in created}) == 16
    assert sorted(statuses) == [201] * 4 + [422] * 6
    assert len(next(item for item in sandbox.licences if item["key"] == key)["sites"]) == 5


# --- failures on demand -----------------------------------------------------------------------------------


def test_a_base_fault_strikes_before_the_create(sandbox: MlmSandbox) -> None:
    sandbox.faults.add("status", status=500, count=1)

    response = create(sandbox)

    assert response.status_code == 500
    assert set(response.json()) == {"error"}
    assert sandbox.licences == []


def test_fail_after_commit_stores_the_licence_then_answers_500(sandbox: MlmSandbox) -> None:
    sandbox.fail_after_commit(count=2)

    first, second, third = create(sandbox), create(sandbox), create(sandbox)

    assert (first.status_code, second.status_code, third.status_code) == (500, 500, 201)
    assert first.json() == {"error": INTERNAL_ERROR}
    assert [licence["id"] for licence in sandbox.licences] == [1, 2, 3]


def test_fail_after_commit_can_hang_past_the_client_timeout(sandbox: MlmSandbox) -> None:
    sandbox.fail_after_commit(mode="slow", delay=0.5)

    with pytest.raises(requests.ReadTimeout):
        call(sandbox, "POST", "/licence/create", json=VALID, timeout=(1, 0.1))

    assert len(sandbox.licences) == 1  # stored before the hang
    assert create(sandbox).status_code == 201


def test_fail_after_commit_on_site_additions_only(sandbox: MlmSandbox) -> None:
    sandbox.fail_after_commit(status=503, path_prefix="/licences/")
    key = create(sandbox).json()["licence"]["key"]

    response = add_site(sandbox, key)

    assert response.status_code == 503
    assert len(sandbox.licences[0]["sites"]) == 2


def test_a_refused_create_does_not_consume_a_commit_fault(sandbox: MlmSandbox) -> None:
    sandbox.fail_after_commit()

    assert create(sandbox, product_id=99).status_code == 422
    assert create(sandbox).status_code == 500


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"mode": "drop"}, "mode must be one of slow, status"),
        ({"count": 0}, "count must be a positive integer"),
        ({"count": True}, "count must be a positive integer"),
        ({"status": 200}, "status must be an integer from 400 to 599"),
        ({"mode": "slow"}, "a slow fault needs a delay"),
        ({"mode": "slow", "delay": -1}, "delay must be a number >= 0"),
        ({"path_prefix": "licences"}, "path_prefix must be a string starting with /"),
    ],
)
def test_fail_after_commit_arguments_are_checked(sandbox: MlmSandbox, kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        sandbox.fail_after_commit(**kwargs)

    assert create(sandbox).status_code == 201


def test_fail_after_commit_over_http(sandbox: MlmSandbox) -> None:
    added = call(sandbox, "POST", "/_sandbox/fail-after-commit", auth=False, json={"status": 502, "count": 1})

    assert added.status_code == 201
    assert added.json() == {"mode": "status", "status": 502, "delay": None, "path_prefix": None, "remaining": 1}
    assert create(sandbox).status_code == 502
    assert create(sandbox).status_code == 201
    assert [r.path for r in sandbox.requests] == ["/licence/create", "/licence/create"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (["status"], "body must be a JSON object"),
        ({"mode": "status", "colour": "red"}, "unknown fields: ['colour']"),
        ({"mode": "slow"}, "a slow fault needs a delay"),
    ],
)
def test_invalid_fail_after_commit_over_http(sandbox: MlmSandbox, body: Any, message: str) -> None:
    response = call(sandbox, "POST", "/_sandbox/fail-after-commit", auth=False, json=body)

    assert response.status_code == 400
    assert response.json() == {"error": "invalid fault", "message": message}


def test_reset_forgets_licences_ids_and_commit_faults(sandbox: MlmSandbox) -> None:
    create(sandbox)
    sandbox.fail_after_commit()

    assert call(sandbox, "POST", "/_sandbox/reset", auth=False).json() == {"reset": True}

    assert (sandbox.licences, sandbox.requests) == ([], [])
    again = create(sandbox)
    assert (again.status_code, again.json()["licence"]["id"]) == (201, 1)


# --- standalone -------------------------------------------------------------------------------------------


def test_main_prints_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    stop = threading.Event()
    stop.set()

    assert main(["--port", "0", "--api-token", "t", "--validity-days", "30"], stop) == 0

    assert capsys.readouterr().out.startswith("http://127.0.0.1:")


def test_python_dash_m_runs_the_sandbox() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "local")}
    command = [sys.executable, "-m", "sandboxes.mlm", "--port", "0", "--api-token", "cli-token"]
    options: dict[str, Any] = {"stdout": subprocess.PIPE, "text": True, "env": env, "cwd": REPO_ROOT}
    with subprocess.Popen(command, **options) as process:  # noqa: S603 - our own interpreter and module
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            headers = {"Authorization": "Bearer cli-token"}
            response = requests.get(f"{url}/licencestypes", headers=headers, timeout=TIMEOUT)
        finally:
            process.terminate()

    assert url.startswith("http://127.0.0.1:")
    assert response.status_code == 200
    assert response.json()[0]["name"] == "Standard"
