"""`hub local run`: serve the template on 127.0.0.1 until Ctrl-C (or SIGTERM), with a banner of what it serves."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Final, TextIO

import click

from hub_cli.commands.local import common
from hub_cli.commands.local.common import check_template, fail, reported, stack_options
from hub_local import envvars
from hub_local.cfn import REGION
from hub_local.gateway import EVENTS_PATH, STACK_PATH
from hub_local.resources import port_if_free
from hub_local.specs import ScheduleSpec
from hub_local.stack import LocalStack

LOOPBACK: Final = ("127.0.0.1", "localhost", "::1")
# Every URL the stack hands out names 127.0.0.1, so only loopback itself or every address will do.
HOSTS: Final = ("127.0.0.1", "0.0.0.0")  # noqa: S104 - opt-in, and the banner warns


def print_banner(stack: LocalStack, out: TextIO) -> None:
    lines = [f"hub local run: serving {stack.template_path} (stage {stack.template.stage})"]
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


def print_sam_banner(env_file: Path, host: str, advertise: str | None, out: TextIO) -> None:
    """Where a real `sam local invoke` (Docker) finds this stack: the env-vars file, and who may reach it."""
    network = "--docker-network host" if advertise is None else "(container reaches " + advertise + ")"
    lines = [
        f"  sam      sam local invoke FUNCTION -e EVENT --env-vars {env_file} --region {REGION} {network}",
    ]
    if host not in LOOPBACK:
        lines.append(
            f"  WARNING  listening on {host}: other machines can reach moto, the sandboxes and the gateway,"
            " whose AWS_IAM routes are open locally"
        )
    print("\n".join(lines), file=out, flush=True)


def print_event_banner(stack: LocalStack, out: TextIO) -> None:
    """The event side of the banner: rules, schedules and the control route that puts events on a bus."""
    lines: list[str] = []
    for rule in stack.event_rules:
        targets = ", ".join(target.describe for target in rule.targets) or "no served target"
        state = "" if rule.enabled else "  (DISABLED)"
        lines.append(f"  rule     {rule.name} on bus {rule.bus} -> {targets}{state}")
    lines.extend(f"  schedule {_schedule_line(stack, schedule)}" for schedule in stack.schedules)
    if stack.gateway_url is not None:
        lines.append(f"  events   POST {stack.gateway_url}{EVENTS_PATH}  (hub local put-events FILE)")
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


def pages_root(template: str, no_web: bool) -> Path | None:
    """The embeddable pages beside the template (web/), unless turned off or absent."""
    root = Path(template).parent / "web"
    return None if no_web or not root.is_dir() else root


def pages_port(asked: int | None, gateway_port: int) -> int:
    """The pages' port: as asked, else the gateway's + 1 when that is free, else any free port (the banner says)."""
    if asked is not None:
        return asked
    return port_if_free(gateway_port + 1) if gateway_port else 0


@click.command("run", short_help="Serve the template on 127.0.0.1 until Ctrl-C.")
@stack_options
@click.option("--port", type=int, default=3000, envvar="PORT", show_default="$PORT, 3000", help="Gateway port.")
@click.option(
    "--retry-seconds", type=float, default=2.0, show_default=True, help="When a failed SQS message comes back."
)
@click.option(
    "--async-retry-seconds",
    type=float,
    default=1.0,
    show_default=True,
    help="Pause before Lambda retries a failed asynchronous (event, schedule) invocation.",
)
@click.option("--no-schedules", is_flag=True, help="Do not fire schedules on their timer.")
@click.option(
    "--web-port", type=int, envvar="WEB_PORT", show_default="$WEB_PORT, port+1", help="Port of the pages (web/)."
)
@click.option("--no-web", is_flag=True, help="Do not serve the pages (web/) and Swagger UI.")
@click.option(
    "--host",
    type=click.Choice(HOSTS),
    default="127.0.0.1",
    show_default=True,
    help="Address moto, the gateway and the sandboxes listen on (0.0.0.0 for a container to reach them).",
)
@click.option(
    "--advertise",
    metavar="HOST",
    help="Host name a container reaches this machine by, written into the env-vars file's URLs "
    "(e.g. host.docker.internal; default 127.0.0.1, for --docker-network host).",
)
@click.option(
    "--env-vars-file",
    metavar="FILE",
    help=f"The env-vars file to write for sam local invoke --env-vars ({envvars.DEFAULT_FILE} by the template).",
)
@reported
def command(
    *,
    template: str,
    parameter_overrides: tuple[str, ...],
    env_vars: str | None,
    port: int,
    retry_seconds: float,
    async_retry_seconds: float,
    no_schedules: bool,
    web_port: int | None,
    no_web: bool,
    host: str,
    advertise: str | None,
    env_vars_file: str | None,
) -> int:
    """Serve the template's functions, queues, bus, schedules and pages on 127.0.0.1 (moto, partner sandboxes,
    gateway) until Ctrl-C or SIGTERM; the banner lists every URL."""
    overrides = check_template(template, parameter_overrides)
    stack = LocalStack(
        template,
        gateway_port=port,
        parameter_overrides=overrides,
        env_overrides=common.env_vars(env_vars),
        sqs_retry_seconds=retry_seconds,
        run_schedules=not no_schedules,
        async_retry_seconds=async_retry_seconds,
        web_root=pages_root(template, no_web),
        web_port=pages_port(web_port, port),
        bind_host=host,
    )
    stopping = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    previous = {number: signal.signal(number, request_stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            stack.start()
        except OSError as error:
            return fail(f"cannot start: {error}")
        print_banner(stack, sys.stdout)
        env_path = Path(env_vars_file or Path(template).parent / envvars.DEFAULT_FILE)
        env_file = envvars.write(stack, env_path, advertise)
        print_sam_banner(env_file, host, advertise, sys.stdout)
        print_event_banner(stack, sys.stdout)
        stopping.wait()
        print("hub local run: stopping", file=sys.stderr)
        return 0
    finally:
        stack.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
