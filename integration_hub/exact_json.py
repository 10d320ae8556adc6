"""JSON bodies decoded exactly, for every door that takes JSON (the reporters' doors and DRF).

orjson is fast and strict (no lone surrogates, NaN or nesting deeper than 1,024), but it turns
an integer beyond 64 bits into a float, so a replay would send another number. When the body
holds an integer literal of 19 or more digits, it is decoded again with the standard library,
which keeps such integers exact for validation to refuse by field. A repeated key keeps its
last value.
"""

import json
import re

import orjson

# An integer literal of 19+ digits after `[`, `:` or `,`: the only JSON integers that may fall
# outside 64 bits. Digits inside strings (serial numbers, SSCCs) do not trigger the slow path.
_LONG_INTEGER = re.compile(rb"[\[:,]\s*-?\d{19}")
JSONDecodeError = orjson.JSONDecodeError


class TooDeep(ValueError):
    """Nesting the standard library cannot follow (orjson allows up to 1,024 levels)."""


def loads(body):
    data = orjson.loads(body)
    if _LONG_INTEGER.search(body) is None:
        return data
    try:
        return json.loads(body)
    except RecursionError:
        raise TooDeep("JSON nested too deeply.") from None


def describe(exc):
    """A decoding error as the doors report it: where in the body, and what."""
    return f"Malformed JSON at line {exc.lineno}, column {exc.colno} (char {exc.pos}): {exc.msg}."


NUL_REFUSED = "Must not contain NUL characters."


def form_field_with_nul(pairs):
    """The first field of a form, as (name, values) pairs, whose name or a value holds a NUL,
    named as shown in the error (NUL written as \\0), or None."""
    for name, values in pairs:
        if "\x00" in name or any(isinstance(v, str) and "\x00" in v for v in values):
            return name.replace("\x00", "\\0")[:64]
    return None


def field_with_nul(data):
    """The first top-level field of an object whose name or value holds a NUL, or None."""
    for name, value in data.items():
        if "\x00" in name or "\\u0000" in json.dumps(value):
            return name.replace("\x00", "")
    return None
