"""One rule for text from outside: no NUL, no other control characters, no lone surrogates.

PostgreSQL can't store NUL in text or jsonb (`DataError`), nor a lone UTF-16
surrogate (`\\ud800` in JSON decodes to one, and UTF-8 can't encode it); SQLite
stores both. So the same input answered 500 on one database and was kept on
the other. Other C0 and C1 control characters (but tab, line feed and carriage
return) and DEL are no part of any name, email, answer or sub id either; they
are refused with them.

Every text that enters from outside is checked once, at the edge:

- where a person or a client typed it (API bodies and query strings, form
  fields, the `Idempotency-Key` header), it is refused: `TextMiddleware`
  answers 422 with each field's path before the view runs, the same error
  shape as any other invalid input;
- where it is tracking data (a click's and a pixel's query string, sub ids,
  the user agent and referer headers, the visitor cookie), it is kept without
  the offending characters: such values arrive from links and browsers nobody
  at the network controls, and a click or conversion must not be lost for
  them. Views that take only tracking data (the click redirect, the pixel) are
  marked `@text_cleaned_by_view` and clean what they keep with `text_clean` /
  `texts_clean` (the click service does, so every entry to it does); elsewhere
  the values of the keys in `TRACKING_KEYS` (sub ids, a relayed user agent) are
  cleaned in the request by the middleware before the view reads them.

Text that arrives inside another text (JSON typed into a form's textarea) is
checked where it is parsed, with `data_problems`. What other servers answer
(buyers, trackers) is nobody's typing: it is kept with `text_kept`, each refused
character shown as U+FFFD.

Bidirectional overrides (U+202E) and other format characters are allowed:
they are part of real text in right-to-left scripts and are escaped like any
other character wherever they are shown.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.template.response import SimpleTemplateResponse

from leadrelay.core.errors import Invalid, Problem

# C0 controls but tab, LF and CR; DEL and the C1 controls; every surrogate code point
# (a str holding one came from "\ud800" in JSON or a "surrogateescape" decode).
_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")

# Keys whose text values are tracking data wherever they appear (query strings, forms, JSON
# at any depth): cleaned in the request before the view reads it, never refused.
TRACKING_KEYS = frozenset(
    {"sub1", "sub2", "sub3", "sub4", "sub5", "visitor_user_agent", "user_agent", "referer"}
)
# Headers kept as data that a client chooses: refused like a body field.
CHECKED_HEADERS = ("Idempotency-Key",)


def text_refused_char(value: str) -> str | None:
    """The first character of `value` the rule refuses, or None."""
    found = _REFUSED.search(value)
    return found.group() if found else None


def text_clean(value: str) -> str:
    """`value` without the characters the rule refuses (for tracking data)."""
    return _REFUSED.sub("", value) if _REFUSED.search(value) else value


def text_kept(value: str, limit: int) -> str:
    """An outside server's answer kept as evidence (a buyer's or tracker's response body,
    a value read out of it): each refused character shown as U+FFFD, where it was, and
    cut to the column's `limit`."""
    return _REFUSED.sub("\ufffd", value)[:limit]


def texts_clean(values: Mapping[str, str]) -> dict[str, str]:
    """A query string's values (and names) cleaned, for views that take tracking data."""
    return {text_clean(k): text_clean(v) for k, v in values.items()}


def _problem(char: str, path: str) -> Problem:
    return Problem(
        "invalid_characters",
        f"Contains U+{ord(char):04X}, a control character or lone surrogate that can't be "
        "stored; remove it.",
        path or None,
    )


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def data_problems(data: Any, path: str = "") -> list[Problem]:
    """Every refused text in a decoded JSON document (keys and values, at any depth) and
    every number JSON can't hold (NaN, Infinity, which Python's decoder accepts), one
    problem per path."""
    return _walk(data, path, frozenset())[0]


def _walk(data: Any, path: str, clean_keys: frozenset[str]) -> tuple[list[Problem], bool]:
    """`data_problems`, and text values under a key in `clean_keys` cleaned in place
    (tracking data); the flag says whether any was."""
    problems: list[Problem] = []
    cleaned = False
    stack: list[tuple[str, Any]] = [(path, data)]  # no recursion: depth is the client's choice
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if (char := text_refused_char(value)) is not None:
                problems.append(_problem(char, where))
        elif isinstance(value, float):
            if not math.isfinite(value):
                problems.append(Problem("invalid_number", "Not a finite number.", where or None))
        elif isinstance(value, dict):
            for key, item in value.items():
                key_text = str(key)
                if (char := text_refused_char(key_text)) is not None:
                    problems.append(_problem(char, _join(where, _shown(key_text))))
                elif key_text in clean_keys and isinstance(item, str):
                    if text_refused_char(item) is not None:
                        value[key], cleaned = text_clean(item), True
                else:
                    stack.append((_join(where, key_text), item))
        elif isinstance(value, list | tuple):
            stack.extend((_join(where, i), item) for i, item in enumerate(value))
    problems.sort(key=lambda p: p.field or "")
    return problems, cleaned


def _shown(key: str) -> str:
    """A refused key as a path segment people can read (escapes, not the raw character)."""
    return key.encode("unicode_escape", "backslashreplace").decode("ascii")


def text_cleaned_by_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Mark a view that takes tracking data: it cleans what it keeps, nothing is refused."""
    view.text_cleaned_by_view = True  # type: ignore[attr-defined]
    return view


def _querydict_checked(data: QueryDict) -> tuple[list[Problem], QueryDict | None]:
    """Problems in a query string or form, and a cleaned copy when tracking keys needed it."""
    problems = []
    cleaned: QueryDict | None = None
    for key, values in data.lists():
        if (char := text_refused_char(key)) is not None:
            problems.append(_problem(char, _shown(key)))
            continue
        for value in values:
            if (char := text_refused_char(value)) is None:
                continue
            if key in TRACKING_KEYS:
                cleaned = cleaned if cleaned is not None else data.copy()
                cleaned.setlist(key, [text_clean(v) for v in values])
            else:
                problems.append(_problem(char, key))
            break
    return problems, cleaned


def _frozen(data: QueryDict) -> Any:
    """The cleaned copy as immutable as the request's own."""
    data._mutable = False
    return data


def _fits_in_memory(request: HttpRequest) -> bool:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        return limit is None or int(request.META.get("CONTENT_LENGTH") or 0) <= limit
    except ValueError:
        return False


_FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}


def request_text_check(request: HttpRequest) -> list[Problem]:
    """What `TextMiddleware` refuses in a request (query string, headers kept as data, form
    fields, a JSON body's keys and values); tracking keys are cleaned in the request."""
    problems, cleaned = _querydict_checked(request.GET)
    if cleaned is not None:
        request.GET = _frozen(cleaned)
    for header in CHECKED_HEADERS:
        value = request.headers.get(header)
        if value is not None and (char := text_refused_char(value)) is not None:
            problems.append(_problem(char, f"header.{header}"))
    if request.method in {"GET", "HEAD", "OPTIONS"}:
        return problems
    try:
        if request.content_type in _FORM_TYPES:
            if request.content_type == "multipart/form-data" and _fits_in_memory(request):
                request.body  # noqa: B018  the raw bytes stay readable for a signed postback
            form_problems, cleaned = _querydict_checked(request.POST)
            problems += form_problems
            if cleaned is not None:
                request.POST = _frozen(cleaned)
        elif request.body:
            document = json.loads(request.body)
            body_problems, cleaned_body = _walk(document, "", TRACKING_KEYS)
            problems += body_problems
            if cleaned_body and not problems:
                request._body = json.dumps(document).encode()  # what the view parses
    except (ValueError, RecursionError, SuspiciousOperation, MultiPartParserError):
        pass  # unreadable, too big or not JSON: the view refuses the body as it does today
    return problems


class TextMiddleware:
    """Refuse a request with text the rule refuses, before the view reads it (422)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponse],
        view_args: Any,
        view_kwargs: Any,
    ) -> HttpResponse | None:
        if getattr(view_func, "text_cleaned_by_view", False):
            return None
        problems = request_text_check(request)
        if not problems:
            return None
        if "text/html" not in request.headers.get("Accept", ""):  # API clients, servers
            return JsonResponse(Invalid(problems).as_dict(), status=422)
        page = SimpleTemplateResponse("core/invalid_text.html", {"problems": problems}, status=422)
        return page.render()
