"""A validator for the subset of JSON Schema that ``pipelines.events`` uses (``type``, ``const``,
``enum``, ``required``, ``properties``, ``additionalProperties: false``, ``items``, ``minimum``,
``maximum``, ``oneOf``, local ``$ref``). Any other keyword raises, so nothing is silently ignored.

Import from a test as ``from schema_check import schema_errors`` (or ``assert_valid`` for an event).
"""
from __future__ import annotations

import json

from pipelines.events import EVENT_KINDS, EVENT_SCHEMAS, schema_document

_TYPES = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float),
          "boolean": bool, "null": type(None)}
_ANNOTATIONS = {"description", "title", "$schema", "$defs"}
_CHECKED = {"type", "const", "enum", "required", "properties", "additionalProperties", "items", "minimum",
            "maximum", "oneOf", "$ref"}


def _is(value, type_name: str) -> bool:
    if type_name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[type_name])


def schema_errors(instance, schema: dict, root: dict | None = None, path: str = "$") -> list[str]:
    """What is wrong with ``instance`` under ``schema`` (``root`` resolves ``$ref``); [] when valid."""
    root = schema if root is None else root
    if unknown := set(schema) - _ANNOTATIONS - _CHECKED:
        raise ValueError(f"schema_errors does not implement {sorted(unknown)} (at {path})")
    if not isinstance(schema.get("additionalProperties", True), bool):
        raise ValueError(f"schema_errors implements additionalProperties true/false only (at {path})")
    if "$ref" in schema:
        target = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return schema_errors(instance, target, root, path)
    if "oneOf" in schema:
        matching = sum(not schema_errors(instance, option, root, path) for option in schema["oneOf"])
        return [] if matching == 1 else [f"{path}: matches {matching} of the oneOf schemas, not exactly 1"]
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(instance, t) for t in types):
            return [f"{path}: {instance!r} is not of type {' or '.join(types)}"]
    errors = []
    if "const" in schema and instance != schema["const"]:
        errors.append(f"{path}: {instance!r} is not {schema['const']!r}")
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{path}: {instance!r} is not one of {schema['enum']}")
    if _is(instance, "number"):
        if "minimum" in schema and instance < schema["minimum"]:
            errors.append(f"{path}: {instance} < minimum {schema['minimum']}")
        if "maximum" in schema and instance > schema["maximum"]:
            errors.append(f"{path}: {instance} > maximum {schema['maximum']}")
    if isinstance(instance, dict):
        properties = schema.get("properties", {})
        errors += [f"{path}: missing {key!r}" for key in schema.get("required", []) if key not in instance]
        if schema.get("additionalProperties", True) is False:
            errors += [f"{path}: unexpected {key!r}" for key in instance if key not in properties]
        for key, sub in properties.items():
            if key in instance:
                errors += schema_errors(instance[key], sub, root, f"{path}.{key}")
    if isinstance(instance, list) and "items" in schema:
        for i, item in enumerate(instance):
            errors += schema_errors(item, schema["items"], root, f"{path}[{i}]")
    return errors


def strict_json(event) -> dict:
    """``event.to_json()`` after a round trip through strict JSON (no NaN or infinity)."""
    return json.loads(json.dumps(event.to_json(), allow_nan=False))


def assert_valid(record: dict) -> None:
    """``record`` is an event of a known kind that its schema, and the published document, accept."""
    assert record["event"] in EVENT_KINDS
    errors = schema_errors(record, EVENT_SCHEMAS[record["event"]])
    assert not errors, (record, errors)
    assert not schema_errors(record, schema_document())  # the published document accepts it too
