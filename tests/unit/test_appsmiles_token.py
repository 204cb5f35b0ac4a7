"""The app's miles token's lifetime rules, and the hub_core factory that builds the container's client."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from hub_core.appsmiles import appsmiles_client, appsmiles_settings
from hub_core.caches import reset_all
from hub_core.config import ConfigError
from partners.appsmiles_transport import jwt_expiry, refresh_time
from sandboxes.appsmiles import AppsMilesSandbox
from sandboxes.appsmiles_wire import sign_jwt, verify_jwt
from tests.canaries import APPSMILES_SECRET, CANARY_APPSMILES_USER

SECRET_NAME = "/partner-hub/test/appsmiles/partner-secret"


def _segment(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_jwt_expiry_reads_exp_without_the_key() -> None:
    token = sign_jwt({"exp": 1_900_000_000, "sub": "p"}, b"a key we do not have")
    assert jwt_expiry(token) == 1_900_000_000.0
    assert jwt_expiry(f"h.{_segment({'exp': 12.5})}.s") == 12.5


@pytest.mark.parametrize(
    "token",
    [
        "opaque",
        "a.b",
        f"h.{_segment({'sub': 'p'})}.s",
        f"h.{_segment({'exp': 'soon'})}.s",
        f"h.{_segment({'exp': True})}.s",
        f"h.{_segment([1, 2])}.s",
        "h.!!!not-base64!!!.s",
        f"h.{base64.urlsafe_b64encode(b'not json').decode()}.s",
    ],
)
def test_jwt_expiry_is_none_when_there_is_no_exp_to_read(token: str) -> None:
    assert jwt_expiry(token) is None


@pytest.mark.parametrize(
    ("lifetime", "margin", "refresh_after"),
    [(3600, 60, 3540), (100, 60, 50), (1, 60, 0.5), (0, 60, 0), (120, 0, 120)],
)
def test_refresh_margin_is_at_most_half_the_lifetime(lifetime: float, margin: float, refresh_after: float) -> None:
    assert refresh_time(1000.0, lifetime, margin) == 1000.0 + refresh_after


def test_sandbox_jwt_verification() -> None:
    token = sign_jwt({"exp": 5}, b"k")
    assert verify_jwt(token, b"k") == {"exp": 5}
    assert verify_jwt(token, b"other") is None
    assert verify_jwt("a.b", b"k") is None
    header, payload, _ = token.split(".")
    array = _segment([1])
    signature = hmac.new(b"k", f"{header}.{array}".encode(), hashlib.sha256).digest()
    signed_array = f"{header}.{array}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    assert verify_jwt(signed_array, b"k") is None  # signed, but its claims are not an object
    assert verify_jwt(f"{header}.{payload}.%%%", b"k") is None


# --- hub_core.appsmiles -------------------------------------------------------------------------------------


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[AppsMilesSandbox]:
    for name, value in {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "APPSMILES_APP_ID": "app-9",
        "APPSMILES_PARTNER_ID": "partner-9",
        "APPSMILES_PARTNER_SECRET_PARAM": SECRET_NAME,
        "SECRETS_MAX_AGE_SECONDS": "0",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(), AppsMilesSandbox("app-9", "partner-9", APPSMILES_SECRET) as sandbox:
        boto3.client("ssm").put_parameter(Name=SECRET_NAME, Value=APPSMILES_SECRET, Type="SecureString")
        monkeypatch.setenv("APPSMILES_BASE_URL", sandbox.url)
        yield sandbox


def test_factory_builds_one_client_per_container_from_the_environment(
    environment: AppsMilesSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APPSMILES_PROFILE", '{"lang": "en", "already_recorded_codes": [105, 106]}')
    monkeypatch.setenv("APPSMILES_READ_TIMEOUT", "1.5")
    client = appsmiles_client()
    assert appsmiles_client() is client
    assert (client.app_id, client.partner_id, client.lang) == ("app-9", "partner-9", "en")
    assert client.already_recorded_codes == {105, 106}
    assert client.http.timeouts.read == 1.5
    client.store_action(CANARY_APPSMILES_USER, "LEAD", param1="x")
    assert environment.actions[0]["partnerClientId"] == CANARY_APPSMILES_USER
    assert environment.requests[-1].body_json["lang"] == "en"


def test_reset_all_forgets_the_token_and_a_rotated_secret_is_picked_up(environment: AppsMilesSandbox) -> None:
    appsmiles_client().token()
    reset_all()
    # A fresh container fetches a new token, reading the secret again (here: rotated in SSM and at the partner).
    rotated = "am-PRIVACY-CANARY-rotated-77aa"
    boto3.client("ssm").put_parameter(Name=SECRET_NAME, Value=rotated, Type="SecureString", Overwrite=True)
    environment.partner_secret = rotated
    appsmiles_client().token()
    assert environment.auth_calls == 2
    assert environment.requests[-1].body_json["partnerSecret"] == rotated


def test_defaults_and_settings_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPSMILES_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("APPSMILES_APP_ID", "a")
    monkeypatch.setenv("APPSMILES_PARTNER_ID", "p")
    for name in ("APPSMILES_PROFILE", "APPSMILES_CONNECT_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    profile = appsmiles_settings().appsmiles_profile
    assert (profile.lang, profile.already_recorded_codes, profile.body_encoding) == ("fr", (105,), "json")
    reset_all()
    monkeypatch.setenv("APPSMILES_PROFILE", '{"already_recorded_codes": [105, "many"], "body_encodng": "form"}')
    monkeypatch.setenv("APPSMILES_CONNECT_TIMEOUT", "0")
    monkeypatch.delenv("APPSMILES_APP_ID")
    with pytest.raises(ConfigError) as caught:
        appsmiles_client()
    message = str(caught.value)
    for named in (
        "APPSMILES_APP_ID",
        "APPSMILES_PROFILE.already_recorded_codes.1",
        "APPSMILES_PROFILE.body_encodng",
        "APPSMILES_CONNECT_TIMEOUT",
    ):
        assert named in message


def test_missing_secret_name_is_a_config_error_on_first_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPSMILES_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("APPSMILES_APP_ID", "a")
    monkeypatch.setenv("APPSMILES_PARTNER_ID", "p")
    monkeypatch.delenv("APPSMILES_PARTNER_SECRET_PARAM", raising=False)
    client = appsmiles_client()  # built without reading the secret: cold starts do not touch SSM
    with pytest.raises(ConfigError, match="APPSMILES_PARTNER_SECRET_PARAM is not set"):
        client.token()
