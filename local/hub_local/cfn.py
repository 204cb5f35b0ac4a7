"""CloudFormation as the local runner reads it: the YAML loader (short tags) and the intrinsic-function Resolver."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from hub_local.language_extensions import expand_language_extensions

# The local account's pseudo parameters (AWS::Region, AWS::AccountId, AWS::StackName...).
REGION: Final = "eu-west-1"
ACCOUNT_ID: Final = "123456789012"
URL_SUFFIX: Final = "amazonaws.com"
DEFAULT_STACK_NAME: Final = "hub-local"


class TemplateError(ValueError):
    """The template (or a parameter override) cannot be served locally as written."""


class _NoValue:
    """AWS::NoValue: the property it stands for is removed, not set to null."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Final = _NoValue()


# ----------------------------------------------------------------------------------------------- YAML loading


# libyaml's loader where PyYAML was built with it: a template parses about ten times faster, and the local runner
# parses one for every stack it starts.
_SafeLoader: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CfnLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """SafeLoader that turns CloudFormation short tags into their long JSON form."""


def _construct_node(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value = _construct_node(loader, node)
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        # The short "Res.Attr" form splits on the first dot only: attribute names may contain dots.
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_tag)


def load_yaml(path: str | Path, *, expand: bool = True) -> dict[str, Any]:
    """Parse a template file (short tags included) into plain dicts and lists.

    With `expand`, AWS::LanguageExtensions' Fn::ForEach loops are unrolled (hub_local.language_extensions): what is
    read is what a deploy creates, which every reader here wants; `expand=False` gives the template as written.
    """
    with Path(path).open(encoding="utf-8") as stream:
        document = yaml.load(stream, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader
    if not isinstance(document, dict):
        raise TemplateError(f"{path}: not a CloudFormation template (top level is not a mapping)")
    if not expand:
        return document
    try:
        return expand_language_extensions(document)
    except ValueError as error:
        raise TemplateError(f"{path}: {error}") from None


# ------------------------------------------------------------------------------------------------ intrinsics

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class Resolver:
    """Resolves intrinsic functions against parameter values and local physical values of resources."""

    def __init__(
        self,
        *,
        parameters: Mapping[str, Any],
        physical: Mapping[str, Mapping[str, Any]],
        conditions: Mapping[str, Any] | None = None,
        mappings: Mapping[str, Any] | None = None,
        region: str = REGION,
        account_id: str = ACCOUNT_ID,
        stack_name: str = DEFAULT_STACK_NAME,
    ) -> None:
        self.parameters = parameters
        self.physical = physical
        self.conditions = conditions or {}
        self.mappings = mappings or {}
        self.pseudo: dict[str, Any] = {
            "AWS::Region": region,
            "AWS::AccountId": account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{account_id}:stack/{stack_name}/local",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        self._condition_cache: dict[str, bool] = {}
        self._functions: dict[str, Callable[[Any], Any]] = {
            "Ref": self._ref,
            "Condition": self.condition,
            "Fn::Sub": self._sub,
            "Fn::GetAtt": self._get_att,
            "Fn::Join": self._join,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::If": self._if,
            "Fn::Equals": self._equals,
            "Fn::Not": self._not,
            "Fn::And": lambda args: all(self._truth(arg) for arg in args),
            "Fn::Or": lambda args: any(self._truth(arg) for arg in args),
            "Fn::FindInMap": self._find_in_map,
            "Fn::Base64": lambda arg: base64.b64encode(str(self.resolve(arg)).encode()).decode(),
            "Fn::GetAZs": lambda _arg: [f"{self.pseudo['AWS::Region']}{zone}" for zone in "abc"],
            "Fn::ToJsonString": lambda arg: json.dumps(self.resolve(arg), separators=(",", ":")),
            "Fn::Length": lambda arg: len(self.resolve(arg)),
        }

    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic in `value`, recursively; AWS::NoValue entries are dropped."""
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, argument),) = value.items()
                # A one-key {"Condition": {...}} is an ordinary property (IAM statements), not a reference.
                if key in self._functions and (key != "Condition" or isinstance(argument, str)):
                    return self._functions[key](argument)
                if key.startswith("Fn::"):
                    raise TemplateError(f"{key} cannot be resolved locally")
            resolved = {key: self.resolve(item) for key, item in value.items()}
            return {key: item for key, item in resolved.items() if item is not NO_VALUE}
        if isinstance(value, list):
            return [item for item in (self.resolve(item) for item in value) if item is not NO_VALUE]
        return value

    def condition(self, name: str) -> bool:
        """The value of a named condition of the template's Conditions section."""
        if name not in self._condition_cache:
            if name not in self.conditions:
                raise TemplateError(f"unknown condition {name!r}")
            self._condition_cache[name] = self._truth(self.conditions[name])
        return self._condition_cache[name]

    def _truth(self, expression: Any) -> bool:
        value = self.resolve(expression)
        if isinstance(value, str):
            return value.lower() == "true"
        return bool(value)

    def _ref(self, name: Any) -> Any:
        if not isinstance(name, str):
            raise TemplateError(f"Ref takes a name, not {name!r}")
        if name in self.parameters:
            return self.parameters[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.physical:
            return self.physical[name]["Ref"]
        raise TemplateError(f"Ref to unknown parameter or resource {name!r}")

    def _get_att(self, argument: Any) -> Any:
        logical_id, attribute = (self.resolve(part) for part in argument)
        try:
            return self.physical[logical_id][attribute]
        except KeyError:
            raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute} has no local value") from None

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], self.resolve(argument[1])
        else:
            text, variables = argument, {}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                value = variables[name]
            elif "." in name and name not in self.parameters and name not in self.pseudo:
                value = self._get_att(name.split(".", 1))
            else:
                value = self._ref(name)
            return as_text(value)

        return _SUB_VARIABLE.sub(substitute, text)

    def _join(self, argument: Any) -> str:
        delimiter, items = argument
        return str(delimiter).join(as_text(item) for item in self.resolve(items))

    def _select(self, argument: Any) -> Any:
        index, items = argument
        return self.resolve(items)[int(self.resolve(index))]

    def _split(self, argument: Any) -> list[str]:
        delimiter, source = argument
        return str(self.resolve(source)).split(str(delimiter))

    def _if(self, argument: Any) -> Any:
        name, when_true, when_false = argument
        return self.resolve(when_true if self.condition(name) else when_false)

    def _equals(self, argument: Any) -> bool:
        left, right = (as_text(self.resolve(item)) for item in argument)
        return left == right

    def _not(self, argument: Any) -> bool:
        return not self._truth(argument[0])

    def _find_in_map(self, argument: Any) -> Any:
        map_name, top_key, second_key = (self.resolve(part) for part in argument[:3])
        try:
            return self.mappings[map_name][top_key][second_key]
        except KeyError:
            raise TemplateError(f"Fn::FindInMap {map_name}/{top_key}/{second_key} is not in Mappings") from None


def as_text(value: Any) -> str:
    """CloudFormation's string form of a resolved value (YAML booleans and numbers included)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(as_text(item) for item in value)
    return str(value)
