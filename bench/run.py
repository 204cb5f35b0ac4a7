"""`make bench`: every benchmark in one run, printed as one table of ratios with their targets.

Fresh-process timings (cold imports, the build artifact) run interleaved in one loop, median of BENCH_ROUNDS rounds
(21); warm CPU and counts run on one local stack (BENCH_INVOCATIONS, 1000, per count). Nothing here fails on a time.
"""

from __future__ import annotations

import os
import platform
import sys
import warnings
from datetime import date
from pathlib import Path

from bench import artifact_import, cold_import, invocations
from bench.common import ROOT, Row, interleaved_medians
from hub_local.cli import layer_sizes


def layer_rows() -> list[Row]:
    layer = ROOT / ".aws-sam" / "build" / "AdaptersLayer"
    unzipped, zipped = layer_sizes(layer)
    return [
        Row(
            "built layer size, unzipped / zipped", f"{unzipped / 2**20:.1f} MiB / {zipped / 2**20:.1f} MiB", "< 250 MiB"
        )
    ]


def main() -> int:
    if not (ROOT / ".aws-sam" / "build" / "template.yaml").is_file():
        print("no .aws-sam/build: run `make bench` (it builds first)", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", "No application metrics to publish")
    rounds = int(os.environ.get("BENCH_ROUNDS", "21"))
    count = int(os.environ.get("BENCH_INVOCATIONS", "1000"))
    rows: list[Row] = []
    with artifact_import.workdir() as workdir:
        trees = artifact_import.prepare(Path(workdir))
        subjects = cold_import.subjects() + artifact_import.subjects(trees)
        print(f"timing {len(subjects)} subjects x {rounds} fresh processes, interleaved ...", file=sys.stderr)
        medians = interleaved_medians(subjects, rounds)
    rows += cold_import.rows(medians) + artifact_import.rows(medians)
    print("warm invocations and counts on the local stack ...", file=sys.stderr)
    rows += invocations.measure(invocations=count)
    rows += layer_rows()
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"\npartner hub benchmark, {date.today()}, {machine}")
    print(f"fresh-process medians of {rounds} interleaved rounds; counts over {count} invocations\n")
    width = max(len(row.metric) for row in rows)
    print(f"| {'measure':<{width}} | {'value':>12} | target |")
    print(f"|{'-' * (width + 2)}|{'-' * 14}|--------|")
    for row in rows:
        print(f"| {row.metric:<{width}} | {row.value:>12} | {row.target} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
