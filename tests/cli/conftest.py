"""Helpers for the hub CLI tests: run `hub` in this process and capture its exit status, stdout and stderr."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from hub_cli.app import main

# What the local stack running in the test process writes to the same stderr (requests, function logs).
STACK_OUTPUT = ("gateway: ", "async invoke ", "hub_local: ", '{"level"', '{"_aws"')


@dataclass
class Outcome:
    status: int
    out: str
    err: str


@pytest.fixture
def hub(capsys, monkeypatch):
    """`hub(*args)` runs the command line; wide columns so Rich tables keep whole names on one line."""
    monkeypatch.setenv("COLUMNS", "250")

    def run(*args: str) -> Outcome:
        capsys.readouterr()
        status = main(list(args))
        captured = capsys.readouterr()
        return Outcome(status, captured.out, captured.err)

    return run


def one_line_error(outcome: Outcome) -> str:
    """The failure as the operator sees it: a non-zero exit and exactly one line on stderr, no traceback."""
    assert outcome.status != 0
    lines = [line for line in outcome.err.strip().splitlines() if not line.startswith(STACK_OUTPUT)]
    assert len(lines) == 1, outcome.err
    assert "Traceback" not in outcome.err
    return lines[0]
