"""A parsed batch body turned into the model's columns in bulk, with whole-column checks.

Validating a thousand passengers field by field (pydantic calls Python for every
integral-float check) took about as long as the model itself. Here the parsed body
is checked against every rule of :class:`~titanic_bench.serving.schema.Passenger` on
whole columns, with set operations and NumPy.

This check only ever accepts; it never explains. Whatever it refuses (a bad value,
or just something it does not handle, such as an integer too large for a float)
goes to the pydantic validation, which answers the 422 naming the row and field, or
accepts it after all. So it may be stricter than pydantic, never looser: the tests
compare the two on the edge of every rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any, get_args

import numpy as np

from titanic_bench.serving.schema import (
    MAX_AGE,
    MAX_RELATIVES,
    MAX_TEXT,
    Classes,
    Columns,
    Passenger,
    Ports,
    Sex,
    csv_columns,
)

_REQUIRED = ("pclass", "sex", "sibsp", "parch")
_FIELDS = frozenset(Passenger.model_fields)
_CLASSES = np.array(get_args(Classes), dtype=np.float64)
_SEXES = frozenset(get_args(Sex))
_PORTS = frozenset((*get_args(Ports), None))
# Exact types, not isinstance: JSON true is a bool, an int subclass, and the schema refuses it.
_NUMBER = frozenset((int, float))
_NUMBER_OR_NULL = frozenset((int, float, type(None)))
_TEXT_OR_NULL = frozenset((str, type(None)))


class _RefusedError(Exception):
    """The bulk check does not accept the batch; the pydantic validation will say why."""


def bulk_columns(rows: Any) -> Columns | None:
    """The columns of a valid batch, as ``passenger_columns`` builds them; None if refused.

    ``rows`` is the body as parsed JSON (``pydantic_core.from_json``, the parser the
    pydantic validation uses too, so both see the same values).
    """
    try:
        return _columns(rows)
    # Any failure only means "let pydantic look": KeyError is a missing field, TypeError
    # an unhashable value, OverflowError a huge integer, ValueError a bad conversion.
    except (_RefusedError, KeyError, TypeError, OverflowError, ValueError):
        return None


def _columns(rows: Any) -> Columns:
    if type(rows) is not list or not rows or set(map(type, rows)) != {dict}:
        raise _RefusedError  # not a non-empty list of objects
    if not all(map(_FIELDS.issuperset, rows)):
        raise _RefusedError  # an unknown field
    pclass, sex, sibsp, parch = zip(*map(itemgetter(*_REQUIRED), rows), strict=True)
    if not set(sex) <= _SEXES:
        raise _RefusedError

    def optional(field: str) -> list[Any]:
        return list(map(dict.get, rows, repeat(field)))

    return csv_columns(
        {
            "pclass": _whole_numbers(pclass, allowed=_CLASSES),
            "name": _texts(optional("name")),
            "sex": np.array(sex, dtype=object),
            "age": _numbers(optional("age"), high=MAX_AGE),
            "sibsp": _whole_numbers(sibsp, high=MAX_RELATIVES),
            "parch": _whole_numbers(parch, high=MAX_RELATIVES),
            "ticket": _texts(optional("ticket")),
            "fare": _numbers(optional("fare"), high=np.inf),
            "cabin": _texts(optional("cabin")),
            "embarked": _texts(optional("embarked"), allowed=_PORTS),
        }
    )


def _whole_numbers(
    values: Sequence[Any], high: float = np.inf, allowed: np.ndarray | None = None
) -> np.ndarray:
    """Integers from 0 to ``high`` (or among ``allowed``); 22.0 counts as 22, as in the schema."""
    if not set(map(type, values)) <= _NUMBER:
        raise _RefusedError
    numbers = np.array(values, dtype=np.float64)
    # A NaN fails every comparison, so it is refused too.
    if not (np.all(numbers >= 0) and np.all(numbers <= high) and np.array_equal(numbers, np.trunc(numbers))):
        raise _RefusedError
    if allowed is not None and not np.all(np.isin(numbers, allowed)):
        raise _RefusedError
    return numbers.astype(np.int64)


def _numbers(values: list[Any], high: float) -> np.ndarray:
    """Finite numbers from 0 to ``high``, or null/absent, which becomes NaN for the imputers."""
    if not set(map(type, values)) <= _NUMBER_OR_NULL:
        raise _RefusedError
    numbers = np.array(values, dtype=np.float64)  # None becomes NaN
    missing = np.isnan(numbers)
    if np.count_nonzero(missing) != values.count(None):
        raise _RefusedError  # a NaN that was not a null: JSON NaN, which the schema refuses
    if not np.all(missing | (np.isfinite(numbers) & (numbers >= 0) & (numbers <= high))):
        raise _RefusedError
    return numbers


def _texts(values: list[Any], allowed: frozenset[str | None] | None = None) -> np.ndarray:
    """Strings of at most MAX_TEXT characters (or among ``allowed``); null/absent becomes NaN."""
    if not set(map(type, values)) <= _TEXT_OR_NULL:
        raise _RefusedError
    if max(map(len, filter(None, values)), default=0) > MAX_TEXT:
        raise _RefusedError
    if allowed is not None and not set(values) <= allowed:
        raise _RefusedError
    return np.array([np.nan if value is None else value for value in values], dtype=object)
