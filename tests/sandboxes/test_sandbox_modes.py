"""Sandbox modes: each sandbox plays one reading of its partner's document, chosen per run and changed live."""

from __future__ import annotations

import pytest
import requests

from sandboxes.appsmiles import AppsMilesSandbox
from sandboxes.miimosa import MiimosaSandbox
from sandboxes.mlm import MlmSandbox
from sandboxes.modes import ModesError
from sandboxes.umbrella import UmbrellaSandbox

ALL = (UmbrellaSandbox, AppsMilesSandbox, MiimosaSandbox, MlmSandbox)


@pytest.mark.parametrize("kind", ALL)
def test_defaults_are_the_hubs_default_reading_and_json_text_is_accepted(kind: type) -> None:
    defaults = kind().modes
    assert defaults == type(defaults)()
    name, value = next(iter(defaults.model_dump().items()))
    other = kind(modes={name: value})
    assert other.modes == defaults


def test_the_control_route_changes_and_shows_the_modes() -> None:
    with UmbrellaSandbox(api_key="k") as sandbox:
        answer = requests.put(f"{sandbox.url}/_sandbox/modes", json={"key_parameter": "apiKey"}, timeout=5)
        assert answer.status_code == 200
        assert answer.json()["key_parameter"] == "apiKey"
        assert requests.get(f"{sandbox.url}/_sandbox/modes", timeout=5).json()["amounts"] == "integer"
        # The next request is judged by the new reading: apikey is no longer the parameter's name.
        old = requests.get(f"{sandbox.url}/public/v1/campaign", params={"apikey": "k"}, timeout=5)
        new = requests.get(f"{sandbox.url}/public/v1/campaign", params={"apiKey": "k"}, timeout=5)
        assert (old.status_code, new.status_code) == (403, 200)


@pytest.mark.parametrize("body", [{"key_parameter": "API_KEY"}, {"no_such_mode": True}, ["apiKey"]])
def test_a_bad_mode_is_a_400_naming_it_and_changes_nothing(body: object) -> None:
    with UmbrellaSandbox() as sandbox:
        answer = requests.put(f"{sandbox.url}/_sandbox/modes", json=body, timeout=5)
        assert answer.status_code == 400
        if isinstance(body, dict):
            assert next(iter(body)) in answer.json()["message"]
        assert sandbox.modes.key_parameter == "apikey"


def test_modes_from_text_as_make_run_passes_them() -> None:
    assert MlmSandbox(modes='{"errors": "bare", "url_limit": null}').modes.url_limit is None
    with pytest.raises(ModesError, match="body_encoding"):
        AppsMilesSandbox(modes='{"body_encoding": "xml"}')
    with pytest.raises(ModesError, match="not a JSON object"):
        MiimosaSandbox(modes="{auth")
