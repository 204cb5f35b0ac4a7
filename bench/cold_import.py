"""Cold import of each handler module against `import boto3, pydantic, requests`, in fresh processes, interleaved.

Prints medians and ratios; never asserts a time (the machines are shared and noisy). Bytecode is compiled first so
both sides import from valid .pyc files, as a warm-built Lambda package would.
"""

from __future__ import annotations

import compileall
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATHS = [ROOT / "layers/adapters", ROOT / "functions"]
SUBJECTS = {
    "baseline: import boto3, pydantic, requests": "import boto3, pydantic, requests",
    "baseline: import boto3": "import boto3",
    "lead_intake.app": "import lead_intake.app",
    "campaign_lifecycle.app": "import campaign_lifecycle.app",
    "licence_issuance.app": "import licence_issuance.app",
}
PROBE = "import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"


def measure(statement: str, env: dict[str, str]) -> float:
    output = subprocess.run(  # noqa: S603 - our own interpreter on our own statements
        [sys.executable, "-c", PROBE.format(statement=statement)], env=env, capture_output=True, text=True, check=True
    )
    return float(output.stdout.strip())


def main(rounds: int = 15) -> None:
    for path in PATHS:
        compileall.compile_dir(path, quiet=1)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, PATHS)), "AWS_DEFAULT_REGION": "eu-west-1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    samples: dict[str, list[float]] = {name: [] for name in SUBJECTS}
    for _ in range(rounds):
        for name, statement in SUBJECTS.items():  # interleaved, so drift in machine load hits every subject
            samples[name].append(measure(statement, env))
    baseline = statistics.median(samples["baseline: import boto3, pydantic, requests"])
    boto3_only = statistics.median(samples["baseline: import boto3"])
    print(f"cold import, median of {rounds} fresh processes ({sys.version.split()[0]}, {os.cpu_count()} cores)")
    for name, values in samples.items():
        median = statistics.median(values)
        print(
            f"  {name:<45} {median * 1000:7.1f} ms  x{median / baseline:.2f} of boto3+pydantic+requests"
            f"  x{median / boto3_only:.2f} of boto3"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
