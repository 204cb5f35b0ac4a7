"""Cold import of each handler module of template.yaml against `import boto3`, in fresh processes, interleaved.

Both sides import from valid timestamp .pyc (compiled first), as a warm-built package would. The handlers do not
use Powertools Tracer today; the "with Tracer" subject adds `Tracer()` (which imports aws-xray-sdk and patches
botocore and requests) to show what switching it on would cost.
"""

from __future__ import annotations

import compileall
import sys

from bench.common import (
    NOT_BUILT,
    SOURCE_PATHS,
    Row,
    Subject,
    base_env,
    built_handlers,
    declared_handlers,
    interleaved_medians,
    is_built,
    probes_can_import,
    ratio,
)

BOTO3 = "baseline: import boto3"
BOTO3_PYDANTIC_REQUESTS = "baseline: import boto3, pydantic, requests"
WITH_TRACER = "; from aws_lambda_powertools import Tracer; Tracer(service='bench')"
XRAY = "aws_xray_sdk"  # what Tracer imports; the layer ships it only once a handler uses Tracer


def subjects() -> list[Subject]:
    for path in SOURCE_PATHS:
        compileall.compile_dir(path, quiet=1)
    env = base_env(SOURCE_PATHS)
    found = [
        Subject(BOTO3, "import boto3", env),
        Subject(BOTO3_PYDANTIC_REQUESTS, "import boto3, pydantic, requests", env),
    ]
    for handler in built_handlers():
        found.append(Subject(f"import {handler.module}", f"import {handler.module}", env))
        if probes_can_import(XRAY):
            found.append(Subject(f"import {handler.module} + Tracer()", f"import {handler.module}{WITH_TRACER}", env))
    return found


def rows(medians: dict[str, float]) -> list[Row]:
    boto3 = medians[BOTO3]
    table = [
        Row("cold import: import boto3 (the baseline)", f"{boto3 * 1000:.0f} ms"),
        Row("cold import: boto3+pydantic+requests / boto3", ratio(medians[BOTO3_PYDANTIC_REQUESTS], boto3)),
    ]
    for handler in declared_handlers():
        if not is_built(handler):
            table.append(Row(f"cold import {handler.module} / boto3", NOT_BUILT, "<= 1.8"))
            continue
        plain = medians[f"import {handler.module}"]
        table.append(
            Row(f"cold import {handler.module} / boto3 (no Tracer: as shipped)", ratio(plain, boto3), "<= 1.8")
        )
        traced = medians.get(f"import {handler.module} + Tracer()")
        table.append(
            Row(
                f"cold import {handler.module} + Tracer() / boto3 (not used today)",
                ratio(traced, boto3) if traced else f"n/a ({XRAY} is not in the layer)",
                "<= 2.2",
            )
        )
    return table


def main(rounds: int = 15) -> None:
    for row in rows(interleaved_medians(subjects(), rounds)):
        print(f"{row.metric:<75} {row.value:>10}  {row.target}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
