"""The AWS_IAM routes' allow-list: role ARNs against assumed-role sessions, user ARNs exactly, empty serves no one."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from hub_core.http_api import RequestRejected
from hub_core.iam_callers import caller_allowed, parse_allow_list, require_allowed_caller, require_configured_caller

SHOP_ROLE = "arn:aws:iam::111122223333:role/integrations/shop-backend"
USER = "arn:aws:iam::111122223333:user/ops"


@pytest.mark.parametrize(
    ("caller", "allowed"),
    [
        ("arn:aws:sts::111122223333:assumed-role/shop-backend/order-17", True),
        (USER, True),
        ("arn:aws:sts::444455556666:assumed-role/shop-backend/order-17", False),  # another account
        ("arn:aws:sts::111122223333:assumed-role/shop-backend-2/x", False),
        ("arn:aws:sts::111122223333:assumed-role/shop/backend/x", False),
        ("arn:aws:iam::111122223333:user/ops2", False),
        ("arn:aws-cn:sts::111122223333:assumed-role/shop-backend/x", False),  # another partition
        ("", False),
    ],
)
def test_callers_against_the_list(caller, allowed):
    assert caller_allowed(caller, [SHOP_ROLE, USER]) is allowed


def test_the_setting_is_a_comma_separated_list():
    assert parse_allow_list(f" {SHOP_ROLE} ,, {USER},") == (SHOP_ROLE, USER)
    assert parse_allow_list("") == ()


def context(user_arn: object) -> dict[str, object]:
    return {"authorizer": {"iam": {"userArn": user_arn, "accountId": "111122223333"}}}


def test_an_allowed_caller_passes_and_others_are_403():
    require_allowed_caller(context(USER), [USER], required=True)
    for refused in (context("arn:aws:iam::111122223333:user/other"), context(None), {"authorizer": {}}, {}):
        with pytest.raises(RequestRejected) as rejected:
            require_allowed_caller(refused, [USER], required=True)
        assert rejected.value.status == 403


def test_an_empty_list_serves_no_one_and_the_check_can_be_turned_off():
    with pytest.raises(RequestRejected):
        require_allowed_caller(context(USER), [], required=True)
    require_allowed_caller({}, [], required=False)


@dataclass(frozen=True)
class Policy:
    iam_caller_arns: str
    require_iam_caller: bool = True


def test_a_function_s_settings_name_the_list_and_whether_it_applies():
    require_configured_caller(context(USER), Policy(f"{SHOP_ROLE},{USER}"))
    with pytest.raises(RequestRejected) as rejected:
        require_configured_caller(context(USER), Policy(SHOP_ROLE))
    assert rejected.value.status == 403
    require_configured_caller({}, Policy("", require_iam_caller=False))
