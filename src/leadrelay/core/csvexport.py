"""CSV files people open in spreadsheets, with formula injection defused; every CSV the
product writes goes through `csv_text`, and the XLSX export escapes its text with
`csv_cell` too.

A cell that begins with `=`, `+`, `-`, `@` is read by Excel, LibreOffice and Google
Sheets as a formula (OWASP "CSV injection"). Quoting every cell (`csv.QUOTE_ALL`) keeps a
cell whole in a spreadsheet that honours quotes, but a cell is still split at its
separators by one that doesn't, or by "Text to columns", and the list separator
depends on the locale: `q;=1+13;` is one harmless cell in a comma locale and
`q`, `=1+13` in most European ones. So the rule is per piece, not per cell:

- an apostrophe goes before every `=`, `+`, `-` or `@` that begins a piece a
  spreadsheet may read as a cell: at the start of the cell, or after a separator
  (`,` `;` `|`, a tab, CR or LF), in each case after any spaces or tabs, which
  spreadsheets may trim (`q;=1+13;` → `q;'=1+13;`, `a, =b` → `a, '=b`);
- a cell that begins with a tab, CR or LF also gets a leading apostrophe (OWASP's
  list; some importers drop leading whitespace).

The apostrophe is what spreadsheets read as "text follows"; a piece that begins with
it is never a formula. LF counts as a separator because a reader that ignores quotes
starts a new row there. A space does not: `Smith - Jones` is a name, and a
spreadsheet that splits at spaces on import splits every name.

Text that was escaped shows its apostrophe; that is the price of safety (OWASP's
advice too). Numbers that are ours (`int`, `Decimal`: counts, ids, amounts, rates) are
written as they are, so `-5` stays a number; `str` is always text and escaped, even
`"-1"`.

No library does this (the `csv` module quotes but does not defuse), hence this module.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
# A formula character that begins a piece: at the start or after a separator, past any
# spaces or tabs. The group keeps what comes before it; the apostrophe goes after.
_PIECE_FORMULA = re.compile(r"((?:^|[,;|\t\r\n])[ \t]*)(?=[=+\-@])")


def csv_cell(value: object) -> str:
    """One cell's text: ours (`None`, `bool`, `int`, `Decimal`) as it is, anything else
    as text with every formula defused (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    text = _PIECE_FORMULA.sub(r"\1'", str(value))
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """The whole file, every cell quoted, lines ending CRLF (RFC 4180). `rows` may hold
    text from users (names, sub ids, lead fields): it is escaped. Pass our numbers as
    `int` or `Decimal`, never as `str`, or a negative one would be escaped as text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow([csv_cell(h) for h in header])
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return out.getvalue()
