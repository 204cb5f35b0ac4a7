"""What the `hub local` commands share: the template options, reading their files, and failures as one line."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import click
import yaml

from hub_cli.errors import EXIT_USAGE
from hub_cli.settings import Settings
from hub_local.cfn import TemplateError
from hub_local.template import load_template

DEFAULT_TEMPLATE: Final = "template.yaml"


class UsageError(Exception):
    """A mistake in the command line or its inputs: reported in one line, exit status 2."""


def prog() -> str:
    """The command as typed (`hub local invoke`, `hub invoke`): the prefix of every line a failure prints."""
    context = click.get_current_context(silent=True)
    return context.command_path if context is not None else "hub local"


def fail(message: str, status: int = 1) -> int:
    print(f"{prog()}: {message}", file=sys.stderr)
    return status


def reported[**P](function: Callable[P, int]) -> Callable[P, int]:
    """The command's exit status, a UsageError reported as one line with status 2."""

    @functools.wraps(function)
    def report(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            return function(*args, **kwargs)
        except UsageError as error:
            return fail(str(error), EXIT_USAGE)

    return report


def hub_template() -> str:
    """The default of --template: hub's own --template (template.yaml unless given)."""
    context = click.get_current_context(silent=True)
    settings = context.find_object(Settings) if context is not None else None
    return str(settings.template) if settings is not None else DEFAULT_TEMPLATE


def hub_url() -> str:
    """The default of put-events' --url: hub's own --url (http://127.0.0.1:$PORT unless given)."""
    context = click.get_current_context(silent=True)
    settings = context.find_object(Settings) if context is not None else None
    return settings.url if settings is not None else f"http://127.0.0.1:{os.environ.get('PORT', '3000')}"


class ManyValues(click.Option):
    """An option taking every value up to the next option (`--parameter-overrides A=1 B=2`), as `sam` and
    argparse's nargs="+" do; given again it adds more. Needs multiple=True: each value is appended."""

    def add_to_parser(self, parser: click.parser.OptionParser, ctx: click.Context) -> None:
        super().add_to_parser(parser, ctx)
        for name in self.opts:
            option = parser._long_opt.get(name) or parser._short_opt.get(name)
            if option is None:
                continue
            append = option.process

            # "--" and the next option end the values, as they end argparse's.
            def process(value: Any, state: click.parser.ParsingState, append: Any = append) -> None:
                append(value, state)
                while state.rargs and not state.rargs[0].startswith("-"):
                    append(state.rargs.pop(0), state)

            option.process = process  # type: ignore[method-assign]


template_option = click.option(
    "--template",
    "-t",
    metavar="FILE",
    default=hub_template,
    show_default="hub's --template, template.yaml",
    help="SAM template.",
)


def stack_options[F: Callable[..., Any]](function: F) -> F:
    """--template, --parameter-overrides and --env-vars: the stack `run` serves and `invoke` starts."""
    options = (
        template_option,
        click.option(
            "--parameter-overrides",
            cls=ManyValues,
            multiple=True,
            metavar="NAME=VALUE...",
            help='Template parameters ("K=V K2=V2" as one value too, as sam deploy takes them).',
        ),
        click.option("--env-vars", metavar="FILE", help='JSON {"FunctionId"|"Parameters": {VAR: value}}.'),
    )
    for option in reversed(options):
        function = option(function)
    return function


def parameter_overrides(values: Sequence[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for item in values:
        # `sam deploy --parameter-overrides` takes "K=V K2=V2" as one argument too.
        for pair in item.split():
            name, separator, value = pair.partition("=")
            if not separator or not name:
                raise UsageError(f"parameter override {pair!r} is not NAME=VALUE")
            overrides[name] = value
    return overrides


def env_vars(path: str | None) -> dict[str, dict[str, str]]:
    if path is None:
        return {}
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read --env-vars {path}: {error}") from None
    if not isinstance(document, dict) or not all(isinstance(value, dict) for value in document.values()):
        raise UsageError(f'--env-vars {path}: expected {{"FunctionId" or "Parameters": {{"VAR": "value"}}}}')
    return {name: {key: str(value) for key, value in values.items()} for name, values in document.items()}


def read_json(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read event file {path}: {error.strerror or error}") from None
    try:
        return json.loads(text)
    except ValueError as error:
        raise UsageError(f"event file {path} is not valid JSON: {error}") from None


def read_event(path: str) -> dict[str, Any]:
    event = read_json(path)
    if not isinstance(event, dict):
        raise UsageError(f"event file {path} must hold a JSON object, not {type(event).__name__}")
    return event


def check_template(template: str, overrides: Sequence[str], function: str | None = None) -> dict[str, str]:
    """The parameter overrides, once the template loads with them (and declares `function`, when given)."""
    parsed = parameter_overrides(overrides)
    try:
        loaded = load_template(template, parameter_overrides=parsed)
    except FileNotFoundError:
        raise UsageError(f"template {template} not found") from None
    except (TemplateError, yaml.YAMLError) as error:
        raise UsageError(f"template {template}: {error}".replace("\n", " ")) from None
    if function and function not in loaded.functions:
        known = ", ".join(sorted(loaded.functions)) or "none"
        raise UsageError(f"no function {function!r} in {template} (functions: {known})")
    return parsed
