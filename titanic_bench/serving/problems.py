"""What a refused request is told, bounded whatever it sent.

A 422 names each bad field, its value and what was expected, and lists at most
:data:`ERRORS_LISTED` errors. Everything in it that may come from the request is cut:
the value to :data:`VALUE_LIMIT` characters and shown once (in ``message``, not again
in ``detail``); a name in the location (an unknown field's) to :data:`VALUE_LIMIT`
characters, and when it was cut, shown once too (``detail`` gives only its length);
pydantic's own text (``msg``, ``ctx``), which a validator may fill with the input, to
:data:`TEXT_LIMIT` characters. So a 5 MB field, a 5 MB field name or a batch of a
thousand bad rows gets a reply of a few kilobytes. Non-finite inputs (JSON ``NaN``,
``Infinity``) are shown, never serialised.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

#: The most characters of a bad value, or of a name in its location, that a 422 repeats.
VALUE_LIMIT = 80
#: The most characters of pydantic's text about an error (its ``msg``, each ``ctx`` value):
#: longer than any of its own messages, so only text copied from the input is cut.
TEXT_LIMIT = 200
#: The most errors a 422 lists; it counts the rest.
ERRORS_LISTED = 20
#: Bounded repr of nested values: a whole body sent where an object was expected.
_VALUES = reprlib.Repr()  # its limits are attributes before Python 3.12
_VALUES.maxlevel, _VALUES.maxdict, _VALUES.maxlist, _VALUES.maxtuple = 2, 4, 4, 4
_VALUES.maxstring = _VALUES.maxother = 2 * VALUE_LIMIT


def validation_problem(errors: Sequence[Mapping[str, Any]]) -> bytes:
    """The 422 body for pydantic's ``errors``: ``message`` (one line) and ``detail`` (a list)."""
    listed = errors[:ERRORS_LISTED]
    problems = [describe(item) for item in listed]
    if len(errors) > len(listed):
        problems.append(f"and {len(errors) - len(listed)} more errors")
    # Not "input": the message shows it, once.
    detail = [
        {"type": item.get("type"), "loc": [_located(part) for part in item.get("loc", ())]}
        | ({"msg": cut(str(item["msg"]), TEXT_LIMIT)} if "msg" in item else {})
        | ({"ctx": _context(item["ctx"])} if item.get("ctx") else {})
        for item in listed
    ]
    return orjson.dumps({"message": "; ".join(problems), "detail": detail})


def describe(item: Mapping[str, Any]) -> str:
    """One error as ``location: what is wrong (got value)``."""
    location = ".".join(cut(str(part)) for part in item.get("loc", ()))
    if item.get("type") == "json_invalid":
        reason = cut(str(item.get("ctx", {}).get("error", "")), TEXT_LIMIT)
        return f"{location}: the request body is not valid JSON ({reason})"
    if item.get("type") == "missing":
        return f"{location}: field required"
    return f"{location}: {cut(str(item.get('msg')), TEXT_LIMIT)} (got {shown(item.get('input'))})"


def shown(value: Any) -> str:
    """``repr(value)``, at most :data:`VALUE_LIMIT` characters, cut with an ellipsis."""
    return cut(_VALUES.repr(value))


def cut(text: str, limit: int = VALUE_LIMIT) -> str:
    """``text``, or its first ``limit - 1`` characters and an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _located(part: Any) -> int | str:
    """A part of ``loc`` for the detail: a name the message had to cut is given by its length,
    so the message holds the only copy."""
    if isinstance(part, int):
        return part
    text = str(part)
    return text if len(text) <= VALUE_LIMIT else f"<a name of {len(text)} characters>"


def _context(ctx: Mapping[str, Any]) -> dict[str, Any]:
    """``ctx`` with its text cut: pydantic puts the schema's limits there (numbers, kept), a
    validator's exception (shown as its text), and whatever else as text."""
    return {cut(str(key), TEXT_LIMIT): _number_or_text(value) for key, value in ctx.items()}


def _number_or_text(value: Any) -> Any:
    # orjson refuses an integer beyond 64 bits, and writes a non-finite float as null.
    if isinstance(value, bool | float) or (isinstance(value, int) and -(2**63) <= value < 2**64):
        return value
    return cut(str(value), TEXT_LIMIT)
