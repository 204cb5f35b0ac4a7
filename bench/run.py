"""`make bench`: every benchmark in one run, printed as one table of ratios with their targets.

Fresh-process timings (cold imports, the build artifact) run interleaved in one loop, median of BENCH_ROUNDS rounds
(21); cold start (import + first request, bench/cold_start.py) median of BENCH_COLD_ROUNDS (11); warm CPU and counts
run on one local stack (BENCH_INVOCATIONS, 1000, per count). Nothing here fails on a time.

BENCH_QUICK=1 is for development on a shared machine: 3 rounds, 50 invocations, fewer warm blocks, and the
artifact rows skipped when there is no `sam build` output. Its figures are indicative only.
"""

from __future__ import annotations

import os
import platform
import sys
import warnings
from datetime import date

from bench import artifact_import, cold_import, cold_start, invocations
from bench.common import ROOT, Row, interleaved_medians, third_party_source
from hub_cli.commands.local.build import layer_sizes


def layer_rows() -> list[Row]:
    layer = ROOT / ".aws-sam" / "build" / "AdaptersLayer"
    unzipped, zipped = layer_sizes(layer)
    return [
        Row(
            "built layer size, unzipped / zipped", f"{unzipped / 2**20:.1f} MiB / {zipped / 2**20:.1f} MiB", "< 250 MiB"
        )
    ]


def main() -> int:
    quick = bool(os.environ.get("BENCH_QUICK"))
    built = (ROOT / ".aws-sam" / "build" / "template.yaml").is_file()
    if not built and not quick:
        print("no .aws-sam/build: run `make bench` (it builds first)", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", "No application metrics to publish")
    rounds = int(os.environ.get("BENCH_ROUNDS", "3" if quick else "21"))
    cold_rounds = int(os.environ.get("BENCH_COLD_ROUNDS", "3" if quick else "11"))
    count = int(os.environ.get("BENCH_INVOCATIONS", "50" if quick else "1000"))
    rows: list[Row] = []
    # Every fresh process from here on imports third-party packages as a Lambda container does.
    with artifact_import.probes_like_lambda() as trees:
        if trees is not None:
            subjects = cold_import.subjects() + artifact_import.subjects(trees)
            print(f"timing {len(subjects)} subjects x {rounds} fresh processes, interleaved ...", file=sys.stderr)
            medians = interleaved_medians(subjects, rounds)
            rows += cold_import.rows(medians) + artifact_import.rows(medians)
        else:
            subjects = cold_import.subjects()
            rows += cold_import.rows(interleaved_medians(subjects, rounds))
        rows.insert(0, Row("fresh processes import third-party packages from", third_party_source()))
        print("warm invocations and counts on the local stack ...", file=sys.stderr)
        blocks, per_block = (5, 10) if quick else (15, 20)
        warm_rows = invocations.measure(blocks=blocks, per_block=per_block, invocations=count)
        # Second, on a stack of its own: its POST /erasure leaves app's miles' member erased, which the relay's
        # setup would then meet.
        rows += cold_start.measure(cold_rounds) + warm_rows
    if built:
        rows += layer_rows()
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"\npartner hub benchmark, {date.today()}, {machine}")
    print(
        f"fresh-process medians of {rounds} interleaved rounds (cold start: {cold_rounds}); "
        f"counts over {count} invocations"
    )
    print("QUICK MODE: indicative figures only\n" if quick else "")
    width = max(len(row.metric) for row in rows)
    print(f"| {'measure':<{width}} | {'value':>12} | target |")
    print(f"|{'-' * (width + 2)}|{'-' * 14}|--------|")
    for row in rows:
        print(f"| {row.metric:<{width}} | {row.value:>12} | {row.target} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
