"""Expands the AWS::LanguageExtensions transform's Fn::ForEach, so that local readers see the resources a deploy makes.

CloudFormation expands the loops on deploy, and `sam build` / `sam validate` and cfn-lint do it themselves; but the
local runner, the tests that hand the template to samtranslator (which does not know the transform) and checkov read
the template as written. This is the documented semantics, in the subset the template needs:

    Fn::ForEach::<LoopName>: [<Identifier>, <Collection>, {<OutputKey>: <OutputValue>, ...}]

- `Collection` is a literal list of strings (a Ref to a list parameter is not supported here: TemplateError-like
  ValueError, so a template that starts using one fails loudly instead of losing resources);
- for each item, `${Identifier}` in keys and strings becomes the item, `&{Identifier}` the item with every
  non-alphanumeric character removed, and `{"Ref": Identifier}` the item itself;
- an `Fn::Sub` left without any `${...}` is its string, as CloudFormation resolves it: this is what lets
  `{Ref: !Sub "${Name}Function"}` and `!GetAtt [!Sub "${Queue}", QueueName]` name a logical id;
- loops nest, and may sit in Conditions, Resources, Outputs or inside a resource; a generated key that already
  exists is an error, as on deploy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

TRANSFORM: Final = "AWS::LanguageExtensions"
FOR_EACH_PREFIX: Final = "Fn::ForEach::"
_SECTIONS: Final = ("Conditions", "Resources", "Outputs")


def uses_language_extensions(document: Mapping[str, Any]) -> bool:
    transform = document.get("Transform")
    transforms = transform if isinstance(transform, list) else [transform]
    return TRANSFORM in transforms


def expand_language_extensions(document: Mapping[str, Any]) -> dict[str, Any]:
    """`document` with every Fn::ForEach expanded and AWS::LanguageExtensions dropped from Transform.

    A template without the transform is returned as it is (a copy of the top level): its Fn::ForEach keys, if any,
    would be rejected on deploy, and are left for the validators to report.
    """
    expanded = dict(document)
    if not uses_language_extensions(document):
        return expanded
    for section in _SECTIONS:
        if isinstance(document.get(section), dict):
            expanded[section] = _expand(document[section], {})
    transform = document["Transform"]
    rest = [name for name in transform if name != TRANSFORM] if isinstance(transform, list) else []
    if not rest:
        del expanded["Transform"]
    else:
        # A single remaining transform is written as a string, as templates usually do (samtranslator accepts both).
        expanded["Transform"] = rest[0] if len(rest) == 1 else rest
    return expanded


def _expand(value: Any, bindings: Mapping[str, str]) -> Any:
    """`value` with the bindings substituted and the loops inside it unrolled."""
    if isinstance(value, list):
        return [_expand(item, bindings) for item in value]
    if isinstance(value, str):
        return _substitute(value, bindings)
    if not isinstance(value, dict):
        return value
    reference = value.get("Ref") if len(value) == 1 else None
    if isinstance(reference, str) and reference in bindings:
        return bindings[reference]
    result: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(key, str) and key.startswith(FOR_EACH_PREFIX):
            for generated_key, generated in _unroll(key, item, bindings).items():
                _put(result, generated_key, generated, key)
        else:
            _put(result, _substitute(key, bindings) if isinstance(key, str) else key, _expand(item, bindings), key)
    if bindings and set(result) == {"Fn::Sub"} and isinstance(result["Fn::Sub"], str) and "${" not in result["Fn::Sub"]:
        return result["Fn::Sub"]
    return result


def _unroll(loop: str, arguments: Any, bindings: Mapping[str, str]) -> dict[str, Any]:
    if not (isinstance(arguments, list) and len(arguments) == 3 and isinstance(arguments[2], dict)):
        raise ValueError(f"{loop}: expected [Identifier, Collection, {{OutputKey: OutputValue}}]")
    identifier, collection, fragment = arguments
    if not isinstance(identifier, str) or not identifier:
        raise ValueError(f"{loop}: the identifier must be a non-empty string")
    collection = _expand(collection, bindings)
    if not (isinstance(collection, list) and all(isinstance(item, str) for item in collection)):
        raise ValueError(f"{loop}: only a literal list of strings is supported as the collection here")
    unrolled: dict[str, Any] = {}
    for item in collection:
        for key, generated in _expand(fragment, {**bindings, identifier: item}).items():
            _put(unrolled, key, generated, loop)
    return unrolled


def _substitute(text: str, bindings: Mapping[str, str]) -> str:
    for identifier, item in bindings.items():
        text = text.replace(f"${{{identifier}}}", item).replace(f"&{{{identifier}}}", re.sub(r"[^A-Za-z0-9]", "", item))
    return text


def _put(target: dict[str, Any], key: Any, value: Any, where: str) -> None:
    if key in target:
        raise ValueError(f"{where}: {key} is generated twice (or already exists)")
    target[key] = value
