"""What every benchmark shares: the handlers template.yaml declares, fresh-process timing, interleaving, result rows."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub_local.cfn import load_yaml

ROOT = Path(__file__).resolve().parent.parent
SOURCE_PATHS = [ROOT / "layers/adapters", ROOT / "functions"]
PROBE = "import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
NOT_BUILT = "n/a (function not built yet)"


@dataclass(frozen=True)
class Handler:
    logical_id: str
    module: str  # "lead_intake.app"
    function: str  # "lambda_handler"


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    metric: str
    value: str
    target: str = ""


@dataclass(frozen=True)
class Subject:
    """A statement timed in fresh interpreters with its own environment."""

    name: str
    statement: str
    env: Mapping[str, str]


def template_resources() -> dict[str, dict]:
    # As deployed: the Fn::ForEach loops (the alarms) unrolled, so that every resource is a mapping with a Type.
    return load_yaml(ROOT / "template.yaml")["Resources"]


def declared_handlers() -> list[Handler]:
    """Every Python function of the template, in template order."""
    handlers = []
    for logical_id, resource in template_resources().items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        module, _, function = resource["Properties"]["Handler"].rpartition(".")
        handlers.append(Handler(logical_id, module, function))
    return handlers


def is_built(handler: Handler) -> bool:
    """Whether the function's package exists yet (the template may name functions still being written)."""
    return (ROOT / "functions" / handler.module.split(".")[0] / "__init__.py").is_file()


def built_handlers() -> list[Handler]:
    return [handler for handler in declared_handlers() if is_built(handler)]


# Where a fresh-process probe finds third-party packages. Empty: the dev venv's site-packages, which hold more than
# Lambda has: awscrt and pyOpenSSL (SAM CLI's), which botocore imports whenever they are there, about 130 ms of an
# `import boto3` here that no Lambda container pays, on both sides of every ratio. run.py points it at the built
# layer (host extensions swapped in) and probes start with -S: the function's code, the layer, the standard library.
_LAYER: list[Path] = []


@contextlib.contextmanager
def third_party_from(layer_python: Path) -> Iterator[None]:
    """Fresh-process probes import third-party packages from `layer_python` alone while this is open."""
    _LAYER[:] = [layer_python]
    try:
        yield
    finally:
        _LAYER.clear()


def top_level_name(relative: str) -> str:
    """The package (or module) a path relative to an import root belongs to: "botocore/hooks.py" -> "botocore"."""
    return relative.split("/", maxsplit=1)[0].removesuffix(".py")


def third_party_package(path: str) -> str | None:
    """The top-level package a source path belongs to when it is a third-party one (venv or layer), else None."""
    if "site-packages/" in path:
        return top_level_name(path.split("site-packages/", 1)[1])
    for layer in _LAYER:
        if path.startswith(f"{layer}/"):
            return top_level_name(path[len(str(layer)) + 1 :])
    return None


def third_party_source() -> str:
    """Where the probes' third-party packages come from, for the results table."""
    if _LAYER:
        return "the built layer alone (python -S), as on Lambda"
    return "the dev venv (no build: its awscrt and pyOpenSSL, which Lambda lacks, add ~130 ms to both sides)"


def probes_can_import(package: str) -> bool:
    """Whether a probe finds `package` (a top-level name): always from the venv, from the layer only if it ships it."""
    return not _LAYER or any((layer / package).exists() for layer in _LAYER)


def python(*arguments: str) -> list[str]:
    """The command line of a fresh-process probe: without the venv's site-packages when the layer stands in."""
    return [sys.executable, *(["-S"] if _LAYER else []), *arguments]


def time_in_fresh_process(subject: Subject) -> float:
    output = subprocess.run(  # noqa: S603 - our own interpreter on our own statements
        python("-c", PROBE.format(statement=subject.statement)),
        env=dict(subject.env),
        capture_output=True,
        text=True,
        check=False,
    )
    if output.returncode != 0:
        raise RuntimeError(f"{subject.name}: {output.stderr.strip().splitlines()[-1:]}")
    return float(output.stdout.strip())


def interleaved_medians(subjects: Sequence[Subject], rounds: int) -> dict[str, float]:
    """Median seconds per subject; each round runs every subject once, so load drift hits all of them alike."""
    samples: dict[str, list[float]] = {subject.name: [] for subject in subjects}
    for _ in range(rounds):
        for subject in subjects:
            samples[subject.name].append(time_in_fresh_process(subject))
    return {name: statistics.median(values) for name, values in samples.items()}


def base_env(paths: Sequence[Path]) -> dict[str, str]:
    """The host environment for a probe: `paths` importable (then the layer, when probes use it), a region, no user
    site or bytecode writes."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "SOURCE_DATE_EPOCH", "PYTHONPYCACHEPREFIX"}
    }
    env |= {
        "PYTHONPATH": os.pathsep.join(map(str, [*paths, *_LAYER])),
        "AWS_DEFAULT_REGION": "eu-west-1",
        "PYTHONNOUSERSITE": "1",
        # As in a Lambda container: Powertools sees one, so a Tracer patches the SDKs for real.
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "LAMBDA_TASK_ROOT": "/var/task",
    }
    return env


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}"


class InvalidReading(Exception):
    """A measured path whose handler did not do the work the row names: its timing would measure a refusal."""


def refusal(answer: Any) -> str | None:
    """Why a handler's answer is not the success a measured path ends in (status and error code), or None."""
    if not isinstance(answer, dict):
        return f"answered {type(answer).__name__}"
    if "batchItemFailures" in answer:
        failures = answer["batchItemFailures"]
        return f"{len(failures)} batch item failure(s)" if failures else None
    status = answer.get("statusCode")
    if isinstance(status, int) and status < 400:
        return None
    try:
        error = json.loads(answer.get("body") or "{}").get("error", "")
    except (TypeError, ValueError, AttributeError):
        error = "unreadable body"
    return f"{status} {error}".strip()


def check_answers(answers: Iterable[Any]) -> None:
    """Raises InvalidReading naming each refusal and how often, when any answer is not a success."""
    answers = list(answers)
    problems = Counter(problem for problem in map(refusal, answers) if problem)
    if problems:
        detail = ", ".join(f"{count} x {problem}" for problem, count in problems.most_common())
        raise InvalidReading(f"{problems.total()} of {len(answers)} answers refused: {detail}")
