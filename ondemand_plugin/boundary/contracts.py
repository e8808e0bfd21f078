"""The JSON Schemas of ``contracts/``: found in the installed package or the source tree,
compiled once, and used to validate everything that crosses a hook."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import referencing
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing.jsonschema import DRAFT202012

DRAFT202012_URI = "https://json-schema.org/draft/2020-12/schema"
_ANNOTATIONS = {"title", "description"}

BASE_URI = "https://ondemand-plugin.org/contracts/v1/"


def contracts_dir() -> Traversable:
    """The folder of schema files: inside the installed wheel, else beside the source tree."""
    installed = resources.files("ondemand_plugin") / "contracts"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / "contracts"


@cache
def _registry() -> referencing.Registry[Any]:
    registry: referencing.Registry[Any] = referencing.Registry()
    for entry in contracts_dir().iterdir():
        if entry.name.endswith(".json"):
            contents = json.loads(entry.read_text(encoding="utf-8"))
            resource = referencing.Resource.from_contents(
                contents, default_specification=DRAFT202012
            )
            registry = registry.with_resource(BASE_URI + entry.name, resource)
    return registry.crawl()


def schema_names() -> list[str]:
    """Every schema file's name without ``.json``."""
    return sorted(
        entry.name.removesuffix(".json")
        for entry in contracts_dir().iterdir()
        if entry.name.endswith(".json")
    )


@cache
def schema(name: str) -> dict[str, Any]:
    """``contracts/<name>.json`` with every ``$ref`` replaced by what it points to.

    Validation runs on every hook call; resolving references costs more than checking the data,
    so they are resolved once, here. The contracts have no recursive references.
    """
    uri = BASE_URI + name + ".json"
    inlined = _inline(_registry().contents(uri), _registry().resolver(base_uri=uri))
    return {"$schema": DRAFT202012_URI, **inlined}


def _inline(node: Any, resolver: referencing._core.Resolver[Any]) -> Any:
    if isinstance(node, list):
        return [_inline(item, resolver) for item in node]
    if not isinstance(node, dict):
        return node
    inlined = {
        key: _inline(value, resolver)
        for key, value in node.items()
        if key not in ("$ref", "$id", "$schema", "$defs")
    }
    if "$ref" not in node:
        return inlined
    resolved = resolver.lookup(node["$ref"])
    target = _inline(resolved.contents, resolved.resolver)
    if set(inlined) <= _ANNOTATIONS:
        return {**target, **inlined}
    return {"allOf": [target, inlined]}


@cache
def validator(name: str) -> Draft202012Validator:
    """The compiled validator of ``contracts/<name>.json``."""
    return Draft202012Validator(schema(name), format_checker=Draft202012Validator.FORMAT_CHECKER)


def first_error(name: str, instance: object, *, remember: bool = True) -> ValidationError | None:
    """The most relevant violation of schema ``name``, or None when ``instance`` is valid.

    Hosts answer the same records again and again (a dialog's open, then its submit), and a
    schema check costs far more than the rest of a hook call, so instances already found valid
    are remembered by their ``repr``, which tells apart every type a host could send. Pass
    ``remember=False`` for what a stranger may have sent (an unsigned request): nothing derived
    from it is kept.
    """
    key = (name, repr(instance)) if remember else None
    if key in _known_valid:
        return None
    error: ValidationError | None = best_match(validator(name).iter_errors(instance))
    if error is None and key is not None:
        if len(_known_valid) >= KNOWN_VALID_LIMIT:
            _known_valid.clear()
        _known_valid[key] = None
    return error


KNOWN_VALID_LIMIT = 4096
_known_valid: dict[tuple[str, str], None] = {}


def describe(error: ValidationError) -> tuple[str, str]:
    """A dotted path to the offending field, and what is wrong with it, in one short sentence.

    The offending value is never echoed: it may be an address or a secret.
    """
    path = ".".join(str(part) for part in error.absolute_path) or "(the whole object)"
    return path, _PROBLEMS.get(str(error.validator), _generic)(error)


def _expected_form(error: ValidationError) -> str:
    """What a value matching the pattern looks like: the schema says it in ``x-expected``, which
    every pattern in ``contracts/`` has, because a regular expression tells staff nothing."""
    expected = error.schema.get("x-expected") if isinstance(error.schema, dict) else None
    return f"must be {expected}" if expected else "has the wrong form"


def _generic(error: ValidationError) -> str:
    return f"breaks the schema rule {error.validator!r}"


_PROBLEMS: dict[str, Callable[[ValidationError], str]] = {
    "required": lambda e: e.message,
    "additionalProperties": lambda e: e.message,
    "type": lambda e: f"must be of type {e.validator_value}",
    "pattern": lambda e: _expected_form(e),
    "minLength": lambda e: f"must have at least {e.validator_value} character(s)",
    "maxLength": lambda e: f"must have at most {e.validator_value} characters",
    "minItems": lambda e: f"must have at least {e.validator_value} item(s)",
    "maxItems": lambda e: f"must have at most {e.validator_value} items",
    "enum": lambda e: f"must be one of {', '.join(repr(v) for v in e.validator_value)}",  # type: ignore[union-attr]
    "const": lambda e: f"must be {e.validator_value!r}",
    "minimum": lambda e: f"must be at least {e.validator_value}",
    "maximum": lambda e: f"must be at most {e.validator_value}",
    "exclusiveMinimum": lambda e: f"must be more than {e.validator_value}",
    "oneOf": lambda e: "matches none of the allowed forms",
    "propertyNames": lambda e: "has a key that is not allowed",
    "dependentRequired": lambda e: e.message,
    "not": lambda e: "combines settings that exclude each other",
}


def check(
    name: str,
    instance: object,
    make_error: Callable[[str, str], Exception],
    *,
    remember: bool = True,
) -> None:
    """Validate ``instance`` against schema ``name``; raise ``make_error(path, problem)`` if not.
    ``remember``: as for ``first_error``."""
    error = first_error(name, instance, remember=remember)
    if error is not None:
        raise make_error(*describe(error))
