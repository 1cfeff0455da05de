"""Bounded 422 answers: whatever text pydantic copies from the input is cut."""

from __future__ import annotations

from typing import Annotated

import orjson
import pytest
from pydantic import AfterValidator, BaseModel, ValidationError

from titanic_bench.serving.problems import validation_problem


def test_text_that_pydantic_copies_from_the_input_is_truncated() -> None:
    class Quoting(BaseModel):
        code: Annotated[str, AfterValidator(_refuse_quoting)]

    with pytest.raises(ValidationError) as refused:
        Quoting(code="z" * 5_000_000)
    problem = validation_problem(refused.value.errors())
    assert len(problem) < 2_000
    detail = orjson.loads(problem)["detail"][0]
    assert detail["msg"].startswith("Value error, zzzzzzzzzz") and detail["msg"].endswith("…")
    assert detail["ctx"]["error"].startswith("zzzzzzzzzz") and detail["ctx"]["error"].endswith("…")


def _refuse_quoting(code: str) -> str:
    raise ValueError(code)  # what a validator naming the bad value does, input and all
