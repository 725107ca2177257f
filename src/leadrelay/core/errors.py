"""Domain errors: values a user can act on.

Each carries a stable machine `code`, a human `message` and, where it concerns
one input, the `field` path (`fields.email`). They are mapped to HTTP statuses
in one place (`leadrelay.api`), never in the services that raise them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    field: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "field": self.field}


class DomainError(Exception):
    """Base class. `status` is the HTTP status the API answers with."""

    def __init__(
        self,
        code: str,
        message: str,
        field: str | None = None,
        status: int = 400,
        problems: list[Problem] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.status = status
        self.problems = problems or []

    def as_dict(self) -> dict[str, object]:
        problems = self.problems or [Problem(self.code, self.message, self.field)]
        return {
            "code": self.code,
            "message": self.message,
            "errors": [p.as_dict() for p in problems],
        }


class NotFound(DomainError):
    def __init__(self, what: str, code: str = "not_found") -> None:
        super().__init__(code=code, message=f"{what} not found.", status=404)


class Conflict(DomainError):
    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(code=code, message=message, field=field, status=409)


class Invalid(DomainError):
    """Input that fails validation: 422 with one problem per field."""

    def __init__(self, problems: list[Problem], message: str = "The input is not valid.") -> None:
        super().__init__(code="validation_failed", message=message, status=422, problems=problems)


class PermissionDenied(DomainError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code=code, message=message, status=403)
