"""What a refused request is told, bounded whatever it sent.

A 422 names each bad field, its value and what was expected, but echoes the value
once (in ``message``, not again in ``detail``), cut to :data:`VALUE_LIMIT`
characters, and lists at most :data:`ERRORS_LISTED` errors: a 5 MB field or a batch
of a thousand bad rows gets a reply of a few kilobytes. Non-finite inputs (JSON
``NaN``, ``Infinity``) are shown, never serialised.
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from typing import Any

import orjson

#: The most characters of a bad value that a 422 repeats.
VALUE_LIMIT = 80
#: The most errors a 422 lists; it counts the rest.
ERRORS_LISTED = 20
#: Bounded repr of nested values: a whole body sent where an object was expected.
_VALUES = reprlib.Repr()  # its limits are attributes before Python 3.12
_VALUES.maxlevel, _VALUES.maxdict, _VALUES.maxlist, _VALUES.maxtuple = 2, 4, 4, 4
_VALUES.maxstring = _VALUES.maxother = 2 * VALUE_LIMIT
_SHOWN_KEYS = ("type", "loc", "msg", "ctx")  # not "input": the message shows it, once


def validation_problem(errors: Sequence[dict[str, Any]]) -> bytes:
    """The 422 body for pydantic's ``errors``: ``message`` (one line) and ``detail`` (a list)."""
    listed = errors[:ERRORS_LISTED]
    problems = [describe(item) for item in listed]
    if len(errors) > len(listed):
        problems.append(f"and {len(errors) - len(listed)} more errors")
    detail = [
        {key: value for key, value in item.items() if key in ("type", "loc", "msg", "ctx")} for item in listed
    ]
    # default=str: pydantic puts exception objects in ``ctx``.
    return orjson.dumps({"message": "; ".join(problems), "detail": detail}, default=str)


def describe(item: dict[str, Any]) -> str:
    """One error as ``location: what is wrong (got value)``."""
    location = ".".join(str(part) for part in item.get("loc", ()))
    if item.get("type") == "json_invalid":
        return f"{location}: the request body is not valid JSON ({item.get('ctx', {}).get('error', '')})"
    if item.get("type") == "missing":
        return f"{location}: field required"
    return f"{location}: {item.get('msg')} (got {shown(item.get('input'))})"


def shown(value: Any) -> str:
    """``repr(value)``, at most :data:`VALUE_LIMIT` characters, cut with an ellipsis."""
    text = _VALUES.repr(value)
    return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 1] + "…"
