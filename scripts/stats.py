"""Print where the code stands against issue 19's size targets (make stats); it measures and prints, it never fails."""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

HUB_LOCAL_TARGET = 3_000
MODULE_TARGET = 500
UNIT_SHARE_TARGET = 1 / 3
# Not the product's code: virtual environments, build output and caches.
_SKIPPED_DIRS = {".venv", ".venv-scan", ".aws-sam", ".git", "__pycache__", ".mypy_cache", ".ruff_cache", "node_modules"}
_ALARM = re.compile(r"^\s*Type:\s*['\"]?AWS::CloudWatch::Alarm['\"]?\s*$", re.MULTILINE)
_COMPOSITE = re.compile(r"^\s*Type:\s*['\"]?AWS::CloudWatch::CompositeAlarm['\"]?\s*$", re.MULTILINE)
# A loop is a key, possibly the first key of a list item (a loop inside another's fragment list).
_FOR_EACH = re.compile(r"^(\s*(?:-\s+)?)['\"]?Fn::ForEach::\w+['\"]?:\s*$")
_FLOW_LIST = re.compile(r"^\s*-\s*\[(.*)\]\s*$")
_INLINE_SKIP = re.compile(r"^\s*-\s*id:\s*['\"]?CKV_\w+", re.MULTILINE)
_CONFIG_SKIP = re.compile(r"^\s*-\s*['\"]?(CKV_\w+)", re.MULTILINE)


@dataclass(frozen=True)
class Row:
    name: str
    value: str
    target: str = ""
    verdict: str = ""


def _lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def _python_files(root: Path) -> list[Path]:
    # os.walk, pruned: rglob would walk every file of .venv and .aws-sam (most of the tree) only to drop them.
    found = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [name for name in subdirectories if name not in _SKIPPED_DIRS]
        found += [Path(directory, name) for name in files if name.endswith(".py")]
    return sorted(found)


def _verdict(met: bool) -> str:
    return "met" if met else "not yet"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _deployed_alarms(text: str) -> int | None:
    """Alarms a deploy creates: each one inside Fn::ForEach loops counts once per item of each enclosing loop.

    Read from the text, so that the script needs no YAML library; a collection not written as a flow list
    (`- [A, B]`, the line after the identifier) gives None: printed as n/a rather than guessed.
    """
    lines = text.splitlines()
    loops: list[tuple[int, int]] = []  # (indent of the Fn::ForEach key, items of its collection)
    count = 0
    for number, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while loops and _indent(line) <= loops[-1][0]:
            loops.pop()
        loop = _FOR_EACH.match(line)
        if loop:
            collection = _FLOW_LIST.match(lines[number + 2]) if number + 2 < len(lines) else None
            if collection is None:
                return None
            loops.append((len(loop.group(1)), len([item for item in collection.group(1).split(",") if item.strip()])))
        elif _ALARM.match(line):
            multiplier = 1
            for _indent_of_loop, items in loops:
                multiplier *= items
            count += multiplier
    return count


def measure(root: Path) -> list[Row]:
    rows = []
    hub_local = sum(_lines(path) for path in _python_files(root / "local" / "hub_local"))
    rows.append(Row("local/hub_local lines", f"{hub_local:,}", f"<= {HUB_LOCAL_TARGET:,}",
                    _verdict(hub_local <= HUB_LOCAL_TARGET)))  # fmt: skip

    large = [
        (path.relative_to(root).as_posix(), _lines(path))
        for path in _python_files(root)
        if path.relative_to(root).parts[0] != "tests" and _lines(path) > MODULE_TARGET
    ]
    rows.append(Row(f"non-test modules over {MODULE_TARGET} lines", str(len(large)), "none", _verdict(not large)))
    rows.extend(Row(f"  {name}", f"{count:,}") for name, count in sorted(large, key=lambda item: -item[1]))

    template = root / "template.yaml"
    text = template.read_text(encoding="utf-8") if template.is_file() else ""
    rows.append(Row("template.yaml lines", f"{len(text.splitlines()):,}"))
    # As written: an alarm inside an Fn::ForEach loop counts once here.
    alarms, composites = len(_ALARM.findall(text)), len(_COMPOSITE.findall(text))
    rows.append(Row("template alarms (as written)", str(alarms), "", f"and {composites} composite"))
    deployed = _deployed_alarms(text)
    rows.append(Row("template alarms (deployed)", "n/a" if deployed is None else str(deployed)))
    rows.append(Row("checkov skips inline", str(len(_INLINE_SKIP.findall(text)))))
    config = root / ".checkov.yaml"
    in_config = len(_CONFIG_SKIP.findall(config.read_text(encoding="utf-8"))) if config.is_file() else 0
    rows.append(Row("checkov checks skipped in .checkov.yaml", str(in_config)))

    tests = _python_files(root / "tests")
    test_lines = sum(_lines(path) for path in tests)
    unit_lines = sum(_lines(path) for path in tests if path.relative_to(root / "tests").parts[0] == "unit")
    share = unit_lines / test_lines if test_lines else 0.0
    rows.append(Row("unit tests' share of test lines", f"{share:.0%} ({unit_lines:,} of {test_lines:,})",
                    f">= {UNIT_SHARE_TARGET:.0%}", _verdict(share >= UNIT_SHARE_TARGET)))  # fmt: skip
    return rows


def render(rows: list[Row]) -> str:
    width = max(len(row.name) for row in rows)
    value_width = max(len(row.value) for row in rows)
    lines = ["issue 19 targets (duplicates, pytest wall time and coverage are measured by their own tools)"]
    for row in rows:
        target = f"target {row.target}" if row.target else ""
        lines.append(f"  {row.name:<{width}}  {row.value:>{value_width}}  {target:<16}  {row.verdict}".rstrip())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent, help="the repository")
    args = parser.parse_args(argv)
    print(render(measure(args.root)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
