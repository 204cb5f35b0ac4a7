"""The locks pin what the requirements files ask for, every entry with hashes, and the layer's versions are the dev
venv's (so the tests run the versions Lambda gets). `make lock-check` re-resolves them against the index."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

LOCKS = {
    ROOT / "layers/adapters/requirements.txt": ROOT / "layers/adapters/requirements.lock",
    ROOT / "requirements-dev.txt": ROOT / "requirements-dev.lock",
    ROOT / "requirements-scan.txt": ROOT / "requirements-scan.lock",
}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def _name(raw: str) -> str:
    return re.sub(r"[-_.]+", "-", raw).lower()


def asked(requirements: Path) -> dict[str, str]:
    """Top-level pins of a requirements file, following -r includes."""
    pins: dict[str, str] = {}
    for raw in requirements.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r "):
            pins |= asked(requirements.parent / line.removeprefix("-r ").strip())
        elif match := _PIN.match(line):
            pins[_name(match[1])] = match[2]
    return pins


def locked(lock: Path) -> dict[str, tuple[str, int]]:
    """Each locked package: its version and how many hashes it carries."""
    entries: dict[str, tuple[str, int]] = {}
    current = None
    for line in lock.read_text().splitlines():
        if match := _PIN.match(line):
            current = _name(match[1])
            entries[current] = (match[2], 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = entries[current]
            entries[current] = (version, hashes + 1)
    return entries


@pytest.mark.parametrize("requirements", sorted(LOCKS), ids=lambda path: path.name)
def test_the_lock_pins_what_is_asked_each_with_hashes(requirements):
    lock = locked(LOCKS[requirements])
    wanted = asked(requirements)
    assert wanted, requirements
    assert {name: lock.get(name, ("missing", 0))[0] for name in wanted} == wanted
    assert [name for name, (_, hashes) in lock.items() if hashes == 0] == []
    assert len(lock) > len(wanted) or requirements.name == "requirements-scan.txt"  # transitive ones too


def test_the_layer_ships_the_versions_the_tests_run():
    layer = {name: version for name, (version, _) in locked(LOCKS[ROOT / "layers/adapters/requirements.txt"]).items()}
    dev = {name: version for name, (version, _) in locked(LOCKS[ROOT / "requirements-dev.txt"]).items()}
    assert {name: dev.get(name) for name in layer} == layer
    assert {"urllib3", "certifi", "pydantic-core"} <= layer.keys()


def test_builds_install_from_the_locks_only():
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements-dev.lock" in makefile
    assert "--require-hashes -r requirements-scan.lock" in makefile
    assert "--require-hashes --requirement requirements.lock" in (ROOT / "layers/adapters/Makefile").read_text()
