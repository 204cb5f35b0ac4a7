"""`hub partners check`: one harmless call per partner, judged against the partner's profile, read-only."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import click
from botocore.exceptions import ClientError

from hub_cli import ui
from hub_cli.errors import CliError
from hub_cli.settings import Settings, pass_settings
from hub_cli.target import FUNCTION_TYPES, Target
from hub_local.gateway import STACK_PATH

# A check waits this long per call: a partner slower than that is reported, not waited for.
CHECK_TIMEOUT_SECONDS: Final = 10.0


@dataclass(frozen=True)
class Outcome:
    partner: str
    call: str
    ok: bool
    detail: str  # what was seen, or the assumption that failed (naming the setting where one explains it)


@dataclass(frozen=True)
class PartnerCheck:
    """One partner: the variable that tells which function talks to it, its secret's variable, its call."""

    partner: str
    base_url_variable: str
    secret_variable: str
    call: str
    run: Callable[[Mapping[str, str], Callable[[], str]], str]


def _umbrella(env: Mapping[str, str], key: Callable[[], str]) -> str:
    from partners.http import RetryPolicy, Timeouts  # noqa: PLC0415 - functions/ and the layer join sys.path in main
    from partners.profiles import UmbrellaProfile  # noqa: PLC0415
    from partners.umbrella import UmbrellaClient  # noqa: PLC0415

    profile = UmbrellaProfile.from_json(env.get("UMBRELLA_PROFILE"))
    client = UmbrellaClient(
        env["UMBRELLA_BASE_URL"], key, timeouts=_timeouts(Timeouts), retry=RetryPolicy(max_attempts=1),
        **profile.client_options(),
    )  # fmt: skip
    services = client.list_services()
    if not services:
        return _fail("the service list is empty: no route to create campaigns on (check the Umbrella account)")
    return f"{len(services)} service(s), {sum(len(s.routes) for s in services)} route(s)"


def _mlm(env: Mapping[str, str], token: Callable[[], str]) -> str:
    from partners.http import RetryPolicy, Timeouts  # noqa: PLC0415
    from partners.mlm import MlmClient  # noqa: PLC0415
    from partners.profiles import MlmProfile  # noqa: PLC0415

    profile = MlmProfile.from_json(env.get("MLM_PROFILE"))
    client = MlmClient(
        env["MLM_BASE_URL"], token, timeouts=_timeouts(Timeouts), retry=RetryPolicy(max_attempts=1),
        **profile.client_options(),
    )  # fmt: skip
    types = client.licence_types()
    return f"{len(types)} licence type(s)"


def _appsmiles(env: Mapping[str, str], partner_secret: Callable[[], str]) -> str:
    from partners.appsmiles import AppsMilesClient  # noqa: PLC0415
    from partners.appsmiles_transport import jwt_expiry, reset_tokens  # noqa: PLC0415
    from partners.http import RetryPolicy, Timeouts  # noqa: PLC0415
    from partners.profiles import AppsMilesProfile  # noqa: PLC0415

    profile = AppsMilesProfile.from_json(env.get("APPSMILES_PROFILE"))
    for variable in ("APPSMILES_APP_ID", "APPSMILES_PARTNER_ID"):
        if not env.get(variable):
            return _fail(f"{variable} is not set: app's miles gives it (no default)")
    client = AppsMilesClient(
        env["APPSMILES_BASE_URL"], env["APPSMILES_APP_ID"], env["APPSMILES_PARTNER_ID"], partner_secret,
        timeouts=_timeouts(Timeouts), retry=RetryPolicy(max_attempts=1), **profile.client_options(),
    )  # fmt: skip
    reset_tokens()  # the check is of auth/token itself: never a token cached by an earlier call of this process
    token = client.token()
    expiry = jwt_expiry(token)
    # A token is only half of auth: partner/getprog (a read) shows it is accepted where the profile puts it.
    program = client.get_prog()
    return (
        "a partner token"
        + ("" if expiry is None else " (a JWT with exp)")
        + f", a programme of {len(program)} field(s)"
    )


def _miimosa(env: Mapping[str, str], key: Callable[[], str]) -> str:
    from partners.http import RetryPolicy, Timeouts  # noqa: PLC0415
    from partners.miimosa import MiimosaClient  # noqa: PLC0415
    from partners.profiles import MiimosaProfile  # noqa: PLC0415

    profile = MiimosaProfile.from_json(env.get("MIIMOSA_PROFILE"))
    client = MiimosaClient(
        env["MIIMOSA_BASE_URL"], key, timeouts=_timeouts(Timeouts), retry=RetryPolicy(max_attempts=1), max_pages=1,
        **profile.client_options(),
    )  # fmt: skip
    page = client.list_projects()
    return f"{len(page.projects)} project(s) on the first page"


CHECKS: Final = (
    PartnerCheck("umbrella", "UMBRELLA_BASE_URL", "UMBRELLA_API_KEY_PARAM", "GET /public/v1/campaign", _umbrella),
    PartnerCheck("mlm", "MLM_BASE_URL", "MLM_API_TOKEN_PARAM", "GET /licencestypes", _mlm),
    PartnerCheck(
        "appsmiles",
        "APPSMILES_BASE_URL",
        "APPSMILES_PARTNER_SECRET_PARAM",
        "POST auth/token, partner/getprog",
        _appsmiles,
    ),
    PartnerCheck("miimosa", "MIIMOSA_BASE_URL", "MIIMOSA_API_KEY_PARAM", "GET /projects", _miimosa),
)


class _Failed(Exception):
    """A check's own finding (not a partner error): the detail is the assumption that failed."""


def _fail(detail: str) -> str:
    raise _Failed(detail)


def _timeouts(kind: Any) -> Any:
    return kind(connect=CHECK_TIMEOUT_SECONDS / 2, read=CHECK_TIMEOUT_SECONDS)


@click.group("partners")
def command() -> None:
    """The partners a stage talks to, as its functions are configured."""


@command.command(
    "check",
    epilog="Exit status: 0 when every partner answered as its profile says, 1 when one did not.",
)
@click.option("--partner", "only", multiple=True, type=click.Choice([c.partner for c in CHECKS]), help="Only these.")
@pass_settings
def check(settings: Settings, only: tuple[str, ...]) -> int:
    """Read each partner's secret, make one harmless call and check status, shape and auth against the profile.

    Umbrella: the service list; Pimenko: the licence types; app's miles: auth/token (then partner/getprog, a read,
    to see the token accepted); MiiMOSA: GET /projects. The
    settings are the deployed functions' own (their environment: base URL, <PARTNER>_PROFILE), the secrets those
    SSM parameters hold. Nothing is created or changed at any partner.
    """
    target = settings.target()
    environments = _function_environments(target, settings.url)
    outcomes = [_check_one(target, check, environments) for check in CHECKS if not only or check.partner in only]
    table = ui.table(f"Partners of {target.label}", "partner", "call", "result", "detail")
    for outcome in outcomes:
        table.add_row(outcome.partner, outcome.call, "ok" if outcome.ok else "FAILED", outcome.detail)
    ui.out().print(table)
    return 0 if all(outcome.ok for outcome in outcomes) else 1


def _check_one(target: Target, check: PartnerCheck, environments: Mapping[str, Mapping[str, str]]) -> Outcome:
    env = next((env for env in environments.values() if env.get(check.base_url_variable)), None)
    if env is None:
        return Outcome(check.partner, check.call, False, f"no function has {check.base_url_variable}")
    try:
        detail = check.run(env, lambda: _secret(target, env, check.secret_variable))
    except Exception as failure:  # every failure is a row of the table, classified (or re-raised) below
        return Outcome(check.partner, check.call, False, _failure(failure))
    return Outcome(check.partner, check.call, True, detail)


def _failure(failure: Exception) -> str:
    """The assumption that failed; adapters name the profile setting that could explain it in their message."""
    from hub_core.config import ConfigError  # noqa: PLC0415
    from partners.errors import (  # noqa: PLC0415
        PartnerAuthError,
        PartnerBadResponse,
        PartnerError,
        PartnerNotFound,
        PartnerRejected,
    )
    from partners.profiles import ProfileError  # noqa: PLC0415

    if isinstance(failure, _Failed):
        return str(failure)
    if isinstance(failure, ProfileError | ConfigError):
        return f"settings: {failure}"
    if not isinstance(failure, PartnerError):
        raise failure
    kinds: tuple[tuple[type[PartnerError], str], ...] = (
        (PartnerAuthError, "auth refused"),
        (PartnerBadResponse, "unexpected answer"),
        (PartnerNotFound, "not found (check the base URL)"),
        (PartnerRejected, "refused"),
    )
    kind = next((label for error_type, label in kinds if isinstance(failure, error_type)), "unavailable")
    status = "" if failure.status is None else f" (HTTP {failure.status})"
    return f"{kind}{status}: {failure.message}"


def _secret(target: Target, env: Mapping[str, str], variable: str) -> str:
    name = env.get(variable)
    if not name:
        raise _Failed(f"{variable} is not set: it must name the partner's SSM parameter")
    try:
        value = target.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "?")
        raise _Failed(f"the secret {name} cannot be read ({code}): hub secrets set …") from None
    if not isinstance(value, str) or not value:
        raise _Failed(f"the secret {name} is empty: hub secrets set …")
    return value


def _function_environments(target: Target, local_url: str) -> dict[str, dict[str, str]]:
    """Each function's variables: GetFunctionConfiguration on AWS, the stack's description locally."""
    if target.local:
        # The local stack describes its functions' variables beside its resources (GET /_local/stack).
        document = _local_document(local_url)
        environments = document.get("functionEnvironments")
        if not isinstance(environments, dict):
            raise CliError("the local stack does not describe its functions' settings: restart `make run`")
        return {name: dict(env) for name, env in environments.items()}
    client = target.client("lambda")
    return {
        function.logical_id: client.get_function_configuration(FunctionName=function.physical_id)
        .get("Environment", {})
        .get("Variables", {})
        for function in target.of_type(*FUNCTION_TYPES)
    }


def _local_document(gateway_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(gateway_url.rstrip("/") + STACK_PATH, timeout=10) as response:  # noqa: S310 - loopback
        document = json.loads(response.read())
    if not isinstance(document, dict):
        raise CliError("the local stack's description is not a JSON object")
    return document
