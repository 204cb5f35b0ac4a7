"""scripts/stats.py (make stats): it names every target's row, and counts what a small tree holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "stats.py"
ROWS = (
    "local/hub_local lines",
    "non-test modules over 500 lines",
    "template.yaml lines",
    "template alarms (as written)",
    "template alarms (deployed)",
    "checkov skips inline",
    "checkov checks skipped in .checkov.yaml",
    "unit tests' share of test lines",
)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SCRIPT), *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - our own script


def row(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if line.strip().startswith(name))


def value(output: str, name: str) -> str:
    """The row's figure: the first word after its name."""
    return row(output, name).strip()[len(name) :].split()[0]


def test_on_the_repository_it_prints_every_row_and_succeeds():
    result = run()
    assert result.returncode == 0, result.stderr
    for name in ROWS:
        assert name in result.stdout, name


def test_it_counts_what_a_small_tree_holds(tmp_path: Path):
    (tmp_path / "local" / "hub_local").mkdir(parents=True)
    (tmp_path / "local" / "hub_local" / "big.py").write_text("x = 1\n" * 3_001)
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "small.py").write_text("x = 1\n" * 500)
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "tests" / "unit" / "test_a.py").write_text("x = 1\n" * 600)  # a test module: never "over 500"
    (tmp_path / "tests" / "test_b.py").write_text("x = 1\n" * 1_200)
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "huge.py").write_text("x = 1\n" * 900)  # not ours
    (tmp_path / "template.yaml").write_text(
        "Resources:\n"
        "  A:\n    Type: AWS::CloudWatch::Alarm\n"
        "  B:\n    Type: AWS::CloudWatch::Alarm\n"
        "  C:\n    Type: AWS::SQS::Queue\n    Metadata:\n      checkov:\n        skip:\n"
        "          - id: CKV_AWS_27\n            comment: why\n"
    )
    (tmp_path / ".checkov.yaml").write_text("skip-check:\n  - CKV_AWS_115\n  - CKV_AWS_117\n")

    result = run("--root", str(tmp_path))

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert value(out, "local/hub_local lines") == "3,001"
    assert "not yet" in row(out, "local/hub_local lines")
    assert value(out, "non-test modules over 500 lines") == "1"
    assert "local/hub_local/big.py" in out
    assert "huge.py" not in out
    assert "small.py" not in out
    assert value(out, "template.yaml lines") == "12"
    assert value(out, "template alarms (as written)") == "2"
    assert value(out, "checkov skips inline") == "1"
    assert value(out, "checkov checks skipped in .checkov.yaml") == "2"
    assert "33% (600 of 1,800)" in row(out, "unit tests' share of test lines")


def test_alarms_generated_by_fn_foreach_count_once_per_item_when_deployed(tmp_path: Path):
    (tmp_path / "template.yaml").write_text(
        "Resources:\n"
        "  A:\n    Type: AWS::CloudWatch::Alarm\n"
        "  Fn::ForEach::PerFunction:\n    - Name\n    - [One, Two, Three]\n"
        "    - ${Name}ErrorsAlarm:\n        Type: AWS::CloudWatch::Alarm\n"
        "      ${Name}ThrottlesAlarm:\n        Type: AWS::CloudWatch::Alarm\n"
        "  # a comment at the loop's own indent does not end it early\n"
        "  Fn::ForEach::Outer:\n    - Queue\n    - [Q1, Q2]\n"
        "    - Fn::ForEach::Inner:\n        - Kind\n        - [depth, age]\n"
        "        - ${Queue}${Kind}Alarm:\n            Type: AWS::CloudWatch::Alarm\n"
        "  Topic:\n    Type: AWS::SNS::Topic\n"
        "  B:\n    Type: AWS::CloudWatch::Alarm\n"
    )

    out = run("--root", str(tmp_path)).stdout

    assert value(out, "template alarms (as written)") == "5"
    assert value(out, "template alarms (deployed)") == str(1 + 3 * 2 + 2 * 2 + 1)


def test_a_collection_it_cannot_read_prints_n_a(tmp_path: Path):
    (tmp_path / "template.yaml").write_text(
        "Resources:\n"
        "  Fn::ForEach::PerQueue:\n    - Queue\n    - !Ref QueueNames\n"
        "    - ${Queue}Alarm:\n        Type: AWS::CloudWatch::Alarm\n"
    )

    result = run("--root", str(tmp_path))

    assert result.returncode == 0, result.stderr
    assert value(result.stdout, "template alarms (deployed)") == "n/a"
