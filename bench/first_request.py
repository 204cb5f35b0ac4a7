"""Child process of bench/cold_start.py: import a handler (or the minimal one) and serve its first request, timed.

Run by the parent only: `python bench/first_request.py SPEC OUT [--profile]`. SPEC is a pickle the parent wrote
(the handler, the event, and for the minimal handler the AWS calls and partner requests to replay); OUT receives
the JSON result, since the handler's logs own stdout.
"""
# The imports inside functions are what is being timed: nothing but the standard library loads before the clock.
# ruff: noqa: PLC0415

import contextlib
import json
import pickle
import sys
import time


class Context:
    """The few attributes of Lambda's context object the handlers read."""

    def __init__(self, spec: dict, request: int = 0) -> None:
        self.function_name = spec["function_name"]
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = spec["memory"]
        self.invoked_function_arn = f"arn:aws:lambda:eu-west-1:123456789012:function:{self.function_name}"
        self.aws_request_id = f"00000000-0000-4000-8000-{request:012d}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "bench"
        self.identity = self.client_context = self.tenant_id = None
        self._deadline = time.monotonic() + spec["timeout"]

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def import_minimal(spec: dict):
    import boto3
    import requests

    def handler(event, context, calls=spec["calls"], partner=spec["partner"]):
        # What a hand-written handler must do on a fresh container: a session, its clients, the same I/O.
        session = boto3.session.Session()
        clients = {}
        for service, operation, params in calls:
            if service not in clients:
                clients[service] = session.client(service)
            # A condition failing for the real handler fails here too: handled, not raised.
            with contextlib.suppress(Exception):
                getattr(clients[service], _xform(operation))(**params)
        http = requests.Session()
        for method, url, query, headers, body in partner:
            http.request(method, url, params=query, headers=headers, json=body, timeout=10)
        return {"statusCode": 200, "body": json.dumps({"ok": True})}

    return handler


def _xform(operation: str) -> str:
    import botocore

    return botocore.xform_name(operation)


def import_handler(spec: dict):
    import importlib

    module, _, function = spec["handler"].rpartition(".")
    return getattr(importlib.import_module(module), function)


def main() -> None:
    with open(sys.argv[1], "rb") as source:
        spec = pickle.load(source)  # noqa: S301 - written by our own parent process
    profile = "--profile" in sys.argv
    # A context per invocation, as on Lambda: a deadline shared by the warm requests would run out under them.
    context = Context(spec)
    started = time.perf_counter()
    handler = import_minimal(spec) if spec["minimal"] else import_handler(spec)
    imported = time.perf_counter()
    primed = 0.0
    if spec.get("prime"):
        # What SnapStart does: the before-snapshot hook, then (in a restored environment) the after-restore hook.
        from hub_core import priming

        [registration] = [r for r in priming.registered() if r.handler is handler]
        priming.before_snapshot(registration)
        priming.after_restore()
        primed = time.perf_counter() - imported
        imported = time.perf_counter()
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        response = profiler.runcall(handler, spec["event"], context)
        profiler.create_stats()
        stats = {f"{file}:{line}({name})": entry[2] for (file, line, name), entry in profiler.stats.items()}
    else:
        response = handler(spec["event"], context)
        stats = {}
    done = time.perf_counter()
    warm, answers = [], [response]
    for number, event in enumerate(spec.get("warm_events", []), start=1):
        warm_context = Context(spec, number)
        started_warm = time.perf_counter()
        answers.append(handler(event, warm_context))
        warm.append(time.perf_counter() - started_warm)
    with open(sys.argv[2], "w", encoding="utf-8") as out:
        result = {"import": imported - started, "first": done - imported, "primed": primed, "warm": warm}
        json.dump(result | {"answers": answers, "tottime": stats}, out)


if __name__ == "__main__":
    main()
