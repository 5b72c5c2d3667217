"""Examples for the OpenAPI document, derived from the schemas in one place (DESIGN §6).

A model that states its own example (``json_schema_extra={"examples": [...]}``) or a field
that does (``Field(examples=[...])``) is quoted; anything else is built from its schema: the
first enumeration value, a date for a date, a value inside the bounds for a number, a string
matching the pattern (read with Python's own regular expression parser). ``example_of`` is
deterministic, so the document is the same on every
replica, and every example it builds validates against its schema (tests/common/test_openapi_kit.py).
"""

from __future__ import annotations

import functools
import re
from typing import Any

try:  # the regular expression parser: a private module whose name changed in Python 3.11
    from re import _constants, _parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _constants  # type: ignore[no-redef]
    import sre_parse as _parser  # type: ignore[no-redef]

# Readable values for the patterns the schemas use; any other pattern gets a short string
# built from the pattern itself.
PATTERN_EXAMPLES: tuple[str, ...] = (
    "12000.00",  # money in yuan
    "330100",  # division code (GB/T 2260)
    "2026-Q1",  # statistical period
    "2026-03",
    "2026",
    "ZJ01",
    "CNCA-R-2002-001",
    "12-3",
    "3.5",
    "0101",
    "33",
    "浙质监罚字",
    "zhejiang-system",
    "hangzhou.system",
    "fine_range",
    "case_opened",
    "county",
    "example",
    "ABCD1234",
    "a",
)
EXAMPLE_DATE = "2026-03-02"
EXAMPLE_INSTANT = "2026-03-02T08:30:00Z"
EXAMPLE_UUID = "3f1c2a7e-5b6d-4c8e-9f01-2a3b4c5d6e7f"
MAX_DEPTH = 12


@functools.lru_cache(maxsize=512)
def string_matching(pattern: str, min_length: int = 0, max_length: int | None = None) -> str:
    def fits(value: str) -> bool:
        return (
            re.search(pattern, value) is not None
            and len(value) >= min_length
            and (max_length is None or len(value) <= max_length)
        )

    for candidate in PATTERN_EXAMPLES:
        if fits(candidate):
            return candidate
    for repeat in (1, 2, 4, 8):
        candidate = _shortest(_parser.parse(pattern), repeat)
        if fits(candidate):
            return candidate
    return "x" * max(min_length, 1)  # no string found: the validation test names the field


_CATEGORY_CHARACTERS = {
    _constants.CATEGORY_DIGIT: "0",
    _constants.CATEGORY_NOT_DIGIT: "a",
    _constants.CATEGORY_SPACE: " ",
    _constants.CATEGORY_NOT_SPACE: "a",
    _constants.CATEGORY_WORD: "a",
    _constants.CATEGORY_NOT_WORD: "-",
}


def _shortest(parsed: Any, repeat: int) -> str:
    """A string the parsed pattern matches: the first choice of each branch and class, each
    repetition ``repeat`` times within its bounds."""
    out: list[str] = []
    for op, arg in parsed:
        if op is _constants.LITERAL:
            out.append(chr(arg))
        elif op is _constants.IN:
            out.append(_first_in(arg))
        elif op is _constants.ANY:
            out.append("a")
        elif op in (_constants.MAX_REPEAT, _constants.MIN_REPEAT, _constants.POSSESSIVE_REPEAT):
            low, high, item = arg
            count = min(max(low, repeat), high)
            out.append(_shortest(item, repeat) * count)
        elif op is _constants.SUBPATTERN:
            out.append(_shortest(arg[-1], repeat))
        elif op is _constants.BRANCH:
            out.append(_shortest(arg[1][0], repeat))
        elif op is _constants.CATEGORY:
            out.append(_CATEGORY_CHARACTERS.get(arg, "a"))
    return "".join(out)


def _first_in(items: list[Any]) -> str:
    negated = any(op is _constants.NEGATE for op, _ in items)
    if negated:
        return "a" if not any(op is _constants.LITERAL and arg == ord("a") for op, arg in items) else "b"
    op, arg = items[0]
    if op is _constants.LITERAL:
        return chr(arg)
    if op is _constants.RANGE:
        return chr(arg[0])
    if op is _constants.CATEGORY:
        return _CATEGORY_CHARACTERS.get(arg, "a")
    return "a"


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    ref = schema.get("$ref")
    if not ref:
        return schema, None
    name = ref.rsplit("/", 1)[-1]
    return components.get(name, {}), name


def _string(schema: dict[str, Any], name: str) -> str:
    fmt = schema.get("format")
    if fmt == "date":
        return EXAMPLE_DATE
    if fmt == "date-time":
        return EXAMPLE_INSTANT
    if fmt == "uuid":
        return EXAMPLE_UUID
    if fmt == "email":
        return "office@example.gov.cn"
    if fmt in ("uri", "url"):
        return "https://example.gov.cn/"
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if "pattern" in schema:
        return string_matching(schema["pattern"], low, high)
    text = name or "text"
    if high is not None:
        text = text[:high]
    return text.ljust(low, "x")


def _number(schema: dict[str, Any], integer: bool) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    value: float = 1
    if low is not None:
        value = max(value, low + (1 if "exclusiveMinimum" in schema else 0))
    if high is not None and value > high:
        value = high - (1 if "exclusiveMaximum" in schema else 0)
    step = schema.get("multipleOf")
    if step:
        value = step * max(1, round(value / step))
    return int(value) if integer else value


def _complete(example: Any, schema: dict[str, Any], components: dict[str, Any], depth: int) -> Any:
    """A model's own example, with the required fields it lacks: FastAPI drops the ``None``
    values of examples from the document (``exclude_none``), so ``null`` comes back here."""
    schema, _ = _resolve(schema, components)
    options = [o for o in [*schema.get("anyOf", ()), *schema.get("oneOf", ())] if o.get("type") != "null"]
    if len(options) == 1:
        schema, _ = _resolve(options[0], components)
    if isinstance(example, list) and "items" in schema:
        return [_complete(item, schema["items"], components, depth + 1) for item in example]
    if not isinstance(example, dict) or "properties" not in schema:
        return example
    completed = {
        key: _complete(value, schema["properties"][key], components, depth + 1)
        if key in schema["properties"] and depth < MAX_DEPTH
        else value
        for key, value in example.items()
    }
    for key in schema.get("required", ()):
        if key not in completed:
            sub, _ = _resolve(schema["properties"].get(key, {}), components)
            nullable = sub.get("type") == "null" or any(
                o.get("type") == "null" for o in [*sub.get("anyOf", ()), *sub.get("oneOf", ())]
            )
            completed[key] = None if nullable else example_of(sub, components, key, depth + 1)
    return completed


def example_of(schema: dict[str, Any], components: dict[str, Any], name: str = "", depth: int = 0) -> Any:
    """A value valid against ``schema``, whose ``$ref`` point into ``components``."""
    schema, ref = _resolve(schema, components)
    for key in ("examples", "example"):
        if key in schema:
            found = schema[key]
            if key == "examples" and isinstance(found, list) and found:
                return _complete(found[0], schema, components, depth)
            if key == "example":
                return _complete(found, schema, components, depth)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if schema.get("default") is not None:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
            return example_of(options[0], components, name, depth + 1)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            resolved, _ = _resolve(part, components)
            merged = {**merged, **resolved}
        return example_of(merged, components, name, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        if depth > MAX_DEPTH:
            return {}
        return {
            key: example_of(sub, components, key, depth + 1)
            for key, sub in schema.get("properties", {}).items()
            if depth < MAX_DEPTH or key in schema.get("required", ())
        }
    if kind == "array":
        if depth > MAX_DEPTH or "items" not in schema:
            return []
        item = example_of(schema["items"], components, name, depth + 1)
        return [item] * max(1, schema.get("minItems", 1)) if not schema.get("uniqueItems") else [item]
    if kind == "string":
        return _string(schema, name)
    if kind == "integer":
        return _number(schema, True)
    if kind == "number":
        return _number(schema, False)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return ref or name or "value"  # an unconstrained schema: any value is valid
