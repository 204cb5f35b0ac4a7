"""Registry of partner sandboxes: which partner, which base-URL variable, which SSM secrets the stack seeds."""

from __future__ import annotations

import importlib
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# Secret suffixes are relative to this path; `{stage}` is the template's Stage parameter.
SECRET_PATH: str = "/partner-hub/{stage}/"


class Sandbox(Protocol):
    """What the stack needs of a partner sandbox: an HTTP server on 127.0.0.1 it can start and stop."""

    bind_host: str  # the address it listens on, set before start()

    @property
    def url(self) -> str: ...

    def start(self) -> object: ...

    def stop(self) -> None: ...


# Given the partner's secret values keyed by SSM suffix, builds a sandbox that expects those very values.
SandboxFactory = Callable[[Mapping[str, str]], Sandbox]


@dataclass(frozen=True)
class PartnerSpec:
    """One partner: `environ[base_url_env]` points the functions at a real/other server instead of a sandbox.

    `name` keys `LocalStack.sandboxes` and `LocalStack.partner_urls`; `secrets` maps an SSM parameter suffix
    (relative to SECRET_PATH) to (env var overriding it, default value). `settings` maps a function environment
    variable that is not a secret (an app id, say) to the sandbox argument that must agree with it, or to "" for
    one the sandbox does not take (the partner's profile: `UMBRELLA_PROFILE=... make run` reaches the functions).
    `<PARTNER>_SANDBOX_MODES` (a JSON object) picks the reading of the document the sandbox plays.
    """

    name: str
    base_url_env: str
    sandbox_factory: SandboxFactory
    secrets: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    settings: Mapping[str, str] = field(default_factory=dict)

    def secret_values(self, environ: Mapping[str, str]) -> dict[str, str]:
        """Each secret's value: from `environ` when set there, else its default."""
        return {suffix: environ.get(env, "") or default for suffix, (env, default) in self.secrets.items()}

    def setting_values(
        self, environ: Mapping[str, str], function_environments: Iterable[Mapping[str, str]]
    ) -> dict[str, str]:
        """Each setting's value, keyed by its variable: from `environ` when set there (the functions get it too),
        else what the first function naming it has from the template; a setting nobody names is left out, so the
        sandbox keeps its default."""
        environments = list(function_environments)
        values: dict[str, str] = {}
        for variable in self.settings:
            found = environ.get(variable) or next((env[variable] for env in environments if env.get(variable)), "")
            if found:
                values[variable] = found
        return values


def hub_secret_values(environ: Mapping[str, str]) -> dict[str, str]:
    """The hub's own secrets (not a partner's), by SSM suffix: from `environ` when set, else fresh random ones.

    The callback signing key ring is random per stack, as a real deployment's would be; set CALLBACK_SIGNING_KEY
    to keep callback URLs valid across restarts of `make run`. The same goes for the key the site signs app's miles
    member ids with (MEMBER_SIGNING_KEY; `hub member sign` signs with whatever the stack holds).
    """
    return {
        "callback/signing-key": environ.get("CALLBACK_SIGNING_KEY") or f"local:{secrets.token_urlsafe(32)}",
        "site/member-signing-key": environ.get("MEMBER_SIGNING_KEY") or secrets.token_urlsafe(32),
    }


def secret_parameter_name(stage: str, suffix: str) -> str:
    """The SSM parameter name of a partner secret."""
    return SECRET_PATH.format(stage=stage) + suffix


def _lazy_sandbox(
    module: str, class_name: str, settings: Mapping[str, str] | None = None, **secret_arguments: str
) -> SandboxFactory:
    """A factory that imports the sandbox only when the stack starts it.

    It is given the secrets by SSM suffix and the settings by variable; `settings` is the spec's (variable →
    argument), and a setting absent from what it is given leaves the sandbox's default.

    Importing by name keeps this registry importable (and type-checkable) while a sandbox is being written, and
    keeps `hub local invoke` with a base-URL override free of sandboxes it never starts.
    """

    def factory(secrets: Mapping[str, str]) -> Sandbox:
        sandbox_class: Any = getattr(importlib.import_module(module), class_name)
        arguments = {argument: secrets[suffix] for argument, suffix in secret_arguments.items()}
        given = {
            variable: argument for variable, argument in (settings or {}).items() if argument and variable in secrets
        }
        arguments |= {argument: secrets[variable] for variable, argument in given.items()}
        sandbox: Sandbox = sandbox_class(**arguments)
        return sandbox

    return factory


# The app id and partner id are plain settings (template parameters), which the sandbox must expect as well.
APPSMILES_SETTINGS: Mapping[str, str] = {
    "APPSMILES_APP_ID": "app_id",
    "APPSMILES_PARTNER_ID": "partner_id",
    "APPSMILES_PROFILE": "",
    "APPSMILES_SANDBOX_MODES": "modes",
}


def _profile_settings(partner: str) -> Mapping[str, str]:
    """A partner's profile (to the functions) and its sandbox's modes (to the sandbox), both from the environment."""
    return {f"{partner}_PROFILE": "", f"{partner}_SANDBOX_MODES": "modes"}


def default_partners() -> list[PartnerSpec]:
    """Every partner the hub talks to; a new partner is one more entry here."""
    return [
        PartnerSpec(
            name="miimosa",
            base_url_env="MIIMOSA_BASE_URL",
            sandbox_factory=_lazy_sandbox(
                "sandboxes.miimosa", "MiimosaSandbox", _profile_settings("MIIMOSA"), api_key="miimosa/api-key"
            ),
            secrets={"miimosa/api-key": ("MIIMOSA_API_KEY", "local-miimosa-key")},
            settings=_profile_settings("MIIMOSA"),
        ),
        PartnerSpec(
            name="umbrella",
            base_url_env="UMBRELLA_BASE_URL",
            sandbox_factory=_lazy_sandbox(
                "sandboxes.umbrella", "UmbrellaSandbox", _profile_settings("UMBRELLA"), api_key="umbrella/api-key"
            ),
            secrets={"umbrella/api-key": ("UMBRELLA_API_KEY", "local-umbrella-key")},
            settings=_profile_settings("UMBRELLA"),
        ),
        PartnerSpec(
            name="mlm",
            base_url_env="MLM_BASE_URL",
            sandbox_factory=_lazy_sandbox(
                "sandboxes.mlm", "MlmSandbox", _profile_settings("MLM"), api_token="mlm/api-token"
            ),
            secrets={"mlm/api-token": ("MLM_API_TOKEN", "local-mlm-token")},
            settings=_profile_settings("MLM"),
        ),
        PartnerSpec(
            name="appsmiles",
            base_url_env="APPSMILES_BASE_URL",
            sandbox_factory=_lazy_sandbox(
                "sandboxes.appsmiles",
                "AppsMilesSandbox",
                settings=APPSMILES_SETTINGS,
                partner_secret="appsmiles/partner-secret",
            ),
            secrets={"appsmiles/partner-secret": ("APPSMILES_PARTNER_SECRET", "local-appsmiles-secret")},
            settings=APPSMILES_SETTINGS,
        ),
    ]
