"""Shared test helpers: the real events/ files, and a fresh 'container' for every test."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from hub_core.caches import reset_all
from partners.http import reset_sessions

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"


def load_event(relative: str) -> dict[str, Any]:
    """A deep copy of an events/ file, so a test can change it freely."""
    return copy.deepcopy(json.loads((EVENTS / relative).read_text()))


@pytest.fixture(autouse=True)
def fresh_container():
    """Each test starts like a cold Lambda container: no cached settings, clients, secrets or sessions."""
    reset_all()
    reset_sessions()
    yield
    reset_all()
    reset_sessions()
