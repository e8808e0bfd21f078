"""The TypedDicts of ``hookspecs.types`` say what the schemas of ``contracts/`` say: the same keys,
the same required ones, the same fixed values, down into nested shapes."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints, is_typeddict

import mypy.api
import pytest

import hookspecs.types
from hookspecs.shapes import SHAPES
from ondemand_plugin.boundary import contracts

# Schemas that describe no JSON of their own crossing a hook, and why.
NOT_JSON_SHAPES = {
    "common": "definitions the others refer to",
    "delivery-receipt": "a channel answers the DeliveryReceipt value class",
    "outbound-message": "a channel is given the OutboundMessage value class",
}


def object_schemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The object schemas a value must match: ``allOf`` merged, ``oneOf`` one per branch."""
    if "oneOf" in schema:
        return [merged for branch in schema["oneOf"] for merged in object_schemas(branch)]
    if "allOf" in schema:
        merged: dict[str, Any] = {"properties": {}, "required": []}
        for part in schema["allOf"]:
            for piece in object_schemas(part):
                merged["properties"].update(piece.get("properties", {}))
                merged["required"] += piece.get("required", [])
                merged.setdefault("type", piece.get("type"))
        return [merged]
    return [schema]


def typed_dicts(annotation: Any) -> list[Any]:
    """The TypedDicts an annotation holds: itself, the items of a list, the members of a union."""
    if is_typeddict(annotation):
        return [annotation]
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list):
        return [found for arg in get_args(annotation) for found in typed_dicts(arg)]
    return []


def literal_values(annotation: Any) -> set[Any] | None:
    if get_origin(annotation) is Literal:
        return set(get_args(annotation))
    return None


def mismatches(shape: Any, schema: dict[str, Any], where: str) -> list[str]:
    """Every difference between ``shape`` (a TypedDict or a union of them) and ``schema``."""
    shapes = typed_dicts(shape)
    branches = [branch for branch in object_schemas(schema) if "properties" in branch]
    if len(shapes) != len(branches):
        return [f"{where}: {len(shapes)} TypedDict(s) for {len(branches)} object schema(s)"]
    problems = []
    for typed, branch in zip(shapes, branches, strict=True):
        problems += _compare(typed, branch, f"{where} ({typed.__name__})")
    return problems


def _compare(typed: Any, schema: dict[str, Any], where: str) -> list[str]:
    properties: dict[str, Any] = schema["properties"]
    hints = get_type_hints(typed)
    problems = []
    if set(hints) != set(properties):
        problems.append(
            f"{where}: keys {sorted(set(hints) ^ set(properties))} are in one and not the other"
        )
    if set(typed.__required_keys__) != set(schema.get("required", [])):
        problems.append(
            f"{where}: required {sorted(typed.__required_keys__)}, "
            f"the schema requires {sorted(schema.get('required', []))}"
        )
    for key in set(hints) & set(properties):
        problems += _compare_value(hints[key], properties[key], f"{where}.{key}")
    return problems


def _compare_value(annotation: Any, schema: dict[str, Any], where: str) -> list[str]:
    fixed = schema.get("enum", [schema["const"]] if "const" in schema else None)
    values = literal_values(annotation)
    if fixed is not None and values is not None and values != set(fixed):
        return [f"{where}: Literal{sorted(values, key=str)} for the schema's {fixed}"]
    items = schema.get("items") if schema.get("type") == "array" else None
    nested = items if items is not None else schema
    if typed_dicts(annotation) or any("properties" in s for s in object_schemas(nested)):
        return mismatches(annotation, nested, where)
    return []


def test_every_schema_that_crosses_a_hook_has_a_typed_dict() -> None:
    assert set(contracts.schema_names()) == set(SHAPES) | set(NOT_JSON_SHAPES)


def test_the_readme_s_table_pairs_every_schema_with_its_typed_dict() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    start = readme.index("| Schema | TypedDict | Schema | TypedDict |")
    table = readme[start : readme.index("\n\n", start)]
    pairs = re.findall(r"\| `([a-z-]+)\.json` \| `(\w+)`", table)
    listed = dict(pairs)
    assert sorted(listed) == sorted(SHAPES)
    for name, shape in SHAPES.items():
        # A union (TemplateResult) is listed by the alias hookspecs.types gives it.
        assert getattr(hookspecs.types, listed[name]) is shape, name


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_the_typed_dict_has_its_schemas_keys_required_keys_and_fixed_values(name: str) -> None:
    assert mismatches(SHAPES[name], contracts.schema(name), name) == []


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_each_shape_is_importable_from_hookspecs_types(name: str) -> None:
    shape = SHAPES[name]
    named = [value for value in vars(hookspecs.types).values() if value is shape]
    assert named, f"{name}'s shape is not in hookspecs.types"


class Misspelled(typing.TypedDict):
    action_id: str
    guarantor: str


class Inner(typing.TypedDict):
    mode: Literal["email", "fax"]


class Outer(typing.TypedDict):
    items: list[Inner]


def test_the_comparison_catches_a_misspelled_key_and_an_optional_key_made_required() -> None:
    schema = {
        "type": "object",
        "required": ["action_id"],
        "properties": {"action_id": {"type": "string"}, "guarantor_id": {"type": "string"}},
    }
    problems = mismatches(Misspelled, schema, "shape")
    assert any("['guarantor', 'guarantor_id']" in problem for problem in problems)
    assert any("required ['action_id', 'guarantor']" in problem for problem in problems)


def test_the_comparison_looks_into_nested_shapes_and_fixed_values() -> None:
    schema = {
        "type": "object",
        "required": ["items"],
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["mode"],
                    "properties": {"mode": {"enum": ["email", "text"]}},
                },
            }
        },
    }
    [problem] = mismatches(Outer, schema, "shape")
    assert problem.startswith("shape (Outer).items (Inner).mode: Literal")


def test_a_hosts_mypy_strict_catches_a_misspelled_key(tmp_path: Path) -> None:
    host_code = tmp_path / "host_code.py"
    host_code.write_text(
        "from hookspecs.types import SendRequest\n"
        "\n"
        "request: SendRequest = {\n"
        '    "guarantor_id": "g1",\n'
        '    "send_to": {"entity": {"type": "guarantor", "id": "g1"}, "mode": "text"},\n'
        '    "idempotency_kee": "k1",\n'
        "}\n"
    )
    report, _, status = mypy.api.run(
        ["--strict", "--cache-dir", str(tmp_path / "cache"), str(host_code)]
    )
    assert status == 1, report
    assert 'Extra key "idempotency_kee" for TypedDict "SendRequest"' in report
