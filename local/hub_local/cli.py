"""Command line of the local runner: `run` the stack, `invoke` one function, `put-events` on a running stack's
bus, measure a `layer-size`."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
import traceback
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Final, TextIO
from urllib.parse import urlsplit

import yaml

from hub_local import envvars
from hub_local.eventbus import entries_from_document
from hub_local.examples import ExampleError, prepare
from hub_local.gateway import EVENTS_PATH, STACK_PATH
from hub_local.openapi import DOCUMENT_PATH, OpenApiError, build_document, render
from hub_local.resources import port_if_free
from hub_local.stack import HandlerImportError, LocalStack
from hub_local.template import REGION, ScheduleSpec, TemplateError, load_template, load_yaml

LAYER_LIMIT_UNZIPPED: Final = 250 * 1024 * 1024
EXIT_USAGE: Final = 2
_LOOPBACK: Final = ("127.0.0.1", "localhost", "::1")


class UsageError(Exception):
    """A mistake in the command line or its inputs: reported in one line, exit status 2."""


def human_size(size: int) -> str:
    """Binary units with one decimal, as `du -h` and the Lambda console show sizes."""
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def layer_sizes(directory: Path) -> tuple[int, int]:
    """(unzipped, zipped) bytes of a directory, zipped with deflate the way a deployment package is."""
    files = sorted(path for path in directory.rglob("*") if path.is_file())
    unzipped = sum(path.stat().st_size for path in files)
    with tempfile.TemporaryFile() as sink:
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, path.relative_to(directory).as_posix())
        zipped = sink.tell()
    return unzipped, zipped


def _parameter_overrides(values: Sequence[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for item in values:
        # `sam deploy --parameter-overrides` takes "K=V K2=V2" as one argument too.
        for pair in item.split():
            name, separator, value = pair.partition("=")
            if not separator or not name:
                raise UsageError(f"parameter override {pair!r} is not NAME=VALUE")
            overrides[name] = value
    return overrides


def _env_vars(path: str | None) -> dict[str, dict[str, str]]:
    if path is None:
        return {}
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read --env-vars {path}: {error}") from None
    if not isinstance(document, dict) or not all(isinstance(value, dict) for value in document.values()):
        raise UsageError(f'--env-vars {path}: expected {{"FunctionId" or "Parameters": {{"VAR": "value"}}}}')
    return {name: {key: str(value) for key, value in values.items()} for name, values in document.items()}


def _read_json(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read event file {path}: {error.strerror or error}") from None
    try:
        return json.loads(text)
    except ValueError as error:
        raise UsageError(f"event file {path} is not valid JSON: {error}") from None


def _read_event(path: str) -> dict[str, Any]:
    event = _read_json(path)
    if not isinstance(event, dict):
        raise UsageError(f"event file {path} must hold a JSON object, not {type(event).__name__}")
    return event


def _check_template(arguments: argparse.Namespace) -> dict[str, str]:
    overrides = _parameter_overrides(arguments.parameter_overrides)
    try:
        template = load_template(arguments.template, parameter_overrides=overrides)
    except FileNotFoundError:
        raise UsageError(f"template {arguments.template} not found") from None
    except (TemplateError, yaml.YAMLError) as error:
        raise UsageError(f"template {arguments.template}: {error}".replace("\n", " ")) from None
    if getattr(arguments, "function", None) and arguments.function not in template.functions:
        known = ", ".join(sorted(template.functions)) or "none"
        raise UsageError(f"no function {arguments.function!r} in {arguments.template} (functions: {known})")
    return overrides


def _invoke(arguments: argparse.Namespace) -> int:
    overrides = _check_template(arguments)
    env_overrides = _env_vars(arguments.env_vars)
    event = _read_event(arguments.event_file)
    stdout = sys.stdout
    # Like `sam local invoke`: stdout carries the result only, everything the function prints goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        stack = LocalStack(
            arguments.template,
            gateway_port=None,
            pump_queues=False,
            parameter_overrides=overrides,
            env_overrides=env_overrides,
        )
        with stack:
            try:
                # Events files bring their earlier state (a seed) and get their tokens filled in (hub_local.examples).
                event_path = None if arguments.event_file == "-" else Path(arguments.event_file)
                event = prepare(stack, event_path, event)
                result = stack.invoke(arguments.function, event)
            except (HandlerImportError, ExampleError) as error:
                print(f"hub_local invoke: {error}", file=sys.stderr)
                return 1
            except Exception as error:  # reported as the Lambda runtime reports it
                traceback.print_exc(file=sys.stderr)
                error_document = {
                    "errorMessage": str(error),
                    "errorType": type(error).__name__,
                    "stackTrace": traceback.format_tb(error.__traceback__),
                }
                print(json.dumps(error_document), file=stdout)
                return 1
    print(json.dumps(result), file=stdout)
    return 0


def _print_banner(stack: LocalStack, out: TextIO) -> None:
    lines = [f"hub_local: serving {stack.template_path} (stage {stack.template.stage})"]
    lines.append(f"  gateway  {stack.gateway_url}")
    lines.extend(f"    {route['method']:<7} {route['url']}  -> {route['function']}" for route in stack.routes)
    lines.append(f"    GET     {stack.gateway_url}/_local/routes  (this list, as JSON)")
    lines.append(f"    GET     {stack.gateway_url}{STACK_PATH}  (endpoints and resources, for the hub CLI)")
    for name, url in stack.partner_urls.items():
        origin = "sandbox" if name in stack.sandboxes else "override"
        lines.append(f"  partner  {name:<10} {url}  ({origin})")
    lines.extend(f"  web      {url}  ({name})" for name, url in stack.web_pages.items())
    lines.append(f"  moto     {stack.moto_url}  (AWS_ENDPOINT_URL of every function)")
    lines.extend(
        f"  queue    {pump.queue.logical_id} -> {pump.function} "
        f"(batch {pump.source.batch_size}, retry after {pump.retry_seconds} s)"
        for pump in stack.pumps
    )
    print("\n".join(lines), file=out, flush=True)


def _print_sam_banner(stack: LocalStack, env_file: Path, arguments: argparse.Namespace, out: TextIO) -> None:
    """Where a real `sam local invoke` (Docker) finds this stack: the env-vars file, and who may reach it."""
    network = (
        "--docker-network host" if arguments.advertise is None else "(container reaches " + arguments.advertise + ")"
    )
    lines = [
        f"  sam      sam local invoke FUNCTION -e EVENT --env-vars {env_file} --region {REGION} {network}",
    ]
    if arguments.host not in _LOOPBACK:
        lines.append(
            f"  WARNING  listening on {arguments.host}: other machines can reach moto, the sandboxes and the gateway,"
            " whose AWS_IAM routes are open locally"
        )
    print("\n".join(lines), file=out, flush=True)


def _print_event_banner(stack: LocalStack, out: TextIO) -> None:
    """The event side of the banner: rules, schedules and the control route that puts events on a bus."""
    lines: list[str] = []
    for rule in stack.event_rules:
        targets = ", ".join(target.describe for target in rule.targets) or "no served target"
        state = "" if rule.enabled else "  (DISABLED)"
        lines.append(f"  rule     {rule.name} on bus {rule.bus} -> {targets}{state}")
    lines.extend(f"  schedule {_schedule_line(stack, schedule)}" for schedule in stack.schedules)
    if stack.gateway_url is not None:
        lines.append(f"  events   POST {stack.gateway_url}{EVENTS_PATH}  (python -m hub_local put-events FILE)")
    lines.append("Ctrl-C to stop.")
    print("\n".join(lines), file=out, flush=True)


def _schedule_line(stack: LocalStack, schedule: ScheduleSpec) -> str:
    if not schedule.enabled:
        when = "disabled"
    elif not schedule.expression.timer_supported:
        when = "on demand only (L, W or # in its cron)"
    elif stack.schedule_timer is None:
        when = "timer off"
    else:
        when = "timer on"
    name = f"{schedule.function}.{schedule.event_name}" if schedule.function else schedule.logical_id
    return f"{name} {schedule.expression.text} -> {schedule.target.describe}  ({when})"


def _web_root(arguments: argparse.Namespace) -> Path | None:
    """The embeddable pages beside the template (web/), unless turned off or absent."""
    root = Path(arguments.template).parent / "web"
    return None if arguments.no_web or not root.is_dir() else root


def _web_port(arguments: argparse.Namespace) -> int:
    """The pages' port: as asked, else the gateway's + 1 when that is free, else any free port (the banner says)."""
    if arguments.web_port is not None:
        return int(arguments.web_port)
    return port_if_free(arguments.port + 1) if arguments.port else 0


def _run(arguments: argparse.Namespace) -> int:
    overrides = _check_template(arguments)
    stack = LocalStack(
        arguments.template,
        gateway_port=arguments.port,
        parameter_overrides=overrides,
        env_overrides=_env_vars(arguments.env_vars),
        sqs_retry_seconds=arguments.retry_seconds,
        run_schedules=not arguments.no_schedules,
        async_retry_seconds=arguments.async_retry_seconds,
        web_root=_web_root(arguments),
        web_port=_web_port(arguments),
        bind_host=arguments.host,
    )
    stopping = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    previous = {number: signal.signal(number, request_stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            stack.start()
        except OSError as error:
            print(f"hub_local run: cannot start: {error}", file=sys.stderr)
            return 1
        _print_banner(stack, sys.stdout)
        env_path = Path(arguments.env_vars_file or Path(arguments.template).parent / envvars.DEFAULT_FILE)
        env_file = envvars.write(stack, env_path, arguments.advertise)
        _print_sam_banner(stack, env_file, arguments, sys.stdout)
        _print_event_banner(stack, sys.stdout)
        stopping.wait()
        print("hub_local: stopping", file=sys.stderr)
        return 0
    finally:
        stack.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)


def _put_events(arguments: argparse.Namespace) -> int:
    split = urlsplit(arguments.url)
    if split.scheme != "http" or split.hostname not in _LOOPBACK:
        raise UsageError(f"--url {arguments.url} is not an http URL on this machine (127.0.0.1)")
    try:
        entries = entries_from_document(_read_json(arguments.file))
    except ValueError as error:
        raise UsageError(f"event file {arguments.file}: {error}") from None
    if arguments.bus:
        entries = [{"EventBusName": arguments.bus} | entry for entry in entries]
    request = urllib.request.Request(  # noqa: S310 - http on loopback only, checked above
        arguments.url.rstrip("/") + EVENTS_PATH,
        data=json.dumps({"Entries": entries}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - see above
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        print(f"hub_local put-events: {error.code}: {error.read().decode(errors='replace')}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        print(f"hub_local put-events: no local stack at {arguments.url} ({reason})", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2))
    return 1 if answer.get("FailedEntryCount") else 0


def _expand(arguments: argparse.Namespace) -> int:
    # Checkov does not know Fn::ForEach: given the template as written it fails to merge Globals into the functions
    # ("Failed to create a new template with enriched resources") and checks them without Globals' Runtime and
    # Environment. So make scan has it check this expansion, where every resource is a mapping (inline skips kept).
    try:
        document = load_yaml(arguments.template)
    except FileNotFoundError:
        raise UsageError(f"template {arguments.template} not found") from None
    except TemplateError as error:
        print(f"hub_local expand: {error}", file=sys.stderr)
        return 1
    output = Path(arguments.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return 0


def _openapi(arguments: argparse.Namespace) -> int:
    output = Path(arguments.output) if arguments.output else Path(arguments.template).parent / DOCUMENT_PATH
    try:
        text = render(build_document(arguments.template))
    except FileNotFoundError:
        raise UsageError(f"template {arguments.template} not found") from None
    except (OpenApiError, TemplateError) as error:
        print(f"hub_local openapi: {error}", file=sys.stderr)
        return 1
    current = output.read_text(encoding="utf-8") if output.is_file() else None
    if arguments.check:
        if current != text:
            print(f"hub_local openapi: {output} is stale; run make openapi", file=sys.stderr)
            return 1
        print(f"{output} is up to date")
        return 0
    if current != text:
        output.write_text(text, encoding="utf-8")
    print(f"wrote {output}" if current != text else f"{output} is up to date")
    return 0


def _layer_size(arguments: argparse.Namespace) -> int:
    directory = Path(arguments.directory)
    if not directory.is_dir():
        raise UsageError(f"layer directory {directory} does not exist")
    unzipped, zipped = layer_sizes(directory)
    name = arguments.name or directory.resolve().name
    print(
        f"layer {name}: {human_size(unzipped)} ({unzipped} bytes) unzipped, "
        f"{human_size(zipped)} ({zipped} bytes) zipped (limit {human_size(LAYER_LIMIT_UNZIPPED)} unzipped)"
    )
    if unzipped > LAYER_LIMIT_UNZIPPED:
        print(f"layer {name} is over Lambda's unzipped limit", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hub_local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def stack_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--template", "-t", default="template.yaml", help="SAM template (template.yaml)")
        command.add_argument(
            "--parameter-overrides", nargs="+", default=[], metavar="NAME=VALUE", help="template parameters"
        )
        command.add_argument("--env-vars", metavar="FILE", help='JSON {"FunctionId"|"Parameters": {VAR: value}}')

    run = commands.add_parser("run", help="serve the template on 127.0.0.1 until Ctrl-C")
    stack_options(run)
    # A string default goes through type=int too, so a bad $PORT is a usage error, not a traceback.
    run.add_argument("--port", type=int, default=os.environ.get("PORT", "3000"), help="gateway port ($PORT, 3000)")
    run.add_argument("--retry-seconds", type=float, default=2.0, help="when a failed SQS message comes back")
    run.add_argument(
        "--async-retry-seconds",
        type=float,
        default=1.0,
        help="pause before Lambda retries a failed asynchronous (event, schedule) invocation",
    )
    run.add_argument("--no-schedules", action="store_true", help="do not fire schedules on their timer")
    run.add_argument(
        "--web-port", type=int, default=os.environ.get("WEB_PORT"), help="port of the pages (web/) ($WEB_PORT, port+1)"
    )
    run.add_argument("--no-web", action="store_true", help="do not serve the pages (web/) and Swagger UI")
    run.add_argument(
        "--host",
        default="127.0.0.1",
        # Every URL the stack hands out names 127.0.0.1, so only loopback itself or every address will do.
        choices=("127.0.0.1", "0.0.0.0"),  # noqa: S104 - opt-in, and the banner warns
        help="address moto, the gateway and the sandboxes listen on (127.0.0.1; 0.0.0.0 for a container to reach them)",
    )
    run.add_argument(
        "--advertise",
        metavar="HOST",
        help="host name a container reaches this machine by, written into the env-vars file's URLs "
        "(e.g. host.docker.internal; default 127.0.0.1, for --docker-network host)",
    )
    run.add_argument(
        "--env-vars-file",
        metavar="FILE",
        help=f"the env-vars file for sam local invoke --env-vars to write ({envvars.DEFAULT_FILE} by the template)",
    )
    run.set_defaults(handler=_run)

    put_events = commands.add_parser("put-events", help="put events on the bus of a running stack (make run)")
    put_events.add_argument(
        "file", help="JSON: PutEvents entries, {\"Entries\": [...]}, or an EventBridge event ('-' reads stdin)"
    )
    default_url = f"http://127.0.0.1:{os.environ.get('PORT', '3000')}"
    put_events.add_argument("--url", default=default_url, help=f"the running stack's gateway ({default_url})")
    put_events.add_argument("--bus", help="EventBusName of entries that name none (default: the template's bus)")
    put_events.set_defaults(handler=_put_events)

    invoke = commands.add_parser("invoke", help="invoke one function with an event file, like sam local invoke -e")
    stack_options(invoke)
    invoke.add_argument("function", help="logical id of the function")
    invoke.add_argument("event_file", help="JSON event file ('-' reads stdin)")
    invoke.set_defaults(handler=_invoke)

    openapi = commands.add_parser("openapi", help="write the HTTP API's OpenAPI document from the functions")
    openapi.add_argument("--template", "-t", default="template.yaml", help="SAM template (template.yaml)")
    openapi.add_argument("--output", "-o", help=f"where to write it ({DOCUMENT_PATH} beside the template)")
    openapi.add_argument("--check", action="store_true", help="write nothing; exit 1 when the file is stale")
    openapi.set_defaults(handler=_openapi)

    expand = commands.add_parser("expand", help="write the template with its Fn::ForEach loops unrolled, as JSON")
    expand.add_argument("template", help="SAM template (template.yaml)")
    expand.add_argument("output", help="the JSON file to write (make scan: .aws-sam/scan-template.json)")
    expand.set_defaults(handler=_expand)

    layer = commands.add_parser("layer-size", help="unzipped and zipped size of a built layer directory")
    layer.add_argument("directory")
    layer.add_argument("--name", help="name to print (default: the directory's name)")
    layer.set_defaults(handler=_layer_size)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        status: int = arguments.handler(arguments)
    except UsageError as error:
        print(f"hub_local {arguments.command}: {error}", file=sys.stderr)
        return EXIT_USAGE
    return status
