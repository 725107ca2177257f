"""The API's error body, the same for every endpoint: a stable `code`, a `message`, and
one item per problem naming its `field` path (core/errors.py's `DomainError.as_dict`)."""

from __future__ import annotations

from ninja import Schema


class ProblemOut(Schema):
    code: str
    message: str
    field: str | None


class ErrorOut(Schema):
    code: str
    message: str
    errors: list[ProblemOut]
