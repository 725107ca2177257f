"""A report table (reporting/tables.py) as the columns a role may see, for the Reports
page and its CSV and XLSX exports, so that the three always agree.

Which columns: the counts and rates for everyone; revenue and CPL when the role sees
revenue, payout and EPC when it sees payout, profit, margin and ROI when it sees both
(the network). Money is shown for one currency at a time (a report never adds across
currencies): exports carry it in a "Currency" column and write amounts as plain
decimals; rates are percentages with two decimals ("12.50" is 12.50 %), as the headers
say.

Cells from users (offer and affiliate names, sub ids, reason codes, variant names) are
escaped as core/csvexport.py describes, in CSV and in XLSX alike: an apostrophe before
= + - @ at the start of the cell or after a separator (`q;=1+13` → `q;'=1+13`). The CSV
is written by core/csvexport.py like every other CSV (every cell quoted); the numbers are
ours (`int` and `Decimal`) and written as they are. XLSX cells of text are always written
as strings, never parsed into formulas or numbers; they are escaped all the same, so a
sheet saved again as CSV stays safe.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import xlsxwriter

from leadrelay.accounts.models import OrganizationKind
from leadrelay.core.csvexport import csv_cell, csv_text
from leadrelay.core.money import bp_format, currency_exponent, money_decimal, money_format
from leadrelay.reporting.metrics import DEFINITIONS, MetricRow, MoneyTotals, relative_change_bp
from leadrelay.reporting.tables import Table, Visibility

COUNT, RATE, MONEY = "count", "rate", "money"
GROUP_TITLES = {
    "day": "Day",
    "offer": "Offer",
    "affiliate": "Affiliate",
    "sub1": "Sub1",
    "sub2": "Sub2",
    "sub3": "Sub3",
    "sub4": "Sub4",
    "sub5": "Sub5",
    "country": "Country",
    "device": "Device",
    "variant": "Landing variant",
    "reason": "Refusal reason",
}
_NO_MONEY = MoneyTotals()


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    kind: str  # COUNT, RATE (basis points) or MONEY (minor units)
    additive: bool  # rows add up to the total: a chart of it by day or group makes sense
    value: Callable[[MetricRow, str], int | None]  # (row, currency) → the number

    @property
    def definition(self) -> str:
        return DEFINITIONS.get(self.key, "")

    @property
    def export_title(self) -> str:
        return f"{self.title} (%)" if self.kind == RATE else self.title


def _money(name: str) -> Callable[[MetricRow, str], int | None]:
    def value(row: MetricRow, currency: str) -> int | None:
        return getattr(row.money.get(currency, _NO_MONEY), name) if currency else None

    return value


def _per_unit(name: str) -> Callable[[MetricRow, str], int | None]:
    def value(row: MetricRow, currency: str) -> int | None:
        return getattr(row, name)(currency) if currency else None

    return value


def _count(name: str) -> Callable[[MetricRow, str], int | None]:
    return lambda row, currency: getattr(row, name)


def group_title(group: str, kind: str) -> str:
    if group == "affiliate" and kind == OrganizationKind.ADVERTISER:
        return "Source"
    return GROUP_TITLES.get(group, group)


def report_columns(visibility: Visibility, kind: str) -> list[Column]:
    """The metrics a role sees, in the order of the page and the exports."""
    revenue = "Spend" if kind == OrganizationKind.ADVERTISER else "Revenue"
    payout = "Earnings" if kind == OrganizationKind.AFFILIATE else "Payout"
    columns = [
        Column("clicks", "Clicks", COUNT, True, _count("clicks")),
        Column("unique_clicks", "Unique clicks", COUNT, True, _count("unique_clicks")),
        Column("leads", "Leads", COUNT, True, _count("leads")),
        Column("approved", "Approved", COUNT, True, _count("approved")),
        Column("rejected", "Rejected", COUNT, True, _count("rejected")),
        Column("duplicates", "Duplicates", COUNT, True, _count("duplicates")),
        Column("pending", "Pending", COUNT, True, _count("pending")),
        Column("returned", "Returned", COUNT, True, _count("returned")),
        Column("conversion_rate", "Conversion rate", RATE, False, _count("conversion_rate_bp")),
        Column("approval_rate", "Approval rate", RATE, False, _count("approval_rate_bp")),
        Column("return_rate", "Return rate", RATE, False, _count("return_rate_bp")),
    ]
    if visibility.revenue:
        columns.append(Column("revenue", revenue, MONEY, True, _money("revenue_minor")))
    if visibility.payout:
        columns.append(Column("payout", payout, MONEY, True, _money("payout_minor")))
    if visibility.profit:
        columns += [
            Column("profit", "Profit", MONEY, True, _money("profit_minor")),
            Column("margin", "Margin", RATE, False, _money("margin_bp")),
            Column("roi", "ROI", RATE, False, _money("roi_bp")),
        ]
    if visibility.payout:
        columns.append(Column("epc", "EPC", MONEY, False, _per_unit("epc_minor")))
    if visibility.revenue:
        columns.append(Column("cpl", "CPL", MONEY, False, _per_unit("cpl_minor")))
    return columns


def change_bp(column: Column, current: int | None, previous: int | None) -> int | None:
    """How a total changed from the previous period: for counts and money the relative
    change in basis points of the previous value; for rates the difference in basis
    points (hundredths of a percentage point). None when there is nothing to compare with."""
    if current is None or previous is None:
        return None
    if column.kind == RATE:
        return current - previous
    return relative_change_bp(current, previous)


def change_format(column: Column, bp: int | None) -> str:
    if bp is None:
        return "–"
    sign = "+" if bp > 0 else "−" if bp < 0 else "±"
    shown = bp_format(abs(bp))
    return f"{sign}{shown[:-1]} pt" if column.kind == RATE else f"{sign}{shown}"


def cell_format(column: Column, value: int | None, currency: str) -> str:
    """A value as the page shows it."""
    if value is None:
        return "–"
    if column.kind == MONEY:
        return money_format(value, currency)
    if column.kind == RATE:
        return ("-" if value < 0 else "") + bp_format(abs(value))
    return f"{value:,}"


def percent_decimal(bp: int) -> str:
    """Basis points as a percentage with two decimals: 1250 → "12.50"."""
    sign = "-" if bp < 0 else ""
    return f"{sign}{abs(bp) // 100}.{abs(bp) % 100:02d}"


def cell_decimal(column: Column, value: int | None, currency: str) -> int | Decimal | None:
    """A value as the exports write it: counts as ints, money and rates as decimals with
    the currency's (or two) places, `Decimal("-7.00")`."""
    if value is None:
        return None
    if column.kind == MONEY:
        return Decimal(money_decimal(value, currency))
    if column.kind == RATE:
        return Decimal(percent_decimal(value))
    return value


@dataclass
class GridRow:
    parts: list[str]  # one label a grouping (users' text), or the row's name
    values: list[int | None]  # one a column, in its unit (count, bp, minor units)
    shown: list[str] = field(default_factory=list)  # the values as the page shows them


@dataclass
class Grid:
    """A report table for one currency, as rows of the columns a role sees."""

    group_titles: list[str]
    columns: list[Column]
    currency: str
    rows: list[GridRow]
    total: GridRow
    previous: GridRow
    changes: list[int | None]
    previous_start: dt.date
    previous_end: dt.date

    @property
    def width(self) -> int:
        return len(self.group_titles) + len(self.columns)

    @property
    def changes_shown(self) -> list[str]:
        return [change_format(c, bp) for c, bp in zip(self.columns, self.changes, strict=True)]

    def export_header(self) -> list[str]:
        return [*self.group_titles, "Currency", *(c.export_title for c in self.columns)]

    def export_rows(self) -> list[list[str | int | Decimal | None]]:
        """Every row, then the total and the previous period's total; text first, the
        currency, then the numbers (text not yet escaped: the writers do that)."""
        out: list[list[str | int | Decimal | None]] = []
        for row in [*self.rows, self.total, self.previous]:
            numbers = [
                cell_decimal(c, v, self.currency)
                for c, v in zip(self.columns, row.values, strict=True)
            ]
            out.append([*row.parts, self.currency, *numbers])
        return out


def report_grid(table: Table, *, kind: str, currency: str) -> Grid:
    """The table's rows, total and previous total as the role `kind` sees them, in
    `currency` (one of table.currencies, or "" when there is no money)."""
    columns = report_columns(table.visibility, kind)
    groups = list(table.query.group_by)
    titles = [group_title(g, kind) for g in groups] or ["Rows"]
    width = len(titles)

    def row(parts: list[str], metric: MetricRow) -> GridRow:
        values = [c.value(metric, currency) for c in columns]
        shown = [cell_format(c, v, currency) for c, v in zip(columns, values, strict=True)]
        return GridRow(parts, values, shown)

    previous = table.query.previous()
    # Without a grouping the table is its total alone.
    rows = [row([r.parts.get(g, "") for g in groups], r) for r in table.rows] if groups else []
    total = row(["Total", *[""] * (width - 1)], table.totals)
    previous_name = f"Previous period ({previous.start} – {previous.end})"
    previous_row = row([previous_name, *[""] * (width - 1)], table.previous)
    changes = [
        change_bp(c, now, before)
        for c, now, before in zip(columns, total.values, previous_row.values, strict=True)
    ]
    return Grid(
        group_titles=titles,
        columns=columns,
        currency=currency,
        rows=rows,
        total=total,
        previous=previous_row,
        changes=changes,
        previous_start=previous.start,
        previous_end=previous.end,
    )


def report_csv(grid: Grid) -> str:
    """The grid as CSV: text cells escaped, numbers (ours: ints and Decimals) as they are,
    so a negative profit stays a number."""
    return csv_text(grid.export_header(), grid.export_rows())


def report_xlsx(grid: Grid, *, title: str = "Report") -> bytes:
    """The grid as one XLSX sheet: text as strings (escaped like the CSV), counts as
    integers, money and rates as numbers with their decimals shown. (XLSX stores every
    number as a double: the decimals written here have at most 15 digits, so they read
    back exactly.)"""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        buffer,
        {
            "in_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        },
    )
    sheet = workbook.add_worksheet(title[:31])
    bold = workbook.add_format({"bold": True})
    exponent = currency_exponent(grid.currency) if grid.currency else 2
    money_fmt = workbook.add_format({"num_format": "0." + "0" * exponent if exponent else "0"})
    rate_fmt = workbook.add_format({"num_format": "0.00"})
    text_columns = len(grid.group_titles) + 1  # the groups and the currency
    for col, name in enumerate(grid.export_header()):
        sheet.write_string(0, col, csv_cell(name), bold)
    for r, row in enumerate(grid.export_rows(), start=1):
        for col, value in enumerate(row):
            if value is None:
                continue
            if col < text_columns:
                sheet.write_string(r, col, csv_cell(value), bold if r > len(grid.rows) else None)
                continue
            kind = grid.columns[col - text_columns].kind
            if kind == COUNT:
                sheet.write_number(r, col, int(value))
            else:
                # The decimal is exact; the double it becomes holds it exactly.
                number = float(value)
                sheet.write_number(r, col, number, money_fmt if kind == MONEY else rate_fmt)
    sheet.freeze_panes(1, 0)
    sheet.set_column(0, len(grid.group_titles) - 1, 24)
    workbook.close()
    return buffer.getvalue()


def report_filename(table: Table, extension: str) -> str:
    """A file name of only letters, digits, dots and dashes: the period and groupings."""
    groups = "-".join(g for g in table.query.group_by if g.isalnum()) or "totals"
    return f"leadrelay-report-{table.query.start}-{table.query.end}-{groups}.{extension}"
