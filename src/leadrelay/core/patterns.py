"""Regular expressions that users write (qualification rules, buyers' response rules), run on
text from the open web: in linear time, with RE2 (google-re2), so no pattern can hang a
worker on a crafted input (ReDoS). RE2 has no backreferences or lookarounds; patterns that
use them are refused when saved."""

from __future__ import annotations

import functools

import re2

PATTERN_MAX = 200

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a bad pattern is the user's mistake, reported to them


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re2._Regexp:
    return re2.compile(pattern, _OPTIONS)


def pattern_problem(pattern: str) -> str:
    """Why a pattern can't be used ("" when it can)."""
    if len(pattern) > PATTERN_MAX:
        return f"At most {PATTERN_MAX} characters."
    try:
        _compiled(pattern)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid"
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        return f"Not a pattern: {reason}."
    return ""


def pattern_found(pattern: str, text: str) -> bool | None:
    """Whether the pattern occurs in the text; None for a pattern that can't be used (one
    saved before patterns were checked with RE2)."""
    try:
        return _compiled(pattern).search(text) is not None
    except re2.error:
        return None
