"""Cold start as the visitor sees it: import plus the first request, in a fresh process, against a minimal handler.

The local stack (moto server, loopback partner sandboxes) runs in this process; each subject is a fresh
interpreter (bench/first_request.py) with the function's environment pointing at it. The baseline is a
hand-written handler that imports boto3 and requests, builds a session and its clients, and replays the exact AWS
calls and partner requests the real handler's first request made (recorded in-process, from a fresh container
state) - timed in the same rounds, interleaved. Where the time goes: `python -X importtime` (the top-level
imports by cumulative time) and a cProfile of the first call (own time summed per package), top 5 each.
"""

from __future__ import annotations

import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.artifact_import import probes_like_lambda
from bench.common import (
    NOT_BUILT,
    SOURCE_PATHS,
    Row,
    base_env,
    built_handlers,
    check_answers,
    python,
    template_resources,
    third_party_package,
    third_party_source,
    top_level_name,
)
from bench.invocations import AWS, Call, partner_requests
from bench.stack import NEW_EVENTS, EventFactory, bench_stack, function_environment, load_event
from hub_core.caches import reset_all
from hub_local.runtime import LambdaContext, load_handler
from hub_local.stack import LocalStack

CHILD = Path(__file__).with_name("first_request.py")
TARGET = "<= 1.5"


def _docs(stack: LocalStack) -> Callable[[], dict[str, Any]]:
    event = load_event("lead_intake/get_projects.json")
    event["routeKey"] = event["requestContext"]["routeKey"] = "GET /openapi.json"
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/openapi.json"
    event["rawQueryString"], event["queryStringParameters"] = "", None
    return lambda: dict(event)


# The visitor's (or partner's) first request per HTTP function: the write a cold container most often meets.
FIRST_REQUESTS: dict[str, tuple[str, EventFactory]] = {
    "LeadIntakeFunction": ("POST /leads (forwarded to MiiMOSA)", NEW_EVENTS["LeadIntakeFunction"]),
    "CampaignLifecycleFunction": ("POST /campaigns (created at Umbrella)", NEW_EVENTS["CampaignLifecycleFunction"]),
    "ApiDocsFunction": ("GET /openapi.json", _docs),
    "LicenceIssuanceFunction": ("POST /licences (issued at Pimenko)", NEW_EVENTS["LicenceIssuanceFunction"]),
    "DonationIngesterFunction": ("a new donation callback", NEW_EVENTS["DonationIngesterFunction"]),
    "ErasureFunction": ("POST /erasure", NEW_EVENTS["ErasureFunction"]),
}


def http_functions() -> list[str]:
    """Functions with an HttpApi event, in template order."""
    return [
        logical_id
        for logical_id, resource in template_resources().items()
        if resource["Type"] == "AWS::Serverless::Function"
        and any(event.get("Type") == "HttpApi" for event in (resource["Properties"].get("Events") or {}).values())
    ]


def record_first_request(stack: LocalStack, logical_id: str, event: dict[str, Any]) -> tuple[list[Call], list]:
    """The AWS calls and partner requests of one first request from a fresh container state, made in-process."""
    spec = stack.function(logical_id)
    for sandbox in stack.sandboxes.values():
        sandbox.clear_requests()
    reset_all()
    with function_environment(stack, logical_id), AWS.recording() as calls:
        load_handler(spec.handler)(event, LambdaContext(spec))  # type: ignore[arg-type]
    partner = partner_requests(stack)
    return list(calls), partner


def run_child(spec: dict[str, Any], env: dict[str, str], *, profile: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as workdir:
        spec_path, out_path = Path(workdir, "spec.pickle"), Path(workdir, "out.json")
        spec_path.write_bytes(pickle.dumps(spec))
        arguments = python(str(CHILD), str(spec_path), str(out_path)) + (["--profile"] if profile else [])
        done = subprocess.run(arguments, env=env, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0 or not out_path.is_file():
            raise RuntimeError(f"{spec['function_name']}: {done.stderr.strip().splitlines()[-3:]}")
        result = json.loads(out_path.read_text(encoding="utf-8"))
        # A first request that was refused (or warm ones) would time the refusal, not the path the row names.
        check_answers(result["answers"])
        return result


def import_top(module: str, env: dict[str, str], top: int = 5) -> list[tuple[str, float]]:
    """`python -X importtime`: own (self) import time summed per top-level package, in milliseconds."""
    done = subprocess.run(  # noqa: S603
        python("-X", "importtime", "-c", f"import {module}"),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    totals: Counter[str] = Counter()
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|")
        totals[name.strip().split(".")[0]] += int(own) / 1000
    return totals.most_common(top)


def _package(location: str) -> str:
    if location.startswith("~:0(") or location.startswith("<"):
        name = location.split("(", 1)[1].rstrip(")").strip("<>")
        if any(word in name for word in ("recv", "connect", "select", "poll", "sendall", "do_handshake")):
            return "waiting on I/O (socket)"
        # "method 'read' of '_io.BufferedReader' objects" / "built-in method posix.stat"
        words = name.replace("'", "").split()
        return "builtin " + (f"{words[3]}.{words[1]}" if "of" in words else words[-1])
    path = location.rsplit(":", 1)[0]
    if package := third_party_package(path):
        return package
    for source in SOURCE_PATHS:
        if path.startswith(str(source)):
            return "hub: " + top_level_name(path[len(str(source)) + 1 :])
    return "stdlib " + Path(path).stem


def call_top(tottime: dict[str, float], top: int = 5) -> list[tuple[str, float]]:
    totals: Counter[str] = Counter()
    for location, seconds in tottime.items():
        totals[_package(location)] += seconds * 1000
    return totals.most_common(top)


def measure(rounds: int) -> list[Row]:
    built = {handler.logical_id: handler for handler in built_handlers()}
    rows: list[Row] = []
    with bench_stack() as stack:
        subjects = []
        for logical_id in http_functions():
            if logical_id not in built or logical_id not in FIRST_REQUESTS:
                rows.append(Row(f"cold start {logical_id} / minimal handler", NOT_BUILT, TARGET))
                continue
            description, factory = FIRST_REQUESTS[logical_id]
            new_event = factory(stack)
            function = stack.function(logical_id)
            calls, partner = record_first_request(stack, logical_id, new_event())
            env = base_env(SOURCE_PATHS) | stack.function_env(logical_id)
            common: dict[str, Any] = {
                "function_name": logical_id,
                "memory": function.memory_size,
                "timeout": stack.timeout_of(logical_id),
                "handler": function.handler,
                "calls": calls,
                "partner": partner,
            }
            subjects.append((logical_id, description, new_event, common, env))
        samples: dict[tuple[str, bool], list[tuple[float, float]]] = {}
        print(f"cold start: {len(subjects)} functions x 2 x {rounds} fresh processes ...", file=sys.stderr)
        for _ in range(rounds):
            for logical_id, _description, new_event, common, env in subjects:
                for minimal in (False, True):
                    result = run_child(common | {"minimal": minimal, "event": new_event()}, env)
                    samples.setdefault((logical_id, minimal), []).append((result["import"], result["first"]))
        for logical_id, description, new_event, common, env in subjects:
            handler = [a + b for a, b in samples[(logical_id, False)]]
            minimal = [a + b for a, b in samples[(logical_id, True)]]
            h_import = statistics.median(a for a, _ in samples[(logical_id, False)])
            h_first = statistics.median(b for _, b in samples[(logical_id, False)])
            m_import = statistics.median(a for a, _ in samples[(logical_id, True)])
            m_first = statistics.median(b for _, b in samples[(logical_id, True)])
            rows.append(
                Row(
                    f"cold start {logical_id} (import + first request) / minimal handler: {description}",
                    f"{statistics.median(handler) / statistics.median(minimal):.2f}",
                    TARGET,
                )
            )
            calls, partner = common["calls"], common["partner"]
            io = Counter(f"{service}.{operation}" for service, operation, _ in calls)
            io_text = ", ".join(f"{name} x{count}" for name, count in sorted(io.items())) or "no AWS"
            rows.append(
                Row(
                    f"  import {h_import * 1000:.0f} + first {h_first * 1000:.0f} ms vs minimal "
                    f"{m_import * 1000:.0f} + {m_first * 1000:.0f} ms; I/O: {io_text}, partner x{len(partner)}",
                    "",
                )
            )
            module = str(common["handler"]).rpartition(".")[0]
            imports = import_top(module, env)
            rows.append(Row("  import top 5: " + ", ".join(f"{name} {ms:.0f} ms" for name, ms in imports), ""))
            profiled = run_child(common | {"minimal": False, "event": new_event()}, env, profile=True)
            first = call_top(profiled["tottime"])
            rows.append(Row("  first call top 5 (own time): " + ", ".join(f"{n} {ms:.0f} ms" for n, ms in first), ""))
        rows += priming_rows(subjects, rounds)
    return rows


def priming_rows(subjects: list[Any], rounds: int, warm: int = 5) -> list[Row]:
    """First request after SnapStart-style priming (before-snapshot, after-restore hooks) / a warm request."""
    rows = []
    for logical_id, description, new_event, common, env in subjects:
        ratios, plain = [], []
        for _ in range(rounds):
            for prime in (True, False):
                events = [new_event() for _ in range(warm)]
                result = run_child(
                    common | {"minimal": False, "prime": prime, "event": new_event(), "warm_events": events}, env
                )
                (ratios if prime else plain).append(result["first"] / statistics.median(result["warm"]))
        rows.append(
            Row(
                f"primed first request / warm request {logical_id}: {description} (unprimed: "
                f"{statistics.median(plain):.1f})",
                f"{statistics.median(ratios):.2f}",
                "<= 1.2",
            )
        )
    return rows


def main() -> int:
    rounds = int(os.environ.get("BENCH_ROUNDS", "3" if os.environ.get("BENCH_QUICK") else "11"))
    with probes_like_lambda():
        rows = [Row("fresh processes import third-party packages from", third_party_source()), *measure(rounds)]
    for row in rows:
        print(f"| {row.metric} | {row.value} | {row.target} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
